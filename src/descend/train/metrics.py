"""What a run measures beside the loss it minimises.

:func:`evaluate` (held-out data, in evaluation mode, without a graph); :class:`Tally`
(the training accuracy, counted from the steps' own forward passes); :func:`epoch_record`
(an epoch's summary of the steps it took); :func:`tell_rules` (the epoch's metric, to
the step rules driven by one); :func:`probe` (one sample through the model and
the loss before training, so that data that do not fit are refused before any step).

A model that has training and evaluation modes is a :class:`ModeSwitching` (``nn.Module``
is, and so is a PyTorch module); :func:`evaluation_mode` switches it for a block. So is an
optimizer whose parameters differ between the two (Schedule-Free: gradients at y, the model
evaluated at the average x), which the loop switches around the end of each epoch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..autodiff.graph import no_grad
from ..autodiff.tensor import Tensor, wrap
from ..checks import check_count
from ..data import check_arrays
from ..errors import DataError, DTypeError, ShapeError
from ..optim.optimizer import Optimizer
from ..optim.rules.base import MetricObserver
from .history import EpochRecord, History


@runtime_checkable
class ModeSwitching(Protocol):
    """A model with a training mode and an evaluation mode (dropout off), as
    ``nn.Module`` and ``torch.nn.Module`` have; or an optimizer whose parameters hold another
    point for evaluation than for training (``descend.optim.ScheduleFree``: ``eval()`` puts
    the average x in the parameters, ``train()`` the point y where gradients are taken)."""

    #: whether the model is in training mode
    training: bool

    def train(self, mode: bool = True) -> Any: ...

    def eval(self) -> Any: ...


@contextmanager
def evaluation_mode(model: Any) -> Iterator[None]:
    """Run the block with ``model`` (or an optimizer with modes) in evaluation mode, then put
    back training mode if it was on (also when the block raises); anything without modes is
    left alone."""
    switching = isinstance(model, ModeSwitching)
    was_training = switching and model.training
    if switching:
        model.eval()
    try:
        yield
    finally:
        if was_training:
            model.train()


def as_input(x: np.ndarray) -> Tensor:
    """A batch of inputs as a Tensor that records no gradient (no copy, no check)."""
    return wrap(x, False, None)


def evaluate(
    model: Any, loss_fn: Callable[..., Tensor], X: Any, y: Any, batch_size: int = 4096
) -> dict[str, float]:
    """Loss (mean over samples) and, for integer targets with 2-D outputs, accuracy, in
    evaluation mode and without recording a graph.

    Parameters
    ----------
    model : callable
        Called on a batch of inputs (a Tensor of shape (batch, ...)).
    loss_fn : callable
        ``loss_fn(outputs, targets) -> scalar Tensor``: the mean over the batch.
    X, y : arrays
        Inputs and targets, checked as ``fit`` checks its data.
    batch_size : int
        Samples per forward pass; the loss is the mean over all samples,
        ``sum_b loss_b * n_b / n``.

    Returns
    -------
    dict
        ``{"loss": float}``, plus ``"accuracy"`` (argmax of the outputs equal to the
        target) when ``y`` holds integers.
    """
    if not callable(model):
        raise TypeError(f"model must be callable, got {type(model).__name__}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
    batch_size = check_count("batch_size", batch_size)
    if y is None:
        raise DataError("evaluate needs the targets: y is None")
    X, y = check_arrays(X, y)
    total = 0.0
    correct = 0
    classify = y.dtype.kind in "iu"
    with evaluation_mode(model), no_grad():
        for start in range(0, len(X), batch_size):
            xb, yb = X[start : start + batch_size], y[start : start + batch_size]
            out = model(as_input(xb))
            total += float(loss_fn(out, yb).data.item()) * len(xb)
            if classify and out.ndim == 2:
                correct += int((out.data.argmax(axis=1) == yb).sum())
    metrics = {"loss": total / len(X)}
    if classify:
        metrics["accuracy"] = correct / len(X)
    return metrics


class Tally:
    """Correct predictions on the training batches: counted from the outputs of the first
    forward pass of each step (at the step's starting parameters), never at line-search
    trial points. A step that reused a gradient from the previous step's search makes no
    forward pass at its start and is not counted. Each step only keeps its predicted
    classes; they are compared with the targets once per epoch.

    The loop sets ``armed`` before each step; the step's closure calls :meth:`count`
    with its first outputs, which disarms it.
    """

    __slots__ = ("armed", "predicted", "targets")

    def __init__(self) -> None:
        self.armed = False
        self.predicted: list[np.ndarray] = []
        self.targets: list[np.ndarray] = []

    def count(self, out: Any, y: np.ndarray) -> None:
        """Count the outputs ``out`` (a Tensor, or the array a replayed step computed)."""
        self.armed = False
        data = out if isinstance(out, np.ndarray) else getattr(out, "data", None)
        if isinstance(data, np.ndarray) and data.ndim == 2 and data.shape[1] > 1:
            self.predicted.append(data.argmax(axis=1))
            self.targets.append(y)

    def take(self) -> float | None:
        """The epoch's accuracy (None when nothing was counted); starts a new epoch."""
        if not self.predicted:
            return None
        hits = np.count_nonzero(np.concatenate(self.predicted) == np.concatenate(self.targets))
        value = hits / sum(len(p) for p in self.predicted)
        self.predicted, self.targets = [], []
        return value


def epoch_record(history: History, epoch: int, first: int, seconds: float) -> EpochRecord:
    """The record of an epoch whose steps start at ``first``: its training loss is the mean
    of those steps' finite losses (NaN when none is finite), its ``lr`` the last step's."""
    losses = history.loss[first:]
    finite = [v for v in losses if math.isfinite(v)]
    mean = sum(finite) / len(finite) if finite else math.nan
    return EpochRecord(epoch=epoch, step=history.steps - 1, train_loss=mean,
                       lr=history.lr[-1], seconds=seconds)


def probe(model: Any, loss_fn: Callable[..., Tensor], X: np.ndarray, y: np.ndarray,
          what: str) -> None:
    """Run one sample through the model and the loss before training (in evaluation mode,
    drawing nothing at random), and check integer labels against the model's outputs, so
    that a mismatch is reported before any step changes the parameters.

    Raises
    ------
    ShapeError, DTypeError
        The sample does not fit the model or the loss (``what`` and the shapes named).
    DataError
        A label is out of range for the model's number of outputs (row and value named).
    """
    with evaluation_mode(model), no_grad():
        try:
            out = model(as_input(X[:1]))
            loss_fn(out, y[:1])
        except (ShapeError, DTypeError) as exc:
            raise type(exc)(f"{what} (X of shape {X.shape}, y of shape {y.shape}) does "
                            f"not fit the model or the loss: {exc}") from None
    if y.dtype.kind in "iu" and getattr(out, "ndim", 0) == 2 and out.shape[1] > 1:
        classes = out.shape[1]
        bad = np.flatnonzero((y < 0) | (y >= classes))
        if bad.size:
            raise DataError(
                f"{what}: target {y[bad[0]]} is out of range for {classes} classes (the model "
                f"has {classes} outputs; row {bad[0]}; valid labels: 0..{classes - 1})"
            )


def tell_rules(optimizer: Optimizer, metric: float) -> None:
    """Tell each step rule driven by a metric (a
    :class:`~descend.optim.rules.base.MetricObserver`, e.g. ``ReduceOnPlateau``) the
    epoch's metric, once per rule however many groups share it."""
    seen: set[int] = set()
    for group in optimizer.param_groups:
        rule = group["rule"]
        if id(rule) not in seen and isinstance(rule, MetricObserver):
            seen.add(id(rule))
            rule.observe(metric)
