"""Deprecated: the step rules moved to :mod:`descend.optim.rules` (a package: ``base``,
``schedules``, ``searches``, ``polyak``, ``plateau``) and spec strings to
:mod:`descend.optim.spec`. Import them from :mod:`descend.optim` (users) or those modules
(rule authors); this module re-exports the old names and warns once, on import."""

import warnings

from .rules import (
    FLOAT64_EPS,
    ROUNDING_ULPS,
    Armijo,
    Constant,
    ConstantLength,
    Cosine,
    Exact,
    ExponentialDecay,
    FunctionSchedule,
    InverseSqrt,
    InverseTime,
    MetricObserver,
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
    flat_start,
    gradient_is_noise,
    working_precision,
)
from .spec import parse_step_rule

__all__ = [
    "FLOAT64_EPS",
    "ROUNDING_ULPS",
    "Armijo",
    "Constant",
    "ConstantLength",
    "Cosine",
    "Exact",
    "ExponentialDecay",
    "FunctionSchedule",
    "InverseSqrt",
    "InverseTime",
    "MetricObserver",
    "Needs",
    "Polyak",
    "ReduceOnPlateau",
    "Schedule",
    "StepChoice",
    "StepContext",
    "StepDecay",
    "StepRule",
    "StrongWolfe",
    "as_step_rule",
    "flat_start",
    "gradient_is_noise",
    "parse_step_rule",
    "working_precision",
]

warnings.warn(
    "descend.optim.steps is deprecated: import step rules from descend.optim (or, to write "
    "one, descend.optim.rules) and parse specs with descend.optim.parse_step_rule",
    DeprecationWarning,
    stacklevel=2,
)
