"""What every step rule shares: the protocol, the context a rule reads, its answer.

A step rule is a small object the optimizer calls once per step with a :class:`StepContext`
(the step count, the loss, the gradient's norm, the slope along the direction and, for line
searches, the restriction ``phi(alpha) = f(x + alpha d)``) and which returns a
:class:`StepChoice`. What it needs from the optimizer (nothing, values of phi, or values and
slopes) is its :class:`Needs`. A rule that is also told a metric once per epoch
(``ReduceOnPlateau``) is a :class:`MetricObserver`; one that reads the step's vectors
(DoG, Prodigy, D-Adaptation: distances from the first point) is a :class:`PointObserver`,
told a :class:`StepPoint` before the direction is computed; one defined over a direction of
its own (Prodigy's and D-Adaptation's Adam moments) is a :class:`DirectionProvider`. A
layer-wise rule (L-DoG) answers one step size per parameter
(``StepChoice.per_parameter``).

The helpers here serve several rule families: :func:`working_precision` (the eps of the
parameters' dtype), :func:`gradient_is_noise` (the gradient test at sqrt(eps), shared by the
rules that normalise the gradient), :func:`flat_start` (no search along a zero slope) and
:class:`StatelessRule` (the state methods of a rule that keeps none).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np

from ...engine.base import Engine, Vector
from ...linesearch import LineSearchStatus

__all__ = [
    "FLOAT64_EPS",
    "ROUNDING_ULPS",
    "DirectionProvider",
    "MetricObserver",
    "Needs",
    "PointObserver",
    "StatelessRule",
    "StepChoice",
    "StepContext",
    "StepPoint",
    "StepRule",
    "flat_start",
    "gradient_is_noise",
    "working_precision",
]

#: machine epsilon of float64, the working precision when nothing else is known
FLOAT64_EPS = float(np.finfo(np.float64).eps)


class Needs(StrEnum):
    """What a step rule needs from the optimizer besides the step's numbers."""

    #: nothing: a schedule or a rule of the gradient's norm; no trial points
    NOTHING = "none"
    #: phi(alpha) at trial points, forward only (backtracking, exact search)
    VALUES = "value"
    #: phi(alpha) and phi'(alpha) at trial points, forward and backward (strong Wolfe)
    SLOPES = "slope"


class StepContext(NamedTuple):
    """What a step rule may know about the step being taken (complete when built).

    Attributes
    ----------
    t : int
        Steps taken before this one (0 for the first).
    loss : float
        f(x) at the start of the step (on the current batch).
    grad_norm : float
        ||g||, the gradient's Euclidean norm (all parameters together).
    direction_norm : float
        ||d||, the norm of the direction the optimizer will move along.
    slope : float
        phi'(0) = g . d, negative for a descent direction.
    phi : callable or None
        ``phi(alpha) -> float``: the loss at x + alpha d on the same batch, forward only
        (given to rules that need ``Needs.VALUES`` or ``Needs.SLOPES``).
    phi_and_slope : callable or None
        ``phi_and_slope(alpha) -> (phi, phi')``: forward and backward at x + alpha d
        (given to rules that need ``Needs.SLOPES``).
    steps_per_epoch : int or None
        Mini-batches per epoch when known (set by ``fit``), else None.
    initial : float or None
        The first trial step the direction suggests to a line search (1 for L-BFGS once it
        holds curvature pairs); None leaves the first trial to the rule's own warm start.
    precision : float
        The machine epsilon of the parameters' dtype (2.2e-16 for float64, 1.2e-7 for
        float32): the working precision, below which no decrease can be resolved.
    same_batch : bool
        The caller said this step's objective is the previous step's (``step(closure,
        same_batch=True)``: full-batch training). False, the default, means a step may
        see a new mini-batch: rules must then be safe on stochastic objectives.
    """

    t: int
    loss: float
    grad_norm: float
    direction_norm: float
    slope: float
    phi: Callable[[float], float] | None = None
    phi_and_slope: Callable[[float], tuple[float, float]] | None = None
    steps_per_epoch: int | None = None
    initial: float | None = None
    precision: float = FLOAT64_EPS
    same_batch: bool = False


@dataclass(slots=True)
class StepChoice:
    """A rule's answer: the step size and what it cost.

    ``value`` is phi(lr) when the rule evaluated it (the accepted point's loss, reused by
    the optimizer rather than recomputed); ``evaluations`` counts calls of phi or
    phi_and_slope; ``gradient_evaluations`` those of phi_and_slope.

    ``per_parameter`` (a layer-wise rule's answer, L-DoG's) holds one step size per
    parameter tensor the rule covers, in order: parameter i moves by
    ``per_parameter[i] * d_i``. ``lr`` is then the size of the whole move relative to the
    direction's, ||x_new - x|| / ||d||, so that ``StepInfo.step_norm`` stays
    ``lr * ||d||``.
    """

    lr: float
    evaluations: int = 0
    gradient_evaluations: int = 0
    status: LineSearchStatus | None = None
    value: float | None = None
    per_parameter: list[float] | None = None


@runtime_checkable
class StepRule(Protocol):
    """The protocol: ``rule(ctx) -> StepChoice`` plus its (JSON-able) state."""

    #: what the rule needs: nothing (a schedule), values (phi) or slopes (phi and phi')
    needs: Needs

    def __call__(self, ctx: StepContext) -> StepChoice: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@runtime_checkable
class MetricObserver(Protocol):
    """A step rule driven by a metric (``ReduceOnPlateau``): besides ``rule(ctx)``, it is
    told a metric once per epoch (lower is better) and returns its next step size.

    ``fit`` and ``train_steps`` call ``observe`` at the end of every epoch with the
    validation loss, or the training loss when there is no validation data; the check
    ``isinstance(rule, MetricObserver)`` is how they find such rules.
    """

    def observe(self, metric: float) -> float: ...


class StepPoint(NamedTuple):
    """The step's vectors, told to a :class:`PointObserver` before the direction is made.

    Attributes
    ----------
    x : list of arrays
        The parameters' values at the start of the step, one array per parameter of the
        rule's parameter group(s), in order.
    g : list of arrays
        The gradient the direction is made from (weight decay included; clipped when the
        optimizer clips), same layout.
    engine : Engine
        The optimizer's engine: reductions (``dot``), copies (``clone``, ``to_state``,
        ``from_state``) of arrays of its kind.

    Read ``x`` and ``g``, never keep them: the optimizer writes the next parameters into
    the buffers ``x`` holds once the step is taken (``engine.clone`` what must outlive the
    step).
    """

    x: Vector
    g: Vector
    engine: Engine


@runtime_checkable
class PointObserver(Protocol):
    """A step rule that reads the step's vectors (DoG, Prodigy, D-Adaptation: how far the
    parameters are from where they started, weighted sums of gradients).

    Besides ``rule(ctx)``, the optimizer calls ``start(point)`` once per step, after the
    loss and gradient are known and before the direction is computed, with the parameters
    and gradients of the parameter groups that use the rule (all of them when every group
    shares it). A rule may so prepare what a direction it provides reads in the same step
    (Prodigy's weights of Adam's moments). Steps that make no update (a loss that is not
    finite) are not told.
    """

    def start(self, point: StepPoint) -> None: ...


@runtime_checkable
class DirectionProvider(Protocol):
    """A step rule defined over a direction of its own: Prodigy's and D-Adaptation's Adam
    moments, weighted by the rule's own estimate of the distance to a solution.

    When the optimizer is built, ``direction_for(direction)`` is given the optimizer's
    direction and returns the one to use: the rule's own, built from what it keeps of the
    given one (Adam's betas and eps), or ``direction`` itself when it is already the
    rule's. A direction the rule cannot stand in for (momentum, L-BFGS) is refused with a
    ``ConfigError`` that names it.
    """

    def direction_for(self, direction: Any) -> Any: ...


#: where no first-order decrease is resolvable, values of f this many times eps |f| apart
#: are taken for rounding (a loss summed over many terms is off by several ulps)
ROUNDING_ULPS = 8.0


def working_precision(values: Any) -> float:
    """The machine epsilon of the coarsest floating dtype among ``values`` (arrays or
    tensors of any engine); float64's when none is a floating array."""
    eps = FLOAT64_EPS
    for x in values:
        eps = max(eps, _eps_of(getattr(x, "dtype", None)))
    return eps


@functools.cache
def _eps_of(dtype: Any) -> float:
    try:
        return float(np.finfo(dtype).eps)
    except (TypeError, ValueError):
        pass
    if getattr(type(dtype), "__module__", "") == "torch":
        import torch  # only reached for torch tensors, so torch is already imported

        if dtype.is_floating_point:
            return float(torch.finfo(dtype).eps)
    return FLOAT64_EPS


def gradient_is_noise(ctx: StepContext) -> bool:
    """Whether the gradient is below working precision: ||g|| <= sqrt(eps) (1 + |f|).

    eps is the working precision (``ctx.precision``). A gradient that small moves a smooth
    f by less than its rounding error over any step the first-order model can be trusted
    with (Gill, Murray & Wright, *Practical Optimization*, §8.2.3, the gradient test at the
    square root of the function precision); at a minimiser such a gradient is the rounding
    noise of the loss (logistic regression at SciPy's optimum: ||g|| of 1e-11 to 1e-10 in
    float64), and its direction means nothing. Rules that would turn it into a step of a
    set size (``ConstantLength``; ``Polyak`` with an estimated f*) take no step there.

    Where f is not known (``step()`` without a closure: ``ctx.loss`` is NaN) the test is
    ||g|| <= sqrt(eps), which holds for no larger gradient than the test with f would.
    """
    scale = 1.0 + abs(ctx.loss) if math.isfinite(ctx.loss) else 1.0
    return ctx.grad_norm <= math.sqrt(ctx.precision) * scale


def flat_start(ctx: StepContext) -> StepChoice | None:
    """A search along a line with slope exactly 0 (a zero gradient): no decrease can be
    found at any precision, and no trial is made (status ``FLAT``, no step)."""
    if ctx.slope == 0:
        return StepChoice(0.0, 0, 0, LineSearchStatus.FLAT, ctx.loss)
    return None


class StatelessRule:
    """The state methods and repr of a rule that keeps no state between steps."""

    needs = Needs.NOTHING

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"
