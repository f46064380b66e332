"""Training throughput: descend against a hand-written NumPy reference, PyTorch, JAX,
scikit-learn and HIPS autograd (CPU, float32, plain SGD).

Three cases, the same model, data, initial parameters and learning rate in every engine:

- ``mnist``: MNIST-shaped synthetic data (60,000 x 784 float32, seeded: a 16-dimensional
  Gaussian code mixed into 784 noisy pixels, labels from a random linear teacher on the
  code, 10 classes; see :func:`mnist_like`), MLP 784-256-256-10 with ReLU,
  mean cross-entropy, SGD lr 0.01, batch 128, ONE shuffled epoch. Reported: wall time of the
  epoch, and the worker's peak memory (``ru_maxrss``) minus its resident memory right after
  the data was made. Targets: descend within 1.10x the NumPy reference's time and 1.3x its
  memory.
- ``digits``: the 1,797 x 64 digits (``ds.data.load_digits()``), MLP 64-32-10, batch 32,
  SGD lr 0.1: microseconds per optimizer step (epochs timed, divided by their 57 steps).
  Target: descend at most 0.5x PyTorch's time.
- ``cnn``: the digits as (n, 1, 8, 8) images, Conv2d(1->8, 3x3, padding 1) -> ReLU ->
  MaxPool2d(2) -> Flatten -> Linear(128 -> 10), batch 32, SGD lr 0.05: time per epoch.
  Target: descend within 1.5x PyTorch.

Engines: ``descend`` (``ds.train.fit(..., epochs=1, batch_size=B, progress=False)`` once per
epoch), ``descend-loop`` (the same model stepped by hand: ``opt.step(closure)`` per batch),
``descend-eager`` (``fit(..., capture=False)``: every step builds and walks its graph),
``numpy`` (``bench/training_numpy_ref.py``), ``torch`` (eager, ``torch.set_num_threads(2)``),
``jax`` (a ``jax.jit``-compiled step with ``optax.sgd``; compilation happens in an untimed
warm-up), ``sklearn`` (``MLPClassifier(solver='sgd', momentum=0, alpha=0)``, one
``partial_fit`` per epoch) and ``autograd`` (``autograd.grad`` of the loss written in
``autograd.numpy``). scikit-learn and autograd have no convolution: the CNN case runs the
other five.

Every (engine, case) measurement runs in a fresh worker process (``--worker ENGINE --case
CASE``); the driver alternates the engines within each round (ABC..., BC...A, ...) and
reports the median over rounds and *paired* ratios (taken within a round, then the
median), see ``bench/_bench_common.py``. Each worker checks that its training is real: it
scores the model before and after its first epoch with one float64 NumPy evaluator common
to all engines (mnist: the first 10,000 samples; digits, cnn: all of them) and the driver
fails the run if the loss did not decrease; it also warns where engines disagree.

Usage::

    .venv/bin/python bench/training.py                      # full run, plain text
    .venv/bin/python bench/training.py --markdown --json out.json
    .venv/bin/python bench/training.py --quick              # smoke test, about a minute
    .venv/bin/python bench/training.py --only digits --engines descend,torch --rounds 9
    .venv/bin/python bench/training.py --profile digits     # where descend's time goes
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import resource
import statistics
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _bench_common as bc

ENGINES = ("descend", "descend-eager", "descend-loop", "numpy", "torch", "jax", "sklearn",
           "autograd")
LABELS = {
    "descend": "descend (fit, captured)",
    "descend-eager": "descend (fit, capture=False)",
    "descend-loop": "descend (opt.step loop)",
    "numpy": "NumPy by hand",
    "torch": "PyTorch eager",
    "jax": "JAX jit",
    "sklearn": "scikit-learn",
    "autograd": "HIPS autograd",
}
MODULES = {  # the import that tells whether an engine is installed
    "descend": "descend",
    "descend-eager": "descend",
    "descend-loop": "descend",
    "numpy": "numpy",
    "torch": "torch",
    "jax": "optax",
    "sklearn": "sklearn",
    "autograd": "autograd",
}
PACKAGES = ("descend", "numpy", "torch", "jax", "jaxlib", "optax", "scikit-learn", "autograd")
TORCH_THREADS = 2
SEED = 0  # data, initial parameters; epoch e is shuffled by default_rng(SEED + e)
MNIST_EVAL_ROWS = 10_000


@dataclass(frozen=True)
class Case:
    """One training problem and the ratios descend should stay under."""

    name: str
    label: str
    kind: str  # "mlp" or "cnn"
    sizes: tuple[int, ...]  # mlp: layer widths; cnn: (c_in, c_out, h, w, classes)
    batch_size: int
    lr: float
    unit: str  # what one reported time covers: "epoch" or "step"
    engines: tuple[str, ...]
    targets: dict[str, float] = field(default_factory=dict)  # engine -> max descend/engine
    memory_targets: dict[str, float] = field(default_factory=dict)


CASES = {
    "mnist": Case(
        "mnist",
        "MNIST-shaped 60,000 x 784, MLP 784-256-256-10, batch 128, SGD lr 0.01: one epoch",
        "mlp",
        (784, 256, 256, 10),
        128,
        0.01,
        "epoch",
        ENGINES,
        {"jax": 1.0, "numpy": 1.05},
        {"numpy": 1.3},
    ),
    "digits": Case(
        "digits",
        "digits 1,797 x 64, MLP 64-32-10, batch 32, SGD lr 0.1: one optimizer step",
        "mlp",
        (64, 32, 10),
        32,
        0.1,
        "step",
        ENGINES,
        {"jax": 1.0},
    ),
    "cnn": Case(
        "cnn",
        "digits as 1x8x8 images, Conv(1->8, 3x3, pad 1)-ReLU-MaxPool 2-Linear(128->10), "
        "batch 32, SGD lr 0.05: one epoch",
        "cnn",
        (1, 8, 8, 8, 10),
        32,
        0.05,
        "epoch",
        ("descend", "descend-eager", "descend-loop", "numpy", "torch", "jax"),
        {"jax": 1.0},
    ),
}
PAIR_BASES = ("descend", "descend-loop")  # ratios are reported for these against the rest


# ------------------------------------------------------------------------------ data
def mnist_like(n: int, seed: int = SEED, latent: int = 16, noise: float = 0.5) -> tuple[Any, Any]:
    """n x 784 float32 inputs and int64 labels in 10 classes, seeded.

    Like real images, the inputs vary mostly along a few directions: x = z A + noise e with
    z a ``latent``-dimensional standard-normal code, A a fixed random (latent x 784) mixing
    (pixel variance about 1) and e standard-normal pixel noise; the label is
    argmax(z T) of a random linear teacher T (latent x 10). So the task is learnable (one
    epoch of the MLP goes from loss 2.3 to about 0.65, 85% accuracy) where i.i.d. Gaussian
    pixels would barely move in one epoch. Made in chunks straight into the final arrays
    (no float64 or full-size temporaries: the process's peak memory right after is its
    data)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    f32 = np.float32
    mixing = rng.standard_normal((latent, 784), dtype=f32) / f32(math.sqrt(latent))
    teacher = rng.standard_normal((latent, 10), dtype=f32)
    X = np.empty((n, 784), f32)
    y = np.empty(n, np.int64)
    chunk = 512  # small temporaries: 1.6 MB
    for start in range(0, n, chunk):
        part = X[start : start + chunk]
        z = rng.standard_normal((len(part), latent), dtype=f32)
        rng.standard_normal(part.shape, dtype=f32, out=part)
        part *= f32(noise)
        part += z @ mixing
        np.argmax(z @ teacher, axis=1, out=y[start : start + chunk])
    return X, y


def digits_arrays(engine: str) -> tuple[Any, Any]:
    """``ds.data.load_digits()`` (X float32 in [0, 1], y int64). Workers of other engines
    read the same file without importing descend (its import would sit in their process);
    the driver checks that every engine scored the same initial loss."""
    import numpy as np

    if engine.startswith("descend"):
        import descend as ds

        data = ds.data.load_digits()
        return data.X, data.y
    from importlib.util import find_spec

    spec = find_spec("descend")
    assert spec is not None and spec.submodule_search_locations
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "digits.npz"
    with np.load(path, allow_pickle=False) as archive:
        X = archive["X"].astype(np.float32) / np.float32(16)
        y = archive["y"].astype(np.int64)
    return X, y


def case_data(case: Case, engine: str, quick: bool) -> tuple[Any, Any]:
    if case.name == "mnist":
        return mnist_like(6_000 if quick else 60_000)
    X, y = digits_arrays(engine)
    if case.kind == "cnn":
        X = X.reshape(-1, 1, 8, 8)
    return X, y


def initial_params(case: Case) -> list[Any]:
    """PyTorch's default initialisation (uniform +-1/sqrt(fan_in), weights and biases),
    drawn from one seeded NumPy generator; PyTorch's layouts."""
    import numpy as np

    rng = np.random.default_rng(SEED + 1)

    def uniform(shape: tuple[int, ...], fan_in: int) -> Any:
        bound = 1 / math.sqrt(fan_in)
        return rng.uniform(-bound, bound, shape).astype(np.float32)

    if case.kind == "mlp":
        params = []
        for n_in, n_out in zip(case.sizes, case.sizes[1:]):
            params += [uniform((n_out, n_in), n_in), uniform((n_out,), n_in)]
        return params
    c_in, c_out, h, w, k = case.sizes
    flat = c_out * (h // 2) * (w // 2)
    return [
        uniform((c_out, c_in, 3, 3), c_in * 9),
        uniform((c_out,), c_in * 9),
        uniform((k, flat), flat),
        uniform((k,), flat),
    ]


def shuffled(n: int, seed: int) -> Any:
    """The sample order of one epoch: the permutation ``ds.train.fit(seed=seed)`` uses."""
    import numpy as np

    return np.random.default_rng(seed).permutation(n)


# ------------------------------------------------------------------------------ engines
class Trainer:
    """One engine's model and optimizer. ``epoch(X, y, seed)`` trains one pass in the order
    ``shuffled(len(X), seed)`` (scikit-learn: its own shuffle, seeded by ``seed``);
    ``params()`` returns the parameters as NumPy arrays in PyTorch's layout; ``reset()``
    puts back the initial ones."""

    def __init__(self, case: Case, params0: list[Any]):
        self.case = case
        self.params0 = params0

    def epoch(self, X: Any, y: Any, seed: int) -> None:
        raise NotImplementedError

    def params(self) -> list[Any]:
        raise NotImplementedError

    def reset(self) -> None:
        raise NotImplementedError

    def details(self) -> dict[str, Any]:
        return {}


def _descend_model(case: Case) -> Any:
    import descend as ds

    nn = ds.nn
    if case.kind == "mlp":
        layers: list[Any] = []
        for i, (n_in, n_out) in enumerate(zip(case.sizes, case.sizes[1:])):
            if i:
                layers.append(nn.ReLU())
            layers.append(nn.Linear(n_in, n_out))
        return nn.Sequential(*layers)
    c_in, c_out, h, w, k = case.sizes
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(c_out * (h // 2) * (w // 2), k),
    )


class DescendTrainer(Trainer):
    """descend through its public API; ``loop=False``: ``ds.train.fit`` for each epoch,
    ``loop=True``: ``opt.step(closure)`` per mini-batch."""

    def __init__(self, case: Case, params0: list[Any], loop: bool, capture: bool = True):
        super().__init__(case, params0)
        import descend as ds

        self.ds = ds
        self.loop = loop
        self.capture = capture
        self.model = _descend_model(case)
        self.names = [name for name, _ in self.model.named_parameters()]
        self.reset()
        self.loss_fn = ds.nn.CrossEntropyLoss()
        self.opt = ds.optim.GD(self.model.parameters(), lr=case.lr)

    def reset(self) -> None:
        self.model.load_state_dict(dict(zip(self.names, self.params0)))

    def params(self) -> list[Any]:
        return [p.data.copy() for p in self.model.parameters()]

    def epoch(self, X: Any, y: Any, seed: int) -> None:
        ds, b = self.ds, self.case.batch_size
        if not self.loop:
            ds.train.fit(self.model, self.loss_fn, self.opt, (X, y), epochs=1,
                         batch_size=b, shuffle=True, seed=seed, progress=False,
                         capture=self.capture)
            return
        model, loss_fn, step = self.model, self.loss_fn, self.opt.step
        order = shuffled(len(X), seed)
        for start in range(0, len(order), b):
            idx = order[start : start + b]
            xb, yb = ds.Tensor(X[idx]), y[idx]
            step(lambda xb=xb, yb=yb: loss_fn(model(xb), yb))

    def details(self) -> dict[str, Any]:
        return {"descend": self.ds.__version__,
                "descend_source": source_digest(Path(self.ds.__file__).parent)}


class NumpyTrainer(Trainer):
    def __init__(self, case: Case, params0: list[Any]):
        super().__init__(case, params0)
        import training_numpy_ref as ref

        if case.kind == "mlp":
            self.impl: Any = ref.MLPTrainer(params0, case.lr, case.batch_size)
        else:
            self.impl = ref.CNNTrainer(params0, case.lr, case.batch_size, case.sizes[2:4])

    def reset(self) -> None:
        self.impl.set_params(self.params0)

    def params(self) -> list[Any]:
        if self.case.kind == "mlp":
            return [p.copy() for p in self.impl.params]
        return self.impl.torch_params()

    def epoch(self, X: Any, y: Any, seed: int) -> None:
        self.impl.epoch(X, y, shuffled(len(X), seed))


class TorchTrainer(Trainer):
    def __init__(self, case: Case, params0: list[Any]):
        super().__init__(case, params0)
        import torch
        import torch.nn.functional as F
        from torch import nn

        torch.set_num_threads(TORCH_THREADS)
        self.torch, self.F = torch, F
        if case.kind == "mlp":
            layers: list[Any] = []
            for i, (n_in, n_out) in enumerate(zip(case.sizes, case.sizes[1:])):
                if i:
                    layers.append(nn.ReLU())
                layers.append(nn.Linear(n_in, n_out))
            self.model = nn.Sequential(*layers)
        else:
            c_in, c_out, h, w, k = case.sizes
            self.model = nn.Sequential(
                nn.Conv2d(c_in, c_out, 3, padding=1),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Flatten(),
                nn.Linear(c_out * (h // 2) * (w // 2), k),
            )
        self.reset()
        self.opt = torch.optim.SGD(self.model.parameters(), lr=case.lr)
        self._tensors: tuple[Any, Any, Any] | None = None

    def reset(self) -> None:
        with self.torch.no_grad():
            for p, a in zip(self.model.parameters(), self.params0):
                p.copy_(self.torch.from_numpy(a))

    def params(self) -> list[Any]:
        return [p.detach().numpy().copy() for p in self.model.parameters()]

    def epoch(self, X: Any, y: Any, seed: int) -> None:
        torch, F, model, opt = self.torch, self.F, self.model, self.opt
        if self._tensors is None or self._tensors[0] is not X:
            self._tensors = (X, torch.from_numpy(X), torch.from_numpy(y))
        _, Xt, yt = self._tensors
        order = torch.from_numpy(shuffled(len(X), seed))
        b = self.case.batch_size
        for start in range(0, len(order), b):
            idx = order[start : start + b]
            xb, yb = Xt.index_select(0, idx), yt.index_select(0, idx)
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()

    def details(self) -> dict[str, Any]:
        import re

        torch = self.torch
        blas = re.search(r"BLAS_INFO=(\w+)", torch.__config__.show())
        return {"torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                "torch_blas": blas.group(1) if blas else None}


class JaxTrainer(Trainer):
    def __init__(self, case: Case, params0: list[Any]):
        super().__init__(case, params0)
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
        import jax
        import jax.numpy as jnp
        import optax

        self.jax, self.jnp = jax, jnp
        kind = case.kind

        def forward(params: list[Any], x: Any) -> Any:
            if kind == "mlp":
                h = x
                last = len(params) // 2 - 1
                for i in range(last + 1):
                    h = h @ params[2 * i].T + params[2 * i + 1]
                    if i < last:
                        h = jax.nn.relu(h)
                return h
            conv_w, conv_b, lin_w, lin_b = params
            h = jax.lax.conv_general_dilated(
                x, conv_w, (1, 1), ((1, 1), (1, 1)), dimension_numbers=("NCHW", "OIHW", "NCHW")
            )
            h = jax.nn.relu(h + conv_b[None, :, None, None])
            h = jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2),
                                      "VALID")
            return h.reshape(h.shape[0], -1) @ lin_w.T + lin_b

        def loss_fn(params: list[Any], x: Any, y: Any) -> Any:
            logits = forward(params, x)
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

        self.tx = optax.sgd(case.lr)

        @jax.jit
        def step(params: list[Any], state: Any, x: Any, y: Any) -> Any:
            loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
            updates, state = self.tx.update(grads, state, params)
            return optax.apply_updates(params, updates), state, loss

        self.step = step
        self.reset()

    def reset(self) -> None:
        self.p = [self.jnp.asarray(a) for a in self.params0]
        self.state = self.tx.init(self.p)

    def params(self) -> list[Any]:
        import numpy as np

        return [np.array(a) for a in self.p]

    def epoch(self, X: Any, y: Any, seed: int) -> None:
        import numpy as np

        order = shuffled(len(X), seed)
        y32 = y.astype(np.int32) if y.dtype != np.int32 else y
        b, step, p, state = self.case.batch_size, self.step, self.p, self.state
        for start in range(0, len(order), b):
            idx = order[start : start + b]
            # fresh arrays each step: the dispatch is asynchronous, a reused buffer could be
            # overwritten before the step has read it
            p, state, _ = step(p, state, X[idx], y32[idx])
        self.p, self.state = self.jax.block_until_ready((p, state))

    def details(self) -> dict[str, Any]:
        return {"jax": self.jax.__version__,
                "jax_devices": [str(d) for d in self.jax.devices()]}


class SklearnTrainer(Trainer):
    def __init__(self, case: Case, params0: list[Any], X: Any, y: Any):
        super().__init__(case, params0)
        import numpy as np
        from sklearn.neural_network import MLPClassifier

        if case.kind != "mlp":
            raise ValueError("scikit-learn has no convolutional network")
        self.clf = MLPClassifier(
            hidden_layer_sizes=case.sizes[1:-1],
            solver="sgd",
            batch_size=case.batch_size,
            learning_rate_init=case.lr,
            learning_rate="constant",
            momentum=0.0,
            nesterovs_momentum=False,
            max_iter=1,
            alpha=0.0,
            shuffle=True,
            random_state=SEED,
        )
        # partial_fit on a few rows makes the layers (in X's float32); then our initial
        # parameters are copied into them
        self._fit(X[: case.batch_size], y[: case.batch_size], classes=np.arange(case.sizes[-1]))
        self.reset()

    def _fit(self, X: Any, y: Any, **kw: Any) -> None:
        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.clf.partial_fit(X, y, **kw)

    def reset(self) -> None:
        clf = self.clf
        for i, (w, b) in enumerate(zip(self.params0[0::2], self.params0[1::2])):
            clf.coefs_[i][...] = w.T
            clf.intercepts_[i][...] = b

    def params(self) -> list[Any]:
        out = []
        for w, b in zip(self.clf.coefs_, self.clf.intercepts_):
            out += [w.T.copy(), b.copy()]
        return out

    def epoch(self, X: Any, y: Any, seed: int) -> None:
        self.clf.random_state = seed  # partial_fit: one shuffled pass over (X, y)
        self._fit(X, y)

    def details(self) -> dict[str, Any]:
        import sklearn

        return {"sklearn": sklearn.__version__, "dtype": str(self.clf.coefs_[0].dtype)}


class AutogradTrainer(Trainer):
    def __init__(self, case: Case, params0: list[Any]):
        super().__init__(case, params0)
        import autograd.numpy as anp
        import numpy as np
        from autograd import grad

        if case.kind != "mlp":
            raise ValueError("the autograd engine here has no convolution")

        def loss_fn(params: list[Any], x: Any, onehot: Any) -> Any:
            h = x
            last = len(params) // 2 - 1
            for i in range(last + 1):
                h = anp.dot(h, params[2 * i].T) + params[2 * i + 1]
                if i < last:
                    h = anp.maximum(h, 0.0)
            z = h - anp.max(h, axis=1, keepdims=True)
            logp = z - anp.log(anp.sum(anp.exp(z), axis=1, keepdims=True))
            return -anp.sum(onehot * logp) / x.shape[0]

        self.grad = grad(loss_fn)
        self.eye = np.eye(case.sizes[-1], dtype=np.float32)
        self.p = [a.copy() for a in params0]
        self.lr = np.float32(case.lr)

    def reset(self) -> None:
        for p, a in zip(self.p, self.params0):
            p[...] = a

    def params(self) -> list[Any]:
        return [p.copy() for p in self.p]

    def epoch(self, X: Any, y: Any, seed: int) -> None:
        order = shuffled(len(X), seed)
        b, p, lr, eye, grad = self.case.batch_size, self.p, self.lr, self.eye, self.grad
        for start in range(0, len(order), b):
            idx = order[start : start + b]
            grads = grad(p, X[idx], eye[y[idx]])
            for pi, gi in zip(p, grads):
                pi -= lr * gi

    def details(self) -> dict[str, Any]:
        from importlib.metadata import version

        return {"autograd": version("autograd")}


def build(engine: str, case: Case, params0: list[Any], X: Any, y: Any) -> Trainer:
    if engine not in case.engines:
        raise ValueError(f"engine {engine!r} does not run case {case.name!r}")
    if engine in ("descend", "descend-eager", "descend-loop"):
        return DescendTrainer(case, params0, loop=engine == "descend-loop",
                              capture=engine != "descend-eager")
    if engine == "numpy":
        return NumpyTrainer(case, params0)
    if engine == "torch":
        return TorchTrainer(case, params0)
    if engine == "jax":
        return JaxTrainer(case, params0)
    if engine == "sklearn":
        return SklearnTrainer(case, params0, X, y)
    if engine == "autograd":
        return AutogradTrainer(case, params0)
    raise ValueError(f"unknown engine {engine!r}")


def import_engine(engine: str) -> None:
    """Import the engine's libraries (before the data is made, so that the memory they take
    is part of the baseline, not of the epoch)."""
    import numpy  # noqa: F401

    if engine.startswith("descend"):
        import descend  # noqa: F401
    elif engine == "numpy":
        import training_numpy_ref  # noqa: F401
    elif engine == "torch":
        import torch  # noqa: F401
    elif engine == "jax":
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
        import jax  # noqa: F401
        import optax  # noqa: F401
    elif engine == "sklearn":
        import sklearn.neural_network  # noqa: F401
    elif engine == "autograd":
        import autograd  # noqa: F401


def source_digest(package_dir: Path) -> str:
    """A short SHA-256 of a package's Python sources: tells apart runs of different code."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(package_dir.rglob("*.py")):
        digest.update(str(path.relative_to(package_dir)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


# ------------------------------------------------------------------------------ worker
def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def worker(engine: str, case_name: str, plan: bc.TimingPlan, quick: bool) -> dict[str, Any]:
    """Build one (engine, case), check that an epoch trains, time it; the driver's dict."""
    import numpy as np
    import training_numpy_ref as ref

    case = CASES[case_name]
    import_engine(engine)
    X, y = case_data(case, engine, quick)
    params0 = initial_params(case)
    n_eval = MNIST_EVAL_ROWS if case.name == "mnist" else len(X)
    Xe, ye = X[:n_eval], y[:n_eval]
    loss_before = ref.mean_loss(case.kind, params0, Xe, ye, chunk=256)
    steps = -(-len(X) // case.batch_size)
    result: dict[str, Any] = {"engine": engine, "case": case_name, "n": len(X),
                              "steps_per_epoch": steps, "loss_before": loss_before}
    gc.collect()
    rss_base, peak_base = bc.current_rss_bytes(), bc.peak_rss_bytes()

    if case.unit == "epoch" and case.name == "mnist":
        # One epoch, timed once: warm up on a few batches (both batch shapes, so that JAX
        # compiles both), put the initial parameters back, then train one full epoch.
        b = case.batch_size
        n_warm = 4 * b + len(X) % b
        trainer = build(engine, case, params0, X, y)
        trainer.epoch(X[:n_warm], y[:n_warm], SEED + 1000)
        trainer.reset()
        cpu0, t0 = _cpu_seconds(), time.perf_counter()
        trainer.epoch(X, y, SEED)
        epoch_s = time.perf_counter() - t0
        cpu = _cpu_seconds() - cpu0
        peak = bc.peak_rss_bytes()
        loss_after = ref.mean_loss(case.kind, trainer.params(), Xe, ye, chunk=256)
        result.update(median_s=epoch_s, epoch_s=epoch_s, cpu_per_wall=cpu / epoch_s,
                      loss_after=loss_after, loss_final=loss_after)
        result.update(
            data_bytes=int(X.nbytes + y.nbytes),
            rss_after_data=rss_base,
            peak_before=peak_base,
            peak_rss=peak,
            mem_extra=None if rss_base is None else peak - rss_base,
            peak_raised=peak > peak_base,
        )
    else:
        trainer = build(engine, case, params0, X, y)
        trainer.epoch(X, y, SEED)  # the first epoch: the check, and JAX's compilation
        loss_after = ref.mean_loss(case.kind, trainer.params(), Xe, ye)
        seed = [SEED + 1]

        def one_epoch() -> None:
            trainer.epoch(X, y, seed[0])
            seed[0] += 1

        timing = bc.time_per_iteration(one_epoch, plan)
        per = steps if case.unit == "step" else 1
        result.update(timing)
        result.update(
            median_s=timing["median_s"] / per,
            min_s=timing["min_s"] / per,
            max_s=timing["max_s"] / per,
            epoch_s=timing["median_s"],
            loss_after=loss_after,
            loss_final=ref.mean_loss(case.kind, trainer.params(), Xe, ye),
            epochs_run=seed[0] - SEED,
            peak_rss=bc.peak_rss_bytes(),
        )
    result["details"] = {
        "numpy": np.__version__,
        "threadpools": bc.threadpools(),
        **trainer.details(),
    }
    return result


# ------------------------------------------------------------------------------ profile
def profile(case_name: str, engine: str, epochs: int, top: int) -> int:
    """cProfile descend's training on a case: the functions with the most own time, those
    inside descend first, each with its share of the profiled time."""
    import cProfile
    import io
    import pstats

    import descend

    case = CASES[case_name]
    X, y = case_data(case, engine, quick=case_name == "mnist")
    trainer = build(engine, case, initial_params(case), X, y)
    trainer.epoch(X, y, SEED)  # warm-up
    bc.wait_for_idle(30.0)  # a busy machine slows the BLAS threads most of all
    t0 = time.perf_counter()
    for e in range(epochs):
        trainer.epoch(X, y, SEED + 1 + e)
    plain = (time.perf_counter() - t0) / epochs
    prof = cProfile.Profile()
    prof.enable()
    for e in range(epochs):
        trainer.epoch(X, y, SEED + 1 + e)
    prof.disable()
    stats = pstats.Stats(prof, stream=io.StringIO())
    total = stats.total_tt  # type: ignore[attr-defined]
    steps = -(-len(X) // case.batch_size) * epochs
    root = str(Path(descend.__file__).parent)
    rows = []
    for (path, line, func), (_cc, nc, tt, ct, _) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append((tt, ct, nc, path, line, func))
    rows.sort(reverse=True)

    def name(path: str, line: int, func: str) -> str:
        if path.startswith(root):
            return f"descend/{os.path.relpath(path, root)}:{line}:{func}"
        if path == "~":
            return func  # a C function
        return f"{Path(path).name}:{line}:{func}"

    print(f"{LABELS[engine]} on {case.label}")
    print(f"without the profiler: {plain * 1e3:.2f} ms per epoch = "
          f"{plain / (steps / epochs) * 1e6:.1f} us per step; profiled {epochs} epochs, "
          f"{steps} steps, {total:.3f} s")
    header = f"{'own %':>6} {'own us/step':>11} {'cum %':>6} {'calls/step':>10}  function"
    for title, keep in (("inside descend (own time)", lambda r: r[3].startswith(root)),
                        ("everything (own time)", lambda r: True)):
        print(f"\n{title}:\n{header}")
        for tt, ct, nc, path, line, func in [r for r in rows if keep(r)][:top]:
            print(f"{100 * tt / total:6.1f} {tt / steps * 1e6:11.2f} {100 * ct / total:6.1f} "
                  f"{nc / steps:10.1f}  {name(path, line, func)}")
    by_file: dict[str, float] = {}
    for tt, _ct, _nc, path, _line, _func in rows:
        if path.startswith(root):
            key = f"descend/{os.path.relpath(path, root)}"
        elif path == "~":
            key = "(C functions called directly: NumPy reductions, builtins)"
        else:
            key = "(other Python code: NumPy wrappers, this benchmark)"
        by_file[key] = by_file.get(key, 0.0) + tt
    print("\nown time by file:")
    for key, tt in sorted(by_file.items(), key=lambda kv: -kv[1])[:top]:
        print(f"{100 * tt / total:6.1f} {tt / steps * 1e6:11.2f}  {key}")
    cum = sorted((r for r in rows if r[3].startswith(root)), key=lambda r: -r[1])[:top]
    print(f"\ninside descend (cumulative time, callees included):\n{header}")
    for tt, ct, nc, path, line, func in cum:
        print(f"{100 * tt / total:6.1f} {tt / steps * 1e6:11.2f} {100 * ct / total:6.1f} "
              f"{nc / steps:10.1f}  {name(path, line, func)}")
    return 0


# ------------------------------------------------------------------------------ driver
def engine_available(engine: str) -> bool:
    from importlib.util import find_spec

    try:
        return find_spec(MODULES[engine]) is not None
    except (ImportError, ValueError):
        return False


def merge(parts: list[bc.RunResults]) -> bc.RunResults:
    out = bc.RunResults(cases=[], engines=[], rounds=parts[0].rounds if parts else 0)
    for part in parts:
        out.cases += part.cases
        out.engines += [e for e in part.engines if e not in out.engines]
        out.runs.update(part.runs)
        out.wall_s += part.wall_s
    out.engines = [e for e in ENGINES if e in out.engines]
    return out


def pairs_for(engines: list[str]) -> list[tuple[str, str]]:
    return [(a, b) for a in PAIR_BASES if a in engines for b in engines if b != a]


def check_runs(results: bc.RunResults) -> tuple[list[str], list[str]]:
    """(errors, warnings): a loss that did not decrease over the first epoch is an error;
    engines disagreeing on the initial loss (same data, same parameters) or, beyond a
    tolerance, on the loss after the first epoch (same batches in the same order, except
    scikit-learn's own shuffle) are warnings."""
    errors, warns = [], []
    for case, per_engine in results.runs.items():
        firsts = {}
        for engine, runs in per_engine.items():
            for run in runs:
                if not run["loss_after"] < run["loss_before"]:
                    errors.append(f"{case}/{engine} round {run['round'] + 1}: the loss did not "
                                  f"decrease ({run['loss_before']:.5g} -> "
                                  f"{run['loss_after']:.5g})")
            if runs:
                firsts[engine] = runs[0]
        if not firsts:
            continue
        ref = firsts.get("numpy") or next(iter(firsts.values()))
        for engine, run in firsts.items():
            if not math.isclose(run["loss_before"], ref["loss_before"], rel_tol=1e-6):
                warns.append(f"{case}: {engine} starts from loss {run['loss_before']:.7g}, "
                             f"{ref['engine']} from {ref['loss_before']:.7g}")
            tol = 0.05 if engine == "sklearn" else 0.01
            if not math.isclose(run["loss_after"], ref["loss_after"], rel_tol=tol):
                warns.append(f"{case}: after one epoch {engine} has loss "
                             f"{run['loss_after']:.5g}, {ref['engine']} {ref['loss_after']:.5g}"
                             f" (more than {tol:.0%} apart)")
    return errors, warns


def _fmt_time(case: Case, seconds: float) -> str:
    return bc.format_time(seconds)


def case_table(case: Case, entry: dict[str, Any], engines: list[str],
               runs: dict[str, list[dict[str, Any]]]) -> tuple[list[str], list[list[str]]]:
    bases = [b for b in PAIR_BASES if b in engines]
    headers = ["Engine", f"time per {case.unit} (median)", "range over rounds"]
    headers += [f"{LABELS[b]} / engine" for b in bases]
    headers += ["loss before -> after 1st epoch"]
    rows = []
    for engine in engines:
        t = entry["times"][engine]
        row = [LABELS[engine], _fmt_time(case, t.median),
               f"{_fmt_time(case, t.low)} - {_fmt_time(case, t.high)}"]
        for base in bases:
            row.append("-" if engine == base else bc.format_ratio(entry["ratios"][(base, engine)]))
        first = runs[engine][0]
        row.append(f"{first['loss_before']:.4f} -> {first['loss_after']:.4f}")
        rows.append(row)
    return headers, rows


def memory_table(entry: dict[str, Any], mem: dict[str, Any], engines: list[str],
                 runs: dict[str, list[dict[str, Any]]]) -> tuple[list[str], list[list[str]]]:
    bases = [b for b in PAIR_BASES if b in engines]
    headers = ["Engine", "peak RSS (ru_maxrss)", "RSS after imports + data",
               "peak - RSS after data (median)"]
    headers += [f"{LABELS[b]} / engine (extra)" for b in bases]
    rows = []
    for engine in engines:
        rs = runs[engine]
        row = [
            LABELS[engine],
            bc.format_bytes(statistics.median(r["peak_rss"] for r in rs)),
            bc.format_bytes(statistics.median(r["rss_after_data"] for r in rs)),
            bc.format_bytes(mem["times"][engine].median),
        ]
        for base in bases:
            row.append("-" if engine == base else bc.format_ratio(mem["ratios"][(base, engine)]))
        rows.append(row)
    return headers, rows


def targets_table(summary: dict[str, Any], mem_summary: dict[str, Any], total_summary:
                  dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    headers = ["Case", "Target", "descend (fit)", "descend (opt.step loop)", "Met (fit)"]
    rows = []

    def cell(ratios: dict[Any, Any], base: str, other: str) -> str:
        key = (base, other)
        return bc.format_ratio(ratios[key]) if key in ratios else "-"

    def met(ratios: dict[Any, Any], other: str, limit: float) -> str:
        key = ("descend", other)
        if key not in ratios:
            return "-"
        r = ratios[key].median
        return "yes" if r <= limit else f"no ({r / limit:.2f}x over)"

    for name, entry in summary.items():
        case = CASES[name]
        for other, limit in case.targets.items():
            rows.append([name, f"time <= {limit:g}x {LABELS[other]}",
                         cell(entry["ratios"], "descend", other),
                         cell(entry["ratios"], "descend-loop", other),
                         met(entry["ratios"], other, limit)])
        if name in mem_summary:
            for other, limit in case.memory_targets.items():
                ratios = mem_summary[name]["ratios"]
                rows.append([name, f"epoch memory (peak - RSS after data) <= {limit:g}x "
                             f"{LABELS[other]}", cell(ratios, "descend", other),
                             cell(ratios, "descend-loop", other), met(ratios, other, limit)])
                tot = total_summary[name]["ratios"]
                rows.append([name, f"whole-process peak RSS <= {limit:g}x {LABELS[other]}",
                             cell(tot, "descend", other), cell(tot, "descend-loop", other),
                             met(tot, other, limit)])
        if ("descend", "jax") in entry["ratios"]:
            rows.append([name, "(no target) time vs JAX jit", cell(entry["ratios"], "descend",
                         "jax"), cell(entry["ratios"], "descend-loop", "jax"), "-"])
    return headers, rows


def details_lines(results: bc.RunResults) -> list[str]:
    lines = []
    for engine in results.engines:
        run = next((rs[0] for pe in results.runs.values() if (rs := pe.get(engine))), None)
        if run is None:
            continue
        d = run["details"]
        pools = "; ".join(bc.describe_pool(p) for p in d.get("threadpools", [])) or "-"
        extra = ""
        if engine == "torch":
            extra = (f"torch {d.get('torch')}, {d.get('torch_threads')} threads, "
                     f"BLAS {d.get('torch_blas') or '?'}; ")
        elif engine == "jax":
            extra = f"jax {d.get('jax')}, devices {', '.join(d.get('jax_devices', []))}; "
        elif engine == "sklearn":
            extra = f"scikit-learn {d.get('sklearn')}, parameters {d.get('dtype')}; "
        elif engine.startswith("descend"):
            digests = sorted({r["details"].get("descend_source", "?")
                              for pe in results.runs.values() for r in pe.get(engine, [])})
            extra = f"descend {d.get('descend')} (source digest {', '.join(digests)}"
            extra += "; CHANGED DURING THE RUN); " if len(digests) > 1 else "); "
        lines.append(f"{LABELS[engine]} worker: {extra}NumPy pools: {pools}")
    return lines


def contention_line(results: bc.RunResults) -> str:
    shares = []
    for engine in results.engines:
        vals = [r["cpu_per_wall"] for pe in results.runs.values() for r in pe.get(engine, [])
                if r.get("cpu_per_wall") is not None]
        if vals:
            shares.append(f"{engine} {statistics.median(vals):.2f}")
    runs = [r for pe in results.runs.values() for rs in pe.values() for r in rs]
    foreign = [r["foreign_cpu"] for r in runs if r.get("foreign_cpu") is not None]
    reruns = sum(r.get("attempts", 1) - 1 for r in runs)
    loads = [r["load_after"][0] for r in runs if r.get("load_after")]
    text = ("Contention: process CPU time / wall time while timing (median; about 1 for one "
            "busy thread, up to 2 on two cores) " + ", ".join(shares))
    if foreign:
        text += (f"; other processes' share of the machine's CPU during the kept measurements:"
                 f" median {statistics.median(foreign):.2f}, max {max(foreign):.2f}")
    text += f"; {reruns} disturbed measurement(s) rerun"
    if loads:
        text += f"; 1-min load average {min(loads):g}-{max(loads):g}"
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", choices=ENGINES, help="(internal) run one engine")
    parser.add_argument("--case", choices=sorted(CASES), help="(with --worker) the case")
    parser.add_argument("--only", metavar="CASE[,CASE]", help=f"cases: {', '.join(CASES)}")
    parser.add_argument("--engines", metavar="A,B,...",
                        help=f"engines (default all installed): {', '.join(ENGINES)}")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per case (default 5)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke test: 1 round, short timings, 6,000 MNIST-shaped rows")
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")
    parser.add_argument("--json", metavar="PATH", help="also write every measurement here")
    parser.add_argument("--wait-idle", type=float, default=30.0, metavar="S",
                        help="before each worker wait up to S s for a nearly idle machine "
                        "(default 30; 0: never)")
    parser.add_argument("--max-foreign-cpu", type=float, default=0.15, metavar="F",
                        help="rerun a worker during which other processes used more than "
                        "this share of the machine's CPU (default 0.15)")
    parser.add_argument("--retries", type=int, default=2,
                        help="reruns per disturbed worker (default 2)")
    parser.add_argument("--profile", choices=sorted(CASES), metavar="CASE",
                        help="cProfile descend on CASE in this process instead")
    parser.add_argument("--profile-engine", choices=("descend", "descend-loop"),
                        default="descend")
    parser.add_argument("--profile-epochs", type=int, default=20)
    parser.add_argument("--top", type=int, default=15, help="rows per profile listing")
    bc.add_timing_args(parser)
    args = parser.parse_args(argv)

    if args.profile:
        return profile(args.profile, args.profile_engine, args.profile_epochs, args.top)
    if args.worker:
        if not args.case:
            parser.error("--worker needs --case")
        bc.emit(worker(args.worker, args.case, bc.plan_from_args(args), args.quick))
        return 0

    cases = list(CASES) if not args.only else [c.strip() for c in args.only.split(",")]
    for c in cases:
        if c not in CASES:
            parser.error(f"unknown case {c!r}; choose from {', '.join(CASES)}")
    wanted = list(ENGINES) if not args.engines else [e.strip() for e in args.engines.split(",")]
    for e in wanted:
        if e not in ENGINES:
            parser.error(f"unknown engine {e!r}; choose from {', '.join(ENGINES)}")
    engines = [e for e in ENGINES if e in wanted and engine_available(e)]
    missing = [e for e in wanted if e not in engines]
    if missing:
        print(f"skipping (not installed): {', '.join(missing)}", file=sys.stderr)
    rounds = 1 if args.quick and args.rounds == 5 else args.rounds
    plan = bc.TimingPlan.quick() if args.quick else bc.plan_from_args(args)
    wait_idle = 0.0 if args.quick else args.wait_idle

    def worker_cmd(engine: str, case: str) -> list[str]:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", engine,
               "--case", case, *plan.as_args()]
        return cmd + (["--quick"] if args.quick else [])

    info = bc.machine_info()
    versions = bc.package_versions(PACKAGES)
    parts = []
    for name in cases:
        case_engines = [e for e in engines if e in CASES[name].engines]
        if not case_engines:
            continue
        print(f"{name}: {len(case_engines)} engines x {rounds} rounds, one process each ...",
              file=sys.stderr)
        parts.append(bc.run_alternating(
            [name], case_engines, rounds, worker_cmd, idle_wait_s=wait_idle,
            max_foreign_cpu=args.max_foreign_cpu, retries=args.retries,
        ))
    if not parts:
        print("nothing to run", file=sys.stderr)
        return 2
    results = merge(parts)
    summary, mem_summary, total_summary = {}, {}, {}
    for name, per_engine in results.runs.items():
        one = bc.RunResults([name], list(per_engine), rounds, {name: per_engine})
        pairs = pairs_for(list(per_engine))
        summary.update(bc.summarize(one, pairs))
        if name == "mnist":
            mem_summary.update(bc.summarize(one, pairs, key="mem_extra"))
            total_summary.update(bc.summarize(one, pairs, key="peak_rss"))
    errors, warns = check_runs(results)

    md = args.markdown
    table = bc.markdown_table if md else bc.text_table
    machine = bc.machine_info_lines(info)
    machine.append("Packages: " + ", ".join(f"{k} {v or 'not installed'}"
                                             for k, v in versions.items()))
    machine += details_lines(results)
    machine.append(contention_line(results))
    out: list[str] = []
    if md:
        out.append("#### Training: descend vs NumPy by hand, PyTorch, JAX, scikit-learn, "
                   "autograd (CPU, float32, SGD)\n")
        out += [f"- {ln}" for ln in machine]
    else:
        out += machine
    for name in results.cases:
        case = CASES[name]
        engs = [e for e in results.engines if e in results.runs[name]]
        headers, rows = case_table(case, summary[name], engs, results.runs[name])
        out.append("")
        out.append(f"**{case.label}**" if md else case.label)
        out.append("")
        out.append(table(headers, rows))
        if name in mem_summary:
            headers, rows = memory_table(summary[name], mem_summary[name], engs,
                                         results.runs[name])
            data = results.runs[name][engs[0]][0]["data_bytes"]
            out.append("")
            out.append(f"Memory of the same workers (data: {bc.format_bytes(data)}):")
            out.append("")
            out.append(table(headers, rows))
            hidden = [e for e in engs if not all(r["peak_raised"] for r in results.runs[name][e])]
            if hidden:
                out.append(f"(for {', '.join(hidden)} the epoch did not raise the peak set "
                           "before it in some round: the extra is an upper bound there)")
    headers, rows = targets_table(summary, mem_summary, total_summary)
    if rows:
        out += ["", "**Targets** (paired ratios, median and range over rounds)" if md
                else "Targets (paired ratios, median and range over rounds)", "",
                table(headers, rows)]
    method = (
        f"Method: each (engine, case) runs in a fresh process, engines alternating within each "
        f"of {rounds} round(s); medians over rounds; ratios are paired within a round. "
        f"mnist ({'6,000 rows: --quick' if args.quick else '60,000 rows'}): one timed "
        f"epoch per process, after an untimed warm-up pass over the first 4 x 128 + "
        f"(n mod 128) rows (both batch shapes) and a reset to the initial parameters, so "
        f"JAX's compilation and first-call costs are excluded; memory is "
        f"ru_maxrss at the end of the epoch minus the resident memory right after the "
        f"imports and the data (model, optimizer, warm-up and epoch included). digits, cnn: "
        f"one untimed epoch (JAX compiles there), then epochs timed with "
        f"{plan.repeats} repeats of >= {plan.repeat_s:g} s after >= {plan.warmup_s:g} s of "
        f"warm-up, median repeat; digits reports epoch time / 57 steps. Shuffling: epoch e "
        f"visits samples in numpy.random.default_rng(e).permutation(n), the order "
        f"ds.train.fit(seed=e) uses, in every engine but scikit-learn (its own shuffle). "
        f"PyTorch: torch.set_num_threads({TORCH_THREADS}); NumPy, JAX and scikit-learn use "
        f"their default thread pools; losses: mean cross-entropy scored in float64 by one "
        f"NumPy function for every engine (mnist: first {MNIST_EVAL_ROWS:,} rows)."
    )
    out += ["", method, f"(wall time {results.wall_s:.0f} s)"]
    if args.quick:
        out.append("--quick: a smoke test (one round, millisecond timings, no waiting for an "
                   "idle machine): these numbers are not measurements; run without --quick.")
    print("\n".join(out))
    for w in warns:
        print(f"WARNING: {w}")
    for e in errors:
        print(f"ERROR: {e}")

    if args.json:
        payload = {
            "machine": info,
            "versions": versions,
            "plan": plan.__dict__,
            "rounds": rounds,
            "quick": args.quick,
            "results": results.to_json(),
            "summary": bc.summary_to_json(summary),
            "memory_summary": bc.summary_to_json(mem_summary),
            "peak_rss_summary": bc.summary_to_json(total_summary),
            "warnings": warns,
            "errors": errors,
        }
        Path(args.json).write_text(json.dumps(payload, indent=1))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
