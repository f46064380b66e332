"""Strong Wolfe line search: bracketing and zoom with safeguarded cubic interpolation."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

from descend.checks import (
    check_c1_c2,
    check_callable,
    check_count,
    check_finite,
    check_step_size,
    phi_pair,
)
from descend.linesearch.result import LineSearchResult, LineSearchStatus

__all__ = ["strong_wolfe"]

#: If two consecutive zoom steps did not shrink the bracket to this fraction of its width, the
#: next trial is the midpoint (Moré & Thuente 1994, §4): this bounds the number of steps.
SLOW_SHRINK = 0.66
#: Extrapolation while phi still decreases: alpha_new - alpha lies in
#: [EXTRAP_MIN, EXTRAP_MAX] * (alpha - alpha_prev); at least 10 % further so that progress is
#: made, at most 5x from alpha = 0 so that a concave stretch does not throw the step far away.
EXTRAP_MIN = 1.1
EXTRAP_MAX = 4.0
#: ... or up to EXTRAP_TRUSTED * (alpha - alpha_prev) (100x from alpha = 0) when the cubic and
#: the secant model of phi' predict the same minimiser to within MODELS_AGREE of the distance.
EXTRAP_TRUSTED = 99.0
MODELS_AGREE = 0.1
#: When the bracket spans more than this ratio (both ends > 0), its "midpoint" is the geometric
#: mean sqrt(lo * hi): halving a bracket like [0.007, 8] arithmetically would take many steps
#: to reach the scale of its lower end.
GEOMETRIC_RATIO = 4.0
#: The first step back from a non-finite trial with no other finite point than alpha = 0.
NON_FINITE_SHRINK = 0.1
#: The bracket is declared exhausted when its width is below this fraction of alpha.
REL_WIDTH = 1e-12
#: A trial equal to phi(0) is flat ground only where the decrease asked there is under
#: this fraction of |phi(0)| (sqrt of float64's epsilon: a slope at rounding level).
FLAT_SLOPE = 1.4901161193847656e-08


class _Point(NamedTuple):
    """A trial step with phi and phi' there (NaN for a non-finite trial)."""

    alpha: float
    value: float
    slope: float


def _cubic_minimiser(p: _Point, q: _Point) -> float:
    r"""Minimiser of the cubic matching phi and phi' at two points (N&W 2006, §3.5).

    .. math::
        d_1 = \phi'_p + \phi'_q - 3 \frac{\phi_p - \phi_q}{a_p - a_q}, \quad
        d_2 = \operatorname{sign}(a_q - a_p) \sqrt{d_1^2 - \phi'_p \phi'_q}, \\
        a = a_q - (a_q - a_p) \frac{\phi'_q + d_2 - d_1}{\phi'_q - \phi'_p + 2 d_2}.

    The square root is taken after scaling by the largest of |d1|, |phi'_p|, |phi'_q| so that
    large slopes do not overflow. Returns NaN when the cubic has no local minimiser.
    """
    width = q.alpha - p.alpha
    d1 = p.slope + q.slope - 3.0 * (p.value - q.value) / (p.alpha - q.alpha)
    scale = max(abs(d1), abs(p.slope), abs(q.slope))
    if scale == 0.0 or not math.isfinite(scale):
        return math.nan
    disc = (d1 / scale) ** 2 - (p.slope / scale) * (q.slope / scale)
    if disc < 0.0:
        return math.nan
    d2 = math.copysign(scale * math.sqrt(disc), width)
    denom = q.slope - p.slope + 2.0 * d2
    if denom == 0.0:
        return math.nan
    return q.alpha - width * (q.slope + d2 - d1) / denom


def strong_wolfe(
    phi_and_slope: Callable[[float], tuple[float, float]],
    phi0: float,
    slope0: float,
    *,
    alpha0: float = 1.0,
    c1: float = 1e-4,
    c2: float = 0.9,
    alpha_max: float = 1e10,
    max_evals: int = 30,
) -> LineSearchResult:
    r"""Line search for a step satisfying the strong Wolfe conditions.

    Finds ``alpha > 0`` with

    .. math::
        \phi(\alpha) \le \phi(0) + c_1 \alpha \phi'(0)
        \quad\text{and}\quad |\phi'(\alpha)| \le c_2 |\phi'(0)|,
        \qquad 0 < c_1 < c_2 < 1

    (Nocedal & Wright 2006, §3.1, eq. 3.7). The search follows N&W Algorithm 3.5
    (bracketing) and Algorithm 3.6 (zoom), with the trial steps chosen by the safeguarded
    interpolation rules of Moré & Thuente (1994, §4):

    - *Acceptance.* A trial satisfying both conditions is returned at once.
    - *Bracket update* (Algorithm 3.6). ``lo`` is the lowest trial with sufficient decrease
      (initially ``alpha = 0``) and ``phi'(lo) (hi - lo) < 0``. A trial without sufficient
      decrease, or not below ``phi(lo)``, becomes ``hi``; otherwise it becomes ``lo``, and the
      old ``lo`` becomes ``hi`` if the slope changed sign.
    - *Bracketing* (Algorithm 3.5). Until a ``hi`` exists, trials grow: the farther of the
      cubic minimiser through the last two trials and the secant step on phi' (when
      ``|phi'|`` fell), else the largest step, always within
      ``[1.1, 4] * (alpha_i - alpha_{i-1})`` beyond ``alpha_i`` (``[1.1, 99]`` when the two
      models agree within 10 %, as on a quadratic) and at most ``alpha_max``.
    - *Zoom trials.* With ``c`` the minimiser of the cubic matching phi and phi' at two
      points (N&W §3.5, cubic interpolation with derivatives):

      1. trial rejected: ``c`` through (lo, trial) if it is closer to lo than the minimiser
         ``q`` of the quadratic through phi(lo), phi'(lo), phi(trial), else ``(c + q) / 2``;
      2. trial accepted, slope changed sign: the farther from the trial of ``c`` and the
         secant zero of phi';
      3. trial accepted, same slope sign, ``|phi'|`` fell: the nearer of ``c`` and the secant
         step (both beyond the trial), at most 0.66 of the way to hi;
      4. trial accepted, same slope sign, ``|phi'|`` did not fall: ``c`` through (trial, hi).

      The midpoint of the bracket replaces the trial when it is not strictly inside the
      bracket, when no model applies, or when the last two zoom steps did not shrink the
      bracket to 0.66 of its width (which bounds the number of steps). For a bracket
      ``[a, b]`` with ``0 < a`` and ``b > 4 a`` the midpoint is the geometric mean
      ``sqrt(a b)``, so that the bisection works on the scale of the step.

    A trial where phi or phi' is inf/NaN is treated as "too far": it becomes ``hi`` and the
    next trial shrinks back towards ``lo`` (to 0.1 of the step when ``lo`` is ``alpha = 0``,
    to the midpoint otherwise); no polynomial is ever fitted through a non-finite value.

    Parameters
    ----------
    phi_and_slope : callable
        ``phi_and_slope(alpha) -> (phi(alpha), phi'(alpha))``. Never called at ``alpha = 0``.
    phi0 : float
        ``phi(0)``, finite.
    slope0 : float
        ``phi'(0)``, finite. ``slope0 >= 0`` does not raise: the search returns at once with
        status ``NOT_DESCENT``, ``alpha = 0``, ``value = phi0``, ``slope = slope0`` and 0
        evaluations.
    alpha0 : float, default 1.0
        First trial step, finite and > 0; clipped to ``alpha_max``.
    c1, c2 : float, default 1e-4, 0.9
        Sufficient-decrease and curvature constants, ``0 < c1 < c2 < 1``.
    alpha_max : float, default 1e10
        Largest step tried, > 0 (``inf`` allowed).
    max_evals : int, default 30
        Maximum number of calls of ``phi_and_slope`` (>= 1).

    Returns
    -------
    LineSearchResult
        ``status`` is

        - ``CONVERGED``: ``alpha`` satisfies both strong Wolfe conditions;
        - ``NOT_DESCENT``: ``slope0 >= 0``;
        - ``MAX_STEP``: ``alpha == alpha_max`` satisfies sufficient decrease with
          ``phi'(alpha) < 0`` still too steep for the curvature condition; that point is
          returned;
        - ``MAX_EVALS``: the budget ran out;
        - ``ROUNDING``: the bracket shrank below ``1e-12`` relative to alpha (or the decrease
          ``c1 * alpha * phi'(0)`` required at its far end is below the resolution of
          ``phi0``) before a strong Wolfe point was found;
        - ``NON_FINITE``: every trial was non-finite, and shrinking did not help before the
          budget or the precision ran out;
        - ``FLAT``: a rejected trial gave exactly ``phi0`` with ``phi'(alpha) <= c2 |phi'(0)|``
          where the decrease asked, ``c1 alpha |phi'(0)|``, is under ``1.5e-8 |phi0|``: phi
          is flat at working precision (the step changed nothing the loss resolves).

        On ``MAX_EVALS``, ``ROUNDING`` and ``FLAT`` the best point found is returned: the
        lowest trial satisfying sufficient decrease, or ``alpha = 0`` with
        ``phi0``/``slope0`` if none did.

    Raises
    ------
    ConfigError
        For constants outside their ranges or non-finite ``phi0``/``slope0``.

    References
    ----------
    J. Nocedal and S. J. Wright, *Numerical Optimization*, 2nd ed., Springer, 2006, §3.1,
    §3.5, Algorithms 3.5 and 3.6.
    J. J. Moré and D. J. Thuente, "Line search algorithms with guaranteed sufficient
    decrease", ACM Trans. Math. Softw. 20(3), 286-307, 1994.
    """
    check_callable("phi_and_slope", phi_and_slope)
    phi0 = check_finite("phi0", phi0)
    slope0 = check_finite("slope0", slope0)
    alpha0 = check_step_size("alpha0", alpha0)
    c1, c2 = check_c1_c2(c1, c2)
    alpha_max = check_step_size("alpha_max", alpha_max, allow_inf=True)
    max_evals = check_count("max_evals", max_evals)

    if slope0 >= 0.0:
        return LineSearchResult(0.0, phi0, slope0, 0, LineSearchStatus.NOT_DESCENT)

    curvature_bound = c2 * abs(slope0)
    origin = _Point(0.0, phi0, slope0)
    lo = origin  # lowest trial with sufficient decrease so far
    hi: _Point | None = None  # far end of the bracket, None while still extrapolating
    widths = [math.inf, math.inf]  # bracket widths after the last two zoom steps
    evals = 0
    any_finite = False
    alpha = min(alpha0, alpha_max)

    def give_up(status: LineSearchStatus) -> LineSearchResult:
        if not any_finite:
            status = LineSearchStatus.NON_FINITE
        return LineSearchResult(lo.alpha, lo.value, lo.slope, evals, status)

    while True:
        if evals >= max_evals:
            return give_up(LineSearchStatus.MAX_EVALS)
        value, slope = phi_pair("phi_and_slope", phi_and_slope(alpha), alpha)
        evals += 1
        trial = _Point(alpha, value, slope)

        finite = math.isfinite(value) and math.isfinite(slope)
        any_finite = any_finite or finite
        sufficient = finite and value <= phi0 + c1 * alpha * slope0
        if sufficient and abs(slope) <= curvature_bound:
            # Accepted even if not below phi(lo): near a minimiser phi is flat to rounding
            # error, and comparing values there would discard a valid point.
            return LineSearchResult(alpha, value, slope, evals, LineSearchStatus.CONVERGED)

        if (finite and value == phi0 and slope <= curvature_bound
                and -c1 * alpha * slope0 <= FLAT_SLOPE * abs(phi0)):
            # Flat at working precision: the step changed nothing the loss resolves and the
            # slope has not turned (at the far side of a minimiser phi' > c2 |phi'(0)|).
            return give_up(LineSearchStatus.FLAT)
        # Choose the next trial from lo, the new trial and hi (before they are updated), then
        # update the bracket as in N&W Algorithm 3.6.
        if not finite:
            hi = _Point(alpha, math.nan, math.nan)
            alpha = math.nan  # chosen below, from the bracket
        elif not sufficient or value >= lo.value:
            alpha = _step_higher(lo, trial)
            hi = trial
        elif slope * lo.slope <= 0.0:
            alpha = _step_turned(lo, trial)
            hi, lo = lo, trial
        elif hi is None:
            if alpha >= alpha_max:
                return LineSearchResult(alpha, value, slope, evals, LineSearchStatus.MAX_STEP)
            alpha = _extrapolate(lo, trial, alpha_max)
            lo = trial
        else:
            alpha = _step_same_sign(lo, trial, hi)
            lo = trial

        if hi is None:
            continue
        alpha, widths, stuck = _safeguard(alpha, lo, hi, widths, phi0 + c1 * hi.alpha * slope0
                                          == phi0)
        if stuck:
            return give_up(LineSearchStatus.ROUNDING)


def _safeguard(alpha: float, lo: _Point, hi: _Point, widths: list[float],
               unresolved: bool) -> tuple[float, list[float], bool]:
    """The next trial kept strictly inside the bracket [lo, hi] and shrinking it fast
    enough: bisection (geometric across orders of magnitude) when the model's choice would
    not, or towards the finite end from a non-finite one. Also the bracket widths after this
    step, and whether the search is stuck: the bracket is below rounding, or, with lo at 0,
    the decrease asked at hi is ``unresolved`` in floating point."""
    width = abs(hi.alpha - lo.alpha)
    if width <= REL_WIDTH * max(lo.alpha, hi.alpha) or (lo.alpha == 0.0 and unresolved):
        return alpha, widths, True
    midpoint = lo.alpha + 0.5 * (hi.alpha - lo.alpha)
    small, large = min(lo.alpha, hi.alpha), max(lo.alpha, hi.alpha)
    if small > 0.0 and large > GEOMETRIC_RATIO * small:
        midpoint = math.sqrt(small * large)
    if math.isnan(hi.value):
        # No model through a non-finite point: shrink towards the known finite end.
        alpha = NON_FINITE_SHRINK * hi.alpha if lo.alpha == 0.0 else midpoint
    elif width > SLOW_SHRINK * widths[0] or not (
        min(lo.alpha, hi.alpha) < alpha < max(lo.alpha, hi.alpha)
    ):
        alpha = midpoint
    return alpha, [widths[1], width], False


def _beyond(t: float, start: float, towards: float) -> bool:
    """Whether ``t`` lies strictly past ``start`` in the direction of ``towards``."""
    return (t - start) * (towards - start) > 0.0


def _extrapolate(lo: _Point, trial: _Point, alpha_max: float) -> float:
    """Next step beyond ``trial`` while phi still decreases (N&W Algorithm 3.5, 'choose').

    If ``|phi'|`` fell from lo to the trial, the farther of the cubic minimiser through
    (lo, trial) and the secant step on phi' (both looking ahead), else the largest step;
    always within ``[EXTRAP_MIN, EXTRAP_MAX] * (trial - lo)`` beyond the trial (Moré &
    Thuente 1994, §4, cases 3 and 4 before a bracket is known), widened to
    ``EXTRAP_TRUSTED`` when the two models agree to ``MODELS_AGREE``, and at most
    ``alpha_max``.
    """
    step = trial.alpha - lo.alpha
    smallest = trial.alpha + EXTRAP_MIN * step
    largest = trial.alpha + EXTRAP_MAX * step
    alpha = largest
    if abs(trial.slope) < abs(lo.slope):
        cubic = _cubic_minimiser(lo, trial)
        secant = _secant(lo, trial)
        if all(math.isfinite(t) and t > trial.alpha for t in (cubic, secant)):
            # Either model may be right; the farther one costs less if phi keeps falling.
            alpha = max(cubic, secant)
            if abs(cubic - secant) <= MODELS_AGREE * (min(cubic, secant) - trial.alpha):
                # phi' is close to linear (phi close to quadratic): a far minimiser is real,
                # e.g. a tiny alpha0 on a quadratic, and 5x steps would waste evaluations.
                largest = trial.alpha + EXTRAP_TRUSTED * step
    return min(max(alpha, smallest), largest, alpha_max)


def _step_higher(lo: _Point, trial: _Point) -> float:
    """Trial rejected (no sufficient decrease, or not below phi(lo)): the minimiser lies between.

    The cubic minimiser ``c`` through (lo, trial) if it is closer to lo than the minimiser
    ``q`` of the quadratic matching phi(lo), phi'(lo), phi(trial); else the average of the two.
    The quadratic is the more cautious model when phi rises steeply (Moré & Thuente 1994,
    §4, case 1).
    """
    span = trial.alpha - lo.alpha
    curvature = trial.value - lo.value - lo.slope * span
    quadratic = lo.alpha - lo.slope * span * span / (2.0 * curvature) if curvature > 0 else math.nan
    cubic = _cubic_minimiser(lo, trial)
    if not math.isfinite(cubic):
        return quadratic
    if not math.isfinite(quadratic) or abs(cubic - lo.alpha) < abs(quadratic - lo.alpha):
        return cubic
    return cubic + 0.5 * (quadratic - cubic)


def _secant(lo: _Point, trial: _Point) -> float:
    """Zero of the line through (lo.alpha, phi'(lo)) and (trial.alpha, phi'(trial))."""
    dslope = trial.slope - lo.slope
    if dslope == 0.0:
        return math.nan
    return trial.alpha + trial.slope / dslope * (lo.alpha - trial.alpha)


def _step_turned(lo: _Point, trial: _Point) -> float:
    """Trial accepted as the new lo with phi' of the other sign: a minimiser lies between.

    Of the cubic minimiser and the secant step on phi', the one farther from the trial
    (Moré & Thuente 1994, §4, case 2): the trial itself is already known.
    """
    cubic = _cubic_minimiser(lo, trial)
    secant = _secant(lo, trial)
    if not math.isfinite(cubic):
        return secant
    if not math.isfinite(secant) or abs(cubic - trial.alpha) > abs(secant - trial.alpha):
        return cubic
    return secant


def _step_same_sign(lo: _Point, trial: _Point, hi: _Point) -> float:
    """Trial accepted as the new lo, phi' of the same sign as at lo: the minimiser lies beyond.

    If ``|phi'|`` fell, the cubic through (lo, trial) or the secant on phi', whichever is
    closer to the trial, at most 0.66 of the way to hi (Moré & Thuente 1994, §4, case 3);
    otherwise the cubic minimiser through (trial, hi) (case 4). Returns NaN (meaning: use
    the midpoint) when hi is non-finite.
    """
    if math.isnan(hi.value):
        return math.nan
    if abs(trial.slope) >= abs(lo.slope):
        return _cubic_minimiser(trial, hi)
    cubic = _cubic_minimiser(lo, trial)
    if not (math.isfinite(cubic) and _beyond(cubic, trial.alpha, hi.alpha)):
        cubic = hi.alpha
    secant = _secant(lo, trial)
    if not (math.isfinite(secant) and _beyond(secant, trial.alpha, hi.alpha)):
        secant = hi.alpha
    alpha = cubic if abs(cubic - trial.alpha) < abs(secant - trial.alpha) else secant
    limit = trial.alpha + SLOW_SHRINK * (hi.alpha - trial.alpha)
    return min(alpha, limit) if hi.alpha > trial.alpha else max(alpha, limit)
