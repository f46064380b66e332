"""Schedule-Free averaging over any optimizer, and ScheduleFree+ (its learning-rate-free form).

Defazio, Yang, Mehta, Mishchenko, Khaled & Cutkosky, "The Road Less Scheduled", NeurIPS
2024 (Schedule-Free AdamW won the self-tuning track of AlgoPerf 2024). Three sequences:
z, the iterates of the optimizer being wrapped (the *base*); x, their weighted average,
where the model is evaluated; and y, the point between them where gradients are taken:

    y_t     = (1 - beta) z_t + beta x_t,
    z_{t+1} = z_t + Delta_t          (the base's step, its gradient taken at y_t),
    x_{t+1} = (1 - c_{t+1}) x_t + c_{t+1} z_{t+1},   c_{t+1} = w_t / sum_{i<=t} w_i.

The parameters hold y while training and x while evaluating: ``opt.eval()`` and
``opt.train()`` switch them (as ``schedulefree``'s optimizers do), and ``fit`` calls them
around its validation and callbacks (``descend.train.metrics.ModeSwitching``). Only y and z
are stored (x = (y - (1 - beta) z) / beta), so the memory is the base's plus one copy of
the parameters.

Here the base is any descend optimizer, NumPy or ``descend.torch``: its direction and its
step rule make Delta_t from the gradient at y_t (a line search searches along the line
through y_t, on the batch), and :class:`ScheduleFree` then moves z by that step instead of
y. With a constant step the weights are w_t = (t+1)^r lr_max_t^p, lr_max_t the largest step
size so far (``weight_lr_power`` p = 2: the lr^2 weighting that keeps warmup's small steps
out of the average); ``warmup_steps`` scales the base's step by (t+1)/warmup_steps before
that. :class:`SGDScheduleFree` and :class:`AdamWScheduleFree` are the authors' two
optimizers (``schedulefree.SGDScheduleFree``, ``AdamWScheduleFree``) built this way.

BatchNorm. Running statistics are collected at y during training; at x they are off.
Recompute them at x before evaluating, as the authors' README says: ``opt.eval()``, then
forward passes over some training batches in training mode without gradients
(``descend.torch.recompute_batch_norm`` does it with ``torch.optim.swa_utils.update_bn``),
then evaluate. descend's own ``nn`` has no BatchNorm.

:class:`ScheduleFreePlus` is Defazio's ScheduleFree+ (2026): Adam with inner momentum as the
base, a Polyak step size in place of the learning rate, the decay of AdamC, an annealed
beta and a warm start of the average (see its docstring for the sources).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..checks import check_count, check_fraction, check_number, check_step_size
from ..engine.base import Engine, Vector
from ..errors import ConfigError
from .optimizer import GD, Adam, Optimizer, StepInfo

__all__ = ["AdamWScheduleFree", "Averages", "SGDScheduleFree", "ScheduleFree",
           "ScheduleFreePlus"]


@dataclass
class Averages:
    """Schedule-Free's state besides the base's.

    Attributes
    ----------
    k : int
        Steps averaged so far.
    weight_sum : float
        sum of the weights w_i so far.
    lr_max : float
        The largest step size so far (the weights' lr_max).
    beta : float
        The beta of the last y = (1 - beta) z + beta x (x is recovered with it).
    z : list of arrays, or None
        The base's iterates (None before the first step: then x = y = z).
    l1_ema : float
        ScheduleFree+ only: the running average of sqrt(pi/2) ||g||_1.
    """

    k: int = 0
    weight_sum: float = 0.0
    lr_max: float = 0.0
    beta: float = 0.9
    z: Vector | None = None
    l1_ema: float = 0.0


class _Kept:
    """y while the parameters hold x (evaluation mode), to put back exactly."""

    __slots__ = ("x", "y")

    def __init__(self, y: Vector, x: Vector):
        self.y, self.x = y, x


class ScheduleFree(Optimizer):
    """Schedule-Free averaging around a descend optimizer (any direction, any step rule).

    Parameters
    ----------
    optimizer : Optimizer
        The base, built over the parameters (``descend.optim`` or ``descend.torch``): its
        direction and step rule make each step, which moves z. Its own momentum is usually
        left off (beta plays that part). Directions that learn from the steps (L-BFGS, CG)
        are refused: their curvature pairs would describe the base's step, not the move.
    beta : float in (0, 1)
        The interpolation y = (1 - beta) z + beta x (the authors' ``momentum`` /
        ``betas[0]``; 0.9 by default).
    warmup_steps : int
        The base's step is scaled by (t+1) / warmup_steps for t < warmup_steps.
    r : float >= 0
        The weights' polynomial power: w_t = (t+1)^r lr_max_t^p.
    weight_lr_power : float >= 0
        p, the power of lr_max_t in the weights (2: the lr^2 weighting).
    weight_decay : float >= 0
        lambda: the step of z gets -lr_t lambda y_t, decay taken at y as the authors do
        (set the base's weight decay instead to take it at z, through its gradient).

    ``step(closure)`` runs the base's step at y (never reusing a gradient from the step
    before: ``same_batch`` is ignored, since the point moved since), then moves z by that
    step and puts y_{t+1} in the parameters. ``opt.last`` is the base's record with ``lr``
    the step size z took (the base's times the warmup factor) and ``step_norm`` that step's
    length (weight decay aside). ``undo()`` takes back the base's update and the averages
    of that step. A ScheduleFree is an :class:`Optimizer` to every caller (``fit``,
    checkpoints, the capture engine) and forwards what it does not change to the base; it
    is not a ``torch.optim.Optimizer`` (neither is the authors' ``ScheduleFreeWrapper``).

    Deliberate differences from the authors' optimizers: the optimizer starts in training
    mode (they start in evaluation mode and refuse a step until ``train()``; here x = y = z
    before the first step, so nothing differs but the refusal); ``eval()`` keeps y and
    ``train()`` puts it back bit for bit when the parameters were not changed meanwhile (the
    authors recompute y from x and z, which rounds), so evaluating does not perturb
    training; the base's step is taken as the difference of the parameters it leaves and y,
    which rounds it to the parameters' precision (float64 trajectories agree with the
    authors' to a few 1e-15 relative over 30 steps).
    """

    #: lr_max before the first step
    _lr_max0 = 0.0

    def __init__(self, optimizer: Optimizer, beta: float = 0.9, *, warmup_steps: int = 0,
                 r: float = 0.0, weight_lr_power: float = 2.0, weight_decay: float = 0.0):
        if not isinstance(optimizer, Optimizer) or isinstance(optimizer, ScheduleFree):
            raise TypeError("ScheduleFree wraps a descend optimizer (GD, Adam, ...), got "
                            f"{type(optimizer).__name__}")
        if optimizer.direction.learns:
            raise ConfigError(
                f"Schedule-Free moves the point gradients are taken at by an average, not by "
                f"{type(optimizer).__name__}'s own steps: its curvature pairs would not "
                "describe the moves; wrap GD, Adam or another direction that does not learn")
        self.base = optimizer
        self.beta = check_fraction("beta", beta)
        self.warmup_steps = check_count("warmup_steps", warmup_steps, minimum=0)
        self.r = check_step_size("r", r, allow_zero=True)
        self.weight_lr_power = check_step_size("weight_lr_power", weight_lr_power,
                                               allow_zero=True)
        self.weight_decay = check_step_size("weight_decay", weight_decay, allow_zero=True)
        self.averages = Averages(lr_max=self._lr_max0, beta=self.beta)
        self._training = True
        self._kept: _Kept | None = None
        self._before: Averages | None = None  # the averages before the last step, for undo
        self._last: StepInfo | None = None

    # ------------------------------------------------------------------ forwarded
    @property
    def engine(self) -> Engine:
        return self.base.engine

    def use_engine(self, engine: Engine) -> Engine:
        return self.base.use_engine(engine)

    @property
    def params(self) -> list[Any]:
        return self.base.params

    @property
    def param_groups(self) -> list[dict[str, Any]]:  # type: ignore[override]
        return self.base.param_groups

    @property
    def rule(self) -> Any:
        return self.base.rule

    @property
    def direction(self) -> Any:  # type: ignore[override]
        return self.base.direction

    @property
    def max_grad_norm(self) -> float | None:  # type: ignore[override]
        return self.base.max_grad_norm

    @property
    def t(self) -> int:  # type: ignore[override]
        return self.base.t

    @property
    def last(self) -> StepInfo | None:  # type: ignore[override]
        """The last step's record (see the class docstring)."""
        return self._last

    @property
    def steps_per_epoch(self) -> int | None:
        return self.base.steps_per_epoch

    @steps_per_epoch.setter
    def steps_per_epoch(self, value: int | None) -> None:
        self.base.steps_per_epoch = value

    @property
    def loss_limit(self) -> float:  # type: ignore[override]
        return self.base.loss_limit

    @loss_limit.setter
    def loss_limit(self, value: float) -> None:
        self.base.loss_limit = value

    def zero_grad(self, *args: Any, **kwargs: Any) -> None:
        self.base.zero_grad(*args, **kwargs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base!r}, beta={self.beta})"

    # ------------------------------------------------------------------ modes
    @property
    def training(self) -> bool:
        """True while the parameters hold y (training), False while they hold x."""
        return self._training

    def eval(self) -> None:
        """Put the average x in the parameters (for evaluation, checkpoints to deploy)."""
        if not self._training:
            return
        self._training = False
        z = self.averages.z
        if z is None:  # no step yet: x = y
            return
        engine, params = self.engine, self.params
        y = engine.values(params)
        w = 1 - 1 / self.averages.beta  # x = y + (1 - 1/beta)(z - y)
        x = [yi + w * (zi - yi) for yi, zi in zip(y, z)]
        engine.assign(params, x)
        self._kept = _Kept(y, x)

    def train(self, mode: bool = True) -> None:
        """Put y back in the parameters (``train(False)`` is :meth:`eval`): the y kept by
        :meth:`eval` when the parameters still hold its x, else y = x + (1 - beta)(z - x)
        from the parameters now (a model loaded while evaluating, say)."""
        if not mode:
            self.eval()
            return
        if self._training:
            return
        self._training = True
        kept, self._kept = self._kept, None
        z = self.averages.z
        if z is None:
            return
        engine, params = self.engine, self.params
        now = engine.values(params)
        if kept is not None:
            change = [a - b for a, b in zip(now, kept.x)]
            if engine.dot(change, change) == 0:
                engine.assign(params, kept.y)
                return
        w = 1 - self.averages.beta
        engine.assign(params, [xi + w * (zi - xi) for xi, zi in zip(now, z)])

    # ------------------------------------------------------------------ the step
    def step(self, closure: Any = None, *, same_batch: bool = False) -> Any:
        """The base's step at y, then z, x and y moved (see the class docstring)."""
        if not self._training:
            raise ConfigError(f"{type(self).__name__}.step in evaluation mode: the parameters "
                              "hold the average x; call opt.train() first (fit does)")
        engine, params = self.engine, self.params
        y = engine.values(params)  # left intact by the base, which writes into spare buffers
        loss = self.base.step(closure)
        info = self.base.last
        if info is None or not info.updated:
            self._last = info
            return loss  # no update: the averages stay (undo still takes back the last one)
        delta = [a - b for a, b in zip(engine.values(params), y)]
        self._average(y, delta, info)
        return loss

    def _average(self, y: Vector, delta: Vector, info: StepInfo) -> None:
        """z, x and y after the base's step ``delta`` from y."""
        engine, avg = self.engine, self.averages
        self._before = dataclasses.replace(avg)
        z = avg.z if avg.z is not None else engine.clone(y)
        scale = self._scale(avg, y, z, info)
        lr = scale * info.lr
        step = delta if scale == 1 else [scale * d for d in delta]
        decay = self._decay(lr)
        if decay:
            step = [s - decay * yi for s, yi in zip(step, y)]
        c = self._weight(avg, lr)
        beta = self._beta(avg.k)
        z_new = [zi + si for zi, si in zip(z, step)]
        if beta == avg.beta:  # y' = (1-c) y + c z + (1 - beta (1-c)) step, x never formed
            s = 1 - beta * (1 - c)
            y_new = [yi + c * (zi - yi) + s * si for yi, zi, si in zip(y, z, step)]
        else:  # beta annealed: through x = y + (1 - 1/beta_old)(z - y)
            w = 1 - 1 / avg.beta
            x = [yi + w * (zi - yi) for yi, zi in zip(y, z)]
            x_new = [xi + c * (zn - xi) for xi, zn in zip(x, z_new)]
            y_new = [beta * xn + (1 - beta) * zn for xn, zn in zip(x_new, z_new)]
        engine.assign(self.params, y_new)
        avg.z, avg.beta, avg.k = z_new, beta, avg.k + 1
        self._last = dataclasses.replace(info, lr=lr, step_norm=scale * info.step_norm)

    def _scale(self, avg: Averages, y: Vector, z: Vector, info: StepInfo) -> float:
        """The factor of the base's step: the warmup's (t+1) / warmup_steps, else 1."""
        return (avg.k + 1) / self.warmup_steps if avg.k < self.warmup_steps else 1.0

    def _decay(self, lr: float) -> float:
        """The coefficient of y in z's weight-decay step: lr lambda."""
        return lr * self.weight_decay

    def _beta(self, k: int) -> float:
        """The beta of y after step k: constant."""
        return self.beta

    def _weight(self, avg: Averages, lr: float) -> float:
        """c_{t+1} = w_t / sum w (0 while every weight is 0), updating lr_max and the sum."""
        avg.lr_max = max(avg.lr_max, lr)
        weight = (avg.k + 1) ** self.r * avg.lr_max**self.weight_lr_power
        avg.weight_sum += weight
        return weight / avg.weight_sum if avg.weight_sum else 0.0

    def undo(self) -> bool:
        """Take back the base's last update and the averages of that step."""
        if not self.base.undo():
            return False
        if self._before is not None:
            self.averages, self._before = self._before, None
        return True

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """The base's state with ``"schedule_free"``: the averages, z and the mode (the
        parameters a checkpoint saves are y in training mode, x in evaluation mode)."""
        state = self.base.state_dict()
        avg = self.averages
        state["schedule_free"] = {
            "k": avg.k, "weight_sum": avg.weight_sum, "lr_max": avg.lr_max, "beta": avg.beta,
            "l1_ema": avg.l1_ema, "training": self._training,
            "z": None if avg.z is None else self.engine.to_state(avg.z),
        }
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output (the parameters are the model's to restore)."""
        if not isinstance(state, dict) or "schedule_free" not in state:
            raise ConfigError("not a Schedule-Free optimizer state: missing 'schedule_free'")
        rest = dict(state)
        saved = rest.pop("schedule_free")
        self.base.load_state_dict(rest)
        like = self.engine.values(self.params)
        z = None if saved["z"] is None else self.engine.from_state(saved["z"], like)
        self.averages = Averages(int(saved["k"]), float(saved["weight_sum"]),
                                 float(saved["lr_max"]), float(saved["beta"]), z,
                                 float(saved.get("l1_ema", 0.0)))
        self._training = bool(saved["training"])
        self._kept = self._before = None


class SGDScheduleFree(ScheduleFree):
    """Schedule-Free SGD (Defazio et al., 2024): :class:`ScheduleFree` around ``GD``.

    z_{t+1} = z_t - gamma_t (g(y_t) + lambda y_t), with the defaults of
    ``schedulefree.SGDScheduleFree``: ``lr=1.0``, ``momentum=0.9`` (beta),
    ``weight_decay=0``, ``warmup_steps=0``, ``r=0``, ``weight_lr_power=2``. ``lr`` may
    also be a schedule or a step rule (the base's). ``max_grad_norm`` and ``engine`` as for
    ``GD``.
    """

    def __init__(self, params: Iterable[Any], lr: Any = 1.0, momentum: float = 0.9,
                 weight_decay: float = 0.0, warmup_steps: int = 0, r: float = 0.0,
                 weight_lr_power: float = 2.0, *, max_grad_norm: float | None = None,
                 engine: Engine | None = None):
        base = GD(params, lr, max_grad_norm=max_grad_norm, engine=engine)
        super().__init__(base, momentum, warmup_steps=warmup_steps, r=r,
                         weight_lr_power=weight_lr_power, weight_decay=weight_decay)


class AdamWScheduleFree(ScheduleFree):
    """Schedule-Free AdamW (Defazio et al., 2024; the AlgoPerf 2024 self-tuning winner):
    :class:`ScheduleFree` around ``Adam`` without a first moment.

    z_{t+1} = z_t - gamma_t (g(y_t) / (sqrt(v_t / (1 - beta2^t)) + eps) + lambda y_t),
    beta = betas[0] interpolating y, with the defaults of
    ``schedulefree.AdamWScheduleFree``: ``lr=0.0025``, ``betas=(0.9, 0.999)``,
    ``eps=1e-8``, ``weight_decay=0``, ``warmup_steps=0``, ``r=0``, ``weight_lr_power=2``.
    ``max_grad_norm`` and ``engine`` as for ``Adam``.
    """

    def __init__(self, params: Iterable[Any], lr: Any = 0.0025,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, warmup_steps: int = 0, r: float = 0.0,
                 weight_lr_power: float = 2.0, *, max_grad_norm: float | None = None,
                 engine: Engine | None = None):
        check_betas(betas)
        base = Adam(params, lr, (0.0, betas[1]), eps, max_grad_norm=max_grad_norm,
                    engine=engine)
        super().__init__(base, betas[0], warmup_steps=warmup_steps, r=r,
                         weight_lr_power=weight_lr_power, weight_decay=weight_decay)


class ScheduleFreePlus(ScheduleFree):
    """ScheduleFree+ (Defazio, "ScheduleFree+: Scaling Learning-Rate-Free & Schedule-Free
    Learning to Large Language Models", arXiv:2605.19095, 2026): Schedule-Free averaging
    around Adam, with a Polyak step size instead of a learning rate.

    At step t, with F_t the loss at y_t and g_t its gradient:

        I_t     = beta_t <g_t, z_t - x_t>,
        e_t     = beta_p e_{t-1} + (1 - beta_p) sqrt(pi/2) ||g_t||_1,
        e^_t    = e_t / (1 - beta_p^{t+1}),
        gamma_t = lr * max(0, F_t + I_t) / e^_t,
        z_{t+1} = z_t - gamma_t^2 lambda y_t - gamma_t m^_t / (sqrt(v^_t) + eps),
        x_{t+1} = (1 - c_{t+1}) x_t + c_{t+1} z_{t+1}   (c = 1 for the first c_warmup steps),
        y_{t+1} = beta_t x_{t+1} + (1 - beta_t) z_{t+1},

    with m^, v^ Adam's bias-corrected moments (inner momentum, betas=(0.9, 0.95)), the
    decay of AdamC (lambda scaled by gamma_t^2, so its values are like 20 or 50, not 0.1),
    and beta_t annealed from ``sf_beta1`` to ``sf_beta1_max`` over ``sf_beta1_anneal_steps``
    (1 - beta_t interpolated in log space; constant when 0). The sqrt(pi/2) turns the L1
    norm into an estimate of the L2 norm; F_t + I_t is the loss at y less the model's
    prediction at the average, the Polyak gap of the Schedule-Free iterate; no lower bound
    is subtracted (0, for non-negative losses). ``lr`` is a multiplier of the Polyak step
    (1 by default; a schedule gives a warmup). The defaults are those of the authors'
    reference implementation, ``AdamCScheduleFreePlusPaper`` (facebookresearch/schedule_free,
    ``schedulefree/adamc_schedulefree_plus_paper.py``, commit 70785b53): ``lr=1``,
    ``betas=(0.9, 0.95)``, ``sf_beta1=0.9``, ``eps=1e-8``, ``weight_decay=0``, ``r=0``,
    ``polyak_beta=0``, ``c_warmup=0``, ``sf_beta1_anneal_steps=0``, ``sf_beta1_max=0.965``,
    ``weight_lr_power=2``. That implementation is not in the released ``schedulefree``
    package (1.4.1); the tests check these updates against a transcription of the
    equations above.

    Deliberate differences from the reference: x is not stored (it is
    y + (1 - 1/beta)(z - y), as in the other Schedule-Free optimizers), so
    I_t = (beta_t / beta_{t-1}) <g_t, z_t - y_t>; a multiplier ``lr`` of 0 makes no step
    (the reference floors it at eps); a zero gradient makes no step (the reference divides
    by zero); no DTensor all-reduce (descend.torch averages the loss over the process
    group). ``max_grad_norm`` clips the gradient Adam's moments see, not the Polyak step's.
    """

    _lr_max0 = 1e-8  # the reference starts lr_max at eps

    def __init__(self, params: Iterable[Any], lr: Any = 1.0,
                 betas: tuple[float, float] = (0.9, 0.95), sf_beta1: float = 0.9,
                 eps: float = 1e-8, weight_decay: float = 0.0, r: float = 0.0,
                 polyak_beta: float = 0.0, c_warmup: int = 0, sf_beta1_anneal_steps: int = 0,
                 sf_beta1_max: float = 0.965, weight_lr_power: float = 2.0, *,
                 max_grad_norm: float | None = None, engine: Engine | None = None):
        check_betas(betas)
        base = Adam(params, lr, tuple(betas), eps, max_grad_norm=max_grad_norm, engine=engine)
        self._plus(base, sf_beta1, weight_decay, r, polyak_beta, c_warmup,
                   sf_beta1_anneal_steps, sf_beta1_max, weight_lr_power)

    def _plus(self, base: Optimizer, sf_beta1: float, weight_decay: float, r: float,
              polyak_beta: float, c_warmup: int, anneal_steps: int, sf_beta1_max: float,
              weight_lr_power: float) -> None:
        """The settings ScheduleFree+ adds (shared with descend.torch's constructor)."""
        super().__init__(base, sf_beta1, r=r, weight_lr_power=weight_lr_power,
                         weight_decay=weight_decay)
        self.polyak_beta = check_number("polyak_beta", polyak_beta, 0.0, 1.0)
        self.c_warmup = check_count("c_warmup", c_warmup, minimum=0)
        self.sf_beta1_anneal_steps = check_count("sf_beta1_anneal_steps", anneal_steps,
                                                 minimum=0)
        self.sf_beta1_max = check_fraction("sf_beta1_max", sf_beta1_max)

    def _beta(self, k: int) -> float:
        """beta_k: 1 - beta_k interpolated in log space from sf_beta1 to sf_beta1_max."""
        if not self.sf_beta1_anneal_steps:
            return self.beta
        progress = min(k / self.sf_beta1_anneal_steps, 1.0)
        return 1 - math.exp(math.log(1 - self.beta) * (1 - progress)
                            + math.log(1 - self.sf_beta1_max) * progress)

    def _scale(self, avg: Averages, y: Vector, z: Vector, info: StepInfo) -> float:
        """The Polyak factor max(0, F + I) / e^ (the base's step is lr times Adam's)."""
        engine = self.engine
        grads = engine.grads(self.params)
        l1 = math.fsum(float(abs(g).sum()) for g in grads)
        gap = info.loss
        if avg.k:
            ip = engine.dot(grads, [zi - yi for zi, yi in zip(z, y)])
            gap += self._beta(avg.k) / avg.beta * ip
        b = self.polyak_beta
        avg.l1_ema = b * avg.l1_ema + (1 - b) * l1 * math.sqrt(math.pi / 2)
        estimate = avg.l1_ema / (1 - b ** (avg.k + 1))
        return max(0.0, gap) / estimate if estimate > 0 else 0.0

    def _decay(self, lr: float) -> float:
        """AdamC's decay: lr^2 lambda."""
        return lr * lr * self.weight_decay

    def _weight(self, avg: Averages, lr: float) -> float:
        """c = 1 during the first c_warmup steps, then Schedule-Free's weights."""
        if avg.k < self.c_warmup:
            avg.lr_max = max(avg.lr_max, lr)
            return 1.0
        return super()._weight(avg, lr)


def check_betas(betas: Any) -> None:
    """A pair (beta1, beta2), or a ConfigError naming what was given."""
    if not isinstance(betas, tuple | list) or len(betas) != 2:
        raise ConfigError(f"betas must be a pair (beta1, beta2), got {betas!r}")
