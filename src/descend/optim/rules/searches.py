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
from ...errors import ConfigError
from ...linesearch import LineSearchStatus, backtracking, exact, strong_wolfe
from .base import (
    FLOAT64_EPS,
    ROUNDING_ULPS,
    Needs,
    StatelessRule,
    StepChoice,
    StepContext,
    flat_start,
)

__all__ = ["STOCHASTIC_WINDOW", "Armijo", "Exact", "StrongWolfe"]

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
