"""A :func:`~descend.train.fit` callback that writes TensorBoard scalars.

>>> from descend.train.tensorboard import TensorBoardLogger
>>> with TensorBoardLogger("runs/armijo") as tb:
...     history = ds.train.fit(model, loss_fn, opt, (X, y), callbacks=[tb])

Then ``tensorboard --logdir runs`` shows the runs side by side. The event files are written
by tensorboardX (``pip install 'descend[tensorboard]'``), which needs neither TensorFlow nor
PyTorch; ``import descend`` does not import it.

Scalars, by tag:

- per step (x axis: the step index): ``step/loss`` (the objective at the start of the step),
  ``step/lr`` (the step size the rule chose), ``step/grad_norm`` (||g||),
  ``step/evaluations`` (forward passes the step made: 1 for a schedule, more for a line
  search);
- per epoch (x axis: the epoch index): ``epoch/train_loss``, ``epoch/train_accuracy``,
  ``epoch/val_loss``, ``epoch/val_accuracy`` (those that were measured), ``epoch/lr``.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any

from ..checks import is_real
from ..errors import ConfigError
from .callbacks import Callback
from .history import History

__all__ = ["TensorBoardLogger"]


class TensorBoardLogger(Callback):
    """Write training scalars to a TensorBoard log folder.

    Parameters
    ----------
    log_dir : str or Path
        The run's folder (created if needed); one event file per logger.
    every : int
        Write the per-step scalars every ``every`` steps (epoch scalars always).
    flush_secs : float
        How often the writer flushes to disk; it also flushes at the end of every epoch,
        and :meth:`close` (or leaving a ``with`` block) writes everything.
    """

    def __init__(self, log_dir: str | Path, *, every: int = 1, flush_secs: float = 10.0):
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ConfigError(f"TensorBoardLogger: every must be an int >= 1, got {every!r}")
        try:
            from tensorboardX import SummaryWriter
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("TensorBoardLogger needs tensorboardX: "
                              "pip install 'descend[tensorboard]'") from exc
        if not isinstance(log_dir, str | Path) or not str(log_dir):
            raise TypeError(f"TensorBoardLogger: log_dir must be a folder path, got {log_dir!r}")
        self.log_dir = Path(log_dir)
        if self.log_dir.exists() and not self.log_dir.is_dir():
            raise ConfigError(f"TensorBoardLogger: {self.log_dir} exists and is not a folder")
        if not is_real(flush_secs) or not flush_secs > 0:
            raise ConfigError(f"TensorBoardLogger: flush_secs must be a number > 0, got "
                              f"{flush_secs!r}")
        self.every = every
        self.writer = SummaryWriter(logdir=str(self.log_dir), flush_secs=flush_secs)

    def on_step_end(self, history: History, optimizer: Any) -> None:
        step = history.steps - 1
        if step % self.every:
            return None
        add = self.writer.add_scalar
        add("step/loss", history.loss[-1], step)
        add("step/lr", history.lr[-1], step)
        add("step/grad_norm", history.grad_norm[-1], step)
        add("step/evaluations", history.evaluations[-1], step)
        return None

    def on_epoch_end(self, history: History, model: Any) -> None:
        record = history.epochs[-1]
        for name in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr"):
            value = getattr(record, name)
            if value is not None:
                self.writer.add_scalar(f"epoch/{name}", value, record.epoch)
        self.writer.flush()
        return None

    def close(self) -> None:
        """Write what is buffered and close the event file."""
        self.writer.close()

    def __enter__(self) -> TensorBoardLogger:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
