"""The optimizer shell users know: parameters, ``zero_grad()``, ``step(closure)``.

One step (ARCHITECTURE.md, "How data flows through one training step"):

1. ``closure()`` runs the forward pass on the current batch and returns the loss;
2. the optimizer calls ``backward()``;
3. the direction piece turns gradients into d (-g, momentum, Adam);
4. the step rule picks alpha, evaluating phi(alpha) = f(x + alpha d) on the same batch
   where it is a line search (forward only under ``no_grad``, unless it needs slopes);
5. the parameters move: x <- x + alpha d.

Updates are double-buffered: the new parameters are written into spare arrays and the
previous ones are kept until the next step begins, so :meth:`Optimizer.undo` can put back
the last parameters exactly (training uses it when a step diverges).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from ..autodiff.tensor import Tensor
from ..checks import check_count, check_number, check_step_size
from ..engine.base import Engine, Vector
from ..engine.numpy import NumpyEngine
from ..errors import ConfigError, GradientError
from ..linesearch import LineSearchStatus, Trial, TrialLog
from .directions import AdamDirection, Direction, DirectionStatus, Feedback, Gradient, Momentum
from .restriction import Replay, Restriction, TrialPoint, WeightDecay
from .rules import (
    Constant,
    DirectionProvider,
    Needs,
    PointObserver,
    StepChoice,
    StepContext,
    StepPoint,
    as_step_rule,
    working_precision,
)

Closure = Callable[[], Any]


@dataclass(slots=True)
class StepInfo:
    """What happened in the last step (``opt.last``).

    Attributes
    ----------
    step : int
        Index of the step (0 for the first).
    loss : float
        The objective at the start of the step (loss plus weight-decay term).
    lr : float
        The step size alpha used (0.0 when no update was made).
    grad_norm : float
        ||g|| at the start of the step (weight decay included).
    evaluations : int
        Forward passes made in the step (the first one included, trial points too).
    gradient_evaluations : int
        Backward passes made in the step.
    status : LineSearchStatus or None
        The line search's exit, or None for rules that do not search.
    fallback : bool
        True when the direction was not a descent direction and the line search used the
        negative gradient instead.
    new_loss : float or None
        The objective at the accepted point when the rule evaluated it (reused, never
        recomputed).
    finite : bool
        False when the loss or the gradient was not finite: then no update was made.
    updated : bool
        False when the step made no update: a loss or gradient that was not finite, or a
        loss above :attr:`Optimizer.loss_limit` (then the previous step's update is still
        the one :meth:`Optimizer.undo` takes back: the last parameters with a good loss).
    step_norm : float
        ||x_new - x|| = alpha ||d||, how far the parameters moved.
    clipped : bool
        True when the gradient was scaled down to ``max_grad_norm`` before it made the
        direction (``grad_norm`` is the norm before clipping).
    direction : DirectionStatus or None
        What a learning direction (L-BFGS, CG) did: stored or skipped a curvature pair,
        reset its memory, restarted; None for the others.
    iterations : int
        Iterations made by the ``step(closure)`` call this record ends: more than 1 only
        for ``LBFGS`` and ``CG`` with ``max_iter`` > 1, where the fields above describe the
        last iteration (``step`` its index, ``loss`` the objective at its start).
    call_evaluations, call_gradient_evaluations : int
        Forward and backward passes made by the whole ``step(closure)`` call, every
        iteration together (``evaluations`` and ``gradient_evaluations`` when the call
        made one iteration; left out, they are set to those).
    closure_backward : bool
        True when the closure called ``backward()`` itself (torch's convention, as
        ``torch.optim.LBFGS`` closures and Lightning's do): its backward pass is the
        step's, and trial points, forward only, drop the backward call the closure makes
        (``descend.torch``; a Lightning closure still records the graph of a trial).
    slope : float
        phi'(0) = g . d, the slope of the objective along the direction the step took
        (the negative gradient's where the search fell back to it); NaN when no direction
        was made.
    trials : tuple of Trial, or None
        With :attr:`Optimizer.record_trials` on, the rule's trial points in the order it
        made them (:class:`~descend.linesearch.Trial`: alpha, phi(alpha), phi'(alpha)
        where computed; empty for a rule that makes none); None when not recorded.
    """

    step: int
    loss: float
    lr: float
    grad_norm: float
    evaluations: int
    gradient_evaluations: int
    status: LineSearchStatus | None = None
    fallback: bool = False
    new_loss: float | None = None
    finite: bool = True
    step_norm: float = 0.0
    updated: bool = True
    clipped: bool = False
    direction: DirectionStatus | None = None
    iterations: int = 1
    call_evaluations: int = None  # type: ignore[assignment]  # set in __post_init__
    call_gradient_evaluations: int = None  # type: ignore[assignment]
    closure_backward: bool = False
    slope: float = math.nan
    trials: tuple[Trial, ...] | None = None

    def __post_init__(self) -> None:
        if self.call_evaluations is None:
            self.call_evaluations = self.evaluations
        if self.call_gradient_evaluations is None:
            self.call_gradient_evaluations = self.gradient_evaluations


class _Start(NamedTuple):
    """The first phase of a step: the objective and its gradient at x."""

    loss_tensor: Any  # what step() returns
    loss: float  # the objective, weight decay included
    grads: Vector  # its gradient, weight decay included
    moving: Vector  # the gradient the direction is made from (clipped, or ``grads``)
    sq_norm: float  # ||g||^2
    x0: Vector  # the parameters' values
    evaluations: int  # forward passes made (0 when a trial point's gradient was reused)
    replay: Replay | None
    same_batch: bool = False  # the caller said: the previous step's objective (full batch)


class _Pending(NamedTuple):
    """A learning direction's feedback, waiting for the next gradient: the step taken and
    the gradient it started from (y = g_new - g is formed when g_new is known)."""

    s: Vector
    g: Vector


class _KeptLine(NamedTuple):
    """The line of the last step taken with :attr:`Optimizer.record_trials` on, kept (as
    copies) so that phi can be evaluated along it afterwards (:meth:`Optimizer.line_values`)."""

    closure: Closure
    x0: Vector
    v: Vector
    sign: float
    replay: Replay | None


class _Line(NamedTuple):
    """The direction d = sign * v, its slope g . d and its norm."""

    v: Vector
    sign: float
    slope: float
    norm: float
    fallback: bool  # not a descent direction: the search runs along -g instead


class Optimizer:
    """Gradient-based optimizer: a direction and a step rule over parameter groups.

    Parameters
    ----------
    params : iterable of Tensor, or of dicts
        The parameters (tensors that require grad), or parameter groups: dicts with
        ``"params"`` and optional ``"lr"`` and ``"weight_decay"``, as in PyTorch.
    lr : float, callable or StepRule
        The step size: a constant, a schedule ``t -> lr`` or a step rule (line search,
        Polyak, ...); a group's ``"lr"`` overrides it for that group. One line search
        serves every group that searches (they must share the one rule object): see
        :meth:`_choose` for what one search over several groups means.
    weight_decay : float
        L2 penalty coefficient lambda: the objective becomes f + (lambda/2) ||x||^2.
    direction : Direction
        What direction to move along.
    max_grad_norm : float or None
        Clip the gradient by its global norm before it makes the direction: g is scaled by
        max_grad_norm / (||g|| + 1e-6) when ||g|| > max_grad_norm (PyTorch's
        ``clip_grad_norm_``; weight decay is added after). Line searches still measure the
        slope of the true objective along the direction, g . d, so their conditions hold
        for f itself.
    engine : Engine or None
        What the steps run on (:mod:`descend.engine`): the array, parameter, closure and
        random-state operations. None: a new :class:`~descend.engine.numpy.NumpyEngine`.
        The optimizer hands it to its direction and weight-decay term;
        :meth:`use_engine` is the one way to change it afterwards.
    lean : bool
        Keep no spare copy of the parameters. By default a step writes x + alpha d into a
        second set of buffers (one full copy of the parameters), so that every trial point
        starts from the exact x and :meth:`undo` puts back x bit for bit. Lean steps move
        the parameters in place: trials go x -> x + a d -> x + b d -> ... and back by
        -alpha d, the update adds alpha d. That saves the copy's memory; the price is bits:
        x + a d - a d equals x only to rounding (about one unit in the last place of x per
        move), and :meth:`undo` is not available. Refused with a learning direction
        (L-BFGS, CG), which needs the exact step s = x_new - x.

    Each group is a dict with ``"params"``, ``"rule"`` (the step rule), ``"lr"`` (the
    group's learning rate: the value of a constant rule, a factor on any other rule's step),
    ``"step_size"`` (the step size the group took last; NaN before the first step) and
    ``"weight_decay"``.

    **The group's "lr".** A group moves by ``"lr"`` itself when its rule is a constant,
    and by ``"lr"`` times the rule's step otherwise (1.0 until changed, so the rule's own
    step); :func:`scaled_step` says which. Whatever writes ``"lr"`` between steps (a learning
    rate scheduler, the caller) drives the step: for a constant rule this is a plain
    learning rate, for a line search the factor scales the accepted step (the search
    itself runs as without it, so its state stays the rule's own).
    """

    #: the type of the parameters this shell takes
    _param_type: type = Tensor
    _record_trials = False
    _kept_line: _KeptLine | None = None
    _trial_log: TrialLog  # the recorded step's trials (set when the step starts)

    def __init__(self, params: Iterable[Any], lr: Any, weight_decay: float, direction: Direction,
                 *, max_grad_norm: float | None = None, engine: Engine | None = None,
                 lean: bool = False):
        if not isinstance(lean, bool | np.bool_):
            raise TypeError(f"lean must be True or False, got {lean!r}")
        #: no spare copy of the parameters: moves and trials in place (see ``lean`` above)
        self._lean = bool(lean)
        self._engine: Engine = _check_engine(engine)
        self.param_groups: list[dict[str, Any]] = self._make_groups(params, lr, weight_decay)
        self._init_step(direction, max_grad_norm)

    @property
    def engine(self) -> Engine:
        """The engine the steps run on: given at construction, changed only by
        :meth:`use_engine`."""
        return self._engine

    def use_engine(self, engine: Engine) -> Engine:
        """Run the following steps on ``engine``; return the engine used until now.

        The one way to change an optimizer's engine after construction:
        ``fit(..., capture=True)`` runs its steps on a capturing engine this way
        (:mod:`descend.engine.captured`) and switches back when it returns. The new engine
        must hold the same kind of arrays (``engine.arrays``), so that the direction's
        state, the spare buffers and the parameters kept for :meth:`undo` stay valid.
        """
        engine = _check_engine(engine)
        if engine.arrays != self._engine.arrays:
            raise ConfigError(
                f"use_engine: the {engine.name!r} engine holds {engine.arrays} arrays, this "
                f"optimizer's state holds {self._engine.arrays} arrays"
            )
        previous = self._engine
        self._engine = engine
        self.direction.engine = engine
        self._decay.engine = engine
        return previous

    def _make_groups(self, params: Iterable[Any], lr: Any,
                     weight_decay: float) -> list[dict[str, Any]]:
        """The parameter groups, each parameter and setting checked."""
        groups = []
        for ps, group in self._split_groups(params):
            wd = check_number("weight_decay", group.get("weight_decay", weight_decay), 0, math.inf)
            rule = as_step_rule(group.get("lr", lr))
            groups.append({"params": ps, "rule": rule, "lr": nominal_lr(rule),
                           "step_size": math.nan, "weight_decay": wd})
        return groups

    def _init_step(self, direction: Direction, max_grad_norm: float | None = None) -> None:
        """Bind the step pipeline to ``self.param_groups``, ``self.engine`` and ``direction``
        (every shell, NumPy or torch, ends its construction here)."""
        self.max_grad_norm = (None if max_grad_norm is None
                              else check_step_size("max_grad_norm", max_grad_norm))
        rules = {id(g["rule"]): g["rule"] for g in self.param_groups}
        searching = [r for r in rules.values() if r.needs != Needs.NOTHING]
        if len(searching) > 1:
            raise ConfigError(
                f"{searching[0]!r} and {searching[1]!r}: one line search serves every "
                "searching parameter group (one alpha for them all); give those groups the "
                "same rule object"
            )
        self._shared_rule = len(rules) == 1
        #: the indices of the parameters a line search moves, when other groups take their
        #: own steps (None: the search covers every parameter, or there is none)
        self._searched: list[int] | None = None
        if searching and len(rules) > 1:
            if isinstance(searching[0], DirectionProvider):
                raise ConfigError(
                    f"{searching[0]!r} brings its own direction to every parameter: use it "
                    "on all parameter groups, or give the other groups their own search too"
                )
            first, self._searched = 0, []
            for group in self.param_groups:
                count = len(group["params"])
                if group["rule"] is searching[0]:
                    self._searched += range(first, first + count)
                first += count
        #: the machine epsilon of the parameters' coarsest dtype (what rules can resolve)
        self._precision = working_precision(self._engine.values(
            [p for g in self.param_groups for p in g["params"]]))
        #: what the (shared) rule needs: trial points or not
        self._needs = Needs(self.rule.needs)
        #: the rule searches along any direction, descent or not (no fallback to -g)
        self._keeps_direction = bool(getattr(self.rule, "keeps_direction", False))
        self._params = [p for g in self.param_groups for p in g["params"]]
        self._decay = WeightDecay(self._engine, [(g["weight_decay"], len(g["params"]))
                                                for g in self.param_groups])
        direction = _provided_direction(list(rules.values()), direction)
        steepest_only = [r for r in rules.values() if getattr(r, "gradient_direction_only", False)]
        if steepest_only and not isinstance(direction, Gradient):
            raise ConfigError(
                f"{steepest_only[0]!r} is defined along the negative gradient only: use it "
                f"with GD without momentum or Subgradient, not {type(self).__name__}"
                + (f"(momentum={direction.beta})" if isinstance(direction, Momentum) else "")
            )
        if self._lean and direction.learns:
            raise ConfigError(f"lean=True: {type(direction).__name__} learns from the exact "
                              "step x_new - x, which the lean mode does not keep")
        direction.engine = self._engine
        self.direction = direction
        #: the rules told each step's point, with the parameters they see (None: all)
        self._observers = self._point_observers()
        #: whether the direction learns from the steps (L-BFGS, CG); the others cost nothing
        self._learns = bool(direction.learns)
        self._pending: _Pending | None = None  # the learning direction's next feedback
        self.t = 0
        self.last: StepInfo | None = None
        self._steps_per_epoch: int | None = None  # see the steps_per_epoch property
        #: a step starting at a loss above this makes no update (set by fit's divergence
        #: criterion, so that a diverging run keeps the last parameters with a good loss)
        self.loss_limit = math.inf
        self._spare: Vector | None = None  # buffers the next parameters are written into
        self._undo: Vector | None = None  # the parameters before the last update
        self._accepted: TrialPoint | None = None  # the last accepted point's gradient
        self._given_loss: Any = None  # step(loss=...)'s loss, for the step it is given to
        self._in_spare: float | None = None  # the step whose point the spare buffers hold

    def _point_observers(self) -> list[tuple[PointObserver, list[int] | None]]:
        """The rules told each step's point (:class:`PointObserver`), each with the indices
        of the parameters it covers (None: every parameter, the rule all groups share)."""
        if self._shared_rule:
            return [(self.rule, None)] if isinstance(self.rule, PointObserver) else []
        out: list[tuple[PointObserver, list[int] | None]] = []
        first = 0
        for group in self.param_groups:
            rule, count = group["rule"], len(group["params"])
            if isinstance(rule, PointObserver):
                if any(r is rule for r, _ in out):
                    raise ConfigError(f"{rule!r} reads the vectors of its parameter group: "
                                      "give each group that uses it its own")
                out.append((rule, list(range(first, first + count))))
            first += count
        return out

    def _split_groups(self, params: Iterable[Any]) -> list[tuple[list[Any], dict[str, Any]]]:
        """(parameters, group settings) per group, each parameter checked."""
        if isinstance(params, self._param_type):
            items = [params]
        elif isinstance(params, Iterable) and not isinstance(params, str | bytes | dict):
            items = list(params)
        else:
            raise TypeError("params must be an iterable of Tensors or of parameter groups, "
                            f"got {type(params).__name__}")
        if not items:
            raise ConfigError("the optimizer got an empty parameter list")
        groups = items if isinstance(items[0], dict) else [{"params": items}]
        out = []
        seen: set[int] = set()
        for i, group in enumerate(groups):
            if not isinstance(group, dict) or "params" not in group:
                raise ConfigError(f"parameter group {i} must be a dict with a 'params' entry")
            ps = group["params"]
            if isinstance(ps, self._param_type):
                ps = [ps]
            elif isinstance(ps, Iterable) and not isinstance(ps, str | bytes):
                ps = list(ps)
            else:
                raise TypeError(f"params of group {i} must be Tensors, got {type(ps).__name__}")
            for p in ps:
                self._check_parameter(p)
                if id(p) in seen:
                    raise ConfigError("a parameter appears twice in the optimizer's groups")
                seen.add(id(p))
            out.append((ps, group))
        return out

    @staticmethod
    def _check_parameter(p: Any) -> None:
        if not isinstance(p, Tensor):
            raise TypeError(f"params must hold Tensors, got {type(p).__name__}")
        if not p.requires_grad:
            raise ConfigError("a parameter given to the optimizer does not require grad")
        if not p.is_leaf:
            raise ConfigError(
                "a parameter given to the optimizer is the result of an operation, not "
                "a leaf tensor; pass the tensors the model is built from"
            )

    # ------------------------------------------------------------------ public shell
    @property
    def params(self) -> list[Any]:
        """Every parameter, group after group."""
        return list(self._params)

    @property
    def rule(self) -> Any:
        """The line search when a group uses one (one serves every searching group), else
        the step rule of the first group."""
        for group in self.param_groups:
            if group["rule"].needs != Needs.NOTHING:
                return group["rule"]
        return self.param_groups[0]["rule"]

    @property
    def steps_per_epoch(self) -> int | None:
        """Mini-batches per epoch, when known; None otherwise (the default).

        The stochastic line search reads it (through ``StepContext.steps_per_epoch``) to
        grow its step by 2 per epoch. The training loop sets it once per run; in your own
        loop it may stay None: ``Armijo`` then grows its step by 2 per 50 steps on
        mini-batches (2 per step with ``step(closure, same_batch=True)``).
        """
        return self._steps_per_epoch

    @steps_per_epoch.setter
    def steps_per_epoch(self, value: int | None) -> None:
        self._steps_per_epoch = None if value is None else check_count("steps_per_epoch", value)

    @property
    def record_trials(self) -> bool:
        """Whether steps record their rule's trial points (off by default).

        When on, each step's record ``opt.last`` holds ``trials``: every point where the
        step rule evaluated phi(alpha) = f(x + alpha d), in order, with phi(alpha) and,
        for searches that compute it, phi'(alpha). The functions the rule is given are
        wrapped, so the search and the trajectory are the same as with recording off.
        The last such step's line is kept too (a copy of x and d), so that
        :meth:`line_values` can evaluate phi along it afterwards (``descend.plot``'s
        picture of a step). Off, a step records and keeps nothing.
        """
        return self._record_trials

    @record_trials.setter
    def record_trials(self, value: bool) -> None:
        if not isinstance(value, bool | np.bool_):
            raise TypeError(f"record_trials must be True or False, got {value!r}")
        self._record_trials = bool(value)
        if not value:
            self._kept_line = None

    def line_values(self, alphas: Sequence[float], *,
                    slopes: bool = False) -> list[float] | list[tuple[float, float]]:
        """phi(alpha) = F(x + alpha d) along the line of the last step recorded.

        The last step taken with :attr:`record_trials` on, from a closure, keeps its line:
        its start x, its direction d, its batch (the closure) and the random state its
        first forward pass drew from. Each alpha is evaluated as the step's own trials
        were: on that batch, replaying that random state (the same dropout masks), weight
        decay included. These are extra forward passes (forward and backward with
        ``slopes=True``, which returns (phi, phi') pairs), made only when asked; the
        parameters, the random stream and the gradients are left as they were.
        """
        kept = self._kept_line
        if kept is None:
            raise ConfigError(
                "no line to evaluate: set opt.record_trials = True and take a step with "
                "a closure first")
        engine, params = self._engine, self._params
        current = engine.values(params)
        now = engine.rng_snapshot()
        grads = [p.grad for p in params]
        line = Restriction(engine, params, kept.closure, kept.x0, kept.v, kept.sign,
                           engine.spare_like(None, kept.x0), kept.replay, self._decay)
        try:
            if slopes:
                return [line.phi_and_slope(float(a)) for a in alphas]
            return [line.phi(float(a)) for a in alphas]
        finally:
            engine.assign(params, current)
            engine.rng_restore(now)
            for p, g in zip(params, grads):
                p.grad = g

    def zero_grad(self) -> None:
        """Set every parameter's ``.grad`` to None."""
        self._engine.zero_grad(self._params)

    def step(self, closure: Closure | None = None, *, same_batch: bool = False,
             loss: Any = None) -> Any:
        """Take one step and return the loss at its start.

        ``closure()`` must run the forward pass on the current batch and return the loss
        *without* calling backward: the optimizer zeroes the gradients, calls backward,
        and calls the closure again under ``no_grad()`` at line-search trial points.
        Without a closure the gradients already in ``.grad`` are used (PyTorch style),
        which works for rules that need no trial points only; ``loss=`` then gives them
        the loss that backward pass started from (``loss.backward(); opt.step(loss=loss)``),
        which Polyak-type rules read (without it ``opt.last.loss`` is NaN).

        ``same_batch=True`` says that the closure evaluates the same objective as the
        previous step's (full-batch training): when the previous step's line search
        computed the gradient at the point it accepted, that gradient is reused instead
        of a new forward and backward pass. Only rules that compute gradients at trial
        points (``StrongWolfe``) leave one to reuse; in a full-batch loop of such steps it
        saves a forward and backward pass on most steps, for the same trajectory (44% of
        L-BFGS's evaluations and 27% of CG's over the Moré-Garbow-Hillstrom problems).
        ``LBFGS`` and ``CG`` also take ``max_iter``: that many iterations in one call,
        with the same reuse.
        """
        if loss is not None and closure is not None:
            raise ConfigError("step() takes a closure or loss=, not both: the closure's "
                              "loss is the step's")
        self._given_loss = loss
        try:
            start = self._evaluate(closure, same_batch)
        finally:
            self._given_loss = None
        # NaN too when the loss is not finite
        if not math.isfinite(start.sq_norm) or start.loss > self.loss_limit:
            self._reject(start)  # no update
            return start.loss_tensor
        self._on_start(start.loss, start.x0)
        for rule, where in self._observers:
            x, g = start.x0, start.moving
            if where is not None:
                x, g = [x[i] for i in where], [g[i] for i in where]
            rule.start(StepPoint(x, g, self._engine))
        line = self._direction(start)
        choice, alphas, steps, move = self._choose(start, line, closure)
        self._move(start.x0, move, steps)
        self._record(start, move, choice, alphas)
        return start.loss_tensor

    def undo(self) -> bool:
        """Put back the parameters from before the last update (exactly); True if done.

        Possible until the next step starts writing new parameters."""
        if self._undo is None:
            return False
        params = self._params
        replaced = self._engine.values(params)
        self._engine.assign(params, self._undo)
        self._spare = replaced
        self._undo = None
        self._accepted = None
        self._pending = None  # the undone step teaches the direction nothing
        return True

    def state_dict(self) -> dict[str, Any]:
        """The optimizer's full state: step count, direction state, each rule's state."""
        state = {
            "t": self.t,
            "direction": self.direction.state_dict(),
            "rules": [g["rule"].state_dict() for g in self.param_groups],
            "weight_decay": [g["weight_decay"] for g in self.param_groups],
            # each group's "lr" (a scheduler may have rewritten it)
            "group_lr": [float(g["lr"]) for g in self.param_groups],
        }
        if self._learns:
            pending = self._pending
            state["feedback"] = None if pending is None else {
                "s": self._engine.to_state(pending.s), "g": self._engine.to_state(pending.g)}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (same parameter layout)."""
        missing = [k for k in ("t", "direction", "rules") if k not in state]
        if not isinstance(state, dict) or missing:
            raise ConfigError(f"not an optimizer state: missing {', '.join(missing) or 'all'}")
        if len(state["rules"]) != len(self.param_groups):
            raise ConfigError(
                f"optimizer state has {len(state['rules'])} parameter groups, "
                f"this optimizer has {len(self.param_groups)}"
            )
        self.t = int(state["t"])
        self.direction.load_state_dict(state["direction"])
        for group, rule_state in zip(self.param_groups, state["rules"]):
            group["rule"].load_state_dict(rule_state)
        for group, lr in zip(self.param_groups, state.get("group_lr", ())):
            group["lr"] = float(lr)
        self._accepted = None
        self._undo = None
        self._pending = None
        feedback = state.get("feedback") if self._learns else None
        if feedback is not None:
            like = self._engine.values(self._params)
            self._pending = _Pending(self._engine.from_state(feedback["s"], like),
                                     self._engine.from_state(feedback["g"], like))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lr={self.rule!r}, {len(self.params)} parameters)"

    # ------------------------------------------------------------------ hooks for subclasses
    def _on_start(self, loss: float, x0: Vector) -> None:
        """Called with the objective at the start of a step, before any move."""

    def _on_end(self, alpha: float) -> None:
        """Called after the parameters moved by ``alpha``."""

    def _forget_undo(self) -> None:
        """The parameters were changed outside a step: the last update cannot be undone."""
        self._undo = None

    # ------------------------------------------------------------------ the phases of a step
    def _evaluate(self, closure: Closure | None, same_batch: bool) -> _Start:
        """Phase 1: the objective and its gradient at x (weight decay included)."""
        engine, params = self._engine, self._params
        loss_tensor, loss, evaluations, replay = self._loss_and_gradient(closure, same_batch)
        x0 = engine.values(params)
        if closure is not None and not math.isfinite(loss):
            return _Start(loss_tensor, loss, [], [], math.nan, x0, evaluations, replay,
                          same_batch)
        grads = moving = engine.grads(params)
        if self.max_grad_norm is not None:
            moving = self._clip(grads)
        if self._decay.active:
            grads, term = self._decay.add(grads, x0)
            if moving is not grads:
                moving, _ = self._decay.add(moving, x0)
            else:
                moving = grads
            loss += term
        return _Start(loss_tensor, loss, grads, moving, engine.dot(grads, grads), x0,
                      evaluations, replay, same_batch)

    def _loss_and_gradient(self, closure: Closure | None,
                           same_batch: bool) -> tuple[Any, float, int, Replay | None]:
        """The loss (object and value) and the gradients in ``.grad``: from a forward and a
        backward pass, from the previous search's accepted point, or, without a closure,
        from the caller's own backward pass. Also the forward passes made and the random
        states a line search replays."""
        engine, params = self._engine, self._params
        searching = self._needs is not Needs.NOTHING
        replay = None
        # a recorded step keeps its random state too: its line may be evaluated afterwards
        replaying = searching or self._record_trials
        accepted, self._accepted = self._accepted, None
        if closure is None:
            given = getattr(self, "_given_loss", None)
            if searching:
                raise ConfigError(
                    f"{self.rule!r} evaluates the loss at trial points, which "
                    f"step({'loss=...' if given is not None else ''}) cannot: pass "
                    "step(closure), a function that runs the forward pass and returns the "
                    "loss, or use a rule that reads only the starting loss (Polyak, a "
                    "schedule)")
            if any(p.grad is None for p in params):
                raise GradientError("step() without a closure needs .grad: "
                                    "call loss.backward() first")
            loss_tensor, loss, evaluations = None, math.nan, 0
            if given is not None:  # the loss the caller's own backward pass started from
                loss_tensor, loss = given, engine.value(lambda: given)
        elif same_batch and accepted is not None:
            # The previous step accepted a point where it computed the gradient on this
            # very batch: reuse it, with the random state its forward pass drew from.
            engine.set_grads(params, accepted.grads)
            loss = accepted.loss
            loss_tensor = engine.loss_object(loss, accepted)
            evaluations = 0
            if accepted.replay is not None:
                replay = Replay(accepted.replay, engine.rng_snapshot())
        else:
            before = engine.rng_snapshot() if replaying else None
            loss_tensor, loss = engine.evaluate(closure, params)
            if replaying:  # (backward draws nothing at random)
                after = engine.rng_snapshot()
                if not engine.rng_same(before, after):  # else nothing to replay
                    replay = Replay(before, after)
            evaluations = 1
        return loss_tensor, loss, evaluations, replay

    def _clip(self, grads: Vector) -> Vector:
        """The gradients scaled to norm ``max_grad_norm`` when larger (else themselves)."""
        norm = math.sqrt(self._engine.dot(grads, grads))
        limit = self.max_grad_norm
        assert limit is not None
        if not norm > limit:  # NaN too: the finiteness check names it
            return grads
        scale = limit / (norm + 1e-6)
        return [g * scale for g in grads]

    def _direction(self, start: _Start) -> _Line:
        """Phase 2: the direction d = sign * v, its slope and norm."""
        if self._learns and self._pending is not None:
            # what the last step did: s and y = g_{k+1} - g_k, now that g_{k+1} is known
            s, g = self._pending
            self._pending = None
            self.direction.learn(Feedback(s, [a - b for a, b in zip(start.grads, g)]))
        v = self.direction.compute(start.moving)
        sign = self.direction.sign
        if v is start.grads and sign == -1.0:
            slope, norm = -start.sq_norm, math.sqrt(start.sq_norm)
        else:
            slope = sign * self._engine.dot(start.grads, v)
            norm = math.sqrt(self._engine.dot(v, v))
        if (self._needs is not Needs.NOTHING and not slope < 0 and start.sq_norm > 0
                and not self._keeps_direction and self._searched is None):
            # not a descent direction: the line search runs along -g instead
            return _Line(start.grads, -1.0, -start.sq_norm, math.sqrt(start.sq_norm), True)
        return _Line(v, sign, slope, norm, False)

    def _choose(self, start: _Start, line: _Line,
                closure: Closure | None) -> tuple[StepChoice, list[float], list[float], _Line]:
        """Phase 3: the step rules pick alpha. Returns the choice to record (the search's,
        else the first group's), the step each group takes (its ``"lr"`` applied: see
        :class:`Optimizer`), the steps to move by (one for every parameter, or one per
        parameter) and the line to move along.

        **One line search over several groups.** When some groups search and others take
        their own steps (a constant, a schedule, Polyak), the search runs along the
        searched groups' block of the direction, d_S, with the other groups held at x:
        phi(alpha) = F(x_S + alpha d_S, x_F). That is a true restriction of F through x
        (phi(0) = F(x), phi'(0) = g_S . d_S; weight decay included), so every search and
        its conditions hold as for one group, on that block; when d_S is not a descent
        direction the block falls back to -g_S alone. Then every group moves at once:
        the searched groups by the searched alpha (times each one's ``"lr"`` factor), the
        others by their own rule's step. The decrease of the whole move is not checked (a
        block step, as with any fixed step).
        """
        if not self._lean:
            self._spare = self._engine.spare_like(self._spare, start.x0)
        self._in_spare = None
        searched: StepChoice | None = None
        move = line
        if self._record_trials and self._needs is Needs.NOTHING:
            self._keep_line(start, line, closure)
        if self._needs is not Needs.NOTHING:
            searched, move = self._search(start, line, closure)
        if len(self.param_groups) == 1:  # the usual case, without the groups' bookkeeping
            choice, alphas, steps = self._one_group(start, line, searched)
        else:
            choice, alphas, steps = self._groups(start, line, searched)
        if steps and all(a == steps[0] for a in steps):
            steps = steps[:1]
        exact = (searched is not None and self._searched is None and len(steps) == 1
                 and steps[0] == float(searched.lr))
        if self._searched is not None:  # the trials moved the searched block only
            self._in_spare = None
        if not exact:  # the search's accepted point is not where the step ends
            self._accepted = None
            if choice.value is not None:
                choice = dataclasses.replace(choice, value=None)
        return choice, alphas, steps, move

    def _context(self, start: _Start, line: _Line) -> StepContext:
        """The context of a rule that makes no trials."""
        return StepContext(self.t, start.loss, math.sqrt(start.sq_norm), line.norm,
                           line.slope, None, None, self.steps_per_epoch, None,
                           self._precision, start.same_batch)

    def _one_group(self, start: _Start, line: _Line, searched: StepChoice | None
                   ) -> tuple[StepChoice, list[float], list[float]]:
        """One group's choice, its step and the steps to move by (see :meth:`_groups`)."""
        group = self.param_groups[0]
        rule = group["rule"]
        choice = searched if searched is not None else rule(self._context(start, line))
        alpha = scaled_step(group, _checked_steps(rule, [choice.lr], 1)[0])
        if choice.per_parameter is None:
            return choice, [alpha], [alpha]
        raw = _checked_steps(rule, choice.per_parameter, len(group["params"]))
        return choice, [alpha], [scaled_step(group, a) for a in raw]

    def _groups(self, start: _Start, line: _Line, searched: StepChoice | None
                ) -> tuple[StepChoice, list[float], list[float]]:
        """Each rule object called once; the step each group takes (its ``"lr"`` applied)
        and the steps to move by, one per parameter; the choice to record (the search's,
        else the first group's)."""
        ctx = self._context(start, line)
        choices: dict[int, StepChoice] = {}
        for group in self.param_groups:
            rule = group["rule"]
            if id(rule) not in choices:
                choices[id(rule)] = (searched if searched is not None and rule is self.rule
                                     else rule(ctx))
        alphas: list[float] = []
        steps: list[float] = []
        for i, group in enumerate(self.param_groups):
            rule, count = group["rule"], len(group["params"])
            c = choices[id(rule)]
            raw = (_checked_steps(rule, [c.lr], 1) * count if c.per_parameter is None
                   else _checked_steps(rule, c.per_parameter, count))
            alphas.append(scaled_step(group, _checked_steps(rule, [c.lr], 1)[0], i))
            steps += [scaled_step(group, a, i) for a in raw]
        choice = searched if searched is not None else choices[id(self.param_groups[0]["rule"])]
        return choice, alphas, steps

    def _search(self, start: _Start, line: _Line,
                closure: Closure | None) -> tuple[StepChoice, _Line]:
        """The line search's choice, and the line every parameter moves along: ``line``,
        or, when the search covers some groups only and their block is not a descent
        direction, ``line`` with that block replaced by -g."""
        assert closure is not None
        engine = self._engine
        rule = self.rule
        move = search = line
        if self._searched is not None:
            inside = set(self._searched)
            zeros = engine.zeros_like([x for i, x in enumerate(line.v) if i not in inside])
            rest = iter(zeros)
            v = [x if i in inside else next(rest) for i, x in enumerate(line.v)]
            slope = line.sign * engine.dot(start.grads, v)
            search = _Line(v, line.sign, slope, math.sqrt(engine.dot(v, v)), False)
            if not slope < 0 and not self._keeps_direction:
                rest = iter(zeros)
                g = [x if i in inside else next(rest) for i, x in enumerate(start.grads)]
                g_sq = engine.dot(g, g)
                if g_sq > 0:  # not a descent direction: the block searches along -g_S
                    search = _Line(g, -1.0, -g_sq, math.sqrt(g_sq), True)
                    flip = line.sign == -1.0
                    move = _Line([(x if flip else -x) if i in inside else y
                                  for i, (x, y) in enumerate(zip(start.grads, line.v))],
                                 line.sign, line.slope, line.norm, True)
        if self._record_trials:
            self._keep_line(start, search, closure)
        line_fn = Restriction(engine, self._params, closure, start.x0, search.v,
                              search.sign, None if self._lean else self._spare, start.replay,
                              self._decay)
        initial = self.direction.initial if self._learns and not search.fallback else None
        if self._searched is None:
            norm = math.sqrt(start.sq_norm)
        else:  # ||g_S||: the searched block's
            block = [start.grads[i] for i in self._searched]
            norm = math.sqrt(engine.dot(block, block))
        phi, phi_and_slope = line_fn.phi, line_fn.phi_and_slope
        if self._record_trials:  # the same functions, each call noted
            log = self._trial_log
            phi, phi_and_slope = log.values(phi), log.values_and_slopes(phi_and_slope)
        ctx = StepContext(self.t, start.loss, norm, search.norm, search.slope, phi,
                          phi_and_slope, self.steps_per_epoch, initial, self._precision,
                          start.same_batch)
        try:
            choice = rule(ctx)
        finally:
            line_fn.close()
        if self._needs is Needs.SLOPES:
            self._accepted = line_fn.accepted(float(choice.lr))
        # the accepted point is usually the last trial, still in the spare buffers
        self._in_spare = None if self._lean else line_fn.placed
        return choice, move

    def _keep_line(self, start: _Start, line: _Line, closure: Closure | None) -> None:
        """Keep copies of the step's line for :meth:`line_values`; start a new trial log."""
        self._trial_log = TrialLog()
        if closure is None:
            self._kept_line = None
            return
        engine = self._engine
        self._kept_line = _KeptLine(closure, engine.clone(start.x0), engine.clone(line.v),
                                    line.sign, start.replay)

    def _move(self, x0: Vector, line: _Line, steps: list[float]) -> None:
        """Phase 4: x <- x0 + alpha d (alpha one, or one per parameter), written into the
        spare buffers; x0 is kept for undo."""
        if self._lean:  # in place: nothing kept to undo
            self._undo = None
            if len(steps) == 1:
                if steps[0] != 0:
                    self._engine.shift(self._params, line.sign * steps[0], line.v)
                return
            for p, v, alpha in zip(self._params, line.v, steps):
                if alpha != 0:
                    self._engine.shift([p], line.sign * alpha, [v])
            return
        spare = self._spare
        assert spare is not None
        if len(steps) == 1:
            if steps[0] == 0:
                self._undo = None
                return
            if steps[0] == self._in_spare:  # x0 + alpha d is there already: no second pass
                self._engine.assign(self._params, spare)
            else:
                self._engine.place(self._params, spare, x0, line.sign * steps[0], line.v)
        else:
            for p, buf, x, v, alpha in zip(self._params, spare, x0, line.v, steps):
                self._engine.place([p], [buf], [x], line.sign * alpha, [v])
        self._spare = x0
        self._undo = x0

    def _record(self, start: _Start, line: _Line, choice: StepChoice,
                alphas: list[float]) -> None:
        """Phase 5: what the step did, in ``self.last`` and each group's ``"step_size"``
        (``last.lr`` is the first group's)."""
        alpha = alphas[0]
        for group, a in zip(self.param_groups, alphas):
            group["step_size"] = a
        if self._learns:
            self._remember(start, alphas)
        self.last = StepInfo(
            step=self.t,
            loss=start.loss,
            lr=alpha,
            grad_norm=math.sqrt(start.sq_norm),
            evaluations=start.evaluations + choice.evaluations,
            gradient_evaluations=(1 if start.evaluations else 0) + choice.gradient_evaluations,
            status=choice.status,
            fallback=line.fallback,
            new_loss=choice.value,
            step_norm=alpha * line.norm,
            clipped=start.moving is not start.grads,
            direction=self.direction.status if self._learns else None,
            slope=line.slope,
            trials=self._trial_log.trials if self._record_trials else None,
        )
        self._on_end(alpha)
        self.t += 1

    def _remember(self, start: _Start, alphas: list[float]) -> None:
        """Keep s = x_{k+1} - x_k and g_k for a learning direction (y needs g_{k+1}); tell
        it at once when no step was taken."""
        if any(alphas):
            new = self._engine.values(self._params)
            self._pending = _Pending([a - b for a, b in zip(new, start.x0)],
                                     self._engine.clone(start.grads))
        else:
            self._pending = None
            self.direction.learn(Feedback(None, None))

    def _reject(self, start: _Start) -> None:
        """A loss or gradient that is not finite, or a loss above ``loss_limit``: no update
        (``last.updated`` False; ``last.finite`` False for the former)."""
        self.last = StepInfo(self.t, start.loss, 0.0, math.sqrt(start.sq_norm),
                             start.evaluations, start.evaluations,
                             finite=math.isfinite(start.sq_norm), updated=False,
                             trials=() if self._record_trials else None)
        self._kept_line = None  # no line was made


def nominal_lr(rule: Any) -> float:
    """A group's ``"lr"`` before anything rewrites it: a constant rule's value (its
    learning rate), 1.0 for any other rule (a factor that leaves the rule's step as it is)."""
    return float(rule.value) if isinstance(rule, Constant) else 1.0


def scaled_step(group: dict[str, Any], alpha: float, index: int = 0) -> float:
    """The step a parameter group takes when its rule chose ``alpha``: the group's
    ``"lr"`` itself for a constant rule, ``"lr"`` times ``alpha`` for any other (a
    learning-rate scheduler rewrites ``"lr"`` between steps). A ConfigError names a
    ``"lr"`` that is not a finite number >= 0 (``index`` the group's)."""
    value = group["lr"]
    try:
        lr = float(value)
    except (TypeError, ValueError):
        lr = math.nan
    if not math.isfinite(lr) or lr < 0:
        raise ConfigError(f"param_groups[{index}]['lr'] must be a finite number >= 0 (the "
                          f"group's learning rate, or the factor on its rule's step), got "
                          f"{value!r}")
    if isinstance(group["rule"], Constant):
        return lr
    return lr * alpha


def _checked_steps(rule: Any, steps: list[float], count: int) -> list[float]:
    """``steps`` as floats, each finite and >= 0, ``count`` of them; a ConfigError naming
    the rule otherwise."""
    if len(steps) != count:
        raise ConfigError(f"step rule {rule!r} returned {len(steps)} step sizes for "
                          f"{count} parameters")
    out = [float(a) for a in steps]
    for a in out:
        if not math.isfinite(a) or a < 0:
            raise ConfigError(f"step rule {rule!r} returned an invalid step size {a!r}")
    return out


def _provided_direction(rules: list[Any], direction: Direction) -> Direction:
    """The direction a rule brings (:class:`DirectionProvider`: Prodigy's and
    D-Adaptation's moments) in place of ``direction``; ``direction`` when none does."""
    providers = [r for r in rules if isinstance(r, DirectionProvider)]
    if len(providers) > 1:
        raise ConfigError(f"{providers[0]!r} and {providers[1]!r} each bring a direction of "
                          "their own: parameter groups can share only one of them")
    return providers[0].direction_for(direction) if providers else direction


def _check_engine(engine: Any) -> Engine:
    """``engine``, or a new NumPy engine for None; a TypeError naming it otherwise."""
    if engine is None:
        return NumpyEngine()
    if isinstance(engine, type) or not isinstance(engine, Engine):
        raise TypeError("engine must be an Engine (descend.engine: e.g. NumpyEngine()) or None, "
                        f"got {engine!r:.60}")
    return engine


class GD(Optimizer):
    """Gradient descent, full-batch or mini-batch (the same class; the data decides).

    x <- x + alpha_t d_t with d_t = -g_t, heavy-ball momentum or Nesterov momentum, and
    alpha_t from ``lr``: a constant, a schedule or a step rule (line search, Polyak, ...).

    Parameters
    ----------
    params : iterable of Tensor or parameter groups
    lr : float, callable t -> float, or StepRule
    momentum : float in [0, 1)
    nesterov : bool
        Nesterov's momentum (needs momentum > 0).
    weight_decay : float >= 0
        L2 penalty lambda; the objective is f + (lambda/2) ||x||^2.
    max_grad_norm : float or None
        Clip the gradient to this global norm before it makes the direction.
    engine : Engine or None
        What the steps run on (None: a NumPy engine); see :class:`Optimizer`.
    lean : bool
        No spare copy of the parameters (in-place moves, x back to rounding after trials);
        see :class:`Optimizer`.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: Any = 0.1,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        *,
        max_grad_norm: float | None = None,
        engine: Engine | None = None,
        lean: bool = False,
    ):
        momentum = check_number("momentum", momentum, 0.0, 1.0)
        if not isinstance(nesterov, bool | np.bool_):
            raise TypeError(f"nesterov must be True or False, got {nesterov!r}")
        if nesterov and momentum == 0:
            raise ConfigError("nesterov=True needs momentum > 0")
        direction = Momentum(momentum, nesterov) if momentum else Gradient()
        super().__init__(params, lr, weight_decay, direction, max_grad_norm=max_grad_norm,
                         engine=engine, lean=lean)
        self.momentum = momentum
        self.nesterov = nesterov


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015): x <- x - alpha m_hat / (sqrt(v_hat) + eps), where alpha
    may also be a schedule or a step rule (Adam's direction with a line search).

    ``max_grad_norm``, ``engine`` and ``lean`` as in :class:`GD`.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: Any = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        *,
        max_grad_norm: float | None = None,
        engine: Engine | None = None,
        lean: bool = False,
    ):
        super().__init__(params, lr, weight_decay, AdamDirection(betas, eps),
                         max_grad_norm=max_grad_norm, engine=engine, lean=lean)
