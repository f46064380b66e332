"""Line searches: pure functions of the restriction ``phi(alpha) = f(x + alpha d)``.

Each search takes phi (and, where needed, its slope), ``phi(0)``, ``phi'(0)`` and named
constants, checks the constants, and returns a :class:`LineSearchResult` whose ``status``
names why it stopped. None of them ever sees a model.

- :func:`backtracking`: Armijo sufficient decrease with safeguarded interpolation.
- :func:`strong_wolfe`: both strong Wolfe conditions (N&W Algorithms 3.5/3.6).
- :func:`exact`: minimises phi over ``alpha >= 0`` (closed form for quadratics).
- :func:`smoothed_backtracking`: Armijo's test on averaged decreases and slopes (SaLSA).

A :class:`TrialLog` wraps the function given to a search and records its trials
(:class:`Trial`: alpha, phi(alpha), phi'(alpha) where computed), in order.
"""

from descend.linesearch.backtracking import backtracking
from descend.linesearch.exact import exact
from descend.linesearch.result import LineSearchResult, LineSearchStatus
from descend.linesearch.smoothed import smoothed_backtracking
from descend.linesearch.trials import Trial, TrialLog
from descend.linesearch.wolfe import strong_wolfe

__all__ = [
    "LineSearchResult",
    "LineSearchStatus",
    "Trial",
    "TrialLog",
    "backtracking",
    "exact",
    "smoothed_backtracking",
    "strong_wolfe",
]
