"""Optimizers and step sizes: a direction and a step rule, composed.

>>> opt = ds.optim.GD(model.parameters(), lr=ds.optim.Armijo())
>>> opt.step(lambda: loss_fn(model(X), y))
"""

from .directions import AdamDirection, Direction, Gradient, Momentum
from .optimizer import GD, Adam, Optimizer, StepInfo
from .plateau import ReduceOnPlateau
from .steps import (
    Armijo,
    Constant,
    ConstantLength,
    Cosine,
    Exact,
    ExponentialDecay,
    FunctionSchedule,
    InverseSqrt,
    InverseTime,
    Polyak,
    Schedule,
    StepChoice,
    StepContext,
    StepDecay,
    StepRule,
    StrongWolfe,
    as_step_rule,
    parse_step_rule,
)
from .subgradient import Subgradient

__all__ = [
    "GD",
    "Adam",
    "AdamDirection",
    "Armijo",
    "Constant",
    "ConstantLength",
    "Cosine",
    "Direction",
    "Exact",
    "ExponentialDecay",
    "FunctionSchedule",
    "Gradient",
    "InverseSqrt",
    "InverseTime",
    "Momentum",
    "Optimizer",
    "Polyak",
    "ReduceOnPlateau",
    "Schedule",
    "StepChoice",
    "StepContext",
    "StepDecay",
    "StepInfo",
    "StepRule",
    "StrongWolfe",
    "Subgradient",
    "as_step_rule",
    "parse_step_rule",
]
