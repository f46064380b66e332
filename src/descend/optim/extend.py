"""What authors of step rules and directions need: the protocols and the types they read.

``descend.optim`` holds what users call (optimizers, step rules, the registry); this module
holds what extenders implement against, as autograd's ``extend`` does:

* a step rule implements :class:`StepRule` (``needs``, ``__call__(ctx) -> StepChoice``,
  ``state_dict``/``load_state_dict``); it reads a :class:`StepContext` and what it needs
  is a :class:`Needs`; rules told a metric each epoch implement :class:`MetricObserver`;
  rules that read the step's vectors implement :class:`PointObserver` (told a
  :class:`StepPoint` before the direction is made), and rules defined over a direction of
  their own :class:`DirectionProvider`; :class:`StatelessRule` is a base for rules without
  state; :func:`gradient_is_noise`,
  :func:`flat_start` and :func:`working_precision` are the shared rounding guards;
* a direction subclasses :class:`Direction` (``Gradient``, ``Momentum``, ``AdamDirection``,
  ``LBFGSDirection``, ``CGDirection`` and ``MomoDirection``, which keeps the averages a
  :class:`MomoModel` is made of for a rule bound to it as to a :class:`ModelSource`, are the
  built-in ones); directions that learn are
  told a :class:`Feedback` and report a :class:`DirectionStatus`;
* :func:`descend.optim.spec.register_rule` puts a new rule on the registry, so that it
  reaches the command line, ``compare``, the estimators and ``descend.torch``.
"""

from .directions import AdamDirection, Direction, DirectionStatus, Feedback, Gradient, Momentum
from .momo import MomoDirection
from .quasi_newton import CGDirection, LBFGSDirection
from .rules.base import (
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
from .rules.polyak import ModelSource, MomoModel
from .rules.schedules import FunctionSchedule, Schedule, as_step_rule
from .spec import register_rule, unregister_rule

__all__ = [
    "AdamDirection",
    "CGDirection",
    "Direction",
    "DirectionProvider",
    "DirectionStatus",
    "Feedback",
    "FunctionSchedule",
    "Gradient",
    "LBFGSDirection",
    "MetricObserver",
    "ModelSource",
    "Momentum",
    "MomoDirection",
    "MomoModel",
    "Needs",
    "PointObserver",
    "Schedule",
    "StatelessRule",
    "StepChoice",
    "StepContext",
    "StepPoint",
    "StepRule",
    "as_step_rule",
    "flat_start",
    "gradient_is_noise",
    "register_rule",
    "unregister_rule",
    "working_precision",
]
