"""Checks of the constants shared by the line searches.

Each check returns the value as a Python ``float``/``int`` and raises
:class:`descend.errors.ConfigError` naming the parameter and the offending value.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

from descend.errors import ConfigError


def as_float(name: str, value: object) -> float:
    """Convert a real scalar to ``float``; reject bools, complex numbers and other objects."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(f"{name} must be a real number, got {value!r}")
    return float(value)


def check_finite(name: str, value: object) -> float:
    """``value`` must be a finite real number (used for ``phi0`` and ``slope0``)."""
    x = as_float(name, value)
    if not math.isfinite(x):
        raise ConfigError(f"{name} must be finite, got {x!r}")
    return x


def check_open_unit(name: str, value: object) -> float:
    """``value`` must lie in the open interval (0, 1) (``c1``, ``shrink``)."""
    x = as_float(name, value)
    if not 0.0 < x < 1.0:
        raise ConfigError(f"{name} must lie in (0, 1), got {x!r}")
    return x


def check_c1_c2(c1: object, c2: object) -> tuple[float, float]:
    """Strong Wolfe constants: ``0 < c1 < c2 < 1`` (Nocedal & Wright 2006, eq. 3.7)."""
    c1f = check_open_unit("c1", c1)
    c2f = check_open_unit("c2", c2)
    if not c1f < c2f:
        raise ConfigError(f"c2 must satisfy c1 < c2 < 1, got c1={c1f!r}, c2={c2f!r}")
    return c1f, c2f


def check_positive(name: str, value: object, *, allow_inf: bool = False) -> float:
    """``value`` must be > 0 and finite (or ``+inf`` when ``allow_inf``)."""
    x = as_float(name, value)
    if not x > 0.0 or (math.isinf(x) and not allow_inf):
        kind = "> 0" if allow_inf else "finite and > 0"
        raise ConfigError(f"{name} must be {kind}, got {x!r}")
    return x


def check_max_evals(value: object) -> int:
    """``max_evals`` must be an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(f"max_evals must be an integer >= 1, got {value!r}")
    n = int(value)
    if n < 1:
        raise ConfigError(f"max_evals must be an integer >= 1, got {n!r}")
    return n


def check_callable(name: str, fn: object) -> Callable[..., object]:
    """``fn`` must be callable; a ``TypeError`` names it otherwise."""
    if not callable(fn):
        raise TypeError(f"{name} must be callable, got {type(fn).__name__}")
    return fn
