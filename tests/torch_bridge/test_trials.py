"""Trials never perturb training: every trial of a step sees the dropout masks of its first
forward pass, the random stream continues as after that one forward pass (CPU and CUDA),
BatchNorm's running statistics and num_batches_tracked end the step as one forward pass
leaves them, and the modules' train/eval modes are untouched."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import descend.torch as dt
from descend import optim

from .conftest import DEVICES


class RecordingDropout(nn.Module):
    """Dropout that keeps each mask it draws (the masks are what trials must replay)."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p
        self.masks: list[torch.Tensor] = []

    def forward(self, x):
        if not self.training:
            return x
        mask = torch.rand_like(x) >= self.p
        self.masks.append(mask)
        return x * mask / (1 - self.p)


def _model(device: str) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), RecordingDropout(0.4),
                         nn.Linear(16, 16), nn.Dropout(0.3), nn.BatchNorm1d(16), nn.Tanh(),
                         nn.Linear(16, 3)).to(device, torch.float64)


def _rng(device: str):
    cuda = torch.cuda.get_rng_state(torch.device(device)) if device == "cuda" else None
    return torch.get_rng_state(), cuda


def _set_rng(state, device: str) -> None:
    torch.set_rng_state(state[0])
    if device == "cuda":
        torch.cuda.set_rng_state(state[1], torch.device(device))


def _buffers(model: nn.Module) -> list[torch.Tensor]:
    return [b.detach().clone() for b in model.buffers()]


RULES = {
    "armijo": lambda: optim.Armijo(alpha0=1e4),  # backtracks many times from a huge step
    "strong-wolfe": lambda: optim.StrongWolfe(alpha0=50.0),
    "exact": lambda: optim.Exact(max_evals=12),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("rule", list(RULES))
def test_trials_replay_masks_and_leave_state_as_one_forward_pass(rule, device):
    model = _model(device)
    probe = model[3]
    x = torch.randn(32, 6, dtype=torch.float64, device=device)
    y = torch.randint(0, 3, (32,), device=device)

    def closure():
        return nn.functional.cross_entropy(model(x), y)

    for _ in range(3):
        opt = dt.GD(model.parameters(), lr=RULES[rule]())  # a cold start: several trials
        # the reference: the same model and random state, one forward pass
        reference = copy.deepcopy(model)
        before = _rng(device)
        probe.masks.clear()
        opt.step(closure)
        after = _rng(device)
        assert opt.last.evaluations >= 3, opt.last  # trials were made
        assert len(probe.masks) == opt.last.evaluations
        for mask in probe.masks[1:]:
            assert torch.equal(mask, probe.masks[0])
        _set_rng(before, device)
        reference(x)
        once = _rng(device)
        assert torch.equal(after[0], once[0])
        if device == "cuda":
            assert torch.equal(after[1], once[1])
        for got, want in zip(_buffers(model), _buffers(reference)):
            assert torch.equal(got, want)
        _set_rng(after, device)
    assert int(model[1].num_batches_tracked) == 3


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("training", [True, False])
def test_train_and_eval_modes_are_untouched(training, device):
    model = _model(device)
    model.train(training)
    model[4].train(not training)  # a mixed setting must survive too
    modes = [m.training for m in model.modules()]
    x = torch.randn(16, 6, dtype=torch.float64, device=device)
    y = torch.randint(0, 3, (16,), device=device)
    for make in (lambda p: dt.GD(p, lr=optim.Armijo()), lambda p: dt.GD(p, lr=optim.StrongWolfe()),
                 lambda p: dt.Adam(p, lr=0.01)):
        opt = make(model.parameters())
        for _ in range(2):
            opt.step(lambda: nn.functional.cross_entropy(model(x), y))
        assert [m.training for m in model.modules()] == modes


def test_a_reused_gradient_leaves_the_buffers_of_the_previous_step():
    # full batch with strong Wolfe: the next step reuses the accepted point's gradient and
    # makes no forward pass of its own, so the running statistics do not move in it
    model = _model("cpu")
    x = torch.randn(32, 6, dtype=torch.float64)
    y = torch.randint(0, 3, (32,))
    opt = dt.GD(model.parameters(), lr=optim.StrongWolfe())
    reused = 0
    for _ in range(6):
        kept = _buffers(model)
        opt.step(lambda: nn.functional.cross_entropy(model(x), y), same_batch=True)
        if int(model[1].num_batches_tracked) == int(kept[2]):
            reused += 1
            for got, want in zip(_buffers(model), kept):
                assert torch.equal(got, want)
    assert reused >= 1  # the reuse happened at least once


def test_a_closure_that_draws_nothing_is_not_replayed():
    # no dropout, no BatchNorm: nothing to replay; the random stream is not touched at all
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 2)).double()
    x = torch.randn(8, 4, dtype=torch.float64)
    y = torch.randint(0, 2, (8,))
    opt = dt.GD(model.parameters(), lr=optim.Armijo(alpha0=100.0))
    before = torch.get_rng_state()
    opt.step(lambda: nn.functional.cross_entropy(model(x), y))
    assert opt.last.evaluations >= 3
    assert torch.equal(torch.get_rng_state(), before)
