"""The smoothed Armijo search (SaLSA's): its test recomputed at the returned step, the first
trial that fails it is beaten, and every exit named."""

from __future__ import annotations

import math

import pytest

from descend.errors import ConfigError
from descend.linesearch import LineSearchStatus, smoothed_backtracking

from .conftest import Counting


def quadratic(a: float) -> float:
    return 1.0 - 2.0 * a + 3.0 * a * a  # phi(0) = 1, phi'(0) = -2


# the averages of a first check (0.1 of phi'(0) = -2, nothing decreased before) and of
# later ones
@pytest.mark.parametrize("mean_slope,mean_decrease", [(-0.2, 0.0), (-0.1, 0.03), (-0.3, 0.005)])
def test_returned_step_passes_the_smoothed_test_and_the_one_before_does_not(mean_slope,
                                                                           mean_decrease):
    phi = Counting(quadratic)
    res = smoothed_backtracking(phi, 1.0, mean_slope, mean_decrease, alpha0=2.0)
    assert res.status is LineSearchStatus.CONVERGED
    assert res.evaluations == len(phi.calls) and res.value == quadratic(res.alpha)

    def passes(a: float) -> bool:
        return 0.9 * mean_decrease + 0.1 * (1.0 - quadratic(a)) >= 0.5 * a * -mean_slope

    assert passes(res.alpha)
    assert all(not passes(a) for a in phi.calls[:-1])
    trials = [2.0]
    while len(trials) < len(phi.calls):
        trials.append(trials[-1] * 0.8)
    assert phi.calls == trials


def test_past_decreases_let_a_rising_step_pass():
    # the smoothing: a batch on which the step rises still passes after large decreases
    res = smoothed_backtracking(lambda a: 1.0 + a, 1.0, -0.1, 1.0, alpha0=0.5)
    assert res.status is LineSearchStatus.CONVERGED and res.value > 1.0


def test_exits():
    assert smoothed_backtracking(quadratic, 1.0, 0.0, 0.0).status is LineSearchStatus.NOT_DESCENT
    flat = smoothed_backtracking(lambda a: 1.0, 1.0, -1.0, 0.0, alpha0=0.5)
    assert (flat.status, flat.alpha, flat.evaluations) == (LineSearchStatus.FLAT, 0.5, 1)
    rising = smoothed_backtracking(lambda a: 1.0 + a, 1.0, -1.0, -1.0, max_evals=5)
    assert (rising.status, rising.alpha, rising.evaluations) == (LineSearchStatus.MAX_EVALS,
                                                                   0.0, 5)
    nan = smoothed_backtracking(lambda a: math.nan, 1.0, -1.0, 0.0, max_evals=3)
    assert nan.status is LineSearchStatus.NON_FINITE and nan.alpha == 0.0


@pytest.mark.parametrize("kwargs,match", [
    ({"c1": 1.0}, "c1"), ({"shrink": 0.0}, "shrink"), ({"beta": 1.5}, "beta"),
    ({"alpha0": -1.0}, "alpha0"), ({"max_evals": 0}, "max_evals"),
])
def test_bad_constants_are_refused(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        smoothed_backtracking(quadratic, 1.0, -1.0, 0.0, **kwargs)
