"""The restriction of the training objective to one line: phi(alpha) = F(x + alpha d).

Following SciPy's split between a line-search adapter and a pure scalar search, the line
searches in :mod:`descend.linesearch` only ever see ``phi`` and ``phi'``; the
:class:`Restriction` is the small object that knows the model. It owns

* placing the parameters at x + alpha d (written into spare buffers; x is never touched),
* phi(alpha), forward only, and phi'(alpha) = grad F(x + alpha d) . d, forward and backward,
* replaying the random state that the step's first forward pass drew from, so every trial
  sees the same dropout masks, and continuing the stream afterwards exactly as after that
  one forward pass,
* the weight-decay term (lambda/2) ||x||^2 of each parameter group,
* the last point where a gradient was computed (a :class:`TrialPoint`), which the next step
  reuses when it is the accepted point and the batch is the same,
* putting the parameters back at x when the search is over (:meth:`Restriction.close`).

It works through the engine seam (:mod:`descend.engine`), so the same code serves
NumPy and PyTorch parameters.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from ..engine.base import Engine, Vector


class Replay(NamedTuple):
    """Random states around a step's first forward pass: ``before`` is replayed at every
    trial point, ``after`` is where the stream continues once the step is over."""

    before: Any
    after: Any


class TrialPoint(NamedTuple):
    """A point x + alpha d where loss and gradient were computed on the step's batch.

    ``loss`` and ``grads`` are the batch loss and its gradients, weight decay excluded;
    ``replay`` the random state its forward pass drew from (None when the model drew none).
    """

    alpha: float
    loss: float
    grads: Vector
    replay: Any


class WeightDecay:
    """The L2 term (lambda_g / 2) ||x_g||^2 of each parameter group g.

    Parameters
    ----------
    engine : Engine
    coefficients : sequence of (lambda, count)
        One entry per group, in parameter order: its coefficient and how many parameters
        it holds.
    """

    def __init__(self, engine: Engine, coefficients: Sequence[tuple[float, int]]):
        self.engine = engine
        self.groups: list[tuple[float, slice]] = []
        start = 0
        for wd, count in coefficients:
            self.groups.append((wd, slice(start, start + count)))
            start += count
        self.active = any(wd for wd, _ in self.groups)

    def add(self, grads: Vector, values: Vector) -> tuple[Vector, float]:
        """(g + lambda x per parameter, the total term (lambda/2) ||x||^2)."""
        out: Vector = []
        total = 0.0
        for wd, where in self.groups:
            for g, x in zip(grads[where], values[where]):
                if wd:
                    out.append(g + wd * x)
                    total += 0.5 * wd * self.engine.dot([x], [x])
                else:
                    out.append(g)
        return out, total

    def term(self, values: Vector) -> float:
        """sum_g (lambda_g / 2) ||x_g||^2, each group's squares added exactly."""
        total = 0.0
        for wd, where in self.groups:
            if wd:
                total += 0.5 * wd * self.engine.fdot(values[where], values[where])
        return total


class Restriction:
    """phi(alpha) = F(x0 + alpha d) with d = sign * v, on the batch the closure evaluates.

    Parameters
    ----------
    engine : Engine
    params : the parameters (moved by the trials, put back by :meth:`close`)
    closure : callable
        Runs the forward pass on the step's batch and returns the loss.
    x0, v, sign : the line: start, and direction d = sign * v
    buffers : spare arrays the trial points are written into, or None for the lean mode:
        the parameters themselves move from trial to trial (x0 + a d, then by (b - a) d,
        ...) and back by -alpha d at the end, no copy of x kept; x comes back to rounding
        (one rounding of x per move), not bit for bit
    replay : Replay or None
        The random states to replay (None when the model draws nothing).
    decay : WeightDecay
    """

    def __init__(
        self,
        engine: Engine,
        params: Sequence[Any],
        closure: Callable[[], Any],
        x0: Vector,
        v: Vector,
        sign: float,
        buffers: Vector | None,
        replay: Replay | None,
        decay: WeightDecay,
    ):
        self.engine = engine
        self.params = params
        self.closure = closure
        self.x0 = x0
        self.v = v
        self.sign = sign
        #: lean mode: no spare buffers, the parameters move in place; ``at`` is the step
        #: they are at
        self.lean = buffers is None
        self.at = 0.0
        self.buffers = engine.values(params) if buffers is None else buffers
        self.replay = replay
        self.decay = decay
        self.trial: TrialPoint | None = None
        #: the step whose point x0 + alpha d the buffers hold (the last one placed)
        self.placed: float | None = None

    def place(self, alpha: float) -> None:
        """Parameters at x0 + alpha d, random state as before the first forward pass."""
        if self.replay is not None:
            self.engine.rng_restore(self.replay.before)
        if self.lean:
            if alpha != self.at:
                self.engine.shift(self.params, self.sign * (alpha - self.at), self.v)
                self.at = alpha
        else:
            self.engine.place(self.params, self.buffers, self.x0, self.sign * alpha, self.v)
        self.placed = alpha

    def phi(self, alpha: float) -> float:
        """F(x0 + alpha d), forward only."""
        self.place(alpha)
        value = self.engine.value(self.closure)
        return value + (self.decay.term(self.buffers) if self.decay.active else 0.0)

    def phi_and_slope(self, alpha: float) -> tuple[float, float]:
        """(F(x0 + alpha d), grad F(x0 + alpha d) . d): forward and backward."""
        engine = self.engine
        self.place(alpha)
        _, value = engine.evaluate(self.closure, self.params)
        if not math.isfinite(value):
            return value, math.nan
        grads = engine.grads(self.params)
        self.trial = TrialPoint(alpha, value, grads,
                                None if self.replay is None else self.replay.before)
        if self.decay.active:
            grads, extra = self.decay.add(grads, self.buffers)
            value += extra
        return value, self.sign * engine.fdot(grads, self.v)

    def accepted(self, alpha: float) -> TrialPoint | None:
        """The trial point at ``alpha`` when its gradient is the last one computed."""
        trial = self.trial
        if trial is not None and trial.alpha == alpha and trial.grads:
            return trial
        return None

    def close(self) -> None:
        """Parameters back at x0 (to rounding in the lean mode); the random stream
        continues as after one forward pass."""
        if self.lean:
            if self.at != 0.0:
                self.engine.shift(self.params, -self.sign * self.at, self.v)
                self.at = 0.0
        else:
            self.engine.assign(self.params, self.x0)
        if self.replay is not None:
            self.engine.rng_restore(self.replay.after)
