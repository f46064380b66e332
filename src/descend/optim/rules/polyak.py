"""Steps set by the gradient's norm: the Polyak step and steps of constant length.

Both size the step from ||g|| (and for Polyak the gap f - f*) rather than from the step
count or trial points, both are the step-length rules of the subgradient method (Boyd &
Mutapcic, *Subgradient Methods*, §3.1-3.2), and both would turn a gradient that is only
rounding noise into a step of set size, so they share one guard
(:func:`~descend.optim.rules.base.gradient_is_noise`) and its ``FLAT`` status. Neither
evaluates trial points (``Needs.NOTHING``), yet neither is a schedule: that is why
``ConstantLength`` lives here rather than in :mod:`~descend.optim.rules.schedules`.
"""

from __future__ import annotations

import math
from typing import Any

from ...checks import check_step_size, is_real
from ...errors import ConfigError
from ...linesearch import LineSearchStatus
from .base import Needs, StatelessRule, StepChoice, StepContext, gradient_is_noise

__all__ = ["ConstantLength", "Polyak"]


class ConstantLength(StatelessRule):
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
