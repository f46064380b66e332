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
from descend.linesearch import LineSearchStatus

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
    "constant-length": lambda m, p: m.Subgradient(p, lr=optim.ConstantLength(0.05)),
}


#: the exact line search on a least-squares model: a quadratic objective, where it has its
#: closed form, so the trajectories agree to rounding like the other rules'
EXACT_CASES = {
    "exact-quadratic": (lambda m, p: m.GD(p, lr=optim.Exact(quadratic=True)), "linear", 1e-9),
}

#: Brent's method (scipy's ``minimize_scalar``, ``xtol``) stops when the returned alpha lies
#: within 2 tol1 of the bracket's midpoint and the bracket's half-width is below 2 tol1,
#: tol1 = xtol |alpha| + 1e-11: alpha is within 4 tol1 of the minimiser of the phi it was
#: given. The two engines' phi differ by rounding (delta ~ eps |phi|), which moves the
#: minimiser by up to sqrt(2 delta / phi'') ~ sqrt(eps) |alpha| where phi'' ~ phi / alpha^2.
BRENT_XTOL = 1e-8
BRENT_BOUND = 4 * BRENT_XTOL + np.sqrt(np.finfo(np.float64).eps)


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


@pytest.mark.parametrize("device", DEVICES)
def test_constant_length_at_an_optimum_takes_no_step_in_both_engines(device):
    # logistic regression minimised by SciPy to working precision: each engine's gradient
    # there is rounding noise (its own), and neither turns it into a step of length gamma
    from scipy.optimize import minimize

    rng = np.random.default_rng(3)
    X = rng.standard_normal((400, 6))
    y = np.where(X @ rng.standard_normal(6) + 0.3 * rng.standard_normal(400) > 0, 1.0, -1.0)
    lam = 1e-3

    def value(w):
        return float(np.mean(np.logaddexp(0.0, -y * (X @ w))) + 0.5 * lam * w @ w)

    def grad(w):
        return X.T @ (-y * 0.5 * (1.0 + np.tanh(-0.5 * y * (X @ w)))) / len(y) + lam * w

    w_star = minimize(value, np.zeros(6), jac=grad, method="BFGS",
                      options={"gtol": 1e-13, "maxiter": 10_000}).x
    w_np = ds.tensor(w_star.copy(), requires_grad=True)
    X_np, y_np = ds.tensor(X), ds.tensor(y)
    w_t = torch.tensor(w_star, device=device, requires_grad=True)
    X_t = torch.from_numpy(X).to(device)
    y_t = torch.from_numpy(y).to(device)
    opt_np = optim.GD([w_np], lr=optim.ConstantLength(0.01))
    opt_t = dt.GD([w_t], lr=optim.ConstantLength(0.01))
    for _ in range(5):
        opt_np.step(lambda: ds.functional.softplus(-(y_np * (X_np @ w_np))).mean()
                    + (w_np * w_np).sum() * (0.5 * lam))
        opt_t.step(lambda: torch.nn.functional.softplus(-(y_t * (X_t @ w_t))).mean()
                   + (w_t * w_t).sum() * (0.5 * lam))
        for info in (opt_np.last, opt_t.last):
            assert info.grad_norm < 1e-9
            assert info.lr == 0.0 and info.status is LineSearchStatus.FLAT
    np.testing.assert_array_equal(w_np.data, w_star)
    np.testing.assert_array_equal(w_t.detach().cpu().numpy(), w_star)


@pytest.mark.parametrize("device", DEVICES)
def test_brent_search_in_both_engines_step_by_step(device):
    """Brent's exact search fixes alpha only to about sqrt(eps): from the same parameters the
    engines' step sizes agree within BRENT_BOUND relative (seen: <= 3.0e-8 of 5.5e-8), and
    the parameters within what that difference of alpha moves them. Each step starts both
    engines from the NumPy engine's parameters: over a trajectory the sqrt(eps) differences
    would compound through a non-convex landscape, and no stated bound would hold."""
    X, y = _data()
    model = nn.mlp(SIZES, activation="tanh", rng=3, dtype=np.float64)
    twin = _torch_twin(model, device)
    opt_np = optim.GD(model.parameters(), lr=optim.Exact(tol=BRENT_XTOL))
    opt_t = dt.GD(twin.parameters(), lr=optim.Exact(tol=BRENT_XTOL))
    params_np, params_t = list(model.parameters()), list(twin.parameters())
    loss_np, largest = nn.CrossEntropyLoss(), 0.0
    for step in range(STEPS):
        with torch.no_grad():
            for pn, pt in zip(params_np, params_t):
                pt.copy_(torch.from_numpy(pn.data))
        before = [p.data.copy() for p in params_np]
        xb, yb = _batches(step, X, y)
        xt, yt = torch.from_numpy(xb).to(device), torch.from_numpy(yb).to(device)
        opt_np.step(lambda xb=xb, yb=yb: loss_np(model(ds.tensor(xb)), yb))
        opt_t.step(lambda xt=xt, yt=yt: torch.nn.functional.cross_entropy(twin(xt), yt))
        a, b = opt_np.last, opt_t.last
        assert a.status == b.status, (step, a, b)
        assert b.loss == pytest.approx(a.loss, rel=1e-14), step
        gap = abs(b.lr - a.lr)
        assert gap <= BRENT_BOUND * a.lr + 4e-11, (step, a.lr, b.lr)
        largest = max(largest, gap / a.lr)
        for p0, pn, pt in zip(before, params_np, params_t):
            direction = (pn.data - p0) / a.lr
            moved = np.abs(pt.detach().cpu().numpy() - pn.data)
            # plus the rounding of the update itself
            slack = 1e-12 * max(np.max(np.abs(pn.data)), 1.0)
            assert np.all(moved <= gap * np.abs(direction) * (1 + 1e-6) + slack), step
    print(f"exact (Brent): largest relative difference of alpha {largest:.2e} "
          f"(bound {BRENT_BOUND:.2e})")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("make", [
    lambda m, p: m.LBFGS(p, history_size=5, max_iter=10),
    lambda m, p: m.CG(p, beta="PR+", max_iter=10),
    lambda m, p: m.LBFGS(p, lr=optim.Armijo(), weight_decay=0.01, max_iter=10),
], ids=["lbfgs", "cg", "lbfgs-armijo-decay"])
def test_max_iter_in_both_engines(make, device):
    # full batch, three calls of up to 10 iterations each: the same iterations, the same
    # evaluations, and the same parameters to rounding
    X, y = _data()
    model = nn.mlp(SIZES, activation="tanh", rng=3, dtype=np.float64)
    start = [p.data.copy() for p in model.parameters()]
    twin = _torch_twin(model, device)
    opt_np = make(optim, model.parameters())
    opt_t = make(dt, twin.parameters())
    xd, xt = ds.tensor(X), torch.from_numpy(X).to(device)
    yt = torch.from_numpy(y).to(device)
    loss_np = nn.CrossEntropyLoss()
    iterations = 0
    for call in range(3):
        first_np = opt_np.step(lambda: loss_np(model(xd), y), same_batch=call > 0)
        first_t = opt_t.step(lambda: torch.nn.functional.cross_entropy(twin(xt), yt),
                             same_batch=call > 0)
        a, b = opt_np.last, opt_t.last
        assert first_t.item() == pytest.approx(first_np.item(), rel=1e-9)
        assert (a.iterations, a.call_evaluations, a.call_gradient_evaluations, a.status) == \
            (b.iterations, b.call_evaluations, b.call_gradient_evaluations, b.status), call
        assert b.lr == pytest.approx(a.lr, rel=1e-9) and opt_np.t == opt_t.t
        for pn, pt in zip(model.parameters(), twin.parameters()):
            assert _relative(pt.detach().cpu().numpy(), pn.data) <= 1e-9, call
        iterations += a.iterations
    assert iterations == 30  # no early stop: every call ran its 10 iterations
    assert max(_relative(p.data, q) for p, q in zip(model.parameters(), start)) > 1e-2
