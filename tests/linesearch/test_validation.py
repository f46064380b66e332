"""Invalid constants: one table per public function; every error names the bad parameter."""

from __future__ import annotations

import math

import numpy as np
import pytest

from descend.errors import ConfigError, DescendError
from descend.linesearch import (
    LineSearchResult,
    LineSearchStatus,
    backtracking,
    exact,
    strong_wolfe,
)


def phi(a):
    return (a - 1.0) ** 2


def phi_and_slope(a):
    return (a - 1.0) ** 2, 2.0 * (a - 1.0)


BACKTRACKING_BAD = [
    ({"phi0": math.nan}, "phi0"),
    ({"phi0": math.inf}, "phi0"),
    ({"phi0": "1.0"}, "phi0"),
    ({"slope0": math.nan}, "slope0"),
    ({"slope0": -math.inf}, "slope0"),
    ({"alpha0": 0.0}, "alpha0"),
    ({"alpha0": -1.0}, "alpha0"),
    ({"alpha0": math.inf}, "alpha0"),
    ({"alpha0": math.nan}, "alpha0"),
    ({"c1": 0.0}, "c1"),
    ({"c1": 1.0}, "c1"),
    ({"c1": 1.5}, "c1"),
    ({"c1": -1e-4}, "c1"),
    ({"c1": math.nan}, "c1"),
    ({"shrink": 0.0}, "shrink"),
    ({"shrink": 1.0}, "shrink"),
    ({"shrink": 2.0}, "shrink"),
    ({"max_evals": 0}, "max_evals"),
    ({"max_evals": -3}, "max_evals"),
    ({"max_evals": 2.5}, "max_evals"),
    ({"max_evals": True}, "max_evals"),
    ({"min_shrink": 0.0}, "min_shrink"),
    ({"min_shrink": 0.6}, "min_shrink"),
    ({"min_shrink": -0.1}, "min_shrink"),
]


@pytest.mark.parametrize("kwargs,name", BACKTRACKING_BAD)
def test_backtracking_rejects(kwargs, name):
    args = {"phi0": 1.0, "slope0": -2.0} | kwargs
    phi0, slope0 = args.pop("phi0"), args.pop("slope0")
    with pytest.raises(ConfigError, match=rf"^{name}\b") as err:
        backtracking(phi, phi0, slope0, **args)
    value = next(iter(kwargs.values()))
    assert repr(value) in str(err.value) or str(value) in str(err.value)


WOLFE_BAD = [
    ({"phi0": math.nan}, "phi0"),
    ({"slope0": math.inf}, "slope0"),
    ({"alpha0": 0.0}, "alpha0"),
    ({"alpha0": -2.0}, "alpha0"),
    ({"alpha0": math.inf}, "alpha0"),
    ({"c1": 0.0}, "c1"),
    ({"c1": 1.5}, "c1"),
    ({"c2": 1.0}, "c2"),
    ({"c2": 0.0}, "c2"),
    ({"c1": 0.5, "c2": 0.5}, "c2"),
    ({"c1": 0.9, "c2": 0.1}, "c2"),
    ({"alpha_max": 0.0}, "alpha_max"),
    ({"alpha_max": -1.0}, "alpha_max"),
    ({"alpha_max": math.nan}, "alpha_max"),
    ({"max_evals": 0}, "max_evals"),
    ({"max_evals": 1.0}, "max_evals"),
]


@pytest.mark.parametrize("kwargs,name", WOLFE_BAD)
def test_strong_wolfe_rejects(kwargs, name):
    args = {"phi0": 1.0, "slope0": -2.0} | kwargs
    phi0, slope0 = args.pop("phi0"), args.pop("slope0")
    with pytest.raises(ConfigError, match=rf"^{name}\b") as err:
        strong_wolfe(phi_and_slope, phi0, slope0, **args)
    assert str(kwargs[name]) in str(err.value)


EXACT_BAD = [
    ({"tol": 0.0}, "tol"),
    ({"tol": -1e-8}, "tol"),
    ({"tol": math.nan}, "tol"),
    ({"max_evals": 0}, "max_evals"),
    ({"bracket": (1.0, 0.5)}, "bracket"),
    ({"bracket": (-1.0, 1.0)}, "bracket"),
    ({"bracket": (0.0, math.inf)}, "bracket"),
    ({"bracket": (0.0, 1.0, 2.0)}, "bracket"),
    ({"quadratic": (-1.0, -1.0)}, "quadratic curvature"),
    ({"quadratic": (math.nan, 1.0)}, "quadratic slope0"),
    ({"quadratic": (-1.0, math.inf)}, "quadratic curvature"),
    ({"quadratic": (1.0,)}, "quadratic"),
]


@pytest.mark.parametrize("kwargs,name", EXACT_BAD)
def test_exact_rejects(kwargs, name):
    with pytest.raises(ConfigError, match=rf"^{name}\b"):
        exact(phi, **kwargs)


def test_message_example_from_the_contract():
    with pytest.raises(ConfigError) as err:
        backtracking(phi, 1.0, -2.0, c1=1.5)
    assert str(err.value) == "c1 must lie in (0, 1), got 1.5"


def test_config_error_is_a_value_error():
    with pytest.raises(ValueError):
        strong_wolfe(phi_and_slope, 1.0, -2.0, c1=2.0)
    assert issubclass(ConfigError, DescendError)


@pytest.mark.parametrize("search", ["backtracking", "strong_wolfe", "exact"])
def test_non_callable_is_a_type_error(search):
    with pytest.raises(TypeError, match="must be callable"):
        if search == "backtracking":
            backtracking(3.0, 1.0, -1.0)
        elif search == "strong_wolfe":
            strong_wolfe(3.0, 1.0, -1.0)
        else:
            exact(3.0)


def test_numpy_scalars_are_accepted():
    res = strong_wolfe(
        phi_and_slope,
        np.float64(1.0),
        np.float32(-2.0),
        alpha0=np.float64(1.0),
        max_evals=np.int64(5),
    )
    assert res.converged and isinstance(res.alpha, float)
    res = backtracking(phi, np.float64(1.0), np.float64(-2.0), c1=np.float32(0.25))
    assert res.converged


@pytest.mark.parametrize("slope0", [0.0, 1e-300, 3.0])
def test_non_descent_slope_returns_a_status_instead_of_raising(slope0):
    for res in (
        backtracking(phi, 1.0, slope0),
        strong_wolfe(phi_and_slope, 1.0, slope0),
    ):
        assert res.status is LineSearchStatus.NOT_DESCENT
        assert (res.alpha, res.value, res.evaluations) == (0.0, 1.0, 0)
        assert not res.converged


def test_constants_are_checked_before_the_descent_test():
    # A bad constant is reported even when the direction is not a descent direction.
    with pytest.raises(ConfigError, match=r"^c1"):
        backtracking(phi, 1.0, 1.0, c1=2.0)
    with pytest.raises(ConfigError, match=r"^c2"):
        strong_wolfe(phi_and_slope, 1.0, 1.0, c1=0.5, c2=0.1)


def test_result_record():
    res = LineSearchResult(0.5, -1.25, None, 3, LineSearchStatus.CONVERGED)
    alpha, value, slope, evaluations, status = res
    assert (alpha, value, slope, evaluations, status) == (0.5, -1.25, None, 3, res.status)
    assert res.converged
    text = str(res)
    for part in ("CONVERGED", "alpha=0.5", "phi=-1.25", "slope=n/a", "evaluations=3"):
        assert part in text
    failed = res._replace(status=LineSearchStatus.MAX_EVALS, slope=-0.5)
    assert not failed.converged and "MAX_EVALS" in str(failed) and "slope=-0.5" in str(failed)
    assert {s.name for s in LineSearchStatus} == {
        "CONVERGED",
        "FLAT",
        "MAX_EVALS",
        "NOT_DESCENT",
        "ROUNDING",
        "NON_FINITE",
        "MAX_STEP",
    }
