"""Reductions over any axis or tuple of axes, with ``keepdims``: sum, mean, max, min,
and the fused, overflow-free log-sum-exp."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ...backend import xp
from ...errors import ShapeError
from ._core import Kernel, apply1, primitive

Axis = int | Sequence[int] | None


def normalize_axis(axis: Axis, ndim: int) -> tuple[int, ...] | None:
    """Axis as a sorted tuple of non-negative ints (None means every axis)."""
    if axis is None:
        return None
    if isinstance(axis, int | np.integer):
        axes: tuple = (axis,)
    elif isinstance(axis, tuple | list):
        axes = tuple(axis)
    else:
        raise TypeError(f"axis must be an int, a tuple of ints or None, got {axis!r}")
    out = []
    for a in axes:
        if not isinstance(a, int | np.integer):
            raise TypeError(f"axis must be an int or a tuple of ints, got {axis!r}")
        if not -ndim <= a < max(ndim, 1):
            raise ShapeError(f"axis {a} is out of range for a tensor with {ndim} dimensions")
        out.append(int(a) % max(ndim, 1))
    if len(set(out)) != len(out):
        raise ShapeError(f"axis {axis!r} repeats an axis")
    return tuple(sorted(out))


def _expand(g: np.ndarray, x_shape: tuple[int, ...], axis, keepdims: bool) -> np.ndarray:
    """Give the reduced gradient back its reduced axes (as size 1)."""
    if keepdims or g.ndim == len(x_shape):
        return g
    if axis is None:
        return g.reshape((1,) * len(x_shape))
    return g.reshape(tuple(1 if i in axis else n for i, n in enumerate(x_shape)))


def _spread(g: np.ndarray, x_shape: tuple[int, ...], axis, keepdims: bool,
            into: np.ndarray | None = None) -> np.ndarray:
    """The reduced gradient copied back over the reduced axes: into a fresh, writeable
    array, or into ``into`` (a kernel's buffer, made by an earlier call)."""
    out = xp.empty(x_shape, dtype=g.dtype) if into is None else into
    out[...] = _expand(g, x_shape, axis, keepdims)
    return out


def _sum_forward(x, axis, keepdims):
    return xp.asarray(x.sum(axis=axis, keepdims=keepdims))


def _sum_vjp(g, out, inputs, needs, axis, keepdims):
    return (_spread(g, inputs[0].shape, axis, keepdims),)


_SUM = primitive("sum", _sum_forward, _sum_vjp)


def sum(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:
    """Sum over ``axis``."""
    axes = None if axis is None else normalize_axis(axis, np.ndim(_array(x)))
    return apply1(_SUM, x, {"axis": axes, "keepdims": keepdims})


def _mean_forward(x, axis, keepdims):
    total = x.sum(axis=axis, keepdims=keepdims)
    count = x.size // max(total.size, 1) if x.size else 0
    return xp.asarray(total / count if count else total * xp.nan)


def _mean_vjp(g, out, inputs, needs, axis, keepdims, into=None):
    x = inputs[0]
    count = x.size // max(out.size, 1) if x.size else 1
    return (_spread(g / count, x.shape, axis, keepdims, into),)


def _mean_vjp_into(ws, g, out, inputs, needs, fresh, axis, keepdims):
    if fresh[0]:
        return _mean_vjp(g, out, inputs, needs, axis, keepdims)
    grads = _mean_vjp(g, out, inputs, needs, axis, keepdims, ws.get("g"))
    ws["g"] = grads[0]  # the first call's array is the buffer of the next ones
    return grads


_MEAN = primitive("mean", _mean_forward, _mean_vjp, Kernel(None, _mean_vjp_into))


def mean(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:
    """Arithmetic mean over ``axis``."""
    axes = None if axis is None else normalize_axis(axis, np.ndim(_array(x)))
    return apply1(_MEAN, x, {"axis": axes, "keepdims": keepdims})


def _extreme_vjp(g, out, inputs, needs, axis, keepdims):
    # Ties share the gradient equally: each of k tied extremes receives g / k.
    x = inputs[0]
    out_k = _expand(out, x.shape, axis, keepdims)
    hit = x == out_k
    count = hit.sum(axis=axis, keepdims=True)
    return (_expand(g, x.shape, axis, keepdims) * hit / count.astype(g.dtype),)


def _max_forward(x, axis, keepdims):
    return xp.asarray(x.max(axis=axis, keepdims=keepdims))


def _min_forward(x, axis, keepdims):
    return xp.asarray(x.min(axis=axis, keepdims=keepdims))


_MAX = primitive("max", _max_forward, _extreme_vjp)
_MIN = primitive("min", _min_forward, _extreme_vjp)


def amax(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:
    """Maximum over ``axis``; tied maxima share the gradient equally."""
    return apply1(_MAX, x, {"axis": _nonempty_axis(x, axis, "max"), "keepdims": keepdims})


def amin(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:
    """Minimum over ``axis``; tied minima share the gradient equally."""
    return apply1(_MIN, x, {"axis": _nonempty_axis(x, axis, "min"), "keepdims": keepdims})


def _lse_forward(x, axis, keepdims):
    m = x.max(axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0)  # all -inf (or inf) rows: leave them to the log
    s = xp.exp(x - m).sum(axis=axis, keepdims=True)
    out = xp.log(s) + m
    if not keepdims:
        out = out.reshape(_reduced_shape(x.shape, axis))
    return xp.asarray(out)


def _lse_vjp(g, out, inputs, needs, axis, keepdims):
    x = inputs[0]
    out_k = _expand(out, x.shape, axis, keepdims)
    return (_expand(g, x.shape, axis, keepdims) * xp.exp(x - out_k),)


_LSE = primitive("logsumexp", _lse_forward, _lse_vjp)


def logsumexp(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:
    """log(sum(exp(x))) over ``axis``, shifted by the maximum so it never overflows."""
    return apply1(_LSE, x, {"axis": _nonempty_axis(x, axis, "logsumexp"), "keepdims": keepdims})


def _reduced_shape(shape: tuple[int, ...], axis) -> tuple[int, ...]:
    if axis is None:
        return ()
    return tuple(n for i, n in enumerate(shape) if i not in axis)


def _array(x: Any) -> Any:
    """The array of a tensor; other input as an array (a ShapeError for ragged lists)."""
    data = getattr(x, "data", x)
    if isinstance(data, np.ndarray):
        return data
    try:
        return np.asarray(data)
    except ValueError:
        raise ShapeError("x must be a tensor or an array, got ragged nested sequences") from None


def _nonempty_axis(x: Any, axis: Axis, name: str) -> tuple[int, ...] | None:
    arr = _array(x)
    axes = normalize_axis(axis, np.ndim(arr))
    shape = np.shape(arr)
    if np.size(arr) == 0 and (axes is None or any(shape[a] == 0 for a in axes)):
        raise ShapeError(f"{name} of an empty tensor (shape {shape}) is undefined")
    return axes
