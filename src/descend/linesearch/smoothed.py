"""Backtracking to a smoothed Armijo condition (SaLSA's search)."""

from __future__ import annotations

import math
from collections.abc import Callable

from descend.checks import (
    check_callable,
    check_count,
    check_finite,
    check_fraction,
    check_step_size,
    phi_value,
)
from descend.linesearch.result import LineSearchResult, LineSearchStatus

__all__ = ["smoothed_backtracking"]


def smoothed_backtracking(
    phi: Callable[[float], float],
    phi0: float,
    mean_slope: float,
    mean_decrease: float,
    *,
    beta: float = 0.9,
    alpha0: float = 1.0,
    c1: float = 0.5,
    shrink: float = 0.8,
    max_evals: int = 100,
) -> LineSearchResult:
    r"""Backtracking until the smoothed Armijo condition holds (Kenneweg et al., 2024).

    Starting from ``alpha0``, the step is multiplied by ``shrink`` until

    .. math:: \beta \bar D + (1 - \beta)\,(\phi(0) - \phi(\alpha))
              \;\ge\; c_1\, \alpha\, (-\bar s),

    where :math:`\bar D` is the exponential average (factor beta) of the decreases
    :math:`\phi(0) - \phi(\alpha)` that earlier searches accepted and :math:`\bar s` the
    exponential average of the slopes :math:`\phi'(0)`, this one included (the caller keeps
    both). Averaged over steps, the test asks of the mean decrease what Armijo's asks of
    one: on mini-batches a batch whose loss happens to rise along the step does not cut the
    step to nothing, and one that happens to fall steeply does not let it grow.

    Parameters
    ----------
    phi : callable
        ``phi(alpha) -> float``, the objective along the search ray (never at 0).
    phi0 : float
        ``phi(0)``, finite.
    mean_slope : float
        The averaged slope :math:`\bar s`, this step's included; ``>= 0`` returns at once
        with status ``NOT_DESCENT`` (``alpha = 0``, no evaluation).
    mean_decrease : float
        :math:`\bar D`, the average of the decreases accepted before this search.
    beta : float in (0, 1)
        The averages' factor (SaLSA's beta_3 = 0.9).
    alpha0 : float > 0
        The first trial.
    c1, shrink : float in (0, 1)
        The sufficient-decrease constant (SaLSA's c = 0.5) and the backtracking factor
        (SaLSA's 0.8).
    max_evals : int >= 1
        Most calls of ``phi`` (SaLSA allows 100).

    Returns
    -------
    LineSearchResult
        ``CONVERGED``: ``alpha`` passes the test, ``value`` is phi(alpha) (the caller adds
        ``phi0 - value`` to its average of decreases); ``FLAT``: a trial gave exactly
        ``phi0``, the step is accepted as it is (SaLSA's rule: the loss does not resolve it)
        and the average of decreases is left alone; ``NOT_DESCENT``: ``mean_slope >= 0``;
        ``MAX_EVALS``: no trial passed (``alpha = 0``); ``NON_FINITE``: every trial gave
        a non-finite value; ``ROUNDING``: alpha underflowed.
    """
    check_callable("phi", phi)
    phi0 = check_finite("phi0", phi0)
    mean_slope = check_finite("mean_slope", mean_slope)
    mean_decrease = check_finite("mean_decrease", mean_decrease)
    beta = check_fraction("beta", beta)
    alpha = check_step_size("alpha0", alpha0)
    c1 = check_fraction("c1", c1)
    shrink = check_fraction("shrink", shrink)
    max_evals = check_count("max_evals", max_evals)
    if mean_slope >= 0.0:
        return LineSearchResult(0.0, phi0, None, 0, LineSearchStatus.NOT_DESCENT)
    evals, any_finite = 0, False
    while evals < max_evals:
        value = phi_value("phi", phi(alpha), alpha)
        evals += 1
        if math.isfinite(value):
            any_finite = True
            if value == phi0:
                return LineSearchResult(alpha, value, None, evals, LineSearchStatus.FLAT)
            decrease = beta * mean_decrease + (1.0 - beta) * (phi0 - value)
            if decrease >= c1 * alpha * -mean_slope:
                return LineSearchResult(alpha, value, None, evals,
                                        LineSearchStatus.CONVERGED)
        alpha *= shrink
        if not alpha > 0.0:
            return LineSearchResult(0.0, phi0, None, evals, LineSearchStatus.ROUNDING)
    status = LineSearchStatus.MAX_EVALS if any_finite else LineSearchStatus.NON_FINITE
    return LineSearchResult(0.0, phi0, None, evals, status)
