"""MoMo and MoMo-Adam: momentum (or Adam) with the step of an averaged model of the loss.

Schaipp, Ohana, Eickenberg, Defazio & Gower, "MoMo: Momentum Models for Adaptive Learning
Rates", ICML 2024; the authors' implementation is the ``momo`` package (``momo.Momo``,
``momo.MomoAdam``), which ``tests/optim/test_momo.py`` runs beside these classes.

How MoMo splits into descend's pieces. The step size is a rule,
:class:`~descend.optim.rules.polyak.MomoStep` (beside Polyak's: it is a Polyak step, of a
model rather than of the last linearisation). The model it reads is made of running
averages of the loss, of the gradient and of <g, x>, all with the momentum's factor beta;
the averaged gradient is also what the step moves along. So the averages live in one
place, the direction (:class:`MomoDirection`), which hands the rule a
:class:`~descend.optim.rules.polyak.MomoModel` each step: the rule keeps only its own state
(the cap and the lower bound), the direction its vectors. The direction needs the point
x_k and the loss besides the gradient, which a direction is not given; the optimizers here
tell it in the step's first hook (``_on_start``), and bind the rule to it.

MoMo's weight decay is a proximal step, x_{k+1} = (x_k - tau_k d_k) / (1 + alpha_k lambda),
not an L2 term added to the gradient: it is taken after the move (``_on_end``), and lambda
enters the model. The optimizers' ``weight_decay`` is that lambda.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..checks import check_number, check_step_size
from ..engine.base import Engine, Vector
from ..errors import ConfigError
from .directions import Direction
from .optimizer import Optimizer
from .rules.polyak import MomoModel, MomoStep

__all__ = ["Momo", "MomoAdam", "MomoDirection", "MomoState"]


@dataclass
class MomoState:
    """The running averages: step count, d (``m``), Adam's v, the loss and <g, x>."""

    t: int = 0
    m: Vector = field(default_factory=list)
    v: Vector = field(default_factory=list)
    loss: float = 0.0
    gamma: float = 0.0


class MomoDirection(Direction):
    """MoMo's averaged gradient (or MoMo-Adam's preconditioned one), keeping the model.

    At step k, with the loss f_k, the gradient g_k and the point x_k:

        d_k = beta d_{k-1} + (1 - beta) g_k,
        f_bar_k = beta f_bar_{k-1} + (1 - beta) f_k,
        gamma_k = beta gamma_{k-1} + (1 - beta) <g_k, x_k>,

    started at d = 0, f_bar = gamma = 0 with bias correction (rho_k = 1 - beta^k), else at
    d_1 = g_1, f_bar_1 = f_1, gamma_1 = <g_1, x_1> (rho_k = 1). The direction is -d_k.
    With ``adam=(beta2, eps)`` (MoMo-Adam, always bias-corrected) also
    v_k = beta2 v_{k-1} + (1 - beta2) g_k^2, D_k = sqrt(v_k / (1 - beta2^k)) + eps, and the
    direction is -d_k / D_k (no 1 / (1 - beta^k): MoMo's rule divides its cap by rho_k).

    After each ``compute``, ``model`` is the :class:`MomoModel` of that step (``decay`` is
    the proximal weight decay lambda the optimizer applies). :meth:`observe` must give the
    loss and the point first.
    """

    sign = -1.0

    def __init__(self, beta: float = 0.9, *, bias_correction: bool = False,
                 adam: tuple[float, float] | None = None, decay: float = 0.0):
        self.beta = check_number("beta", beta, 0.0, 1.0)
        if not isinstance(bias_correction, bool):
            raise ConfigError(f"bias_correction must be True or False, got {bias_correction!r}")
        self.bias_correction = bias_correction or adam is not None
        if adam is not None:
            if not isinstance(adam, tuple | list) or len(adam) != 2:
                raise ConfigError(f"adam must be a pair (beta2, eps) or None, got {adam!r}")
            self.beta2 = check_number("betas[1]", adam[0], 0.0, 1.0)
            self.eps = check_step_size("eps", adam[1], allow_zero=True)
        self.adam = adam is not None
        self.decay = check_step_size("weight_decay", decay, allow_zero=True)
        self.state = MomoState()
        self.model: MomoModel | None = None
        self._at: tuple[float, Vector] | None = None

    def observe(self, loss: float, x: Vector) -> None:
        """The loss f_k and the point x_k of the coming ``compute``."""
        self._at = (loss, x)

    def compute(self, grads: Vector) -> Vector:
        if self._at is None:
            raise ConfigError("MomoDirection needs the loss and the point of each step "
                              "(observe(loss, x) before compute): use Momo or MomoAdam")
        (loss, x), self._at = self._at, None
        s, b, engine = self.state, self.beta, self.engine
        gx = engine.dot(grads, x)
        if not s.m:
            self._start(grads, loss, gx)
        s.t += 1
        for m, g in zip(s.m, grads):
            m *= b
            m += (1 - b) * g
        s.loss = b * s.loss + (1 - b) * loss
        s.gamma = b * s.gamma + (1 - b) * gx
        step = self._preconditioned(grads) if self.adam else s.m
        rho = 1 - b**s.t if self.bias_correction else 1.0
        self.model = MomoModel(s.loss, s.gamma, engine.dot(x, s.m), engine.dot(s.m, step),
                               rho, self.decay)
        return step

    def _start(self, grads: Vector, loss: float, gx: float) -> None:
        """The averages before the first step: 0 with bias correction, else the first
        values (so that the first average is the first value)."""
        s = self.state
        if self.bias_correction:
            s.m, s.loss, s.gamma = self.engine.zeros_like(grads), 0.0, 0.0
        else:
            s.m, s.loss, s.gamma = self.engine.clone(grads), loss, gx
        if self.adam:
            s.v = self.engine.zeros_like(grads)

    def _preconditioned(self, grads: Vector) -> Vector:
        """d_k / D_k, updating v (MoMo-Adam)."""
        s = self.state
        c2 = 1 - self.beta2**s.t
        out = []
        for m, v, g in zip(s.m, s.v, grads):
            v *= self.beta2
            v += (1 - self.beta2) * (g * g)
            denom = self.engine.sqrt(v / c2)
            denom += self.eps
            out.append(m / denom)
        return out

    def state_dict(self) -> dict[str, Any]:
        s = self.state
        state: dict[str, Any] = {"t": s.t, "m": self.engine.clone(s.m), "loss": s.loss,
                                 "gamma": s.gamma}
        if self.adam:
            state["v"] = self.engine.clone(s.v)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        v = self.engine.from_state(state["v"]) if self.adam else []
        self.state = MomoState(int(state["t"]), self.engine.from_state(state["m"]), v,
                               float(state["loss"]), float(state["gamma"]))
        self.model = None
        self._at = None


class _MomoShell(Optimizer):
    """What Momo and MomoAdam share: the rule bound to the direction, the point and the
    loss told to it, and the proximal (or decoupled) weight decay after the move."""

    direction: MomoDirection
    _divide = True

    def _build(self, params: Iterable[Any], lr: Any, lb: float, estimate_lb: bool,
               direction: MomoDirection, max_grad_norm: float | None,
               engine: Engine | None) -> None:
        if isinstance(lr, MomoStep):
            if lb != 0.0 or estimate_lb:
                raise ConfigError("lb and estimate_lb are MomoStep's: give them to the "
                                  "MomoStep passed as lr, not beside it")
            rule = lr
        else:
            rule = MomoStep(lr, lb, estimate_lb)
        super().__init__(params, rule, 0.0, direction, max_grad_norm=max_grad_norm,
                         engine=engine)
        for i, group in enumerate(self.param_groups):
            if group["rule"] is not rule or group["weight_decay"] != 0:
                raise ConfigError(
                    f"parameter group {i} sets its own lr or weight_decay: "
                    f"{type(self).__name__}'s step and proximal weight decay are one for "
                    "all parameters")
        rule.bind(direction)
        self._x0: Vector | None = None

    def _on_start(self, loss: float, x0: Vector) -> None:
        self.direction.observe(loss, x0)
        self._x0 = x0

    def _on_end(self, alpha: float) -> None:
        decay = self.direction.decay
        x0, self._x0 = self._x0, None
        if not decay:
            return
        factor = self.rule.last_cap * decay
        if factor == 0:
            return
        for x, start in zip(self.engine.values(self.params), x0 or []):
            if self._divide:  # the proximal step: argmin of the model plus (lambda/2)||x||^2
                x /= 1 + factor
            else:  # AdamW's decoupled form, from the step's starting point
                x -= factor * start


class Momo(_MomoShell):
    """MoMo: momentum whose step size is the Polyak step of an averaged model of the loss.

    x_{k+1} = (x_k - tau_k d_k) / (1 + alpha_k lambda), with d_k the exponential average
    of the gradients (:class:`MomoDirection`) and tau_k MoMo's step
    (:class:`~descend.optim.rules.polyak.MomoStep`): the model's Polyak step, at most
    alpha_k / rho_k. Schaipp et al., ICML 2024, Algorithm 1; the defaults are the authors'
    (``momo.Momo``): ``lr=1.0``, ``beta=0.9``, ``lb=0``, no bias correction.

    Parameters
    ----------
    params : iterable of Tensor or parameter groups
        Groups may split the parameters but not set their own ``lr`` or ``weight_decay``.
    lr : float, schedule or MomoStep
        The cap alpha_k of the step (a number, a schedule ``t -> alpha``, a schedule rule),
        or the rule itself (``MomoStep(lr, lb, estimate_lb)``).
    beta : float in [0, 1)
        The averages' factor (momentum).
    weight_decay : float >= 0
        lambda of the proximal step (not an L2 term added to the gradient).
    lb : float
        A lower bound of the loss (0 for non-negative losses).
    bias_correction : bool
        Averages started from 0 and the cap divided by 1 - beta^k.
    estimate_lb : bool
        MoMo*: estimate the lower bound online (never below ``lb``).
    max_grad_norm, engine
        As for :class:`~descend.optim.GD`.

    Deliberate differences from ``momo.Momo``: <g, x> is averaged as one sum over every
    parameter (the authors average it per parameter and add the averages: the same number
    up to rounding); the step needs ``step(closure)`` (descend's closure contract: the
    optimizer calls backward); a zero averaged gradient makes no step (status ``FLAT``)
    where the authors divide by zero.
    """

    def __init__(self, params: Iterable[Any], lr: Any = 1.0, beta: float = 0.9,
                 weight_decay: float = 0.0, lb: float = 0.0, bias_correction: bool = False,
                 estimate_lb: bool = False, *, max_grad_norm: float | None = None,
                 engine: Engine | None = None):
        direction = MomoDirection(beta, bias_correction=bias_correction, decay=weight_decay)
        self._build(params, lr, lb, estimate_lb, direction, max_grad_norm, engine)
        self.beta = direction.beta
        self.weight_decay = direction.decay


class MomoAdam(_MomoShell):
    """MoMo-Adam: Adam's preconditioned momentum with MoMo's model step.

    x_{k+1} = (x_k - tau_k D_k^{-1} d_k) / (1 + alpha_k lambda) with d_k, D_k Adam's first
    moment and preconditioner (bias-corrected second moment, ``eps`` added to its root)
    and tau_k MoMo's step in the metric of D_k, at most alpha_k / (1 - beta1^k)
    (Schaipp et al., ICML 2024, Algorithm 3). The defaults are the authors'
    (``momo.MomoAdam``): ``lr=1e-2``, ``betas=(0.9, 0.999)``, ``eps=1e-8``, ``lb=0``, the
    proximal weight decay (``divide=True``); ``divide=False`` is AdamW's decoupled form,
    x_{k+1} = (1 - alpha_k lambda) x_k - tau_k D_k^{-1} d_k.

    Other parameters and the deliberate differences from ``momo.MomoAdam`` as for
    :class:`Momo`.
    """

    def __init__(self, params: Iterable[Any], lr: Any = 1e-2,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, lb: float = 0.0, divide: bool = True,
                 estimate_lb: bool = False, *, max_grad_norm: float | None = None,
                 engine: Engine | None = None):
        if not isinstance(betas, tuple | list) or len(betas) != 2:
            raise ConfigError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        if not isinstance(divide, bool):
            raise ConfigError(f"divide must be True or False, got {divide!r}")
        direction = MomoDirection(check_number("betas[0]", betas[0], 0.0, 1.0),
                                  adam=(betas[1], eps), decay=weight_decay)
        self._divide = divide
        self._build(params, lr, lb, estimate_lb, direction, max_grad_norm, engine)
        self.betas = (direction.beta, direction.beta2)
        self.eps = direction.eps
        self.weight_decay = direction.decay
