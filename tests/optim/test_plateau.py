"""ReduceOnPlateau: the step size follows a metric, fed by fit (validation loss, else the
training loss), as PyTorch's ReduceLROnPlateau in mode "min" with a relative threshold."""

from __future__ import annotations

import math

import numpy as np
import pytest

from descend import nn, optim
from descend.errors import ConfigError
from descend.optim import ReduceOnPlateau, parse_step_rule
from descend.optim.rules import StepContext
from descend.train import fit


def _ctx() -> StepContext:
    return StepContext(0, 1.0, 1.0, 1.0, -1.0)


def test_reduces_after_patience_epochs_without_relative_improvement():
    rule = ReduceOnPlateau(1.0, factor=0.5, patience=2, threshold=0.1)
    # 10 improves (first value); 9.5 is not 10% below 10; nor 9.2; 9.3 is the third bad
    # epoch in a row: more than patience = 2, so the step halves
    values = [rule.observe(m) for m in (10.0, 9.5, 9.2, 9.3)]
    assert values == [1.0, 1.0, 1.0, 0.5]
    assert rule(_ctx()).lr == 0.5 and rule.reductions == 1
    assert rule.observe(8.0) == 0.5 and rule.best == 8.0  # 8 < 10 * 0.9: improvement


def test_non_finite_metric_is_never_an_improvement_and_min_lr_holds():
    rule = ReduceOnPlateau(1.0, factor=0.1, patience=0, min_lr=0.05)
    rule.observe(1.0)
    assert rule.observe(math.nan) == pytest.approx(0.1)
    assert rule.observe(math.inf) == 0.05
    assert rule.observe(2.0) == 0.05 and rule.reductions == 2


def test_state_round_trip():
    rule = ReduceOnPlateau(0.3, patience=1)
    for m in (1.0, 1.0, 1.0):
        rule.observe(m)
    other = ReduceOnPlateau(0.3, patience=1)
    other.load_state_dict(rule.state_dict())
    assert other.state_dict() == rule.state_dict() and other.value == pytest.approx(0.03)


@pytest.mark.parametrize("kwargs, word", [
    ({"lr": 0.0}, "lr"), ({"lr": 1.0, "factor": 1.0}, "factor"),
    ({"lr": 1.0, "patience": -1}, "patience"), ({"lr": 1.0, "threshold": -1e-4}, "threshold"),
    ({"lr": 1.0, "min_lr": 2.0}, "min_lr"),
])
def test_bad_arguments_are_named(kwargs, word):
    with pytest.raises(ConfigError, match=word):
        ReduceOnPlateau(**kwargs)


def test_parsed_from_a_string():
    rule = parse_step_rule("plateau:0.5:0.2:3")
    assert isinstance(rule, ReduceOnPlateau)
    assert (rule.value, rule.factor, rule.patience) == (0.5, 0.2, 3)


def _data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3)).astype(np.float32)
    y = (X[:, 0] - X[:, 1] > 0).astype(np.int64)
    return X, y


class _Recorder(ReduceOnPlateau):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seen: list[float] = []

    def observe(self, metric: float) -> float:
        self.seen.append(metric)
        return super().observe(metric)


@pytest.mark.parametrize("validation", [False, True])
def test_fit_feeds_the_validation_loss_else_the_training_loss(validation):
    X, y = _data()
    Xv, yv = _data(32, seed=1)
    model = nn.mlp([3, 8, 2], rng=0)
    rule = _Recorder(0.5, factor=0.5, patience=1)
    opt = optim.GD(model.parameters(), lr=rule)
    history = fit(model, nn.CrossEntropyLoss(), opt, (X, y), epochs=6, batch_size=16,
                  progress=False, validation=(Xv, yv) if validation else None)
    want = [e.val_loss if validation else e.train_loss for e in history.epochs]
    assert rule.seen == want and len(want) == 6
    # every step of epoch e used the step size in force after epoch e - 1's metric
    per_epoch = len(history.lr) // 6
    replay = ReduceOnPlateau(0.5, factor=0.5, patience=1)
    for e, metric in enumerate(want):
        assert set(history.lr[e * per_epoch:(e + 1) * per_epoch]) == {replay.value}
        replay.observe(metric)
