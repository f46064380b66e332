"""A LightningModule trained by a descend.torch line search under Lightning's automatic
optimisation (its closure zeroes the gradients and calls backward itself). In the slow
suite: importing pytorch_lightning takes about 8 s; test_loops.py's closures that call
backward themselves are the fast twin."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

import descend.torch as dt
from descend.optim import Armijo

pytestmark = pytest.mark.slow

STEPS = 4


def _data() -> torch.utils.data.TensorDataset:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 6, generator=g, dtype=torch.float64)
    return torch.utils.data.TensorDataset(x, (x[:, :3] @ torch.ones(3, dtype=torch.float64)
                                              > 0).long())


def _classifier_class(pl):
    """The LightningModule (defined once pytorch_lightning is imported, in the test)."""

    class Classifier(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.net = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 2)).double()
            self.losses: list[float] = []

        def training_step(self, batch, batch_idx):
            x, y = batch
            return nn.functional.cross_entropy(self.net(x), y)

        def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
            # the step's loss (Lightning's outputs hold the closure's last call: a trial's)
            self.losses.append(self.trainer.optimizers[0].last.loss)

        def configure_optimizers(self):
            return dt.GD(self.parameters(), lr=Armijo(c1=0.1))

    return Classifier


def test_lightning_automatic_optimisation_equals_a_plain_loop():
    pl = pytest.importorskip("pytorch_lightning")
    Classifier = _classifier_class(pl)
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    data = _data()
    module = Classifier()
    trainer = pl.Trainer(max_steps=STEPS, accelerator="cpu", devices=1, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(module, torch.utils.data.DataLoader(data, batch_size=16, shuffle=False))
    opt = trainer.optimizers[0]
    assert opt.t == STEPS and opt.last.closure_backward
    assert module.losses[-1] < module.losses[0]

    plain = Classifier()
    mine = dt.GD(plain.parameters(), lr=Armijo(c1=0.1))
    losses = []
    for x, y in list(torch.utils.data.DataLoader(data, batch_size=16))[:STEPS]:
        losses.append(mine.step(lambda x=x, y=y: nn.functional.cross_entropy(plain.net(x), y))
                      .item())
    assert module.losses == pytest.approx(losses, rel=1e-15)
    for a, b in zip(module.parameters(), plain.parameters()):
        torch.testing.assert_close(a.detach(), b.detach(), rtol=1e-14, atol=1e-15)
