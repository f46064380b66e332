"""The hooks a run calls, and how their answers become stop reasons.

A :class:`Callback` overrides the hooks it needs; a plain callable ``f(history)`` is called
at the end of every epoch. A hook that returns True stops training with the reason
``callback``; one that returns a :class:`StopReason` stops it with that reason. Every
callback is called even when an earlier one (or a criterion) has already stopped the run;
the first reason stands.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .history import History, StopReason

if TYPE_CHECKING:
    from ..optim.optimizer import Optimizer


class Callback:
    """Hooks called by :func:`~descend.train.fit`; override what you need. A hook returning
    True stops training with reason ``callback``; returning a :class:`StopReason` stops it
    with that reason. A plain callable ``f(history) -> bool | None`` is called at the end
    of every epoch. ``on_train_end`` is called once when training ends, for any reason (an
    exception included), e.g. to close a file."""

    def on_step_end(self, history: History, optimizer: Optimizer) -> bool | StopReason | None:
        return None

    def on_epoch_end(self, history: History, model: Any) -> bool | StopReason | None:
        return None

    def on_train_end(self, history: History, model: Any) -> None:
        return None


#: what ``fit`` takes as callbacks
Callbacks = Sequence[Callback | Callable[[History], Any]]


def check_callbacks(callbacks: Callbacks) -> None:
    """Refuse anything that is neither a :class:`Callback` nor callable (TypeError)."""
    for cb in callbacks:
        if not isinstance(cb, Callback) and not callable(cb):
            raise TypeError(f"callbacks must be Callback objects or callables, got {cb!r}")


def after_step(callbacks: Callbacks, history: History, optimizer: Optimizer, epoch: int,
               reason: StopReason | None) -> StopReason | None:
    """Call every callback's ``on_step_end``; the stop reason: ``reason`` when there is
    one, else the first callback's that says stop."""
    step = len(history.loss) - 1
    for cb in callbacks:
        if isinstance(cb, Callback):
            said = cb.on_step_end(history, optimizer)
            if said and not reason:
                reason = said if isinstance(said, StopReason) else StopReason(
                    "callback", f"stopped by {type(cb).__name__} at step {step}", step, epoch)
    return reason


def after_epoch(callbacks: Callbacks, history: History, model: Any, epoch: int,
                reason: StopReason | None) -> StopReason | None:
    """Call every callback at the end of an epoch (``on_epoch_end``, or the callable
    itself); the stop reason: ``reason`` when there is one, else the first callback's."""
    for cb in callbacks:
        stop_now = cb.on_epoch_end(history, model) if isinstance(cb, Callback) else cb(history)
        if stop_now and reason is None:
            name = getattr(cb, "__name__", type(cb).__name__)
            reason = stop_now if isinstance(stop_now, StopReason) else StopReason(
                "callback", f"stopped by {name} at epoch {epoch}", history.steps - 1, epoch)
    return reason


def at_train_end(callbacks: Callbacks, history: History, model: Any) -> None:
    """Call every :class:`Callback`'s ``on_train_end``."""
    for cb in callbacks:
        if isinstance(cb, Callback):
            cb.on_train_end(history, model)
