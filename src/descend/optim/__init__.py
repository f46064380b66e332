"""Optimizers and step sizes: a direction and a step rule, composed.

>>> opt = ds.optim.GD(model.parameters(), lr=ds.optim.Armijo())
>>> opt.step(lambda: loss_fn(model(X), y))
"""

from .directions import AdamDirection, Direction, DirectionStatus, Feedback, Gradient, Momentum
from .optimizer import GD, Adam, Optimizer, StepInfo
from .plateau import ReduceOnPlateau
from .quasi_newton import CG, LBFGS, CGDirection, LBFGSDirection
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
    Needs,
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
    "CG",
    "GD",
    "LBFGS",
    "Adam",
    "AdamDirection",
    "Armijo",
    "CGDirection",
    "Constant",
    "ConstantLength",
    "Cosine",
    "Direction",
    "DirectionStatus",
    "Exact",
    "ExponentialDecay",
    "Feedback",
    "FunctionSchedule",
    "Gradient",
    "InverseSqrt",
    "InverseTime",
    "LBFGSDirection",
    "Momentum",
    "Needs",
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
