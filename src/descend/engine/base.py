"""The engine protocol: the few operations one optimizer step makes on arrays and parameters.

A *vector* here is a list of arrays, one per parameter. Directions, step rules, the
restriction of the loss to a line and the optimizer are written once against
:class:`Engine`; :class:`~descend.engine.numpy.NumpyEngine` serves descend's own tensors,
:class:`~descend.engine.captured.CaptureEngine` replays recorded programs over them, and
``descend.torch`` supplies the same operations over torch tensors, so no step rule or
direction exists twice.

Elementwise arithmetic (``b *= beta``, ``m + g``) is written with Python operators, which
NumPy arrays and torch tensors share; only reductions, allocation, the parameter update
written into a spare buffer, and what touches parameters, gradients, closures and random
state go through the engine.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

Vector = list[Any]


@runtime_checkable
class Engine(Protocol):
    """What an optimizer step needs from an array library and its autodiff.

    Engines subclass it to share :meth:`evaluate`, written here once.
    """

    #: the engine's name, for messages
    name: str
    #: the kind of arrays its vectors hold ("numpy", "torch"): engines over the same kind
    #: may replace one another in an optimizer (``Optimizer.use_engine``)
    arrays: str

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

    def shift(self, params: Sequence[Any], alpha: float, d: Vector) -> None:
        """The parameters moved in place, x_i <- x_i + alpha d_i, with no spare copy (the
        optimizers' lean mode; x + alpha d - alpha d is x only to rounding)."""
        ...

    def to_state(self, a: Vector) -> list[Any]:
        """Copies for a ``state_dict``, detached from the parameters: NumPy arrays for the
        NumPy engines, tensors on their devices for torch (as torch's own state dicts)."""
        ...

    def from_state(self, arrays: Sequence[Any], like: Vector | None = None) -> Vector:
        """Arrays of this engine from saved state (on the device of ``like`` where it
        matters)."""
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
    def forward(self, closure: Callable[[], Any]) -> tuple[Any, float]:
        """Run the closure recording a graph: (the loss object, its value), checked."""
        ...

    def backward(self, loss: Any) -> None:
        """Backpropagate from a loss :meth:`forward` returned."""
        ...

    def evaluate(self, closure: Callable[[], Any], params: Sequence[Any]) -> tuple[Any, float]:
        """Zero the parameters' gradients, run the closure recording a graph and, when its
        value is finite, backward: (the loss object, its value)."""
        self.zero_grad(params)
        loss, value = self.forward(closure)
        if math.isfinite(value):
            self.backward(loss)
        return loss, value

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
