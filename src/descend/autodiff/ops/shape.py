"""Primitives that move values without changing them: reshape, transpose, indexing,
concatenate, stack, dtype conversion."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ... import backend
from ...backend import xp
from ...errors import ShapeError
from ._core import apply1, call, primitive


def _reshape_forward(x, shape):
    return x.reshape(shape)


def _reshape_vjp(g, out, inputs, needs, shape):
    return (g.reshape(inputs[0].shape),)


_RESHAPE = primitive("reshape", _reshape_forward, _reshape_vjp)


def reshape(x: Any, shape: Sequence[int]) -> Any:
    """The same values in a new shape (one entry may be -1)."""
    shape = tuple(int(n) for n in shape)
    size = np.size(getattr(x, "data", x))
    known = int(np.prod([n for n in shape if n != -1]))
    if shape.count(-1) > 1 or (-1 not in shape and known != size) or (
        -1 in shape and (known == 0 or size % known)
    ):
        raise ShapeError(
            f"cannot reshape a tensor of shape {np.shape(getattr(x, 'data', x))} "
            f"({size} elements) into shape {shape}"
        )
    return apply1(_RESHAPE, x, {"shape": shape})


def _transpose_forward(x, axes):
    return xp.transpose(x, axes)


def _transpose_vjp(g, out, inputs, needs, axes):
    if axes is None:
        return (xp.transpose(g),)
    return (xp.transpose(g, np.argsort(axes)),)


_TRANSPOSE = primitive("transpose", _transpose_forward, _transpose_vjp)


def transpose(x: Any, axes: Sequence[int] | None = None) -> Any:
    """Permute the axes (reverse them when ``axes`` is None)."""
    if axes is not None:
        ndim = np.ndim(getattr(x, "data", x))
        axes = tuple(int(a) % ndim if -ndim <= a < ndim else a for a in axes)
        if sorted(axes) != list(range(ndim)):
            raise ShapeError(f"axes {axes} are not a permutation of {ndim} dimensions")
    return apply1(_TRANSPOSE, x, {"axes": axes})


def _is_advanced(index: Any) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return any(isinstance(i, np.ndarray | list) for i in items)


def _getitem_forward(x, index, advanced):
    return x[index]


def _getitem_vjp(g, out, inputs, needs, index, advanced):
    x = inputs[0]
    full = xp.zeros(x.shape, dtype=g.dtype)
    if advanced:
        xp.add.at(full, index, g)  # repeated integer indices accumulate
    else:
        full[index] = g
    return (full,)


_GETITEM = primitive("getitem", _getitem_forward, _getitem_vjp)


def getitem(x: Any, index: Any) -> Any:
    """``x[index]`` with slices, integer arrays (repeats accumulate) and boolean masks."""
    from ..tensor import Tensor

    if isinstance(index, Tensor):
        index = index.data
    elif isinstance(index, tuple):
        index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
    if isinstance(index, list):
        index = np.asarray(index)
    elif isinstance(index, tuple):
        index = tuple(np.asarray(i) if isinstance(i, list) else i for i in index)
    try:
        return apply1(_GETITEM, x, {"index": index, "advanced": _is_advanced(index)})
    except IndexError as exc:
        shape = np.shape(getattr(x, "data", x))
        msg = f"index {index!r} is invalid for a tensor of shape {shape}: {exc}"
        raise IndexError(msg) from None


def _concat_forward(*arrays, axis):
    return xp.concatenate(arrays, axis=axis)


def _concat_vjp(g, out, inputs, needs, axis):
    bounds = np.cumsum([a.shape[axis] for a in inputs])[:-1]
    return tuple(xp.split(g, bounds, axis=axis))


_CONCAT = primitive("concatenate", _concat_forward, _concat_vjp)


def concatenate(tensors: Sequence[Any], axis: int = 0) -> Any:
    """Join tensors along an existing axis."""
    from ..tensor import Tensor

    if isinstance(tensors, Tensor | np.ndarray | str) or not hasattr(tensors, "__iter__"):
        raise TypeError(f"concatenate: tensors must be a sequence of tensors, got "
                        f"{type(tensors).__name__}")
    if isinstance(axis, bool) or not isinstance(axis, int | np.integer):
        raise TypeError(f"concatenate: axis must be an int, got {axis!r}")
    tensors = [t if isinstance(t, Tensor) else backend.as_array(t) for t in tensors]
    if not tensors:
        raise ValueError("concatenate needs at least one tensor (tensors is empty)")
    shapes = [np.shape(getattr(t, "data", t)) for t in tensors]
    ndim = len(shapes[0])
    if any(len(s) != ndim for s in shapes) or not -ndim <= axis < ndim:
        raise ShapeError(f"cannot concatenate shapes {shapes} along axis {axis}")
    axis %= ndim
    for s in shapes:
        if s[:axis] + s[axis + 1 :] != shapes[0][:axis] + shapes[0][axis + 1 :]:
            raise ShapeError(f"cannot concatenate shapes {shapes} along axis {axis}")
    return call(_CONCAT, *tensors, axis=axis)


def _stack_forward(*arrays, axis):
    return xp.stack(arrays, axis=axis)


def _stack_vjp(g, out, inputs, needs, axis):
    return tuple(xp.moveaxis(g, axis, 0))


_STACK = primitive("stack", _stack_forward, _stack_vjp)


def stack(tensors: Sequence[Any], axis: int = 0) -> Any:
    """Join tensors of one shape along a new axis."""
    from ..tensor import Tensor

    if isinstance(tensors, Tensor | np.ndarray | str) or not hasattr(tensors, "__iter__"):
        raise TypeError(f"stack: tensors must be a sequence of tensors, got "
                        f"{type(tensors).__name__}")
    if isinstance(axis, bool) or not isinstance(axis, int | np.integer):
        raise TypeError(f"stack: axis must be an int, got {axis!r}")
    tensors = [t if isinstance(t, Tensor) else backend.as_array(t) for t in tensors]
    if not tensors:
        raise ValueError("stack needs at least one tensor (tensors is empty)")
    shapes = [np.shape(getattr(t, "data", t)) for t in tensors]
    if any(s != shapes[0] for s in shapes):
        raise ShapeError(f"stack needs tensors of one shape, got {shapes}")
    ndim = len(shapes[0]) + 1
    if not -ndim <= axis < ndim:
        raise ShapeError(f"axis {axis} is out of range for stacking into {ndim} dimensions")
    return call(_STACK, *tensors, axis=axis % ndim)


def _astype_forward(x, dtype):
    return x.astype(dtype)


def _astype_vjp(g, out, inputs, needs, dtype):
    return (g.astype(inputs[0].dtype),)


_ASTYPE = primitive("astype", _astype_forward, _astype_vjp)


def astype(x: Any, dtype: np.dtype) -> Any:
    """A copy converted to ``dtype``; gradients are converted back."""
    return apply1(_ASTYPE, x, {"dtype": dtype})


def _broadcast_forward(x, shape):
    return xp.broadcast_to(x, shape)


def _broadcast_vjp(g, out, inputs, needs, shape):
    return (g,)  # the engine sums the broadcast axes away


_BROADCAST = primitive("broadcast_to", _broadcast_forward, _broadcast_vjp)


def broadcast_to(x: Any, shape: Sequence[int]) -> Any:
    """A read-only view of ``x`` broadcast to ``shape``."""
    return apply1(_BROADCAST, x, {"shape": tuple(shape)})
