"""fit(): epochs of mini-batches, one optimizer step each, recorded in a History.

The loop draws a batch (seeded shuffle), hands the optimizer a closure that runs the
forward pass on that batch, records what the step did, and asks the stopping criteria
whether to go on. A step whose loss or gradient is not finite, or whose loss exceeds a
million times the first, stops training with reason ``diverged`` and puts back the last
parameters that gave a finite loss.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import backend
from ..autodiff.graph import no_grad
from ..autodiff.tensor import Tensor, wrap
from ..data import check_arrays, iterate_batches, num_batches
from ..errors import CheckpointError, ConfigError, DataError, DTypeError, ShapeError
from ..optim.optimizer import Optimizer
from ..optim.steps import Constant
from .checkpoint import (
    check_model_state,
    history_from_state,
    history_to_state,
    load_checkpoint,
    save_checkpoint,
)
from .history import Best, EpochRecord, History, StopReason
from .stopping import StopWhen

#: A loss this many times the first one counts as divergence.
DIVERGENCE_FACTOR = 1e6


class Callback:
    """Hooks called by :func:`fit`; override what you need. A hook returning True stops
    training with reason ``callback``. A plain callable ``f(history) -> bool | None`` is
    called at the end of every epoch."""

    def on_step_end(self, history: History, optimizer: Optimizer) -> bool | None:
        return None

    def on_epoch_end(self, history: History, model: Any) -> bool | None:
        return None


def _as_tensor(x: np.ndarray) -> Tensor:
    return wrap(x, False, None)


def evaluate(
    model: Any, loss_fn: Callable[..., Tensor], X: Any, y: Any, batch_size: int = 4096
) -> dict[str, float]:
    """Loss (mean over samples) and, for integer targets with 2-D outputs, accuracy, in
    evaluation mode and without recording a graph."""
    X = np.asarray(X)
    y = np.asarray(y)
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
                total += float(loss_fn(out, yb).data) * len(xb)
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
        Convergence criteria; ``History.stop_reason`` says which one fired.
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

    Ctrl-C (SIGINT, in the main thread) finishes the current step, writes the checkpoint
    when one was asked for, and returns with stop reason ``interrupted``; a second Ctrl-C
    interrupts at once.

    Returns
    -------
    History
    """
    for name, value in (("epochs", epochs), ("validate_every", validate_every),
                        ("checkpoint_every", checkpoint_every)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be an int >= 1, got {value!r}")
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be a descend optimizer, got {type(optimizer).__name__}")
    if stop is not None and not isinstance(stop, StopWhen):
        raise TypeError(f"stop must be a StopWhen, got {type(stop).__name__}")
    stop = stop or StopWhen()

    arrays = isinstance(data, tuple | list) and len(data) == 2 and not isinstance(data[0], tuple)
    if arrays:
        X, y = check_arrays(data[0], data[1])
        steps_per_epoch = num_batches(len(X), batch_size)
        batches_of: Callable[[], Iterable[tuple[Any, Any]]]
        if batch_size is None:
            full = [(X, y)]
            batches_of = lambda: full  # noqa: E731 - one batch, the same closure each step
        else:
            batches_of = lambda: iterate_batches(  # noqa: E731
                X, y, batch_size, shuffle=shuffle, rng=shuffle_rng
            )
    else:
        if batch_size is not None:
            raise ConfigError("batch_size applies to (X, y) arrays, not to an iterable of batches")
        batch_list = data
        steps_per_epoch = len(data) if hasattr(data, "__len__") else None  # type: ignore[arg-type]
        batches_of = lambda: batch_list  # noqa: E731
    if validation is not None:
        if not isinstance(validation, tuple | list) or len(validation) != 2:
            raise DataError("validation must be a pair (X, y)")
        try:
            Xv, yv = check_arrays(validation[0], validation[1])
        except DataError as exc:
            raise DataError(f"validation data: {exc}") from None
    for cb in callbacks:
        if not isinstance(cb, Callback) and not callable(cb):
            raise TypeError(f"callbacks must be Callback objects or callables, got {cb!r}")
    if checkpoint is not None:
        _check_checkpoint_path(Path(checkpoint))
    if arrays:
        _probe(model, loss_fn, X, y, "training data")
        if validation is not None:
            _probe(model, loss_fn, Xv, yv, "validation data")

    backend.manual_seed(seed)
    shuffle_rng = np.random.default_rng(seed)
    optimizer.steps_per_epoch = steps_per_epoch
    history = History()
    start_epoch, skip = 0, 0
    if resume is not None:
        history, start_epoch, skip = _resume(resume, model, optimizer, shuffle_rng)
        if start_epoch >= epochs:
            history.stop_reason = StopReason(
                "epochs", f"the checkpoint already completed {start_epoch} of {epochs} epochs",
                history.steps - 1, start_epoch - 1, start_epoch, epochs)
            return history
    epoch_rng_state = shuffle_rng.bit_generator.state

    def save(epoch_index: int, steps_done: int) -> None:
        if checkpoint is not None:
            _save(checkpoint, model, optimizer, history, epoch_index, steps_done,
                  epoch_rng_state, config, seed)

    interrupted = _InterruptFlag()
    bar = _progress_bar(progress, epochs, start_epoch, steps_per_epoch)
    started = time.perf_counter()
    elapsed_before = history.seconds
    if hasattr(model, "train"):
        model.train()
    reason: StopReason | None = None
    epoch = start_epoch
    explode_at = _explosion_limit(history)  # NaN until the first step is recorded
    step_criteria = stop.max_steps is not None or stop.time_limit is not None
    full_batch_closure: dict[int, Callable[[], Tensor]] = {}
    try:
        for epoch in range(start_epoch, epochs):
            epoch_start = time.perf_counter()
            epoch_rng_state = shuffle_rng.bit_generator.state
            batches = iter(batches_of())
            for _ in range(skip):  # resuming mid-epoch: the same batches, minus those done
                next(batches)
            first_step = history.steps - skip
            skip = 0
            seen = 0
            for xb, yb in batches:
                xt = xb if isinstance(xb, Tensor) else _as_tensor(np.asarray(xb))
                # Full batch: the same closure object every step tells the optimizer the batch
                # did not change (a strong-Wolfe search may then reuse its last gradient).
                closure = full_batch_closure.get(id(xb))
                if closure is None:
                    closure = _make_closure(model, loss_fn, xt, yb)
                    if batch_size is None and arrays:
                        full_batch_closure[id(xb)] = closure
                optimizer.step(closure)
                info = optimizer.last
                assert info is not None
                history.record_step(info.loss, info.lr, info.grad_norm, info.evaluations,
                                    info.step_norm)
                seen += len(xb)
                # the common case, a finite step below the divergence limit, costs two tests
                if not info.finite or info.loss > explode_at or explode_at != explode_at:
                    reason = _divergence(history, optimizer, epoch)
                    explode_at = _explosion_limit(history)
                if reason is None and step_criteria:
                    elapsed = elapsed_before + time.perf_counter() - started
                    reason = stop.check_step(history, elapsed, epoch)
                for cb in callbacks:
                    if isinstance(cb, Callback) and cb.on_step_end(history, optimizer):
                        reason = reason or StopReason("callback", f"stopped by "
                                                      f"{type(cb).__name__} at step "
                                                      f"{history.steps - 1}",
                                                      history.steps - 1, epoch)
                if bar is not None:
                    bar.update(1)
                if reason is None and interrupted.raised:
                    reason = StopReason("interrupted", f"interrupted at step {history.steps - 1}"
                                        f" (epoch {epoch})", history.steps - 1, epoch)
                    save(epoch, history.steps - first_step)
                    history.stop_reason = reason
                    return history
                if reason is not None:
                    if reason.criterion != "diverged":  # resumable from this very step
                        history.stop_reason = reason
                        save(epoch, history.steps - first_step)
                    break
            steps_in_epoch = history.steps - first_step
            if steps_in_epoch == 0:
                raise DataError("the data yielded no batches")
            record = _epoch_record(history, epoch, first_step, time.perf_counter() - epoch_start)
            if validation is not None and ((epoch + 1) % validate_every == 0 or reason):
                if reason is None or reason.criterion != "diverged":
                    metrics = evaluate(model, loss_fn, Xv, yv)
                    record.val_loss = metrics["loss"]
                    record.val_accuracy = metrics.get("accuracy")
            history.epochs.append(record)
            _track_best(history, record, model, keep_best)
            if bar is not None:
                _describe(bar, record, seen / max(record.seconds, 1e-9))
            if reason is not None:
                break
            reason = stop.check_epoch(history, steps_in_epoch)
            for cb in callbacks:
                stop_now = (cb.on_epoch_end(history, model) if isinstance(cb, Callback)
                            else cb(history))
                if stop_now and reason is None:
                    name = getattr(cb, "__name__", type(cb).__name__)
                    reason = StopReason("callback", f"stopped by {name} at epoch {epoch}",
                                        history.steps - 1, epoch)
            epoch_rng_state = shuffle_rng.bit_generator.state
            if reason is None and ((epoch + 1) % checkpoint_every == 0 or epoch + 1 == epochs):
                save(epoch + 1, 0)
            elif reason is not None and reason.criterion != "diverged":
                history.stop_reason = reason
                save(epoch + 1, 0)
            if reason is not None:
                break
    finally:
        interrupted.restore()
        if bar is not None:
            bar.close()
        history.seconds = elapsed_before + time.perf_counter() - started
    if reason is None:
        reason = StopReason("epochs", f"completed {epochs} epochs ({history.steps} steps)",
                            history.steps - 1, epoch, epochs, epochs)
    history.stop_reason = reason
    return history


def _check_checkpoint_path(path: Path) -> None:
    if path.is_dir():
        raise CheckpointError(f"checkpoint path {path} is a directory, expected a file")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise CheckpointError(f"cannot write checkpoint {path}: folder {folder} does not exist")


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


def _make_closure(model: Any, loss_fn: Callable[..., Tensor], xt: Tensor, yb: Any):
    def closure() -> Tensor:
        return loss_fn(model(xt), yb)

    return closure


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


def _explosion_limit(history: History) -> float:
    """The loss above which a step counts as diverging: DIVERGENCE_FACTOR times the first
    loss (infinite when the first loss is not positive; NaN before the first step)."""
    if not history.loss:
        return math.nan
    first = history.loss[0]
    return DIVERGENCE_FACTOR * first if math.isfinite(first) and first > 0 else math.inf


def _divergence(history: History, optimizer: Optimizer, epoch: int) -> StopReason | None:
    info = optimizer.last
    assert info is not None
    first = history.loss[0]
    exploded = (
        info.finite
        and math.isfinite(first)
        and first > 0
        and info.loss > DIVERGENCE_FACTOR * first
    )
    if info.finite and not exploded:
        return None
    step = history.steps - 1
    if not info.finite:
        # No update was made: the parameters are those that gave a non-finite value; the
        # previous step's starting point is the last one with a finite loss.
        if math.isfinite(info.loss):
            detail = f"gradient norm {info.grad_norm:.4g} at loss {info.loss:.4g}"
        else:
            detail = f"loss {info.loss}"
        back, back_loss = step - 1, history.loss[-2] if history.steps >= 2 else math.nan
        culprit = history.lr[-2] if history.steps >= 2 else math.nan
    else:
        detail = f"loss {info.loss:.4g} > {DIVERGENCE_FACTOR:g} x the first loss {first:.4g}"
        back, back_loss = step, info.loss
        culprit = history.lr[-2] if history.steps >= 2 else info.lr
    restored = optimizer.undo()
    message = f"diverged at step {step}: {detail}"
    if math.isfinite(culprit):
        message += f", after a step of size {culprit:.4g}"
    if restored:
        message += f"; parameters restored to those at the start of step {back}"
        if math.isfinite(back_loss):
            message += f" (loss {back_loss:.4g})"
    else:
        message += "; the parameters are those this step started from"
    rule = optimizer.rule
    if isinstance(rule, Constant):
        message += (f". Hint: the constant step {rule.value:g} is too large for this problem; "
                    "try a line search (lr=ds.optim.Armijo(), or --lr armijo) or a smaller lr")
    return StopReason("diverged", message, step, epoch, info.loss, DIVERGENCE_FACTOR * first)


def _progress_bar(progress: bool, epochs: int, start: int, steps_per_epoch: int | None):
    if not progress:
        return None
    from tqdm.auto import tqdm

    total = None if steps_per_epoch is None else (epochs - start) * steps_per_epoch
    # disable=None: shown on a terminal, silent when output is a file or a pipe
    return tqdm(total=total, unit="step", disable=None, dynamic_ncols=True, leave=True,
                mininterval=0.2)


def _describe(bar: Any, record: EpochRecord, throughput: float) -> None:
    parts = {"epoch": record.epoch + 1, "loss": f"{record.train_loss:.4g}",
             "lr": f"{record.lr:.3g}"}
    if record.val_accuracy is not None:
        parts["val_acc"] = f"{record.val_accuracy:.3f}"
    elif record.val_loss is not None:
        parts["val_loss"] = f"{record.val_loss:.4g}"
    parts["samples/s"] = f"{throughput:,.0f}"
    bar.set_postfix(parts, refresh=False)
