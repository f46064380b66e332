"""train/checkpoint.py's typed run state: what fit writes is a RunState, read back typed and
checked; restoring it is all or nothing."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

import descend as ds
from descend.errors import CheckpointError
from descend.train import History, StopReason, fit
from descend.train.checkpoint import (
    TRAINING_FIELDS,
    RunState,
    load_checkpoint,
    module_rngs,
    restore_run,
    skip_done,
)


def _data(n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, 4)).astype(np.float32)
    return X, (X[:, 0] > 0).astype(np.int64)


def _model() -> ds.nn.Module:
    return ds.nn.Sequential(ds.nn.Linear(4, 8, rng=1), ds.nn.ReLU(),
                            ds.nn.Dropout(0.2, rng=5), ds.nn.Linear(8, 2, rng=2))


@pytest.fixture
def written(tmp_path: Path) -> Path:
    model = _model()
    fit(model, ds.nn.CrossEntropyLoss(), ds.optim.GD(model.parameters(), lr=0.1, momentum=0.9),
        _data(), epochs=2, batch_size=16, seed=4, progress=False,
        checkpoint=tmp_path / "run.npz", config={"note": "kept"})
    return tmp_path / "run.npz"


def test_the_checkpoint_fields_are_the_records(written: Path) -> None:
    assert TRAINING_FIELDS == tuple(f.name for f in fields(RunState))
    payload = load_checkpoint(written)
    assert tuple(payload) == TRAINING_FIELDS  # written in the record's order


def test_a_run_state_reads_back_typed(written: Path) -> None:
    state = RunState.read(written)
    assert (state.epoch, state.steps_in_epoch, state.seed) == (2, 0, 4)
    assert isinstance(state.history, History) and len(state.history.epochs) == 2
    assert state.optimizer_type == "GD" and state.config == {"note": "kept"}
    assert set(state.module_rngs) == {"2"}  # the seeded Dropout, by module name
    assert state.epoch_rng["bit_generator"] == "PCG64"


def test_a_run_state_saved_again_reads_back_the_same(written: Path, tmp_path: Path) -> None:
    state = RunState.read(written)
    again = RunState.read(state.save(tmp_path / "again.npz"))
    for f in fields(RunState):
        if f.name in ("history", "model", "optimizer"):
            continue
        assert getattr(again, f.name) == getattr(state, f.name), f.name
    assert again.optimizer["t"] == state.optimizer["t"]
    for got, want in zip(again.optimizer["direction"]["buffers"],
                         state.optimizer["direction"]["buffers"], strict=True):
        np.testing.assert_array_equal(got, want)
    assert again.history.loss == state.history.loss
    assert again.history.epochs == state.history.epochs
    for name, array in state.model.items():
        np.testing.assert_array_equal(again.model[name], array)


def test_restore_run_loads_everything_and_clears_the_stop_reason(written: Path,
                                                                  tmp_path: Path) -> None:
    saved = RunState.read(written)
    saved.history.stop_reason = StopReason("loss_below", "loss 0.1 < 0.2", 7, 1, 0.1, 0.2)
    stopped = saved.save(tmp_path / "stopped.npz")
    model = _model()
    opt = ds.optim.GD(model.parameters(), lr=0.1, momentum=0.9)
    shuffle = np.random.default_rng(123)
    state = restore_run(stopped, model, opt, shuffle)
    assert RunState.read(stopped).history.stop_reason == saved.history.stop_reason
    assert state.history.stop_reason is None  # the run goes on
    for name, array in model.state_dict().items():
        np.testing.assert_array_equal(array, saved.model[name])
    assert shuffle.bit_generator.state == saved.epoch_rng
    assert module_rngs(model)["2"].bit_generator.state == saved.module_rngs["2"]
    assert opt.state_dict()["t"] == saved.optimizer["t"]


def test_restore_run_into_another_optimizer_changes_nothing(written: Path) -> None:
    model = _model()
    before = {k: v.copy() for k, v in model.state_dict().items()}
    opt = ds.optim.Adam(model.parameters(), lr=0.01)
    with pytest.raises(CheckpointError, match="GD optimizer, not Adam"):
        restore_run(written, model, opt, np.random.default_rng(0))
    for name, array in model.state_dict().items():
        np.testing.assert_array_equal(array, before[name])
    assert opt.state_dict()["t"] == 0


def test_skip_done_drops_the_steps_taken_and_refuses_too_many() -> None:
    batches = iter(range(5))
    skip_done(batches, 2, 5, epoch=0)
    assert list(batches) == [2, 3, 4]
    with pytest.raises(CheckpointError, match="has 5 steps"):
        skip_done(iter(range(5)), 6, 5, epoch=1)
    with pytest.raises(CheckpointError, match="fewer batches"):
        skip_done(iter(range(2)), 3, None, epoch=1)
