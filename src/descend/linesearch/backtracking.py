"""Backtracking (Armijo) line search with safeguarded polynomial interpolation."""

from __future__ import annotations

import math
from collections.abc import Callable

from descend.checks import (
    as_float,
    check_callable,
    check_count,
    check_finite,
    check_fraction,
    check_step_size,
    phi_value,
)
from descend.errors import ConfigError
from descend.linesearch.result import LineSearchResult, LineSearchStatus

__all__ = ["backtracking"]

#: Upper safeguard of an interpolated backtrack: the next trial is at most half the current one,
#: so every backtrack at least halves alpha whatever the interpolant says.
MAX_INTERP_SHRINK = 0.5
#: machine epsilon of the Python floats phi returns
EPS = 2.220446049250313e-16


def _quadratic_step(phi0: float, slope0: float, a: float, fa: float) -> float:
    """Minimiser of the quadratic through ``phi(0)``, ``phi'(0)`` and ``phi(a)``.

    ``q(t) = phi0 + slope0 t + ((fa - phi0 - slope0 a) / a^2) t^2`` has its minimiser at
    ``t = -slope0 a^2 / (2 (fa - phi0 - slope0 a))`` (Nocedal & Wright 2006, §3.5).
    Returns NaN when the quadratic is not convex.
    """
    denom = 2.0 * (fa - phi0 - slope0 * a)
    if not denom > 0.0:
        return math.nan
    return -slope0 * a * a / denom


def _cubic_step(phi0: float, slope0: float, a0: float, f0: float, a1: float, f1: float) -> float:
    """Minimiser of the cubic through ``phi(0)``, ``phi'(0)``, ``phi(a0)``, ``phi(a1)``.

    With ``c(t) = A t^3 + B t^2 + slope0 t + phi0`` (Nocedal & Wright 2006, §3.5)::

        [A]      1          [ a0^2   -a1^2] [f1 - phi0 - slope0 a1]
        [B] = ---------  *  [-a0^3    a1^3] [f0 - phi0 - slope0 a0]
              a0^2 a1^2 (a1 - a0)

    and the local minimiser ``t = (-B + sqrt(B^2 - 3 A slope0)) / (3 A)``, evaluated in the
    cancellation-free form ``-slope0 / (B + sqrt(B^2 - 3 A slope0))`` when ``B > 0``.
    Returns NaN when no minimiser exists.
    """
    r1 = f1 - phi0 - slope0 * a1
    r0 = f0 - phi0 - slope0 * a0
    denom = a0 * a0 * a1 * a1 * (a1 - a0)
    if denom == 0.0 or not math.isfinite(denom):
        return math.nan
    A = (a0 * a0 * r1 - a1 * a1 * r0) / denom
    B = (-a0 * a0 * a0 * r1 + a1 * a1 * a1 * r0) / denom
    disc = B * B - 3.0 * A * slope0
    if not math.isfinite(disc) or disc < 0.0:
        return math.nan
    root = math.sqrt(disc)
    if B > 0.0:
        return -slope0 / (B + root)
    if A == 0.0:
        return math.nan  # B <= 0 and no cubic term: phi is modelled as unbounded below
    return (-B + root) / (3.0 * A)


def _constants(alpha0: object, c1: object, shrink: object, max_evals: object,
               min_shrink: object, precision: object) -> tuple[float, float, float, int,
                                                                float, float | None]:
    """The search's constants, checked (see :func:`backtracking`)."""
    min_shrink = as_float("min_shrink", min_shrink)
    if not 0.0 < min_shrink <= MAX_INTERP_SHRINK:
        raise ConfigError(f"min_shrink must lie in (0, 0.5], got {min_shrink!r}")
    return (check_step_size("alpha0", alpha0), check_fraction("c1", c1),
            check_fraction("shrink", shrink), check_count("max_evals", max_evals), min_shrink,
            None if precision is None else check_fraction("precision", precision))


def backtracking(
    phi: Callable[[float], float],
    phi0: float,
    slope0: float,
    *,
    alpha0: float = 1.0,
    c1: float = 1e-4,
    shrink: float = 0.5,
    max_evals: int = 30,
    interpolate: bool = True,
    min_shrink: float = 0.1,
    precision: float | None = None,
) -> LineSearchResult:
    r"""Backtracking line search for the Armijo sufficient-decrease condition.

    Starting from ``alpha0``, the step is reduced until

    .. math:: \phi(\alpha) \le \phi(0) + c_1 \alpha \phi'(0)

    (Nocedal & Wright 2006, §3.1, eq. 3.4; Algorithm 3.1; interpolation as in §3.5).

    With ``interpolate=True`` the first backtrack moves to the minimiser of the quadratic
    through ``phi(0)``, ``phi'(0)`` and ``phi(alpha)``, later ones to the minimiser of the
    cubic through ``phi(0)``, ``phi'(0)`` and the last two trials (N&W §3.5). The new
    step is safeguarded to ``[min_shrink * alpha, 0.5 * alpha]``: at least a halving per
    backtrack (the upper safeguard is fixed at 0.5), and never a collapse by more than
    ``min_shrink``. Where the interpolant has no minimiser, ``alpha <- shrink * alpha``.
    With ``interpolate=False`` every backtrack is ``alpha <- shrink * alpha``.

    A non-finite ``phi(alpha)`` is treated as "too far": the step shrinks by ``shrink``
    and no polynomial is ever fitted through an inf/NaN value.

    Flat ground. Where the decrease asked at a trial, ``c1 alpha |phi'(0)|``, is under
    ``sqrt(eps) |phi(0)|`` (the slope is at rounding level), a rejected trial with
    ``phi(alpha) == phi(0)`` exactly means the loss cannot resolve the change the step
    made: smaller steps change it less, so the search stops there (status ``FLAT``)
    instead of halving down to the rounding test. There it also
    stops (``ROUNDING``) when the quadratic through ``phi(0)``, ``phi'(0)`` and a rejected
    trial rejects every step beyond twice its minimiser ``a_q`` and the decrease asked at
    ``2 a_q`` is already below the precision of ``phi(0)``: near a minimiser one trial
    shows that no step can pass the test. With
    ``precision`` (the relative precision of phi's values, e.g. float32's 1.19e-7), the
    search also stops once the decrease it asks for, ``c1 alpha |phi'(0)|``, is below
    ``precision |phi(0)|`` (status ``ROUNDING``); without it the test is phi0's own float
    resolution, ``phi0 + c1 alpha phi'(0) == phi0``.

    Parameters
    ----------
    phi : callable
        ``phi(alpha) -> float``, the objective restricted to the search ray. Never called
        at ``alpha = 0``.
    phi0 : float
        ``phi(0)``, finite.
    slope0 : float
        ``phi'(0)``, finite. ``slope0 >= 0`` does not raise: the search returns at once with
        status ``NOT_DESCENT``, ``alpha = 0``, ``value = phi0`` and 0 evaluations.
    alpha0 : float, default 1.0
        First trial step, finite and > 0.
    c1 : float, default 1e-4
        Sufficient-decrease constant in (0, 1).
    shrink : float, default 0.5
        Contraction factor in (0, 1) used without interpolation and after non-finite values.
    max_evals : int, default 30
        Maximum number of calls of ``phi`` (>= 1).
    interpolate : bool, default True
        Use safeguarded quadratic/cubic interpolation instead of a fixed contraction.
    min_shrink : float, default 0.1
        Lower safeguard of an interpolated backtrack, in (0, 0.5].
    precision : float, optional
        Relative precision of the values of phi (machine epsilon of the loss's dtype),
        in (0, 1); None: that of phi0 as a Python float.

    Returns
    -------
    LineSearchResult
        ``slope`` is always ``None`` (no derivative is evaluated). ``status`` is

        - ``CONVERGED``: ``alpha`` satisfies the Armijo condition;
        - ``NOT_DESCENT``: ``slope0 >= 0``; ``alpha = 0``;
        - ``ROUNDING``: ``alpha`` became so small that ``phi0 + c1*alpha*slope0 == phi0`` in
          floating point (or ``alpha`` underflowed) and the step was still rejected;
        - ``MAX_EVALS``: the budget ran out;
        - ``NON_FINITE``: every trial gave a non-finite ``phi``;
        - ``FLAT``: a rejected trial, at a slope of rounding level, gave exactly ``phi0``:
          phi is flat at working precision.

        On ``ROUNDING``, ``FLAT`` and ``MAX_EVALS`` the best trial is returned: the step with the
        lowest finite value if that value is below ``phi0``, else ``alpha = 0`` and
        ``value = phi0``.

    Raises
    ------
    ConfigError
        For constants outside their ranges or non-finite ``phi0``/``slope0``.

    References
    ----------
    J. Nocedal and S. J. Wright, *Numerical Optimization*, 2nd ed., Springer, 2006,
    §3.1 and §3.5.
    """
    check_callable("phi", phi)
    phi0 = check_finite("phi0", phi0)
    slope0 = check_finite("slope0", slope0)
    alpha, c1, shrink, max_evals, min_shrink, precision = _constants(
        alpha0, c1, shrink, max_evals, min_shrink, precision)

    if slope0 >= 0.0:
        return LineSearchResult(0.0, phi0, None, 0, LineSearchStatus.NOT_DESCENT)

    evals = 0
    best_alpha, best_value = 0.0, phi0
    any_finite = False
    # The previous finite trial, for the cubic; None right after a start or a non-finite value.
    prev: tuple[float, float] | None = None

    def give_up(status: LineSearchStatus) -> LineSearchResult:
        if not any_finite:
            status = LineSearchStatus.NON_FINITE
        return LineSearchResult(best_alpha, best_value, None, evals, status)

    def unresolved(step: float) -> bool:
        # whether the decrease c1 * step * |phi'(0)| asked of a step is below phi0's precision
        bound = phi0 + c1 * step * slope0
        return bound == phi0 or (precision is not None
                                 and phi0 - bound <= precision * abs(phi0))

    while True:
        if evals >= max_evals:
            return give_up(LineSearchStatus.MAX_EVALS)
        value = phi_value("phi", phi(alpha), alpha)
        evals += 1
        bound = phi0 + c1 * alpha * slope0

        if not math.isfinite(value):
            # Never interpolate through inf/NaN: plain contraction back towards 0.
            prev = None
            next_alpha = shrink * alpha
        else:
            any_finite = True
            if value <= bound:
                return LineSearchResult(alpha, value, None, evals, LineSearchStatus.CONVERGED)
            if value < best_value:
                best_alpha, best_value = alpha, value
            # Where the decrease asked at this trial is under sqrt(eps) |phi0|, the slope is
            # at rounding level; far from it, phi(alpha) == phi0 is the far side of a dip.
            # (|phi0| floored at eps: a loss of exactly 0 still has a scale)
            eps = precision or EPS
            near = -c1 * alpha * slope0 <= math.sqrt(eps) * max(abs(phi0), eps)
            if value == phi0 and near:
                # The step changed nothing the loss resolves; smaller ones change less.
                return give_up(LineSearchStatus.FLAT)
            if unresolved(alpha):
                # The required decrease is below the resolution of phi0: smaller steps
                # cannot be told apart from alpha = 0 by the Armijo test.
                return give_up(LineSearchStatus.ROUNDING)
            # The quadratic through phi0, phi'(0) and this trial rejects every step beyond
            # twice its minimiser; if the decrease the test asks for there is unresolved
            # too, no step can pass: stop now rather than halve down to rounding.
            # read only near rounding level too: far from it, phi need not be quadratic
            reach = 2.0 * _quadratic_step(phi0, slope0, alpha, value) if near else math.nan
            if math.isfinite(reach) and reach < alpha and unresolved(reach):
                return give_up(LineSearchStatus.ROUNDING)
            if interpolate:
                if prev is None:
                    trial = _quadratic_step(phi0, slope0, alpha, value)
                else:
                    trial = _cubic_step(phi0, slope0, prev[0], prev[1], alpha, value)
                if math.isfinite(trial):
                    next_alpha = min(max(trial, min_shrink * alpha), MAX_INTERP_SHRINK * alpha)
                else:
                    next_alpha = shrink * alpha
            else:
                next_alpha = shrink * alpha
            prev = (alpha, value)

        if not next_alpha > 0.0 or next_alpha == alpha:
            return give_up(LineSearchStatus.ROUNDING)
        alpha = next_alpha
