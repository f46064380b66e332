"""Optimizers and step sizes: a direction and a step rule, composed.

>>> opt = ds.optim.GD(model.parameters(), lr=ds.optim.Armijo())
>>> opt.step(lambda: loss_fn(model(X), y))
"""

from typing import Any

from .directions import AdamDirection, Direction, DirectionStatus, Feedback, Gradient, Momentum
from .optimizer import GD, Adam, Optimizer, StepInfo
from .quasi_newton import CG, LBFGS, CGDirection, LBFGSDirection
from .rules import (
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
    ReduceOnPlateau,
    Schedule,
    StepChoice,
    StepContext,
    StepDecay,
    StepRule,
    StrongWolfe,
    as_step_rule,
)
from .spec import make_optimizer, parse_step_rule
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
    "make_optimizer",
    "parse_step_rule",
]


def __getattr__(name: str) -> Any:
    # ``ds.optim.steps`` (the deprecated module) without importing it first, as before
    if name == "steps":
        import importlib

        return importlib.import_module(".steps", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
