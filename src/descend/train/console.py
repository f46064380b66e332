"""What a person at the terminal sees and does during a run: the progress bar, and Ctrl-C
with the stop reason it gives."""

from __future__ import annotations

import signal
import threading
from typing import Any

from .history import EpochRecord, History, StopReason


class InterruptFlag:
    """Turns the first Ctrl-C into a flag read between steps (main thread only); a second
    Ctrl-C raises KeyboardInterrupt at once. :meth:`restore` puts back the previous
    handler."""

    def __init__(self) -> None:
        self.raised = False
        self.previous: Any = None
        if threading.current_thread() is threading.main_thread():
            try:
                self.previous = signal.signal(signal.SIGINT, self._handle)
            except ValueError:  # pragma: no cover - embedded interpreters
                self.previous = None

    def _handle(self, signum: int, frame: Any) -> None:
        if self.raised:
            raise KeyboardInterrupt
        self.raised = True

    def restore(self) -> None:
        """Put back the SIGINT handler that was there before."""
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
            self.previous = None


def interrupted(history: History, epoch: int) -> StopReason:
    """The stop reason ``interrupted`` between steps, where the run can resume."""
    step = history.steps - 1
    return StopReason("interrupted", f"interrupted at step {step} (epoch {epoch})", step, epoch)


def interrupted_midway(history: History, epoch: int, *, in_step: bool,
                       unsaved: bool) -> StopReason:
    """The stop reason ``interrupted`` where the run cannot resume: ``in_step`` (inside
    the optimizer's step, whose update may be half done) or else between the phases of an
    epoch; ``unsaved``: a checkpoint was asked for, and none is written for this stop."""
    step = history.steps - 1
    if in_step:
        where = (f"during step {step + 1} (epoch {epoch}), which did not finish; the "
                 f"history ends at step {step}")
    else:
        where = f"in epoch {epoch} after step {step}, outside a step"
    unsaved_note = ("; no checkpoint was written for it (the last one written stands)"
                    if unsaved else "")
    return StopReason("interrupted", f"interrupted {where}{unsaved_note}", step, epoch)


def progress_bar(progress: bool, epochs: int, start: int, steps_per_epoch: int | None,
                 *, delay: float = 0.0, total: int | None = None,
                 desc: str | None = None) -> Any:
    """A tqdm bar counting steps (None when ``progress`` is off): ``total`` steps, or the
    steps of epochs ``start`` to ``epochs`` when an epoch's steps are known. Shown on a
    terminal only, and only once the run has lasted ``delay`` seconds."""
    if not progress:
        return None
    from tqdm.auto import tqdm

    if total is None and steps_per_epoch is not None:
        total = (epochs - start) * steps_per_epoch
    # disable=None: shown on a terminal, silent when output is a file or a pipe; a delay
    # shows it only for runs that last longer than that
    return tqdm(total=total, unit="step", disable=None, dynamic_ncols=True, leave=delay == 0,
                mininterval=0.2, delay=delay, desc=desc)


def describe(bar: Any, record: EpochRecord, throughput: float) -> None:
    """Show an epoch's numbers beside the bar: epoch, loss, step size, validation
    accuracy (or loss) and samples per second."""
    parts = {"epoch": record.epoch + 1, "loss": f"{record.train_loss:.4g}",
             "lr": f"{record.lr:.3g}"}
    if record.val_accuracy is not None:
        parts["val_acc"] = f"{record.val_accuracy:.3f}"
    elif record.val_loss is not None:
        parts["val_loss"] = f"{record.val_loss:.4g}"
    parts["samples/s"] = f"{throughput:,.0f}"
    bar.set_postfix(parts, refresh=False)
