"""What direction to move: the negative gradient, heavy-ball or Nesterov momentum, Adam.

A direction is a small object with typed per-parameter state. ``compute(grads)`` returns
the list of directions d (the update is x <- x + alpha d); it may be a non-descent
direction (g . d >= 0), which the optimizer detects before a line search uses it.

Directions that learn from the steps taken (L-BFGS and nonlinear conjugate gradients, in
:mod:`descend.optim.quasi_newton`) set ``learns = True``; the optimizer then tells them,
once per step, what their last direction led to (:meth:`Direction.learn`, a
:class:`Feedback`). For the others nothing is kept and nothing is called.

Directions are written once for every engine: elementwise arithmetic uses Python operators
(shared by NumPy arrays and torch tensors), and allocation and square roots go through
``self.engine``, the engine the optimizer binds (:mod:`descend.engine`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

from ..checks import check_number, check_step_size
from ..engine.base import Engine, Vector
from ..engine.numpy import NUMPY
from ..errors import ConfigError


class Feedback(NamedTuple):
    """What the last direction a learning direction proposed led to.

    Attributes
    ----------
    s : list of arrays, or None
        The accepted step s_k = x_{k+1} - x_k (all parameter groups together); None when
        the step rule took no step (alpha = 0: a line search found no acceptable point).
    y : list of arrays, or None
        The change of gradient y_k = g_{k+1} - g_k (weight decay included, on the batches
        the two gradients were computed on); None with ``s``.
    """

    s: Vector | None
    y: Vector | None


class DirectionStatus(StrEnum):
    """What a learning direction did in a step (``opt.last.direction``)."""

    #: L-BFGS: the curvature pair (s, y) of the previous step was stored
    STORED = "stored"
    #: L-BFGS: the pair was skipped, s'y <= eps ||s|| ||y|| (no positive curvature along s,
    #: e.g. under a schedule or Armijo, which do not enforce the curvature condition)
    SKIPPED = "skipped"
    #: memory cleared and the step taken along -g: the direction was not a descent
    #: direction (or was not finite), or the step rule took no step along it
    RESET = "reset"
    #: CG: the periodic restart d = -g, every n steps (n = number of variables)
    RESTART = "restart"
    #: CG: restart on loss of conjugacy, Powell's test |g_k'g_{k-1}| >= 0.2 ||g_k||^2
    POWELL = "powell"


class Direction:
    """Base class: ``compute(grads) -> v`` with the direction d = sign * v;
    ``state_dict``/``load_state_dict``.

    ``sign`` lets the steepest-descent direction hand back the gradients themselves
    (d = -g, sign = -1) instead of negated copies: one pass over memory less per step.

    Learning directions (``learns = True``) also implement :meth:`learn`, and may set
    ``status`` (a :class:`DirectionStatus`, reported in ``opt.last.direction``) and
    ``initial`` (the first trial step they suggest to a line search, e.g. 1 for a
    quasi-Newton direction; None leaves the choice to the rule) in ``compute``.
    """

    sign = 1.0
    #: the engine whose arrays the state holds: the optimizer's, bound when the direction is
    #: given to one (the NumPy engine for a direction used on its own)
    engine: Engine = NUMPY
    #: whether the optimizer gives this direction :class:`Feedback` (False: no cost at all)
    learns = False
    #: what the direction did in the last step (learning directions only)
    status: DirectionStatus | None = None
    #: the first trial step suggested to a line search for the last direction computed
    initial: float | None = None

    def compute(self, grads: Vector) -> Vector:
        raise NotImplementedError

    def learn(self, feedback: Feedback) -> None:
        """What the last direction computed led to (called only when ``learns``).

        The optimizer calls it once per step: at the start of step k+1, before
        ``compute``, with (s_k, y_k) when step k moved; at the end of step k with
        ``Feedback(None, None)`` when the rule took no step. A direction computed but
        never followed by ``learn`` (the step was undone, or its loss was not finite) is
        to be forgotten: the next ``compute`` starts from the state before it.
        """

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
            bufs.extend(self.engine.clone(grads))
        else:
            for b, g in zip(bufs, grads):
                b *= self.beta
                b += g
        if self.nesterov:
            return [-(g + self.beta * b) for g, b in zip(grads, bufs)]
        return [-b for b in bufs]

    def state_dict(self) -> dict[str, Any]:
        return {"buffers": self.engine.clone(self.state.buffers)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.state.buffers = self.engine.from_state(state["buffers"])


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
        if not isinstance(betas, tuple | list) or len(betas) != 2:
            raise ConfigError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        self.b1 = check_number("betas[0]", betas[0], 0.0, 1.0)
        self.b2 = check_number("betas[1]", betas[1], 0.0, 1.0)
        self.eps = check_step_size("eps", eps)
        self.state = AdamState()

    def compute(self, grads: Vector) -> Vector:
        s = self.state
        if not s.m:
            s.m = self.engine.zeros_like(grads)
            s.v = self.engine.zeros_like(grads)
        s.t += 1
        c1 = 1 - self.b1**s.t
        c2 = 1 - self.b2**s.t
        out = []
        for m, v, g in zip(s.m, s.v, grads):
            m *= self.b1
            m += (1 - self.b1) * g
            v *= self.b2
            v += (1 - self.b2) * (g * g)
            denom = self.engine.sqrt(v / c2)
            denom += self.eps
            out.append(-(m / c1) / denom)
        return out

    def state_dict(self) -> dict[str, Any]:
        s = self.state
        return {"t": s.t, "m": self.engine.clone(s.m), "v": self.engine.clone(s.v)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.state = AdamState(
            int(state["t"]), self.engine.from_state(state["m"]), self.engine.from_state(state["v"])
        )


class Rescale(NamedTuple):
    """The factors a step rule sets on a :class:`RescaledAdam` direction for its next
    ``compute``: on the old first moment, on the old second moment, and on eps."""

    m: float = 1.0
    v: float = 1.0
    eps: float = 1.0


class RescaledAdam(Direction):
    """Adam's moments in units that a step rule changes from step to step: the direction of
    Prodigy and D-Adaptation's Adam variant (:mod:`descend.optim.rules.distance`).

    m <- b1 rho_m m + (1 - b1) g,   v <- b2 rho_v v + (1 - b2) g^2,
    d = -m / (sqrt(v) + c eps),

    with no bias correction. (rho_m, rho_v, c) are set by the step rule driving the
    direction before each ``compute`` (:meth:`rescale`) and return to 1 after it; left at 1
    this is Adam's direction without bias correction.

    Why: those methods accumulate gradients weighted by a step size lambda_k that grows,
    m_k = b1 m_{k-1} + (1 - b1) lambda_k g_k, and step by m_k / (sqrt(v_k) + eps). Kept
    divided by the current weight, m~_k = m_k / lambda_k, the same recursion reads
    m~_k = b1 (lambda_{k-1} / lambda_k) m~_{k-1} + (1 - b1) g_k: the step size lambda_k
    leaves the moments and becomes the step rule's alpha, and the direction keeps only
    the ratio rho_m = lambda_{k-1} / lambda_k (Prodigy weighs v by lambda_k^2, so there
    rho_v = rho_m^2; D-Adaptation leaves v unweighted, rho_v = 1).
    """

    def __init__(self, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        if not isinstance(betas, tuple | list) or len(betas) != 2:
            raise ConfigError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        self.b1 = check_number("betas[0]", betas[0], 0.0, 1.0)
        self.b2 = check_number("betas[1]", betas[1], 0.0, 1.0)
        self.eps = check_step_size("eps", eps)
        self.state = AdamState()
        self._rescale = Rescale()

    @property
    def second_moment(self) -> Vector:
        """v as it stands (before the coming ``compute``; empty before the first)."""
        return self.state.v

    def rescale(self, factors: Rescale) -> None:
        """Set (rho_m, rho_v, c) for the next ``compute`` only."""
        self._rescale = factors

    def compute(self, grads: Vector) -> Vector:
        s = self.state
        if not s.m:
            s.m = self.engine.zeros_like(grads)
            s.v = self.engine.zeros_like(grads)
        s.t += 1
        f, self._rescale = self._rescale, Rescale()
        b1, b2, eps = self.b1 * f.m, self.b2 * f.v, self.eps * f.eps
        out = []
        for m, v, g in zip(s.m, s.v, grads):
            m *= b1
            m += (1 - self.b1) * g
            v *= b2
            v += (1 - self.b2) * (g * g)
            denom = self.engine.sqrt(v)
            denom += eps
            out.append(-(m / denom))
        return out

    def state_dict(self) -> dict[str, Any]:
        s = self.state
        return {"t": s.t, "m": self.engine.clone(s.m), "v": self.engine.clone(s.v)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.state = AdamState(
            int(state["t"]), self.engine.from_state(state["m"]), self.engine.from_state(state["v"])
        )
        self._rescale = Rescale()
