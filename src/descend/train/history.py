"""What training recorded: per-step and per-epoch records, the best iterate, plots, CSV."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, BinaryIO, Protocol, TextIO, runtime_checkable

import numpy as np

from .._output import target_kind, write_output


@dataclass
class EpochRecord:
    """Metrics at the end of one epoch (validation ones are None without validation data)."""

    epoch: int
    step: int
    train_loss: float
    train_accuracy: float | None = None
    val_loss: float | None = None
    val_accuracy: float | None = None
    lr: float = math.nan
    seconds: float = 0.0

    def set_validation(self, metrics: Mapping[str, float | None]) -> None:
        """Take ``val_loss`` and ``val_accuracy`` from ``{"loss": ..., "accuracy": ...}``
        (an accuracy absent or None: none)."""
        self.val_loss = float(metrics["loss"])  # type: ignore[arg-type]  # a loss is given
        accuracy = metrics.get("accuracy")
        self.val_accuracy = None if accuracy is None else float(accuracy)

    @property
    def metric(self) -> float:
        """What the epoch is judged by (lower is better): the validation loss, else the
        training loss. The best epoch and rules driven by a metric read it."""
        return self.val_loss if self.val_loss is not None else self.train_loss


@dataclass
class StopReason:
    """Why training stopped: the criterion's name, the value that fired it, and where.

    ``str(reason)`` reads like "gradient norm 8.7e-07 < 1e-06 at step 412".
    """

    criterion: str
    message: str
    step: int
    epoch: int
    value: float | None = None
    threshold: float | None = None

    def __str__(self) -> str:
        return self.message


@dataclass
class Best:
    """The best epoch seen (lowest validation loss, or training loss without validation)."""

    epoch: int
    step: int
    loss: float
    state: dict[str, np.ndarray] | None = None


@runtime_checkable
class HasState(Protocol):
    """What the best epoch's parameters can be copied from (``nn.Module`` is one)."""

    def state_dict(self) -> Mapping[str, Any]: ...


@dataclass
class History:
    """Per-step columns (``loss``, ``lr``, ``grad_norm``, ``evaluations``, ``step_norm``),
    per-epoch :class:`EpochRecord` s, the stop reason and the best epoch."""

    loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    evaluations: list[int] = field(default_factory=list)
    step_norm: list[float] = field(default_factory=list)
    epochs: list[EpochRecord] = field(default_factory=list)
    stop_reason: StopReason | None = None
    best: Best | None = None
    seconds: float = 0.0

    STEP_COLUMNS = ("loss", "lr", "grad_norm", "evaluations", "step_norm")

    @property
    def steps(self) -> int:
        """Steps recorded so far."""
        return len(self.loss)

    def record_step(self, loss: float, lr: float, grad_norm: float, evaluations: int,
                    step_norm: float) -> None:
        self.loss.append(loss)
        self.lr.append(lr)
        self.grad_norm.append(grad_norm)
        self.evaluations.append(evaluations)
        self.step_norm.append(step_norm)

    def add_epoch(self, record: EpochRecord, model: Any = None) -> None:
        """Append an epoch's record; it becomes the best epoch when its metric
        (:attr:`EpochRecord.metric`) is finite and lower than the best's so far, keeping a
        copy of ``model.state_dict()`` when a model with a state is given."""
        self.epochs.append(record)
        value = record.metric
        if not math.isfinite(value):
            return
        if self.best is None or value < self.best.loss:
            state = None
            if isinstance(model, HasState):
                state = {k: np.array(v, copy=True) for k, v in model.state_dict().items()}
            self.best = Best(record.epoch, record.step, value, state)

    def __getitem__(self, name: str) -> list[Any]:
        """A per-step column by name, or a per-epoch one (e.g. ``"val_accuracy"``)."""
        if name in self.STEP_COLUMNS:
            return getattr(self, name)
        names = {f.name for f in fields(EpochRecord)}
        if name in names:
            return [getattr(e, name) for e in self.epochs]
        raise KeyError(f"history has no column {name!r}")

    def to_csv(self, path: str | Path) -> str | Path:
        """Write one row per step (with that step's epoch metrics on the epoch's last step).

        A regular file is replaced atomically (the previous one survives a failed write);
        ``"-"``, a device or a FIFO is written in place; a directory is refused.

        Raises
        ------
        OutputError
            The target is a directory or another non-regular file, its folder is missing, or
            the write fails (permission, full disk, file-size limit, name too long).
        """
        by_step = {e.step: e for e in self.epochs}
        epoch_cols = ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy"]

        def write(fh: BinaryIO) -> None:
            text = io.TextIOWrapper(fh, encoding="utf-8", newline="", write_through=True)
            try:
                self._write_csv(text, by_step, epoch_cols)
                text.flush()
            finally:
                text.detach()  # the caller owns (and closes) the binary file

        return write_output(path, write, what="history CSV")

    def _write_csv(self, fh: TextIO, by_step: dict[int, EpochRecord],
                   epoch_cols: list[str]) -> None:
        w = csv.writer(fh)
        w.writerow(["step", *self.STEP_COLUMNS, *epoch_cols])
        for i in range(self.steps):
            row: list[Any] = [i, *(getattr(self, c)[i] for c in self.STEP_COLUMNS)]
            e = by_step.get(i)
            row += ["" if e is None or getattr(e, c) is None else getattr(e, c)
                    for c in epoch_cols]
            w.writerow(row)

    def plot(self, path: str | Path, title: str | None = None) -> str | Path:
        """Draw the loss, the validation metric and the step size against steps (PNG, SVG or
        PDF by extension; PNG for ``"-"``, standard output). Needs matplotlib
        (``pip install descend[plot]``). The file is written like :meth:`to_csv` writes."""
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("History.plot needs matplotlib: pip install 'descend[plot]'") from exc
        target_kind(path, what="plot")  # refuse a directory before drawing anything
        fmt = Path(str(path)).suffix.lower().lstrip(".") or "png"
        fig = self._figure(plt, title)
        try:
            return write_output(path, lambda fh: fig.savefig(fh, dpi=110, format=fmt),
                                what="plot")
        finally:
            plt.close(fig)

    def _figure(self, plt: Any, title: str | None) -> Any:
        """The figure :meth:`plot` saves: loss; accuracy (train and validation, those
        measured) or the validation loss or the gradient norm; the step size."""
        fig, axes = plt.subplots(3, 1, figsize=(7, 8), sharex=True)
        steps = np.arange(1, self.steps + 1)
        ax = axes[0]
        ax.plot(steps, self.loss, lw=0.8, alpha=0.6, label="step loss")
        if self.epochs:
            ax.plot([e.step + 1 for e in self.epochs], [e.train_loss for e in self.epochs],
                    "o-", ms=3, label="epoch train loss")
            if self.epochs[0].val_loss is not None:
                ax.plot([e.step + 1 for e in self.epochs], [e.val_loss for e in self.epochs],
                        "s-", ms=3, label="validation loss")
        finite = [v for v in self.loss if math.isfinite(v) and v > 0]
        if finite and max(finite) / min(finite) > 100:
            ax.set_yscale("log")
        ax.set_ylabel("loss")
        ax.legend(fontsize=8)
        ax = axes[1]
        at = [e.step + 1 for e in self.epochs]
        train_acc = [e.train_accuracy for e in self.epochs]
        val_acc = [e.val_accuracy for e in self.epochs]
        if any(v is not None for v in train_acc + val_acc):
            if any(v is not None for v in train_acc):
                ax.plot(at, [np.nan if v is None else v for v in train_acc], "o-", ms=3,
                        label="train accuracy")
            if any(v is not None for v in val_acc):
                ax.plot(at, [np.nan if v is None else v for v in val_acc], "s-", ms=3,
                        label="validation accuracy")
            ax.set_ylabel("accuracy")
        elif self.epochs and self.epochs[0].val_loss is not None:
            ax.plot([e.step + 1 for e in self.epochs], [e.val_loss for e in self.epochs], "s-")
            ax.set_ylabel("validation loss")
        else:
            ax.plot(steps, self.grad_norm, lw=0.8)
            ax.set_yscale("log")
            ax.set_ylabel("gradient norm")
        ax.legend(fontsize=8) if ax.get_legend_handles_labels()[0] else None
        ax = axes[2]
        ax.plot(steps, self.lr, lw=0.8)
        if any(v > 0 for v in self.lr):
            ax.set_yscale("log")
        ax.set_ylabel("step size")
        ax.set_xlabel("step")
        fig.suptitle(title or (str(self.stop_reason) if self.stop_reason else "training"),
                     fontsize=9)
        fig.tight_layout()
        return fig
