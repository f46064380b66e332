"""The same float64 network in descend's NumPy engine and through descend.torch, started from
the same weights on the same mini-batches, follows the same parameter trajectory: the step
rules, directions and the restriction are one code base running on two engines.

Each side computes its own forward and backward pass (descend's autodiff, torch's autograd),
so the trajectories agree to rounding: 1e-9 relative after every one of 25 steps, with the
same step sizes, evaluation counts and line-search exits.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descend as ds
import descend.torch as dt
from descend import nn, optim

from .conftest import DEVICES

STEPS = 25
SIZES = [6, 10, 8, 3]


def _data():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((48, SIZES[0]))
    y = rng.integers(0, SIZES[-1], 48)
    return X, y


def _batches(step: int, X, y):
    i = step % 4  # four mini-batches of 12, cycled
    return X[12 * i:12 * (i + 1)], y[12 * i:12 * (i + 1)]


def _torch_twin(model: nn.Sequential, device: str) -> torch.nn.Sequential:
    """A torch MLP holding the descend model's weights (same layout: weight (out, in))."""
    layers: list[torch.nn.Module] = []
    for layer in model:
        if isinstance(layer, nn.Linear):
            lin = torch.nn.Linear(layer.in_features, layer.out_features, dtype=torch.float64)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(layer.weight.data))
                lin.bias.copy_(torch.from_numpy(layer.bias.data))
            layers.append(lin)
        else:
            layers.append(torch.nn.Tanh())
    return torch.nn.Sequential(*layers).to(device)


CASES = {
    "constant": lambda m, p: m.GD(p, lr=0.3),
    "schedule": lambda m, p: m.GD(p, lr=optim.InverseSqrt(0.8)),
    "armijo": lambda m, p: m.GD(p, lr=optim.Armijo(c1=0.1, alpha0=4.0)),
    "armijo-interpolate": lambda m, p: m.GD(p, lr=optim.Armijo(alpha0=8.0, interpolate=True)),
    "strong-wolfe": lambda m, p: m.GD(p, lr=optim.StrongWolfe()),
    "polyak": lambda m, p: m.GD(p, lr=optim.Polyak(f_star=0.0, c=0.5, max_lr=2.0)),
    "momentum": lambda m, p: m.GD(p, lr=0.2, momentum=0.9),
    "nesterov": lambda m, p: m.GD(p, lr=0.2, momentum=0.9, nesterov=True),
    "momentum-armijo": lambda m, p: m.GD(p, lr=optim.Armijo(), momentum=0.5),
    "adam": lambda m, p: m.Adam(p, lr=0.05),
    "weight-decay-wolfe": lambda m, p: m.GD(p, lr=optim.StrongWolfe(), weight_decay=0.01),
    "subgradient": lambda m, p: m.Subgradient(p, lr=optim.InverseTime(0.5)),
    "lbfgs": lambda m, p: m.LBFGS(p, history_size=5),
    "cg": lambda m, p: m.CG(p, beta="PR+"),
    "lbfgs-armijo-decay": lambda m, p: m.LBFGS(p, lr=optim.Armijo(), weight_decay=0.01),
}


#: the exact line search, on a least-squares model (a quadratic objective, where it has its
#: closed form) and by Brent's method on the network
EXACT_CASES = {
    "exact-quadratic": (lambda m, p: m.GD(p, lr=optim.Exact(quadratic=True)), "linear", 1e-9),
    # Brent's method stops when the bracket is below tol = 1e-8: the minimiser of a smooth
    # phi is only determined to about sqrt(machine epsilon) relative, so two engines whose
    # phi differ by rounding (1e-16) land on minimisers 1e-8 apart; the trajectories then
    # agree to that, not to 1e-9
    "exact-brent": (lambda m, p: m.GD(p, lr=optim.Exact()), "mlp", 1e-6),
}


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def _run(make, device: str, kind: str, tol: float, check_counts: bool = True) -> float:
    """25 steps in both engines; the worst relative parameter difference seen."""
    X, y = _data()
    if kind == "linear":  # least squares: f(W, b) = mean((x W' + b - t)^2), a quadratic
        model = nn.Sequential(nn.Linear(SIZES[0], 2, rng=3, dtype=np.float64))
        targets = np.random.default_rng(5).standard_normal((len(X), 2))
        loss_np = nn.MSELoss()
        loss_t = torch.nn.functional.mse_loss
    else:
        model = nn.mlp(SIZES, activation="tanh", rng=3, dtype=np.float64)
        targets = y
        loss_np = nn.CrossEntropyLoss()
        loss_t = torch.nn.functional.cross_entropy
    start = [p.data.copy() for p in model.parameters()]
    twin = _torch_twin(model, device)
    opt_np = make(optim, model.parameters())
    opt_t = make(dt, twin.parameters())
    params_np, params_t = list(model.parameters()), list(twin.parameters())
    assert [p.shape for p in params_np] == [tuple(p.shape) for p in params_t]
    worst = 0.0
    for step in range(STEPS):
        xb, tb = _batches(step, X, targets)
        xt = torch.from_numpy(xb).to(device)
        tt = torch.from_numpy(tb).to(device)
        xd = ds.tensor(xb)
        opt_np.step(lambda xd=xd, tb=tb: loss_np(model(xd), tb))
        opt_t.step(lambda xt=xt, tt=tt: loss_t(twin(xt), tt))
        a, b = opt_np.last, opt_t.last
        if check_counts:
            assert (a.evaluations, a.gradient_evaluations, a.status, a.fallback) == \
                (b.evaluations, b.gradient_evaluations, b.status, b.fallback), (step, a, b)
        assert b.lr == pytest.approx(a.lr, rel=tol, abs=1e-300), step
        assert b.loss == pytest.approx(a.loss, rel=tol), step
        for pn, pt in zip(params_np, params_t):
            err = _relative(pt.detach().cpu().numpy(), pn.data)
            worst = max(worst, err)
            assert err <= tol, (step, err)
    assert opt_t.t == STEPS
    # the runs did move: the comparison is not between two untouched models
    assert max(_relative(p.data, q) for p, q in zip(params_np, start)) > 1e-2
    return worst


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", list(CASES))
def test_same_trajectory_in_both_engines(case, device):
    worst = _run(CASES[case], device, "mlp", 1e-9)
    print(f"{case}: worst relative difference over {STEPS} steps {worst:.2e}")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", list(EXACT_CASES))
def test_exact_line_search_in_both_engines(case, device):
    make, kind, tol = EXACT_CASES[case]
    worst = _run(make, device, kind, tol, check_counts=kind == "linear")
    print(f"{case}: worst relative difference over {STEPS} steps {worst:.2e}")
