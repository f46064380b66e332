"""Every step rule x {GD, GD with momentum} on convex problems with known optima.

The problems come from ``descend.problems``; their optima are computed with NumPy/SciPy,
independently of descend. Each case states the guarantee it relies on and a step budget.

Which combinations are asserted to reach the optimum, and why:

* Gradient descent (no momentum), L-smooth convex f: every rule below converges.
  Constant 1/L, and any steps with alpha_t <= 1/L, satisfy
  f(x_T) - f* <= ||x_0 - x*||^2 / (2 sum_{t<T} alpha_t) (Nesterov 2004, Cor. 2.1.2 with
  varying steps), asserted at every step for the schedules. Armijo and strong-Wolfe steps
  converge by Zoutendijk's theorem (Nocedal & Wright 2006, Thm 3.2) and, on strongly convex
  f, linearly; exact line search too (N&W Thm 3.3 on quadratics); Polyak's step with the
  true f* converges for convex smooth f (Polyak 1987, §5.3; Hazan & Kakade 2019).
* Heavy-ball momentum beta = 0.5: a constant step alpha in (0, 2(1 - beta)/L) converges for
  convex L-smooth f (Ghadimi, Feyzmahdavian & Johansson 2015); we use (1 - beta)/L.
  Line searches along a momentum direction only guarantee monotone decrease (each accepted
  step satisfies sufficient decrease, with the optimizer's fallback to -g when the momentum
  direction does not descend); convergence needs the angle condition of Zoutendijk's
  theorem, which momentum does not ensure, so for them only monotonicity is asserted.
  Diminishing schedules and Polyak's step with heavy-ball momentum have no classical
  guarantee at these constants and are not run here.
* Non-smooth convex (max-affine, an LP): the subgradient method with InverseSqrt, Polyak
  (known and estimated f*) and constant-length steps; the classical bound
  f_best - f* <= (R^2 + G^2 sum alpha^2) / (2 sum alpha) (Boyd & Mutapcic, §2.3) must hold.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from descend import problems as P
from descend.optim import (
    GD,
    Armijo,
    Constant,
    ConstantLength,
    Exact,
    InverseSqrt,
    InverseTime,
    Polyak,
    StrongWolfe,
    Subgradient,
)


@pytest.fixture(scope="module")
def problems():
    built = {
        "leastsq": P.least_squares(),
        "ridge": P.ridge(),
        "logreg": P.logistic_regression(),
        "maxaffine": P.max_affine(),
    }

    def get(name: str) -> P.Problem:
        p = built[name]
        p.reset()
        return p

    return get


def flat(arrays) -> np.ndarray:
    return np.concatenate([np.ravel(a) for a in arrays])


def gradient(p: P.Problem) -> np.ndarray:
    for q in p.params:
        q.grad = None
    p.loss().backward()
    return flat([q.grad for q in p.params])


# ------------------------------------------------------------------------------ GD on smooth convex
# (id, rule factory, momentum, problems, tolerance on f - f*, step budget)
def _constant(p):
    return Constant(1.0 / p.lipschitz)


def _constant_heavy_ball(p):
    return Constant(0.5 / p.lipschitz)  # (1 - beta)/L with beta = 0.5


def _inverse_time(p):
    return InverseTime(100.0 / p.lipschitz, 100.0)  # alpha_0 = 1/L, then a/(b + t)


def _inverse_sqrt(p):
    return InverseSqrt(10.0 / p.lipschitz, 100.0)  # alpha_0 = 1/L, then a/sqrt(b + t)


SMOOTH = ["leastsq", "logreg"]
CASES = [
    ("constant-1/L", _constant, 0.0, SMOOTH, 1e-10, 150),
    ("inverse-time", _inverse_time, 0.0, SMOOTH, 1e-8, 200),
    ("inverse-sqrt", _inverse_sqrt, 0.0, SMOOTH, 1e-8, 200),
    ("armijo", lambda p: Armijo(), 0.0, SMOOTH, 1e-10, 100),
    ("strong-wolfe", lambda p: StrongWolfe(), 0.0, SMOOTH, 1e-10, 100),
    ("exact", lambda p: Exact(), 0.0, SMOOTH, 1e-10, 100),
    ("exact-quadratic", lambda p: Exact(quadratic=True), 0.0, ["leastsq", "ridge"], 1e-10, 100),
    ("polyak", lambda p: Polyak(f_star=p.f_star), 0.0, SMOOTH, 1e-10, 100),
    ("heavy-ball-constant", _constant_heavy_ball, 0.5, SMOOTH, 1e-10, 200),
]
PARAMS = [
    pytest.param(name, factory, momentum, prob, tol, budget, id=f"{name}-{prob}")
    for name, factory, momentum, probs, tol, budget in CASES
    for prob in probs
]


@pytest.mark.parametrize("name, factory, momentum, prob, tol, budget", PARAMS)
def test_rule_reaches_the_known_optimum(problems, name, factory, momentum, prob, tol, budget):
    p = problems(prob)
    opt = GD(p.params, lr=factory(p), momentum=momentum)
    R = p.distance()
    sum_alpha = 0.0
    previous = p.value()
    for step in range(budget):
        opt.step(p.loss)
        sum_alpha += opt.last.lr
        gap = p.gap()
        if momentum == 0:
            assert gap <= previous - p.f_star + 1e-15, f"f rose at step {step}"
        if isinstance(opt.rule, Constant | InverseTime | InverseSqrt) and momentum == 0:
            # f(x_T) - f* <= R^2 / (2 sum alpha) for steps alpha_t <= 1/L
            assert gap <= R * R / (2 * sum_alpha) * (1 + 1e-9) + 1e-15
        previous = p.value()
        if gap <= tol:
            break
    assert gap <= tol, f"{name} on {prob}: f - f* = {gap:.3e} after {budget} steps"
    assert p.distance() < 1e-3  # the optimum is unique: the iterates approach x*


@pytest.mark.parametrize("factory", [lambda p: Armijo(), lambda p: StrongWolfe(),
                                     lambda p: Exact()], ids=["armijo", "wolfe", "exact"])
@pytest.mark.parametrize("prob", SMOOTH)
def test_line_search_with_momentum_never_raises_f(problems, factory, prob):
    p = problems(prob)
    opt = GD(p.params, lr=factory(p), momentum=0.5)
    previous = p.value()
    for _ in range(20):
        opt.step(p.loss)
        now = p.value()
        assert now <= previous + 1e-14 * max(1.0, abs(previous))
        previous = now
    assert p.gap() < p.numpy_objective(p.x0) - p.f_star  # and it made progress


# ------------------------------------------------------------------------------ line-search points
@pytest.mark.parametrize("prob", SMOOTH)
def test_armijo_accepted_points_recomputed_on_the_real_objective(problems, prob):
    p = problems(prob)
    c1 = 0.3  # a demanding constant, so the search backtracks
    opt = GD(p.params, lr=Armijo(c1=c1, alpha0=4.0 / p.lipschitz))
    for _ in range(15):
        x0 = flat(p.point())
        f0 = p.numpy_objective(p.point())
        g0 = gradient(p)
        opt.step(p.loss)
        alpha = opt.last.lr
        x1 = flat(p.point())
        np.testing.assert_allclose(x1, x0 - alpha * g0, rtol=1e-12, atol=1e-14)
        f1 = p.numpy_objective(p.point())
        assert alpha > 0
        assert f1 <= f0 - c1 * alpha * float(g0 @ g0) + 1e-15
        np.testing.assert_allclose(opt.last.new_loss, f1, rtol=1e-12)


@pytest.mark.parametrize("prob", SMOOTH)
def test_strong_wolfe_accepted_points_recomputed_on_the_real_objective(problems, prob):
    p = problems(prob)
    c1, c2 = 1e-4, 0.1
    opt = GD(p.params, lr=StrongWolfe(c1=c1, c2=c2))
    for _ in range(8):
        f0 = p.numpy_objective(p.point())
        g0 = gradient(p)
        opt.step(p.loss)
        alpha = opt.last.lr
        f1 = p.numpy_objective(p.point())
        g1 = gradient(p)
        slope0 = -float(g0 @ g0)
        assert f1 <= f0 + c1 * alpha * slope0 + 1e-15
        assert abs(float(g1 @ -g0)) <= c2 * abs(slope0) * (1 + 1e-9)
        if p.gap() < 1e-12:
            break


def test_exact_quadratic_step_is_the_closed_form_on_least_squares(problems):
    p = problems("leastsq")
    opt = GD(p.params, lr=Exact(quadratic=True))
    H = hessian(p)
    for _ in range(5):
        g = gradient(p)
        opt.step(p.loss)
        np.testing.assert_allclose(opt.last.lr, float(g @ g) / float(g @ H @ g), rtol=1e-9)


def hessian(p: P.Problem, eps: float = 1e-5) -> np.ndarray:
    x = p.point()[0]
    cols = []
    for i in range(len(x)):
        e = np.zeros_like(x)
        e[i] = eps
        p.set_point([x + e])
        gp = gradient(p)
        p.set_point([x - e])
        gm = gradient(p)
        cols.append((gp - gm) / (2 * eps))
    p.set_point([x])
    return np.array(cols)


def test_polyak_step_is_the_gap_over_the_squared_gradient(problems):
    p = problems("logreg")
    opt = GD(p.params, lr=Polyak(f_star=p.f_star))
    for _ in range(5):
        f = p.numpy_objective(p.point())
        g = gradient(p)
        opt.step(p.loss)
        np.testing.assert_allclose(opt.last.lr, (f - p.f_star) / float(g @ g), rtol=1e-10)


# ------------------------------------------------------------------------------ subgradient method
SUBGRADIENT = [
    ("inverse-sqrt", lambda p: InverseSqrt(0.1), 1200, 1e-2),
    ("polyak-known", lambda p: Polyak(f_star=p.f_star), 1200, 1e-2),
    ("polyak-estimated", lambda p: Polyak(f_star=None, gamma=0.5), 1500, 2e-2),
    ("constant-length", lambda p: ConstantLength(0.01), 1200, 5e-2),
]


@pytest.mark.parametrize("name, factory, budget, tol", SUBGRADIENT,
                         ids=[c[0] for c in SUBGRADIENT])
def test_subgradient_method_on_max_affine_approaches_the_lp_optimum(
    problems, name, factory, budget, tol
):
    p = problems("maxaffine")
    R = p.distance()
    G = p.subgradient_bound
    opt = Subgradient(p.params, lr=factory(p))
    seen = []
    for step in range(budget):
        seen.append(p.value())
        opt.step(p.loss)
        assert opt.best_loss == min(seen)
        if step % 100 == 99 or step == budget - 1:
            assert opt.best_loss - p.f_star <= opt.guarantee(R, G)  # Boyd & Mutapcic §2.3
    gap = opt.best_loss - p.f_star
    assert 0 <= gap < tol, f"{name}: f_best - f* = {gap:.3e}"
    assert opt.guarantee(R, G) >= gap
    # not a descent method: some steps raised f
    assert np.any(np.diff(seen) > 0)
    # restore_best puts back the best point seen
    assert opt.restore_best()
    assert p.value() == opt.best_loss
    assert p.numpy_objective(p.point()) == pytest.approx(opt.best_loss, rel=1e-14)


def test_subgradient_guarantee_with_constant_length_matches_boyd_formula(problems):
    p = problems("maxaffine")
    R, G, gamma, k = p.distance(), p.subgradient_bound, 0.01, 500
    opt = Subgradient(p.params, lr=ConstantLength(gamma))
    for _ in range(k):
        opt.step(p.loss)
    # with alpha_i = gamma/||g_i|| >= gamma/G the bound is at most G (R^2 + k gamma^2)/(2 k gamma)
    assert opt.guarantee(R, G) <= G * (R * R + k * gamma**2) / (2 * k * gamma) * (1 + 1e-12)
    assert opt.best_loss - p.f_star <= opt.guarantee(R, G)


def test_subgradient_method_refuses_line_searches(problems):
    from descend.errors import ConfigError

    p = problems("maxaffine")
    with pytest.raises(ConfigError, match="line search"):
        Subgradient(p.params, lr=Armijo())


def test_line_search_on_max_affine_stalls_above_the_optimum(problems):
    """Why the subgradient method exists: -g of a non-smooth f need not descend at a kink,
    so a backtracking search eventually finds no acceptable step far from x*."""
    p = problems("maxaffine")
    opt = GD(p.params, lr=Armijo())
    for _ in range(200):
        opt.step(p.loss)
    assert p.gap() > 1e-2
    assert opt.last.lr == 0.0
    assert math.isfinite(p.value())
