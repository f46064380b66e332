"""The engine seam: the few operations one optimizer step makes on arrays and parameters.

A *vector* here is a list of arrays, one per parameter. Directions, step rules and the
restriction of the loss to a line are written once against :class:`Engine`; the NumPy
engine below serves descend's own tensors, and ``descend.torch`` supplies the same
operations over torch tensors, so no step rule or direction exists twice.

Elementwise arithmetic (``b *= beta``, ``m + g``) is written with Python operators, which
NumPy arrays and torch tensors share; only reductions, allocation, the parameter update
written into a spare buffer, and what touches parameters, gradients, closures and random
state go through the engine.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from .. import backend
from ..autodiff.graph import enable_grad, no_grad
from ..autodiff.tensor import Tensor
from ..errors import GradientError

Vector = list[Any]


class Engine(Protocol):
    """What an optimizer step needs from an array library and its autodiff."""

    # ---------------------------------------------------------------- vectors
    def dot(self, a: Vector, b: Vector) -> float:
        """sum_i <a_i, b_i>, accumulated parameter by parameter in order."""
        ...

    def fdot(self, a: Vector, b: Vector) -> float:
        """The same sum, with the per-parameter terms added exactly (``math.fsum``)."""
        ...

    def clone(self, a: Vector) -> Vector: ...

    def zeros_like(self, a: Vector) -> Vector: ...

    def sqrt(self, x: Any) -> Any:
        """Elementwise square root of one array."""
        ...

    def spare_like(self, spare: Vector | None, like: Vector) -> Vector:
        """``spare`` when its arrays fit ``like`` (shape, dtype, not aliased), else new ones."""
        ...

    def copy_into(self, dst: Vector, src: Vector) -> None: ...

    def place(self, params: Sequence[Any], out: Vector, x: Vector, alpha: float,
              d: Vector) -> None:
        """The parameters at x + alpha d: written into ``out``, which they then hold."""
        ...

    def to_numpy(self, a: Vector) -> list[np.ndarray]:
        """Host copies, for ``state_dict``."""
        ...

    def from_numpy(self, arrays: Sequence[Any], like: Vector | None = None) -> Vector:
        """Arrays of this engine (on the device of ``like`` where it matters)."""
        ...

    # ---------------------------------------------------------------- parameters
    def values(self, params: Sequence[Any]) -> Vector: ...

    def assign(self, params: Sequence[Any], values: Vector) -> None:
        """Make ``values`` the parameters' values (without copying where possible)."""
        ...

    def grads(self, params: Sequence[Any]) -> Vector:
        """The parameters' gradients, zeros for a parameter the loss does not reach."""
        ...

    def set_grads(self, params: Sequence[Any], grads: Vector) -> None: ...

    def zero_grad(self, params: Sequence[Any]) -> None: ...

    # ---------------------------------------------------------------- closures
    def evaluate(self, closure: Callable[[], Any], params: Sequence[Any]) -> tuple[Any, float]:
        """Zero the parameters' gradients, run the closure recording a graph and, when its
        value is finite, backward: (the loss object, its value)."""
        ...

    def value(self, closure: Callable[[], Any]) -> float:
        """Run the closure without recording a graph; the loss value."""
        ...

    def loss_object(self, value: float, like: Any = None) -> Any:
        """A loss object holding ``value`` (returned by a step that reused a gradient)."""
        ...

    # ---------------------------------------------------------------- random state
    def rng_snapshot(self) -> Any: ...

    def rng_restore(self, state: Any) -> None: ...

    def rng_same(self, a: Any, b: Any) -> bool:
        """Whether no draw happened between two snapshots."""
        ...


class NumpyEngine:
    """descend's own engine: NumPy arrays and descend tensors."""

    name = "numpy"

    # ---------------------------------------------------------------- vectors
    @staticmethod
    def dot(a: Vector, b: Vector) -> float:
        total = 0  # summed left to right, as sum() would
        for x, y in zip(a, b):
            total += float(np.vdot(x, y))
        return float(total)

    @staticmethod
    def fdot(a: Vector, b: Vector) -> float:
        return math.fsum(float(np.vdot(x, y)) for x, y in zip(a, b))

    @staticmethod
    def clone(a: Vector) -> Vector:
        return [x.copy() for x in a]

    @staticmethod
    def zeros_like(a: Vector) -> Vector:
        return [np.zeros_like(x) for x in a]

    @staticmethod
    def sqrt(x: Any) -> Any:
        return np.sqrt(x)

    @staticmethod
    def spare_like(spare: Vector | None, like: Vector) -> Vector:
        if spare is not None and len(spare) == len(like):
            for s, x in zip(spare, like):
                if s is x or s.shape != x.shape or s.dtype is not x.dtype:
                    break
            else:
                return spare
        return [np.empty_like(x) for x in like]

    @staticmethod
    def place(params: Sequence[Tensor], out: Vector, x: Vector, alpha: float,
              d: Vector) -> None:
        for p, buf, xi, di in zip(params, out, x, d):
            np.multiply(di, alpha, out=buf, casting="same_kind")
            buf += xi
            p.data = buf

    @staticmethod
    def copy_into(dst: Vector, src: Vector) -> None:
        for a, b in zip(dst, src):
            a[...] = b

    @staticmethod
    def to_numpy(a: Vector) -> list[np.ndarray]:
        return [np.array(x, copy=True) for x in a]

    @staticmethod
    def from_numpy(arrays: Sequence[Any], like: Vector | None = None) -> Vector:
        return [np.array(a) for a in arrays]

    # ---------------------------------------------------------------- parameters
    @staticmethod
    def values(params: Sequence[Tensor]) -> Vector:
        return [p.data for p in params]

    @staticmethod
    def assign(params: Sequence[Tensor], values: Vector) -> None:
        for p, x in zip(params, values):
            p.data = x

    @staticmethod
    def grads(params: Sequence[Tensor]) -> Vector:
        return [p.grad if p.grad is not None else np.zeros_like(p.data) for p in params]

    @staticmethod
    def set_grads(params: Sequence[Tensor], grads: Vector) -> None:
        for p, g in zip(params, grads):
            p.grad = g

    @staticmethod
    def zero_grad(params: Sequence[Tensor]) -> None:
        for p in params:
            p.grad = None

    # ---------------------------------------------------------------- closures
    @staticmethod
    def forward(closure: Callable[[], Any]) -> tuple[Any, float]:
        """Run the closure recording a graph: (the loss Tensor, its value), checked."""
        with enable_grad():
            loss = closure()
        if not isinstance(loss, Tensor):
            raise TypeError(f"the closure must return the loss Tensor, got {type(loss).__name__}")
        if loss.size != 1:
            raise GradientError(f"the closure must return a scalar loss, got shape {loss.shape}")
        if not loss.requires_grad:
            raise GradientError(
                "the closure's loss does not depend on the optimizer's parameters "
                "(it does not require grad)"
            )
        return loss, float(loss.data.item())  # (a 0-d array, or one of shape (1,))

    @staticmethod
    def backward(loss: Any) -> None:
        loss.backward()

    @staticmethod
    def evaluate(closure: Callable[[], Any], params: Sequence[Tensor]) -> tuple[Any, float]:
        for p in params:
            p.grad = None
        loss, value = NumpyEngine.forward(closure)
        if math.isfinite(value):
            loss.backward()
        return loss, value

    @staticmethod
    def value(closure: Callable[[], Any]) -> float:
        with no_grad():
            return float(closure().data.item())

    @staticmethod
    def loss_object(value: float, like: Any = None) -> Tensor:
        return Tensor(np.asarray(value))

    # ---------------------------------------------------------------- random state
    @staticmethod
    def rng_snapshot() -> Any:
        return backend.rng_snapshot()

    @staticmethod
    def rng_restore(state: Any) -> None:
        backend.rng_restore(state)

    @staticmethod
    def rng_same(a: Any, b: Any) -> bool:
        if a is None or b is None or len(a) != len(b):
            return False
        return all(ga is gb and sa == sb for (ga, sa), (gb, sb) in zip(a, b))


NUMPY = NumpyEngine()
