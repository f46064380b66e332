"""Exact line search: minimise phi over alpha >= 0 (closed form for quadratics, else Brent)."""

from __future__ import annotations

import math
from collections.abc import Callable

from descend.checks import (
    as_float,
    check_callable,
    check_count,
    check_finite,
    check_step_size,
    phi_value,
)
from descend.errors import ConfigError
from descend.linesearch.result import LineSearchResult, LineSearchStatus

__all__ = ["exact"]

#: Golden ratio: expansion factor of the bracketing phase, and (1 - 1/GOLDEN^2 = 0.381966...)
#: the fraction kept when the bracket is shrunk towards its left end.
GOLDEN = (1.0 + math.sqrt(5.0)) / 2.0
SHRINK_FRACTION = 1.0 / (GOLDEN * GOLDEN)


class _BudgetExhausted(Exception):
    """Raised inside the minimiser when ``max_evals`` calls of phi have been made."""


class _NoProgress(Exception):
    """Raised when the bracketing step can no longer change alpha in floating point."""


class _Flat(Exception):
    """Raised when two bracketing trials give exactly the same value: phi is flat there at
    working precision, and Brent's method could not be given a strict bracket."""


class _CountedPhi:
    """Calls ``phi``, counting every call, remembering the best finite point and a few values.

    Values at the bracket points are remembered so that Brent's method, which re-evaluates
    the bracket it is given, does not call ``phi`` there again. Non-finite values are passed
    on as ``+inf`` so that comparisons inside the minimiser stay meaningful.
    """

    def __init__(self, phi: Callable[[float], float], max_evals: int) -> None:
        self.phi = phi
        self.max_evals = max_evals
        self.evaluations = 0
        self.best_alpha = math.nan
        self.best_value = math.inf
        self.any_finite = False
        self.known: dict[float, float] = {}

    def __call__(self, alpha: float) -> float:
        alpha = float(alpha)
        if alpha in self.known:
            return self.known[alpha]
        if self.evaluations >= self.max_evals:
            raise _BudgetExhausted
        value = phi_value("phi", self.phi(alpha), alpha)
        self.evaluations += 1
        if not math.isfinite(value):
            return math.inf
        self.any_finite = True
        if value < self.best_value:
            self.best_alpha, self.best_value = alpha, value
        return value

    def remember(self, alpha: float, value: float) -> None:
        self.known[alpha] = value


def exact(
    phi: Callable[[float], float],
    *,
    bracket: tuple[float, float] | None = None,
    tol: float = 1e-8,
    max_evals: int = 100,
    quadratic: tuple[float, float] | None = None,
    min_step: float = 0.0,
    resolution: float = 0.0,
) -> LineSearchResult:
    r"""Exact line search: ``alpha* = argmin_{alpha >= 0} phi(alpha)``.

    **Quadratic model.** With ``quadratic=(slope0, curvature)``, phi is taken to be
    ``phi(a) = phi(0) + slope0 a + curvature a^2 / 2`` (e.g. ``slope0 = g^T d``,
    ``curvature = d^T H d`` for a quadratic objective), whose minimiser is the closed form

    .. math:: \alpha^* = -\frac{\phi'(0)}{\phi''}

    (Nocedal & Wright 2006, §3.1 and §3.3, the exact step on a quadratic). ``phi`` is
    called once, at ``alpha*``, to report ``value``. If ``slope0 >= 0`` and ``curvature >= 0``
    the minimiser over ``alpha >= 0`` is ``alpha = 0``: status ``NOT_DESCENT``, and ``phi`` is
    called once at 0 (there is no ``phi0`` argument) to report ``value``. Any other
    ``curvature <= 0`` makes the model unbounded below on ``alpha >= 0`` and raises
    ``ConfigError``.

    **General phi.** A bracket ``a < b < c`` with ``phi(b) < phi(a)`` and ``phi(b) < phi(c)`` is
    found from the starting interval ``[lo, hi] = bracket`` (default ``[0, 1]``): while phi
    decreases the interval grows by the golden ratio, ``c = b + 1.618 (b - a)``; if
    ``phi(hi) >= phi(lo)`` the right end moves to ``lo + 0.382 (hi - lo)`` until phi drops
    below ``phi(lo)``. A non-finite value while growing halves the growth step (the trial
    is "too far"); while shrinking it counts as "not lower". Two trials whose values differ
    by no more than ``resolution`` (exactly equal by default) end the bracketing: phi is
    flat there at working precision, and a strict bracket cannot be formed. Brent's method
    (:func:`scipy.optimize.minimize_scalar`, ``method='brent'``, ``xtol=tol``) then
    minimises inside the bracket.

    Parameters
    ----------
    phi : callable
        ``phi(alpha) -> float``.
    bracket : (float, float), optional
        Starting interval ``0 <= lo < hi`` (finite); the search looks at ``alpha >= lo``.
    tol : float, default 1e-8
        Relative tolerance on alpha passed to Brent's method, > 0.
    max_evals : int, default 100
        Maximum number of calls of ``phi``, bracketing included (>= 1).
    quadratic : (float, float), optional
        ``(phi'(0), phi'')`` of a quadratic phi; selects the closed form.
    min_step : float, default 0
        The shrinking stops below ``lo + min_step`` too (>= 0): a caller that knows no
        decrease can be resolved below that step (``|phi'(0)| alpha`` under the precision
        of phi) saves the evaluations there.
    resolution : float, default 0
        The rounding error of phi's values (>= 0, e.g. ``eps |phi(0)|``): differences up to
        it are not told apart, and a step lowering phi by no more than it is no step.

    Returns
    -------
    LineSearchResult
        ``slope`` is ``None`` except in the quadratic case, where it is the model slope
        ``slope0 + curvature * alpha`` (0 at the minimiser). ``evaluations`` counts every
        call of ``phi``, including the one at ``lo`` (``alpha = 0`` by default) that the
        bracketing needs. ``status`` is

        - ``CONVERGED``: Brent's method (or the closed form) returned a minimiser;
        - ``NOT_DESCENT``: phi does not decrease from ``lo``: no trial was lower than
          ``phi(lo)``, down to one within ``2.62 * tol * (hi - lo)`` of ``lo`` (the
          shrinking stops before going below ``tol * (hi - lo)``); ``alpha = lo``;
        - ``MAX_EVALS``: the budget ran out (as it does when phi is unbounded below along
          the ray); the lowest finite point seen is returned;
        - ``ROUNDING``: the bracketing step vanished in floating point; lowest point seen;
        - ``FLAT``: two bracketing trials gave the same value to within ``resolution`` (phi
          is flat at working precision there): the lowest point seen, ``alpha = lo`` when
          none was lower than ``phi(lo) - resolution``;
        - ``NON_FINITE``: ``phi(lo)`` was non-finite (``value`` is then NaN), or no call gave a
          finite value; in the quadratic case, ``phi(alpha*)`` was non-finite.

    Raises
    ------
    ConfigError
        For ``tol <= 0``, ``max_evals < 1``, an invalid ``bracket`` or a quadratic model that
        is unbounded below.

    References
    ----------
    J. Nocedal and S. J. Wright, *Numerical Optimization*, 2nd ed., Springer, 2006, §3.1.
    R. P. Brent, *Algorithms for Minimization without Derivatives*, Prentice-Hall, 1973.
    """
    check_callable("phi", phi)
    tol = check_step_size("tol", tol)
    max_evals = check_count("max_evals", max_evals)
    min_step = as_float("min_step", min_step)
    if not (math.isfinite(min_step) and min_step >= 0.0):
        raise ConfigError(f"min_step must be finite and >= 0, got {min_step!r}")
    resolution = as_float("resolution", resolution)
    if not (math.isfinite(resolution) and resolution >= 0.0):
        raise ConfigError(f"resolution must be finite and >= 0, got {resolution!r}")
    if quadratic is not None:
        return _exact_quadratic(phi, quadratic)

    if bracket is None:
        lo, hi = 0.0, 1.0
    else:
        if not isinstance(bracket, tuple | list) or len(bracket) != 2:
            raise ConfigError(f"bracket must be a pair (lo, hi), got {bracket!r}")
        lo, hi = as_float("bracket[0]", bracket[0]), as_float("bracket[1]", bracket[1])
        if not (math.isfinite(lo) and math.isfinite(hi) and 0.0 <= lo < hi):
            raise ConfigError(f"bracket must satisfy 0 <= lo < hi (finite), got {bracket!r}")

    counted = _CountedPhi(phi, max_evals)
    try:
        f_lo = counted(lo)
        if f_lo == math.inf:
            # Even the starting point is non-finite: there is nothing to compare against.
            return LineSearchResult(lo, math.nan, None, 1, LineSearchStatus.NON_FINITE)
        counted.remember(lo, f_lo)
        found = _find_bracket(counted, lo, f_lo, hi, tol, min_step, resolution)
        if found is None:
            return LineSearchResult(
                lo, f_lo, None, counted.evaluations, LineSearchStatus.NOT_DESCENT
            )
        from scipy.optimize import minimize_scalar  # imported when first needed: it is heavy

        result = minimize_scalar(
            counted,
            bracket=found,
            method="brent",
            options={"xtol": tol, "maxiter": max_evals},
        )
    except _BudgetExhausted:
        return _best_or_nothing(counted, lo, LineSearchStatus.MAX_EVALS)
    except _NoProgress:
        return _best_or_nothing(counted, lo, LineSearchStatus.ROUNDING)
    except _Flat:
        if counted.best_value >= f_lo - resolution:  # nothing resolvably lower: no step
            return LineSearchResult(lo, f_lo, None, counted.evaluations, LineSearchStatus.FLAT)
        return _best_or_nothing(counted, lo, LineSearchStatus.FLAT)
    if not result.success:
        return _best_or_nothing(counted, lo, LineSearchStatus.MAX_EVALS)
    alpha, value = float(result.x), float(result.fun)
    if counted.best_value < value:
        alpha, value = counted.best_alpha, counted.best_value
    return LineSearchResult(alpha, value, None, counted.evaluations, LineSearchStatus.CONVERGED)


def _exact_quadratic(
    phi: Callable[[float], float], quadratic: tuple[float, float]
) -> LineSearchResult:
    """Closed-form minimiser of ``phi0 + slope0 a + curvature a^2 / 2`` over ``a >= 0``."""
    if not isinstance(quadratic, tuple | list) or len(quadratic) != 2:
        raise ConfigError(f"quadratic must be a pair (slope0, curvature), got {quadratic!r}")
    slope0 = check_finite("quadratic slope0", quadratic[0])
    curvature = check_finite("quadratic curvature", quadratic[1])
    if slope0 >= 0.0 and curvature >= 0.0:
        value = phi_value("phi", phi(0.0), 0.0)
        return LineSearchResult(0.0, value, slope0, 1, LineSearchStatus.NOT_DESCENT)
    if curvature <= 0.0:
        raise ConfigError(
            "quadratic curvature must be > 0 for a minimiser along alpha >= 0 "
            f"(the model is unbounded below), got {curvature!r}"
        )
    alpha = -slope0 / curvature
    value = phi_value("phi", phi(alpha), alpha)
    status = LineSearchStatus.CONVERGED if math.isfinite(value) else LineSearchStatus.NON_FINITE
    return LineSearchResult(alpha, value, 0.0, 1, status)


def _best_or_nothing(counted: _CountedPhi, lo: float, status: LineSearchStatus) -> LineSearchResult:
    """The lowest finite point seen, or ``alpha = lo`` with NaN if none was finite."""
    if not counted.any_finite:
        return LineSearchResult(
            lo, math.nan, None, counted.evaluations, LineSearchStatus.NON_FINITE
        )
    return LineSearchResult(
        counted.best_alpha, counted.best_value, None, counted.evaluations, status
    )


def _find_bracket(
    counted: _CountedPhi, lo: float, f_lo: float, hi: float, tol: float, min_step: float = 0.0,
    resolution: float = 0.0,
) -> tuple[float, float, float] | None:
    """Golden-ratio bracketing from ``[lo, hi]``; ``None`` if phi never drops below phi(lo).

    Raises ``_Flat`` when a trial's value equals the one it is compared with (to within
    ``resolution``)."""
    f_hi = counted(hi)
    counted.remember(hi, f_hi)
    if abs(f_hi - f_lo) <= resolution:
        raise _Flat
    a, f_a = lo, f_lo
    if f_hi < f_a:
        # Grow: b = hi is lower than a; look for c beyond b with phi(c) > phi(b).
        b, f_b = hi, f_hi
        too_far = math.inf  # smallest step known to give a non-finite value
        while True:
            c = b + GOLDEN * (b - a)
            if c >= too_far:
                c = b + 0.5 * (too_far - b)
            if c == b:
                raise _NoProgress  # the growth step vanished in floating point
            f_c = counted(c)
            if f_c == math.inf:
                too_far = c
                continue
            counted.remember(c, f_c)
            if abs(f_c - f_b) <= resolution:
                raise _Flat  # b is as low as phi resolves along the line
            if f_c > f_b:
                return a, b, c
            a, f_a, b, f_b = b, f_b, c, f_c
    # Shrink: phi(hi) >= phi(lo) (or non-finite); move the right end towards lo.
    c = hi
    while True:
        b = lo + SHRINK_FRACTION * (c - lo)
        if b - lo <= tol * (hi - lo):
            return None
        if b - lo <= min_step:
            raise _Flat  # no decrease is resolvable below this step
        f_b = counted(b)
        counted.remember(b, f_b)
        if abs(f_b - f_a) <= resolution:
            raise _Flat
        if f_b < f_a:
            return a, b, c
        c = b
