"""Backtracking (Armijo) line search: conditions recomputed, counts, safeguards, statuses."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from descend.linesearch import LineSearchStatus, backtracking

from .conftest import Counting

try:  # SciPy's private module; the public alias ``scipy.optimize.linesearch`` is deprecated
    from scipy.optimize._linesearch import scalar_search_armijo
except ImportError:  # pragma: no cover
    scalar_search_armijo = None


def armijo(phi0, slope0, alpha, value, c1):
    return value <= phi0 + c1 * alpha * slope0


def exp(a):
    """math.exp that overflows to inf instead of raising."""
    return math.exp(a) if a < 700.0 else math.inf


# (name, phi, phi'(0)); phi(0) is computed from phi
SMOOTH = [
    ("quadratic", lambda a: (a - 1.0) ** 2, -2.0),
    ("steep quadratic", lambda a: 1e4 * (a - 1e-3) ** 2, -20.0),
    ("quartic", lambda a: (a - 0.3) ** 4 + 0.1 * a, -4 * (-0.3) ** 3 + 0.1),
    ("exp", lambda a: exp(a) - 3.0 * a, 1.0 - 3.0),
    ("log-barrier", lambda a: -math.log(2.0 - a) - a if a < 2 else math.inf, 0.5 - 1.0),
    ("sin", lambda a: math.sin(3.0 * a) + 0.1 * a * a, 3.0),  # ascent: slope0 > 0
    ("cos", lambda a: -math.cos(a - 1.0) + 0.01 * a, -math.sin(1.0) + 0.01),
]


@pytest.mark.parametrize("name,phi,slope0", SMOOTH, ids=[s[0] for s in SMOOTH])
@pytest.mark.parametrize("alpha0", [1e-2, 1.0, 10.0, 1e4])
@pytest.mark.parametrize("interpolate", [True, False])
@pytest.mark.parametrize("c1", [1e-4, 0.3])
def test_armijo_holds_and_counts_match(name, phi, slope0, alpha0, interpolate, c1):
    phi0 = phi(0.0)
    counted = Counting(phi)
    res = backtracking(counted, phi0, slope0, alpha0=alpha0, c1=c1, interpolate=interpolate)
    assert res.evaluations == len(counted.calls)
    assert 0.0 not in counted.calls
    if slope0 >= 0:
        assert res.status is LineSearchStatus.NOT_DESCENT
        return
    assert res.status is LineSearchStatus.CONVERGED, str(res)
    assert res.slope is None
    assert res.value == phi(res.alpha)
    assert armijo(phi0, slope0, res.alpha, phi(res.alpha), c1)
    # The returned step is the last one tried, and every earlier one was rejected.
    assert counted.calls[-1] == res.alpha
    for a in counted.calls[:-1]:
        v = phi(a)
        assert not (math.isfinite(v) and armijo(phi0, slope0, a, v, c1))


def test_first_trial_accepted_returns_alpha0_after_one_call():
    counted = Counting(lambda a: (a - 1.0) ** 2)
    res = backtracking(counted, 1.0, -2.0, alpha0=0.7)
    assert (res.alpha, res.evaluations, res.status) == (0.7, 1, LineSearchStatus.CONVERGED)
    assert counted.calls == [0.7]


@pytest.mark.parametrize("ratio", [2.0, 3.0, 7.5, 10.0])
def test_quadratic_interpolation_is_exact_on_quadratics(ratio):
    # phi(a) = 1 - 4 a + 2 a^2 has minimiser a* = 1; from alpha0 = ratio * a* the quadratic
    # through phi(0), phi'(0), phi(alpha0) is phi itself, and a* lies in [0.1, 0.5] * alpha0.
    phi = Counting(lambda a: 1.0 - 4.0 * a + 2.0 * a * a)
    res = backtracking(phi, 1.0, -4.0, alpha0=ratio)
    assert res.converged
    assert res.alpha == pytest.approx(1.0, rel=1e-12)
    assert res.evaluations == 2 == len(phi.calls)


def test_interpolated_steps_respect_safeguards():
    # A function that rises sharply makes the quadratic model ask for tiny steps.
    phi = Counting(lambda a: -a + 1e6 * max(a - 1e-6, 0.0) ** 2)
    res = backtracking(phi, 0.0, -1.0, alpha0=1.0, min_shrink=0.1, max_evals=100)
    assert res.converged
    ratios = [b / a for a, b in zip(phi.calls, phi.calls[1:])]
    assert all(0.1 * (1 - 1e-12) <= r <= 0.5 * (1 + 1e-12) for r in ratios), ratios


def test_without_interpolation_steps_are_geometric():
    phi = Counting(lambda a: (a - 0.01) ** 2)
    res = backtracking(phi, 1e-4, -0.02, alpha0=1.0, shrink=0.3, interpolate=False)
    assert res.converged
    expected = [1.0]
    while len(expected) < len(phi.calls):
        expected.append(0.3 * expected[-1])  # repeated multiplication, as the search does
    assert phi.calls == expected
    assert len(phi.calls) == 5  # 0.3^4 = 0.0081 is the first step passing Armijo


def test_non_finite_values_shrink_by_shrink_without_interpolating():
    def phi(a):
        return math.inf if a > 0.3 else (a - 0.2) ** 2

    counted = Counting(phi)
    res = backtracking(counted, 0.04, -0.4, alpha0=10.0, shrink=0.5)
    assert res.converged and armijo(0.04, -0.4, res.alpha, phi(res.alpha), 1e-4)
    # 10 -> 5 -> 2.5 -> 1.25 -> 0.625 -> 0.3125 are non-finite: exact halvings.
    assert counted.calls[:6] == [10.0 * 0.5**k for k in range(6)]
    assert counted.calls[6] == 0.15625


def test_nan_treated_like_inf():
    phi = Counting(lambda a: math.nan if a > 1 else (a - 0.5) ** 2)
    res = backtracking(phi, 0.25, -1.0, alpha0=4.0, shrink=0.5)
    assert res.converged and phi.calls[:3] == [4.0, 2.0, 1.0]


# --- statuses ---------------------------------------------------------------------------


def test_status_not_descent_never_calls_phi():
    phi = Counting(lambda a: a)
    for slope0 in (0.0, 1.0):
        res = backtracking(phi, 3.0, slope0)
        assert res.status is LineSearchStatus.NOT_DESCENT
        assert (res.alpha, res.value, res.slope, res.evaluations) == (0.0, 3.0, None, 0)
    assert phi.calls == []


def test_status_max_evals_returns_best_lower_trial():
    # phi dips below phi0 near a = 0.25 but never by the Armijo amount for c1 = 0.9.
    def phi(a):
        return -1e-3 * math.exp(-((a - 0.25) ** 2) / 1e-3)

    counted = Counting(phi)
    res = backtracking(counted, 0.0, -1.0, alpha0=1.0, c1=0.9, max_evals=4, interpolate=False)
    assert res.status is LineSearchStatus.MAX_EVALS
    assert res.evaluations == 4 == len(counted.calls)
    values = [phi(a) for a in counted.calls]
    best = int(np.argmin(values))
    assert values[best] < 0.0
    assert (res.alpha, res.value) == (counted.calls[best], values[best])
    assert not res.converged


def test_status_max_evals_without_decrease_returns_origin():
    res = backtracking(lambda a: 5.0 + a, 5.0, -1.0, max_evals=3)
    assert res.status is LineSearchStatus.MAX_EVALS
    assert (res.alpha, res.value, res.evaluations) == (0.0, 5.0, 3)


def test_status_rounding_when_decrease_is_below_resolution():
    # phi'(0) is wrong (phi actually increases): once c1*alpha*slope0 vanishes next to
    # phi0 = 1, no smaller step can pass the test either.
    phi = Counting(lambda a: 1.0 + a)
    res = backtracking(phi, 1.0, -1.0, max_evals=1000)
    assert res.status is LineSearchStatus.ROUNDING
    assert res.alpha == 0.0 and res.value == 1.0
    last = phi.calls[-1]
    assert 1.0 + 1e-4 * last * -1.0 == 1.0
    assert res.evaluations == len(phi.calls) < 1000


def test_status_non_finite_when_every_trial_is_nan():
    phi = Counting(lambda a: math.nan)
    res = backtracking(phi, 0.0, -1.0, max_evals=12)
    assert res.status is LineSearchStatus.NON_FINITE
    assert (res.alpha, res.value, res.evaluations) == (0.0, 0.0, 12)


def test_non_finite_status_after_underflow():
    res = backtracking(lambda a: math.inf, 0.0, -1.0, shrink=1e-100, max_evals=100)
    assert res.status is LineSearchStatus.NON_FINITE
    assert res.evaluations <= 5


# --- agreement with SciPy ---------------------------------------------------------------

needs_scipy = pytest.mark.skipif(scalar_search_armijo is None, reason="SciPy private API moved")


@needs_scipy
@pytest.mark.parametrize("curv", [0.5, 1.0, 3.0, 40.0])
@pytest.mark.parametrize("alpha0", [0.01, 0.5, 1.0])
def test_agrees_with_scipy_on_convex_quadratics(curv, alpha0):
    # phi(a) = 2 - a + curv a^2 / 2: minimiser 1/curv.
    def phi(a):
        return 2.0 - a + 0.5 * curv * a * a

    ours = backtracking(phi, 2.0, -1.0, alpha0=alpha0)
    alpha, _ = scalar_search_armijo(phi, 2.0, -1.0, c1=1e-4, alpha0=alpha0)
    assert ours.converged and alpha is not None
    for a in (ours.alpha, alpha):
        assert armijo(2.0, -1.0, a, phi(a), 1e-4)
    a_star = 1.0 / curv
    if alpha0 <= 2 * a_star or 2 * a_star <= alpha0 <= 10 * a_star:
        # Deterministic cases: first trial accepted, or the first quadratic step is a* itself
        # inside both methods' safeguards.
        assert ours.alpha == pytest.approx(alpha, rel=1e-12)


@needs_scipy
@pytest.mark.parametrize("alpha0", [1.0, 5.0, 50.0])
def test_agrees_with_scipy_on_smooth_function(alpha0):
    def phi(a):
        return exp(a) - 3.0 * a

    ours = backtracking(phi, 1.0, -2.0, alpha0=alpha0)
    alpha, _ = scalar_search_armijo(phi, 1.0, -2.0, alpha0=alpha0)
    assert ours.converged and alpha is not None
    assert armijo(1.0, -2.0, ours.alpha, phi(ours.alpha), 1e-4)
    assert armijo(1.0, -2.0, alpha, phi(alpha), 1e-4)


# --- properties -------------------------------------------------------------------------

DOCUMENTED_FAILURES = {
    LineSearchStatus.FLAT,
    LineSearchStatus.MAX_EVALS,
    LineSearchStatus.ROUNDING,
    LineSearchStatus.NON_FINITE,
}

finite = st.floats(allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(
    curv=st.floats(1e-6, 1e6),
    slope0=st.floats(-1e6, -1e-6),
    phi0=st.floats(-1e6, 1e6),
    alpha0=st.floats(1e-8, 1e8),
    c1=st.floats(1e-6, 0.99),
    interpolate=st.booleans(),
)
def test_property_convex_quadratics(curv, slope0, phi0, alpha0, c1, interpolate):
    def phi(a):
        return phi0 + slope0 * a + 0.5 * curv * a * a

    counted = Counting(phi)
    res = backtracking(counted, phi0, slope0, alpha0=alpha0, c1=c1, interpolate=interpolate)
    assert res.evaluations == len(counted.calls) <= 30
    if res.status is LineSearchStatus.CONVERGED:
        assert armijo(phi0, slope0, res.alpha, phi(res.alpha), c1)
    else:
        assert res.status in DOCUMENTED_FAILURES
        assert res.value <= phi0


@settings(max_examples=200, deadline=None)
@given(
    a=st.floats(0.0, 100.0),
    b=st.floats(-100.0, 100.0),
    x0=st.floats(-10.0, 10.0),
    alpha0=st.floats(1e-6, 1e4),
    c1=st.floats(1e-6, 0.9),
    interpolate=st.booleans(),
)
def test_property_smooth_functions(a, b, x0, alpha0, c1, interpolate):
    # f(x) = a x^2 + b sin(x) along the descent direction d = -sign(f'(x0)).
    grad = 2 * a * x0 + b * math.cos(x0)
    if grad == 0.0:
        return
    d = -math.copysign(1.0, grad)

    def phi(t):
        x = x0 + t * d
        return a * x * x + b * math.sin(x)

    phi0, slope0 = phi(0.0), grad * d
    counted = Counting(phi)
    res = backtracking(counted, phi0, slope0, alpha0=alpha0, c1=c1, interpolate=interpolate)
    assert res.evaluations == len(counted.calls)
    if res.status is LineSearchStatus.CONVERGED:
        assert armijo(phi0, slope0, res.alpha, phi(res.alpha), c1)
    else:
        assert res.status in DOCUMENTED_FAILURES
        assert res.value <= phi0
