"""Optimizers and step sizes: a direction and a step rule, composed.

>>> opt = ds.optim.GD(model.parameters(), lr=ds.optim.Armijo())
>>> opt.step(lambda: loss_fn(model(X), y))

This namespace holds what users call: the optimizers, the step rules, the record of a step
(:class:`StepInfo`) and the registry's builders. What authors of new rules and directions
implement against (``StepRule``, ``StepContext``, ``Needs``, ``Direction``, ...) lives in
:mod:`descend.optim.extend`.
"""

import importlib
import warnings
from typing import Any

from . import extend  # noqa: F401  (ds.optim.extend, the extenders' module)
from .averaging import AdamWScheduleFree, ScheduleFree, ScheduleFreePlus, SGDScheduleFree
from .momo import Momo, MomoAdam
from .optimizer import GD, Adam, Optimizer, StepInfo
from .quasi_newton import CG, LBFGS
from .rules import (
    Armijo,
    Constant,
    ConstantLength,
    Cosine,
    DAdaptAdam,
    DAdaptSGD,
    DoG,
    Exact,
    ExponentialDecay,
    InverseSqrt,
    InverseTime,
    LDoG,
    Polyak,
    Prodigy,
    ReduceOnPlateau,
    SmoothedArmijo,
    StepDecay,
    StrongWolfe,
)
from .rules.polyak import MomoStep
from .spec import make_optimizer, parse_step_rule, recommended
from .subgradient import Subgradient

__all__ = [
    "CG",
    "GD",
    "LBFGS",
    "Adam",
    "AdamWScheduleFree",
    "Armijo",
    "Constant",
    "ConstantLength",
    "Cosine",
    "DAdaptAdam",
    "DAdaptSGD",
    "DoG",
    "Exact",
    "ExponentialDecay",
    "InverseSqrt",
    "InverseTime",
    "LDoG",
    "Momo",
    "MomoAdam",
    "MomoStep",
    "Optimizer",
    "Polyak",
    "Prodigy",
    "ReduceOnPlateau",
    "SGDScheduleFree",
    "ScheduleFree",
    "ScheduleFreePlus",
    "SmoothedArmijo",
    "StepDecay",
    "StepInfo",
    "StrongWolfe",
    "Subgradient",
    "make_optimizer",
    "parse_step_rule",
    "recommended",
]

#: names that moved to descend.optim.extend (still reachable here, with a warning)
MOVED_TO_EXTEND = frozenset({
    "AdamDirection", "CGDirection", "Direction", "DirectionStatus", "Feedback",
    "FunctionSchedule", "Gradient", "LBFGSDirection", "Momentum", "Needs", "Schedule",
    "StepChoice", "StepContext", "StepRule", "as_step_rule",
})


def __getattr__(name: str) -> Any:
    if name in MOVED_TO_EXTEND:
        warnings.warn(f"descend.optim.{name} moved to descend.optim.extend.{name} (the "
                      "extension types); the old name will be removed", DeprecationWarning,
                      stacklevel=2)
        return getattr(importlib.import_module(".extend", __name__), name)
    # ``ds.optim.steps`` (the deprecated module) without importing it first, as before
    if name == "steps":
        return importlib.import_module(".steps", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
