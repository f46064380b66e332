"""The README's PyTorch line, as written, in a plain mini-batch loop, against torch's Adam.

A new user's loop: ``opt = descend.torch.recommended(model.parameters())`` (the README's
line; the script checks that README.md still has it) and ``opt.step(closure)`` per batch,
nothing else: no ``steps_per_epoch``, no learning rate. The model and data are
docs/pytorch.md's (docs/pytorch_cnn.py: two 3x3 convolutions with BatchNorm, max-pooling,
dropout 0.25, a linear layer; the 8x8 digits, 1,347 training and 450 validation images),
batch 64, 10 epochs, float32, one thread. The target: validation accuracy at
least ``torch.optim.Adam(lr=1e-3)``'s minus 0.5 points on every seed, the same seed giving
both the same split, initial weights and batch order. For reference the previous README
line, ``descend.torch.GD(model.parameters(), lr=Armijo())``, runs too.

Run::

    .venv/bin/python bench/plain_loop_cnn.py                 # seeds 0 1 2
    .venv/bin/python bench/plain_loop_cnn.py --seeds 6 7 8   # seeds nobody tuned on

Exit status 1 when the README line misses the target on a seed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "docs"))

from pytorch_cnn import accuracy, cnn, data

import descend.torch as dt
from descend.optim import Armijo

ROOT = Path(__file__).resolve().parent.parent
#: the README's PyTorch line, as README.md writes it
README_LINE = "descend.torch.recommended(model.parameters())"
EPOCHS, BATCH, MARGIN = 10, 64, 0.5

OPTIMIZERS: dict[str, Callable[[Any], Any]] = {
    "torch.optim.Adam(lr=1e-3)": lambda p: torch.optim.Adam(p, lr=1e-3),
    README_LINE: lambda p: dt.recommended(p),
    "descend.torch.GD(..., lr=Armijo()) (old line)": lambda p: dt.GD(p, lr=Armijo()),
}


def train(make: Callable[[Any], Any], seed: int) -> dict[str, float]:
    """10 epochs of a plain loop; validation accuracy (%), forward passes per step."""
    Xtr, ytr, Xva, yva = data(seed)
    torch.manual_seed(seed)
    model = cnn()
    opt = make(model.parameters())
    ours = isinstance(opt, dt.Optimizer)
    order = torch.Generator().manual_seed(seed)
    forward = steps = 0
    started = time.perf_counter()
    for _ in range(EPOCHS):
        perm = torch.randperm(len(Xtr), generator=order)
        for i in range(0, len(Xtr), BATCH):
            x, y = Xtr[perm[i:i + BATCH]], ytr[perm[i:i + BATCH]]
            if ours:  # the README's loop: the closure returns the loss, nothing else
                opt.step(lambda x=x, y=y: nn.functional.cross_entropy(model(x), y))
                forward += opt.last.evaluations
            else:
                opt.zero_grad()
                nn.functional.cross_entropy(model(x), y).backward()
                opt.step()
                forward += 1
            steps += 1
    return {"acc": 100 * accuracy(model, Xva, yva), "passes": forward / steps,
            "seconds": time.perf_counter() - started}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    readme = (ROOT / "README.md").read_text()
    if README_LINE not in readme:
        print(f"README.md no longer has {README_LINE!r}: update README_LINE", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    results = {name: [train(make, s) for s in args.seeds] for name, make in OPTIMIZERS.items()}
    adam = results["torch.optim.Adam(lr=1e-3)"]
    print(f"docs/pytorch.md's CNN, {EPOCHS} epochs, batch {BATCH}, plain loop; torch "
          f"{torch.__version__}, one thread; validation accuracy (%) per seed "
          f"{' '.join(map(str, args.seeds))}")
    print(f"{'optimizer':46s} {'per seed':>22s} {'mean':>6s} {'fwd/step':>8s} {'time':>6s}")
    for name, rows in results.items():
        accs = " ".join(f"{r['acc']:6.2f}" for r in rows)
        mean = sum(r["acc"] for r in rows) / len(rows)
        passes = sum(r["passes"] for r in rows) / len(rows)
        secs = sum(r["seconds"] for r in rows) / len(rows)
        print(f"{name:46s} {accs:>22s} {mean:6.2f} {passes:8.2f} {secs:5.1f}s")
    misses = [(s, r["acc"], a["acc"]) for s, r, a in zip(args.seeds, results[README_LINE], adam)
              if r["acc"] < a["acc"] - MARGIN]
    for seed, acc, base in misses:
        print(f"seed {seed}: {acc:.2f}% is below Adam's {base:.2f}% - {MARGIN} pt")
    print("target met on every seed" if not misses else "target missed")
    return 1 if misses else 0


if __name__ == "__main__":
    raise SystemExit(main())
