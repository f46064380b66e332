"""Every step rule at a minimiser and on flat ground, in float32 and float64.

Each rule x direction runs past convergence, started where no decrease is possible: at the
minimiser of logistic regression (a gradient at rounding level), on a constant function, on
|x| at its kink, at the minimiser of x - log x (NaN beyond x < 0). A rule must recognise
that nothing can be gained at working precision: no exception, at most two trial points
per step, a named status for searches, and no explosion. Then the training loop must name
the stall instead of reporting "completed N epochs" with steps costing 31 forward passes.
"""

from __future__ import annotations

import functools
import math
import subprocess
import sys

import numpy as np
import pytest

import descend as ds
from descend import nn, optim
from descend.errors import ConfigError
from descend.linesearch import LineSearchStatus, backtracking, exact, strong_wolfe
from descend.optim import extend
from descend.problems import logistic_regression
from descend.train import StopWhen, fit
from descend.train.stopping import STOP_REASONS

DTYPES = [np.float32, np.float64]


@functools.cache
def _logreg():
    return logistic_regression()


def logreg_at_optimum(dtype):
    p = _logreg()
    for q, xs in zip(p.params, p.x_star):
        q.data, q.grad = np.array(xs, dtype=dtype), None
    return p.params, p.loss, p.f_star


def constant(dtype):
    x = ds.tensor(np.array([0.3, -0.7], dtype=dtype), requires_grad=True)
    return [x], lambda: (x * 0.0).sum() + 1.5, 1.5


def abs_at_kink(dtype):  # |x|'(0) = 0 by the engine's stated subgradient choice
    x = ds.tensor(np.zeros(3, dtype=dtype), requires_grad=True)
    return [x], lambda: ds.absolute(x).sum(), 0.0


def log_barrier_at_optimum(dtype):  # x - log x: minimum 1 at x = 1, NaN for x < 0
    x = ds.tensor(np.ones(3, dtype=dtype), requires_grad=True)
    return [x], lambda: (x - ds.log(x)).sum(), 3.0


PROBLEMS = {"logreg": logreg_at_optimum, "constant": constant, "abs": abs_at_kink,
            "log-barrier": log_barrier_at_optimum}

RULES = {
    "constant": lambda f: optim.Constant(0.1),
    "invsqrt": lambda f: optim.InverseSqrt(0.5),
    "cosine": lambda f: optim.Cosine(0.3, 40, warmup=3),
    "armijo": lambda f: optim.Armijo(),
    "sls": lambda f: optim.Armijo(c1=0.1),
    "wolfe": lambda f: optim.StrongWolfe(),
    "exact": lambda f: optim.Exact(),
    "exact-quadratic": lambda f: optim.Exact(quadratic=True),
    "polyak": lambda f: optim.Polyak(f_star=f),
    "polyak-estimated": lambda f: optim.Polyak(f_star=None),
    "sps": lambda f: optim.Polyak(0.0, 0.5, 1.0),
    "length": lambda f: optim.ConstantLength(0.01),
}

DIRECTIONS = {
    "gd": lambda ps, r: optim.GD(ps, lr=r),
    "momentum": lambda ps, r: optim.GD(ps, lr=r, momentum=0.9),
    "adam": lambda ps, r: optim.Adam(ps, lr=r),
    "subgradient": lambda ps, r: optim.Subgradient(ps, lr=r),
}

SEARCHES = ("armijo", "sls", "wolfe", "exact", "exact-quadratic")
POLYAK = ("polyak", "polyak-estimated", "sps")
#: what a search may answer where no decrease is possible
NO_DECREASE = {LineSearchStatus.FLAT, LineSearchStatus.ROUNDING, LineSearchStatus.NOT_DESCENT,
               LineSearchStatus.CONVERGED}


def _refused(rule: str, direction: str) -> bool:
    if direction == "subgradient":
        return rule in SEARCHES  # not a descent method
    return direction in ("momentum", "adam") and rule in POLYAK  # defined along -g only


CASES = [pytest.param(problem, rule, direction, dtype,
                      id=f"{problem}-{rule}-{direction}-{np.dtype(dtype).name}")
         for problem in PROBLEMS for rule in RULES for direction in DIRECTIONS
         for dtype in DTYPES if not _refused(rule, direction)]


@pytest.mark.parametrize("problem, rule, direction, dtype", CASES)
def test_rule_past_convergence_stays_cheap_and_put(problem, rule, direction, dtype):
    params, loss, f_star = PROBLEMS[problem](dtype)
    opt = DIRECTIONS[direction](params, RULES[rule](f_star))
    for _ in range(40):
        opt.step(loss)
        info = opt.last
        # the step's own forward pass plus at most two trial points
        assert info.evaluations <= 3, (info.evaluations, info.status)
        assert math.isfinite(info.lr)
        if rule in SEARCHES:
            assert info.status in NO_DECREASE, info.status
    with ds.no_grad():
        gap = float(loss().data) - f_star
    # never explode. Rules that read f stay within rounding of f*; schedules and constant
    # lengths move by their own step whatever the gradient (Adam's by about lr per
    # coordinate), so they only stay within the neighbourhood that step size allows
    eps = float(np.finfo(dtype).eps)
    bound = 1e3 * eps if rule in SEARCHES + POLYAK else 1e-2
    assert gap <= bound * max(1.0, abs(f_star)), gap


@pytest.mark.parametrize("rule", POLYAK)
@pytest.mark.parametrize("make", [lambda ps, r: optim.Adam(ps, lr=r),
                                  lambda ps, r: optim.GD(ps, lr=r, momentum=0.5)],
                         ids=["adam", "momentum"])
def test_polyak_refuses_directions_it_cannot_serve(rule, make):
    x = ds.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ConfigError, match="negative gradient only"):
        make([x], RULES[rule](0.0))


@pytest.mark.parametrize("dtype", DTYPES)
def test_estimated_polyak_from_the_optimum_takes_no_step(dtype):
    params, loss, f_star = logreg_at_optimum(dtype)
    opt = optim.GD(params, lr=optim.Polyak(f_star=None))
    for _ in range(50):
        opt.step(loss)
        assert opt.last.lr == 0.0 and opt.last.status is LineSearchStatus.FLAT
    with ds.no_grad():
        assert float(loss().data) - f_star <= 1e3 * float(np.finfo(dtype).eps)


def _scipy_logreg(lam: float = 1e-3, n: int = 400, d: int = 6, seed: int = 3):
    """Logistic regression minimised by SciPy's BFGS to working precision (float64): the
    descend parameter at SciPy's optimum, descend's loss, and SciPy's optimum."""
    from scipy.optimize import minimize

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.where(X @ rng.standard_normal(d) + 0.3 * rng.standard_normal(n) > 0, 1.0, -1.0)

    def value(w):
        return float(np.mean(np.logaddexp(0.0, -y * (X @ w))) + 0.5 * lam * w @ w)

    def grad(w):
        s = 0.5 * (1.0 + np.tanh(0.5 * (-y * (X @ w))))  # sigmoid(-y x.w)
        return X.T @ (-y * s) / n + lam * w

    res = minimize(value, np.zeros(d), jac=grad, method="BFGS",
                   options={"gtol": 1e-13, "maxiter": 10_000})
    w = ds.tensor(res.x.copy(), requires_grad=True)
    X_t, y_t = ds.tensor(X), ds.tensor(y)

    def loss():
        return ds.functional.softplus(-(y_t * (X_t @ w))).mean() + (w * w).sum() * (0.5 * lam)

    return w, loss, res.x


@pytest.mark.parametrize("make", [
    lambda ps, r: optim.GD(ps, lr=r),
    lambda ps, r: optim.GD(ps, lr=r, momentum=0.9),
    lambda ps, r: optim.Subgradient(ps, lr=r),
], ids=["gd", "momentum", "subgradient"])
def test_constant_length_at_scipys_optimum_takes_no_step(make):
    # the gradient there is rounding noise (about 1e-10); normalising it into a step of
    # length gamma walked 0.002-0.008 away from the optimum, with no status
    w, loss, w_star = _scipy_logreg()
    start = loss()
    start.backward()
    assert 0 < np.linalg.norm(w.grad) < 1e-9
    w.grad = None
    opt = make([w], optim.ConstantLength(0.01))
    for _ in range(20):
        opt.step(loss)
        assert opt.last.lr == 0.0 and opt.last.step_norm == 0.0
        assert opt.last.status is LineSearchStatus.FLAT
    np.testing.assert_array_equal(w.data, w_star)  # not one bit moved


@pytest.mark.parametrize("gamma", [1e-3, 0.01])
def test_constant_length_away_from_the_optimum_moves_gamma(gamma):
    # the control: a gradient that is not noise gets its step of length gamma
    w, loss, w_star = _scipy_logreg()
    w.data = w_star + 0.05  # ||g|| about 1e-2, far above sqrt(eps)(1 + |f|) = 2e-8
    opt = optim.GD([w], lr=optim.ConstantLength(gamma))
    for _ in range(5):
        before = w.data.copy()
        opt.step(loss)
        assert opt.last.status is None and opt.last.lr > 0
        assert np.linalg.norm(w.data - before) == pytest.approx(gamma, rel=1e-12)
        assert opt.last.lr == pytest.approx(gamma / opt.last.grad_norm, rel=1e-12)


def test_constant_length_and_estimated_polyak_share_one_noise_test():
    # one test decides for both rules: just above and just below sqrt(eps) (1 + |f|)
    eps = float(np.finfo(np.float64).eps)
    loss = 3.0
    edge = math.sqrt(eps) * (1.0 + loss)
    for norm, noise in [(edge, True), (edge * (1 - 1e-12), True), (edge * (1 + 1e-9), False)]:
        ctx = extend.StepContext(t=0, loss=loss, grad_norm=norm, direction_norm=norm,
                                slope=-norm * norm, precision=eps)
        assert optim.rules.gradient_is_noise(ctx) is noise
        for rule in (optim.ConstantLength(0.1), optim.Polyak(f_star=None)):
            choice = rule(ctx)
            assert (choice.status is LineSearchStatus.FLAT) is noise, (rule, norm)
            assert (choice.lr == 0.0) is noise
    # f unknown (a step without a closure): the test falls back to ||g|| <= sqrt(eps)
    ctx = extend.StepContext(0, math.nan, 0.9 * math.sqrt(eps), 1.0, -1.0, precision=eps)
    assert optim.rules.gradient_is_noise(ctx)
    assert optim.ConstantLength(0.1)(ctx).status is LineSearchStatus.FLAT


# --------------------------------------------------------------------------- the pure searches
def test_exact_search_on_a_line_flat_within_rounding_does_not_raise():
    # phi(b) == phi(c) while growing: SciPy refuses such a bracket (ValueError)
    res = exact(lambda a: max(1.0 - a, 0.0))
    assert res.status is LineSearchStatus.FLAT
    assert res.alpha == 1.0 and res.value == 0.0 and res.evaluations == 3


def test_exact_search_on_a_constant_stops_at_the_first_equal_value():
    res = exact(lambda a: 2.0)
    assert res.status is LineSearchStatus.FLAT and res.alpha == 0.0
    assert res.evaluations == 2


def test_backtracking_stops_when_the_loss_does_not_change():
    # a float32 loss of 2^-27: every step gives exactly the same value
    res = backtracking(lambda a: 7.450580596923828e-09, 7.450580596923828e-09, -1.2e-13,
                       c1=0.1, precision=float(np.finfo(np.float32).eps))
    assert res.status is LineSearchStatus.FLAT and res.alpha == 0.0
    assert res.evaluations == 1


def test_backtracking_sees_from_one_trial_that_no_step_can_pass():
    # a slope at rounding level against a curvature of 1: the quadratic model rejects
    # every step whose required decrease phi0 could resolve
    phi0, slope0 = 0.445, -1e-11

    def phi(a):
        return phi0 + slope0 * a + 0.5 * a * a

    res = backtracking(phi, phi0, slope0, c1=0.1, interpolate=False)
    assert res.status is LineSearchStatus.ROUNDING and res.alpha == 0.0
    assert res.evaluations == 1


def test_backtracking_with_float32_precision_stops_at_its_resolution():
    phi0, slope0 = 0.5, -1e-9

    def phi(a):  # rises: no trial is accepted
        return phi0 + 1e-3 * a

    coarse = backtracking(phi, phi0, slope0, c1=0.1, precision=float(np.finfo(np.float32).eps))
    fine = backtracking(phi, phi0, slope0, c1=0.1)
    assert coarse.status is fine.status is LineSearchStatus.ROUNDING
    assert coarse.evaluations < fine.evaluations


def test_strong_wolfe_stops_on_flat_ground():
    res = strong_wolfe(lambda a: (1.0, -1e-30), 1.0, -1e-30)
    assert res.status is LineSearchStatus.FLAT and res.alpha == 0.0
    assert res.evaluations == 1


# --------------------------------------------------------------------------- in training
def _separable(n=256, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    X[:, 0] += np.where(y == 1, 2.0, -2.0)
    return X, y


def test_stochastic_line_search_names_the_stall_in_float32():
    # The float32 loss reaches ~1e-8, where every trial gives exactly the same loss: the
    # search stops after one trial and fit names the stall instead of completing epochs.
    X, y = _separable()
    model = nn.mlp([4, 16, 2], activation="tanh", rng=0)
    opt = optim.GD(model.parameters(), lr=optim.Armijo(c1=0.1))
    history = fit(model, nn.CrossEntropyLoss(), opt, (X, y), epochs=150, batch_size=64,
                  progress=False)
    assert history.stop_reason.criterion == "stalled", history.stop_reason
    assert "working precision" in history.stop_reason.message
    assert len(history.epochs) < 150
    stalled = history.evaluations[-4:]  # the epoch's worth of steps that found nothing
    assert all(lr == 0 for lr in history.lr[-4:])
    # the first backs off from the warm-started step (31 forward passes before); then two
    assert stalled[0] <= 8 and max(stalled[1:]) <= 2, stalled


@pytest.mark.parametrize("dtype", DTYPES)
def test_exact_search_past_convergence_in_fit(dtype):
    X, y = _separable(200, seed=1)
    model = nn.Sequential(nn.Linear(4, 2, rng=0, dtype=dtype))
    opt = optim.GD(model.parameters(), lr=optim.Exact())
    history = fit(model, nn.CrossEntropyLoss(), opt, (X.astype(dtype), y), epochs=300,
                  batch_size=None, progress=False)
    assert history.stop_reason.criterion in ("stalled", "stationary"), history.stop_reason
    assert history.steps < 300 and math.isfinite(history.loss[-1])


def test_fit_stops_at_an_exactly_zero_gradient_with_full_batches():
    # ReLU units all dead: the loss is constant in the parameters
    X, y = _separable(64)
    model = nn.Sequential(nn.Linear(4, 2, rng=0), nn.ReLU())
    for p in model.parameters():
        p.data[...] = -1.0 if p.ndim == 1 else 0.0
    opt = optim.GD(model.parameters(), lr=0.1)
    history = fit(model, nn.CrossEntropyLoss(), opt, (X, y), epochs=50, batch_size=None,
                  progress=False)
    assert history.stop_reason.criterion == "stationary" and history.steps == 1


def test_the_no_progress_stop_is_the_users_to_set():
    X, y = _separable()
    model = nn.mlp([4, 16, 2], activation="tanh", rng=0)
    opt = optim.GD(model.parameters(), lr=optim.Armijo(c1=0.1))
    history = fit(model, nn.CrossEntropyLoss(), opt, (X, y), epochs=40, batch_size=64,
                  progress=False, stop=StopWhen(stalled=10**6))
    assert history.stop_reason.criterion == "epochs"
    assert history.stop_reason.criterion in STOP_REASONS


def test_exact_quadratic_fits_its_model_inside_the_domain():
    # (x - 0.9)^2, NaN for x > 1: the unit step leaves the domain
    x = ds.tensor(np.array([0.2, 0.5, -0.3]), requires_grad=True)

    def loss():
        return ((x - 0.9) ** 2).sum() + (ds.sqrt(1.0 - x) * 0.0).sum()

    opt = optim.GD([x], lr=optim.Exact(quadratic=True))
    with np.errstate(invalid="ignore"):
        for _ in range(5):
            opt.step(loss)
    np.testing.assert_allclose(x.data, 0.9, atol=1e-12)


def test_cli_refuses_adam_with_a_polyak_step():
    out = subprocess.run([sys.executable, "-m", "descend", "train", "--optimizer", "adam",
                          "--lr", "sps", "--epochs", "1", "--quiet"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "negative gradient only" in lines[0], out.stderr
