"""Parameter groups with rules of their own (one line search over the searched groups, the
others on their own steps), and torch's lr_schedulers driving a group's "lr": each checked
against a second, independent path (the searched block optimised alone beside torch's own
optimizer on the other groups; torch's optimizers under the same scheduler; the scheduler's
closed form)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import descend as ds
import descend.torch as dt
from descend import optim
from descend.errors import ConfigError

from .conftest import DEVICES


def _net(device: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3)).to(device, torch.float64)


def _loss(model: nn.Module, step: int, device: str):
    g = torch.Generator().manual_seed(100 + step)
    x = torch.randn(16, 5, generator=g, dtype=torch.float64).to(device)
    y = torch.randint(0, 3, (16,), generator=g).to(device)
    return lambda: nn.functional.cross_entropy(model(x), y)


def _split(model: nn.Module) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    weights = [p for name, p in model.named_parameters() if name.endswith("weight")]
    biases = [p for name, p in model.named_parameters() if name.endswith("bias")]
    return weights, biases


def _close(a: torch.Tensor, b: torch.Tensor, rel: float = 1e-12) -> bool:
    return bool(torch.max(torch.abs(a - b)) <= rel * torch.max(torch.abs(b)))


# ----------------------------------------------------------------------------- per-group rules
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", ["gd", "adam"])
def test_a_search_on_some_groups_and_constant_steps_on_the_others(device, kind):
    # Biases on a constant lr, weights searched by Armijo. The independent path: descend's
    # optimizer over the weights alone (its trials leave the biases where they are, as the
    # definition says) and torch's own SGD/Adam over the biases, from the gradient at x.
    ours, theirs = _net(device), _net(device)
    w, b = _split(ours)
    rw, rb = _split(theirs)
    rule, ref_rule = optim.Armijo(c1=0.1), optim.Armijo(c1=0.1)
    if kind == "gd":
        opt = dt.GD([{"params": b, "lr": 0.05, "weight_decay": 0}, {"params": w}], lr=rule,
                    momentum=0.5)
        searched = dt.GD(rw, lr=ref_rule, momentum=0.5)
        fixed = torch.optim.SGD(rb, lr=0.05, momentum=0.5)
    else:
        opt = dt.Adam([{"params": b, "lr": 0.01, "weight_decay": 0}, {"params": w}], lr=rule)
        searched = dt.Adam(rw, lr=ref_rule)
        fixed = torch.optim.Adam(rb, lr=0.01)
    for step in range(6):
        opt.step(_loss(ours, step, device))
        fixed.zero_grad()
        searched.step(_loss(theirs, step, device))  # its backward fills the biases' .grad
        fixed.step()
        assert opt.last.evaluations == searched.last.evaluations
        assert opt.param_groups[1]["step_size"] == searched.last.lr  # the same searched alpha
        assert opt.param_groups[0]["step_size"] == fixed.param_groups[0]["lr"]
    for a, c in zip(ours.parameters(), theirs.parameters()):
        assert _close(a, c)
    assert opt.last.lr == opt.param_groups[0]["step_size"]  # the first group's step
    assert opt.last.new_loss is None  # the searched point is not where the step ended


def test_numpy_engine_one_search_over_the_searched_block():
    # f(a, b) = a.a + 3 b.b: a searched (Armijo from alpha0 = 1), b a constant 0.1;
    # the search restricted to a is checked by descend's pure backtracking on
    # phi(alpha) = f(a - alpha g_a, b), b held where it was
    a = ds.tensor(np.array([1.0, -2.0]), requires_grad=True)
    b = ds.tensor(np.array([0.5]), requires_grad=True)
    opt = optim.GD([{"params": [a], "lr": optim.Armijo(c1=0.3)}, {"params": [b], "lr": 0.1}])
    a0, b0 = a.data.copy(), b.data.copy()
    ga, gb = 2 * a0, 6 * b0

    def phi(alpha: float) -> float:
        x = a0 - alpha * ga
        return float(x @ x + 3 * b0 @ b0)

    res = ds.linesearch.backtracking(phi, phi(0.0), -float(ga @ ga), alpha0=1.0, c1=0.3)
    opt.step(lambda: (a * a).sum() + 3 * (b * b).sum())
    np.testing.assert_allclose(a.data, a0 - res.alpha * ga, rtol=1e-15)
    np.testing.assert_allclose(b.data, b0 - 0.1 * gb, rtol=1e-15)
    assert [g["step_size"] for g in opt.param_groups] == [res.alpha, 0.1]


# ----------------------------------------------------------------------------- lr_schedulers
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("schedule", ["cosine", "onecycle"])
@pytest.mark.parametrize("kind", ["gd", "adam"])
def test_a_scheduler_on_a_constant_rule_is_torchs_own_trajectory(device, schedule, kind):
    ours, theirs = _net(device), _net(device)
    if kind == "gd":
        opt = dt.GD(ours.parameters(), lr=0.1, momentum=0.9)
        ref = torch.optim.SGD(theirs.parameters(), lr=0.1, momentum=0.9)
    else:
        opt = dt.Adam(ours.parameters(), lr=0.01)
        ref = torch.optim.Adam(theirs.parameters(), lr=0.01)

    def scheduler(o: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
        if schedule == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=8, eta_min=1e-3)
        # descend's optimizers have no momentum/betas entry for it to cycle
        return torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.2, total_steps=8,
                                                   cycle_momentum=False)

    ours_sched, ref_sched = scheduler(opt), scheduler(ref)
    for step in range(8):
        opt.step(_loss(ours, step, device))
        ref.zero_grad()
        _loss(theirs, step, device)().backward()
        ref.step()
        assert opt.last.lr == ref.param_groups[0]["lr"]
        ours_sched.step()
        ref_sched.step()
    for a, b in zip(ours.parameters(), theirs.parameters()):
        assert _close(a, b, 1e-11)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("schedule", ["cosine", "onecycle"])
def test_a_scheduler_on_a_search_multiplies_the_accepted_step(device, schedule):
    # A twin optimizer, given the same state before every step and a factor of 1, makes
    # the unscaled step from the same point: the scheduled one must be factor times it,
    # with the factor the scheduler's closed form.
    model, twin_model = _net(device), _net(device)
    opt = dt.GD(model.parameters(), lr=optim.Armijo(c1=0.1), momentum=0.5)
    twin = dt.GD(twin_model.parameters(), lr=optim.Armijo(c1=0.1), momentum=0.5)
    total = 6
    if schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total, eta_min=0.1)

        def factor(t: int) -> float:
            return 0.1 + 0.9 * (1 + math.cos(math.pi * t / total)) / 2
    else:
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=total,
                                                    cycle_momentum=False, pct_start=0.5,
                                                    anneal_strategy="linear")
        start, end = 1.0 / 25, 1.0 / 25 / 1e4
        up = 0.5 * total - 1

        def factor(t: int) -> float:
            if t <= up:
                return start + (1.0 - start) * t / up
            return 1.0 + (end - 1.0) * (t - up) / (total - 1 - up)
    for step in range(total):
        assert opt.param_groups[0]["lr"] == pytest.approx(factor(step), rel=1e-12)
        state = opt.state_dict()
        twin.load_state_dict(state)
        twin.param_groups[0]["lr"] = 1.0
        with torch.no_grad():
            for p, q in zip(model.parameters(), twin_model.parameters()):
                q.copy_(p)
        before = [p.detach().clone() for p in model.parameters()]
        opt.step(_loss(model, step, device))
        twin.step(_loss(twin_model, step, device))
        assert opt.last.lr == pytest.approx(factor(step) * twin.last.lr, rel=1e-12)
        for p, q, x in zip(model.parameters(), twin_model.parameters(), before):
            # x + f (x_twin - x): rounding of the parameters' size (the step may be 1e-7)
            assert _close(p, x + factor(step) * (q - x), 1e-14)
        sched.step()
    restored = dt.GD(_net(device).parameters(), lr=optim.Armijo(c1=0.1), momentum=0.5)
    restored.load_state_dict(opt.state_dict())
    assert restored.param_groups[0]["lr"] == opt.param_groups[0]["lr"]


def test_a_group_lr_that_is_not_a_step_is_refused_by_name():
    model = _net("cpu")
    opt = dt.GD(model.parameters(), lr=optim.Armijo())
    opt.param_groups[0]["lr"] = float("nan")
    with pytest.raises(ConfigError, match=r"param_groups\[0\]\['lr'\] must be a finite"):
        opt.step(_loss(model, 0, "cpu"))
    with pytest.raises(ValueError, match="momentum or beta1"):
        torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=5)
