"""How far to move: step-size rules behind one protocol.

``base`` holds the protocol (:class:`StepRule`), what a rule reads (:class:`StepContext`),
what it answers (:class:`StepChoice`), what it needs (:class:`Needs`) and the helpers rules
share; ``schedules`` the rules of the step count (a constant is one), with their convergence
conditions; ``searches`` the line searches (Armijo/SLS, SaLSA's smoothed Armijo, strong
Wolfe, exact); ``polyak`` the rules of the gradient's norm (Polyak, constant length);
``distance`` the distance-based rules (DoG, L-DoG, Prodigy, D-Adaptation); ``plateau`` the
rule driven by a metric (``ReduceOnPlateau``). Names and specs (``"armijo:c1=0.1"``) are
turned into these objects by :mod:`descend.optim.spec`, the one registry.
"""

from .base import (
    FLOAT64_EPS,
    ROUNDING_ULPS,
    DirectionProvider,
    MetricObserver,
    Needs,
    PointObserver,
    StatelessRule,
    StepChoice,
    StepContext,
    StepPoint,
    StepRule,
    flat_start,
    gradient_is_noise,
    working_precision,
)
from .distance import DAdaptAdam, DAdaptSGD, DoG, LDoG, Prodigy
from .plateau import ReduceOnPlateau
from .polyak import ConstantLength, Polyak
from .schedules import (
    Constant,
    Cosine,
    ExponentialDecay,
    FunctionSchedule,
    InverseSqrt,
    InverseTime,
    Schedule,
    StepDecay,
    as_step_rule,
)
from .searches import Armijo, Exact, SmoothedArmijo, StrongWolfe

__all__ = [
    "FLOAT64_EPS",
    "ROUNDING_ULPS",
    "Armijo",
    "Constant",
    "ConstantLength",
    "Cosine",
    "DAdaptAdam",
    "DAdaptSGD",
    "DirectionProvider",
    "DoG",
    "Exact",
    "ExponentialDecay",
    "FunctionSchedule",
    "InverseSqrt",
    "InverseTime",
    "LDoG",
    "MetricObserver",
    "Needs",
    "PointObserver",
    "Polyak",
    "Prodigy",
    "ReduceOnPlateau",
    "Schedule",
    "SmoothedArmijo",
    "StatelessRule",
    "StepChoice",
    "StepContext",
    "StepDecay",
    "StepPoint",
    "StepRule",
    "StrongWolfe",
    "as_step_rule",
    "flat_start",
    "gradient_is_noise",
    "working_precision",
]
