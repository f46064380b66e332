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

import math
import numbers
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import backend
from ..autodiff.graph import enable_grad, no_grad
from ..autodiff.tensor import Tensor
from ..errors import ConfigError, GradientError
from ..linesearch import LineSearchStatus
from .directions import Direction
from .steps import StepContext, as_step_rule

Closure = Callable[[], Tensor]


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
    step_norm : float
        ||x_new - x|| = alpha ||d||, how far the parameters moved.
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


def _check_number(name: str, value: Any, lo: float, hi: float, *, hi_open: bool = True) -> float:
    if (isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real)
            or math.isnan(value)):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    ok = lo <= value < hi if hi_open else lo <= value <= hi
    if not ok:
        right = ")" if hi_open else "]"
        raise ConfigError(f"{name} must lie in [{lo}, {hi}{right}, got {value!r}")
    return float(value)


class Optimizer:
    """Gradient-based optimizer: a direction and a step rule over parameter groups.

    Parameters
    ----------
    params : iterable of Tensor, or of dicts
        The parameters (tensors that require grad), or parameter groups: dicts with
        ``"params"`` and optional ``"lr"`` and ``"weight_decay"``, as in PyTorch.
    lr : float, callable or StepRule
        The step size: a constant, a schedule ``t -> lr`` or a step rule (line search,
        Polyak, ...). Line-search rules act on all parameters together, so every group
        must then share the same rule.
    weight_decay : float
        L2 penalty coefficient lambda: the objective becomes f + (lambda/2) ||x||^2.
    direction : Direction
        What direction to move along.
    """

    def __init__(self, params: Iterable[Any], lr: Any, weight_decay: float, direction: Direction):
        items = list(params) if not isinstance(params, Tensor) else [params]
        if not items:
            raise ConfigError("the optimizer got an empty parameter list")
        groups = items if isinstance(items[0], dict) else [{"params": items}]
        self.param_groups: list[dict[str, Any]] = []
        seen: set[int] = set()
        for i, group in enumerate(groups):
            if not isinstance(group, dict) or "params" not in group:
                raise ConfigError(f"parameter group {i} must be a dict with a 'params' entry")
            ps = group["params"]
            ps = [ps] if isinstance(ps, Tensor) else list(ps)
            for p in ps:
                if not isinstance(p, Tensor):
                    raise TypeError(f"optimizers take Tensors, got {type(p).__name__}")
                if not p.requires_grad:
                    raise ConfigError("a parameter given to the optimizer does not require grad")
                if not p.is_leaf:
                    raise ConfigError(
                        "a parameter given to the optimizer is the result of an operation, not "
                        "a leaf tensor; pass the tensors the model is built from"
                    )
                if id(p) in seen:
                    raise ConfigError("a parameter appears twice in the optimizer's groups")
                seen.add(id(p))
            wd = _check_number("weight_decay", group.get("weight_decay", weight_decay), 0, math.inf)
            rule = as_step_rule(group.get("lr", lr))
            self.param_groups.append({"params": ps, "lr": rule, "weight_decay": wd})
        rules = {id(g["lr"]): g["lr"] for g in self.param_groups}
        searching = [r for r in rules.values() if r.needs != "none"]
        if searching and len(rules) > 1:
            raise ConfigError(
                f"{searching[0]!r} searches along all parameters at once: every parameter "
                "group must use that same step rule"
            )
        self._shared_rule = len(rules) == 1
        self._group_of = [i for i, g in enumerate(self.param_groups) for _ in g["params"]]
        self.direction = direction
        self.t = 0
        self.last: StepInfo | None = None
        #: mini-batches per epoch, when known (``fit`` sets it; the stochastic line search
        #: uses it to grow its step by 2 per epoch)
        self.steps_per_epoch: int | None = None
        self._spare: list[np.ndarray] | None = None
        self._undo: list[np.ndarray] | None = None
        self._cache: tuple[Any, float, list[np.ndarray]] | None = None

    # ------------------------------------------------------------------ public shell
    @property
    def params(self) -> list[Tensor]:
        """Every parameter, group after group."""
        return [p for g in self.param_groups for p in g["params"]]

    @property
    def rule(self) -> Any:
        """The step rule of the first group (the only one when a line search is used)."""
        return self.param_groups[0]["lr"]

    def zero_grad(self) -> None:
        """Set every parameter's ``.grad`` to None."""
        for p in self.params:
            p.grad = None

    def step(self, closure: Closure | None = None) -> Tensor | None:
        """Take one step and return the loss at its start.

        ``closure()`` must run the forward pass on the current batch and return the loss
        Tensor *without* calling backward: the optimizer zeroes the gradients, calls
        backward, and calls the closure again under ``no_grad()`` at line-search trial
        points. Without a closure the gradients already in ``.grad`` are used (PyTorch
        style), which works for schedules only.
        """
        params = self.params
        rule = self.rule
        searching = rule.needs != "none"
        # Randomness in the model (dropout) is replayed at every trial point: the states
        # before the first forward pass (to replay) and after it (to continue from).
        before = after = None
        if closure is None:
            if searching:
                raise ConfigError(
                    f"{rule!r} evaluates the loss at trial points: pass step(closure)"
                )
            if any(p.grad is None for p in params):
                raise GradientError(
                    "step() without a closure needs .grad: call loss.backward() first"
                )
            loss_tensor = None
            f0 = math.nan
            evaluations = 0
        elif self._cache is not None and self._cache[0] is closure:
            # Same batch as the last accepted trial (full-batch Wolfe): reuse its gradient,
            # and the random state its forward pass drew from.
            _, f0, grads, before = self._cache
            after = backend.rng_snapshot()
            for p, g in zip(params, grads):
                p.grad = g
            loss_tensor = Tensor(np.asarray(f0))
            evaluations = 0
        else:
            self.zero_grad()
            if searching:
                before = backend.rng_snapshot()
            with enable_grad():
                loss_tensor = closure()
            if searching:
                after = backend.rng_snapshot()
                if _same_states(before, after):  # the model drew nothing: nothing to replay
                    before = after = None
            f0 = self._loss_value(loss_tensor)
            evaluations = 1
            if math.isfinite(f0):
                loss_tensor.backward()
        self._cache = None
        gradient_evaluations = 1 if evaluations else 0
        if not math.isfinite(f0) and closure is not None:
            self._record_bad(f0, evaluations)
            return loss_tensor

        grads = [p.grad if p.grad is not None else np.zeros_like(p.data) for p in params]
        wd_sq = 0.0
        if any(g["weight_decay"] for g in self.param_groups):
            grads, wd_sq = self._add_weight_decay(grads)
        f0 += wd_sq
        g2 = sum(float(np.vdot(g, g)) for g in grads)
        if not math.isfinite(g2):
            self._record_bad(f0, evaluations, grad_norm=math.sqrt(g2) if g2 == g2 else g2)
            return loss_tensor
        x0 = [p.data for p in params]
        self._on_start(f0, x0)

        # The direction is d = sign * v (v = g, sign = -1 for steepest descent).
        direction = self.direction
        v = direction.compute(grads)
        sign = direction.sign
        if v is grads and sign == -1.0:
            slope, dnorm = -g2, math.sqrt(g2)
        else:
            slope = sign * sum(float(np.vdot(g, vi)) for g, vi in zip(grads, v))
            dnorm = math.sqrt(sum(float(np.vdot(vi, vi)) for vi in v))
        fallback = False
        if searching and not slope < 0 and g2 > 0:
            v, sign = grads, -1.0  # not a descent direction: search along -g instead
            slope, dnorm = -g2, math.sqrt(g2)
            fallback = True
        spare = self._spare_buffers(x0)

        ctx = StepContext(self.t, f0, math.sqrt(g2), dnorm, slope)
        ctx.steps_per_epoch = self.steps_per_epoch
        trial: dict[str, Any] = {}
        if searching:
            ctx.phi, ctx.phi_and_slope = self._restrictions(
                closure, params, x0, v, sign, spare, trial, before
            )
            try:
                choice = rule(ctx)
            finally:
                for p, x in zip(params, x0):
                    p.data = x
                if after is not None:
                    backend.rng_restore(after)
            alphas = None
        elif self._shared_rule:
            choice = rule(ctx)
            alphas = None
        else:  # schedules differing between parameter groups: one step size per group
            choices = [g["lr"](ctx) for g in self.param_groups]
            choice = choices[0]
            alphas = [choices[i].lr for i in self._group_of]
        alpha = float(choice.lr)
        for a in [alpha] if alphas is None else alphas:
            if not math.isfinite(a) or a < 0:
                raise ConfigError(f"step rule {rule!r} returned an invalid step size {a!r}")

        scales = sign * alpha if alphas is None else [sign * a for a in alphas]
        self._move(params, x0, v, scales, spare)
        if rule.needs == "slope" and trial.get("alpha") == alpha and trial.get("grads"):
            self._cache = (closure, trial["value"], trial["grads"], before)
        self.last = StepInfo(
            step=self.t,
            loss=f0,
            lr=alpha,
            grad_norm=math.sqrt(g2),
            evaluations=evaluations + choice.evaluations,
            gradient_evaluations=gradient_evaluations + choice.gradient_evaluations,
            status=choice.status,
            fallback=fallback,
            new_loss=choice.value,
            step_norm=alpha * dnorm,
        )
        self._on_end(alpha)
        self.t += 1
        return loss_tensor

    def undo(self) -> bool:
        """Put back the parameters from before the last update (exactly); True if done.

        Possible until the next step starts writing new parameters."""
        if self._undo is None:
            return False
        replaced = []
        for p, x in zip(self.params, self._undo):
            replaced.append(p.data)
            p.data = x
        self._spare = replaced
        self._undo = None
        self._cache = None
        return True

    def state_dict(self) -> dict[str, Any]:
        """The optimizer's full state: step count, direction state, each rule's state."""
        return {
            "t": self.t,
            "direction": self.direction.state_dict(),
            "rules": [g["lr"].state_dict() for g in self.param_groups],
            "weight_decay": [g["weight_decay"] for g in self.param_groups],
        }

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
            group["lr"].load_state_dict(rule_state)
        self._cache = None
        self._undo = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lr={self.rule!r}, {len(self.params)} parameters)"

    # ------------------------------------------------------------------ hooks for subclasses
    def _on_start(self, loss: float, x0: list[np.ndarray]) -> None:
        """Called with the objective at the start of a step, before any move."""

    def _on_end(self, alpha: float) -> None:
        """Called after the parameters moved by ``alpha``."""

    # ------------------------------------------------------------------ internals
    @staticmethod
    def _loss_value(loss: Any) -> float:
        if not isinstance(loss, Tensor):
            raise TypeError(f"the closure must return the loss Tensor, got {type(loss).__name__}")
        if loss.size != 1:
            raise GradientError(f"the closure must return a scalar loss, got shape {loss.shape}")
        if not loss.requires_grad:
            raise GradientError(
                "the closure's loss does not depend on the optimizer's parameters "
                "(it does not require grad)"
            )
        return float(loss.data)

    def _record_bad(self, f0: float, evaluations: int, grad_norm: float = math.nan) -> None:
        self.last = StepInfo(self.t, f0, 0.0, grad_norm, evaluations, evaluations, finite=False)

    def _add_weight_decay(self, grads: list[np.ndarray]) -> tuple[list[np.ndarray], float]:
        out = []
        total = 0.0
        i = 0
        for group in self.param_groups:
            wd = group["weight_decay"]
            for p in group["params"]:
                g = grads[i]
                if wd:
                    out.append(g + wd * p.data)
                    total += 0.5 * wd * float(np.vdot(p.data, p.data))
                else:
                    out.append(g)
                i += 1
        return out, total

    def _decay_term(self) -> float:
        total = 0.0
        for group in self.param_groups:
            if group["weight_decay"]:
                total += 0.5 * group["weight_decay"] * math.fsum(
                    float(np.vdot(p.data, p.data)) for p in group["params"]
                )
        return total

    def _spare_buffers(self, x0: list[np.ndarray]) -> list[np.ndarray]:
        """Arrays to write the next parameters into (the previous step's, when they fit)."""
        spare = self._spare
        if spare is None or len(spare) != len(x0):
            spare = None
        else:
            for s, x in zip(spare, x0):
                if s is x or s.shape != x.shape or s.dtype is not x.dtype:
                    spare = None
                    break
        if spare is None:
            spare = [np.empty_like(x) for x in x0]
        self._spare = spare
        return spare

    def _move(self, params, x0, v, scale: float | list[float], spare) -> None:
        """x <- x0 + scale * v (one scale, or one per parameter), written into the spare
        buffers; x0 is kept for undo."""
        if not isinstance(scale, list):
            if scale == 0:
                self._undo = None
                return
            scale = [scale] * len(params)
        for p, x, vi, buf, s in zip(params, x0, v, spare, scale):
            np.multiply(vi, s, out=buf, casting="same_kind")
            buf += x
            p.data = buf
        self._spare = x0
        self._undo = x0

    def _restrictions(self, closure, params, x0, v, sign, spare, trial, snapshot):
        """phi(alpha) and phi_and_slope(alpha) on the current batch, replaying the random
        state ``snapshot`` that the step's first forward pass drew from."""
        decay = any(g["weight_decay"] for g in self.param_groups)

        def place(alpha: float) -> None:
            if snapshot is not None:
                backend.rng_restore(snapshot)
            for p, x, vi, buf in zip(params, x0, v, spare):
                np.multiply(vi, sign * alpha, out=buf, casting="same_kind")
                buf += x
                p.data = buf

        def phi(alpha: float) -> float:
            place(alpha)
            with no_grad():
                value = float(closure().data)
            return value + (self._decay_term() if decay else 0.0)

        def phi_and_slope(alpha: float) -> tuple[float, float]:
            place(alpha)
            self.zero_grad()
            with enable_grad():
                out = closure()
            raw = value = float(out.data)
            if not math.isfinite(value):
                return value, math.nan
            out.backward()
            grads = [p.grad if p.grad is not None else np.zeros_like(p.data) for p in params]
            trial.update(alpha=alpha, value=raw, grads=grads)
            if decay:
                grads, extra = self._add_weight_decay(grads)
                value += extra
            slope = sign * math.fsum(float(np.vdot(g, vi)) for g, vi in zip(grads, v))
            return value, slope

        return phi, phi_and_slope


def _same_states(a: list[tuple[Any, dict]] | None, b: list[tuple[Any, dict]] | None) -> bool:
    """Whether two random-state snapshots are equal (no draw happened in between)."""
    if a is None or b is None or len(a) != len(b):
        return False
    return all(ga is gb and sa == sb for (ga, sa), (gb, sb) in zip(a, b))


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
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: Any = 0.1,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ):
        from .directions import Gradient, Momentum

        momentum = _check_number("momentum", momentum, 0.0, 1.0)
        if nesterov and momentum == 0:
            raise ConfigError("nesterov=True needs momentum > 0")
        direction = Momentum(momentum, nesterov) if momentum else Gradient()
        super().__init__(params, lr, weight_decay, direction)
        self.momentum = momentum
        self.nesterov = nesterov


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015): x <- x - alpha m_hat / (sqrt(v_hat) + eps), where alpha
    may also be a schedule or a step rule (Adam's direction with a line search)."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: Any = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        from .directions import AdamDirection

        if not isinstance(betas, tuple | list) or len(betas) != 2:
            raise ConfigError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        b1 = _check_number("betas[0]", betas[0], 0.0, 1.0)
        b2 = _check_number("betas[1]", betas[1], 0.0, 1.0)
        eps = _check_number("eps", eps, 0.0, math.inf)
        if eps == 0:
            raise ConfigError("eps must be > 0, got 0")
        super().__init__(params, lr, weight_decay, AdamDirection((b1, b2), eps))
