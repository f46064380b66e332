"""The loop's own structure: the optimizer's steps per epoch are written once per run, by
the loop, through one checked property; a run's fields all exist from its construction."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import descend as ds
from descend.errors import ConfigError
from descend.optim import GD, Optimizer
from descend.train import StopWhen, fit, loop, minimize, train_steps


class Recording(GD):
    """GD that records every write of ``steps_per_epoch``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.writes: list[int | None] = []
        super().__init__(*args, **kwargs)

    @property
    def steps_per_epoch(self) -> int | None:
        return Optimizer.steps_per_epoch.fget(self)

    @steps_per_epoch.setter
    def steps_per_epoch(self, value: int | None) -> None:
        self.writes.append(value)
        Optimizer.steps_per_epoch.fset(self, value)


def _data(n: int = 30) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, 3)).astype(np.float32)
    return X, (X[:, 0] > 0).astype(np.int64)


@pytest.mark.parametrize("batch_size,per_epoch", [(None, 1), (8, 4), (30, 1)])
def test_fit_writes_the_steps_per_epoch_once(batch_size: int | None, per_epoch: int) -> None:
    model = ds.nn.Linear(3, 2, rng=0)
    opt = Recording(model.parameters(), lr=0.1)
    fit(model, ds.nn.CrossEntropyLoss(), opt, _data(), epochs=3, batch_size=batch_size,
        progress=False)
    assert opt.writes == [per_epoch]


def test_minimize_and_train_steps_write_it_once() -> None:
    x = ds.tensor(np.array([3.0]), requires_grad=True)
    opt = Recording([x], lr=0.1)
    minimize(lambda: (x * x).sum(), opt, stop=StopWhen(max_steps=5))
    assert opt.writes == [1]

    opt = Recording([x], lr=0.1)
    train_steps(opt, lambda: [(lambda: (x * x).sum(), 1)] * 3, epochs=2, steps_per_epoch=3)
    assert opt.writes == [3]


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "4"])
def test_steps_per_epoch_is_none_or_a_positive_int(bad: Any) -> None:
    opt = GD([ds.tensor(np.ones(2), requires_grad=True)], lr=0.1)
    assert opt.steps_per_epoch is None
    opt.steps_per_epoch = np.int64(7)
    assert opt.steps_per_epoch == 7 and type(opt.steps_per_epoch) is int
    with pytest.raises(ConfigError, match="steps_per_epoch"):
        opt.steps_per_epoch = bad
    assert opt.steps_per_epoch == 7
    opt.steps_per_epoch = None
    assert opt.steps_per_epoch is None


def test_a_run_has_every_field_from_its_construction(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Any) -> None:
    seen: dict[str, set[str]] = {}
    train = loop._Run.train

    def watched(self: Any, *args: Any, **kwargs: Any) -> Any:
        seen["constructed"] = set(vars(self))
        try:
            return train(self, *args, **kwargs)
        finally:
            seen["trained"] = set(vars(self))

    monkeypatch.setattr(loop._Run, "train", watched)
    model = ds.nn.Linear(3, 2, rng=0)
    X, y = _data()
    fit(model, ds.nn.CrossEntropyLoss(), GD(model.parameters(), lr=0.1), (X, y), epochs=2,
        batch_size=8, validation=(X, y), checkpoint=tmp_path / "c.npz", keep_best=True,
        stop=StopWhen(time_limit=60.0), progress=False)
    assert seen["trained"] == seen["constructed"]
