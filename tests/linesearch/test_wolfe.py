"""Strong Wolfe line search: the Moré-Thuente table, counts, SciPy agreement, statuses."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import line_search

from descend.linesearch import LineSearchStatus, strong_wolfe

from .conftest import Counting

try:
    from scipy.optimize._dcsrch import DCSRCH
except ImportError:  # pragma: no cover - older SciPy
    DCSRCH = None


def holds(f, alpha, c1, c2):
    """Both strong Wolfe conditions, recomputed from scratch at ``alpha``."""
    phi0, slope0 = f(0.0)
    value, slope = f(alpha)
    sufficient = value <= phi0 + c1 * alpha * slope0
    return alpha > 0 and sufficient and abs(slope) <= c2 * abs(slope0)


# --- Moré & Thuente (1994), Tables 1-6 ----------------------------------------------------


def mt1(a, beta=2.0):
    return -a / (a * a + beta), (a * a - beta) / (a * a + beta) ** 2


def mt2(a, beta=0.004):
    t = a + beta
    return t**5 - 2.0 * t**4, t**3 * (5.0 * t - 8.0)


def mt3(a, beta=0.01, el=39.0):
    if a <= 1.0 - beta:
        base, dbase = 1.0 - a, -1.0
    elif a >= 1.0 + beta:
        base, dbase = a - 1.0, 1.0
    else:
        base, dbase = (a - 1.0) ** 2 / (2.0 * beta) + beta / 2.0, (a - 1.0) / beta
    w = el * math.pi / 2.0
    value = base + 2.0 * (1.0 - beta) / (el * math.pi) * math.sin(w * a)
    return value, dbase + (1.0 - beta) * math.cos(w * a)


def yanai(beta1, beta2):
    g1 = math.sqrt(1.0 + beta1 * beta1) - beta1
    g2 = math.sqrt(1.0 + beta2 * beta2) - beta2

    def phi(a):
        r1 = math.sqrt((1.0 - a) ** 2 + beta2 * beta2)
        r2 = math.sqrt(a * a + beta1 * beta1)
        return g1 * r1 + g2 * r2, g1 * (a - 1.0) / r1 + g2 * a / r2

    return phi


# (id, phi_and_slope, mu, eta) with the paper's constants.
MORE_THUENTE = [
    ("mt1", mt1, 1e-3, 1e-1),
    ("mt2", mt2, 1e-1, 1e-1),
    ("mt2-mu1e-3", mt2, 1e-3, 1e-1),
    ("mt3", mt3, 1e-1, 1e-1),
    ("mt4", yanai(1e-3, 1e-3), 1e-3, 1e-3),
    ("mt5", yanai(1e-2, 1e-3), 1e-3, 1e-3),
    ("mt6", yanai(1e-3, 1e-2), 1e-3, 1e-3),
]
ALPHA0S = [1e-3, 1e-1, 1e1, 1e3]


def strict_c2(c1, c2):
    """We require c1 < c2; where the paper has mu == eta, c2 is raised by one ulp."""
    return c2 if c1 < c2 else math.nextafter(c2, 1.0)


@pytest.mark.parametrize("alpha0", ALPHA0S)
@pytest.mark.parametrize("name,f,mu,eta", MORE_THUENTE, ids=[c[0] for c in MORE_THUENTE])
def test_more_thuente_table(name, f, mu, eta, alpha0):
    phi0, slope0 = f(0.0)
    counted = Counting(f)
    res = strong_wolfe(counted, phi0, slope0, alpha0=alpha0, c1=mu, c2=strict_c2(mu, eta))
    assert res.status is LineSearchStatus.CONVERGED, str(res)
    # Checked against the paper's constants exactly, from a fresh evaluation.
    assert holds(f, res.alpha, mu, eta)
    assert (res.value, res.slope) == f(res.alpha)
    assert res.evaluations == len(counted.calls)
    assert 0.0 not in counted.calls
    # The paper's own method needs at most 13 evaluations on any of these cases.
    assert res.evaluations <= 13


@pytest.mark.skipif(DCSRCH is None, reason="scipy.optimize._dcsrch not available")
def test_more_thuente_table_no_costlier_than_dcsrch():
    ours = theirs = 0
    for _, f, mu, eta in MORE_THUENTE:
        for alpha0 in ALPHA0S:
            phi0, slope0 = f(0.0)
            c2 = strict_c2(mu, eta)
            ours += strong_wolfe(f, phi0, slope0, alpha0=alpha0, c1=mu, c2=c2).evaluations
            points: set[float] = set()

            def phi(a, f=f, points=points):
                points.add(float(a))
                return f(a)[0]

            def dphi(a, f=f, points=points):
                points.add(float(a))
                return f(a)[1]

            search = DCSRCH(phi, dphi, mu, c2, 1e-14, 1e-20, 1e10)
            alpha, *_ = search(alpha0, phi0=phi0, derphi0=slope0, maxiter=100)
            assert alpha is not None and holds(f, alpha, mu, eta)
            theirs += len(points)
    assert ours <= theirs


# --- basic behaviour --------------------------------------------------------------------


def quadratic(curv, slope0=-1.0, phi0=0.0):
    def f(a):
        return phi0 + slope0 * a + 0.5 * curv * a * a, slope0 + curv * a

    return f


def test_first_trial_accepted():
    f = Counting(quadratic(1.0))
    res = strong_wolfe(f, 0.0, -1.0, alpha0=1.0)
    assert (res.alpha, res.evaluations, res.status) == (1.0, 1, LineSearchStatus.CONVERGED)
    assert res.slope == 0.0 and f.calls == [1.0]


@pytest.mark.parametrize("alpha0", [1e-6, 1e-2, 0.5, 3.0, 1e3, 1e8])
@pytest.mark.parametrize("curv", [1e-3, 1.0, 1e4])
def test_quadratics_converge_with_exact_counts(alpha0, curv):
    f = Counting(quadratic(curv))
    res = strong_wolfe(f, 0.0, -1.0, alpha0=alpha0, c1=1e-4, c2=0.1)
    assert res.converged and holds(f.fn, res.alpha, 1e-4, 0.1)
    assert res.evaluations == len(f.calls) <= 12


def test_cubic_interpolation_finds_quadratic_minimiser_in_one_zoom_step():
    # Overshooting alpha0 = 4 on a quadratic with minimiser 1: the cubic through (0, 4) with
    # both slopes is the quadratic itself, so the next trial is exactly the minimiser.
    f = Counting(quadratic(1.0))
    res = strong_wolfe(f, 0.0, -1.0, alpha0=4.0, c2=0.01)
    assert res.converged and res.alpha == pytest.approx(1.0, rel=1e-12)
    assert res.evaluations == 2


def test_alpha0_is_clipped_to_alpha_max():
    f = Counting(quadratic(1.0))
    res = strong_wolfe(f, 0.0, -1.0, alpha0=10.0, alpha_max=1.5)
    assert f.calls[0] == 1.5 and res.converged


# --- agreement with scipy.optimize.line_search --------------------------------------------


@pytest.mark.parametrize("seed", range(8))
def test_agrees_with_scipy_line_search_on_convex_quadratics(seed):
    rng = np.random.default_rng(seed)
    n = 5
    m = rng.normal(size=(n, n))
    hess = m @ m.T + 0.1 * np.eye(n)
    b = rng.normal(size=n)
    x0 = rng.normal(size=n)

    def fun(x):
        return 0.5 * x @ hess @ x - b @ x

    def grad(x):
        return hess @ x - b

    d = -grad(x0)

    def f(a):
        x = x0 + a * d
        return float(fun(x)), float(grad(x) @ d)

    c1, c2 = 1e-4, 0.9
    phi0, slope0 = f(0.0)
    ours = strong_wolfe(f, phi0, slope0, c1=c1, c2=c2)
    theirs = line_search(fun, grad, x0, d, c1=c1, c2=c2)[0]
    assert ours.converged and theirs is not None
    assert holds(f, ours.alpha, c1, c2) and holds(f, theirs, c1, c2)
    if holds(f, 1.0, c1, c2):
        assert ours.alpha == theirs == 1.0  # deterministic: first trial accepted by both


def rosenbrock(x):
    return float(100.0 * (x[1] - x[0] ** 2) ** 2 + (1.0 - x[0]) ** 2)


def rosenbrock_grad(x):
    return np.array(
        [-400.0 * x[0] * (x[1] - x[0] ** 2) - 2.0 * (1.0 - x[0]), 200.0 * (x[1] - x[0] ** 2)]
    )


@pytest.mark.parametrize("seed", range(10))
def test_both_satisfy_conditions_on_rosenbrock_directions(seed):
    rng = np.random.default_rng(100 + seed)
    x0 = rng.uniform(-2, 2, size=2)
    d = -rosenbrock_grad(x0) + rng.normal(scale=0.1, size=2)
    if rosenbrock_grad(x0) @ d >= 0:
        d = -rosenbrock_grad(x0)

    def f(a):
        x = x0 + a * d
        return rosenbrock(x), float(rosenbrock_grad(x) @ d)

    c1, c2 = 1e-4, 0.9
    phi0, slope0 = f(0.0)
    ours = strong_wolfe(f, phi0, slope0, c1=c1, c2=c2)
    assert ours.converged and holds(f, ours.alpha, c1, c2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SciPy warns (LineSearchWarning) when it gives up
        theirs = line_search(rosenbrock, rosenbrock_grad, x0, d, c1=c1, c2=c2)[0]
    if theirs is not None:  # SciPy's own failure is not ours to test
        assert holds(f, theirs, c1, c2)


# --- statuses ---------------------------------------------------------------------------


def test_status_not_descent():
    f = Counting(quadratic(1.0))
    for slope0 in (0.0, 2.0):
        res = strong_wolfe(f, 7.0, slope0)
        assert res.status is LineSearchStatus.NOT_DESCENT
        assert (res.alpha, res.value, res.slope, res.evaluations) == (0.0, 7.0, slope0, 0)
    assert f.calls == []


def test_status_max_step_on_unbounded_linear_phi():
    f = Counting(lambda a: (-a, -1.0))
    res = strong_wolfe(f, 0.0, -1.0, alpha0=1.0, alpha_max=100.0)
    assert res.status is LineSearchStatus.MAX_STEP and not res.converged
    assert (res.alpha, res.value, res.slope) == (100.0, -100.0, -1.0)
    assert f.calls[-1] == 100.0 and max(f.calls) == 100.0
    assert res.evaluations == len(f.calls)


def test_status_max_evals_returns_best_sufficient_decrease_point():
    f = Counting(lambda a: (-a, -1.0))
    res = strong_wolfe(f, 0.0, -1.0, alpha0=1.0, max_evals=3)
    assert res.status is LineSearchStatus.MAX_EVALS
    assert res.evaluations == 3 == len(f.calls)
    assert res.alpha == max(f.calls) and res.value == -res.alpha


def test_status_max_evals_without_any_decrease_returns_origin():
    # phi rises at once although phi'(0) < 0 claims otherwise.
    f = Counting(lambda a: (1.0 + a, 1.0))
    res = strong_wolfe(f, 1.0, -1.0, max_evals=4)
    assert res.status is LineSearchStatus.MAX_EVALS
    assert (res.alpha, res.value, res.slope, res.evaluations) == (0.0, 1.0, -1.0, 4)


def test_status_rounding_when_no_strong_wolfe_point_exists():
    # |phi'| = 1 everywhere except at the kink: no point satisfies |phi'| <= 0.5.
    f = Counting(lambda a: (abs(a - 1.0), math.copysign(1.0, a - 1.0)))
    res = strong_wolfe(f, 1.0, -1.0, alpha0=0.3, c1=0.1, c2=0.5, max_evals=200)
    assert res.status is LineSearchStatus.ROUNDING
    assert res.evaluations == len(f.calls) < 200
    # The best point with sufficient decrease is returned: next to the kink.
    assert res.alpha == pytest.approx(1.0, abs=1e-10)
    assert res.value <= 1.0 + 0.1 * res.alpha * -1.0


def test_status_non_finite_when_every_trial_is_nan():
    f = Counting(lambda a: (math.nan, math.nan))
    res = strong_wolfe(f, 0.0, -1.0, max_evals=10)
    assert res.status is LineSearchStatus.NON_FINITE
    assert (res.alpha, res.value, res.slope, res.evaluations) == (0.0, 0.0, -1.0, 10)


def test_non_finite_trial_becomes_bracket_end_and_search_recovers():
    # phi(a) = -log(1 - a) - 2 a exists only for a < 1; its minimiser is 0.5.
    def f(a):
        if a >= 1.0:
            return math.nan, math.nan
        return -math.log1p(-a) - 2.0 * a, 1.0 / (1.0 - a) - 2.0

    counted = Counting(f)
    res = strong_wolfe(counted, 0.0, -1.0, alpha0=50.0, c2=0.1)
    assert res.converged and holds(f, res.alpha, 1e-4, 0.1)
    assert res.alpha < 1.0
    # After a non-finite trial, no later trial goes beyond it.
    bad = [a for a in counted.calls if a >= 1.0]
    assert bad and all(a <= bad[0] for a in counted.calls[counted.calls.index(bad[0]) :])


def test_overflow_to_inf_recovers():
    def f(a):
        with np.errstate(over="ignore"):
            e = float(np.exp(a))
        return e - 2.0 * a, e - 2.0

    res = strong_wolfe(f, 1.0, -1.0, alpha0=1e4)
    assert res.converged and holds(f, res.alpha, 1e-4, 0.9)


# --- properties -------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    curv=st.floats(1e-4, 1e4),
    slope0=st.floats(-1e3, -1e-3),
    alpha0=st.floats(1e-4, 1e4),
    c1=st.floats(1e-5, 0.4),
    gap=st.floats(0.05, 0.5),
)
def test_property_quadratics(curv, slope0, alpha0, c1, gap):
    c2 = c1 + gap
    f = Counting(quadratic(curv, slope0))
    res = strong_wolfe(f, 0.0, slope0, alpha0=alpha0, c1=c1, c2=c2)
    assert res.converged, str(res)
    assert holds(f.fn, res.alpha, c1, c2)
    assert res.evaluations == len(f.calls) <= 20


@settings(max_examples=150, deadline=None)
@given(
    a=st.floats(0.01, 10.0),
    b=st.floats(-10.0, 10.0),
    x0=st.floats(-5.0, 5.0),
    alpha0=st.floats(1e-3, 1e3),
    c2=st.floats(0.1, 0.9),
)
def test_property_smooth_functions(a, b, x0, alpha0, c2):
    # f(x) = a x^2 + b sin(x) along d = -sign(f'(x0)): bounded below, so strong Wolfe points
    # exist whenever phi'(0) < 0.
    grad = 2 * a * x0 + b * math.cos(x0)
    if abs(grad) < 1e-8:
        return
    d = -math.copysign(1.0, grad)

    def f(t):
        x = x0 + t * d
        return a * x * x + b * math.sin(x), (2 * a * x + b * math.cos(x)) * d

    phi0, slope0 = f(0.0)
    counted = Counting(f)
    res = strong_wolfe(counted, phi0, slope0, alpha0=alpha0, c1=1e-4, c2=c2)
    assert res.evaluations == len(counted.calls)
    assert res.converged, str(res)
    assert holds(f, res.alpha, 1e-4, c2)
