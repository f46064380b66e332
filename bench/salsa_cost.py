"""The per-step cost of SaLSA's search (``descend.optim.SmoothedArmijo`` over Adam's
direction) against plain Adam, on a small torch model.

The model is docs/pytorch.md's CNN (two 3x3 convolutions with BatchNorm, max-pooling,
dropout 0.25, a linear layer) on the 8x8 digits, batch 64, float32, one thread. Every
optimizer runs the same ``--steps`` mini-batches (drawn with replacement, seeded) from the
same initial weights; rounds alternate the optimizers' order. Per optimizer: forward and
backward passes per step, CPU time per step (``time.process_time``: what the process
itself spent, so a busy machine inflates it less than wall time) and wall time, over the
whole run and over its second half (once the search's checks have thinned out), and the
ratio to ``torch.optim.Adam(lr=1e-3)``'s time, paired within each round (median over
rounds). The compute ratio counts a backward pass as two forward passes.

Run::

    .venv/bin/python bench/salsa_cost.py                  # 3 rounds of 2000 steps
    .venv/bin/python bench/salsa_cost.py --rounds 1 --steps 300   # quick
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "docs"))

from pytorch_cnn import cnn, data

import descend.torch as dt
from descend.optim import SmoothedArmijo

try:  # the authors' implementation (the test extra installs it)
    from salsa.SaLSA import SaLSA
except ImportError:  # pragma: no cover
    SaLSA = None

OPTIMIZERS: dict[str, Callable[[Any], Any]] = {
    "torch Adam(1e-3)": lambda p: torch.optim.Adam(p, lr=1e-3),
    "descend.torch Adam(1e-3)": lambda p: dt.Adam(p, lr=1e-3),
    "dt.recommended()": lambda p: dt.recommended(p),
    "Adam + SmoothedArmijo()": lambda p: dt.Adam(p, lr=SmoothedArmijo()),
    "Adam + SmoothedArmijo(adaptive, 9)": lambda p: dt.Adam(
        p, lr=SmoothedArmijo(adaptive=True, warmup=9)),
}
if SaLSA is not None:
    OPTIMIZERS["authors' SaLSA"] = lambda p: SaLSA(p)


def run(name: str, steps: int, seed: int = 0) -> dict[str, float]:
    """``steps`` steps of one optimizer; passes and times, whole run and second half."""
    Xtr, ytr, _, _ = data(seed)
    torch.manual_seed(seed)
    model = cnn()
    opt = OPTIMIZERS[name](list(model.parameters()))
    draw = torch.Generator().manual_seed(seed)
    loss_fn = nn.functional.cross_entropy
    forward = backward = 0
    cpu, wall = np.zeros(steps), np.zeros(steps)
    for k in range(steps):
        idx = torch.randint(0, len(Xtr), (64,), generator=draw)
        x, y = Xtr[idx], ytr[idx]
        c0, w0 = time.process_time(), time.perf_counter()
        if isinstance(opt, dt.Optimizer):
            opt.step(lambda x=x, y=y: loss_fn(model(x), y))
            forward += opt.last.evaluations
            backward += opt.last.gradient_evaluations
        elif SaLSA is not None and isinstance(opt, SaLSA):
            def closure(backwards: bool = False, x=x, y=y) -> torch.Tensor:
                opt.zero_grad()
                loss = loss_fn(model(x), y)
                if backwards:
                    loss.backward()
                return loss
            opt.step(closure)
        else:
            opt.zero_grad()
            loss_fn(model(x), y).backward()
            opt.step()
            forward += 1
            backward += 1
        cpu[k], wall[k] = time.process_time() - c0, time.perf_counter() - w0
    if SaLSA is not None and isinstance(opt, SaLSA):
        forward, backward = opt.state["n_forwards"], opt.state["n_backwards"]
    half = steps // 2
    return {"forward": forward / steps, "backward": backward / steps,
            "cpu": cpu.mean() * 1e3, "wall": wall.mean() * 1e3,
            "cpu_late": cpu[half:].mean() * 1e3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=2000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    names = list(OPTIMIZERS)
    results: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    for r in range(args.rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            results[name].append(run(name, args.steps))
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    base = results[names[0]]
    print(f"docs/pytorch.md's CNN on the digits, batch 64, {args.steps} steps, "
          f"{args.rounds} rounds; torch {torch.__version__}, one thread")
    print(f"{'optimizer':36s} {'fwd/step':>8s} {'bwd/step':>8s} {'compute':>8s} "
          f"{'cpu ms':>7s} {'x Adam':>7s} {'late x':>7s} {'wall ms':>8s}")
    for name in names:
        rows = results[name]
        fwd = statistics.median(r["forward"] for r in rows)
        bwd = statistics.median(r["backward"] for r in rows)
        ratio = statistics.median(r["cpu"] / b["cpu"] for r, b in zip(rows, base))
        late = statistics.median(r["cpu_late"] / b["cpu_late"] for r, b in zip(rows, base))
        print(f"{name:36s} {fwd:8.3f} {bwd:8.3f} {(fwd + 2 * bwd) / 3:8.3f} "
              f"{statistics.median(r['cpu'] for r in rows):7.2f} {ratio:7.3f} {late:7.3f} "
              f"{statistics.median(r['wall'] for r in rows):8.2f}")


if __name__ == "__main__":
    main()
