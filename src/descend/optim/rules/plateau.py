"""A step size driven by a metric: reduce it when the metric stops improving.

:class:`ReduceOnPlateau` is a step rule like a schedule (it needs no trial points), whose
value changes only when it is told the metric: ``fit`` calls :meth:`ReduceOnPlateau.observe`
at the end of every epoch with the validation loss, or the training loss when there is no
validation data. Outside ``fit``, call ``observe`` yourself. It is a
:class:`~descend.optim.rules.base.MetricObserver`, the protocol the loop looks for.
"""

from __future__ import annotations

import math
from typing import Any

from ...checks import check_count, check_fraction, check_step_size, is_real
from ...errors import ConfigError
from .base import Needs, StepChoice, StepContext

__all__ = ["ReduceOnPlateau"]


class ReduceOnPlateau:
    """alpha <- factor * alpha after more than ``patience`` epochs without improvement.

    The metric m_e (lower is better) improves on the best value m_best when

        m_e < m_best (1 - threshold)      (relative threshold; m_e < m_best - threshold
                                           |m_best| for negative m_best alike)

    as PyTorch's ``ReduceLROnPlateau`` in mode "min" with a relative threshold. After
    ``patience`` epochs in a row without improvement, the next one without improvement
    multiplies the step by ``factor`` (not below ``min_lr``) and starts counting again.
    A non-finite metric never counts as an improvement.

    Parameters
    ----------
    lr : float
        The initial step size, > 0.
    factor : float in (0, 1)
        The reduction factor.
    patience : int >= 0
        Epochs without improvement tolerated before a reduction.
    threshold : float >= 0
        The relative improvement that counts.
    min_lr : float >= 0
        The step never goes below it.

    Attributes
    ----------
    value : float
        The current step size.
    best : float
        The best metric seen (inf before the first).
    bad_epochs : int
        Epochs in a row without improvement.
    reductions : int
        How many times the step was reduced.
    """

    needs = Needs.NOTHING

    def __init__(self, lr: float, factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, min_lr: float = 0.0):
        self.initial = check_step_size("lr", lr)
        self.factor = check_fraction("factor", factor)
        self.patience = check_count("patience", patience, 0)
        self.threshold = check_step_size("threshold", threshold, allow_zero=True)
        self.min_lr = check_step_size("min_lr", min_lr, allow_zero=True)
        if self.min_lr > self.initial:
            raise ConfigError(f"min_lr {min_lr!r} must not exceed lr {lr!r}")
        self.value = self.initial
        self.best = math.inf
        self.bad_epochs = 0
        self.reductions = 0

    def __call__(self, ctx: StepContext) -> StepChoice:
        return StepChoice(self.value)

    def improves(self, metric: float) -> bool:
        """Whether ``metric`` counts as an improvement on the best value."""
        if not math.isfinite(metric):
            return False
        if not math.isfinite(self.best):
            return True
        return metric < self.best - self.threshold * abs(self.best)

    def observe(self, metric: float) -> float:
        """Report the metric of an epoch; returns the step size for the next one."""
        metric = float(metric)
        if self.improves(metric):
            self.best = metric
            self.bad_epochs = 0
        else:
            self.bad_epochs += 1
            if self.bad_epochs > self.patience:
                reduced = max(self.value * self.factor, self.min_lr)
                if reduced < self.value:
                    self.reductions += 1
                self.value = reduced
                self.bad_epochs = 0
        return self.value

    def state_dict(self) -> dict[str, Any]:
        return {"value": self.value, "best": self.best, "bad_epochs": self.bad_epochs,
                "reductions": self.reductions}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.value = check_step_size("ReduceOnPlateau state: value", state["value"],
                                     allow_zero=True)
        best = state["best"]
        if not is_real(best) or math.isnan(best):
            raise ConfigError(f"ReduceOnPlateau state: best must be a number, got {best!r}")
        self.best = float(best)
        self.bad_epochs = check_count("ReduceOnPlateau state: bad_epochs", state["bad_epochs"], 0)
        self.reductions = check_count("ReduceOnPlateau state: reductions", state["reductions"], 0)

    def __repr__(self) -> str:
        return (f"ReduceOnPlateau(lr={self.initial}, factor={self.factor}, "
                f"patience={self.patience}, threshold={self.threshold})")
