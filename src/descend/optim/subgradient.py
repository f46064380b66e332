"""The subgradient method for non-differentiable convex objectives.

x_{k+1} = x_k - alpha_k g_k with g_k any subgradient (the engine's stated choice at kinks).
It is not a descent method: f(x_{k+1}) may exceed f(x_k), so it keeps the best iterate
f_best = min_i f(x_i) and its parameters. Classical guarantee (Boyd & Mutapcic,
*Subgradient Methods*, §2.3): with R >= ||x_1 - x*|| and G >= ||g_k||,

    f_best_k - f* <= (R^2 + G^2 sum_i alpha_i^2) / (2 sum_i alpha_i).

Step rules that make sense here: Constant, ConstantLength, InverseTime (square summable),
InverseSqrt (nonsummable diminishing), Polyak with known f* or with an estimated f*.
Line searches do not: a subgradient's negative need not be a descent direction.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from ..engine.base import Engine, Vector
from ..errors import ConfigError
from .directions import Gradient
from .optimizer import Optimizer
from .rules import Needs


class Subgradient(Optimizer):
    """The subgradient method with best-iterate tracking.

    Attributes
    ----------
    best_loss : float
        The lowest objective seen at the start of a step (f_best).
    best_step : int or None
        The step at which it was seen.
    """

    def __init__(self, params: Iterable[Any], lr: Any = 0.01, weight_decay: float = 0.0, *,
                 max_grad_norm: float | None = None, engine: Engine | None = None):
        super().__init__(params, lr, weight_decay, Gradient(), max_grad_norm=max_grad_norm,
                         engine=engine)
        if self.rule.needs != Needs.NOTHING:
            raise ConfigError(
                f"{self.rule!r} is a line search; the subgradient method is not a descent "
                "method. Use a constant, ConstantLength, InverseTime, InverseSqrt or Polyak"
            )
        self.best_loss = math.inf
        self.best_step: int | None = None
        self._best: Vector | None = None
        self.sum_lr = 0.0
        self.sum_lr_sq = 0.0

    def _on_start(self, loss: float, x0: Vector) -> None:
        if loss < self.best_loss:
            self.best_loss = loss
            self.best_step = self.t
            if self._best is None:
                self._best = self.engine.clone(x0)
            else:
                self.engine.copy_into(self._best, x0)

    def _on_end(self, alpha: float) -> None:
        self.sum_lr += alpha
        self.sum_lr_sq += alpha * alpha

    def restore_best(self) -> bool:
        """Copy the best parameters seen into the model's parameters; True if any."""
        if self._best is None:
            return False
        self.engine.copy_into(self.engine.values(self.params), self._best)
        self._forget_undo()
        return True

    def guarantee(self, R: float, G: float) -> float:
        """The bound (R^2 + G^2 sum alpha^2) / (2 sum alpha) on f_best - f* so far."""
        if R < 0 or G < 0:
            raise ConfigError(f"R and G must be >= 0, got R={R}, G={G}")
        if self.sum_lr == 0:
            return math.inf
        return (R * R + G * G * self.sum_lr_sq) / (2 * self.sum_lr)

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["subgradient"] = {
            "best_loss": self.best_loss,
            "best_step": self.best_step,
            "best": None if self._best is None else self.engine.to_state(self._best),
            "sum_lr": self.sum_lr,
            "sum_lr_sq": self.sum_lr_sq,
        }
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        sub = state["subgradient"]
        self.best_loss = float(sub["best_loss"])
        self.best_step = None if sub["best_step"] is None else int(sub["best_step"])
        self._best = None if sub["best"] is None else self.engine.from_state(sub["best"])
        self.sum_lr = float(sub["sum_lr"])
        self.sum_lr_sq = float(sub["sum_lr_sq"])
