"""Distributed data parallel: two gloo processes on the CPU, each with half of every batch,
end with bit-identical parameters, equal (float64, 1e-9 relative) to one process training on
the whole batches: every loss the optimizer reads is averaged over the group, so both ranks
accept the same step sizes, and the gradients are DDP's averages.

The two-process run starts two interpreters that import torch (the slow suite); the fast
suite runs the same worker code in a one-rank group inside this process: DDP's wrapper, the
group's all-reduce of every loss the optimizer reads, and the bucket-view gradients."""

from __future__ import annotations

import gc
import math
import subprocess
import sys
import weakref
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

import descend.torch as dt
from descend import optim

from . import ddp_worker

WORKER = Path(__file__).with_name("ddp_worker.py")


def _run_ranks(tmp_path: Path, world: int = 2) -> list[dict]:
    store = tmp_path / "store"
    outs = [tmp_path / f"rank{r}.pt" for r in range(world)]
    procs = [subprocess.Popen([sys.executable, str(WORKER), "--rank", str(r), "--world",
                               str(world), "--store", str(store), "--out", str(outs[r])],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for r in range(world)]
    for proc in procs:
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err[-3000:]
    return [torch.load(out, weights_only=True) for out in outs]


def test_one_rank_group_matches_plain_training(tmp_path):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0,
                            world_size=1)
    try:
        grouped = {case: ddp_worker.train(case, rank=0, world=1) for case in ddp_worker.CASES}
    finally:
        dist.destroy_process_group()
    start = list(ddp_worker.model().parameters())
    for case, got in grouped.items():
        plain = ddp_worker.train(case, rank=None)
        assert got["lr"] == plain["lr"] and got["loss"] == plain["loss"], case
        for a, b, s in zip(got["params"], plain["params"], start):
            assert torch.equal(a, b), case
            assert not torch.allclose(b, s.detach())  # training moved every parameter


@pytest.mark.slow
def test_two_ranks_match_each_other_and_one_process(tmp_path):
    ranks = _run_ranks(tmp_path)
    torch.set_num_threads(1)
    for case in ddp_worker.CASES:
        r0, r1 = ranks[0][case], ranks[1][case]
        single = ddp_worker.train(case, rank=None)
        # the two ranks: bit for bit, step sizes included
        assert r0["lr"] == r1["lr"], case
        for a, b in zip(r0["params"], r1["params"]):
            assert torch.equal(a, b), case
        # against one process on the whole batches
        for a, b in zip(r0["lr"], single["lr"]):
            assert abs(a - b) <= 1e-9 * abs(b), (case, r0["lr"], single["lr"])
        for a, b in zip(r0["loss"], single["loss"]):
            assert abs(a - b) <= 1e-9 * abs(b), case
        start = list(ddp_worker.model().parameters())
        for a, b, s in zip(r0["params"], single["params"], start):
            assert torch.max(torch.abs(a - b)) <= 1e-9 * torch.max(torch.abs(b)), case
            assert not torch.allclose(b, s.detach())  # training moved every parameter


def test_the_optimizer_keeps_no_reference_to_the_model(tmp_path):
    # Between steps the optimizer holds parameters and its own state, never the model: a
    # DDP model it kept alive would outlive destroy_process_group and be torn down, with
    # its reducer's hold on the group, at interpreter exit. A rejected step (non-finite
    # loss: no trials) is the case that used to keep the modules with buffers (BatchNorm)
    # of its forward pass.
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0,
                            world_size=1)
    try:
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.BatchNorm1d(8),
                                  torch.nn.Tanh(), torch.nn.Linear(8, 3)).to(torch.float64)
        wrapped = DistributedDataParallel(net)
        opt = dt.GD(wrapped.parameters(), lr=optim.Armijo(c1=0.1))
        X, y = ddp_worker.data()
        for scale in (1.0, math.inf):
            opt.step(lambda m=wrapped, s=scale: torch.nn.functional.cross_entropy(
                m(X[:16]), y[:16]) * s)
        assert not opt.last.finite
        alive = [weakref.ref(m) for m in (wrapped, net, net[1])]
        del wrapped, net
        gc.collect()
        assert [ref() for ref in alive] == [None, None, None]
        assert opt.state_dict()["descend"]["t"] == 1
    finally:
        dist.destroy_process_group()
