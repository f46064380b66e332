"""One rank of the distributed test (run as a script by test_distributed.py), and the
pieces both the ranks and the single-process reference share."""

from __future__ import annotations

import argparse
import os
import sys

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

import descend.torch as dt
from descend import optim

STEPS = 10
BATCH = 32  # split in two halves of 16 across the two ranks

CASES = {
    "armijo-momentum": lambda p: dt.GD(p, lr=optim.Armijo(c1=0.1, alpha0=4.0), momentum=0.5),
    "strong-wolfe": lambda p: dt.GD(p, lr=optim.StrongWolfe()),
    # DDP writes every backward pass into the same gradient buffers here: the trials'
    # backward passes must not overwrite the step's gradient
    "strong-wolfe-bucket-view": lambda p: dt.GD(p, lr=optim.StrongWolfe()),
    "sps": lambda p: dt.GD(p, lr=optim.Polyak(c=0.5, max_lr=0.1)),
    "adam": lambda p: dt.Adam(p, lr=0.01),
}


def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.Tanh(),
                               torch.nn.Linear(16, 3)).to(torch.float64)


def data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    X = torch.randn(STEPS * BATCH, 5, dtype=torch.float64, generator=g)
    y = torch.randint(0, 3, (STEPS * BATCH,), generator=g)
    return X, y


def train(case: str, rank: int | None, world: int = 1) -> dict[str, list]:
    """STEPS steps; rank None: one process on whole batches; else this rank's share."""
    net = model()
    wrapped = net if rank is None else DistributedDataParallel(
        net, gradient_as_bucket_view=case.endswith("bucket-view"))
    opt = CASES[case](wrapped.parameters())
    X, y = data()
    lrs, losses = [], []
    for step in range(STEPS):
        xb, yb = X[step * BATCH:(step + 1) * BATCH], y[step * BATCH:(step + 1) * BATCH]
        if rank is not None:
            share = BATCH // world
            xb, yb = xb[rank * share:(rank + 1) * share], yb[rank * share:(rank + 1) * share]
        opt.step(lambda xb=xb, yb=yb: torch.nn.functional.cross_entropy(wrapped(xb), yb))
        lrs.append(opt.last.lr)
        losses.append(opt.last.loss)
    return {"params": [p.detach().clone() for p in net.parameters()], "lr": lrs,
            "loss": losses}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rank", type=int, required=True)
    parser.add_argument("--world", type=int, required=True)
    parser.add_argument("--store", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{args.store}", rank=args.rank,
                            world_size=args.world)
    try:
        results = {case: train(case, args.rank, args.world) for case in CASES}
        dist.barrier()
    finally:
        dist.destroy_process_group()
    torch.save(results, args.out)
    # as the recipe in docs/pytorch.md: no interpreter teardown beside gloo's threads
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
