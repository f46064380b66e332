"""The capturing engine: the NumPy engine, replaying recorded programs where it may.

A step of a fixed model on batches of one shape runs the same primitives in the same order
every time. :class:`CaptureEngine` runs the first steps of each *key* (what a
:class:`Replayable` closure says a program is specific to: model, loss, shapes, dtypes,
training mode) eagerly while recording them (:mod:`descend.autodiff.trace`), and replays the
later ones:

1. **Record.** The first evaluation of a key is recorded and written out as a program.
2. **Verify.** The next one is recorded again; the two recordings must agree on every
   primitive, wiring, parameter and constant. Then the program is run on that step's
   inputs, with the random state rewound, and its loss, gradients and final random state
   must equal the eager step's bit for bit.
3. **Replay.** Later evaluations of the key call the program: no Node, no Tensor per
   operation, no backward walk. A program whose parameters changed shape or dtype
   (:class:`~descend.autodiff.trace.Stale`) is recorded again.

What stays in Python: everything that depends on values (the optimizer's direction and step
rule, line-search trials, divergence and stopping) runs around the programs, which only
replace the engine's ``forward`` / ``backward`` / ``value``.

When a key cannot be replayed exactly it runs eagerly, never guessing: a forward pass that
reads tensor values in Python (a branch), recordings that differ, a verification that is
not bit-identical, an error during a replay (that evaluation is then redone eagerly). Each
such fallback keeps its reason (:class:`Fallback`: the kind of evaluation, the batch, the
exception's type and message), and :meth:`CaptureEngine.report` tells how many evaluations
were replayed, how many ran eagerly and why (``descend.train.explain_capture``).

Limits (stated, not checked every step): a program reads the *values* of the leaf tensors
it recorded at every replay, but not which tensors they are, nor attributes of the modules
read in Python during ``forward`` (a Dropout's ``p``): replacing a Parameter object or
changing such an attribute after training started needs the programs forgotten
(``descend.train.capture.reset``), as would a change of the model's layers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

import numpy as np

from .. import backend
from ..autodiff.graph import no_grad
from ..autodiff.tensor import Tensor, wrap
from ..autodiff.trace import (
    NotCapturable,
    Program,
    Recording,
    Stale,
    compile_program,
    difference,
    same,
)
from .numpy import NumpyEngine

__all__ = ["MAX_MISSES", "CaptureEngine", "CaptureReport", "CaptureState", "Fallback",
           "Replayable"]

#: recordings that disagree before a key is left eager (a model that branches)
MAX_MISSES = 3


class Replayable:
    """A closure that says what it computes, so that a capturing engine can replay it.

    The engine replays only closures of this type (``descend.train``'s ``Batch`` is one);
    any other closure runs eagerly, with that reason kept.
    """

    __slots__ = ()

    def __call__(self) -> Any:
        raise NotImplementedError

    def key(self) -> tuple | None:
        """What a program is specific to, hashable (None: this closure is not replayable)."""
        raise NotImplementedError

    def inputs(self) -> Tensor:
        """The batch's inputs (``X`` of a program)."""
        raise NotImplementedError

    def targets(self) -> np.ndarray | None:
        """The array the loss reads as targets (``Y``), None when there is none to bind."""
        raise NotImplementedError

    def replayed(self, out: Any) -> None:
        """A replayed program computed the model's outputs ``out`` (an array, or None)."""

    def describe(self) -> str:
        """The batch in words, for the reasons of fallbacks."""
        return type(self).__name__


class CaptureState(StrEnum):
    """Where one key stands."""

    #: its next evaluation is recorded
    RECORD = "record"
    #: recorded once; the next evaluation is recorded again, compared, and its program
    #: checked bit for bit against the eager result
    VERIFY = "verify"
    #: its evaluations are replayed
    READY = "ready"
    #: its evaluations run eagerly (the entry's ``fallback`` says why)
    EAGER = "eager"


class Fallback(NamedTuple):
    """Why the evaluations of one key run eagerly."""

    #: "grad" (forward and backward: a step's first evaluation, strong-Wolfe trials) or
    #: "value" (forward only: line-search trials)
    kind: str
    #: the batch, in words
    batch: str
    #: the type of the exception that made the engine give up
    error: str
    #: its message
    message: str

    def __str__(self) -> str:
        return f"{self.batch}: {self.error}: {self.message}"


_KINDS = {"grad": "evaluations with a gradient", "value": "forward-only trials"}


@dataclass(frozen=True)
class CaptureReport:
    """What a capturing engine did (``descend.train.explain_capture``); ``str()`` reads it.

    Attributes
    ----------
    replayed, eager : int
        Evaluations with a gradient (each step's first, and strong-Wolfe trials) replayed
        and run eagerly.
    trials_replayed, trials_eager : int
        Forward-only evaluations (line-search trials) replayed and run eagerly.
    recording : int
        The eager evaluations that recorded a program (two per key, before replays start).
    reasons : tuple of (Fallback, int)
        Each distinct reason for running eagerly, with the evaluations it sent to the eager
        path since it was found (0 when none came after), most frequent first.
    note : str or None
        Why there is nothing to report (capture never ran), else None.
    """

    replayed: int = 0
    eager: int = 0
    trials_replayed: int = 0
    trials_eager: int = 0
    recording: int = 0
    reasons: tuple[tuple[Fallback, int], ...] = ()
    note: str | None = None

    def __str__(self) -> str:
        if self.note is not None:
            return f"capture: {self.note}"
        lines = [
            f"capture: {self.replayed} of {self.replayed + self.eager} evaluations with a "
            f"gradient replayed, {self.trials_replayed} of "
            f"{self.trials_replayed + self.trials_eager} forward-only trials replayed",
            f"eager: {self.eager + self.trials_eager} evaluations, {self.recording} of them "
            "recording programs",
        ]
        if not self.reasons:
            lines.append("no fallback to eager")
        for fallback, count in self.reasons:
            lines.append(f"fell back to eager for {fallback.batch} ({_KINDS[fallback.kind]}, "
                         f"{count} evaluations since): {fallback.error}: {fallback.message}")
        return "\n".join(lines)


class _Entry:
    """The state of one key: recording, verifying, ready to replay, or eager."""

    __slots__ = ("batch", "fallback", "kind", "misses", "program", "signature", "state")

    def __init__(self, kind: str, batch: str, state: CaptureState = CaptureState.RECORD,
                 fallback: Fallback | None = None):
        self.kind = kind
        self.batch = batch
        self.state = state
        self.program: Program | None = None
        self.signature: Any = None
        self.misses = 0
        self.fallback = fallback


_RECORD, _VERIFY, _READY, _EAGER = (CaptureState.RECORD, CaptureState.VERIFY,
                                    CaptureState.READY, CaptureState.EAGER)


def _same_bits(a: Any, b: Any) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def _mismatch(loss: Any, eager_loss: Any, grads: Any = None, eager: Any = None,
              rng_same: bool = True) -> NotCapturable | None:
    """What differs between a program's results and the eager step's, or None."""
    if not _same_bits(loss, eager_loss):
        return NotCapturable("the program's loss is not bit-identical to the eager step's")
    if grads is not None and not (
            len(grads) == len(eager)
            and all(e is not None and _same_bits(g, e) for g, e in zip(grads, eager))):
        return NotCapturable("the program's gradients are not bit-identical to the eager "
                             "step's")
    if not rng_same:
        return NotCapturable("the program left the random generators in another state than "
                             "the eager step")
    return None


class CaptureEngine(NumpyEngine):
    """The NumPy engine, replaying recorded programs for :class:`Replayable` closures.

    ``forward`` / ``backward`` (a step's first evaluation, and the trial points of rules
    that need slopes) and ``value`` (forward-only trials) look the closure's key up; any
    other closure, and any key that cannot be replayed exactly, runs eagerly. ``stats``
    counts replays and eager runs per kind (``"grad"``, ``"value"``); ``fallbacks`` counts,
    per distinct reason, the eager runs it caused; :meth:`report` sums it up.
    """

    name = "numpy-captured"

    def __init__(self) -> None:
        self.entries: dict[tuple, _Entry] = {}
        self._declined: dict[Fallback, _Entry] = {}  # the entries of closures without a key
        self._replayed: tuple | None = None  # (loss object, leaves, grads)
        self._verify: tuple | None = None  # (loss tensor, entry, batch, rng before)
        self.stats = {"grad": [0, 0], "value": [0, 0]}  # [replays, eager runs]
        self.fallbacks: dict[Fallback, int] = {}

    # ---------------------------------------------------------------- forward + backward
    def forward(self, closure: Callable[[], Any]) -> tuple[Any, float]:
        self._replayed = self._verify = None
        entry = self._entry("grad", closure)
        if entry.state is _EAGER:
            self._ran_eagerly(entry)
            return super().forward(closure)
        if entry.state is _READY:
            program = entry.program
            assert program is not None
            result = self._replay(entry, closure)
            if result is None:  # redo the step eagerly (the key records again or stays eager)
                return self.forward(closure)
            loss, grads, out = result
            self.stats["grad"][0] += 1
            closure.replayed(out)
            obj = wrap(loss, False, None)
            self._replayed = (obj, program.leaves, grads)
            return obj, float(loss.item())
        self.stats["grad"][1] += 1
        before = backend.rng_snapshot() if entry.state is _VERIFY else None
        rec = Recording(closure.inputs(), closure.targets())
        try:
            with rec:
                loss, value = super().forward(closure)
        except NotCapturable as exc:
            self._give_up(entry, exc)
            return super().forward(closure)
        if self._learn(entry, rec, loss, full=True):
            self._verify = (loss, entry, closure, before)
        return loss, value

    def backward(self, loss: Any) -> None:
        replayed = self._replayed
        if replayed is not None and replayed[0] is loss:
            self._replayed = None
            for leaf, g in zip(replayed[1], replayed[2]):
                leaf.grad = g if leaf.grad is None else leaf.grad + g
            return
        super().backward(loss)
        verify = self._verify
        if verify is not None and verify[0] is loss:
            self._verify = None
            _, entry, batch, before = verify
            program = entry.program
            eager = [leaf.grad for leaf in program.leaves]
            after = backend.rng_snapshot()
            backend.rng_restore(before)
            try:
                out, grads, _ = program(batch.inputs().data, batch.targets())
                problem = _mismatch(out, loss.data, grads, eager,
                                    self.rng_same(backend.rng_snapshot(), after))
            except Exception as exc:  # (kept as the reason: the key stays eager)
                problem = exc
            backend.rng_restore(after)
            self._verified(entry, problem)

    # ---------------------------------------------------------------- forward only
    def value(self, closure: Callable[[], Any]) -> float:
        entry = self._entry("value", closure)
        if entry.state is _EAGER:
            self._ran_eagerly(entry)
            return super().value(closure)
        if entry.state is _READY:
            out = self._replay(entry, closure)
            if out is None:
                return self.value(closure)
            self.stats["value"][0] += 1
            return float(out.item())
        self.stats["value"][1] += 1
        before = backend.rng_snapshot() if entry.state is _VERIFY else None
        rec = Recording(closure.inputs(), closure.targets())
        try:
            with rec, no_grad():
                loss = closure()
        except NotCapturable as exc:
            self._give_up(entry, exc)
            return super().value(closure)
        value = float(loss.data.item())
        if self._learn(entry, rec, loss, full=False):
            program = entry.program
            after = backend.rng_snapshot()
            backend.rng_restore(before)
            try:
                problem = _mismatch(program(closure.inputs().data, closure.targets()),
                                    loss.data,
                                    rng_same=self.rng_same(backend.rng_snapshot(), after))
            except Exception as exc:  # (kept as the reason: the key stays eager)
                problem = exc
            backend.rng_restore(after)
            self._verified(entry, problem)
        return value

    # ---------------------------------------------------------------- what happened
    def report(self) -> CaptureReport:
        """How many evaluations were replayed, how many ran eagerly, and why."""
        grad, value = self.stats["grad"], self.stats["value"]
        fell_back = sum(self.fallbacks.values())
        reasons = tuple(sorted(self.fallbacks.items(), key=lambda item: -item[1]))
        return CaptureReport(grad[0], grad[1], value[0], value[1],
                             grad[1] + value[1] - fell_back, reasons)

    def _give_up(self, entry: _Entry, exc: BaseException) -> None:
        """Leave ``entry`` eager for the reason ``exc`` (kept)."""
        fallback = Fallback(entry.kind, entry.batch, type(exc).__name__, str(exc))
        entry.state = _EAGER
        entry.fallback = fallback
        self.fallbacks.setdefault(fallback, 0)

    def _ran_eagerly(self, entry: _Entry) -> None:
        self.stats[entry.kind][1] += 1
        fallback = entry.fallback
        self.fallbacks[fallback] = self.fallbacks.get(fallback, 0) + 1

    def _verified(self, entry: _Entry, problem: BaseException | None) -> None:
        if problem is None:
            entry.state = _READY
        else:
            self._give_up(entry, problem)

    # ---------------------------------------------------------------- helpers
    def _replay(self, entry: _Entry, closure: Any) -> Any:
        """The entry's program run on this batch, or None when it failed: the key then
        records again (a parameter changed shape or dtype) or stays eager, and the random
        state is as before the attempt."""
        program = entry.program
        assert program is not None
        state = backend.rng_snapshot() if program.random else None
        try:
            return program.fn(closure.inputs().data, closure.targets())
        except Stale:
            entry.state = _RECORD
            entry.misses = 0
        except Exception as exc:  # (kept as the reason: the key stays eager)
            self._give_up(entry, exc)
        if state is not None:
            backend.rng_restore(state)
        return None

    def _entry(self, kind: str, closure: Any) -> _Entry:
        if not isinstance(closure, Replayable):
            return self._decline(kind, "a plain closure", NotCapturable(
                "the closure is not a Replayable: nothing says what it computes (fit's "
                "batches and captured_step make replayable closures)"))
        key = closure.key()
        if key is None:
            return self._decline(kind, closure.describe(), NotCapturable(
                "no targets to bind: the targets require grad or are not a NumPy array"))
        key = (kind, *key)
        try:
            entry = self.entries.get(key)
        except TypeError as exc:  # an unhashable model or loss
            return self._decline(kind, closure.describe(), exc)
        if entry is None:
            entry = self.entries[key] = _Entry(kind, closure.describe())
        return entry

    def _decline(self, kind: str, batch: str, exc: BaseException) -> _Entry:
        """The eager entry of closures that have no key, one per reason."""
        fallback = Fallback(kind, batch, type(exc).__name__, str(exc))
        entry = self._declined.get(fallback)
        if entry is None:
            entry = self._declined[fallback] = _Entry(kind, batch, _EAGER, fallback)
            self.fallbacks.setdefault(fallback, 0)
        return entry

    def _learn(self, entry: _Entry, rec: Recording, loss: Any, full: bool) -> bool:
        """Take a recording; True when it matches the previous one (verify it now)."""
        try:
            if not isinstance(loss, Tensor):
                raise NotCapturable("the closure did not return a Tensor")
            signature = rec.signature(loss)
            if entry.state is _VERIFY and same(signature, entry.signature):
                return True
            program = compile_program(rec, loss, full)
        except NotCapturable as exc:
            self._give_up(entry, exc)
            return False
        if entry.state is _VERIFY:
            entry.misses += 1
            if entry.misses >= MAX_MISSES:
                self._give_up(entry, NotCapturable(
                    f"the step was recorded {MAX_MISSES + 1} times, each recording unlike "
                    f"the one before; the last two: {difference(entry.signature, signature)}"))
                return False
        entry.signature = signature
        entry.program = program
        entry.state = _VERIFY
        return False
