"""Steps set by the gradient's norm: the Polyak step, MoMo's model step, steps of constant length.

Both size the step from ||g|| (and for Polyak the gap f - f*) rather than from the step
count or trial points, both are the step-length rules of the subgradient method (Boyd &
Mutapcic, *Subgradient Methods*, §3.1-3.2), and both would turn a gradient that is only
rounding noise into a step of set size, so they share one guard
(:func:`~descend.optim.rules.base.gradient_is_noise`) and its ``FLAT`` status. Neither
evaluates trial points (``Needs.NOTHING``), yet neither is a schedule: that is why
``ConstantLength`` lives here rather than in :mod:`~descend.optim.rules.schedules`.

:class:`MomoStep` is the Polyak step of a model built from running averages (MoMo, Schaipp
et al., 2024): the averages are kept by the direction that makes the step
(:class:`~descend.optim.momo.MomoDirection`), which hands the rule a :class:`MomoModel`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol, runtime_checkable

from ...checks import check_step_size, is_real
from ...errors import ConfigError
from ...linesearch import LineSearchStatus
from .base import Needs, StatelessRule, StepChoice, StepContext, StepRule, gradient_is_noise

__all__ = ["ConstantLength", "ModelSource", "MomoModel", "MomoStep", "Polyak"]


class ConstantLength(StatelessRule):
    """alpha_t = gamma / ||d||: every step moves the parameters by exactly gamma (with
    d = -g, gamma / ||g||). For convex Lipschitz f, f_best reaches within G*gamma/2 of f*
    (Boyd & Mutapcic, §3.1); use a diminishing gamma for exact convergence.

    The step's length does not shrink with the gradient, so where the gradient is rounding
    noise (a minimiser of a smooth f reached to working precision) the rule would normalise
    the noise into a step of length gamma in a meaningless direction. There it takes no
    step (lr 0, status ``FLAT``), as ``Polyak(f_star=None)`` does, by the same test:
    ||g|| <= sqrt(eps) (1 + |f|), eps the working precision (:func:`gradient_is_noise`).
    Also no step (``FLAT``) along a zero direction.
    """

    def __init__(self, gamma: float):
        self.gamma = check_step_size("gamma", gamma)

    def __call__(self, ctx: StepContext) -> StepChoice:
        if ctx.direction_norm == 0 or gradient_is_noise(ctx):  # nothing to move along
            return StepChoice(0.0, status=LineSearchStatus.FLAT)
        return StepChoice(self.gamma / ctx.direction_norm)


class Polyak:
    """The Polyak step alpha = min((f - f*) / (c ||g||^2), max_lr) along d = -g.

    With the optimal value f* known and c = 1 this is Polyak's step (Polyak, 1987, §5.3),
    optimal for convex Lipschitz functions; c = 0.5 with a finite ``max_lr`` is the
    stochastic Polyak step SPS_max (Loizou et al., 2021), with f* the minimum of each
    mini-batch's loss (0 for interpolating models).

    The step is the one at which the first-order model f - alpha ||g||^2 along -g reaches
    the target, so it serves the (sub)gradient direction only: ``GD`` without momentum
    and ``Subgradient``. Optimizers refuse it with momentum or Adam (``ConfigError``):
    along Adam's scaled direction, or a momentum direction nearly orthogonal to g, the
    same model, with the slope g . d in place of -||g||^2, asks for unbounded steps (from
    the optimum of logistic regression, Adam's f - f* passes 1e7 within 200 steps). As a
    last guard a direction that is not -g gets no step (status ``NOT_DESCENT``).

    With ``f_star=None`` the target is estimated as f_best - gamma_t with
    gamma_t = gamma / sqrt(t + 1), a nonsummable diminishing offset (Boyd & Mutapcic, §3.2:
    the "estimated optimal value" step), which converges without knowing f* for Lipschitz
    f. Its gap never falls below gamma_t, so where the gradient vanishes (the minimum of a
    smooth f) the step gamma_t / ||g||^2 would be unbounded: there the rule takes no step
    (status ``FLAT``) once ||g|| <= sqrt(eps) (1 + |f|), eps the working precision: a
    gradient that small moves a smooth f by less than its rounding error over any step the
    first-order model can be trusted with (:func:`gradient_is_noise`; Gill, Murray &
    Wright, *Practical Optimization*, §8.2.3). ``ConstantLength`` uses the same test.
    """

    needs = Needs.NOTHING
    #: the step is defined along d = -g only (optimizers check it)
    gradient_direction_only = True

    def __init__(
        self,
        f_star: float | None = 0.0,
        c: float = 1.0,
        max_lr: float = math.inf,
        gamma: float = 1.0,
    ):
        if f_star is not None and (not is_real(f_star) or not math.isfinite(f_star)):
            raise ConfigError(f"f_star must be a finite number or None, got {f_star!r}")
        self.f_star = None if f_star is None else float(f_star)
        self.c = check_step_size("c", c)
        self.max_lr = check_step_size("max_lr", max_lr, allow_inf=True)
        self.gamma = check_step_size("gamma", gamma)
        self.f_best = math.inf

    def target(self, ctx: StepContext) -> float:
        """The value f* the step aims at (known, or f_best minus a shrinking offset)."""
        if self.f_star is not None:
            return self.f_star
        self.f_best = min(self.f_best, ctx.loss)
        return self.f_best - self.gamma / math.sqrt(ctx.t + 1)

    def __call__(self, ctx: StepContext) -> StepChoice:
        gap = ctx.loss - self.target(ctx)
        g2 = ctx.grad_norm**2
        if g2 == 0:
            return StepChoice(0.0, status=LineSearchStatus.FLAT)
        if not (ctx.direction_norm == ctx.grad_norm
                and math.isclose(-ctx.slope, g2, rel_tol=1e-9)):  # d is not -g
            return StepChoice(0.0, status=LineSearchStatus.NOT_DESCENT)
        if gap <= 0:  # at or below the target: nothing to aim at
            return StepChoice(0.0, status=LineSearchStatus.FLAT)
        if self.f_star is None and gradient_is_noise(ctx):
            return StepChoice(0.0, status=LineSearchStatus.FLAT)
        return StepChoice(min(gap / (self.c * g2), self.max_lr))

    def state_dict(self) -> dict[str, Any]:
        return {"f_best": self.f_best}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        f_best = state["f_best"]
        if not (is_real(f_best) and not math.isnan(f_best)) or f_best == -math.inf:
            raise ConfigError(f"Polyak state: f_best must be a number or inf, got {f_best!r}")
        self.f_best = float(f_best)

    def __repr__(self) -> str:
        return f"Polyak(f_star={self.f_star}, c={self.c}, max_lr={self.max_lr})"


class MomoModel(NamedTuple):
    """What MoMo's averaged model of the loss is made of at step k (Schaipp et al., 2024).

    The model averages the linearisations f_i(x_i) + <g_i, x - x_i> of the steps so far,
    weighted as the direction's averages are (exponentially, with factor beta):

        m_k(x) = (f_bar_k + <d_k, x> - gamma_k) / rho_k,

    with f_bar_k the averaged loss, d_k the averaged gradient (the direction's momentum)
    and gamma_k the averaged <g_i, x_i>. Without bias correction rho_k = 1 and the weights
    sum to 1 (f_bar_1 = f_1, d_1 = g_1); with it the averages start from 0 and
    rho_k = 1 - beta^k is the sum of their weights.

    Attributes
    ----------
    loss : float
        f_bar_k.
    gamma : float
        gamma_k.
    dot : float
        <d_k, x_k>: the averaged gradient against the current point.
    norm_sq : float
        ||d_k||^2 in the metric of the step: ||d_k||^2 for MoMo, d_k' D_k^{-1} d_k for
        MoMo-Adam (D_k = diag(sqrt(v_k / (1 - beta2^k)) + eps), Adam's preconditioner).
    rho : float
        rho_k: 1, or 1 - beta^k with bias correction.
    decay : float
        lambda, the weight decay of a proximal step (0 for none): the optimizer divides
        the moved point by 1 + alpha_k lambda (:class:`~descend.optim.momo.Momo`).
    """

    loss: float
    gamma: float
    dot: float
    norm_sq: float
    rho: float = 1.0
    decay: float = 0.0


@runtime_checkable
class ModelSource(Protocol):
    """Where :class:`MomoStep` reads its model: a direction that keeps MoMo's averages
    (:class:`~descend.optim.momo.MomoDirection`), whose ``model`` is that of the direction
    it computed last (None before the first)."""

    model: MomoModel | None


class MomoStep:
    """MoMo's step: the Polyak step of a model built from averaged losses and gradients.

    Schaipp, Ohana, Eickenberg, Defazio & Gower, "MoMo: Momentum Models for Adaptive
    Learning Rates", ICML 2024 (Algorithm 1 for MoMo, Algorithm 3 for MoMo-Adam, §5 for
    the online lower bound, MoMo*). With the averages of :class:`MomoModel` and a lower
    bound ``lb`` of the loss, the next point minimises the truncated model plus a proximal
    term,

        x_{k+1} = argmin_x  max(lb, m_k(x)) + (lambda / 2) ||x||^2 + ||x - x_k||^2 / (2 alpha_k),

    whose solution is a step along -d_k (or -D_k^{-1} d_k for MoMo-Adam) of length

        tau_k = min(alpha_k / rho_k,
                    [(1 + alpha_k lambda)(f_bar_k - rho_k lb - gamma_k) + <d_k, x_k>]_+
                    / ||d_k||^2),

    followed, with weight decay lambda > 0, by x_{k+1} <- x_{k+1} / (1 + alpha_k lambda).
    The rule answers tau_k; ``lr`` is the cap alpha_k (the authors' "learning rate": 1 for
    MoMo, 1e-2 for MoMo-Adam), a number or a schedule of the step count, and
    ``last_cap`` is alpha_k of the last step (read by the proximal weight decay). No trial
    point is evaluated and no extra forward pass is made: the model is made of the values
    and gradients the steps computed anyway.

    ``lb`` is a lower bound of the loss: 0 for non-negative losses (cross-entropy, squared
    error), the authors' default. With ``estimate_lb=True`` (MoMo*) the bound is
    estimated online from the model: before the step, when the model's value at x_k falls
    below rho_k lb, lb is reset to half that value; after it, lb is set to the value the
    model predicts at x_{k+1},
    (f_bar_k + <d_k, x_k> - gamma_k - tau_k ||d_k||^2 / 2) / rho_k, never below the
    ``lb`` given (the safeguard).

    The model is read from the direction the rule is bound to (:meth:`bind`, done by
    :class:`~descend.optim.momo.Momo` and :class:`~descend.optim.momo.MomoAdam`). Unbound,
    along the negative gradient (``GD`` without momentum) the rule is MoMo with beta = 0:
    the model is the current linearisation alone and tau = min(alpha, (f - lb)_+ / ||g||^2),
    the capped Polyak step (SPS_max with c = 1); along any other direction unbound it
    refuses to step (``ConfigError``: only MoMo's directions keep the averages it reads).
    """

    needs = Needs.NOTHING

    def __init__(self, lr: Any = 1.0, lb: float = 0.0, estimate_lb: bool = False):
        self.lr = _cap(lr)
        if not is_real(lb) or not math.isfinite(lb):
            raise ConfigError(f"lb must be a finite number, got {lb!r}")
        if not isinstance(estimate_lb, bool | int) or estimate_lb not in (0, 1):
            raise ConfigError(f"estimate_lb must be True or False, got {estimate_lb!r}")
        self.lb0 = float(lb)
        self.estimate_lb = bool(estimate_lb)
        #: the lower bound in use: ``lb``, or its online estimate
        self.lb = self.lb0
        #: alpha_k of the last step (the cap; the proximal weight decay's factor)
        self.last_cap = math.nan
        self._source: ModelSource | None = None

    def bind(self, source: ModelSource) -> None:
        """Read the model from ``source`` (a direction keeping MoMo's averages)."""
        if not isinstance(source, ModelSource):
            raise ConfigError(f"MomoStep reads its model from a direction keeping MoMo's "
                              f"averages, not {type(source).__name__}")
        self._source = source

    def cap(self, ctx: StepContext) -> float:
        """alpha_k: the cap of this step (the number, or the schedule at step k)."""
        lr = self.lr
        if isinstance(lr, float):
            return lr
        if isinstance(lr, StepRule):
            return float(lr(ctx).lr)
        return float(lr(ctx.t))

    def __call__(self, ctx: StepContext) -> StepChoice:
        alpha = self.cap(ctx)
        if not math.isfinite(alpha) or alpha < 0:
            raise ConfigError(f"MoMo's cap lr={self.lr!r} gave an invalid step size {alpha!r}")
        self.last_cap = alpha
        model = self._model(ctx)
        if not math.isfinite(model.loss):
            raise ConfigError("MoMo's step needs the loss: call step(closure), not step() "
                              f"after your own backward pass (the averaged loss is {model.loss})")
        if not model.norm_sq > 0 or not math.isfinite(model.norm_sq):
            return StepChoice(0.0, status=LineSearchStatus.FLAT)  # nothing to move along
        tau = self._tau(model, alpha)
        return StepChoice(tau, status=LineSearchStatus.FLAT if tau == 0 else None)

    def _model(self, ctx: StepContext) -> MomoModel:
        """The bound direction's model, or (unbound, along -g) the current linearisation."""
        if self._source is not None:
            model = self._source.model
            if model is None:
                raise ConfigError("MomoStep's direction has computed no model yet")
            return model
        g2 = ctx.grad_norm**2
        if not (ctx.direction_norm == ctx.grad_norm
                and math.isclose(-ctx.slope, g2, rel_tol=1e-9)):
            raise ConfigError(
                "MomoStep reads the averages MoMo's own direction keeps: use Momo or "
                "MomoAdam (or GD without momentum: MoMo with beta = 0), not another "
                "direction")
        return MomoModel(ctx.loss, 0.0, 0.0, g2)

    def _tau(self, model: MomoModel, alpha: float) -> float:
        """tau_k, updating the online lower bound (MoMo*) around it."""
        f, gamma, dot, norm_sq, rho, decay = model
        shrink = 1 + alpha * decay
        if self.estimate_lb:
            value = shrink * f + dot - shrink * gamma
            if value < shrink * rho * self.lb:  # the model fell below the bound: reset it
                self.lb = max(value / (2 * shrink * rho), self.lb0)
        top = shrink * (f - rho * self.lb) + dot - shrink * gamma
        tau = min(alpha / rho, max(top, 0.0) / norm_sq)
        if self.estimate_lb:
            predicted = f + dot - gamma - 0.5 * tau * norm_sq
            self.lb = max(predicted / rho, self.lb0)
        return tau

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"lb": self.lb}
        if isinstance(self.lr, StepRule):
            state["cap"] = self.lr.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        lb = state["lb"]
        if not is_real(lb) or not math.isfinite(lb):
            raise ConfigError(f"MomoStep state: lb must be a finite number, got {lb!r}")
        self.lb = float(lb)
        if isinstance(self.lr, StepRule) and "cap" in state:
            self.lr.load_state_dict(state["cap"])

    def __repr__(self) -> str:
        return f"MomoStep(lr={self.lr!r}, lb={self.lb0}, estimate_lb={self.estimate_lb})"


def _cap(lr: Any) -> float | StepRule | Callable[[int], float]:
    """MoMo's cap alpha_k: a number > 0, a schedule rule, or a callable t -> alpha."""
    if isinstance(lr, StepRule) and not isinstance(lr, type):
        if lr.needs is not Needs.NOTHING:
            raise ConfigError(f"MoMo's lr caps its step: give a number or a schedule, not "
                              f"{lr!r}, which evaluates trial points")
        return lr
    if is_real(lr) and not isinstance(lr, bool):
        return check_step_size("lr", lr)
    if callable(lr) and not isinstance(lr, type):
        return lr
    raise ConfigError(f"lr must be a number or a schedule, got {lr!r}")
