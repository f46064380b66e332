"""Soak test: 200 epochs of mini-batch training with a checkpoint written every epoch.

Run with ``make test-slow`` (``pytest -m slow``); the default ``make test`` leaves it out.

Two things must hold over a long run:

- **Memory stays flat.** A callback records the resident set size (RSS, the pages of the
  process actually in RAM, read from ``/proc/self/statm``) after every epoch. Once the first
  epochs have warmed everything up (imports, NumPy's and the allocator's pools, the
  optimizer's double buffers, the first checkpoint writes), RSS after epoch 200 must be
  within ``max(5 % of RSS after epoch 20, 10 MB)`` of RSS after epoch 20 (either way: a large
  drop would mean the measurement is off). What legitimately grows is small: the History
  keeps a few floats per step (about 4,600 steps here, about 1 MB as Python floats) and one
  record per epoch. The 10 MB floor absorbs allocator noise (glibc arenas and fragmentation
  move RSS by a few MB in either direction, and 5 % of a ~100 MB process is only ~5 MB). A
  real leak is far larger: keeping one step's graph alive (activations of a 64-sample batch,
  gradients, the optimizer's buffers: tens of KB) for each of ~4,600 steps would add hundreds
  of MB, and keeping each reloaded checkpoint (its arrays and its history, 0.1 to 0.3 MB)
  would add tens of MB. (Checked by hand: holding 20 KB more per step fails this test with
  +81 MB.)
- **Every checkpoint is complete.** The callback reloads the checkpoint after every epoch
  with ``load_checkpoint``. Callbacks run before that epoch's checkpoint is written, so the
  file then holds the previous epoch: its epoch counter must equal the epochs completed
  before this one, its history must hold exactly that many epoch records, and its parameters
  must be finite and bit-equal to the model's parameters at that epoch boundary (recorded by
  the previous callback call). After ``fit`` returns, the final file holds epoch 200.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from descend import nn, optim
from descend.data import Standardizer, load_digits, train_val_split
from descend.train import Callback, History, fit
from descend.train.checkpoint import load_checkpoint

EPOCHS = 200
BATCH = 64
WARM_EPOCH = 20
RELATIVE_SLACK = 0.05
ABSOLUTE_SLACK = 10 * 2**20  # bytes


def resident_bytes() -> int:
    """Current RSS: the second field of /proc/self/statm, in pages."""
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


class SoakMonitor(Callback):
    """Records RSS and reloads the checkpoint after every epoch."""

    def __init__(self, path: Path):
        self.path = path
        self.rss: list[int] = []
        self.reloads = 0
        self.previous_state: dict[str, np.ndarray] | None = None

    def on_epoch_end(self, history: History, model: Any) -> None:
        done_before = len(history.epochs) - 1  # epochs finished before the current one
        if done_before > 0:
            check_checkpoint(load_checkpoint(self.path), done_before, self.previous_state)
            self.reloads += 1
        self.previous_state = model.state_dict()
        self.rss.append(resident_bytes())


def check_checkpoint(state: dict[str, Any], epochs: int,
                     expected: dict[str, np.ndarray] | None) -> None:
    assert state["epoch"] == epochs
    assert state["steps_in_epoch"] == 0
    assert len(state["history"]["epochs"]) == epochs
    params = state["model"]
    assert params, "no parameters in the checkpoint"
    for name, value in params.items():
        assert np.isfinite(value).all(), f"{name} is not finite at epoch {epochs}"
        if expected is not None:
            assert np.array_equal(value, expected[name]), f"{name} differs at epoch {epochs}"


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc")
def test_long_run_memory_is_flat_and_every_checkpoint_reloads(tmp_path: Path) -> None:
    # The command line's default recipe, small: digits, an MLP with dropout (its random
    # generator is saved in every checkpoint), the stochastic Armijo line search (trial
    # forward passes every step), validation after every epoch.
    train, val = train_val_split(load_digits(), 0.2, seed=0)
    scaler = Standardizer().fit(train.X)
    X, Xv = scaler.transform(train.X), scaler.transform(val.X)
    model = nn.mlp([64, 32, 10], dropout=0.1, rng=0)
    opt = optim.GD(model.parameters(), lr=optim.Armijo(c1=0.1, shrink=0.9))
    path = tmp_path / "soak.npz"
    monitor = SoakMonitor(path)

    started = time.perf_counter()
    history = fit(model, nn.CrossEntropyLoss(), opt, (X, train.y), epochs=EPOCHS,
                  batch_size=BATCH, seed=0, validation=(Xv, val.y), progress=False,
                  checkpoint=path, checkpoint_every=1, callbacks=[monitor])
    seconds = time.perf_counter() - started

    assert history.stop_reason is not None and history.stop_reason.criterion == "epochs"
    assert len(history.epochs) == EPOCHS
    final = load_checkpoint(path)
    check_checkpoint(final, EPOCHS, model.state_dict())
    assert monitor.reloads == EPOCHS - 1  # every epoch's file but the last, reloaded above

    warm, last = monitor.rss[WARM_EPOCH - 1], monitor.rss[-1]
    slack = max(RELATIVE_SLACK * warm, ABSOLUTE_SLACK)
    mb = 2**20
    print(
        f"\nsoak: {EPOCHS} epochs, {history.steps} steps in {seconds:.1f} s; RSS after epoch 1 "
        f"{monitor.rss[0] / mb:.1f} MB, epoch {WARM_EPOCH} {warm / mb:.1f} MB, epoch {EPOCHS} "
        f"{last / mb:.1f} MB (growth {(last - warm) / mb:+.2f} MB, allowed {slack / mb:.1f} MB), "
        f"peak {max(monitor.rss) / mb:.1f} MB; final loss {history.epochs[-1].train_loss:.4g}, "
        f"validation accuracy {history.epochs[-1].val_accuracy:.3f}"
    )
    assert abs(last - warm) <= slack, (
        f"RSS moved by {(last - warm) / mb:+.1f} MB between epoch {WARM_EPOCH} and {EPOCHS} "
        f"(allowed {slack / mb:.1f} MB)"
    )
    assert history.epochs[-1].train_loss < history.epochs[0].train_loss
    assert history.epochs[-1].val_accuracy is not None and history.epochs[-1].val_accuracy > 0.9
