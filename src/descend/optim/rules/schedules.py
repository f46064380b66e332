"""Step sizes that depend only on the step count: schedules (a constant is one).

A float, or a callable ``t -> float``, is accepted anywhere a rule is (:func:`as_step_rule`
turns it into :class:`Constant` or :class:`FunctionSchedule`).

Diminishing schedules and convergence. For a convex f with bounded (sub)gradients, gradient
(or subgradient) descent with steps ``alpha_t`` satisfying

    sum_t alpha_t = infinity   and   sum_t alpha_t^2 < infinity

converges to the minimum (Bertsekas, *Nonlinear Programming*, Prop. 1.2.4; Boyd & Mutapcic,
*Subgradient Methods*, §3); "nonsummable diminishing" steps (alpha_t -> 0, sum = infinity)
already give f_best -> f*. Stochastic gradient descent needs the same two conditions
(Robbins & Monro, 1951). Each schedule's docstring states which it satisfies.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ...checks import check_count, check_fraction, check_step_size, is_real
from ...errors import ConfigError
from .base import StatelessRule, StepChoice, StepContext, StepRule

__all__ = [
    "Constant",
    "Cosine",
    "ExponentialDecay",
    "FunctionSchedule",
    "InverseSqrt",
    "InverseTime",
    "Schedule",
    "StepDecay",
    "as_step_rule",
]


class Schedule(StatelessRule):
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
