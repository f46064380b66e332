"""A step's recorded trials and its picture on the PyTorch engine: the record equals an
independent evaluation of the loss along the line by torch itself, recording changes no
bit of the trajectory, and evaluating the line afterwards (dropout replayed) leaves the
parameters, the random stream and BatchNorm's statistics as they were."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import descend as ds
import descend.torch as dt
from descend import optim

from .conftest import DEVICES


def _model(device: str) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 12), nn.BatchNorm1d(12), nn.ReLU(), nn.Dropout(0.3),
                         nn.Linear(12, 3)).to(device, torch.float64)


def _data(device: str):
    g = torch.Generator().manual_seed(1)
    X = torch.randn(32, 5, generator=g, dtype=torch.float64).to(device)
    y = torch.randint(0, 3, (32,), generator=g).to(device)
    return X, y


def _run(device: str, record: bool, make_rule, steps: int = 3):
    model = _model(device)
    X, y = _data(device)
    opt = dt.GD(model.parameters(), lr=make_rule())
    opt.record_trials = record
    closure = lambda: nn.functional.cross_entropy(model(X), y)  # noqa: E731
    for _ in range(steps):
        opt.step(closure)
        assert (opt.last.trials is None) is (not record)
    return model, opt, closure


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("make_rule", [lambda: optim.Armijo(alpha0=20.0),
                                       lambda: optim.StrongWolfe(),
                                       lambda: 0.1])
def test_recording_changes_no_bit_of_the_trajectory(device, make_rule):
    runs = []
    for record in (False, True):
        model, _, _ = _run(device, record, make_rule)
        runs.append([t.detach().clone() for t in [*model.parameters(), *model.buffers()]]
                    + [torch.rand(3, dtype=torch.float64)])
    for a, b in zip(*runs):
        assert torch.equal(a, b)


@pytest.mark.parametrize("device", DEVICES)
def test_line_values_replay_the_step_and_leave_the_model_alone(device):
    model, opt, _ = _run(device, True, lambda: optim.Armijo(alpha0=50.0), steps=1)
    trials = opt.last.trials
    assert len(trials) >= 2
    before = [t.detach().clone() for t in [*model.parameters(), *model.buffers()]]
    rng = torch.get_rng_state()
    assert opt.line_values([t.alpha for t in trials]) == [t.value for t in trials]
    after = [t.detach().clone() for t in [*model.parameters(), *model.buffers()]]
    assert all(torch.equal(a, b) for a, b in zip(before, after))
    assert torch.equal(torch.get_rng_state(), rng)


def test_the_picture_draws_the_record_and_torch_agrees_with_it():
    """Without dropout or BatchNorm, so torch can evaluate the line on its own."""
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    X, y = _data("cpu")
    opt = dt.GD(model.parameters(), lr=optim.Armijo(alpha0=30.0, c1=0.2))
    opt.record_trials = True
    x0 = [p.detach().clone() for p in model.parameters()]
    loss = nn.functional.cross_entropy(model(X), y)
    g = torch.autograd.grad(loss, list(model.parameters()))
    opt.step(lambda: nn.functional.cross_entropy(model(X), y))
    after = [p.detach().clone() for p in model.parameters()]
    slope0 = -sum(float((gi * gi).sum()) for gi in g)

    def phi(alpha: float) -> float:  # torch's own evaluation along x0 - alpha g
        with torch.no_grad():
            for p, x, gi in zip(model.parameters(), x0, g):
                p.copy_(x - alpha * gi)
            value = float(nn.functional.cross_entropy(model(X), y))
            for p, a in zip(model.parameters(), after):
                p.copy_(a)
            return value

    trials = opt.last.trials
    assert len(trials) >= 3
    for t in trials:
        assert math.isclose(t.value, phi(t.alpha), rel_tol=1e-12)
    fig = ds.plot.line_search(opt, points=8)
    ax = fig.axes[0]
    (pts,) = [a for a in ax.get_lines() if a.get_gid() == "trials"]
    assert list(pts.get_xdata()) == [t.alpha for t in trials]
    assert list(pts.get_ydata()) == [t.value for t in trials]
    (acc,) = [a for a in ax.get_lines() if a.get_gid() == "accepted"]
    assert acc.get_xdata()[0] == opt.last.lr == trials[-1].alpha
    (arm,) = [a for a in ax.get_lines() if a.get_gid() == "armijo"]
    x, yv = (np.asarray(v, float) for v in arm.get_data())
    assert math.isclose((yv[1] - yv[0]) / (x[1] - x[0]), 0.2 * slope0, rel_tol=1e-9)
    (curve,) = [a for a in ax.get_lines() if a.get_gid() == "phi"]
    np.testing.assert_allclose(curve.get_ydata(), [phi(a) for a in curve.get_xdata()],
                               rtol=1e-12)
