"""The lean mode (no spare copy of the parameters): the same trajectory as the default
mode to rounding, the parameters updated in their own storage, no undo.

The tolerance: a lean step moves x in place once per trial, once back and once for the
update, each move rounding x to its dtype (about eps/2 |x|, float64 here); the trajectories
part by a few such roundings per step, which the dynamics of ten steps do not amplify
beyond 1e-12 of the parameters' size (measured here, CPU float64: 0 for four of the rules,
1.3e-15 for SaLSA on Adam, whose trials are the most)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import descend as ds
import descend.torch as dt
from descend import optim
from descend.errors import ConfigError

from .conftest import DEVICES

RULES = {
    "gd-armijo": lambda p, lean: dt.GD(p, lr=optim.Armijo(c1=0.1), momentum=0.5, lean=lean),
    "adam-salsa": lambda p, lean: dt.Adam(p, lr=optim.SmoothedArmijo(), lean=lean),
    "gd-wolfe": lambda p, lean: dt.GD(p, lr=optim.StrongWolfe(), lean=lean),
    "gd-polyak": lambda p, lean: dt.GD(p, lr=optim.Polyak(c=0.5, max_lr=1.0), lean=lean),
    "adam-constant": lambda p, lean: dt.Adam(p, lr=0.01, weight_decay=1e-3, lean=lean),
}


def _net(device: str) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Dropout(0.2),
                         nn.Linear(16, 3)).to(device, torch.float64)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", list(RULES))
def test_lean_steps_follow_the_default_trajectory_to_rounding(device, name):
    models = {lean: _net(device) for lean in (False, True)}
    opts = {lean: RULES[name](models[lean].parameters(), lean) for lean in (False, True)}
    storage = [p.data_ptr() for p in models[True].parameters()]
    g = torch.Generator().manual_seed(3)
    for step in range(10):
        x = torch.randn(32, 6, generator=g, dtype=torch.float64).to(device)
        y = torch.randint(0, 3, (32,), generator=g).to(device)
        for lean in (False, True):
            torch.manual_seed(step)  # the same dropout masks
            model = models[lean]
            opts[lean].step(lambda model=model, x=x, y=y: nn.functional.cross_entropy(model(x), y))
        assert opts[True].last.evaluations == opts[False].last.evaluations
    for a, b in zip(models[True].parameters(), models[False].parameters()):
        assert torch.max(torch.abs(a - b)) <= 1e-12 * torch.max(torch.abs(b)), name
    assert [p.data_ptr() for p in models[True].parameters()] == storage  # in place
    assert opts[True]._spare is None and not opts[True].undo()


def test_numpy_engine_lean_steps_and_refusals():
    problem_w = np.array([[2.0, 0.3], [0.3, 1.0]])
    runs = {}
    for lean in (False, True):
        x = ds.tensor(np.array([1.0, -1.5]), requires_grad=True)
        opt = optim.GD([x], lr=optim.Armijo(alpha0=4.0), lean=lean)
        for _ in range(8):
            opt.step(lambda x=x: (x @ ds.tensor(problem_w) * x).sum())
        runs[lean] = x.data.copy()
    np.testing.assert_allclose(runs[True], runs[False], rtol=0, atol=1e-14)
    with pytest.raises(TypeError, match="lean must be True or False"):
        optim.GD([ds.tensor(np.ones(2), requires_grad=True)], lean="yes")
    with pytest.raises(ConfigError, match="learns from the exact step"):
        from descend.optim.quasi_newton import LBFGSDirection
        optim.Optimizer([ds.tensor(np.ones(2), requires_grad=True)], 0.1, 0.0,
                        LBFGSDirection(3), lean=True)
