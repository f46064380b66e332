"""One home for checking numbers and constants given to descend.

Each check returns the value as a Python ``float``/``int`` and raises
:class:`descend.errors.ConfigError` naming the parameter and the offending value
(:class:`descend.errors.ConfigTypeError` where the check tells a wrong type from a value out
of range). Bools are never numbers here, NumPy scalars are.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import numpy as np

from descend.errors import ConfigError, ConfigTypeError, ShapeError


def is_real(value: object) -> bool:
    """A real number (Python or NumPy), not a bool."""
    kind = type(value)
    if kind is float or kind is int:  # the common case, without the ABC check
        return True
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def as_float(name: str, value: object) -> float:
    """Convert a real scalar to ``float``; reject bools, complex numbers and other objects."""
    if not is_real(value):
        raise ConfigError(f"{name} must be a real number, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def check_finite(name: str, value: object) -> float:
    """``value`` must be a finite real number (used for ``phi0`` and ``slope0``)."""
    x = as_float(name, value)
    if not math.isfinite(x):
        raise ConfigError(f"{name} must be finite, got {x!r}")
    return x


def check_c1_c2(c1: object, c2: object) -> tuple[float, float]:
    """Strong Wolfe constants: ``0 < c1 < c2 < 1`` (Nocedal & Wright 2006, eq. 3.7)."""
    c1f = check_fraction("c1", c1)
    c2f = check_fraction("c2", c2)
    if not c1f < c2f:
        raise ConfigError(f"c2 must satisfy c1 < c2 < 1, got c1={c1f!r}, c2={c2f!r}")
    return c1f, c2f


def check_callable(name: str, fn: object) -> Callable[..., object]:
    """``fn`` must be callable; a ``TypeError`` names it otherwise."""
    if not callable(fn):
        raise TypeError(f"{name} must be callable, got {type(fn).__name__}")
    return fn


def check_number(name: str, value: object, lo: float, hi: float, *, hi_open: bool = True) -> float:
    """``value`` must be a number in [lo, hi) (or [lo, hi] with ``hi_open=False``)."""
    if not is_real(value) or math.isnan(value):  # type: ignore[arg-type]
        raise ConfigError(f"{name} must be a number, got {value!r}")
    ok = lo <= value < hi if hi_open else lo <= value <= hi  # type: ignore[operator]
    if not ok:
        right = ")" if hi_open else "]"
        raise ConfigError(f"{name} must lie in [{lo}, {hi}{right}, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def check_step_size(name: str, value: object, *, allow_zero: bool = False,
                    allow_inf: bool = False) -> float:
    """A step-rule constant: finite and > 0 (>= 0 with ``allow_zero``; +inf allowed with
    ``allow_inf``)."""
    if not is_real(value):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    v = float(value)  # type: ignore[arg-type]
    if math.isnan(v) or (math.isinf(v) and not allow_inf) or v < 0 or (v == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        kind = bound if allow_inf else f"finite and {bound}"
        raise ConfigError(f"{name} must be {kind}, got {v!r}")
    return v


def check_fraction(name: str, value: object) -> float:
    """A constant in the open interval (0, 1) (``c1``, ``c2``, ``shrink``, ``factor``)."""
    v = as_float(name, value)
    if not 0.0 < v < 1.0:
        raise ConfigError(f"{name} must lie in (0, 1), got {v!r}")
    return v


def check_count(name: str, value: object, minimum: int = 1,
                maximum: int | None = None) -> int:
    """An ``int`` >= ``minimum`` (bools refused), and <= ``maximum`` when one is given."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ConfigError(f"{name} must be an int >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name} must be at most {maximum:,}, got {value!r}")
    return int(value)


#: seeds run from 0 to 2**32 - 1: what ``numpy.random.RandomState`` takes
SEED_LIMIT = 2**32

RandomStateLike = None | int | np.integer | np.random.RandomState | np.random.Generator


def check_random_state(name: str, value: object) -> RandomStateLike:
    """scikit-learn's ``random_state``: None, an int in [0, 2**32), a
    ``numpy.random.RandomState`` or a ``numpy.random.Generator``; returned unchanged.

    scikit-learn's own estimators take the same (less the Generator) and, like every check
    here, refuse bools, which ``sklearn.utils.check_random_state`` would take for the seeds
    0 and 1. A wrong type raises ``ConfigTypeError``, an int out of range ``ConfigError``,
    each naming ``name`` and the value, before NumPy's seeding refuses it in its own words.
    """
    if value is None or isinstance(value, np.random.RandomState | np.random.Generator):
        return value
    expected = (f"{name} must be None, an int in [0, 2**32), a numpy.random.RandomState or "
                "a numpy.random.Generator")
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise ConfigTypeError(f"{expected}, got {value!r:.60} ({type(value).__name__})")
    if not 0 <= value < SEED_LIMIT:
        raise ConfigError(f"{expected}, got {value!r}")
    return value


def phi_value(name: str, value: object, alpha: float) -> float:
    """What ``name(alpha)`` returned, as a ``float``: a real number or a 0-d real array.

    Anything else (an array of shape (1,), a bool, a string) raises ``ShapeError`` or
    ``TypeError`` naming the function and alpha, before NumPy's conversion rules decide."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "fiu":
        return float(value)
    shape = getattr(value, "shape", None)
    if shape is not None and tuple(shape) != ():
        raise ShapeError(f"{name}({alpha!r}) must return a real number, got an array of shape "
                         f"{tuple(shape)}; return a float (e.g. loss.item())")
    raise TypeError(f"{name}({alpha!r}) must return a real number, got {value!r:.60} "
                    f"({type(value).__name__})")


def phi_pair(name: str, value: object, alpha: float) -> tuple[float, float]:
    """What ``name(alpha)`` returned, as the pair ``(phi(alpha), phi'(alpha))`` of floats."""
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise TypeError(f"{name}({alpha!r}) must return a pair (phi, slope), got "
                        f"{value!r:.60} ({type(value).__name__})")
    return (phi_value(f"{name} value of", value[0], alpha),
            phi_value(f"{name} slope of", value[1], alpha))
