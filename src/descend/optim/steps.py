"""Deprecated: the step rules moved to :mod:`descend.optim.rules` (a package: ``base``,
``schedules``, ``searches``, ``polyak``, ``plateau``) and spec strings to
:mod:`descend.optim.spec`. Import them from :mod:`descend.optim` (users) or those modules
(rule authors); this module gives the old names and warns once, on import."""

import warnings
from typing import Any

from . import rules as _rules
from .spec import parse_step_rule

__all__ = [*_rules.__all__, "parse_step_rule"]


def __getattr__(name: str) -> Any:
    # every name of descend.optim.rules, looked up there (one list of them, not two)
    if name in _rules.__all__:
        return getattr(_rules, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


warnings.warn(
    "descend.optim.steps is deprecated: import step rules from descend.optim (or, to write "
    "one, descend.optim.rules) and parse specs with descend.optim.parse_step_rule",
    DeprecationWarning,
    stacklevel=2,
)
