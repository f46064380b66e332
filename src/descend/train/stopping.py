"""Convergence criteria. Each reads the History and returns a StopReason or None; none of
them touches parameters or step sizes (STYLE.md 12)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import ConfigError
from .history import History, StopReason


def _check(name: str, value: float | int | None, *, integer: bool = False) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ConfigError(f"StopWhen: {name} must be a number, got {value!r}")
    if integer and (not isinstance(value, int) or value < 1):
        raise ConfigError(f"StopWhen: {name} must be an int >= 1, got {value!r}")
    if value < 0 or (value == 0 and name not in ("loss_below",)):
        raise ConfigError(f"StopWhen: {name} must be > 0, got {value!r}")


@dataclass
class StopWhen:
    """Stop training as soon as any of the given criteria holds.

    Step-level criteria (checked after every step): ``max_steps``, ``time_limit`` (seconds).
    Epoch-level criteria (checked after every epoch; with full-batch training an epoch is one
    step): ``max_epochs``; ``loss_below`` (the epoch's mean training loss);
    ``grad_norm_below`` (the mean gradient norm of the epoch's steps);
    ``rel_loss_change_below`` (|L_e - L_{e-1}| / max(|L_{e-1}|, 1e-12));
    ``param_change_below`` (the distance the parameters moved during the epoch,
    sum of ||x_{k+1} - x_k||); ``patience`` (epochs without a lower validation loss, or
    training loss without validation data). Criteria compose with ``|``.
    """

    max_epochs: int | None = None
    max_steps: int | None = None
    loss_below: float | None = None
    grad_norm_below: float | None = None
    rel_loss_change_below: float | None = None
    param_change_below: float | None = None
    patience: int | None = None
    time_limit: float | None = None

    def __post_init__(self) -> None:
        for name in ("max_epochs", "max_steps", "patience"):
            _check(name, getattr(self, name), integer=True)
        for name in ("loss_below", "grad_norm_below", "rel_loss_change_below",
                     "param_change_below", "time_limit"):
            _check(name, getattr(self, name))

    def __or__(self, other: StopWhen) -> StopWhen:
        merged = {}
        for name in self.__dataclass_fields__:
            a, b = getattr(self, name), getattr(other, name)
            if a is None or b is None:
                merged[name] = a if b is None else b
            elif name in ("loss_below", "grad_norm_below", "rel_loss_change_below",
                          "param_change_below"):
                merged[name] = max(a, b)  # the looser threshold fires first
            else:
                merged[name] = min(a, b)
        return StopWhen(**merged)

    def check_step(self, history: History, elapsed: float, epoch: int) -> StopReason | None:
        """Criteria read after every step."""
        step = history.steps - 1
        if self.max_steps is not None and history.steps >= self.max_steps:
            return StopReason("max_steps", f"reached max_steps = {self.max_steps} at step {step}",
                              step, epoch, history.steps, self.max_steps)
        if self.time_limit is not None and elapsed >= self.time_limit:
            return StopReason("time_limit",
                              f"time limit {self.time_limit:g} s reached ({elapsed:.1f} s) "
                              f"at step {step}", step, epoch, elapsed, self.time_limit)
        return None

    def check_epoch(self, history: History, steps_in_epoch: int) -> StopReason | None:
        """Criteria read after every epoch."""
        rec = history.epochs[-1]
        e, step = rec.epoch, rec.step
        where = f"at step {step}" if steps_in_epoch == 1 else f"at epoch {e} (step {step})"
        if self.loss_below is not None and rec.train_loss < self.loss_below:
            return StopReason("loss_below", f"loss {rec.train_loss:.3g} < {self.loss_below:g} "
                              f"{where}", step, e, rec.train_loss, self.loss_below)
        if self.grad_norm_below is not None:
            recent = history.grad_norm[-steps_in_epoch:]
            g = sum(recent) / len(recent)
            if g < self.grad_norm_below:
                return StopReason("grad_norm_below", f"gradient norm {g:.3g} < "
                                  f"{self.grad_norm_below:g} {where}", step, e, g,
                                  self.grad_norm_below)
        if self.rel_loss_change_below is not None and len(history.epochs) >= 2:
            prev = history.epochs[-2].train_loss
            change = abs(rec.train_loss - prev) / max(abs(prev), 1e-12)
            if change < self.rel_loss_change_below:
                return StopReason("rel_loss_change_below", f"relative loss change {change:.3g} "
                                  f"< {self.rel_loss_change_below:g} {where}", step, e, change,
                                  self.rel_loss_change_below)
        if self.param_change_below is not None:
            moved = sum(history.step_norm[-steps_in_epoch:])
            if moved < self.param_change_below:
                return StopReason("param_change_below", f"parameter change {moved:.3g} < "
                                  f"{self.param_change_below:g} {where}", step, e, moved,
                                  self.param_change_below)
        if self.patience is not None and history.best is not None:
            waited = e - history.best.epoch
            if waited >= self.patience:
                metric = "validation loss" if rec.val_loss is not None else "training loss"
                return StopReason("patience", f"no lower {metric} for {waited} epochs (best "
                                  f"{history.best.loss:.4g} at epoch {history.best.epoch})",
                                  step, e, waited, self.patience)
        if self.max_epochs is not None and e + 1 >= self.max_epochs:
            return StopReason("max_epochs", f"reached max_epochs = {self.max_epochs} {where}",
                              step, e, e + 1, self.max_epochs)
        return None
