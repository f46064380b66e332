"""fit(): epochs of mini-batches, one optimizer step each, recorded in a History.

The loop draws a batch (seeded shuffle), hands the optimizer a closure that runs the
forward pass on that batch, records what the step did, and asks the stopping criteria
whether to go on. Divergence is one of them (:class:`~descend.train.stopping.Divergence`:
a loss or gradient that is not finite, or a loss far above the first one); when it fires,
the loop puts back the last parameters that gave a finite loss. :func:`minimize` runs the
same loop on a closure with no data (``descend compare`` uses it).

Phases: :func:`fit` prepares (checks, the closures' source, probes, seeding, resuming),
then :class:`_Run` trains: ``epoch`` -> ``step`` (the optimizer's step, divergence,
step-level criteria, callbacks, Ctrl-C) -> ``end_epoch`` (the record, validation, the
best epoch, epoch-level criteria) -> ``save`` (checkpoints).
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import backend
from ..autodiff.graph import no_grad
from ..autodiff.tensor import Tensor, wrap
from ..checks import check_count
from ..data import check_arrays, iterate_batches, num_batches
from ..errors import CheckpointError, ConfigError, DataError, DTypeError, ShapeError
from ..optim.optimizer import Optimizer
from . import capture as _capture
from .checkpoint import (
    check_checkpoint_target,
    check_model_state,
    history_from_state,
    history_to_state,
    load_checkpoint,
    save_checkpoint,
)
from .history import Best, EpochRecord, History, StopReason
from .stopping import Divergence, StopWhen, with_no_progress_stop


class Callback:
    """Hooks called by :func:`fit`; override what you need. A hook returning True stops
    training with reason ``callback``; returning a :class:`StopReason` stops it with that
    reason. A plain callable ``f(history) -> bool | None`` is called at the end of every
    epoch. ``on_train_end`` is called once when training ends, for any reason (an
    exception included), e.g. to close a file."""

    def on_step_end(self, history: History, optimizer: Optimizer) -> bool | StopReason | None:
        return None

    def on_epoch_end(self, history: History, model: Any) -> bool | StopReason | None:
        return None

    def on_train_end(self, history: History, model: Any) -> None:
        return None


class _Tally:
    """Correct predictions on the training batches: counted from the outputs of the first
    forward pass of each step (at the step's starting parameters), never at line-search
    trial points. A step that reused a gradient from the previous step's search makes no
    forward pass at its start and is not counted. Each step only keeps its predicted
    classes; they are compared with the targets once per epoch."""

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


def _as_tensor(x: np.ndarray) -> Tensor:
    return wrap(x, False, None)


def evaluate(
    model: Any, loss_fn: Callable[..., Tensor], X: Any, y: Any, batch_size: int = 4096
) -> dict[str, float]:
    """Loss (mean over samples) and, for integer targets with 2-D outputs, accuracy, in
    evaluation mode and without recording a graph."""
    if not callable(model):
        raise TypeError(f"model must be callable, got {type(model).__name__}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
    batch_size = check_count("batch_size", batch_size)
    if y is None:
        raise DataError("evaluate needs the targets: y is None")
    X, y = check_arrays(X, y)
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    total = 0.0
    correct = 0
    classify = y.dtype.kind in "iu"
    try:
        with no_grad():
            for start in range(0, len(X), batch_size):
                xb, yb = X[start : start + batch_size], y[start : start + batch_size]
                out = model(_as_tensor(xb))
                total += float(loss_fn(out, yb).data.item()) * len(xb)
                if classify and out.ndim == 2:
                    correct += int((out.data.argmax(axis=1) == yb).sum())
    finally:
        if was_training and hasattr(model, "train"):
            model.train()
    metrics = {"loss": total / len(X)}
    if classify:
        metrics["accuracy"] = correct / len(X)
    return metrics


def fit(
    model: Any,
    loss_fn: Callable[..., Tensor],
    optimizer: Optimizer,
    data: tuple[Any, Any] | Iterable[tuple[Any, Any]],
    *,
    epochs: int = 10,
    batch_size: int | None = None,
    shuffle: bool = True,
    seed: int = 0,
    validation: tuple[Any, Any] | None = None,
    stop: StopWhen | None = None,
    callbacks: Sequence[Callback | Callable[[History], Any]] = (),
    progress: bool = True,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 1,
    resume: str | Path | None = None,
    keep_best: bool = False,
    validate_every: int = 1,
    config: dict[str, Any] | None = None,
    overwrite: bool = False,
    capture: bool = True,
) -> History:
    """Train ``model`` by minimising ``loss_fn(model(X), y)`` with ``optimizer``.

    Parameters
    ----------
    model : Module
        Called on a batch of inputs (a Tensor), returns outputs.
    loss_fn : callable
        ``loss_fn(outputs, targets) -> scalar Tensor`` (e.g. ``ds.nn.CrossEntropyLoss()``).
    optimizer : Optimizer
        Built over ``model.parameters()``.
    data : (X, y) arrays, or an iterable of (X_batch, y_batch)
        Arrays are checked first (shapes, dtypes, NaN/inf with their row and column);
        integer ``y`` means classification (accuracy is reported).
    epochs : int
        Passes over the data (``StopWhen`` may stop earlier).
    batch_size : int or None
        None: full-batch gradient descent; 1: single-sample SGD; else mini-batches.
    shuffle, seed : shuffling of the samples each epoch, and the seed of every random draw
        during training (shuffling, dropout: descend's global generator is seeded too).
    validation : (X, y), optional
        Evaluated every ``validate_every`` epochs: loss and, for classes, accuracy.
    stop : StopWhen, optional
        Convergence criteria; ``History.stop_reason`` says which one fired. Unless
        ``stop`` sets them, training also stops when no step can make progress at
        working precision: ``stalled`` after one epoch's worth of steps in a row of size 0
        (at least 2), and, with full batches, ``stationary`` at a gradient of exactly 0
        (see :func:`~descend.train.stopping.with_no_progress_stop`).
    callbacks : Callback objects or callables ``f(history)`` (end of each epoch).
    progress : bool
        A progress bar (epoch, loss, step size, throughput) when on a terminal.
    checkpoint : path, optional
        Write a checkpoint there every ``checkpoint_every`` epochs, at the end, and when
        training is interrupted (Ctrl-C): parameters, optimizer and step-rule state, random
        generator states, counters and the history, atomically (see ``checkpoint.py``).
    resume : path, optional
        Continue the run saved in this checkpoint. ``epochs`` counts from the start of the
        original run; the result is bit-identical to a run that was never interrupted.
    keep_best : bool
        Keep a copy of the parameters of the best epoch in ``history.best.state``.
    config : dict, optional
        JSON-able settings stored in checkpoints (the command line keeps its flags there).
    overwrite : bool
        Allow a fresh run (no ``resume``, or another checkpoint resumed) to replace an
        existing checkpoint at ``checkpoint``; refused by default, so a finished run is
        never lost to a new one by mistake.
    capture : bool
        Record the step once per batch shape and replay it (forward, backward, and the
        forward-only pass of line-search trials) without building a graph; bit-identical
        to ``capture=False``, which runs every step eagerly. Models that cannot be
        replayed exactly run eagerly either way (see ``descend.engine.captured``).

    Ctrl-C (SIGINT, in the main thread) finishes the current step, writes the checkpoint
    when one was asked for, and returns with stop reason ``interrupted``. A second Ctrl-C
    (any ``KeyboardInterrupt`` raised during training) interrupts at once: the History gets
    stop reason ``interrupted``, the checkpoint is written when the interruption fell
    between steps (not inside one, whose update may be half done), callbacks'
    ``on_train_end`` see the History, and the ``KeyboardInterrupt`` propagates carrying the
    History as its ``history`` attribute (the command line writes its report from it).

    Returns
    -------
    History
    """
    _check_settings(optimizer, stop, callbacks, epochs=epochs, validate_every=validate_every,
                    checkpoint_every=checkpoint_every)
    _check_model_parameters(model, optimizer)
    source = _source(model, loss_fn, data, batch_size, shuffle)
    held_out = None if validation is None else _validation_arrays(validation)
    if checkpoint is not None:
        check_checkpoint_target(checkpoint, resume=resume, overwrite=overwrite)
    if source.arrays is not None:
        _probe(model, loss_fn, *source.arrays, "training data")
        if held_out is not None:
            _probe(model, loss_fn, *held_out, "validation data")

    backend.manual_seed(seed)
    shuffle_rng = np.random.default_rng(seed)
    optimizer.steps_per_epoch = source.steps_per_epoch
    validate = None if held_out is None else (lambda: evaluate(model, loss_fn, *held_out))
    run = _Run(optimizer, with_no_progress_stop(stop, source.steps_per_epoch, source.same_batch),
               Divergence(), callbacks, source, shuffle_rng,
               model=model, validate=validate, validate_every=validate_every,
               keep_best=keep_best)
    if checkpoint is not None:
        run.saver = _Saver(Path(checkpoint), model, optimizer, config, seed)
    if resume is not None:
        run.history, run.start_epoch, run.skip = _resume(resume, model, optimizer, shuffle_rng)
        if run.start_epoch >= epochs:
            done = run.start_epoch
            run.history.stop_reason = StopReason(
                "epochs", f"the checkpoint already completed {done} of {epochs} epochs",
                run.history.steps - 1, done - 1, done, epochs)
            return run.history
    with _capture.installed(optimizer, capture):
        return run.train(epochs, progress, checkpoint_every)


def minimize(
    objective: Callable[[], Any],
    optimizer: Optimizer,
    *,
    stop: StopWhen,
    divergence: Divergence | None = None,
    callbacks: Sequence[Callback | Callable[[History], Any]] = (),
    progress: bool | str = False,
) -> History:
    """Minimise a closure's value with ``optimizer``: full-batch training with no data.

    Every step evaluates ``objective()`` (which returns the loss without calling backward,
    as in ``opt.step(closure)``); every epoch is one step, so ``stop`` may use any
    criterion, ``max_steps`` or ``max_epochs`` bounding the run. This is the loop of
    :func:`fit`, the same divergence rule and stop reasons included; ``descend compare``
    runs on it. ``progress``: True for a bar, or a label: a bar shown only once the run has
    lasted a second.
    """
    _check_settings(optimizer, stop, callbacks)
    if stop.max_steps is None and stop.max_epochs is None and stop.time_limit is None:
        raise ConfigError("minimize needs a budget: StopWhen(max_steps=...), max_epochs or "
                          "time_limit")
    budget = stop.max_epochs or stop.max_steps or 2**62
    source = _Source(lambda rng: [(objective, 1)], 1, same_batch=True)
    optimizer.steps_per_epoch = 1
    run = _Run(optimizer, stop, divergence or Divergence(), callbacks, source, None)
    return run.train(budget, progress, checkpoint_every=None)


def train_steps(
    optimizer: Optimizer,
    batches: Callable[[], Iterable[tuple[Callable[[], Any], int]]],
    *,
    epochs: int,
    steps_per_epoch: int | None = None,
    stop: StopWhen | None = None,
    callbacks: Sequence[Callback | Callable[[History], Any]] = (),
    progress: bool = False,
    validate: Callable[[], Mapping[str, float | None]] | None = None,
    same_batch: bool = False,
    model: Any = None,
) -> History:
    """The loop of :func:`fit` over closures the caller makes, for models descend does not
    hold itself (a PyTorch model, say).

    ``batches()`` is called once per epoch and yields, for each step, ``(closure, samples)``:
    a closure that runs the forward pass on one batch and returns the loss without calling
    backward, and the batch's number of samples. Stopping criteria, the divergence rule
    (which puts back the last parameters with a finite loss), Ctrl-C and the stop reasons
    are those of ``fit``, the no-progress stops included (``stalled``; ``stationary`` with
    ``same_batch``).

    ``validate()``, when given, is called after every epoch and returns the validation
    metrics ``{"loss": ..., "accuracy": ...}`` (accuracy may be absent or None): they are the
    epochs' ``val_loss`` and ``val_accuracy``, and drive ``patience``, ``History.best`` and
    rules driven by a metric, as ``fit``'s ``validation`` does. ``same_batch=True`` says
    that every closure evaluates the same objective (full-batch training), as ``fit`` knows
    from ``batch_size=None``. ``model`` is what callbacks' epoch hooks receive.
    """
    _check_settings(optimizer, stop, callbacks, epochs=epochs)
    if validate is not None and not callable(validate):
        raise TypeError(f"validate must be callable, got {type(validate).__name__}")
    optimizer.steps_per_epoch = steps_per_epoch
    source = _Source(lambda rng: batches(), steps_per_epoch, same_batch=bool(same_batch))
    run = _Run(optimizer, with_no_progress_stop(stop, steps_per_epoch, bool(same_batch)),
               Divergence(), callbacks, source, None, model=model, validate=validate)
    return run.train(epochs, progress, checkpoint_every=None)


# ------------------------------------------------------------------------------ preparing
def _check_settings(optimizer: Any, stop: Any, callbacks: Sequence[Any], **counts: Any) -> None:
    for name, value in counts.items():
        check_count(name, value)
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be a descend optimizer, got {type(optimizer).__name__}")
    if stop is not None and not isinstance(stop, StopWhen):
        raise TypeError(f"stop must be a StopWhen, got {type(stop).__name__}")
    for cb in callbacks:
        if not isinstance(cb, Callback) and not callable(cb):
            raise TypeError(f"callbacks must be Callback objects or callables, got {cb!r}")


def _check_model_parameters(model: Any, optimizer: Optimizer) -> None:
    """An optimizer built over parameters none of which are the model's would train
    nothing: refuse it (parameters beyond the model's, e.g. a loss's own, are fine)."""
    parameters = getattr(model, "parameters", None)
    if not callable(parameters):
        return
    mine = {id(p) for p in parameters()}
    if mine and not any(id(p) in mine for p in optimizer.params):
        raise ConfigError(
            f"the optimizer's {len(optimizer.params)} parameters are not the model's "
            f"({len(mine)} parameters): build it over model.parameters() of this model"
        )


@dataclass
class _Source:
    """Where the steps' closures come from: ``epoch(shuffle_rng)`` yields (closure, samples)
    for each step of an epoch. ``same_batch``: every step evaluates the same objective."""

    epoch: Callable[[Any], Iterable[tuple[Callable[[], Any], int]]]
    steps_per_epoch: int | None
    same_batch: bool = False
    arrays: tuple[np.ndarray, np.ndarray] | None = None
    tally: _Tally | None = None  # training accuracy, counted by the closures


def _source(model: Any, loss_fn: Callable[..., Tensor], data: Any, batch_size: int | None,
            shuffle: bool) -> _Source:
    """The closures of (X, y) arrays (full batch or shuffled mini-batches) or of an
    iterable of batches; with integer targets they count the training accuracy."""
    tally = _Tally()

    def closures(batches: Iterable[tuple[Any, Any]]) -> Iterator[tuple[Callable[[], Any], int]]:
        for i, (xb, yb) in enumerate(batches):
            if len(xb) == 0:
                raise DataError(f"batch {i} of the data is empty (0 samples): every batch needs "
                                "at least one sample")
            xt = xb if isinstance(xb, Tensor) else _as_tensor(np.asarray(xb))
            classes = getattr(yb, "dtype", None) is not None and yb.dtype.kind in "iu"
            yield _make_closure(model, loss_fn, xt, yb, tally if classes else None), len(xb)

    arrays = isinstance(data, tuple | list) and len(data) == 2 and not isinstance(data[0], tuple)
    if not arrays:
        if batch_size is not None:
            raise ConfigError("batch_size applies to (X, y) arrays, not to an iterable of batches")
        steps = len(data) if hasattr(data, "__len__") else None
        return _Source(lambda rng: closures(data), steps, tally=tally)
    X, y = check_arrays(data[0], data[1])
    if batch_size is None:  # one batch: one closure, the same objective every step
        full = list(closures([(X, y)]))
        return _Source(lambda rng: full, 1, same_batch=True, arrays=(X, y), tally=tally)
    return _Source(
        lambda rng: closures(iterate_batches(X, y, batch_size, shuffle=shuffle, rng=rng)),
        num_batches(len(X), batch_size), arrays=(X, y), tally=tally)


def _validation_arrays(validation: Any) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(validation, tuple | list) or len(validation) != 2:
        raise DataError("validation must be a pair (X, y)")
    try:
        return check_arrays(validation[0], validation[1])
    except DataError as exc:
        raise DataError(f"validation data: {exc}") from None


# ------------------------------------------------------------------------------ running
class _Run:
    """One training run, phase by phase: epochs of steps, then the end of each epoch.

    Only this loop undoes a step (when the divergence criterion fires); the criteria read
    the History alone.
    """

    def __init__(self, optimizer: Optimizer, stop: StopWhen, divergence: Divergence,
                 callbacks: Sequence[Any], source: _Source, shuffle_rng: Any, *,
                 model: Any = None,
                 validate: Callable[[], Mapping[str, float | None]] | None = None,
                 validate_every: int = 1, keep_best: bool = False):
        self.optimizer = optimizer
        self.stop = stop
        self.divergence = divergence
        self.callbacks = list(callbacks)
        self.source = source
        self.tally = source.tally
        self.per_step = stop.per_step  # whether any criterion is read after every step
        self.timed = stop.time_limit is not None
        self.shuffle_rng = shuffle_rng
        self.model = model
        self.validate = validate  # the validation metrics, {"loss", "accuracy"}
        self.validate_every = validate_every
        self.keep_best = keep_best
        self.history = History()
        self.start_epoch = 0
        self.skip = 0  # steps of the first epoch already done (resuming mid-epoch)
        self.saver: _Saver | None = None
        self.bar: Any = None
        self.interrupted: _InterruptFlag | None = None
        self.epoch_rng_state: Any = None
        self.steps_this_run = 0
        #: where a checkpoint may be taken now, (epoch, steps done in it): set after each
        #: completed step and epoch, None while a step or an epoch's end is under way
        self.resumable: tuple[int, int] | None = None
        self.in_step = False  # inside the optimizer's step, whose update may be half done

    def train(self, epochs: int, progress: bool | str, checkpoint_every: int | None) -> History:
        """Epochs until one of the criteria (or the epoch budget) stops training.
        ``progress``: a bar, or a string: a bar with that label, shown after one second."""
        history = self.history
        if isinstance(progress, str):
            self.bar = _progress_bar(True, epochs, 0, None, delay=1.0, desc=progress,
                                     total=self.stop.max_steps)
        else:
            self.bar = _progress_bar(progress, epochs, self.start_epoch,
                                     self.source.steps_per_epoch)
        self.interrupted = _InterruptFlag()
        self.limit = self.divergence.limit(history)  # NaN until the first step
        started, before = time.perf_counter(), history.seconds
        self.clock = lambda: before + time.perf_counter() - started
        if hasattr(self.model, "train"):
            self.model.train()
        reason: StopReason | None = None
        epoch = self.start_epoch
        try:
            for epoch in range(self.start_epoch, epochs):
                reason = self.epoch(epoch)
                if reason is not None:  # a step stopped training (and saved what it must)
                    if reason.criterion != "interrupted":
                        self.end_epoch(epoch, reason)
                    break
                reason = self.end_epoch(epoch, None)
                if reason is not None:
                    history.stop_reason = reason
                    self.save(epoch + 1, 0)
                    break
                if checkpoint_every and ((epoch + 1) % checkpoint_every == 0
                                         or epoch + 1 == epochs):
                    self.save(epoch + 1, 0)
            history.stop_reason = reason or StopReason(
                "epochs", f"completed {epochs} epochs ({history.steps} steps)",
                history.steps - 1, epoch, epochs, epochs)
        except KeyboardInterrupt as exc:
            self.interrupted_now(epoch)
            exc.history = history  # type: ignore[attr-defined]  # for the caller's report
            raise
        finally:
            self.interrupted.restore()
            if self.bar is not None:
                self.bar.close()
            history.seconds = self.clock()
            for cb in self.callbacks:
                if isinstance(cb, Callback):
                    cb.on_train_end(history, self.model)
        return history

    def interrupted_now(self, epoch: int) -> None:
        """A KeyboardInterrupt that the Ctrl-C flag did not catch (a second Ctrl-C, or one
        raised by a callback): name it in the History, and write the checkpoint when the
        state is one a run can resume from (between steps)."""
        history = self.history
        step = history.steps - 1
        if self.resumable is not None:
            history.stop_reason = StopReason(
                "interrupted", f"interrupted at step {step} (epoch {epoch})", step, epoch)
            self.save(*self.resumable)
            return
        if self.in_step:
            where = (f"during step {step + 1} (epoch {epoch}), which did not finish; the "
                     f"history ends at step {step}")
        else:
            where = f"in epoch {epoch} after step {step}, outside a step"
        unsaved = ("; no checkpoint was written for it (the last one written stands)"
                   if self.saver is not None else "")
        history.stop_reason = StopReason("interrupted", f"interrupted {where}{unsaved}",
                                         step, epoch)

    def epoch(self, epoch: int) -> StopReason | None:
        """The steps of one epoch; the reason when one of them stops training."""
        history = self.history
        self.epoch_start = time.perf_counter()
        self.epoch_rng_state = self.shuffle_rng.bit_generator.state if self.shuffle_rng else None
        batches = iter(self.source.epoch(self.shuffle_rng))
        per_epoch = self.source.steps_per_epoch
        if per_epoch is not None and self.skip > per_epoch:
            raise CheckpointError(f"the checkpoint says {self.skip} steps of epoch {epoch} were "
                                  f"done, but an epoch of this data has {per_epoch} steps")
        for _ in range(self.skip):  # resuming mid-epoch: the same batches, minus those done
            if next(batches, None) is None:
                raise CheckpointError(f"the checkpoint says {self.skip} steps of epoch {epoch} "
                                      "were done, but the data has fewer batches")
        self.first_step = history.steps - self.skip
        self.skip = 0
        self.samples = 0
        for closure, samples in batches:
            reason = self.step(closure, epoch)
            self.samples += samples
            if reason is not None:
                return reason
        return None

    def step(self, closure: Callable[[], Any], epoch: int) -> StopReason | None:
        """One optimizer step, recorded; then divergence and the step-level criteria."""
        history, optimizer = self.history, self.optimizer
        same = self.source.same_batch and self.steps_this_run > 0
        if self.tally is not None:
            self.tally.armed = True
        self.resumable = None
        self.in_step = True
        optimizer.step(closure, same_batch=same)
        self.steps_this_run += 1
        info = optimizer.last
        assert info is not None
        history.record_step(info.loss, info.lr, info.grad_norm, info.call_evaluations,
                            info.step_norm)
        self.in_step = False
        reason = None
        # the common case, a finite step below the divergence limit, costs two tests
        if not info.finite or info.loss > self.limit or self.limit != self.limit:
            reason = self.diverged(epoch)
        if reason is None and self.per_step:
            elapsed = self.clock() if self.timed else 0.0
            reason = self.stop.check_step(history, elapsed, epoch)
        if reason is None or reason.criterion != "diverged":
            self.resumable = (epoch, history.steps - self.first_step)
        step = len(history.loss) - 1
        for cb in self.callbacks:
            if isinstance(cb, Callback):
                said = cb.on_step_end(history, optimizer)
                if said and not reason:
                    reason = said if isinstance(said, StopReason) else StopReason(
                        "callback", f"stopped by {type(cb).__name__} at step {step}", step,
                        epoch)
        if self.bar is not None:
            self.bar.update(1)
        if reason is None and self.interrupted is not None and self.interrupted.raised:
            reason = StopReason("interrupted", f"interrupted at step {step} (epoch {epoch})",
                                step, epoch)
        if reason is not None and reason.criterion != "diverged":  # resumable from here
            history.stop_reason = reason
            self.save(epoch, history.steps - self.first_step)
        return reason

    def diverged(self, epoch: int) -> StopReason | None:
        """The divergence criterion; when it fires, the last good parameters come back."""
        reason = self.divergence.check(self.history, epoch)
        self.limit = self.divergence.limit(self.history)
        if reason is None:
            return None
        return Divergence.restored(reason, self.history, self.optimizer.undo())

    def end_epoch(self, epoch: int, reason: StopReason | None) -> StopReason | None:
        """Record the epoch (validation, best) and read the epoch-level criteria."""
        history = self.history
        steps_in_epoch = history.steps - self.first_step
        if steps_in_epoch == 0:
            raise DataError("the data yielded no batches")
        self.resumable = None
        record = _epoch_record(history, epoch, self.first_step,
                               time.perf_counter() - self.epoch_start)
        if self.tally is not None:
            record.train_accuracy = self.tally.take()
        if self.validate is not None and ((epoch + 1) % self.validate_every == 0 or reason):
            if reason is None or reason.criterion != "diverged":
                metrics = self.validate()
                record.val_loss = float(metrics["loss"])
                accuracy = metrics.get("accuracy")
                record.val_accuracy = None if accuracy is None else float(accuracy)
        history.epochs.append(record)
        _track_best(history, record, self.model, self.keep_best)
        _observe_metric(self.optimizer, record)
        if self.bar is not None:
            _describe(self.bar, record, self.samples / max(record.seconds, 1e-9))
        if reason is not None:
            return reason
        reason = self.stop.check_epoch(history, steps_in_epoch)
        for cb in self.callbacks:
            stop_now = (cb.on_epoch_end(history, self.model) if isinstance(cb, Callback)
                        else cb(history))
            if stop_now and reason is None:
                name = getattr(cb, "__name__", type(cb).__name__)
                reason = stop_now if isinstance(stop_now, StopReason) else StopReason(
                    "callback", f"stopped by {name} at epoch {epoch}", history.steps - 1, epoch)
        self.epoch_rng_state = self.shuffle_rng.bit_generator.state if self.shuffle_rng else None
        if reason is None or reason.criterion != "diverged":
            self.resumable = (epoch + 1, 0)
        return reason

    def save(self, epoch: int, steps_done: int) -> None:
        """A checkpoint, when one was asked for: resumable at (epoch, steps done in it)."""
        if self.saver is not None:
            self.saver.save(self.history, epoch, steps_done, self.epoch_rng_state)


class _Saver:
    """Writes the run's checkpoints (see ``checkpoint.py``)."""

    def __init__(self, path: Path, model: Any, optimizer: Optimizer,
                 config: dict[str, Any] | None, seed: int):
        self.path, self.model, self.optimizer = path, model, optimizer
        self.config, self.seed = config, seed

    def save(self, history: History, epoch: int, steps_done: int, epoch_rng_state: Any) -> None:
        _save(self.path, self.model, self.optimizer, history, epoch, steps_done,
              epoch_rng_state, self.config, self.seed)


def _probe(model: Any, loss_fn: Callable[..., Tensor], X: np.ndarray, y: np.ndarray,
           what: str) -> None:
    """Run one sample through the model and the loss before training (in evaluation mode,
    drawing nothing at random), and check integer labels against the model's outputs, so
    that a mismatch is reported before any step changes the parameters."""
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    try:
        with no_grad():
            try:
                out = model(_as_tensor(X[:1]))
                loss_fn(out, y[:1])
            except (ShapeError, DTypeError) as exc:
                raise type(exc)(f"{what} (X of shape {X.shape}, y of shape {y.shape}) does "
                                f"not fit the model or the loss: {exc}") from None
    finally:
        if was_training and hasattr(model, "train"):
            model.train()
    if y.dtype.kind in "iu" and getattr(out, "ndim", 0) == 2 and out.shape[1] > 1:
        classes = out.shape[1]
        bad = np.flatnonzero((y < 0) | (y >= classes))
        if bad.size:
            raise DataError(
                f"{what}: target {y[bad[0]]} is out of range for {classes} classes (the model "
                f"has {classes} outputs; row {bad[0]}; valid labels: 0..{classes - 1})"
            )


class _InterruptFlag:
    """Turns the first Ctrl-C into a flag read between steps (main thread only); a second
    Ctrl-C raises KeyboardInterrupt at once."""

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
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
            self.previous = None


def _module_rngs(model: Any) -> dict[str, np.random.Generator]:
    """The generators owned by the model's modules (e.g. seeded Dropout layers)."""
    named = getattr(model, "named_modules", None)
    if named is None:
        return {}
    return {name or "<root>": m.rng for name, m in named()
            if isinstance(getattr(m, "rng", None), np.random.Generator)}


def _save(path, model, optimizer, history, epoch, steps_done, epoch_rng_state, config, seed):
    payload = {
        "epoch": epoch,
        "steps_in_epoch": steps_done,
        "seed": seed,
        "epoch_rng": epoch_rng_state,
        "global_rng": backend.global_rng().bit_generator.state,
        "module_rngs": {k: g.bit_generator.state for k, g in _module_rngs(model).items()},
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "optimizer_type": type(optimizer).__name__,
        "history": history_to_state(history),
        "config": config or {},
    }
    save_checkpoint(path, payload)


def _resume(path, model, optimizer, shuffle_rng) -> tuple[History, int, int]:
    """Load a checkpoint into model and optimizer; returns (history, epoch, steps done)."""
    state = load_checkpoint(path)
    try:
        check_model_state(path, state["model"], model)
        if state["optimizer_type"] != type(optimizer).__name__:
            raise CheckpointError(
                f"checkpoint {path} was written by a {state['optimizer_type']} optimizer, "
                f"not {type(optimizer).__name__}"
            )
        rngs = _module_rngs(model)
        if set(rngs) != set(state["module_rngs"]):
            raise CheckpointError(f"checkpoint {path} does not match the model's random layers")
        for name, gen in rngs.items():  # each saved state fits its generator's kind
            type(gen.bit_generator)().state = state["module_rngs"][name]
        history = history_from_state(state["history"])
        previous = optimizer.state_dict()
        optimizer.load_state_dict(state["optimizer"])
    except (KeyError, TypeError) as exc:
        raise CheckpointError(f"checkpoint {path} is incomplete or malformed ({exc})") from None
    except (ValueError, IndexError) as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"checkpoint {path} does not fit this optimizer: {exc}") from None
    try:
        model.load_state_dict(state["model"])
    except Exception:
        optimizer.load_state_dict(previous)
        raise
    backend.global_rng().bit_generator.state = state["global_rng"]
    for name, gen in rngs.items():
        gen.bit_generator.state = state["module_rngs"][name]
    shuffle_rng.bit_generator.state = state["epoch_rng"]
    history.stop_reason = None
    return history, int(state["epoch"]), int(state["steps_in_epoch"])


def _make_closure(model: Any, loss_fn: Callable[..., Tensor], xt: Tensor, yb: Any,
                  tally: _Tally | None = None) -> _capture.Batch:
    # loss_fn(model(xt), yb), with its key for capture; the tally counts training accuracy
    return _capture.Batch(model, loss_fn, xt, yb, tally)


def _epoch_record(history: History, epoch: int, first: int, seconds: float) -> EpochRecord:
    losses = history.loss[first:]
    finite = [v for v in losses if math.isfinite(v)]
    mean = sum(finite) / len(finite) if finite else math.nan
    return EpochRecord(epoch=epoch, step=history.steps - 1, train_loss=mean,
                       lr=history.lr[-1], seconds=seconds)


def _track_best(history: History, record: EpochRecord, model: Any, keep: bool) -> None:
    value = record.val_loss if record.val_loss is not None else record.train_loss
    if not math.isfinite(value):
        return
    if history.best is None or value < history.best.loss:
        state = None
        if keep and hasattr(model, "state_dict"):
            state = {k: np.array(v, copy=True) for k, v in model.state_dict().items()}
        history.best = Best(record.epoch, record.step, value, state)


def _observe_metric(optimizer: Optimizer, record: EpochRecord) -> None:
    """Feed step rules driven by a metric (``ReduceOnPlateau``): the epoch's validation
    loss, else its training loss."""
    metric = record.val_loss if record.val_loss is not None else record.train_loss
    seen: set[int] = set()
    for group in optimizer.param_groups:
        rule = group["rule"]
        if id(rule) not in seen and hasattr(rule, "observe"):
            seen.add(id(rule))
            rule.observe(metric)


def _progress_bar(progress: bool, epochs: int, start: int, steps_per_epoch: int | None,
                  *, delay: float = 0.0, total: int | None = None, desc: str | None = None):
    if not progress:
        return None
    from tqdm.auto import tqdm

    if total is None and steps_per_epoch is not None:
        total = (epochs - start) * steps_per_epoch
    # disable=None: shown on a terminal, silent when output is a file or a pipe; a delay
    # shows it only for runs that last longer than that
    return tqdm(total=total, unit="step", disable=None, dynamic_ncols=True, leave=delay == 0,
                mininterval=0.2, delay=delay, desc=desc)


def _describe(bar: Any, record: EpochRecord, throughput: float) -> None:
    parts = {"epoch": record.epoch + 1, "loss": f"{record.train_loss:.4g}",
             "lr": f"{record.lr:.3g}"}
    if record.val_accuracy is not None:
        parts["val_acc"] = f"{record.val_accuracy:.3f}"
    elif record.val_loss is not None:
        parts["val_loss"] = f"{record.val_loss:.4g}"
    parts["samples/s"] = f"{throughput:,.0f}"
    bar.set_postfix(parts, refresh=False)
