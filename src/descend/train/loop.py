"""fit(): epochs of mini-batches, one optimizer step each, recorded in a History.

The loop draws a batch (seeded shuffle), hands the optimizer a closure that runs the
forward pass on that batch, records what the step did, and asks the stopping criteria
whether to go on. Divergence is one of them (:class:`~descend.train.stopping.Divergence`:
a loss or gradient that is not finite, or a loss far above the first one); when it fires,
the loop puts back the last parameters that gave a finite loss. :func:`minimize` runs the
same loop on a closure with no data (``descend compare`` uses it).

Phases: :func:`fit` prepares (checks, the steps' source, probes, seeding, resuming),
then :class:`_Run` trains: ``epoch`` -> ``step`` (the optimizer's step, divergence,
step-level criteria, callbacks, Ctrl-C) -> ``end_epoch`` (the record, validation, the
best epoch, epoch-level criteria) -> ``save`` (checkpoints). What the loop reads and
writes lives beside it: ``source`` (the steps' closures), ``metrics`` (evaluation, the
training accuracy, the epoch's record), ``checkpoint`` (the run's state), ``callbacks``,
``console`` (the progress bar, Ctrl-C) and ``stopping`` (the criteria).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import backend
from ..autodiff.tensor import Tensor
from ..errors import ConfigError, DataError
from ..optim.optimizer import Optimizer
from . import capture as _capture
from .callbacks import Callback, Callbacks, after_epoch, after_step, at_train_end
from .checkpoint import Checkpointer, RunState, check_checkpoint_target, restore_run, skip_done
from .console import InterruptFlag, describe, interrupted, interrupted_midway, progress_bar
from .history import History, StopReason
from .metrics import (
    ModeSwitching,
    Tally,
    epoch_record,
    evaluate,
    evaluation_mode,
    probe,
    tell_rules,
)
from .source import (
    Source,
    check_model_parameters,
    check_settings,
    source_of,
    validation_arrays,
)
from .stopping import Divergence, StopWhen, with_no_progress_stop

__all__ = ["Callback", "fit", "minimize", "train_steps"]  # Callback: compare.py imports it here

#: the validation metrics of a run, ``validate() -> {"loss": ..., "accuracy": ...}``
Validate = Callable[[], Mapping[str, float | None]]


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
    callbacks: Callbacks = (),
    progress: bool = True,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 1,
    resume: str | Path | None = None,
    keep_best: bool = False,
    validate_every: int = 1,
    config: dict[str, Any] | None = None,
    overwrite: bool = False,
    capture: bool = True,
    report: str | Path | None = None,
) -> History:
    """Train ``model`` by minimising ``loss_fn(model(X), y)`` with ``optimizer``.

    Parameters
    ----------
    model : Module
        Called on a batch of inputs (a Tensor), returns outputs.
    loss_fn : callable
        ``loss_fn(outputs, targets) -> scalar Tensor`` (e.g. ``ds.nn.CrossEntropyLoss()``).
    optimizer : Optimizer
        Built over ``model.parameters()``. One with an evaluation point of its own
        (Schedule-Free's average x, a :class:`~descend.train.metrics.ModeSwitching`) is in
        evaluation mode while each epoch ends (validation, ``keep_best``'s copy, the
        callbacks' epoch hooks) and when ``fit`` returns: the model then holds x.
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
    report : path, optional
        Write one self-contained HTML page explaining the run there (``.html``): the data,
        the model, the first step walked through (its graph with gradients, direction,
        line search, update), the whole run from the History, why it stopped
        (:mod:`descend.plot.report`; needs matplotlib). The first step is taken once for
        the report on the first batch and undone, so the History is the one a run without
        a report gives. Not with ``resume``.

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
    check_settings(optimizer, stop, callbacks, epochs=epochs, validate_every=validate_every,
                    checkpoint_every=checkpoint_every)
    check_model_parameters(model, optimizer)
    source = source_of(model, loss_fn, data, batch_size, shuffle)
    held_out = None if validation is None else validation_arrays(validation)
    if checkpoint is not None:
        check_checkpoint_target(checkpoint, resume=resume, overwrite=overwrite)
    if report is not None:
        report = _report_target(report, resume, data if source.arrays is None else None)
    if source.arrays is not None:
        probe(model, loss_fn, *source.arrays, "training data")
        if held_out is not None:
            probe(model, loss_fn, *held_out, "validation data")

    backend.manual_seed(seed)
    shuffle_rng = np.random.default_rng(seed)
    resumed = None if resume is None else restore_run(resume, model, optimizer, shuffle_rng)
    validate = None if held_out is None else (lambda: evaluate(model, loss_fn, *held_out))
    saver = (None if checkpoint is None
             else Checkpointer(Path(checkpoint), model, optimizer, config, seed))
    run = _Run(optimizer, with_no_progress_stop(stop, source.steps_per_epoch, source.same_batch),
               Divergence(), callbacks, source, shuffle_rng,
               model=model, validate=validate, validate_every=validate_every,
               keep_best=keep_best, saver=saver, resumed=resumed)
    if resumed is not None and resumed.epoch >= epochs:
        done = resumed.epoch
        run.history.stop_reason = StopReason(
            "epochs", f"the checkpoint already completed {done} of {epochs} epochs",
            run.history.steps - 1, done - 1, done, epochs)
        return run.history
    walk = None
    if report is not None:
        from ..plot.report import walk_first_step

        # the first step's closure: what the first epoch's shuffle (a generator seeded as
        # the run's own) gives first; its tally is not armed, so it counts nothing
        first, _ = next(iter(source.epoch(np.random.default_rng(seed))))
        walk = walk_first_step(model, optimizer, first)
    with _capture.installed(optimizer, capture):
        history = run.train(epochs, progress, checkpoint_every)
    if walk is not None:
        from ..plot.report import write_report

        write_report(report, walk, history, optimizer=optimizer)  # type: ignore[arg-type]
    return history


def _report_target(report: Any, resume: Any, batches: Any) -> Path:
    """``fit``'s report path, checked before anything runs (``batches``: the data when it
    is an iterable of batches, whose first must be readable twice).

    The report is output drawn by ``descend.plot``, which sits above training: imported
    here only when a report is asked for, the one import of this layer that reaches up
    (as ``History.plot`` reaches matplotlib)."""
    if resume is not None:
        raise ConfigError("report= explains a run from its first step; it cannot be combined "
                          "with resume=")
    if batches is not None and not isinstance(batches, Sequence):
        raise ConfigError("report needs (X, y) arrays or a list of batches: an iterator of "
                          "batches cannot be read once for the report and again for training")
    from ..plot.report import check_report_target

    return check_report_target(report)


def minimize(
    objective: Callable[[], Any],
    optimizer: Optimizer,
    *,
    stop: StopWhen,
    divergence: Divergence | None = None,
    callbacks: Callbacks = (),
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
    check_settings(optimizer, stop, callbacks)
    if stop.max_steps is None and stop.max_epochs is None and stop.time_limit is None:
        raise ConfigError("minimize needs a budget: StopWhen(max_steps=...), max_epochs or "
                          "time_limit")
    budget = stop.max_epochs or stop.max_steps or 2**62
    source = Source(lambda rng: [(objective, 1)], 1, same_batch=True)
    run = _Run(optimizer, stop, divergence or Divergence(), callbacks, source, None)
    return run.train(budget, progress, checkpoint_every=None)


def train_steps(
    optimizer: Optimizer,
    batches: Callable[[], Iterable[tuple[Callable[[], Any], int]]],
    *,
    epochs: int,
    steps_per_epoch: int | None = None,
    stop: StopWhen | None = None,
    callbacks: Callbacks = (),
    progress: bool = False,
    validate: Validate | None = None,
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
    check_settings(optimizer, stop, callbacks, epochs=epochs)
    if validate is not None and not callable(validate):
        raise TypeError(f"validate must be callable, got {type(validate).__name__}")
    source = Source(lambda rng: batches(), steps_per_epoch, same_batch=bool(same_batch))
    run = _Run(optimizer, with_no_progress_stop(stop, steps_per_epoch, bool(same_batch)),
               Divergence(), callbacks, source, None, model=model, validate=validate)
    return run.train(epochs, progress, checkpoint_every=None)


# ------------------------------------------------------------------------------ running
class _Run:
    """One training run, phase by phase: epochs of steps, then the end of each epoch.

    Only this loop undoes a step (when the divergence criterion fires); the criteria read
    the History alone. Constructing a run tells the optimizer the steps per epoch: the one
    place the loop sets them.
    """

    def __init__(self, optimizer: Optimizer, stop: StopWhen, divergence: Divergence,
                 callbacks: Callbacks, source: Source, shuffle_rng: np.random.Generator | None,
                 *, model: Any = None, validate: Validate | None = None,
                 validate_every: int = 1, keep_best: bool = False,
                 saver: Checkpointer | None = None, resumed: RunState | None = None):
        optimizer.steps_per_epoch = source.steps_per_epoch
        self.optimizer = optimizer
        self.stop = stop
        self.divergence = divergence
        self.callbacks = list(callbacks)
        self.source = source
        self.tally: Tally | None = source.tally
        self.per_step = stop.per_step  # whether any criterion is read after every step
        self.timed = stop.time_limit is not None
        self.shuffle_rng = shuffle_rng
        self.model = model
        self.validate = validate
        self.validate_every = validate_every
        self.keep_best = keep_best
        self.saver = saver
        self.history = History() if resumed is None else resumed.history
        self.start_epoch = 0 if resumed is None else resumed.epoch
        #: steps of the first epoch already done (resuming mid-epoch)
        self.skip = 0 if resumed is None else resumed.steps_in_epoch
        self.limit = divergence.limit(self.history)  # the divergence limit; NaN before a step
        self.bar: Any = None  # the progress bar, while training
        self.interrupted: InterruptFlag | None = None  # the Ctrl-C flag, while training
        self.started = 0.0  # when training started (time.perf_counter())
        self.seconds_before = self.history.seconds  # training time of a resumed run
        self.epoch_rng_state: dict[str, Any] | None = None  # the shuffle at the epoch's start
        self.epoch_start = 0.0  # when the epoch under way started
        self.first_step = 0  # the index of its first step
        self.samples = 0  # the samples of its steps so far
        self.steps_this_run = 0
        #: where a checkpoint may be taken now, (epoch, steps done in it): set after each
        #: completed step and epoch, None while a step or an epoch's end is under way
        self.resumable: tuple[int, int] | None = None
        self.in_step = False  # inside the optimizer's step, whose update may be half done

    def elapsed(self) -> float:
        """Seconds of training, those before a resume included."""
        return self.seconds_before + time.perf_counter() - self.started

    def train(self, epochs: int, progress: bool | str, checkpoint_every: int | None) -> History:
        """Epochs until one of the criteria (or the epoch budget) stops training.
        ``progress``: a bar, or a string: a bar with that label, shown after one second."""
        history = self.history
        if isinstance(progress, str):
            self.bar = progress_bar(True, epochs, 0, None, delay=1.0, desc=progress,
                                    total=self.stop.max_steps)
        else:
            self.bar = progress_bar(progress, epochs, self.start_epoch,
                                    self.source.steps_per_epoch)
        self.interrupted = InterruptFlag()
        self.started = time.perf_counter()
        if isinstance(self.model, ModeSwitching):
            self.model.train()
        if isinstance(self.optimizer, ModeSwitching):  # Schedule-Free: gradients at y
            self.optimizer.train()
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
            history.seconds = self.elapsed()
            if isinstance(self.optimizer, ModeSwitching):  # the model holds the average x
                self.optimizer.eval()
            at_train_end(self.callbacks, history, self.model)
        return history

    def interrupted_now(self, epoch: int) -> None:
        """A KeyboardInterrupt that the Ctrl-C flag did not catch (a second Ctrl-C, or one
        raised by a callback): name it in the History, and write the checkpoint when the
        state is one a run can resume from (between steps)."""
        if self.resumable is not None:
            self.history.stop_reason = interrupted(self.history, epoch)
            self.save(*self.resumable)
        else:
            self.history.stop_reason = interrupted_midway(
                self.history, epoch, in_step=self.in_step, unsaved=self.saver is not None)

    def epoch(self, epoch: int) -> StopReason | None:
        """The steps of one epoch; the reason when one of them stops training."""
        self.epoch_start = time.perf_counter()
        self.epoch_rng_state = self.shuffle_rng.bit_generator.state if self.shuffle_rng else None
        batches = iter(self.source.epoch(self.shuffle_rng))
        skip_done(batches, self.skip, self.source.steps_per_epoch, epoch)
        self.first_step = self.history.steps - self.skip
        self.skip = 0
        self.samples = 0
        for closure, samples in batches:
            reason = self.step(closure, epoch)
            self.samples += samples
            if reason is not None:
                return reason
        return None

    def step(self, closure: Callable[[], Any], epoch: int) -> StopReason | None:
        """One optimizer step, recorded; then divergence, the step-level criteria, the
        callbacks and Ctrl-C."""
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
            elapsed = self.elapsed() if self.timed else 0.0
            reason = self.stop.check_step(history, elapsed, epoch)
        if reason is None or reason.criterion != "diverged":
            self.resumable = (epoch, history.steps - self.first_step)
        reason = after_step(self.callbacks, history, optimizer, epoch, reason)
        if self.bar is not None:
            self.bar.update(1)
        if reason is None and self.interrupted is not None and self.interrupted.raised:
            reason = interrupted(history, epoch)
        if reason is not None and reason.criterion != "diverged":  # resumable from here
            history.stop_reason = reason
            self.save(epoch, history.steps - self.first_step)
        return reason

    def diverged(self, epoch: int) -> StopReason | None:
        """The divergence criterion; when it fires, the last good parameters come back."""
        reason = self.divergence.check(self.history, epoch)
        self.limit = self.divergence.limit(self.history)
        # a step starting above the limit makes no update, so that undoing takes back the
        # update that led there: the run ends on the last parameters with a good loss
        self.optimizer.loss_limit = self.limit
        if reason is None:
            return None
        info = self.optimizer.last
        return Divergence.restored(reason, self.history, self.optimizer.undo(),
                                   updated=info is None or info.updated)

    def end_epoch(self, epoch: int, reason: StopReason | None) -> StopReason | None:
        """Record the epoch (validation, best) and read the epoch-level criteria, with an
        optimizer that has an evaluation point (Schedule-Free's x) switched to it: the
        validation, the best epoch's copy and the callbacks see the model there."""
        with evaluation_mode(self.optimizer):
            return self._end_epoch(epoch, reason)

    def _end_epoch(self, epoch: int, reason: StopReason | None) -> StopReason | None:
        history = self.history
        steps_in_epoch = history.steps - self.first_step
        if steps_in_epoch == 0:
            raise DataError("the data yielded no batches")
        self.resumable = None
        record = epoch_record(history, epoch, self.first_step,
                              time.perf_counter() - self.epoch_start)
        if self.tally is not None:
            record.train_accuracy = self.tally.take()
        if self.validate is not None and ((epoch + 1) % self.validate_every == 0 or reason):
            if reason is None or reason.criterion != "diverged":
                record.set_validation(self.validate())
        history.add_epoch(record, self.model if self.keep_best else None)
        tell_rules(self.optimizer, record.metric)
        if self.bar is not None:
            describe(self.bar, record, self.samples / max(record.seconds, 1e-9))
        if reason is not None:
            return reason
        reason = self.stop.check_epoch(history, steps_in_epoch)
        reason = after_epoch(self.callbacks, history, self.model, epoch, reason)
        self.epoch_rng_state = self.shuffle_rng.bit_generator.state if self.shuffle_rng else None
        if reason is None or reason.criterion != "diverged":
            self.resumable = (epoch + 1, 0)
        return reason

    def save(self, epoch: int, steps_done: int) -> None:
        """A checkpoint, when one was asked for: resumable at (epoch, steps done in it)."""
        if self.saver is not None:
            self.saver.save(self.history, epoch, steps_done, self.epoch_rng_state)

