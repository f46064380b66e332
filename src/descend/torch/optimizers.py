"""descend's optimizers as ``torch.optim.Optimizer`` subclasses.

Each class here is descend's optimizer of the same name (``descend.optim.GD``, ``Adam``,
``Subgradient``) with the torch shell mixed in: the step pipeline, the directions, the step
rules and the restriction of the loss to a line are the very same code, running on
:class:`~descend.torch.engine.TorchEngine`. The shell adds what torch users expect (param
groups, ``zero_grad(set_to_none)``, step hooks, ``state_dict`` in torch's layout, loading
across devices) and what torch models need around line-search trials: module buffers
(BatchNorm's running statistics, ``num_batches_tracked``) end a step as one forward pass
leaves them.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError, ConfigTypeError, DTypeError
from ..optim import momo as core_momo
from ..optim import optimizer as core
from ..optim import quasi_newton as core_quasi_newton
from ..optim import subgradient as core_subgradient
from ..optim.rules import Needs
from .engine import LossScaling, TorchEngine

#: names torch's own optimizers give to the per-parameter state of descend's directions
_PER_PARAMETER = {"buffers": "momentum_buffer", "m": "exp_avg", "v": "exp_avg_sq"}


class _BufferGuard:
    """Module buffers around a step's line search: the modules that run in the step's first
    forward pass are noted, their buffers copied before the trials, and put back after.

    A ``torch.compile``'d module (an ``OptimizedModule``) stands for all the modules it
    wraps: once one has run, the optimizer keeps that set (``fixed``) and registers no more
    global hooks in later steps, since a hook registered anew would make torch recompile
    the model at every step (its guards check the global hooks)."""

    def __init__(self, fixed: list[nn.Module] | None = None) -> None:
        self.modules: dict[int, nn.Module] = {}
        self.saved: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {}
        self.trials = False
        self.fixed = fixed
        self.compiled = False  # an OptimizedModule ran
        for module in fixed or ():
            self.modules[id(module)] = module

    def watching(self) -> Any:
        """The hook, while the modules are not a fixed set."""
        return _forward_pre_hook(self.hook) if self.fixed is None else nullcontext()

    def hook(self, module: nn.Module, args: Any) -> None:
        wrapped = getattr(module, "_orig_mod", None)
        if isinstance(wrapped, nn.Module) and not self.trials:
            self.compiled = True
            for inner in wrapped.modules():
                if inner._buffers:
                    self.modules.setdefault(id(inner), inner)
            return
        key = id(module)
        if key in self.modules or key in self.saved or not module._buffers:
            return
        if self.trials:
            # a module that did not run in this step's first forward pass (its gradient
            # was reused): its buffers as they are before its first trial
            self.saved[key] = self._copy(module)
        else:
            self.modules[key] = module

    @staticmethod
    def _copy(module: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [(b, b.detach().clone()) for b in module._buffers.values() if b is not None]

    def start_trials(self) -> None:
        for key, module in self.modules.items():
            self.saved[key] = self._copy(module)
        self.trials = True

    def restore(self) -> None:
        with torch.no_grad():
            for pairs in self.saved.values():
                for buffer, copy in pairs:
                    buffer.copy_(copy)


class Optimizer(core.Optimizer, torch.optim.Optimizer):
    """The torch shell around descend's step pipeline (base of :class:`GD`, :class:`Adam`,
    :class:`Subgradient`).

    ``step(closure)`` follows descend's closure contract: ``closure()`` runs the forward
    pass and returns the loss tensor *without* calling backward; the optimizer zeroes the
    gradients, calls backward, and calls the closure again under ``torch.no_grad()`` at
    line-search trial points, replaying the random state (CPU and each CUDA device holding
    a parameter) so every trial sees the same dropout masks, and putting module buffers
    back afterwards. ``step`` returns the closure's loss; ``opt.last`` is a
    :class:`descend.optim.StepInfo` (its ``loss`` averaged over the process group under
    distributed training).

    Each param group holds ``"params"``, ``"rule"`` (the step rule), ``"lr"`` (a constant
    rule's learning rate, a factor on any other rule's step: what torch's
    ``lr_scheduler`` classes rewrite), ``"step_size"`` (the step the group took last, NaN
    before the first step) and ``"weight_decay"``; ``descend.optim.Optimizer`` defines
    them, and what one line search over several groups does.

    Sharded parameters (``DTensor``: FSDP2's ``fully_shard``) take part in every dot
    product and norm summed over their shards, so every rank reads the same numbers; they
    are updated in place, which the lean mode does (``lean=True``, required for them).
    """

    _param_type = torch.Tensor

    # ------------------------------------------------------------------ construction
    def _make_groups(self, params: Iterable[Any], lr: Any,
                     weight_decay: float) -> list[dict[str, Any]]:
        if isinstance(params, dict):
            raise ConfigError("params must be an iterable of tensors or of parameter-group "
                              "dicts, got a dict (pass [group] for one group)")
        groups = super()._make_groups(params, lr, weight_decay)
        self._engine.bind([p for g in groups for p in g["params"]])
        self._bound = False
        torch.optim.Optimizer.__init__(
            self, groups, {"rule": groups[0]["rule"], "lr": groups[0]["lr"],
                           "step_size": math.nan, "weight_decay": weight_decay})
        return self.param_groups

    def _init_step(self, direction: Any, max_grad_norm: float | None = None) -> None:
        super()._init_step(direction, max_grad_norm)
        self._engine.bind(self._params)
        self._bound = True
        if not self._lean and _sharded(self._params):
            raise ConfigError(
                "sharded parameters (DTensor, e.g. FSDP2's fully_shard) keep their storage: "
                "they must be updated in place; use descend.torch.GD or Adam with lean=True"
            )

    @staticmethod
    def _check_parameter(p: Any) -> None:
        if not isinstance(p, torch.Tensor):
            raise TypeError(f"descend.torch optimizers take torch tensors, got {type(p).__name__}")
        if not p.requires_grad:
            raise ConfigError(f"a parameter given to the optimizer (shape {tuple(p.shape)}) "
                              "does not require grad")
        if not p.is_leaf:
            raise ConfigError(
                f"a parameter given to the optimizer (shape {tuple(p.shape)}) is the result "
                "of an operation, not a leaf tensor; pass the model's parameters"
            )
        if not p.is_floating_point():
            raise DTypeError(f"parameters must be real floating-point tensors, got {p.dtype}")
        if p.layout != torch.strided:
            raise ConfigError(f"parameters must be dense (strided) tensors, got {p.layout}")
        if p.device.type == "meta":
            raise ConfigError("a parameter is on the meta device (it holds no values); "
                              "materialise the model first (model.to_empty(device=...))")

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a parameter group (before the first step: directions keep per-parameter
        state from then on)."""
        if not getattr(self, "_bound", True):  # torch's constructor adding our groups
            torch.optim.Optimizer.add_param_group(self, param_group)
            return
        if self.t > 0:
            raise ConfigError("add_param_group() after the first step: the direction's "
                              "state covers the parameters it started with; build a new "
                              "optimizer")
        if not isinstance(param_group, dict):
            raise ConfigError(f"a parameter group must be a dict, got {type(param_group).__name__}")
        group = dict(param_group)
        group.setdefault("lr", self.defaults["rule"])
        (new,) = core.Optimizer._make_groups(self, [group], self.defaults["rule"],
                                              self.defaults["weight_decay"])
        known = {id(p) for p in self._params}
        if any(id(p) in known for p in new["params"]):
            raise ConfigError("a parameter of the new group is already in the optimizer")
        self.param_groups.append(new)
        self._init_step(self.direction, self.max_grad_norm)

    # ------------------------------------------------------------------ the torch shell
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients: to None (default), or to zeros in place."""
        if set_to_none:
            self._engine.zero_grad(self._params)
            return
        for p in self._params:
            if p.grad is not None:
                p.grad.detach_()
                p.grad.zero_()

    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state in torch's layout.

        ``"state"``: per-parameter tensors by parameter index (``momentum_buffer``,
        ``exp_avg``, ``exp_avg_sq``, as torch's SGD and Adam name them); ``"param_groups"``:
        per group its parameter indices, ``"lr"``, ``"weight_decay"`` and ``"rule"`` (the
        step rule's state); ``"descend"``: the step count and the remaining state. Only
        tensors, numbers, strings, None, lists and dicts: ``torch.load(weights_only=True)``
        reads it back.
        """
        state = super().state_dict()
        n = len(self._params)
        direction = dict(state.pop("direction"))
        per_parameter: dict[int, dict[str, Any]] = {i: {} for i in range(n)}
        for key, name in _PER_PARAMETER.items():
            value = direction.get(key)
            if isinstance(value, list) and len(value) == n and n:
                del direction[key]
                for i, tensor in enumerate(value):
                    per_parameter[i][name] = tensor
        groups = []
        start = 0
        for group, rule_state in zip(self.param_groups, state.pop("rules")):
            count = len(group["params"])
            groups.append({"params": list(range(start, start + count)), "lr": group["lr"],
                           "step_size": group["step_size"],
                           "weight_decay": group["weight_decay"], "rule": rule_state})
            start += count
        state.pop("weight_decay", None)
        state.pop("group_lr", None)  # the groups' "lr" below
        state["direction"] = direction
        return {"state": {i: s for i, s in per_parameter.items() if s},
                "param_groups": groups, "descend": state}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output (same groups and parameter shapes); tensors go
        to their parameters' devices and dtypes, wherever they were saved."""
        missing = [k for k in ("state", "param_groups", "descend")
                   if not isinstance(state_dict, dict) or k not in state_dict]
        if missing:
            raise ConfigError("not a descend.torch optimizer state: missing "
                              f"{', '.join(repr(k) for k in missing)}")
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ConfigError(f"optimizer state has {len(groups)} parameter groups, this "
                              f"optimizer has {len(self.param_groups)}")
        for i, (saved, group) in enumerate(zip(groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ConfigError(f"parameter group {i} of the optimizer state has "
                                  f"{len(saved['params'])} parameters, this optimizer's has "
                                  f"{len(group['params'])}")
        n = len(self._params)
        per_parameter = {int(i): s for i, s in state_dict["state"].items()}
        rest = dict(state_dict["descend"])
        direction = dict(rest.get("direction", {}))
        for key, name in _PER_PARAMETER.items():
            if any(name in s for s in per_parameter.values()):
                direction[key] = [per_parameter[i][name] for i in range(n)]
        rest["direction"] = direction
        rest["rules"] = [g["rule"] for g in groups]
        rest["weight_decay"] = [g["weight_decay"] for g in groups]
        super().load_state_dict(rest)
        for saved, group in zip(groups, self.param_groups):
            group["lr"] = float(saved["lr"])
            group["step_size"] = float(saved.get("step_size", math.nan))

    def __getstate__(self) -> dict[str, Any]:
        return self.__dict__.copy()

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __repr__(self) -> str:
        return f"descend.torch.{core.Optimizer.__repr__(self)}"

    def line_values(self, alphas: Any, *, slopes: bool = False) -> Any:
        """phi(alpha) along the last recorded step's line (``descend.optim.Optimizer``'s
        :meth:`~descend.optim.Optimizer.line_values`), module buffers (BatchNorm's running
        statistics) left as they were."""
        guard = _BufferGuard()
        guard.start_trials()  # every module that runs: its buffers copied before it does
        try:
            with _forward_pre_hook(guard.hook):
                return super().line_values(alphas, slopes=slopes)
        finally:
            guard.restore()

    # ------------------------------------------------------------------ around the phases
    def _evaluate(self, closure: Any, same_batch: bool) -> Any:
        if closure is None or self._needs is Needs.NOTHING:
            return super()._evaluate(closure, same_batch)
        guard = _BufferGuard(getattr(self, "_compiled_modules", None))
        with guard.watching():
            start = super()._evaluate(closure, same_batch)
        self._guard = guard  # (kept only until this step's trials: it holds modules)
        if guard.compiled:
            self._compiled_modules = list(guard.modules.values())
        if self._needs is Needs.SLOPES and start.grads and self.engine.group() is not None:
            # DDP with gradient_as_bucket_view=True writes every backward pass into the same
            # buffers: the trials' backward passes would overwrite g, and d with it
            grads = self.engine.clone(start.grads)
            moving = grads if start.moving is start.grads else start.moving
            start = start._replace(grads=grads, moving=moving)
        return start

    def _reject(self, start: Any) -> None:
        # no trials in this step: drop the modules the guard noted, so that the optimizer
        # holds no reference to the model between steps (a DDP model kept alive past
        # destroy_process_group is torn down at interpreter exit, with its process group)
        self._guard = None
        super()._reject(start)

    def _choose(self, start: Any, line: Any, closure: Any) -> Any:
        if closure is None or self._needs is Needs.NOTHING:
            return super()._choose(start, line, closure)
        guard, self._guard = self._guard, None
        guard.start_trials()
        kept = self._grads_aside()
        try:
            with guard.watching():
                return super()._choose(start, line, closure)
        finally:
            guard.restore()
            self._grads_back(kept)

    # ------------------------------------------------------------------ the loops people write
    def step(self, closure: Any = None, *, same_batch: bool = False, loss: Any = None,
             scaler: Any = None) -> Any:
        """Take one step; the loss at its start.

        ``closure()`` runs the forward pass and returns the loss; it may call
        ``backward()`` itself (torch's convention: ``torch.optim.LBFGS`` closures,
        Lightning's automatic optimisation): its backward pass is then the step's, and at
        line-search trial points, which need the loss only, its backward call is dropped
        (``opt.last.closure_backward``). Without a closure the gradients in ``.grad`` are
        used, for rules that need no trial points; ``loss=`` gives them the loss that
        backward pass started from (``loss.backward(); opt.step(loss=loss)``).

        ``scaler``: a ``torch.amp.GradScaler`` for float16 training: the optimizer calls
        backward on ``scaler.scale(loss)`` and unscales the gradients (the step's with
        ``scaler.unscale_(opt)``); a step whose gradient is not finite makes no update.
        Call ``scaler.update()`` after the step, as after ``scaler.step(opt)``.
        ``torch.autocast`` may be inside the closure or around ``step``: trial points are
        evaluated in the same autocast as the closure's first call, with casts of the
        trial point's parameters.
        """
        engine = self._engine
        engine.loss_scaling = self._loss_scaling(scaler, closure)
        try:
            out = super().step(closure, same_batch=same_batch, loss=loss)
        finally:
            engine.loss_scaling = None
            torch.clear_autocast_cache()  # an enclosing autocast must not keep trial casts
        if self.last is not None and closure is not None:
            self.last.closure_backward = engine.closure_backward
        return out

    def _loss_scaling(self, scaler: Any, closure: Any) -> LossScaling | None:
        """The step's :class:`~descend.torch.engine.LossScaling` for ``scaler``, checked."""
        if scaler is None:
            return None
        if not isinstance(scaler, torch.amp.GradScaler):
            raise ConfigTypeError("scaler must be a torch.amp.GradScaler, got "
                                  f"{type(scaler).__name__}")
        if closure is None:
            raise ConfigError(
                "step(scaler=...) needs a closure (the optimizer calls backward on the "
                "scaled loss); without one, torch's own loop works for rules without trial "
                "points: scaler.scale(loss).backward(); scaler.step(opt, loss=loss)")
        return LossScaling(scaler, self)

    def _grads_aside(self) -> list[Any] | None:
        """Before the trials of a closure that calls backward itself: its gradients, taken
        out of ``.grad`` (so that a ``zero_grad`` or backward call in a trial cannot touch
        the step's gradient); None for other closures."""
        if not self._engine.closure_backward:
            return None
        kept = [p.grad for p in self._params]
        self._engine.zero_grad(self._params)
        return kept

    def _grads_back(self, kept: list[Any] | None) -> None:
        """After the trials: the step's gradients back in ``.grad``."""
        if kept is not None:
            for p, g in zip(self._params, kept):
                p.grad = g


def _sharded(params: list[Any]) -> bool:
    """Whether any parameter is a ``DTensor`` (sharded over a device mesh)."""
    if "torch.distributed.tensor" not in sys.modules:  # none can exist (2 s to import)
        return False
    from torch.distributed.tensor import DTensor

    return any(isinstance(p, DTensor) for p in params)


@contextmanager
def _forward_pre_hook(hook: Any) -> Iterator[None]:
    handle = nn.modules.module.register_module_forward_pre_hook(hook)
    try:
        yield
    finally:
        handle.remove()


class GD(Optimizer, core.GD):
    """Gradient descent on torch parameters: ``descend.optim.GD`` (same arguments, same
    step rules) as a ``torch.optim.Optimizer``.

    x <- x + alpha_t d_t with d_t = -g_t, heavy-ball or Nesterov momentum, and alpha_t
    from ``lr``: a float, a schedule ``t -> lr`` or a step rule (``Armijo()`` on
    mini-batches is the stochastic line search of Vaswani et al., 2019).

    Parameters
    ----------
    params : iterable of torch.Tensor or of parameter-group dicts
    lr : float, callable or StepRule
    momentum : float in [0, 1)
    nesterov : bool
    weight_decay : float >= 0
        L2 penalty lambda: the objective is f + (lambda/2) ||x||^2.
    max_grad_norm : float or None
        Clip the gradient to this global norm before it makes the direction.
    process_group : torch.distributed.ProcessGroup, optional
        Average every loss the optimizer reads over this group (default: the default
        group when ``torch.distributed`` is initialised).
    lean : bool
        Keep no spare copy of the parameters (one parameter-sized buffer less): moves and
        line-search trials in place, x back to rounding after the trials, no ``undo``
        (``descend.optim.Optimizer`` documents the trade).

    The step runs on a :class:`~descend.torch.engine.TorchEngine` that the constructor
    makes (``descend.optim``'s ``engine=`` is the one core argument these classes do not
    take).
    """

    def __init__(self, params: Iterable[Any], lr: Any = 0.1, momentum: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0, *,
                 max_grad_norm: float | None = None, process_group: Any = None,
                 lean: bool = False):
        core.GD.__init__(self, params, lr, momentum, nesterov, weight_decay,
                         max_grad_norm=max_grad_norm,
                         engine=TorchEngine(process_group=process_group), lean=lean)


class Adam(Optimizer, core.Adam):
    """Adam (Kingma & Ba, 2015) on torch parameters: ``descend.optim.Adam`` as a
    ``torch.optim.Optimizer``; ``lr`` may be a schedule or a step rule too.

    x <- x - alpha m_hat / (sqrt(v_hat) + eps). ``max_grad_norm``, ``process_group`` and
    ``lean`` as in :class:`GD`.
    """

    def __init__(self, params: Iterable[Any], lr: Any = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, *, max_grad_norm: float | None = None,
                 process_group: Any = None, lean: bool = False):
        core.Adam.__init__(self, params, lr, betas, eps, weight_decay,
                           max_grad_norm=max_grad_norm,
                           engine=TorchEngine(process_group=process_group), lean=lean)


class Subgradient(Optimizer, core_subgradient.Subgradient):
    """The subgradient method on torch parameters, with best-iterate tracking
    (``best_loss``, ``best_step``, ``restore_best()``, ``guarantee(R, G)``):
    ``descend.optim.Subgradient`` as a ``torch.optim.Optimizer``.

    x_{k+1} = x_k - alpha_k g_k; ``lr`` a float, a schedule, ``ConstantLength`` or
    ``Polyak`` (line searches are refused: -g need not be a descent direction).
    ``max_grad_norm`` and ``process_group`` as in :class:`GD`.
    """

    def __init__(self, params: Iterable[Any], lr: Any = 0.01, weight_decay: float = 0.0, *,
                 max_grad_norm: float | None = None, process_group: Any = None):
        core_subgradient.Subgradient.__init__(self, params, lr, weight_decay,
                                              max_grad_norm=max_grad_norm,
                                              engine=TorchEngine(process_group=process_group))


class LBFGS(Optimizer, core_quasi_newton.LBFGS):
    """L-BFGS on torch parameters: ``descend.optim.LBFGS`` (the two-loop recursion over the
    last ``history_size`` curvature pairs, strong Wolfe by default; any step rule) as a
    ``torch.optim.Optimizer``, with the same arguments.

    ``max_iter`` is ``torch.optim.LBFGS``'s: up to that many iterations in one
    ``step(closure)`` call, each after the first reusing the gradient the line search
    computed at the point it accepted. The default is 1 (torch's is 20): one iteration per
    call, where a full-batch loop should pass ``step(closure, same_batch=True)`` to get
    that reuse. The iterations stop early after one that does not move the parameters;
    there are no ``max_eval``, ``tolerance_grad`` and ``tolerance_change`` (the search
    rules stop at working precision), and the line search's constants are the rule's
    (``descend.optim.LBFGS`` documents all of it). ``max_grad_norm`` and ``process_group``
    as in :class:`GD`.
    """

    def __init__(self, params: Iterable[Any], lr: Any = None, history_size: int = 10,
                 curvature_eps: float = 1e-10, weight_decay: float = 0.0,
                 max_iter: int = 1, *, max_grad_norm: float | None = None,
                 process_group: Any = None):
        core_quasi_newton.LBFGS.__init__(self, params, lr, history_size, curvature_eps,
                                         weight_decay, max_iter, max_grad_norm=max_grad_norm,
                                         engine=TorchEngine(process_group=process_group))


class CG(Optimizer, core_quasi_newton.CG):
    """Nonlinear conjugate gradients on torch parameters: ``descend.optim.CG`` (beta in FR,
    PR+, HS, DY; strong Wolfe with c2 = 0.1 by default) as a ``torch.optim.Optimizer``,
    with the same arguments: ``max_iter`` iterations per ``step(closure)`` as for
    :class:`LBFGS`. ``max_grad_norm`` and ``process_group`` as in :class:`GD`."""

    def __init__(self, params: Iterable[Any], lr: Any = None, beta: str = "PR+",
                 restart: int | None = None, weight_decay: float = 0.0, max_iter: int = 1,
                 *, max_grad_norm: float | None = None, process_group: Any = None):
        core_quasi_newton.CG.__init__(self, params, lr, beta, restart, weight_decay, max_iter,
                                      max_grad_norm=max_grad_norm,
                                      engine=TorchEngine(process_group=process_group))


class Momo(Optimizer, core_momo.Momo):
    """MoMo on torch parameters: ``descend.optim.Momo`` (momentum with the Polyak step of an
    averaged model, Schaipp et al., ICML 2024) as a ``torch.optim.Optimizer``, with the same
    arguments and the authors' defaults (``lr=1.0`` the cap, ``beta=0.9``, ``lb=0``).

    ``weight_decay`` is MoMo's proximal step, x <- x / (1 + alpha lambda) after the move.
    ``max_grad_norm`` and ``process_group`` as in :class:`GD`.
    """

    def __init__(self, params: Iterable[Any], lr: Any = 1.0, beta: float = 0.9,
                 weight_decay: float = 0.0, lb: float = 0.0, bias_correction: bool = False,
                 estimate_lb: bool = False, *, max_grad_norm: float | None = None,
                 process_group: Any = None):
        core_momo.Momo.__init__(self, params, lr, beta, weight_decay, lb, bias_correction,
                                estimate_lb, max_grad_norm=max_grad_norm,
                                engine=TorchEngine(process_group=process_group))


class MomoAdam(Optimizer, core_momo.MomoAdam):
    """MoMo-Adam on torch parameters: ``descend.optim.MomoAdam`` (Adam's preconditioned
    momentum with MoMo's model step) as a ``torch.optim.Optimizer``, with the same
    arguments and the authors' defaults (``lr=1e-2`` the cap, ``betas=(0.9, 0.999)``).
    ``max_grad_norm`` and ``process_group`` as in :class:`GD`."""

    def __init__(self, params: Iterable[Any], lr: Any = 1e-2,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, lb: float = 0.0, divide: bool = True,
                 estimate_lb: bool = False, *, max_grad_norm: float | None = None,
                 process_group: Any = None):
        core_momo.MomoAdam.__init__(self, params, lr, betas, eps, weight_decay, lb, divide,
                                    estimate_lb, max_grad_norm=max_grad_norm,
                                    engine=TorchEngine(process_group=process_group))
