"""Shared pieces of the PyTorch bridge tests.

torch is imported at the top on purpose: `make test` installs it (the `test` extra pins it),
so a missing torch fails the run instead of skipping these tests. Tests that take a device
run on the CPU and, where one is present, on CUDA; without CUDA the CUDA case is reported
as skipped with its reason (pytest -ra), never dropped silently.
"""

from __future__ import annotations

import pytest
import torch

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                  reason="no CUDA device on this machine")),
]


@pytest.fixture(autouse=True)
def _one_thread():
    # the machines are small and shared: one intra-op thread keeps the runs steady
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
