"""Exact line search: closed form for quadratics, bracketing + Brent otherwise."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar

from descend.errors import ConfigError
from descend.linesearch import LineSearchStatus, exact

from .conftest import Counting


def quadratic(phi0, slope0, curv):
    return lambda a: phi0 + slope0 * a + 0.5 * curv * a * a


# --- closed form ------------------------------------------------------------------------


@pytest.mark.parametrize("slope0,curv", [(-1.0, 1.0), (-3.0, 0.5), (-1e-3, 1e3), (-50.0, 2.0)])
def test_quadratic_closed_form_uses_one_evaluation(slope0, curv):
    phi = Counting(quadratic(2.0, slope0, curv))
    res = exact(phi, quadratic=(slope0, curv))
    assert res.status is LineSearchStatus.CONVERGED
    assert res.alpha == -slope0 / curv
    assert res.value == phi.fn(res.alpha)
    assert res.slope == 0.0
    assert res.evaluations == 1 and phi.calls == [res.alpha]


@pytest.mark.parametrize("slope0,curv", [(0.0, 1.0), (2.0, 1.0), (0.0, 0.0), (1.0, 0.0)])
def test_quadratic_not_descent_returns_origin(slope0, curv):
    phi = Counting(quadratic(4.0, slope0, curv))
    res = exact(phi, quadratic=(slope0, curv))
    assert res.status is LineSearchStatus.NOT_DESCENT
    assert (res.alpha, res.value, res.evaluations) == (0.0, 4.0, 1)
    assert phi.calls == [0.0]


@pytest.mark.parametrize("slope0,curv", [(-1.0, 0.0), (-1.0, -2.0), (1.0, -2.0), (0.0, -1.0)])
def test_quadratic_unbounded_below_raises(slope0, curv):
    phi = Counting(quadratic(0.0, slope0, curv))
    with pytest.raises(ConfigError, match="curvature"):
        exact(phi, quadratic=(slope0, curv))
    assert phi.calls == []


# --- general phi ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "slope0,curv", [(-1.0, 1.0), (-2.0, 10.0), (-1.0, 0.01), (-5.0, 0.1), (-0.2, 1.0)]
)
def test_agrees_with_closed_form_on_quadratics(slope0, curv):
    phi = Counting(quadratic(1.0, slope0, curv))
    res = exact(phi)
    assert res.status is LineSearchStatus.CONVERGED
    assert res.alpha == pytest.approx(-slope0 / curv, rel=1e-6, abs=1e-9)
    assert res.evaluations == len(phi.calls)
    assert len(set(phi.calls)) == len(phi.calls)  # no point evaluated twice


SMOOTH = [
    ("cubic-ish", lambda a: (a - 3.7) ** 2 * (1 + 0.1 * a) + math.cos(a), (0.0, 10.0)),
    ("exp", lambda a: math.exp(a) - 4.0 * a, (0.0, 5.0)),
    ("log-cosh", lambda a: math.log(math.cosh(a - 0.4)) + 0.01 * a * a, (0.0, 3.0)),
    ("rational", lambda a: -a / (a * a + 2.0), (0.0, 10.0)),
]


@pytest.mark.parametrize("name,phi,bounds", SMOOTH, ids=[s[0] for s in SMOOTH])
def test_agrees_with_minimize_scalar_on_smooth_functions(name, phi, bounds):
    counted = Counting(phi)
    res = exact(counted, tol=1e-10)
    ref = minimize_scalar(phi, bounds=bounds, method="bounded", options={"xatol": 1e-12})
    assert res.status is LineSearchStatus.CONVERGED
    assert res.alpha == pytest.approx(ref.x, abs=1e-6)
    assert res.value <= ref.fun + 1e-12
    assert res.value == phi(res.alpha)
    assert res.evaluations == len(counted.calls)


def test_evaluations_include_the_call_at_zero():
    phi = Counting(lambda a: (a - 0.3) ** 2)
    res = exact(phi)
    assert phi.calls[0] == 0.0
    assert res.evaluations == len(phi.calls)


def test_custom_bracket_starts_there():
    phi = Counting(lambda a: (a - 7.0) ** 2)
    res = exact(phi, bracket=(5.0, 6.0))
    assert phi.calls[:2] == [5.0, 6.0]
    assert res.converged and res.alpha == pytest.approx(7.0, abs=1e-6)


def test_non_finite_values_shrink_the_growth_step():
    def phi(a):
        return (a - 2.0) ** 2 if a < 2.05 else math.inf

    counted = Counting(phi)
    res = exact(counted)
    assert res.converged and res.alpha == pytest.approx(2.0, abs=1e-6)
    assert res.evaluations == len(counted.calls)


# --- statuses ---------------------------------------------------------------------------


def test_status_max_evals_returns_best_point_and_stops_exactly():
    phi = Counting(lambda a: (a - 0.3) ** 2)
    res = exact(phi, max_evals=5)
    assert res.status is LineSearchStatus.MAX_EVALS
    assert res.evaluations == 5 == len(phi.calls)
    best = min(phi.calls, key=phi.fn)
    assert (res.alpha, res.value) == (best, phi.fn(best))


def test_status_max_evals_when_unbounded_below():
    phi = Counting(lambda a: -a * a)
    res = exact(phi, max_evals=40)
    assert res.status is LineSearchStatus.MAX_EVALS
    assert res.evaluations == 40 and res.value == -(max(phi.calls) ** 2)


def test_status_flat_when_phi_is_constant():
    # two equal values: flat at working precision, no shrinking down to tol
    counted = Counting(lambda a: 1.0)
    res = exact(counted, tol=1e-6)
    assert res.status is LineSearchStatus.FLAT
    assert (res.alpha, res.value) == (0.0, 1.0)
    assert res.evaluations == len(counted.calls) == 2


@pytest.mark.parametrize("phi", [lambda a: a, lambda a: math.exp(a)])
def test_status_not_descent_when_phi_never_drops(phi):
    counted = Counting(phi)
    res = exact(counted, tol=1e-6)
    assert res.status is LineSearchStatus.NOT_DESCENT
    assert (res.alpha, res.value) == (0.0, phi(0.0))
    assert res.evaluations == len(counted.calls)
    # Shrinking went down to the documented resolution, 2.62 * tol, and not below tol.
    assert 1e-6 < min(a for a in counted.calls if a > 0) <= 2.62e-6


def test_status_non_finite():
    phi = Counting(lambda a: math.nan)
    res = exact(phi)
    assert res.status is LineSearchStatus.NON_FINITE
    assert res.evaluations == 1 and math.isnan(res.value)


# --- properties -------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(
    phi0=st.floats(-100, 100),
    slope0=st.floats(-100, -1e-3),
    curv=st.floats(1e-2, 1e2),
)
def test_property_quadratics(phi0, slope0, curv):
    phi = Counting(quadratic(phi0, slope0, curv))
    res = exact(phi, tol=1e-10)
    a_star = -slope0 / curv
    assert res.converged
    # Minimising by function values locates a* only to about sqrt(eps |phi| / curv): near the
    # minimum phi changes by curv/2 * da^2, which is lost below eps * |phi(a*)|.
    f_star = phi0 + slope0 * a_star + 0.5 * curv * a_star**2
    resolution = math.sqrt(2 * np.finfo(float).eps * max(1.0, abs(f_star)) / curv)
    assert res.alpha == pytest.approx(a_star, rel=1e-6, abs=10 * resolution)
    assert res.evaluations == len(phi.calls) <= 100
    closed = exact(phi.fn, quadratic=(slope0, curv))
    assert closed.alpha == pytest.approx(a_star, rel=1e-15)
