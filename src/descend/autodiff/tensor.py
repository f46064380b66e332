"""Tensor: an ndarray that remembers how it was made, so gradients can flow back to it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import backend
from ..errors import DTypeError, GradientError, ShapeError
from . import graph
from .graph import Node

xp = backend.xp


class Tensor:
    """An n-dimensional array with reverse-mode automatic differentiation.

    Attributes
    ----------
    data : ndarray
        The values. Editing ``data`` in place is allowed between steps (optimizers do).
    grad : ndarray or None
        d(loss)/d(self), accumulated by ``backward()`` on leaves that require grad, until
        set back to None (``zero_grad``).
    requires_grad : bool
        Whether operations on this tensor are recorded. Only floating tensors may.
    """

    __slots__ = ("__weakref__", "_g", "_node", "data", "grad", "requires_grad")
    __array_ufunc__ = None  # ndarray (op) Tensor defers to Tensor's reflected operator
    __hash__ = object.__hash__

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None):
        if not (isinstance(requires_grad, bool | np.bool_)
                or (isinstance(requires_grad, int) and requires_grad in (0, 1))):
            raise TypeError(f"requires_grad must be True or False, got {requires_grad!r:.40}")
        arr = backend.as_array(data.data if isinstance(data, Tensor) else data, dtype)
        if requires_grad and arr.dtype.kind != "f":
            raise DTypeError(
                f"only floating tensors can require grad, got dtype {arr.dtype}; "
                "convert with dtype=np.float32 or np.float64"
            )
        self.data = arr
        self.grad: np.ndarray | None = None
        self.requires_grad = bool(requires_grad)
        self._node: Node | None = None
        self._g: np.ndarray | None = None  # gradient in flight during backward

    # ------------------------------------------------------------------ basic attributes
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def is_leaf(self) -> bool:
        """True for tensors not made by a recorded operation."""
        return self._node is None

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="tensor(")
        extra = ", requires_grad=True" if self.requires_grad else ""
        if self.data.dtype != backend.DEFAULT_FLOAT:
            extra = f", dtype={self.data.dtype}{extra}"
        return f"tensor({body}{extra})"

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        if graph.tracer is not None:  # a value read while a step is recorded
            graph.tracer.read(self)
        return self.data if dtype is None else self.data.astype(dtype)

    def numpy(self) -> np.ndarray:
        """The values as an ndarray (shared, not copied)."""
        if graph.tracer is not None:
            graph.tracer.read(self)
        return self.data

    def item(self) -> float | int | bool:
        """The value of a one-element tensor as a Python number."""
        if graph.tracer is not None:
            graph.tracer.read(self)
        if self.data.size != 1:
            raise ShapeError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.data.item()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __bool__(self) -> bool:
        if graph.tracer is not None:
            graph.tracer.read(self)
        if self.data.size != 1:
            raise ShapeError(
                f"the truth value of a tensor of shape {self.shape} is ambiguous; "
                "use .any() or .all() on .data"
            )
        return bool(self.data.item())

    def detach(self) -> Tensor:
        """A tensor sharing the values but cut from the graph (requires_grad=False)."""
        return wrap(self.data, False, None)

    def requires_grad_(self, flag: bool = True) -> Tensor:
        """Set ``requires_grad`` in place (leaves only) and return self."""
        if flag and self.data.dtype.kind != "f":
            raise DTypeError(f"only floating tensors can require grad, got dtype {self.dtype}")
        if self._node is not None and not flag:
            raise GradientError("requires_grad can only be turned off on leaves; use detach()")
        self.requires_grad = bool(flag)
        return self

    def astype(self, dtype: Any) -> Tensor:
        """A copy converted to ``dtype`` (differentiable between floating dtypes)."""
        return _o.astype(self, np.dtype(dtype))

    # ------------------------------------------------------------------ backpropagation
    def backward(self, grad: Any = None, retain_graph: bool = False) -> None:
        """Backpropagate from this tensor, accumulating into the ``.grad`` of leaves.

        Parameters
        ----------
        grad : array_like, optional
            d(loss)/d(self). May be omitted only when this tensor holds one element (a loss);
            for any other shape pass an array of that shape (e.g. ``np.ones(t.shape)`` to
            differentiate ``t.sum()``).
        retain_graph : bool
            Keep the graph so that ``backward`` can be called through it again. By default
            the graph's saved arrays are released, so memory does not grow across steps.
        """
        if not self.requires_grad:
            raise GradientError(
                "backward() called on a tensor that does not require grad: no input of the "
                "computation had requires_grad=True (or it ran under no_grad())"
            )
        if grad is None:
            if self.data.size != 1:
                raise GradientError(
                    f"backward() on a tensor of shape {self.shape} needs grad=: pass an "
                    f"array of shape {self.shape} (d loss / d this tensor), or reduce it to "
                    "a scalar first (e.g. .sum())"
                )
            g = np.array(1, dtype=self.dtype).reshape(self.shape)
        else:
            g = np.array(grad.data if isinstance(grad, Tensor) else grad, dtype=self.dtype)
            if g.shape != self.shape:
                raise ShapeError(
                    f"backward(grad=...) got shape {g.shape}, expected {self.shape}"
                )
        graph.backward(self, g, retain_graph)

    # ------------------------------------------------------------------ operators
    def __add__(self, other: Any) -> Tensor:
        return _o.add(self, other)

    def __radd__(self, other: Any) -> Tensor:
        return _o.add(other, self)

    def __sub__(self, other: Any) -> Tensor:
        return _o.sub(self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return _o.sub(other, self)

    def __mul__(self, other: Any) -> Tensor:
        return _o.mul(self, other)

    def __rmul__(self, other: Any) -> Tensor:
        return _o.mul(other, self)

    def __truediv__(self, other: Any) -> Tensor:
        return _o.div(self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return _o.div(other, self)

    def __pow__(self, other: Any) -> Tensor:
        return _o.power(self, other)

    def __rpow__(self, other: Any) -> Tensor:
        return _o.power(other, self)

    def __matmul__(self, other: Any) -> Tensor:
        return _o.matmul(self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return _o.matmul(other, self)

    def __neg__(self) -> Tensor:
        return _o.neg(self)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return _o.absolute(self)

    # comparisons give plain boolean arrays: they have no gradient
    def __lt__(self, other: Any) -> np.ndarray:
        return _read(self).data < _data(other)

    def __le__(self, other: Any) -> np.ndarray:
        return _read(self).data <= _data(other)

    def __gt__(self, other: Any) -> np.ndarray:
        return _read(self).data > _data(other)

    def __ge__(self, other: Any) -> np.ndarray:
        return _read(self).data >= _data(other)

    def __eq__(self, other: Any) -> np.ndarray:  # type: ignore[override]
        return _read(self).data == _data(other)

    def __ne__(self, other: Any) -> np.ndarray:  # type: ignore[override]
        return _read(self).data != _data(other)

    def __getitem__(self, index: Any) -> Tensor:
        return _o.getitem(self, index)

    # ------------------------------------------------------------------ methods
    def sum(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        """Sum over ``axis`` (an int, a tuple of ints, or None for all)."""
        return _o.sum(self, axis=axis, keepdims=keepdims)

    def mean(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        """Mean over ``axis``."""
        return _o.mean(self, axis=axis, keepdims=keepdims)

    def max(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        """Maximum over ``axis``; tied maxima share the gradient equally."""
        return _o.amax(self, axis=axis, keepdims=keepdims)

    def min(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        """Minimum over ``axis``; tied minima share the gradient equally."""
        return _o.amin(self, axis=axis, keepdims=keepdims)

    def exp(self) -> Tensor:
        return _o.exp(self)

    def log(self) -> Tensor:
        return _o.log(self)

    def sqrt(self) -> Tensor:
        return _o.sqrt(self)

    def abs(self) -> Tensor:
        return _o.absolute(self)

    def relu(self) -> Tensor:
        return _o.relu(self)

    def tanh(self) -> Tensor:
        return _o.tanh(self)

    def sigmoid(self) -> Tensor:
        return _o.sigmoid(self)

    def clip(self, lo: float | None = None, hi: float | None = None) -> Tensor:
        """Clip to [lo, hi]; the gradient is 1 inside (ends included) and 0 outside."""
        return _o.clip(self, lo, hi)

    def reshape(self, *shape: int | Sequence[int]) -> Tensor:
        """A tensor with the same data in a new shape (one dimension may be -1)."""
        if len(shape) == 1 and not isinstance(shape[0], int | np.integer):
            shape = tuple(shape[0])  # type: ignore[arg-type]
        return _o.reshape(self, shape)

    def transpose(self, *axes: int | Sequence[int]) -> Tensor:
        """Permute axes (reverse them when none are given), as ``numpy.transpose``."""
        if len(axes) == 1 and not isinstance(axes[0], int | np.integer):
            axes = tuple(axes[0])  # type: ignore[arg-type]
        return _o.transpose(self, axes or None)

    @property
    def T(self) -> Tensor:
        return _o.transpose(self, None)

    def flatten(self, start_dim: int = 0) -> Tensor:
        """Flatten the dimensions from ``start_dim`` on into one."""
        shape = (*self.shape[:start_dim], -1)
        return _o.reshape(self, shape)


def _read(t: Tensor) -> Tensor:
    """``t``, after telling a step being recorded that Python reads its values (a
    comparison gives a plain array that may steer control flow: not replayable)."""
    if graph.tracer is not None:
        graph.tracer.read(t)
    return t


def _data(x: Any) -> Any:
    return x.data if isinstance(x, Tensor) else x


_new_tensor = object.__new__


def wrap(data: np.ndarray, requires_grad: bool, node: Node | None) -> Tensor:
    """Make a Tensor around an existing array without copying or checking (engine use)."""
    t = _new_tensor(Tensor)
    t.data = data
    t.grad = None
    t.requires_grad = requires_grad
    t._node = node
    t._g = None
    return t


graph.bind_tensor_type(Tensor, wrap)

from . import ops as _o  # noqa: E402  (the primitives need Tensor defined first)


def tensor(data: Any, requires_grad: bool = False, dtype: Any = None) -> Tensor:
    """Make a Tensor from a scalar, nested list or ndarray.

    Floating data defaults to float32; a float64 ndarray stays float64; ``dtype`` overrides.
    Integer and boolean tensors cannot require grad.
    """
    if isinstance(data, Tensor):
        data = data.data
        if dtype is None:
            dtype = data.dtype
    arr = backend.as_array(data, dtype)
    if isinstance(data, np.ndarray) and arr is data:
        arr = arr.copy()
    return Tensor(arr, requires_grad=requires_grad)


def _allocate(fill: Any, shape: tuple, dtype: Any, what: str) -> np.ndarray:
    """``fill(shape, dtype)`` for a checked shape and dtype; a size that cannot be allocated
    is our ShapeError, not NumPy's ValueError or MemoryError."""
    dt = np.dtype(dtype or backend.DEFAULT_FLOAT) if _is_dtype(dtype) else None
    if dt is None or dt.kind not in "fiub":
        raise DTypeError(f"{what}: dtype must be a real numeric NumPy dtype, got {dtype!r}")
    shape = _shape(shape)
    backend.check_allocation(shape, dt, what)
    try:
        return fill(shape, dt)
    except MemoryError:
        nbytes = dt.itemsize * math.prod(shape)
        raise ShapeError(f"{what}: shape {shape} needs {nbytes / 2**30:.3g} GiB, more memory "
                         "than is available") from None


def _is_dtype(dtype: Any) -> bool:
    try:
        np.dtype(dtype)
    except TypeError:
        return False
    return True


def zeros(*shape: int | Sequence[int], dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros (float32 unless ``dtype`` says otherwise)."""
    return Tensor(_allocate(np.zeros, shape, dtype, "zeros"), requires_grad)


def ones(*shape: int | Sequence[int], dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones (float32 unless ``dtype`` says otherwise)."""
    return Tensor(_allocate(np.ones, shape, dtype, "ones"), requires_grad)


def randn(
    *shape: int | Sequence[int],
    rng: np.random.Generator | int | None = None,
    dtype: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """Standard normal samples from ``rng`` (descend's global generator when None)."""
    gen = backend.get_rng(rng)
    data = _allocate(lambda s, dt: gen.standard_normal(s).astype(dt, copy=False), shape,
                     dtype, "randn")
    if data.dtype.kind != "f":
        raise DTypeError(f"randn: dtype must be floating, got {data.dtype}")
    return Tensor(data, requires_grad)


def _shape(shape: tuple) -> tuple[int, ...]:
    if len(shape) == 1 and not isinstance(shape[0], int | np.integer):
        if not isinstance(shape[0], tuple | list):
            raise TypeError(
                f"a shape needs non-negative ints, got {shape[0]!r} ({type(shape[0]).__name__})"
            )
        shape = tuple(shape[0])
    for n in shape:
        if not isinstance(n, int | np.integer) or n < 0:
            raise ShapeError(f"a shape needs non-negative ints, got {shape}")
    return tuple(int(n) for n in shape)
