"""One rank of the FSDP2 test (run as a script by test_fsdp.py), and what the ranks and the
single-process reference share: ddp_worker's model, data and batches, the model sharded by
``fully_shard`` (each Linear, then the root), every optimizer in the lean mode."""

from __future__ import annotations

import argparse
import os
import sys

import torch
import torch.distributed as dist

import descend.torch as dt
from descend import optim

try:
    from . import ddp_worker
except ImportError:  # run as a script
    import ddp_worker  # type: ignore[no-redef]

STEPS = 6

CASES = {
    "armijo-momentum": lambda p: dt.GD(p, lr=optim.Armijo(c1=0.1, alpha0=4.0), momentum=0.5,
                                       lean=True),
    "strong-wolfe": lambda p: dt.GD(p, lr=optim.StrongWolfe(), lean=True),
    "sps": lambda p: dt.GD(p, lr=optim.Polyak(c=0.5, max_lr=0.1), lean=True),
    "adam-salsa": lambda p: dt.Adam(p, lr=optim.SmoothedArmijo(), lean=True),
    "adam": lambda p: dt.Adam(p, lr=0.01, lean=True),
}


def shard(net: torch.nn.Module, device: str = "cpu") -> torch.nn.Module:
    """FSDP2 over a mesh of every rank on ``device``'s type (given, not FSDP2's default,
    which is the accelerator where there is one): each Linear its own unit, then the root."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh(torch.device(device).type, (dist.get_world_size(),))
    for layer in net:
        if isinstance(layer, torch.nn.Linear):
            fully_shard(layer, mesh=mesh)
    fully_shard(net, mesh=mesh)
    return net


def train(case: str, rank: int | None, world: int = 1, device: str = "cpu") -> dict[str, list]:
    """STEPS steps; rank None: one process on whole batches; else this rank's share of a
    sharded model. The parameters come back whole (``full_tensor``), on the CPU."""
    net = ddp_worker.model().to(device)
    if rank is not None:
        shard(net, device)
    opt = CASES[case](list(net.parameters()))
    X, y = (t.to(device) for t in ddp_worker.data())
    batch = ddp_worker.BATCH
    lrs, losses = [], []
    for step in range(STEPS):
        xb, yb = X[step * batch:(step + 1) * batch], y[step * batch:(step + 1) * batch]
        if rank is not None:
            share = batch // world
            xb, yb = xb[rank * share:(rank + 1) * share], yb[rank * share:(rank + 1) * share]
        opt.step(lambda xb=xb, yb=yb: torch.nn.functional.cross_entropy(net(xb), yb))
        lrs.append(opt.last.lr)
        losses.append(opt.last.loss)
    params = [p.full_tensor() if rank is not None else p for p in net.parameters()]
    return {"params": [p.detach().cpu().clone() for p in params], "lr": lrs, "loss": losses}


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
