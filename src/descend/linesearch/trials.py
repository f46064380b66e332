"""The trials of a line search, recorded by wrapping the function it is given.

A search stays a pure function of phi: to see what it tried, hand it phi wrapped by a
:class:`TrialLog` and read the log afterwards. The search cannot tell the difference (the
wrapper returns what phi returns), so recording changes nothing it does.

>>> log = TrialLog()
>>> from descend.linesearch import backtracking
>>> res = backtracking(log.values(lambda a: (a - 1.0) ** 2), 1.0, -2.0, alpha0=4.0)
>>> len(log.trials) == res.evaluations and log.trials[0].alpha == 4.0
True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple


class Trial(NamedTuple):
    """One trial of a line search: the step tried and what the search learned there.

    Attributes
    ----------
    alpha : float
        The step tried.
    value : float
        phi(alpha).
    slope : float or None
        phi'(alpha) where the search computed it (strong Wolfe), else None.
    """

    alpha: float
    value: float
    slope: float | None = None


class TrialLog:
    """Records, in order, every call a search makes of the functions it wraps.

    ``values(phi)`` wraps ``phi(alpha) -> float``; ``values_and_slopes(phi_and_slope)``
    wraps ``phi_and_slope(alpha) -> (phi, phi')``. Both may wrap functions of the same line:
    their calls go into one log. ``trials`` is the record so far, a tuple of :class:`Trial`.
    """

    __slots__ = ("_trials",)

    def __init__(self) -> None:
        self._trials: list[Trial] = []

    @property
    def trials(self) -> tuple[Trial, ...]:
        """The trials made so far, in the order they were made."""
        return tuple(self._trials)

    def values(self, phi: Callable[[float], float]) -> Callable[[float], float]:
        """``phi``, recording each call's alpha and value."""
        trials = self._trials

        def recorded(alpha: float) -> float:
            value = phi(alpha)
            trials.append(Trial(float(alpha), float(value)))
            return value

        return recorded

    def values_and_slopes(
        self, phi_and_slope: Callable[[float], tuple[float, float]]
    ) -> Callable[[float], tuple[float, float]]:
        """``phi_and_slope``, recording each call's alpha, value and slope."""
        trials = self._trials

        def recorded(alpha: float) -> tuple[float, float]:
            value, slope = phi_and_slope(alpha)
            trials.append(Trial(float(alpha), float(value), float(slope)))
            return value, slope

        return recorded
