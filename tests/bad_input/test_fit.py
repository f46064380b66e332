"""Bad input to ``fit`` (data, settings, validation, checkpoints, resume) and to
``StopWhen``: each must fail before the first training step, so the model's parameters are
exactly as they were, and the message must name the bad value (NaN/inf with row and column)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import descend as ds
from descend import nn, optim
from descend.errors import CheckpointError, ConfigError, DataError, DTypeError, ShapeError
from descend.train import History, StopWhen, fit

from . import user_error

NAN, INF = math.nan, math.inf
RNG = np.random.default_rng(0)
X = RNG.standard_normal((20, 3)).astype(np.float32)
Y = np.arange(20) % 2


def with_x(row: int, col: int, value: float) -> np.ndarray:
    bad = X.copy()
    bad[row, col] = value
    return bad


def with_y(row: int, value: Any, dtype: Any = None) -> np.ndarray:
    bad = Y.astype(dtype or Y.dtype)
    bad[row] = value
    return bad


def checkpoint_of_other_model(tmp: Path) -> Path:
    path = tmp / "other.npz"
    other = nn.mlp([3, 5, 2], rng=0)
    fit(other, nn.CrossEntropyLoss(), optim.GD(other.parameters(), lr=0.1), (X, Y), epochs=1,
        progress=False, checkpoint=path)
    return path


def npz_without_metadata(tmp: Path) -> Path:
    path = tmp / "plain.npz"
    np.savez(path, weight=np.ones(3))
    return path


def write(tmp: Path, name: str, content: bytes) -> Path:
    path = tmp / name
    path.write_bytes(content)
    return path


Setup = Callable[[Path], dict[str, Any]]


def row(name: str, setup: Setup, error: type, needle: str, bug: str | None = None) -> Any:
    marks: list = []  # every bug this table once pinned is fixed
    return pytest.param(setup, error, needle, id=name, marks=marks)


LATE = "raised only after training steps already changed the parameters: "
FIT_CASES = [
    # ------------------------------------------------------------------ X
    row("X-nan", lambda t: {"data": (with_x(7, 2, NAN), Y)}, DataError,
        "X has NaN at row 7, column 2"),
    row("X-inf", lambda t: {"data": (with_x(3, 1, INF), Y)}, DataError,
        "X has inf at row 3, column 1"),
    row("X-minus-inf", lambda t: {"data": (with_x(0, 0, -INF), Y)}, DataError,
        "X has -inf at row 0, column 0"),
    row("X-empty", lambda t: {"data": (X[:0], Y[:0])}, DataError, "X is empty"),
    row("X-strings", lambda t: {"data": (X.astype(str), Y)}, DTypeError, "<U"),
    row("X-complex", lambda t: {"data": (X.astype(complex), Y)}, DTypeError, "complex128"),
    row("X-None", lambda t: {"data": (None, Y)}, DTypeError, "object"),
    row("X-scalar", lambda t: {"data": (1.0, Y)}, DataError, "scalar"),
    row("X-ragged-lists", lambda t: {"data": ([[1.0, 2.0, 3.0], [1.0]], [0, 1])}, DataError,
        "cannot be made into an array"),
    row("X-too-many-features", lambda t: {"data": (np.ones((20, 5), np.float32), Y)},
        ShapeError, "(20, 5)"),
    row("X-one-dimensional", lambda t: {"data": (X[:, 0], Y)}, ShapeError, "(20,)"),
    # ------------------------------------------------------------------ y
    row("y-short", lambda t: {"data": (X, Y[:10])}, DataError, "X has 20 rows but y has 10"),
    row("y-long", lambda t: {"data": (X, np.r_[Y, 0])}, DataError, "but y has 21"),
    row("y-nan", lambda t: {"data": (X, with_y(19, NAN, float))}, DataError,
        "y has NaN at row 19"),
    row("y-strings", lambda t: {"data": (X, Y.astype(str))}, DTypeError, "<U"),
    row("y-bool", lambda t: {"data": (X, Y.astype(bool))}, DTypeError, "bool"),
    row("y-label-equals-classes", lambda t: {"data": (X, with_y(5, 2))}, ValueError,
        "target 2 is out of range for 2 classes"),
    row("y-label-negative", lambda t: {"data": (X, with_y(5, -1))}, ValueError, "target -1"),
    row("y-float-labels", lambda t: {"data": (X, Y.astype(float))}, DTypeError, "float64"),
    row("y-one-hot", lambda t: {"data": (X, np.eye(2, dtype=np.int64)[Y])}, ShapeError,
        "(20, 2)"),
    row("y-bad-label-in-last-mini-batch",
        lambda t: {"data": (X, with_y(19, 7)), "batch_size": 5, "shuffle": False}, ValueError,
        "target 7",
        bug="train/loop.py fit(): class labels are never checked against the model's outputs "
            "before training; with mini-batches the label 7 in row 19 is found by "
            "cross_entropy in the 4th batch, " + LATE + "three steps were taken"),
    # ------------------------------------------------------------------ settings
    *(
        row(f"batch_size={v!r}", lambda t, v=v: {"batch_size": v}, ConfigError, needle)
        for v, needle in [(0, "got 0"), (-1, "got -1"), (21, "batch_size 21 is larger than the"
                          " 20 training samples"), (2.5, "2.5"), ("4", "'4'"), (True, "True")]
    ),
    *(
        row(f"epochs={v!r}", lambda t, v=v: {"epochs": v}, ConfigError, needle)
        for v, needle in [(0, "got 0"), (-1, "-1"), (1.5, "1.5"), (NAN, "nan"), (True, "True"),
                          (None, "None")]
    ),
    row("checkpoint_every=0", lambda t: {"checkpoint_every": 0}, ConfigError, "checkpoint_every"),
    row("validate_every=0", lambda t: {"validate_every": 0}, ConfigError, "validate_every"),
    row("seed=1.5", lambda t: {"seed": 1.5}, TypeError, "float"),
    row("seed='a'", lambda t: {"seed": "a"}, TypeError, "str"),
    row("seed=-1", lambda t: {"seed": -1}, ValueError, "-1",
        bug="train/loop.py fit(seed=-1) -> backend.manual_seed: NumPy's raw ValueError "
            "'expected non-negative integer' escapes, naming neither seed nor -1"),
    row("stop-dict", lambda t: {"stop": {"max_steps": 1}}, TypeError, "dict"),
    row("optimizer-name", lambda t: {"optimizer": "sgd"}, TypeError, "str"),
    row("batch_size-with-batches", lambda t: {"data": [(X, Y)], "batch_size": 4}, ConfigError,
        "batch_size"),
    row("no-batches", lambda t: {"data": []}, DataError, "no batches"),
    row("callback-not-callable", lambda t: {"callbacks": [3]}, TypeError, "3",
        bug="train/loop.py fit(callbacks=[3]): callbacks are not checked up front; the raw "
            "TypeError \"'int' object is not callable\" comes at the end of the first epoch, "
            + LATE.rstrip(": ")),
    # ------------------------------------------------------------------ validation
    row("validation-not-a-pair", lambda t: {"validation": X}, DataError, "pair"),
    row("validation-nan", lambda t: {"validation": (with_x(7, 2, NAN), Y)}, DataError,
        "row 7, column 2"),
    row("validation-nan-says-validation", lambda t: {"validation": (with_x(7, 2, NAN), Y)},
        DataError, "validation",
        bug="train/loop.py fit(validation=...): the message 'X has NaN at row 7, column 2' "
            "does not say it is the validation X, though the training X is clean"),
    row("validation-y-short", lambda t: {"validation": (X, Y[:5])}, DataError, "but y has 5"),
    row("validation-label-out-of-range", lambda t: {"validation": (X, with_y(3, 5))},
        ValueError, "target 5",
        bug="train/loop.py fit(): validation labels are not checked before training; "
            "cross_entropy finds label 5 at the first evaluation, " + LATE.rstrip(": ")),
    row("validation-too-many-features",
        lambda t: {"validation": (np.ones((20, 5), np.float32), Y)}, ShapeError, "(20, 5)",
        bug="train/loop.py fit(): the validation X's feature count is not checked before "
            "training; the ShapeError comes at the first evaluation, " + LATE.rstrip(": ")),
    # ------------------------------------------------------------------ checkpoints
    row("checkpoint-is-a-directory", lambda t: {"checkpoint": t}, CheckpointError,
        "is a directory",
        bug="train/loop.py fit(checkpoint=DIR): the path is first looked at by save_checkpoint "
            "at the end of epoch 1, " + LATE + "a whole epoch of training is lost"),
    row("checkpoint-folder-missing", lambda t: {"checkpoint": t / "nope" / "run.npz"},
        CheckpointError, "does not exist",
        bug="train/loop.py fit(checkpoint=MISSING/run.npz): the folder is first looked at by "
            "save_checkpoint at the end of epoch 1, " + LATE.rstrip(": ")),
    row("resume-missing", lambda t: {"resume": t / "missing.npz"}, CheckpointError,
        "missing.npz"),
    row("resume-directory", lambda t: {"resume": t}, CheckpointError, "is a directory"),
    row("resume-empty-file", lambda t: {"resume": write(t, "empty.npz", b"")}, CheckpointError,
        "truncated or corrupted"),
    row("resume-garbage", lambda t: {"resume": write(t, "junk.npz", b"PK\x03\x04junk")},
        CheckpointError, "junk.npz"),
    row("resume-plain-npz", lambda t: {"resume": npz_without_metadata(t)}, CheckpointError,
        "not a descend checkpoint"),
    row("resume-other-architecture", lambda t: {"resume": checkpoint_of_other_model(t)},
        CheckpointError, "another model architecture"),
]


@pytest.mark.parametrize(("setup", "error", "needle"), FIT_CASES)
def test_fit_rejects_before_the_first_step(
    tmp_path: Path, setup: Setup, error: type, needle: str
) -> None:
    assert user_error(error)
    model = nn.mlp([3, 4, 2], rng=0)
    kwargs: dict[str, Any] = {"data": (X, Y), "epochs": 2, "progress": False}
    kwargs["optimizer"] = optim.GD(model.parameters(), lr=0.5)
    kwargs.update(setup(tmp_path))
    before = [p.data.copy() for p in model.parameters()]
    data, optimizer = kwargs.pop("data"), kwargs.pop("optimizer")
    with pytest.raises(error) as info:
        fit(model, nn.CrossEntropyLoss(), optimizer, data, **kwargs)
    assert needle in str(info.value), str(info.value)
    after = list(model.parameters())
    assert all(np.array_equal(b, p.data) for b, p in zip(before, after)), "parameters changed"


def test_resume_from_an_unreadable_file(tmp_path: Path) -> None:
    path = write(tmp_path, "locked.npz", b"whatever")
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("running with privileges that read a file with mode 000")
        model = nn.mlp([3, 4, 2], rng=0)
        with pytest.raises(CheckpointError, match=r"locked\.npz"):
            fit(model, nn.CrossEntropyLoss(), optim.GD(model.parameters()), (X, Y),
                resume=path, progress=False)
    finally:
        path.chmod(0o600)


STOP_WHEN = [
    ({"max_epochs": 0}, "max_epochs must be an int >= 1, got 0"),
    ({"max_steps": 0}, "got 0"),
    ({"max_steps": 1.5}, "1.5"),
    ({"max_steps": INF}, "inf"),
    ({"patience": 0}, "patience"),
    ({"patience": 2.5}, "2.5"),
    ({"loss_below": math.inf}, "inf"),  # a negative loss is a loss; an infinite bound is not
    ({"loss_below": NAN}, "nan"),
    ({"grad_norm_below": 0}, "grad_norm_below must be > 0, got 0"),
    ({"grad_norm_below": -1e-3}, "-0.001"),
    ({"rel_loss_change_below": "0.1"}, "'0.1'"),
    ({"param_change_below": True}, "True"),
    ({"time_limit": 0}, "time_limit"),
    ({"time_limit": -1}, "-1"),
    ({"time_limit": NAN}, "nan"),
]


@pytest.mark.parametrize(
    ("kwargs", "needle"), STOP_WHEN, ids=[f"{k}={v!r}" for c in STOP_WHEN for k, v in c[0].items()]
)
def test_stop_when_rejects(kwargs: dict, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        StopWhen(**kwargs)
    assert needle in str(info.value)
    assert next(iter(kwargs)) in str(info.value)


def test_history_to_csv_into_a_directory(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises((ValueError, OSError), match="out"):
        History().to_csv(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_an_optimizer_over_another_models_parameters_is_refused():
    X = np.zeros((8, 3), dtype=np.float32)
    y = np.zeros(8, dtype=np.int64)
    model, other = ds.nn.mlp([3, 2], rng=0), ds.nn.mlp([3, 2], rng=1)
    with pytest.raises(ConfigError, match="not the model's"):
        fit(model, ds.nn.CrossEntropyLoss(), ds.optim.GD(other.parameters(), lr=0.1), (X, y),
            epochs=1, progress=False)


def test_an_empty_batch_is_named_not_reported_as_divergence():
    X = np.ones((4, 3), dtype=np.float32)
    y = np.zeros(4, dtype=np.int64)
    model = ds.nn.mlp([3, 2], rng=0)
    batches = [(X, y), (X[:0], y[:0])]
    with pytest.raises(DataError, match="batch 1 of the data is empty"):
        fit(model, ds.nn.CrossEntropyLoss(), ds.optim.GD(model.parameters(), lr=0.1), batches,
            epochs=1, progress=False)
