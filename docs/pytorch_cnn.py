"""A CNN with BatchNorm and dropout on the digits, trained through PyTorch: descend's
recommendation (``descend.torch.recommended``: Adam's direction with SaLSA's search) in a
plain loop, descend's stochastic line search (``descend.torch.GD(lr=Armijo(c1=0.1))``), no
learning rate to choose for either, ``torch.optim.Adam`` at its default learning rate, and
``torch.optim.SGD`` with its learning rate tuned on a grid by validation accuracy.

Run: ``.venv/bin/python docs/pytorch_cnn.py`` (seconds on one CPU core); the numbers
in docs/pytorch.md come from it. ``--epochs`` and ``--seed`` change the run.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch import nn

import descend as ds
import descend.torch as dt
from descend.optim import Armijo

GRID = (0.01, 0.03, 0.1, 0.3, 1.0)


def cnn() -> nn.Module:
    """Conv(1->16) -> BatchNorm -> ReLU -> Conv(16->32) -> BatchNorm -> ReLU -> MaxPool ->
    Dropout(0.25) -> Linear(512 -> 10) on 8x8 images."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Dropout(0.25), nn.Flatten(), nn.Linear(32 * 4 * 4, 10),
    )


def data(seed: int):
    digits = ds.data.load_digits()
    train, val = ds.data.train_val_split(digits, 0.25, seed=seed)
    def images(X):
        return torch.from_numpy((X / 16.0).astype(np.float32).reshape(-1, 1, 8, 8))
    return (images(train.X), torch.from_numpy(train.y.astype(np.int64)),
            images(val.X), torch.from_numpy(val.y.astype(np.int64)))


def accuracy(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        acc = (model(X).argmax(1) == y).float().mean().item()
    model.train()
    return acc


def train(make_opt, epochs: int, seed: int, batch: int = 64, per_epoch: bool = True) -> dict:
    Xtr, ytr, Xva, yva = data(seed)
    torch.manual_seed(seed)
    model = cnn()
    opt = make_opt(model.parameters())
    sls = isinstance(opt, dt.Optimizer)
    if sls and per_epoch:
        opt.steps_per_epoch = -(-len(Xtr) // batch)
    loss_fn = nn.functional.cross_entropy
    order = torch.Generator().manual_seed(seed)
    forward, steps, started = 0, 0, time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(len(Xtr), generator=order)
        total = 0.0
        for i in range(0, len(Xtr), batch):
            x, y = Xtr[perm[i:i + batch]], ytr[perm[i:i + batch]]
            if sls:
                loss = opt.step(lambda x=x, y=y: loss_fn(model(x), y))
                forward += opt.last.evaluations
            else:
                opt.zero_grad()
                loss = loss_fn(model(x), y)
                loss.backward()
                opt.step()
                forward += 1
            total += loss.item() * len(x)
            steps += 1
    return {"train_loss": total / len(Xtr), "val_acc": accuracy(model, Xva, yva),
            "seconds": time.perf_counter() - started, "passes": forward / steps,
            "lr": opt.last.lr if sls else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for lr in GRID:
        r = train(lambda p, lr=lr: torch.optim.SGD(p, lr=lr), args.epochs,
                  args.seed)
        rows.append((f"torch.optim.SGD(lr={lr:g})", r))
    best = max(rows, key=lambda row: row[1]["val_acc"])
    r = train(lambda p: torch.optim.Adam(p, lr=1e-3), args.epochs, args.seed)
    rows.append(("torch.optim.Adam(lr=1e-3)", r))
    r = train(lambda p: dt.GD(p, lr=Armijo(c1=0.1)), args.epochs, args.seed)
    rows.append(("descend.torch.GD(lr=Armijo(c1=0.1))", r))
    r = train(dt.recommended, args.epochs, args.seed, per_epoch=False)  # a plain loop
    rows.append(("descend.torch.recommended(params)", r))
    print(f"{'optimizer':44s} {'train loss':>10s} {'val acc':>8s} {'passes/step':>11s} "
          f"{'time':>6s}")
    for name, r in rows:
        mark = "  <- best SGD rate" if (name, r) == best else ""
        print(f"{name:44s} {r['train_loss']:10.4f} {100 * r['val_acc']:7.2f}% "
              f"{r['passes']:11.2f} {r['seconds']:5.1f}s{mark}")
    print(f"last step size of the line search: {rows[-2][1]['lr']:.3g}; of the "
          f"recommendation: {rows[-1][1]['lr']:.3g}")


if __name__ == "__main__":
    main()
