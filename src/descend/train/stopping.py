"""Convergence criteria. Each reads the History and returns a StopReason or None; none of
them touches parameters or step sizes (STYLE.md 12). Divergence is one of them; the
training loop alone acts on it (it puts back the last parameters with a finite loss).

Every stop reason training can report, library, command line, ``descend compare``, CSV and
checkpoints alike, is one of :data:`STOP_REASONS`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from ..checks import check_count, check_finite, check_step_size
from ..errors import ConfigError
from .history import History, StopReason

#: every criterion name a StopReason can carry
STOP_REASONS = ("epochs", "max_epochs", "max_steps", "time_limit", "loss_below",
                "grad_norm_below", "rel_loss_change_below", "param_change_below", "patience",
                "stalled", "stationary", "diverged", "callback", "interrupted")

#: The suggestions stop messages make, as the library writes them (Python) and as the
#: command line prints them (``{flag}`` is the option that takes a step rule: ``--lr`` for
#: ``descend train``, ``--steps`` for ``descend compare``); see :func:`for_command_line`.
HINTS = {
    "lr=ds.optim.Armijo()": "{flag} armijo",
}

#: the default divergence factor of training: a loss that rose by more than this many
#: times max(|first loss|, 1) above the first loss
DIVERGENCE_FACTOR = 1e6


def compared(value: float, threshold: float, digits: int = 6) -> tuple[str, str]:
    """``value`` and ``threshold`` written with enough significant digits to tell them
    apart: ``digits`` for the value (at least 6 for the threshold, which the user chose), more
    for both until the two texts differ, then the shortest round trip (``repr``). So a
    message "loss 0.445135 < 0.445135" cannot happen.

    >>> compared(0.44513455, 0.4451354445)
    ('0.4451346', '0.4451354')
    >>> compared(0.000123, 1e-06, 3)
    ('0.000123', '1e-06')
    """
    for d in range(digits, 16):
        a, b = f"{value:.{d}g}", f"{threshold:.{max(d, 6)}g}"
        if a != b or value == threshold:
            return a, b
    return repr(float(value)), repr(float(threshold))


def for_command_line(message: str, flag: str = "--lr") -> str:
    """A stop message with its hints in command-line syntax (``--lr armijo``) instead of
    the library's Python (``lr=ds.optim.Armijo()``); ``flag`` takes the step rule."""
    for python, cli in HINTS.items():
        message = message.replace(python, cli.format(flag=flag))
    return message


class Divergence:
    """The divergence criterion: a step whose loss or gradient is not finite, or whose loss
    rose above the first loss f_0 by more than ``factor`` times a scale: f_0 - f* when the
    optimal value f* is known (and below f_0), else max(|f_0|, 1).

    Gradient descent with a step below 2/L never raises f, so on smooth problems this fires
    only for steps that overshoot; the subgradient method, which may raise f on purpose,
    wants a larger factor.
    """

    def __init__(self, factor: float = DIVERGENCE_FACTOR, f_star: float | None = None):
        self.factor = check_step_size("Divergence: factor", factor)
        self.f_star = None if f_star is None else check_finite("Divergence: f_star", f_star)

    def limit(self, history: History) -> float:
        """The loss above which a step diverges (NaN before the first step, so that the
        first step is always checked; inf when the first loss is not finite)."""
        if not history.loss:
            return math.nan
        first = history.loss[0]
        if not math.isfinite(first):
            return math.inf
        if self.f_star is not None and first - self.f_star > 0:
            scale = first - self.f_star
        else:
            scale = max(abs(first), 1.0)
        return first + self.factor * scale

    def check(self, history: History, epoch: int) -> StopReason | None:
        """Whether the last step diverged, with the loss, the gradient and the step size."""
        step = history.steps - 1
        loss, norm = history.loss[-1], history.grad_norm[-1]
        culprit = history.lr[-2] if history.steps >= 2 else math.nan
        after = f", after a step of size {culprit:.4g}" if math.isfinite(culprit) else ""
        if not math.isfinite(loss):
            detail = f"loss {loss}"
        elif not math.isfinite(norm):
            detail = f"gradient norm {norm} at loss {loss:.4g}"
        elif loss > self.limit(history):
            detail = f"overshooting: the loss rose from {history.loss[0]:.4g} to {loss:.4g}"
        else:
            return None
        message = f"diverged at step {step}: {detail}{after}"
        taken = history.lr[:-1]
        if taken and min(taken) == max(taken) > 0:  # every step had the same size
            message += (f". Hint: the constant step {taken[0]:g} is too large for this problem; "
                        "try a line search (lr=ds.optim.Armijo()) or a smaller step")
        return StopReason("diverged", message, step, epoch, loss, self.limit(history))

    @staticmethod
    def restored(reason: StopReason, history: History, undone: bool, *,
                 updated: bool = False) -> StopReason:
        """The reason, saying which parameters the loop put back after it.

        ``updated``: whether the diverging step itself made an update. A step with a
        non-finite value, or starting above the limit (``Optimizer.loss_limit``), made
        none: undoing takes back the previous step's update, back to the last parameters
        with a good loss. A step that did update (an optimizer not told the limit) has
        its own update taken back."""
        step = reason.step
        message, hint = reason.message.partition(". Hint: ")[::2]
        if not undone:  # the step made no update: its starting parameters stay
            message += f"; the parameters kept are those at the start of step {step}"
        else:
            back = step if updated else step - 1
            message += f"; parameters restored to those at the start of step {back}"
            if back >= 0 and math.isfinite(history.loss[back]):
                message += f" (loss {history.loss[back]:.4g})"
        reason.message = message + (f". Hint: {hint}" if hint else "")
        return reason


def _check(name: str, value: float | int | None, *, integer: bool = False) -> None:
    """A criterion's threshold: a count >= 1, a finite loss, or a number > 0."""
    if value is None:
        return
    where = f"StopWhen: {name}"
    if integer:
        check_count(where, value)
    elif name == "loss_below":  # a loss may be negative
        check_finite(where, value)
    else:
        check_step_size(where, value, allow_inf=True)


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
    training loss without validation data). Step-level, for full-batch runs:
    ``stalled`` (that many steps in a row of size 0 at a non-zero gradient: the line search
    finds no decrease) and ``stationary`` (the gradient is exactly zero). Criteria compose
    with ``|``.
    """

    max_epochs: int | None = None
    max_steps: int | None = None
    loss_below: float | None = None
    grad_norm_below: float | None = None
    rel_loss_change_below: float | None = None
    param_change_below: float | None = None
    patience: int | None = None
    time_limit: float | None = None
    stalled: int | None = None
    stationary: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.stationary, bool):
            raise ConfigError(f"StopWhen: stationary must be a bool, got {self.stationary!r}")
        for name in ("max_epochs", "max_steps", "patience", "stalled"):
            _check(name, getattr(self, name), integer=True)
        for name in ("loss_below", "grad_norm_below", "rel_loss_change_below",
                     "param_change_below", "time_limit"):
            _check(name, getattr(self, name))

    def __or__(self, other: StopWhen) -> StopWhen:
        merged = {}
        for name in self.__dataclass_fields__:
            a, b = getattr(self, name), getattr(other, name)
            if name == "stationary":
                merged[name] = a or b
            elif a is None or b is None:
                merged[name] = a if b is None else b
            elif name in ("loss_below", "grad_norm_below", "rel_loss_change_below",
                          "param_change_below"):
                merged[name] = max(a, b)  # the looser threshold fires first
            else:
                merged[name] = min(a, b)
        return StopWhen(**merged)

    @property
    def per_step(self) -> bool:
        """Whether any criterion is read after every step."""
        return (self.max_steps is not None or self.time_limit is not None
                or self.stalled is not None or self.stationary)

    def check_step(self, history: History, elapsed: float, epoch: int) -> StopReason | None:
        """Criteria read after every step."""
        steps = len(history.loss)
        step = steps - 1
        if self.stationary and history.grad_norm[-1] == 0:
            return StopReason("stationary", f"the gradient is exactly 0 at step {step}",
                              step, epoch, 0.0, 0.0)
        if self.stalled is not None and history.lr[-1] == 0 and steps >= self.stalled:
            recent = range(steps - self.stalled, steps)
            if all(history.lr[i] == 0 and history.grad_norm[i] > 0 for i in recent):
                return StopReason("stalled", f"no step decreased the loss {self.stalled} times "
                                  f"in a row (step size 0) at step {step}: no decrease the "
                                  "step rule can resolve at working precision", step, epoch,
                                  self.stalled, self.stalled)
        if self.max_steps is not None and steps >= self.max_steps:
            return StopReason("max_steps", f"reached max_steps = {self.max_steps} at step {step}",
                              step, epoch, steps, self.max_steps)
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
            a, b = compared(rec.train_loss, self.loss_below)
            return StopReason("loss_below", f"loss {a} < {b} {where}", step, e,
                              rec.train_loss, self.loss_below)
        if self.grad_norm_below is not None:
            recent = history.grad_norm[-steps_in_epoch:]
            g = sum(recent) / len(recent)
            if g < self.grad_norm_below:
                a, b = compared(g, self.grad_norm_below, 3)
                return StopReason("grad_norm_below", f"gradient norm {a} < {b} {where}", step,
                                  e, g, self.grad_norm_below)
        if self.rel_loss_change_below is not None and len(history.epochs) >= 2:
            prev = history.epochs[-2].train_loss
            change = abs(rec.train_loss - prev) / max(abs(prev), 1e-12)
            if change < self.rel_loss_change_below:
                a, b = compared(change, self.rel_loss_change_below, 3)
                return StopReason("rel_loss_change_below", f"relative loss change {a} < {b} "
                                  f"{where}", step, e, change, self.rel_loss_change_below)
        if self.param_change_below is not None:
            moved = sum(history.step_norm[-steps_in_epoch:])
            if moved < self.param_change_below:
                a, b = compared(moved, self.param_change_below, 3)
                return StopReason("param_change_below", f"parameter change {a} < {b} {where}",
                                  step, e, moved, self.param_change_below)
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


def with_no_progress_stop(stop: StopWhen | None, steps_per_epoch: int | None,
                          full_batch: bool) -> StopWhen:
    """The criteria ``fit`` uses: ``stop`` plus, where it leaves them unset, a stop when no
    step can make progress at working precision.

    * ``stalled``: as many steps in a row of size 0 at a non-zero gradient as one epoch
      has (at least 2; 10 when the epoch's length is unknown): the step rule found no
      decrease it can resolve on any batch (a line search's ``FLAT`` or ``ROUNDING``,
      Polyak's step at a gradient under the precision of f).
    * ``stationary`` (full batch only): the gradient is exactly 0. A mini-batch may have a
      zero gradient while others do not (a hinge loss with every margin met).

    Pass ``StopWhen(stalled=...)`` to choose the count; a count above the run's steps
    turns the stop off.
    """
    stop = stop or StopWhen()
    stalled = stop.stalled
    if stalled is None:
        stalled = max(2, steps_per_epoch) if steps_per_epoch else 10
    return replace(stop, stalled=stalled, stationary=stop.stationary or full_batch)
