"""Line searches: the step chosen by trials along the line, phi(alpha) = f(x + alpha d).

Each rule here adapts a pure search of :mod:`descend.linesearch` to the step pipeline: it
reads the restriction from the :class:`~descend.optim.rules.base.StepContext` (``phi`` for
``Needs.VALUES``, ``phi_and_slope`` for ``Needs.SLOPES``), picks the first trial (a warm
start, or the direction's own scale), and returns the accepted step with its cost.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...checks import check_count, check_finite, check_fraction, check_step_size
from ...engine.base import Engine, Vector
from ...errors import ConfigError
from ...linesearch import LineSearchStatus, backtracking, exact, strong_wolfe
from ...linesearch.smoothed import smoothed_backtracking
from ..directions import AdamDirection, Direction, Gradient, Momentum
from .base import (
    FLOAT64_EPS,
    ROUNDING_ULPS,
    Needs,
    StatelessRule,
    StepChoice,
    StepContext,
    flat_start,
)

__all__ = ["STOCHASTIC_WINDOW", "Armijo", "CheckedDirection", "Exact", "SmoothedArmijo",
           "StrongWolfe"]

#: Steps over which Armijo's trial step may double on mini-batches when the epoch's length
#: is unknown (see :class:`Armijo`): the window W of its growth 2^(1/W) per step.
STOCHASTIC_WINDOW = 50


class Armijo:
    """Backtracking line search: the largest alpha in {a0, a0*shrink, a0*shrink^2, ...}
    with phi(alpha) <= phi(0) + c1 * alpha * phi'(0) (Armijo, 1966; Nocedal & Wright §3.1).

    Warm-started: the first trial is the previous accepted step, multiplied by ``grow`` when
    that step was accepted at its first trial (capped at ``max_lr``): after a backtrack the
    search restarts from the step it found, so most steps need one trial and a larger step
    is probed now and then. On mini-batches this is the stochastic line search of Vaswani
    et al. (2019, "Painless Stochastic Gradient"): every trial uses the same batch and
    replays the same dropout masks. Trials are evaluated forward only.

    ``grow=None`` chooses the growth from what the optimizer knows:

    - the epoch has n steps (``steps_per_epoch``, which ``fit`` sets): 2^(1/n) per step,
      so the step may grow by 2 per epoch (SLS's "reset option 2");
    - full batch (``step(closure, same_batch=True)``): 2;
    - neither (a plain mini-batch loop): 2^(1/W) with W = :data:`STOCHASTIC_WINDOW` (50).

    Why not 2 on mini-batches: let A_t be the largest step the batch of step t accepts. A
    trial grows only from an accepted step, so alpha_t <= min(gamma alpha_{t-1}, A_t) and,
    by induction, alpha_t <= gamma^k A_{t-k} for every k: the step exceeds what the batch k
    steps back accepted by at most gamma^k. With gamma = 2 that bounds nothing beyond the
    current batch: the step follows each batch's own largest Armijo step, and where
    batches accept any step (a batch the model already classifies correctly: the
    cross-entropy keeps falling along -g) it doubles at every step, 2^T over T steps, fit
    to no data, until a batch that does not accept it pays in backtracks. With gamma =
    2^(1/W) the step is at most twice the smallest step the last W batches accepted, and
    grows at most 2^(T/W) over T steps (SLS's guarantee with W in place of the epoch).
    The cost stays small: log alpha rises by log gamma per step accepted at once and falls
    by at least log 2 per backtrack, so about one step in W backtracks. W = 50 is a window
    shorter than most epochs of a plain loop (MNIST or CIFAR at batch 128: 400-470 steps)
    yet long enough that a run of separable batches cannot run away (a tiny logistic
    regression on batches of 8 ends at a loss of 0.15-0.46 against 0.85-20 with doubling:
    ``tests/optim/test_plain_loop.py``).

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
        if ctx.same_batch:
            return 2.0
        return 2.0 ** (1.0 / STOCHASTIC_WINDOW)

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


class SmoothedArmijo:
    """SaLSA's search (Kenneweg et al., 2024, "Faster Convergence for Transformer
    Fine-tuning with Line Search Methods"): Armijo's test on averages, made every few
    steps, the step carried between checks. Made for Adam's direction: ``Adam(params,
    lr=SmoothedArmijo(adaptive=True, warmup=9))`` is the authors' SaLSA.

    A check backtracks (alpha <- ``shrink`` alpha) from ``grow`` times the carried step
    until the smoothed Armijo condition holds,

        beta D + (1 - beta) (f(x) - f(x + alpha d))  >=  c1 alpha (-s_bar),
        s_bar <- beta s_bar + (1 - beta) g.d,

    where D, the average of the decreases accepted so far, takes the new decrease once the
    step is accepted (:func:`descend.linesearch.smoothed.smoothed_backtracking`). Averaged,
    the test asks of the mean decrease what Armijo asks of one: a mini-batch that happens
    to rise or to fall steeply along d moves the step little. The accepted step is carried:
    a step between checks moves by ``grow`` times it, with no trial.

    Along what: a check searches along the preconditioned gradient, d = -P g (Adam's
    P = 1 / (sqrt(v_hat) + eps), the momentum left out; P = I under GD), whose slope
    -g'P g is negative on every batch; the steps between checks follow the optimizer's
    direction (Adam's -P m_hat, or momentum). This is SaLSA's default (``use_mv=False``).
    With ``along_momentum=True`` checks search along the optimizer's direction itself
    (SaLSA's ``use_mv=True``), which need not descend on the batch (no fallback to -g is
    made: the smoothed test still passes a small step after past decreases). On the BN
    CNN of docs/pytorch.md its momentum-damped slope lets ten times larger steps pass, and
    runs fail (the authors' code as well: 29-99% validation accuracy).

    How often: every step for the first ``warmup`` steps (100: 1 / (1 - 0.99), the horizon
    of SaLSA's slow average of the step, over which SaLSA's own schedule checks about every
    step), then every ``every`` steps (10). A step between checks costs what Adam's does
    (one forward and backward pass); a check adds its trials: at a steady step about 1.43
    forward passes (it starts from 1.1 times the carried step and backtracks by 0.8, so
    log 1.1 / log 1.25 = 0.43 backtracks per check), 0.14 per step at every = 10.
    ``adaptive=True`` is SaLSA's schedule instead: checks after min(``every``,
    1 / (r - 1)) steps, r >= 1 the ratio of a fast (factor 0.9) and a slow (0.99)
    exponential average of the carried step (both started at 1e-8), the larger over the
    smaller. It checks more often while the step moves, but the carried step itself moves
    by x1.1 or x0.88 at every check, so the two averages differ by 10-20% on a steady
    step too, and checks keep coming every 3-7 steps (0.3-0.4 extra forward passes per
    step on docs/pytorch.md's CNN, bench/salsa_cost.py).

    Where no check is possible (a loss of exactly 0, or an averaged slope below 1e-8) the
    step is taken as between checks. A check whose trials all fail (``max_evals``) takes no
    step and carries the last trial times ``shrink``.

    Differences from the authors' ``SaLSA`` (package ``salsa-optimizer``), each deliberate:
    the schedule (above; ``SmoothedArmijo(adaptive=True, warmup=9)`` is SaLSA's); the
    averages are float64 (SaLSA's are float32 tensors); a failed check takes no step (SaLSA
    keeps its last trial point); Adam's moments are bias-corrected by 1 - beta^t after t
    updates (SaLSA divides by 1 - beta^(t+1)). ``tests/torch_bridge/test_salsa.py`` runs
    both on a float64 model: the same trajectory to 1e-10.

    Parameters
    ----------
    c1 : float in (0, 1)
        The sufficient-decrease constant (SaLSA's c = 0.5).
    shrink : float in (0, 1)
        Backtracking factor (0.8).
    grow : float >= 1
        The carried step's growth at each step (1.1).
    every : int >= 1
        Steps between checks after the warm-up (10; with ``adaptive``, the most).
    beta : float in (0, 1)
        The factor of the averages of decreases and slopes (SaLSA's beta_3 = 0.9).
    alpha0 : float > 0
        The carried step before the first check (1.0: the first check backtracks from 1.1).
    warmup : int >= 0
        Steps checked every step at the start (100; SaLSA's schedule has 9).
    max_evals : int >= 1
        Most trials of a check (100, SaLSA's).
    along_momentum : bool
        Checks search along the optimizer's direction rather than the preconditioned
        gradient (see above).
    adaptive : bool
        SaLSA's schedule of checks (see above).
    """

    needs = Needs.VALUES
    #: searches along the direction it is given, descent or not (no fallback to -g)
    keeps_direction = True
    #: no check is possible below this averaged slope (SaLSA's threshold)
    TINY_SLOPE = 1e-8

    def __init__(self, c1: float = 0.5, shrink: float = 0.8, grow: float = 1.1,
                 every: int = 10, *, beta: float = 0.9, alpha0: float = 1.0,
                 warmup: int = 100, max_evals: int = 100, along_momentum: bool = False,
                 adaptive: bool = False):
        self.c1 = check_fraction("c1", c1)
        self.shrink = check_fraction("shrink", shrink)
        self.grow = check_step_size("grow", grow)
        if self.grow < 1:
            raise ConfigError(f"grow must be >= 1, got {grow!r}")
        self.every = check_count("every", every)
        self.beta = check_fraction("beta", beta)
        self.alpha0 = check_step_size("alpha0", alpha0)
        self.warmup = check_count("warmup", warmup, minimum=0)
        self.max_evals = check_count("max_evals", max_evals)
        for name, flag in (("along_momentum", along_momentum), ("adaptive", adaptive)):
            if not isinstance(flag, bool | np.bool_):
                raise TypeError(f"{name} must be True or False, got {flag!r}")
        self.along_momentum = bool(along_momentum)
        self.adaptive = bool(adaptive)
        self.alpha = self.alpha0  # the carried step
        self.mean_decrease = 0.0
        self.mean_slope = 0.0
        self.fast, self.slow = 1e-8, 1e-8  # averages of the step, from SaLSA's 1e-8
        self.steps = 0  # steps taken
        self.since: int | None = None  # steps since the last check (None: no check yet)
        self._plan: bool | None = None  # whether the coming step checks, once asked
        self._direction: CheckedDirection | None = None

    def interval(self) -> float:
        """Steps between checks after the warm-up: ``every``, or with ``adaptive``
        min(every, 1 / (r - 1)) (see the class docstring)."""
        if not self.adaptive:
            return float(self.every)
        fast, slow = self.fast, self.slow
        if not (fast > 0 and slow > 0):
            return 1.0
        ratio = fast / slow if fast >= slow else slow / fast
        return min(float(self.every), 1.0 / (ratio - 1.0 + 1e-8))

    def checks_next(self) -> bool:
        """Whether the coming step is a check (asked by its direction before the step)."""
        if self._plan is None:
            self._plan = (self.steps < self.warmup or self.since is None
                          or self.since + 1 >= self.interval())
        return self._plan

    def direction_for(self, direction: Any) -> Direction:
        """The direction of the steps: ``direction`` between checks, its preconditioned
        gradient at checks (:class:`CheckedDirection`); ``direction`` itself with
        ``along_momentum``."""
        if self.along_momentum:
            return direction
        if self._direction is not None:
            if direction is self._direction:
                return direction
            raise ConfigError(f"{self!r} already drives another optimizer's direction: give "
                              "each optimizer a rule of its own")
        self._direction = CheckedDirection(direction, self)
        return self._direction

    def __call__(self, ctx: StepContext) -> StepChoice:
        assert ctx.phi is not None
        check = self.checks_next()
        self._plan = None
        self.steps += 1
        trial = self.alpha * self.grow
        if not check:
            self.since = (self.since or 0) + 1
            return StepChoice(trial, 0, 0, None, None)
        self.since = 0
        b = self.beta
        self.mean_slope = b * self.mean_slope + (1.0 - b) * ctx.slope
        if ctx.loss == 0 or -self.mean_slope < self.TINY_SLOPE:  # nothing to test against
            choice, carried = StepChoice(trial, 0, 0, None, None), trial
        else:
            res = smoothed_backtracking(ctx.phi, ctx.loss, self.mean_slope, self.mean_decrease,
                                        beta=b, alpha0=trial, c1=self.c1, shrink=self.shrink,
                                        max_evals=self.max_evals)
            if res.status is LineSearchStatus.CONVERGED:
                self.mean_decrease = b * self.mean_decrease + (1.0 - b) * (ctx.loss - res.value)
            carried = res.alpha if res.alpha > 0 else trial * self.shrink**res.evaluations
            if not carried > 0:  # the step underflowed: start again
                carried = self.alpha0
            choice = StepChoice(res.alpha, res.evaluations, 0, res.status, res.value)
        self.alpha = carried
        self.fast = 0.9 * self.fast + 0.1 * carried
        self.slow = 0.99 * self.slow + 0.01 * carried
        return choice

    def state_dict(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "mean_decrease": self.mean_decrease,
                "mean_slope": self.mean_slope, "fast": self.fast, "slow": self.slow,
                "steps": self.steps, "since": self.since}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        name = "SmoothedArmijo state"
        alpha = check_step_size(f"{name}: alpha", state.get("alpha", self.alpha0))
        numbers = {k: check_finite(f"{name}: {k}", state.get(k, 1e-8))
                   for k in ("mean_decrease", "mean_slope", "fast", "slow")}
        steps = check_count(f"{name}: steps", state.get("steps", 0), minimum=0)
        since = state.get("since")
        if since is not None:
            since = check_count(f"{name}: since", since, minimum=0)
        self.alpha, self.since, self._plan = alpha, since, None
        self.mean_decrease, self.mean_slope = numbers["mean_decrease"], numbers["mean_slope"]
        self.fast, self.slow = numbers["fast"], numbers["slow"]
        self.steps = steps

    def __repr__(self) -> str:
        return (f"SmoothedArmijo(c1={self.c1}, shrink={self.shrink}, grow={self.grow}, "
                f"every={self.every})")


class CheckedDirection(Direction):
    """The direction of :class:`SmoothedArmijo`'s steps: the optimizer's own direction
    between checks, its preconditioned gradient at checks.

    ``compute`` always updates the inner direction's state (Adam's moments, the momentum
    buffer), then returns, on a check, -P g: Adam's -g / (sqrt(v_hat) + eps) with the
    second moment just updated, or -g for GD with or without momentum. The state is the
    inner direction's (``state_dict`` and torch's ``exp_avg``/``exp_avg_sq`` names alike).
    """

    learns = False

    def __init__(self, inner: Direction, rule: SmoothedArmijo):
        if not isinstance(inner, AdamDirection | Gradient | Momentum):
            raise ConfigError(
                f"{rule!r} checks along the preconditioned gradient of Adam or GD: use it "
                f"with Adam or GD, not with the {type(inner).__name__} direction (or pass "
                "along_momentum=True)")
        self.inner = inner
        self.rule = rule
        self.sign = inner.sign

    @property  # type: ignore[override]
    def engine(self) -> Engine:
        return self.inner.engine

    @engine.setter
    def engine(self, engine: Engine) -> None:
        self.inner.engine = engine

    def compute(self, grads: Vector) -> Vector:
        v = self.inner.compute(grads)
        if not self.rule.checks_next():
            self.sign = self.inner.sign
            return v
        inner = self.inner
        if isinstance(inner, AdamDirection):
            s = inner.state
            c2 = 1 - inner.b2**s.t
            out = []
            for g, second in zip(grads, s.v):
                denom = self.engine.sqrt(second / c2)
                denom += inner.eps
                out.append(-g / denom)
            self.sign = 1.0
            return out
        self.sign = -1.0  # the gradient itself, d = -g
        return grads

    def state_dict(self) -> dict[str, Any]:
        return self.inner.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.inner.load_state_dict(state)

    def __getattr__(self, name: str) -> Any:
        # what callers read of the inner direction (Adam's betas and eps, momentum's beta)
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)


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


class Exact(StatelessRule):
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
