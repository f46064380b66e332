"""Captured steps are bit-identical to eager ones.

Each case of the table trains one model with one loss, direction and step rule twice from
the same seed, ``fit(..., capture=True)`` and ``capture=False``, and compares every final
parameter and the per-step history bit for bit, in float32 and float64. Each captured run
must also have *replayed* steps (a silent fall-back to eager would pass the comparison
without testing anything). Checkpoint/resume, the explicit ``captured_step`` of hand-written
loops, dropout's fresh masks, and the cases that must stay eager are checked below.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import descend as ds
from descend import nn, optim
from descend.engine import CaptureEngine, NumpyEngine
from descend.train import capture, fit

DTYPES = (np.float32, np.float64)


def _data(kind: str, dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    if kind == "image":
        X = rng.standard_normal((70, 1, 6, 6)).astype(dtype)
        return X, rng.integers(0, 3, 70)
    X = rng.standard_normal((70, 4)).astype(dtype)
    w = rng.standard_normal((4, 3))
    if kind == "classes":
        return X, np.argmax(X @ w, axis=1)
    if kind == "binary":  # BCE targets in {0, 1}, as floats of the model's dtype
        return X, (X @ w[:, :1] > 0).astype(dtype)
    if kind == "signs":  # binary hinge: scores (n,), targets in {-1, +1}
        return X, np.where(X @ w[:, 0] > 0, 1.0, -1.0).astype(dtype)
    if kind == "int-signs":  # the same as integer labels (the loss casts them)
        return X, np.where(X @ w[:, 0] > 0, 1, -1)
    return X, (X @ w).astype(dtype)  # regression


class _Squeeze(nn.Module):
    def forward(self, x: Any) -> Any:
        return x.reshape(-1)


def _model(kind: str, dtype: Any, out: int) -> nn.Module:
    if kind == "cnn":
        return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1, rng=2, dtype=dtype), nn.ReLU(),
                             nn.MaxPool2d(2), nn.Flatten(), nn.Linear(27, out, rng=3, dtype=dtype))
    if kind.startswith("mlp-"):
        act = kind[4:]
        return nn.mlp([4, 8, out], activation=act, rng=4, dtype=dtype)
    if kind == "dropout":
        return nn.mlp([4, 8, 8, out], activation="tanh", dropout=0.3, rng=6, dtype=dtype)
    if kind == "global-dropout":  # Dropout drawing from the global generator
        return nn.Sequential(nn.Linear(4, 8, rng=1, dtype=dtype), nn.ReLU(), nn.Dropout(0.25),
                             nn.Linear(8, out, rng=2, dtype=dtype))
    if kind == "squeeze":
        return nn.Sequential(nn.Linear(4, 6, rng=1, dtype=dtype), nn.Tanh(),
                             nn.Linear(6, 1, rng=2, dtype=dtype), _Squeeze())
    raise AssertionError(kind)


# name: (model, data kind, outputs, loss, optimizer factory, batch size)
CASES: dict[str, tuple[str, str, int, Callable[[], Any], Callable[[list], Any], int | None]] = {
    "relu-ce-gd": ("mlp-relu", "classes", 3, nn.CrossEntropyLoss,
                   lambda ps: optim.GD(ps, lr=0.1), 16),
    "tanh-mse-momentum": ("mlp-tanh", "regression", 3, nn.MSELoss,
                          lambda ps: optim.GD(ps, lr=0.05, momentum=0.9), 16),
    "sigmoid-l1-nesterov": ("mlp-sigmoid", "regression", 3, nn.L1Loss,
                            lambda ps: optim.GD(ps, lr=0.05, momentum=0.5, nesterov=True), 16),
    "gelu-huber-adam": ("mlp-gelu", "regression", 3, nn.HuberLoss,
                        lambda ps: optim.Adam(ps, lr=0.01, weight_decay=1e-3), 16),
    "softplus-bce-inverse-sqrt": ("mlp-softplus", "binary", 1, nn.BCEWithLogitsLoss,
                                  lambda ps: optim.GD(ps, lr=optim.InverseSqrt(0.5)), 16),
    "leaky-hinge-armijo": ("mlp-leaky_relu", "classes", 3, nn.HingeLoss,
                           lambda ps: optim.GD(ps, lr=optim.Armijo()), 16),
    "binary-hinge-polyak": ("squeeze", "signs", 1, nn.HingeLoss,
                            lambda ps: optim.GD(ps, lr=optim.Polyak(0.0, 0.5, 1.0)), 16),
    "binary-hinge-int-labels": ("squeeze", "int-signs", 1, nn.HingeLoss,
                                lambda ps: optim.GD(ps, lr=0.05), 16),
    "cnn-ce-gd": ("cnn", "image", 3, nn.CrossEntropyLoss, lambda ps: optim.GD(ps, lr=0.05), 16),
    "cnn-ce-armijo": ("cnn", "image", 3, nn.CrossEntropyLoss,
                      lambda ps: optim.GD(ps, lr=optim.Armijo(c1=0.1)), 16),
    "dropout-ce-armijo": ("dropout", "classes", 3, nn.CrossEntropyLoss,
                          lambda ps: optim.GD(ps, lr=optim.Armijo(), momentum=0.5), 16),
    "global-dropout-ce-adam": ("global-dropout", "classes", 3, nn.CrossEntropyLoss,
                               lambda ps: optim.Adam(ps, lr=0.01), 16),
    "relu-ce-wolfe-full": ("mlp-relu", "classes", 3, nn.CrossEntropyLoss,
                           lambda ps: optim.GD(ps, lr=optim.StrongWolfe()), None),
    "tanh-mse-exact-full": ("mlp-tanh", "regression", 3, nn.MSELoss,
                            lambda ps: optim.GD(ps, lr=optim.Exact()), None),
    "relu-ce-length-decay": ("mlp-relu", "classes", 3, nn.CrossEntropyLoss,
                             lambda ps: optim.GD(ps, lr=optim.ConstantLength(0.1),
                                                 weight_decay=1e-2), 16),
    "relu-ce-subgradient": ("mlp-relu", "classes", 3, nn.CrossEntropyLoss,
                            lambda ps: optim.Subgradient(ps, lr=optim.Polyak(None)), 16),
}


def _run(case: str, dtype: Any, capture_on: bool, epochs: int = 3, **kw: Any):
    model_kind, data_kind, out, loss, make_opt, batch = CASES[case]
    X, y = _data(data_kind, dtype)
    model = _model(model_kind, dtype, out)
    opt = make_opt(model.parameters())
    history = fit(model, loss(), opt, (X, y), epochs=epochs, batch_size=batch, seed=3,
                  progress=False, capture=capture_on, **kw)
    return model, opt, history


def _assert_same_run(a: tuple, b: tuple) -> None:
    (ma, _, ha), (mb, _, hb) = a, b
    for (name, pa), pb in zip(ma.named_parameters(), mb.parameters()):
        assert pa.data.dtype == pb.data.dtype
        assert pa.data.tobytes() == pb.data.tobytes(), f"parameter {name} differs"
    for field in ("loss", "lr", "grad_norm", "evaluations"):
        left, right = np.array(getattr(ha, field)), np.array(getattr(hb, field))
        assert left.tobytes() == right.tobytes(), field


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_captured_run_is_bit_identical_to_eager(case: str, dtype: Any) -> None:
    captured = _run(case, dtype, True)
    eager = _run(case, dtype, False)
    _assert_same_run(captured, eager)
    engine = capture.engine_for(captured[1])
    assert engine is not None
    # (the multi-class hinge, whose one-hot mask was made in NumPy each step, and the binary
    # hinge on integer labels were never replayed: both are operations on the targets now)
    assert engine.stats["grad"][0] > 0, f"no step was replayed: {engine.stats}"
    assert not engine.report().reasons, str(engine.report())
    if CASES[case][4]([nn.Linear(1, 1).weight]).rule.needs == "values":
        assert engine.stats["value"][0] > 0, f"no trial was replayed: {engine.stats}"
    assert capture.engine_for(eager[1]).stats == {"grad": [0, 0], "value": [0, 0]}


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("case", ["dropout-ce-armijo", "relu-ce-wolfe-full", "cnn-ce-gd"])
def test_resumed_captured_run_is_bit_identical(case: str, dtype: Any, tmp_path) -> None:
    model_kind, data_kind, out, loss, make_opt, batch = CASES[case]
    X, y = _data(data_kind, dtype)
    runs = []
    for use_capture in (True, False):
        path = tmp_path / f"run-{use_capture}.ckpt"
        _run(case, dtype, use_capture, epochs=2, checkpoint=path)
        model = _model(model_kind, dtype, out)
        opt = make_opt(model.parameters())
        history = fit(model, loss(), opt, (X, y), epochs=4, batch_size=batch, seed=3,
                      progress=False, resume=path, capture=use_capture)
        runs.append((model, opt, history))
    _assert_same_run(runs[0], runs[1])
    uninterrupted = _run(case, dtype, True, epochs=4)[0]
    for p, q in zip(runs[0][0].parameters(), uninterrupted.parameters()):
        assert p.data.tobytes() == q.data.tobytes()


def test_dropout_draws_fresh_masks_on_every_replay() -> None:
    model = _model("dropout", np.float64, 3)
    X, y = _data("classes", np.float64)
    opt = optim.GD(model.parameters(), lr=1e-300)  # parameters stay: losses differ by masks
    step = capture.captured_step(model, nn.CrossEntropyLoss(), opt)
    losses = [float(step(X[:16], y[:16]).data) for _ in range(8)]
    assert step.engine.stats["grad"][0] >= 5
    assert len(set(losses)) == len(losses)


def test_captured_step_matches_a_hand_written_loop() -> None:
    X, y = _data("classes", np.float32)
    results = []
    for use_capture in (True, False):
        model = _model("mlp-relu", np.float32, 3)
        opt = optim.GD(model.parameters(), lr=optim.Armijo(), momentum=0.9)
        loss_fn = nn.CrossEntropyLoss()
        step = capture.captured_step(model, loss_fn, opt) if use_capture else None
        losses = []
        for epoch in range(4):
            order = np.random.default_rng(epoch).permutation(len(X))
            for s in range(0, len(X), 16):
                xb, yb = X[order[s:s + 16]], y[order[s:s + 16]]
                if step is not None:
                    losses.append(step(xb, yb).data.tobytes())
                else:
                    def closure(xb=xb, yb=yb, model=model, loss_fn=loss_fn):
                        return loss_fn(model(ds.Tensor(xb)), yb)
                    losses.append(opt.step(closure).data.tobytes())
        if step is not None:
            assert step.engine.stats["grad"][0] > 0 and step.engine.stats["value"][0] > 0
            step.close()
            assert "engine" not in vars(opt)
        results.append((losses, [p.data.tobytes() for p in model.parameters()]))
    assert results[0] == results[1]


class _Branching(nn.Module):
    """Takes a different path depending on a value: cannot be replayed."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 3, rng=1)
        self.b = nn.Linear(4, 3, rng=2)

    def forward(self, x: Any) -> Any:
        return self.a(x) if float(x.sum()) > 0 else self.b(x)


class _Recomputed(nn.Module):
    """Reads a plain array derived from the data in Python (no primitive): not a constant."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 3, rng=1)

    def forward(self, x: Any) -> Any:
        return self.a(x) * np.abs(x.data[:, :1] if hasattr(x, "data") else x[:, :1])


@pytest.mark.parametrize("model_type", [_Branching, _Recomputed])
def test_models_that_cannot_be_replayed_stay_eager_and_exact(model_type: type) -> None:
    X, y = _data("classes", np.float32)
    runs = []
    for use_capture in (True, False):
        model = model_type()
        opt = optim.GD(model.parameters(), lr=0.1)
        fit(model, nn.CrossEntropyLoss(), opt, (X, y), epochs=2, batch_size=8, seed=1,
            progress=False, capture=use_capture)
        runs.append([p.data.tobytes() for p in model.parameters()])
        if use_capture:
            stats = capture.engine_for(opt).stats
            assert stats["grad"][0] == 0 and stats["grad"][1] > 0
    assert runs[0] == runs[1]


def test_a_new_batch_shape_records_again() -> None:
    # 70 rows in batches of 16: four of 16 and one of 6
    _, opt, _ = _run("relu-ce-gd", np.float32, True, epochs=4)
    engine = capture.engine_for(opt)
    shapes = {key[3] for key in engine.entries}
    assert shapes == {(16, 4), (6, 4)}
    states = {key[3]: e.state for key, e in engine.entries.items()}
    assert states[(16, 4)] == "ready" and states[(6, 4)] == "ready"


def test_program_source_has_no_graph_building() -> None:
    model = _model("mlp-relu", np.float32, 3)
    opt = optim.GD(model.parameters(), lr=0.1)
    X, y = _data("classes", np.float32)
    fit(model, nn.CrossEntropyLoss(), opt, (X, y), epochs=1, batch_size=16, progress=False)
    entry = next(e for k, e in capture.engine_for(opt).entries.items() if k[0] == "grad")
    source = entry.program.source
    assert "Tensor" not in source and "backward" not in source
    # forward kernels (linear, relu, linear, cross-entropy, mean), then their VJPs
    assert source.count(" = F") == 5 and source.count(" = B") == 5


@pytest.mark.parametrize("lr", [0.3, "armijo"])
def test_training_accuracy_is_the_same_captured_and_eager(lr):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((96, 5)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    runs = []
    for captured in (True, False):
        model = ds.nn.mlp([5, 8, 2], rng=0)
        rule = ds.optim.Armijo() if lr == "armijo" else lr
        opt = ds.optim.GD(model.parameters(), lr=rule)
        h = ds.train.fit(model, ds.nn.CrossEntropyLoss(), opt, (X, y), epochs=4, batch_size=16,
                         progress=False, capture=captured)
        runs.append([e.train_accuracy for e in h.epochs])
        if captured:
            assert capture.engine_for(opt).stats["grad"][0] > 0  # replays ran
    assert runs[0] == runs[1]
    assert all(a is not None for a in runs[0]) and len(set(runs[0])) > 1


@pytest.mark.parametrize("captured", [True, False], ids=["captured", "eager"])
def test_a_loss_of_shape_one_trains_as_the_scalar_loss(captured: bool) -> None:
    # PyTorch accepts any one-element loss; NumPy 2 refuses float() of a (1,) array
    X, y = _data("classes", np.float32)
    runs = []
    for shape in ((), (1,)):
        model = _model("mlp-relu", np.float32, 3)
        opt = optim.GD(model.parameters(), lr=optim.Armijo())
        ce = nn.CrossEntropyLoss()

        def loss_fn(out: Any, t: Any, shape: tuple = shape, ce: Any = ce) -> Any:
            return ce(out, t).reshape(shape)

        h = fit(model, loss_fn, opt, (X, y), epochs=2, batch_size=16, seed=1, progress=False,
                capture=captured, validation=(X[:20], y[:20]))
        runs.append((np.array(h.loss).tobytes(), h.epochs[-1].val_loss,
                     [p.data.tobytes() for p in model.parameters()]))
        if captured:
            assert capture.engine_for(opt).stats["value"][0] > 0
    assert runs[0] == runs[1]


class _MaskedMSE:
    """A loss that makes a NumPy array from the targets at every call, outside the
    primitives (as the multi-class hinge did): a new constant each step, never replayed."""

    def __call__(self, out: Any, y: Any) -> Any:
        weights = (np.asarray(y) > 0).astype(out.dtype)
        return ((out - y) * weights * (out - y)).mean()


def test_a_fallback_to_eager_keeps_its_reason() -> None:
    X, y = _data("regression", np.float32)
    model = _model("mlp-tanh", np.float32, 3)
    opt = optim.GD(model.parameters(), lr=0.05)
    fit(model, _MaskedMSE(), opt, (X, y), epochs=3, batch_size=16, progress=False)
    report = ds.train.explain_capture(opt)
    assert report.replayed == 0 and report.eager == 15
    assert report.eager == report.recording + sum(count for _, count in report.reasons)
    (fallback, count), = [r for r in report.reasons if "(16, 4)" in r[0].batch]
    assert fallback.kind == "grad" and fallback.error == "NotCapturable" and count > 0
    assert "argument 1 of operation" in fallback.message and "by identity" in fallback.message
    assert "_MaskedMSE" in fallback.batch and "targets (16, 3) float32" in fallback.batch
    text = str(report)
    assert "0 of 15 evaluations with a gradient replayed" in text and fallback.message in text


def test_hinge_losses_replay_and_say_so() -> None:
    # 0 of 18 steps replayed before (silently), against cross-entropy's 16 of 18
    X, y = _data("classes", np.float32)
    reports = {}
    for loss in (nn.HingeLoss(), nn.CrossEntropyLoss()):
        model = _model("mlp-relu", np.float32, 3)
        opt = optim.GD(model.parameters(), lr=0.1)
        fit(model, loss, opt, (X, y), epochs=3, batch_size=16, progress=False)
        reports[type(loss).__name__] = ds.train.explain_capture(opt)
    hinge, ce = reports["HingeLoss"], reports["CrossEntropyLoss"]
    assert (hinge.replayed, hinge.eager) == (ce.replayed, ce.eager) == (11, 4)
    assert hinge.reasons == () and "no fallback to eager" in str(hinge)


def test_the_reasons_of_models_that_branch_and_of_plain_closures() -> None:
    X, y = _data("classes", np.float32)
    model = _Branching()
    opt = optim.GD(model.parameters(), lr=0.1)
    fit(model, nn.CrossEntropyLoss(), opt, (X, y), epochs=1, batch_size=8, progress=False)
    (fallback, _), *_ = ds.train.explain_capture(opt).reasons
    assert "reads tensor values in Python" in fallback.message
    step = capture.captured_step(model, nn.CrossEntropyLoss(), opt)
    opt.step(lambda: nn.CrossEntropyLoss()(model(ds.Tensor(X[:8])), y[:8]))
    step.close()
    messages = [f.message for f, _ in ds.train.explain_capture(step).reasons]
    assert any("not a Replayable" in m for m in messages)


def test_explain_capture_when_nothing_was_captured() -> None:
    model = _model("mlp-relu", np.float32, 3)
    opt = optim.GD(model.parameters(), lr=0.1)
    assert "never captured" in str(ds.train.explain_capture(opt))
    with pytest.raises(TypeError, match="optimizer_or_step"):
        ds.train.explain_capture(model)


def test_fit_switches_the_engine_through_use_engine_and_back() -> None:
    X, y = _data("classes", np.float32)
    model = _model("mlp-relu", np.float32, 3)
    own = NumpyEngine()
    opt = optim.GD(model.parameters(), lr=0.1, engine=own)
    seen = []

    class Spy(ds.train.Callback):
        def on_step_end(self, history: Any, optimizer: Any) -> None:
            seen.append(optimizer.engine)

    fit(model, nn.CrossEntropyLoss(), opt, (X, y), epochs=1, batch_size=16, progress=False,
        callbacks=[Spy()])
    assert opt.engine is own and "engine" not in vars(opt)
    assert all(e is capture.engine_for(opt) for e in seen) and seen
    assert opt.direction.engine is own  # the direction follows the optimizer's engine


def test_an_optimizer_built_on_a_capturing_engine_keeps_it() -> None:
    X, y = _data("classes", np.float32)
    results = []
    for engine in (CaptureEngine(), None):
        model = _model("mlp-relu", np.float32, 3)
        opt = optim.GD(model.parameters(), lr=optim.Armijo(), engine=engine)
        fit(model, nn.CrossEntropyLoss(), opt, (X, y), epochs=2, batch_size=16, seed=1,
            progress=False, capture=engine is not None)
        results.append([p.data.tobytes() for p in model.parameters()])
        if engine is not None:
            assert opt.engine is engine and engine.stats["grad"][0] > 0
    assert results[0] == results[1]
