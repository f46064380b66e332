"""What direction to move: the negative gradient, heavy-ball or Nesterov momentum, Adam.

A direction is a small object with typed per-parameter state. ``compute(grads)`` returns
the list of directions d (the update is x <- x + alpha d); it may be a non-descent
direction (g . d >= 0), which the optimizer detects before a line search uses it.

Directions are written once for every engine: elementwise arithmetic uses Python operators
(shared by NumPy arrays and torch tensors), and allocation and square roots go through
``self.ops``, the engine the optimizer binds (:mod:`descend.optim.vectors`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .vectors import NUMPY, Engine, Vector


class Direction:
    """Base class: ``compute(grads) -> v`` with the direction d = sign * v;
    ``state_dict``/``load_state_dict``.

    ``sign`` lets the steepest-descent direction hand back the gradients themselves
    (d = -g, sign = -1) instead of negated copies: one pass over memory less per step.
    """

    sign = 1.0
    #: the engine whose arrays the state holds (bound by the optimizer)
    ops: Engine = NUMPY

    def compute(self, grads: Vector) -> Vector:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class Gradient(Direction):
    """d = -g: steepest descent (returned as v = g with sign = -1)."""

    sign = -1.0

    def compute(self, grads: Vector) -> Vector:
        return grads


@dataclass
class MomentumState:
    buffers: Vector = field(default_factory=list)


class Momentum(Direction):
    """Heavy-ball momentum as in PyTorch's SGD: b <- beta b + g; d = -b, or with Nesterov
    d = -(g + beta b) (Sutskever et al., 2013). With beta = 0 this is -g."""

    def __init__(self, beta: float, nesterov: bool = False):
        self.beta = beta
        self.nesterov = nesterov
        self.state = MomentumState()

    def compute(self, grads: Vector) -> Vector:
        bufs = self.state.buffers
        if not bufs:
            bufs.extend(self.ops.clone(grads))
        else:
            for b, g in zip(bufs, grads):
                b *= self.beta
                b += g
        if self.nesterov:
            return [-(g + self.beta * b) for g, b in zip(grads, bufs)]
        return [-b for b in bufs]

    def state_dict(self) -> dict[str, Any]:
        return {"buffers": self.ops.clone(self.state.buffers)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.state.buffers = self.ops.from_numpy(state["buffers"])


@dataclass
class AdamState:
    t: int = 0
    m: Vector = field(default_factory=list)
    v: Vector = field(default_factory=list)


class AdamDirection(Direction):
    """Adam's scaled direction (Kingma & Ba, 2015, Algorithm 1):
    m <- b1 m + (1-b1) g, v <- b2 v + (1-b2) g^2,
    d = -(m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)."""

    def __init__(self, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.b1, self.b2 = betas
        self.eps = eps
        self.state = AdamState()

    def compute(self, grads: Vector) -> Vector:
        s = self.state
        if not s.m:
            s.m = self.ops.zeros_like(grads)
            s.v = self.ops.zeros_like(grads)
        s.t += 1
        c1 = 1 - self.b1**s.t
        c2 = 1 - self.b2**s.t
        out = []
        for m, v, g in zip(s.m, s.v, grads):
            m *= self.b1
            m += (1 - self.b1) * g
            v *= self.b2
            v += (1 - self.b2) * (g * g)
            denom = self.ops.sqrt(v / c2)
            denom += self.eps
            out.append(-(m / c1) / denom)
        return out

    def state_dict(self) -> dict[str, Any]:
        s = self.state
        return {"t": s.t, "m": self.ops.clone(s.m), "v": self.ops.clone(s.v)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.state = AdamState(
            int(state["t"]), self.ops.from_numpy(state["m"]), self.ops.from_numpy(state["v"])
        )
