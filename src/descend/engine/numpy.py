"""descend's own engine: NumPy arrays and descend's tensors (the default of every optimizer)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import backend
from ..autodiff.graph import enable_grad, no_grad
from ..autodiff.tensor import Tensor
from ..errors import GradientError
from .base import Engine, Vector


class NumpyEngine(Engine):
    """The :class:`~descend.engine.base.Engine` protocol over NumPy arrays and descend's
    tensors: eager steps, a graph built and walked at every evaluation."""

    name = "numpy"
    arrays = "numpy"

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
    def shift(params: Sequence[Tensor], alpha: float, d: Vector) -> None:
        for p, di in zip(params, d):
            p.data += alpha * di

    @staticmethod
    def copy_into(dst: Vector, src: Vector) -> None:
        for a, b in zip(dst, src):
            a[...] = b

    @staticmethod
    def to_state(a: Vector) -> list[np.ndarray]:
        return [np.array(x, copy=True) for x in a]

    @staticmethod
    def from_state(arrays: Sequence[Any], like: Vector | None = None) -> Vector:
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

    rng_same = staticmethod(backend.rng_same)


#: the engine of directions not bound to an optimizer (used on their own, as in tests)
NUMPY = NumpyEngine()
