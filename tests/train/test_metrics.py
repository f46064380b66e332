"""train/metrics.py: evaluation mode, the training-accuracy tally, the epoch's record, and
the metric told to the step rules that a metric drives (the MetricObserver protocol)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import descend as ds
from descend.optim.rules.base import MetricObserver, Needs, StepChoice, StepContext
from descend.train import fit
from descend.train.history import EpochRecord, History
from descend.train.metrics import (
    ModeSwitching,
    Tally,
    epoch_record,
    evaluate,
    evaluation_mode,
    tell_rules,
)


def _blobs(n: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = (rng.standard_normal((n, 2)) + 2.0 * y[:, None]).astype(np.float32)
    return X, y.astype(np.int64)


# ------------------------------------------------------------------ evaluation mode
@pytest.mark.parametrize("training", [True, False])
def test_evaluation_mode_switches_and_puts_back(training: bool) -> None:
    model = ds.nn.Sequential(ds.nn.Linear(2, 2, rng=0), ds.nn.Dropout(0.5, rng=1))
    model.train(training)
    assert isinstance(model, ModeSwitching)
    with evaluation_mode(model):
        assert not model.training
    assert model.training is training


def test_evaluation_mode_puts_training_back_when_the_block_raises() -> None:
    model = ds.nn.Linear(2, 2, rng=0)
    model.train()
    with pytest.raises(RuntimeError), evaluation_mode(model):
        raise RuntimeError("inside")
    assert model.training


def test_a_model_without_modes_is_left_alone() -> None:
    W = ds.tensor(np.eye(2, dtype=np.float32))

    def model(x: Any) -> Any:
        return x @ W

    assert not isinstance(model, ModeSwitching)
    X, y = _blobs()
    metrics = evaluate(model, ds.nn.CrossEntropyLoss(), X, y)
    assert set(metrics) == {"loss", "accuracy"} and math.isfinite(metrics["loss"])


def test_evaluate_restores_training_mode_and_averages_over_batches() -> None:
    X, y = _blobs(n=50)
    model = ds.nn.Linear(2, 2, rng=3)
    model.train()
    whole = evaluate(model, ds.nn.CrossEntropyLoss(), X, y)
    pieces = evaluate(model, ds.nn.CrossEntropyLoss(), X, y, batch_size=7)
    assert model.training
    assert pieces["accuracy"] == whole["accuracy"]
    assert pieces["loss"] == pytest.approx(whole["loss"], rel=1e-6)


# ------------------------------------------------------------------ tally and record
def test_tally_counts_only_armed_steps_and_starts_a_new_epoch() -> None:
    tally = Tally()
    out = np.array([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]])
    y = np.array([0, 1, 1])
    tally.armed = True
    tally.count(out, y)  # 2 of 3 right
    assert not tally.armed
    assert tally.take() == pytest.approx(2 / 3)
    assert tally.take() is None  # nothing counted since


def test_epoch_record_means_the_finite_losses_of_its_steps() -> None:
    h = History()
    for loss, lr in [(9.0, 0.1), (1.0, 0.2), (math.inf, 0.3), (3.0, 0.4)]:
        h.record_step(loss, lr, 1.0, 1, 0.1)
    record = epoch_record(h, epoch=1, first=1, seconds=2.0)
    assert (record.epoch, record.step, record.lr, record.seconds) == (1, 3, 0.4, 2.0)
    assert record.train_loss == 2.0  # mean of 1 and 3; inf left out


def test_the_epoch_metric_is_the_validation_loss_else_the_training_loss() -> None:
    record = EpochRecord(epoch=0, step=3, train_loss=2.0)
    assert record.metric == 2.0
    record.set_validation({"loss": 1.5, "accuracy": None})
    assert record.metric == 1.5 and record.val_accuracy is None
    record.set_validation({"loss": 1.25, "accuracy": 0.75})
    assert (record.val_loss, record.val_accuracy) == (1.25, 0.75)


# ------------------------------------------------------------------ metric-driven rules
class Told:
    """A step rule that is told the metric: no base class, only the protocol's method."""

    needs = Needs.NOTHING

    def __init__(self) -> None:
        self.metrics: list[float] = []

    def __call__(self, ctx: StepContext) -> StepChoice:
        return StepChoice(0.1)

    def observe(self, metric: float) -> float:
        self.metrics.append(metric)
        return 0.1

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


def test_metric_observer_is_the_declared_protocol() -> None:
    assert isinstance(ds.optim.ReduceOnPlateau(0.1), MetricObserver)
    assert isinstance(Told(), MetricObserver)
    assert not isinstance(ds.optim.Armijo(), MetricObserver)
    assert not isinstance(ds.optim.Constant(0.1), MetricObserver)


def test_a_rule_shared_by_two_groups_is_told_once() -> None:
    rule = Told()
    a = ds.tensor(np.ones(2), requires_grad=True)
    b = ds.tensor(np.ones(3), requires_grad=True)
    opt = ds.optim.GD([{"params": [a]}, {"params": [b]}], lr=rule)
    tell_rules(opt, 0.5)
    assert rule.metrics == [0.5]


def test_fit_tells_an_observer_each_epoch_the_validation_loss() -> None:
    X, y = _blobs()
    Xv, yv = _blobs(n=20, seed=1)
    model = ds.nn.Linear(2, 2, rng=0)
    rule = Told()
    h = fit(model, ds.nn.CrossEntropyLoss(), ds.optim.GD(model.parameters(), lr=rule), (X, y),
            epochs=3, batch_size=10, validation=(Xv, yv), progress=False)
    assert rule.metrics == [e.val_loss for e in h.epochs]
