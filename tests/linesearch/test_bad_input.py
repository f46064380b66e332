"""Bad input to the pure line searches (``backtracking``, ``strong_wolfe``, ``exact``): the
constants are checked before phi is ever called, and each message names the bad value."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from descend import linesearch as ls
from descend.errors import ConfigError

NAN, INF = math.nan, math.inf


class Recorder:
    """phi(alpha) = (alpha - 1)^2 (and its slope), remembering every call."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def phi(self, alpha: float) -> float:
        self.calls.append(alpha)
        return (alpha - 1.0) ** 2

    def phi_and_slope(self, alpha: float) -> tuple[float, float]:
        self.calls.append(alpha)
        return (alpha - 1.0) ** 2, 2.0 * (alpha - 1.0)


def call(search: str, rec: Recorder, **kwargs: Any) -> Any:
    if search == "backtracking":
        args = {"phi0": 1.0, "slope0": -2.0}
        args.update(kwargs)
        return ls.backtracking(rec.phi, args.pop("phi0"), args.pop("slope0"), **args)
    if search == "strong_wolfe":
        args = {"phi0": 1.0, "slope0": -2.0}
        args.update(kwargs)
        return ls.strong_wolfe(rec.phi_and_slope, args.pop("phi0"), args.pop("slope0"), **args)
    return ls.exact(rec.phi, **kwargs)


def row(search: str, kwargs: dict, needle: str, bug: str | None = None) -> Any:
    name = f"{search}-" + "-".join(f"{k}={v!r}" for k, v in kwargs.items())
    marks: list = []  # every bug this table once pinned is fixed
    return pytest.param(search, kwargs, needle, id=name, marks=marks)


BAD_CONSTANTS = [
    # ------------------------------------------------------------------ shared constants
    *(
        row(search, kwargs, needle)
        for search in ("backtracking", "strong_wolfe")
        for kwargs, needle in [
            ({"c1": 0}, "c1 must lie in (0, 1), got 0.0"),
            ({"c1": 1}, "got 1.0"),
            ({"c1": -1}, "-1.0"),
            ({"c1": NAN}, "nan"),
            ({"c1": "0.1"}, "'0.1'"),
            ({"c1": True}, "True"),
            ({"c1": 1j}, "1j"),
            ({"alpha0": 0}, "alpha0"),
            ({"alpha0": -1}, "-1.0"),
            ({"alpha0": INF}, "inf"),
            ({"alpha0": NAN}, "nan"),
            ({"max_evals": 0}, "max_evals"),
            ({"max_evals": 1.5}, "1.5"),
            ({"max_evals": True}, "True"),
            ({"phi0": NAN}, "phi0 must be finite, got nan"),
            ({"phi0": INF}, "phi0 must be finite, got inf"),
            ({"phi0": "1"}, "'1'"),
            ({"phi0": np.array([1.0, 2.0])}, "array([1., 2.])"),
            ({"slope0": NAN}, "slope0 must be finite, got nan"),
            ({"slope0": -INF}, "-inf"),
        ]
    ),
    # ------------------------------------------------------------------ backtracking only
    row("backtracking", {"shrink": 0}, "shrink must lie in (0, 1), got 0.0"),
    row("backtracking", {"shrink": 1}, "got 1.0"),
    row("backtracking", {"shrink": 2}, "2.0"),
    row("backtracking", {"shrink": NAN}, "nan"),
    row("backtracking", {"min_shrink": 0}, "min_shrink"),
    row("backtracking", {"min_shrink": 0.6}, "0.6"),
    # ------------------------------------------------------------------ strong Wolfe only
    row("strong_wolfe", {"c1": 0.9, "c2": 0.1}, "c1=0.9, c2=0.1"),
    row("strong_wolfe", {"c1": 0.5, "c2": 0.5}, "c1=0.5, c2=0.5"),
    row("strong_wolfe", {"c2": 1}, "c2 must lie in (0, 1), got 1.0"),
    row("strong_wolfe", {"c2": 0}, "c2"),
    row("strong_wolfe", {"c2": NAN}, "nan"),
    row("strong_wolfe", {"alpha_max": 0}, "alpha_max"),
    row("strong_wolfe", {"alpha_max": -1}, "-1.0"),
    row("strong_wolfe", {"alpha_max": NAN}, "nan"),
    # ------------------------------------------------------------------ exact
    row("exact", {"tol": 0}, "tol"),
    row("exact", {"tol": -1}, "-1.0"),
    row("exact", {"tol": NAN}, "nan"),
    row("exact", {"tol": INF}, "inf"),
    row("exact", {"max_evals": 0}, "max_evals"),
    row("exact", {"bracket": (1, 0)}, "(1, 0)"),
    row("exact", {"bracket": (-1, 1)}, "(-1, 1)"),
    row("exact", {"bracket": (0, INF)}, "(0, inf)"),
    row("exact", {"bracket": (0, NAN)}, "(0, nan)"),
    row("exact", {"bracket": (0,)}, "(0,)"),
    row("exact", {"bracket": (0, 1, 2)}, "(0, 1, 2)"),
    row("exact", {"bracket": "ab"}, "'ab'"),
    row("exact", {"bracket": 5}, "5",
        bug="linesearch/exact.py exact(bracket=5): len(5) raises the raw TypeError \"object of "
            "type 'int' has no len()\" instead of the ConfigError 'bracket must be a pair "
            "(lo, hi), got 5'"),
    row("exact", {"quadratic": (-1, 0)}, "got 0.0"),
    row("exact", {"quadratic": (-1, -1)}, "-1.0"),
    row("exact", {"quadratic": (1,)}, "(1,)"),
    row("exact", {"quadratic": (NAN, 1)}, "nan"),
    row("exact", {"quadratic": (-1, NAN)}, "nan"),
]


@pytest.mark.parametrize(("search", "kwargs", "needle"), BAD_CONSTANTS)
def test_bad_constants_are_named_before_phi_is_called(
    search: str, kwargs: dict, needle: str
) -> None:
    rec = Recorder()
    with pytest.raises(ConfigError) as info:
        call(search, rec, **kwargs)
    assert needle in str(info.value)
    assert isinstance(info.value, ValueError)
    assert rec.calls == []


@pytest.mark.parametrize(
    ("search", "fn"),
    [
        ("backtracking", lambda: ls.backtracking(3, 1.0, -1.0)),
        ("strong_wolfe", lambda: ls.strong_wolfe(None, 1.0, -1.0)),
        ("exact", lambda: ls.exact("phi")),
    ],
    ids=["backtracking", "strong_wolfe", "exact"],
)
def test_phi_must_be_callable(search: str, fn: Any) -> None:
    with pytest.raises(TypeError, match="must be callable"):
        fn()


@pytest.mark.parametrize("slope0", [0.0, 1e-300, 2.0])
@pytest.mark.parametrize("search", ["backtracking", "strong_wolfe"])
def test_ascent_direction_is_a_status_not_an_error(search: str, slope0: float) -> None:
    # Documented: slope0 >= 0 returns NOT_DESCENT at once, alpha = 0, without calling phi.
    rec = Recorder()
    result = call(search, rec, slope0=slope0)
    assert result.status is ls.LineSearchStatus.NOT_DESCENT
    assert result.alpha == 0.0 and result.evaluations == 0 and rec.calls == []
