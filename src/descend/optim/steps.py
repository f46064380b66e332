"""How far to move: step-size rules behind one protocol.

A step rule is a small object the optimizer calls once per step with a :class:`StepContext`
(the step count, the loss, the gradient's norm, the slope along the direction and, for line
searches, the restriction ``phi(alpha) = f(x + alpha d)``) and which returns a
:class:`StepChoice`. A float, or a callable ``t -> float``, is accepted anywhere a rule is
(:func:`as_step_rule`): a constant is a schedule.

Diminishing schedules and convergence. For a convex f with bounded (sub)gradients, gradient
(or subgradient) descent with steps ``alpha_t`` satisfying

    sum_t alpha_t = infinity   and   sum_t alpha_t^2 < infinity

converges to the minimum (Bertsekas, *Nonlinear Programming*, Prop. 1.2.4; Boyd & Mutapcic,
*Subgradient Methods*, §3); "nonsummable diminishing" steps (alpha_t -> 0, sum = infinity)
already give f_best -> f*. Stochastic gradient descent needs the same two conditions
(Robbins & Monro, 1951). Each schedule's docstring states which it satisfies.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np

from ..checks import check_count, check_finite, check_fraction, check_step_size, is_real
from ..errors import ConfigError
from ..linesearch import LineSearchStatus, backtracking, exact, strong_wolfe

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


@dataclass(slots=True)
class StepChoice:
    """A rule's answer: the step size and what it cost.

    ``value`` is phi(lr) when the rule evaluated it (the accepted point's loss, reused by
    the optimizer rather than recomputed); ``evaluations`` counts calls of phi or
    phi_and_slope; ``gradient_evaluations`` those of phi_and_slope.
    """

    lr: float
    evaluations: int = 0
    gradient_evaluations: int = 0
    status: LineSearchStatus | None = None
    value: float | None = None


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


class _Stateless:
    needs = Needs.NOTHING

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


# --------------------------------------------------------------------------- schedules
class Schedule(_Stateless):
    """A step size that depends only on the step count t: ``lr(t)``."""

    def lr(self, t: int) -> float:
        raise NotImplementedError

    def __call__(self, ctx: StepContext) -> StepChoice:
        return StepChoice(self.lr(ctx.t))


class Constant(Schedule):
    """alpha_t = lr. Converges for L-smooth f when lr < 2/L (to a stationary point; to the
    minimum for convex f); with noise or non-smooth f it reaches only a neighbourhood whose
    size is proportional to lr."""

    def __init__(self, lr: float):
        self.value = check_step_size("lr", lr)

    def lr(self, t: int) -> float:
        return self.value


class InverseTime(Schedule):
    """alpha_t = a / (b + t). Square-summable but not summable (sum = inf, sum of squares
    < inf): the classical condition for subgradient and stochastic gradient descent."""

    def __init__(self, a: float, b: float = 1.0):
        self.a = check_step_size("a", a)
        self.b = check_step_size("b", b)

    def lr(self, t: int) -> float:
        return self.a / (self.b + t)


class InverseSqrt(Schedule):
    """alpha_t = a / sqrt(b + t). Nonsummable diminishing (sum = inf, alpha_t -> 0, but the
    squares are not summable): f_best -> f* for convex Lipschitz f at rate O(log t/sqrt t)
    (O(1/sqrt t) with averaging)."""

    def __init__(self, a: float, b: float = 1.0):
        self.a = check_step_size("a", a)
        self.b = check_step_size("b", b)

    def lr(self, t: int) -> float:
        return self.a / math.sqrt(self.b + t)


class ExponentialDecay(Schedule):
    """alpha_t = lr * gamma^t. Summable (sum = lr / (1 - gamma) < inf): it does NOT satisfy
    the diminishing-step conditions; it can stop short of the minimum if lr is small."""

    def __init__(self, lr: float, gamma: float = 0.99):
        self.initial = check_step_size("lr", lr)
        self.gamma = check_fraction("gamma", gamma)

    def lr(self, t: int) -> float:
        return self.initial * self.gamma**t


class StepDecay(Schedule):
    """alpha_t = lr * gamma^floor(t / step_size): piecewise constant, multiplied by gamma
    every ``step_size`` steps. Summable, like ExponentialDecay."""

    def __init__(self, lr: float, step_size: int, gamma: float = 0.1):
        self.initial = check_step_size("lr", lr)
        self.step_size = check_count("step_size", step_size)
        self.gamma = check_fraction("gamma", gamma)

    def lr(self, t: int) -> float:
        return self.initial * self.gamma ** (t // self.step_size)


class Cosine(Schedule):
    """Linear warm-up from lr/warmup to lr over ``warmup`` steps, then
    alpha_t = min_lr + (lr - min_lr) * (1 + cos(pi * s / S)) / 2 over the remaining
    S = total_steps - warmup steps, then min_lr. A finite-horizon schedule (no asymptotic
    guarantee); popular for networks."""

    def __init__(self, lr: float, total_steps: int, warmup: int = 0, min_lr: float = 0.0):
        self.initial = check_step_size("lr", lr)
        total_steps = check_count("total_steps", total_steps)
        if isinstance(warmup, bool) or not isinstance(warmup, int) or not 0 <= warmup < total_steps:
            raise ConfigError(f"warmup must be an int in [0, total_steps), got {warmup!r}")
        self.total_steps = total_steps
        self.warmup = warmup
        self.min_lr = check_step_size("min_lr", min_lr, allow_zero=True)
        if self.min_lr > self.initial:
            raise ConfigError(f"min_lr {min_lr} must not exceed lr {lr}")

    def lr(self, t: int) -> float:
        if t < self.warmup:
            return self.initial * (t + 1) / self.warmup
        s = min(t - self.warmup, self.total_steps - self.warmup)
        cos = (1 + math.cos(math.pi * s / (self.total_steps - self.warmup))) / 2
        return self.min_lr + (self.initial - self.min_lr) * cos


class FunctionSchedule(Schedule):
    """A user's callable ``t -> lr`` used as a schedule (checked at each step)."""

    def __init__(self, fn: Callable[[int], float]):
        self.fn = fn

    def lr(self, t: int) -> float:
        value = self.fn(t)
        return check_step_size(f"lr({t}) returned by the schedule", value, allow_zero=True)


# --------------------------------------------------------------------------- gradient-norm rules
class ConstantLength(_Stateless):
    """alpha_t = gamma / ||d||: every step moves the parameters by exactly gamma (with
    d = -g, gamma / ||g||). For convex Lipschitz f, f_best reaches within G*gamma/2 of f*
    (Boyd & Mutapcic, §3.1); use a diminishing gamma for exact convergence.

    The step's length does not shrink with the gradient, so where the gradient is rounding
    noise (a minimiser of a smooth f reached to working precision) the rule would normalise
    the noise into a step of length gamma in a meaningless direction. There it takes no
    step (lr 0, status ``FLAT``), as ``Polyak(f_star=None)`` does, by the same test:
    ||g|| <= sqrt(eps) (1 + |f|), eps the working precision (:func:`gradient_is_noise`).
    Also no step (``FLAT``) along a zero direction.
    """

    def __init__(self, gamma: float):
        self.gamma = check_step_size("gamma", gamma)

    def __call__(self, ctx: StepContext) -> StepChoice:
        if ctx.direction_norm == 0 or gradient_is_noise(ctx):  # nothing to move along
            return StepChoice(0.0, status=LineSearchStatus.FLAT)
        return StepChoice(self.gamma / ctx.direction_norm)


class Polyak:
    """The Polyak step alpha = min((f - f*) / (c ||g||^2), max_lr) along d = -g.

    With the optimal value f* known and c = 1 this is Polyak's step (Polyak, 1987, §5.3),
    optimal for convex Lipschitz functions; c = 0.5 with a finite ``max_lr`` is the
    stochastic Polyak step SPS_max (Loizou et al., 2021), with f* the minimum of each
    mini-batch's loss (0 for interpolating models).

    The step is the one at which the first-order model f - alpha ||g||^2 along -g reaches
    the target, so it serves the (sub)gradient direction only: ``GD`` without momentum
    and ``Subgradient``. Optimizers refuse it with momentum or Adam (``ConfigError``):
    along Adam's scaled direction, or a momentum direction nearly orthogonal to g, the
    same model, with the slope g . d in place of -||g||^2, asks for unbounded steps (from
    the optimum of logistic regression, Adam's f - f* passes 1e7 within 200 steps). As a
    last guard a direction that is not -g gets no step (status ``NOT_DESCENT``).

    With ``f_star=None`` the target is estimated as f_best - gamma_t with
    gamma_t = gamma / sqrt(t + 1), a nonsummable diminishing offset (Boyd & Mutapcic, §3.2:
    the "estimated optimal value" step), which converges without knowing f* for Lipschitz
    f. Its gap never falls below gamma_t, so where the gradient vanishes (the minimum of a
    smooth f) the step gamma_t / ||g||^2 would be unbounded: there the rule takes no step
    (status ``FLAT``) once ||g|| <= sqrt(eps) (1 + |f|), eps the working precision: a
    gradient that small moves a smooth f by less than its rounding error over any step the
    first-order model can be trusted with (:func:`gradient_is_noise`; Gill, Murray &
    Wright, *Practical Optimization*, §8.2.3). ``ConstantLength`` uses the same test.
    """

    needs = Needs.NOTHING
    #: the step is defined along d = -g only (optimizers check it)
    gradient_direction_only = True

    def __init__(
        self,
        f_star: float | None = 0.0,
        c: float = 1.0,
        max_lr: float = math.inf,
        gamma: float = 1.0,
    ):
        if f_star is not None and (not is_real(f_star) or not math.isfinite(f_star)):
            raise ConfigError(f"f_star must be a finite number or None, got {f_star!r}")
        self.f_star = None if f_star is None else float(f_star)
        self.c = check_step_size("c", c)
        self.max_lr = check_step_size("max_lr", max_lr, allow_inf=True)
        self.gamma = check_step_size("gamma", gamma)
        self.f_best = math.inf

    def target(self, ctx: StepContext) -> float:
        """The value f* the step aims at (known, or f_best minus a shrinking offset)."""
        if self.f_star is not None:
            return self.f_star
        self.f_best = min(self.f_best, ctx.loss)
        return self.f_best - self.gamma / math.sqrt(ctx.t + 1)

    def __call__(self, ctx: StepContext) -> StepChoice:
        gap = ctx.loss - self.target(ctx)
        g2 = ctx.grad_norm**2
        if g2 == 0:
            return StepChoice(0.0, status=LineSearchStatus.FLAT)
        if not (ctx.direction_norm == ctx.grad_norm
                and math.isclose(-ctx.slope, g2, rel_tol=1e-9)):  # d is not -g
            return StepChoice(0.0, status=LineSearchStatus.NOT_DESCENT)
        if gap <= 0:  # at or below the target: nothing to aim at
            return StepChoice(0.0, status=LineSearchStatus.FLAT)
        if self.f_star is None and gradient_is_noise(ctx):
            return StepChoice(0.0, status=LineSearchStatus.FLAT)
        return StepChoice(min(gap / (self.c * g2), self.max_lr))

    def state_dict(self) -> dict[str, Any]:
        return {"f_best": self.f_best}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        f_best = state["f_best"]
        if not (is_real(f_best) and not math.isnan(f_best)) or f_best == -math.inf:
            raise ConfigError(f"Polyak state: f_best must be a number or inf, got {f_best!r}")
        self.f_best = float(f_best)

    def __repr__(self) -> str:
        return f"Polyak(f_star={self.f_star}, c={self.c}, max_lr={self.max_lr})"


# --------------------------------------------------------------------------- line searches
class Armijo:
    """Backtracking line search: the largest alpha in {a0, a0*shrink, a0*shrink^2, ...}
    with phi(alpha) <= phi(0) + c1 * alpha * phi'(0) (Armijo, 1966; Nocedal & Wright §3.1).

    Warm-started: the first trial is the previous accepted step, multiplied by ``grow`` when
    that step was accepted at its first trial (capped at ``max_lr``): after a backtrack the
    search restarts from the step it found, so most steps need one trial and a larger step
    is probed now and then. On mini-batches this is the stochastic line search of Vaswani
    et al. (2019, "Painless Stochastic Gradient"): every trial uses the same batch and
    replays the same dropout masks; with ``grow=None`` the step may grow by 2 per epoch
    (2^(1/steps_per_epoch) per step, their "reset option 2"); on full batches ``grow=None``
    means 2. Trials are evaluated forward only.

    A direction that knows its scale sets the first trial instead (``ctx.initial``: 1 for
    L-BFGS once it holds curvature pairs).

    Convergence: for L-smooth f, every accepted step is >= min(a0, 2 shrink (1-c1)/L), so
    full-batch GD with Armijo converges at the rate of a constant step 1/L without knowing L;
    for convex interpolating models SLS converges at the deterministic rate.
    """

    needs = Needs.VALUES

    def __init__(
        self,
        c1: float = 1e-4,
        shrink: float = 0.5,
        alpha0: float = 1.0,
        grow: float | None = None,
        max_lr: float = 1e6,
        max_evals: int = 30,
        interpolate: bool = False,
    ):
        self.c1 = check_fraction("c1", c1)
        self.shrink = check_fraction("shrink", shrink)
        self.alpha0 = check_step_size("alpha0", alpha0)
        self.grow = None if grow is None else check_step_size("grow", grow)
        if self.grow is not None and self.grow < 1:
            raise ConfigError(f"grow must be >= 1, got {grow!r}")
        self.max_lr = check_step_size("max_lr", max_lr, allow_inf=True)
        self.max_evals = check_count("max_evals", max_evals)
        self.interpolate = bool(interpolate)
        self.previous: float | None = None
        self.first_accepted = True  # was the previous step accepted at its first trial?

    def _growth(self, ctx: StepContext) -> float:
        if self.grow is not None:
            return self.grow
        if ctx.steps_per_epoch:
            return 2.0 ** (1.0 / ctx.steps_per_epoch)
        return 2.0

    def __call__(self, ctx: StepContext) -> StepChoice:
        assert ctx.phi is not None
        flat = flat_start(ctx)
        if flat is not None:
            return flat
        if ctx.initial is not None:  # the direction knows its scale (quasi-Newton)
            start = ctx.initial
        elif self.previous is None:
            start = self.alpha0
        elif self.first_accepted:
            start = self.previous * self._growth(ctx)
        else:
            start = self.previous
        start = min(start, self.max_lr)
        res = backtracking(
            ctx.phi,
            ctx.loss,
            ctx.slope,
            alpha0=start,
            c1=self.c1,
            shrink=self.shrink,
            max_evals=self.max_evals,
            interpolate=self.interpolate,
            # phi's values are Python floats: in float64 their own resolution is the test
            precision=ctx.precision if ctx.precision > FLOAT64_EPS else None,
        )
        if res.alpha > 0:
            self.previous = res.alpha
            self.first_accepted = res.alpha == start
        else:  # no acceptable step: start the next search from scratch
            self.previous = None
            self.first_accepted = True
        return StepChoice(res.alpha, res.evaluations, 0, res.status, res.value)

    def state_dict(self) -> dict[str, Any]:
        return {"previous": self.previous, "first_accepted": self.first_accepted}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        prev = state.get("previous")
        self.previous = None if prev is None else check_step_size("Armijo state: previous", prev)
        self.first_accepted = bool(state.get("first_accepted", True))

    def __repr__(self) -> str:
        return f"Armijo(c1={self.c1}, shrink={self.shrink}, alpha0={self.alpha0}, grow={self.grow})"


class StrongWolfe:
    """Strong-Wolfe line search (Nocedal & Wright, Algorithms 3.5-3.6): alpha with
    phi(alpha) <= phi(0) + c1 alpha phi'(0) and |phi'(alpha)| <= c2 |phi'(0)|.

    Each trial costs a forward and a backward pass. The first trial is 1.0 at the first step
    and then the previous step's alpha scaled by the ratio of slopes (N&W eq. 3.60 style,
    capped to grow at most 10x). When the accepted point was the last one evaluated, its
    gradient is kept for the next step if the same batch follows (full-batch training).

    A direction that knows its scale sets the first trial instead (``ctx.initial``: 1 for
    L-BFGS, N&W §3.5).
    """

    needs = Needs.SLOPES

    def __init__(
        self, c1: float = 1e-4, c2: float = 0.9, alpha0: float = 1.0, max_evals: int = 30
    ):
        self.c1 = check_fraction("c1", c1)
        self.c2 = check_fraction("c2", c2)
        if not self.c1 < self.c2:
            raise ConfigError(f"strong Wolfe needs 0 < c1 < c2 < 1, got c1={c1}, c2={c2}")
        self.alpha0 = check_step_size("alpha0", alpha0)
        self.max_evals = check_count("max_evals", max_evals)
        self.previous: tuple[float, float] | None = None  # (alpha, slope0) of the last step

    def __call__(self, ctx: StepContext) -> StepChoice:
        assert ctx.phi_and_slope is not None
        flat = flat_start(ctx)
        if flat is not None:
            return flat
        start = self.alpha0
        if ctx.initial is not None:  # the direction knows its scale (quasi-Newton)
            start = ctx.initial
        elif self.previous is not None:
            alpha, slope = self.previous
            start = min(alpha * slope / ctx.slope, 10 * alpha) if ctx.slope != 0 else alpha
            start = max(start, 1e-10)
        res = strong_wolfe(
            ctx.phi_and_slope,
            ctx.loss,
            ctx.slope,
            alpha0=start,
            c1=self.c1,
            c2=self.c2,
            max_evals=self.max_evals,
        )
        self.previous = (res.alpha, ctx.slope) if res.alpha > 0 else None
        return StepChoice(res.alpha, res.evaluations, res.evaluations, res.status, res.value)

    def state_dict(self) -> dict[str, Any]:
        return {"previous": None if self.previous is None else list(self.previous)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        prev = state.get("previous")
        if prev is not None and (not isinstance(prev, list | tuple) or len(prev) != 2):
            raise ConfigError(f"StrongWolfe state: previous must be a pair, got {prev!r}")
        self.previous = None if prev is None else (
            check_step_size("StrongWolfe state: previous step", prev[0]),
            check_finite("StrongWolfe state: previous slope", prev[1]))

    def __repr__(self) -> str:
        return f"StrongWolfe(c1={self.c1}, c2={self.c2})"


class Exact(_Stateless):
    """Exact line search: alpha = argmin_{alpha >= 0} phi(alpha).

    With ``quadratic=True`` the objective is taken to be quadratic, so one evaluation gives
    the curvature: phi(a) = phi0 + s a + (k/2) a^2 with k = 2 (phi(1) - phi0 - s), and
    alpha = -s / k (exact for least squares); where phi(1) is not finite the model is fitted
    through phi(1/2), phi(1/4), ... instead. Otherwise bracketing and Brent's method.
    For strongly convex quadratics, steepest descent with exact steps converges linearly
    with ratio ((kappa - 1)/(kappa + 1))^2 (N&W Theorem 3.3).

    On flat ground: at a zero slope no trial is made (status ``FLAT``). The bracketing
    does not shrink below alpha = eps |f| / |phi'(0)|, where the first-order decrease is
    under the rounding error of f (eps the working precision); when that bound exceeds 1
    (no decrease resolvable over the first interval), values within 8 eps |f| count as
    equal; two equal values stop the search (``FLAT``): at a minimiser it costs two
    trials.
    """

    needs = Needs.VALUES

    def __init__(self, quadratic: bool = False, tol: float = 1e-8, max_evals: int = 100):
        if not isinstance(quadratic, bool | np.bool_):
            raise TypeError(f"quadratic must be True or False, got {quadratic!r}")
        self.quadratic = bool(quadratic)
        self.tol = check_step_size("tol", tol)
        self.max_evals = check_count("max_evals", max_evals)

    def __call__(self, ctx: StepContext) -> StepChoice:
        assert ctx.phi is not None
        flat = flat_start(ctx)
        if flat is not None:
            return flat
        if self.quadratic:
            value1 = ctx.phi(1.0)
            curvature = 2.0 * (value1 - ctx.loss - ctx.slope)
            probe, evaluations = 1.0, 1
            while not math.isfinite(value1) and evaluations < self.max_evals:
                # beyond where f is defined: fit the model through a nearer point instead
                probe *= 0.5
                value1 = ctx.phi(probe)
                evaluations += 1
                curvature = 2.0 * (value1 - ctx.loss - ctx.slope * probe) / (probe * probe)
            if not math.isfinite(value1):
                return StepChoice(0.0, evaluations, 0, LineSearchStatus.NON_FINITE, ctx.loss)
            if not math.isfinite(curvature) or curvature <= 0:
                return StepChoice(0.0, evaluations, 0, LineSearchStatus.NOT_DESCENT, ctx.loss)
            alpha = -ctx.slope / curvature
            value = ctx.loss + ctx.slope * alpha + 0.5 * curvature * alpha**2
            return StepChoice(alpha, evaluations, 0, LineSearchStatus.CONVERGED, value)
        # Below alpha = eps |f| / |phi'(0)| the first-order decrease is under the rounding
        # error eps |f| of f: no trial there can show a decrease. When that holds for the
        # whole first interval [0, 1], differences of f below eps |f| are rounding too.
        resolution = ctx.precision * abs(ctx.loss)
        min_step = resolution / abs(ctx.slope)
        if not math.isfinite(min_step):
            min_step = 0.0
        # a sum of many terms rounds by several units in the last place
        noise = ROUNDING_ULPS * resolution if min_step >= 1.0 else 0.0
        res = exact(ctx.phi, tol=self.tol, max_evals=self.max_evals, min_step=min_step,
                    resolution=noise)
        return StepChoice(res.alpha, res.evaluations, 0, res.status, res.value)


def _plateau(*args: Any) -> Any:
    from .plateau import ReduceOnPlateau  # plateau.py builds on this module

    return ReduceOnPlateau(*args)


# --------------------------------------------------------------------------- coercion
def as_step_rule(lr: Any) -> Any:
    """A float -> Constant, a callable t -> float -> FunctionSchedule, a rule -> itself."""
    if isinstance(lr, StepRule) and not isinstance(lr, type):
        return lr
    if isinstance(lr, bool | np.bool_):
        raise ConfigError(f"lr must be a number, a schedule or a step rule, got {lr!r}")
    if is_real(lr):
        return Constant(float(lr))
    if callable(lr) and not isinstance(lr, type):
        return FunctionSchedule(lr)
    raise ConfigError(f"lr must be a number, a schedule or a step rule, got {lr!r}")


def parse_step_rule(spec: str) -> Any:
    """Build a rule from a short string (command line and config files only).

    ``0.1``, ``constant:0.1``, ``invtime:a[:b]``, ``invsqrt:a[:b]``, ``exp:lr:gamma``,
    ``step:lr:every:gamma``, ``cosine:lr:total[:warmup[:min_lr]]``, ``armijo[:c1[:shrink]]``,
    ``sls`` (Armijo with c1 = 0.1, shrink = 0.5), ``wolfe[:c1[:c2]]``, ``exact``,
    ``exact-quadratic``, ``polyak[:f_star]``, ``polyak-est[:gamma]``, ``sps[:max_lr]``,
    ``length:gamma``, ``plateau:lr[:factor[:patience[:threshold]]]``.
    """
    if not isinstance(spec, str):
        raise TypeError(f"spec must be a step rule string, got {spec!r}")
    text = spec.strip().lower()
    if not text:
        raise ConfigError(
            f"empty step rule {spec!r}: give a number (0.1) or a rule name (armijo, ...)"
        )
    name, _, rest = text.partition(":")
    args = [a for a in rest.split(":") if a] if rest else []
    def whole(value: float) -> int:
        if not float(value).is_integer():
            raise ConfigError(f"step rule {spec!r}: {value:g} must be a whole number")
        return int(value)

    try:
        nums = [float(a) for a in args]
    except ValueError:
        raise ConfigError(f"step rule {spec!r}: the arguments after ':' must be numbers") from None
    try:
        if not args:
            try:
                value = float(name)
            except ValueError:
                pass
            else:
                return Constant(value)
        builders: dict[str, tuple[Callable[[], Any], int, int]] = {
            # name: (factory, fewest arguments, most arguments)
            "constant": (lambda: Constant(*nums), 1, 1),
            "invtime": (lambda: InverseTime(*nums), 1, 2),
            "invsqrt": (lambda: InverseSqrt(*nums), 1, 2),
            "exp": (lambda: ExponentialDecay(*nums), 1, 2),
            "step": (lambda: StepDecay(nums[0], whole(nums[1]), *nums[2:]), 2, 3),
            "cosine": (lambda: Cosine(nums[0], whole(nums[1]), *(whole(n) for n in nums[2:3]),
                                      *nums[3:]), 2, 4),
            "armijo": (lambda: Armijo(*nums), 0, 3),
            "sls": (lambda: Armijo(*nums) if nums else Armijo(c1=0.1, shrink=0.5), 0, 3),
            "wolfe": (lambda: StrongWolfe(*nums), 0, 2),
            "exact": (lambda: Exact(), 0, 0),
            "exact-quadratic": (lambda: Exact(quadratic=True), 0, 0),
            "polyak": (lambda: Polyak(*nums), 0, 3),
            "polyak-est": (lambda: Polyak(f_star=None, gamma=nums[0] if nums else 1.0), 0, 1),
            "sps": (lambda: Polyak(0.0, 0.5, nums[0] if nums else 1.0), 0, 1),
            "length": (lambda: ConstantLength(*nums), 1, 1),
            "plateau": (lambda: _plateau(nums[0], *nums[1:2], *(whole(n) for n in nums[2:3]),
                                         *nums[3:]), 1, 4),
        }
        if name not in builders:
            known = ", ".join(sorted(builders))
            raise ConfigError(f"unknown step rule {name!r} in {spec!r}; known: {known}")
        factory, fewest, most = builders[name]
        if not fewest <= len(nums) <= most:
            raise ConfigError(
                f"step rule {spec!r}: {name} takes {fewest} to {most} numbers after ':', "
                f"got {len(nums)}"
            )
        return factory()
    except (TypeError, IndexError):
        raise ConfigError(f"step rule {spec!r} has the wrong number of arguments") from None
