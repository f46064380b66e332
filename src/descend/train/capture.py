"""The training loop's use of recorded programs: batches that say what they compute, the
capturing engine put in and taken out, and what it did.

``fit(..., capture=True)`` hands the optimizer :class:`Batch` closures and runs its steps on
a :class:`~descend.engine.captured.CaptureEngine` (made once per optimizer, so recorded
programs are kept from one ``fit`` call to the next), through the optimizer's documented
``use_engine``: the engine is switched for the run and switched back after it, never
patched in. :func:`captured_step` does the same for hand-written loops, and
:func:`explain_capture` says what was replayed and why the rest ran eagerly.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from ..autodiff.tensor import Tensor, wrap
from ..autodiff.trace import note_output
from ..engine.captured import CaptureEngine, CaptureReport, Replayable
from ..engine.numpy import NumpyEngine
from ..optim.optimizer import Optimizer

__all__ = ["Batch", "CapturedStep", "captured_step", "engine_for", "explain_capture",
           "installed", "reset"]


class Batch(Replayable):
    """The closure of one mini-batch, ``loss_fn(model(x), y)``, that says what it holds.

    ``fit`` hands the optimizer these instead of plain functions, so that a capturing
    engine can tell which program a step runs (:meth:`key`) and what its inputs are.
    """

    __slots__ = ("loss_fn", "model", "tally", "x", "y")

    def __init__(self, model: Any, loss_fn: Callable[..., Any], x: Any, y: Any,
                 tally: Any = None):
        self.model = model
        self.loss_fn = loss_fn
        self.x = x if isinstance(x, Tensor) else wrap(np.asarray(x), False, None)
        self.y = y
        #: an object with ``armed`` and ``count(outputs, y)`` that counts the model's
        #: outputs at a step's first evaluation (fit's training accuracy), or None
        self.tally = tally

    def __call__(self) -> Any:
        out = self.model(self.x)
        note_output(out)
        tally = self.tally
        if tally is not None and tally.armed:
            tally.count(out, self.y)
        return self.loss_fn(out, self.y)

    def replayed(self, out: Any) -> None:
        """A replayed program computed the model's outputs ``out`` (an array)."""
        tally = self.tally
        if tally is not None and tally.armed and out is not None:
            tally.count(out, self.y)

    def inputs(self) -> Tensor:
        return self.x

    def targets(self) -> Any:
        """The array the loss reads as targets (None when there is none to bind)."""
        y = self.y
        if isinstance(y, Tensor):
            return None if y.requires_grad else y.data
        return y if isinstance(y, np.ndarray) else None

    def key(self) -> tuple | None:
        """What a program is specific to: model, loss, input and target shapes and dtypes,
        and the training mode of every module (None: not capturable)."""
        y = self.y
        if type(y) is not np.ndarray:
            y = self.targets()
            if y is None:
                return None
        x = self.x.data
        return (self.model, self.loss_fn, x.shape, x.dtype, y.shape, y.dtype,
                _training_flags(self.model))

    def describe(self) -> str:
        x, y = self.x.data, self.targets()
        targets = "no target array" if y is None else f"targets {y.shape} {y.dtype}"
        loss = getattr(self.loss_fn, "__name__", type(self.loss_fn).__name__)
        return (f"{type(self.model).__name__} with {loss} on inputs {x.shape} {x.dtype}, "
                f"{targets}")


#: id(model) -> (weak reference to the model, its modules), read at every step
_modules_of: dict[int, tuple[Any, list]] = {}


def _training_flags(model: Any) -> tuple:
    known = _modules_of.get(id(model))
    if known is not None and known[0]() is model:
        mods = known[1]
    else:
        mods = list(model.modules()) if hasattr(model, "modules") else [model]
        key = id(model)
        try:
            ref = weakref.ref(model, lambda _, key=key, pop=_modules_of.pop: pop(key, None))
        except TypeError:  # not weakly referenceable: read it every time
            pass
        else:
            _modules_of[key] = (ref, mods)
    return tuple([getattr(m, "training", None) for m in mods])


# ------------------------------------------------------------------------------ the engine
_engines: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def engine_for(optimizer: Any) -> CaptureEngine | None:
    """The capturing engine of ``optimizer``: the one it was built with, else one made once
    per optimizer (so recorded programs are kept from one ``fit`` call to the next); None
    when its engine is not descend's NumPy engine (e.g. an engine over torch tensors)."""
    current = optimizer.engine
    if isinstance(current, CaptureEngine):
        return current
    engine = _engines.get(optimizer)
    if engine is None:
        if type(current) is not NumpyEngine:
            return None
        engine = _engines[optimizer] = CaptureEngine()
    return engine


class _Installed:
    """Context manager: the optimizer's steps run on its capturing engine inside (with
    ``enabled=False``, on an eager engine), and on its own engine again afterwards."""

    def __init__(self, optimizer: Any, enabled: bool):
        self.optimizer = optimizer
        if enabled:
            self.engine = engine_for(optimizer)
        else:  # an optimizer built on a capturing engine runs eagerly when asked to
            self.engine = NumpyEngine() if isinstance(optimizer.engine, CaptureEngine) else None
        self.previous = None

    def __enter__(self) -> CaptureEngine | None:
        engine = self.engine
        if engine is not None and self.optimizer.engine is not engine:
            self.previous = self.optimizer.use_engine(engine)
        return engine if isinstance(engine, CaptureEngine) else None

    def __exit__(self, *exc: object) -> None:
        if self.previous is not None:
            self.optimizer.use_engine(self.previous)
            self.previous = None


def installed(optimizer: Any, enabled: bool = True) -> _Installed:
    """``with installed(opt): ...`` runs the optimizer's steps on the capturing engine."""
    return _Installed(optimizer, enabled)


def reset(optimizer: Any) -> None:
    """Forget every program recorded for ``optimizer`` (after replacing a Parameter object,
    changing a module attribute that ``forward`` reads, or the model's layers)."""
    current = optimizer.engine
    engine = current if isinstance(current, CaptureEngine) else _engines.get(optimizer)
    if engine is not None:
        engine.entries.clear()


class CapturedStep:
    """``step(x, y)``: one optimizer step on the batch (x, y), recorded and then replayed.

    Made by :func:`captured_step`; returns the loss at the start of the step (a Tensor)."""

    def __init__(self, model: Any, loss_fn: Callable[..., Any], optimizer: Any):
        if not callable(model):
            raise TypeError(f"captured_step: model must be callable, got {type(model).__name__}")
        if not callable(loss_fn):
            raise TypeError(f"captured_step: loss_fn must be callable, got "
                            f"{type(loss_fn).__name__}")
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"captured_step: optimizer must be a descend optimizer, got "
                            f"{type(optimizer).__name__}")
        self.model = model
        self.loss_fn = loss_fn
        self.optimizer = optimizer
        engine = engine_for(optimizer)
        if engine is None:
            raise TypeError(
                f"captured_step needs an optimizer on descend's NumPy engine, got one on "
                f"{getattr(optimizer.engine, 'name', type(optimizer.engine).__name__)!r}"
            )
        self.engine = engine
        self.previous = optimizer.use_engine(engine) if optimizer.engine is not engine else None

    def __call__(self, x: Any, y: Any, *, same_batch: bool = False) -> Any:
        return self.optimizer.step(Batch(self.model, self.loss_fn, x, y), same_batch=same_batch)

    def close(self) -> None:
        """Put the optimizer back on the engine it had before."""
        if self.previous is not None and self.optimizer.engine is self.engine:
            self.optimizer.use_engine(self.previous)
            self.previous = None


def captured_step(model: Any, loss_fn: Callable[..., Any], optimizer: Any) -> CapturedStep:
    """Capture the training step of a hand-written loop: the explicit form of what
    ``fit(..., capture=True)`` does.

    ``step = captured_step(model, loss_fn, opt)`` then ``loss = step(xb, yb)`` for each
    batch is ``opt.step(lambda: loss_fn(model(xb), yb))``, bit for bit, with the first
    steps of each batch shape recorded and the following ones replayed (see
    :mod:`descend.engine.captured`). The optimizer runs on the capturing engine until
    ``step.close()``.

    Examples
    --------
    >>> step = captured_step(model, ds.nn.CrossEntropyLoss(), opt)  # doctest: +SKIP
    >>> for xb, yb in batches:                                      # doctest: +SKIP
    ...     loss = step(xb, yb)
    """
    return CapturedStep(model, loss_fn, optimizer)


def explain_capture(optimizer_or_step: Any) -> CaptureReport:
    """What capture did for an optimizer's steps (under ``fit``) or for a
    :func:`captured_step`: how many evaluations were replayed, how many ran eagerly, and
    each distinct reason for running eagerly (the batch, the exception's type and
    message); ``print()`` it to read it.

    Examples
    --------
    >>> history = ds.train.fit(model, loss_fn, opt, (X, y))  # doctest: +SKIP
    >>> print(ds.train.explain_capture(opt))                  # doctest: +SKIP
    """
    if isinstance(optimizer_or_step, CapturedStep):
        return optimizer_or_step.engine.report()
    if not isinstance(optimizer_or_step, Optimizer):
        raise TypeError("explain_capture: optimizer_or_step must be a descend optimizer or "
                        f"a captured_step, got {type(optimizer_or_step).__name__}")
    current = optimizer_or_step.engine
    engine = current if isinstance(current, CaptureEngine) else _engines.get(optimizer_or_step)
    if engine is not None:
        return engine.report()
    if type(current) is NumpyEngine:
        return CaptureReport(note="this optimizer's steps were never captured (fit(..., "
                                  "capture=True) and captured_step capture them)")
    return CaptureReport(note=f"the optimizer runs on the {current.name!r} engine, which "
                              "capture does not apply to")
