"""FSDP2 (``torch.distributed.fsdp.fully_shard``): every dot product and norm a step reads
is summed over the shards, so all ranks take the same step, and the result is one process
on the whole batch. torch 2.13 runs FSDP2 on the CPU with gloo: two ranks there (the slow
suite, two interpreters), and in the fast suite a one-rank mesh in this process (the
parameters are DTensors all the same: the sharded reductions and in-place updates run), on
the CPU with gloo and, where there is a GPU, on CUDA with NCCL (skipped otherwise, with the
reason)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

import descend.torch as dt
from descend import optim
from descend.errors import ConfigError

from . import ddp_worker, fsdp_worker
from .conftest import DEVICES

WORKER = Path(__file__).with_name("fsdp_worker.py")


def _close(a: torch.Tensor, b: torch.Tensor, rel: float) -> bool:
    return bool(torch.max(torch.abs(a - b)) <= rel * torch.max(torch.abs(b)))


@pytest.mark.parametrize("device", DEVICES)
def test_one_rank_mesh_matches_plain_training(tmp_path, device):
    torch.set_num_threads(1)
    dist.init_process_group("gloo" if device == "cpu" else "nccl",
                            init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        # two cases here (a search with momentum, SaLSA on Adam); the slow test runs all
        sharded = {case: fsdp_worker.train(case, rank=0, world=1, device=device)
                   for case in ("armijo-momentum", "adam-salsa")}
        with pytest.raises(ConfigError, match="lean=True"):
            dt.GD(fsdp_worker.shard(ddp_worker.model().to(device), device).parameters(),
                  lr=optim.Armijo())
    finally:
        dist.destroy_process_group()
    start = list(ddp_worker.model().parameters())
    for case, got in sharded.items():
        plain = fsdp_worker.train(case, rank=None, device=device)
        # the same decisions; sums of products in another order: rounding apart
        for a, b in zip(got["lr"], plain["lr"]):
            assert abs(a - b) <= 1e-12 * abs(b), (case, got["lr"], plain["lr"])
        for a, b, s in zip(got["params"], plain["params"], start):
            assert _close(a, b, 1e-12), case
            assert not torch.allclose(b, s.detach())  # training moved every parameter


@pytest.mark.slow
def test_two_ranks_match_each_other_and_one_process(tmp_path):
    store = tmp_path / "store"
    outs = [tmp_path / f"rank{r}.pt" for r in range(2)]
    procs = [subprocess.Popen([sys.executable, str(WORKER), "--rank", str(r), "--world", "2",
                               "--store", str(store), "--out", str(outs[r])],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for r in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
    ranks = [torch.load(out, weights_only=True) for out in outs]
    torch.set_num_threads(1)
    for case in fsdp_worker.CASES:
        r0, r1 = ranks[0][case], ranks[1][case]
        assert r0["lr"] == r1["lr"], case  # every rank read the same numbers
        for a, b in zip(r0["params"], r1["params"]):
            assert torch.equal(a, b), case
        single = fsdp_worker.train(case, rank=None)
        for a, b in zip(r0["lr"], single["lr"]):
            assert abs(a - b) <= 1e-9 * abs(b), (case, r0["lr"], single["lr"])
        for a, b in zip(r0["params"], single["params"]):
            assert _close(a, b, 1e-9), case
