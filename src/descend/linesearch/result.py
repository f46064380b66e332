"""The record every line search returns, and the names of its exits."""

from __future__ import annotations

import enum
from typing import NamedTuple


class LineSearchStatus(enum.Enum):
    """Why a line search stopped.

    Attributes
    ----------
    CONVERGED
        The returned step satisfies the search's acceptance conditions.
    MAX_EVALS
        The evaluation budget ran out first; the best step seen is returned.
    NOT_DESCENT
        ``slope0 >= 0`` (or, for :func:`~descend.linesearch.exact`, no decrease
        was found): the direction does not descend; ``alpha = 0`` is returned.
    ROUNDING
        The step (or the bracket around it) shrank below machine precision relative
        to alpha, so no further progress is possible in floating point.
    NON_FINITE
        ``phi`` (or its slope) was inf/NaN at every trial and shrinking the step did
        not recover a finite value.
    MAX_STEP
        The step reached ``alpha_max`` while phi was still decreasing with
        sufficient decrease and a negative slope (strong Wolfe only).
    FLAT
        phi is flat at working precision: a trial gave exactly ``phi(0)`` (the step
        changed nothing the loss can resolve), or the slope is exactly 0 (a zero
        gradient). No decrease can be found at this precision; ``alpha`` is the best
        step seen (0 when none was lower than ``phi(0)``).
    """

    CONVERGED = "converged"
    MAX_EVALS = "max_evals"
    NOT_DESCENT = "not_descent"
    ROUNDING = "rounding"
    NON_FINITE = "non_finite"
    MAX_STEP = "max_step"
    FLAT = "flat"


class LineSearchResult(NamedTuple):
    """Outcome of a line search along ``phi(alpha) = f(x + alpha * d)``.

    Attributes
    ----------
    alpha : float
        The step returned (``0.0`` when no acceptable step was found).
    value : float
        ``phi(alpha)`` (``phi0`` when ``alpha == 0``).
    slope : float or None
        ``phi'(alpha)`` where the search computed it, else ``None``.
    evaluations : int
        Exactly the number of calls made to the function passed in.
    status : LineSearchStatus
        Why the search stopped; see :class:`LineSearchStatus`.
    """

    alpha: float
    value: float
    slope: float | None
    evaluations: int
    status: LineSearchStatus

    @property
    def converged(self) -> bool:
        """``True`` when ``status`` is :attr:`LineSearchStatus.CONVERGED`."""
        return self.status is LineSearchStatus.CONVERGED

    def __str__(self) -> str:
        slope = "n/a" if self.slope is None else f"{self.slope:.6g}"
        return (
            f"LineSearchResult({self.status.name}: alpha={self.alpha:.6g}, "
            f"phi={self.value:.6g}, slope={slope}, evaluations={self.evaluations})"
        )
