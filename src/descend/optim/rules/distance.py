"""Distance-based step sizes: DoG, L-DoG, Prodigy and D-Adaptation (SGD and Adam forms).

Each of these methods sets its step size from how far the parameters are (or must be) from
where they started, so that no learning rate needs tuning:

* :class:`DoG` and :class:`LDoG` (Ivgi, Hinder & Carmon, "DoG is SGD's best friend: a
  parameter-free dynamic step size schedule", ICML 2023): the largest distance from x_0 so
  far over the root-sum-square of the gradients, for the whole model or per parameter
  tensor;
* :class:`DAdaptSGD` and :class:`DAdaptAdam` (Defazio & Mishchenko, "Learning-rate-free
  learning by D-Adaptation", ICML 2023): a lower bound d on the distance D = ||x_0 - x*||,
  raised from the weighted gradients seen, and a step d * lr scaled as the method's
  direction needs it;
* :class:`Prodigy` (Mishchenko & Defazio, "Prodigy: an expeditiously adaptive
  parameter-free learner", ICML 2024): D-Adaptation's Adam form with the gradients weighted
  by d itself, which makes d grow faster and the first steps less timid.

How they split into a direction and a rule
------------------------------------------
The rule owns everything that estimates the distance (x_0, the weighted gradient sum, the
estimate d) and answers the step size alpha_k. It reads the step's vectors (the
:class:`~descend.optim.rules.base.PointObserver` protocol): the optimizer tells it the
parameters and the gradient once per step, *before* the direction is computed, so that

* DoG and D-Adaptation's SGD form move along the optimizer's own direction, -g
  (``gradient_direction_only``: GD without momentum, or ``Subgradient``), exactly as in
  the papers: their step sizes are defined for that direction;
* Prodigy and D-Adaptation's Adam form move along Adam's moments of *weighted* gradients.
  That direction is :class:`~descend.optim.directions.RescaledAdam` (in ``directions.py``),
  which keeps the moments divided by the current weight, so the weight itself is the
  rule's step size (``opt.last.lr`` is the authors' ``dlr`` = d lr) and the direction only
  needs the ratio of consecutive weights. These rules bring that direction
  (:class:`~descend.optim.rules.base.DirectionProvider`): given GD's -g they put theirs in
  its place with the authors' betas (0.9, 0.999) and eps 1e-8; given Adam's they take its
  betas and eps (``Adam(params, lr=Prodigy(), betas=(0.9, 0.99))``); momentum, L-BFGS
  and CG are refused. Because the rule runs before the direction, it sets the ratio for
  this step's moments, Prodigy's eps weight d_{k+1} / d_k, and D-Adaptation's numerator
  reads v_{k-1} as the authors' does.

Weight decay is descend's L2 penalty (the optimizer's ``weight_decay``, added to the
gradient): the authors' ``decouple=False`` form (DoG's, DAdaptAdam's and DAdaptSGD's default;
Prodigy's default is the decoupled AdamW form, ``decouple=True``, which descend does not
offer). None of the rules averages iterates (DoG's authors recommend polynomial averaging
beside it; the averaging wrapper of :mod:`descend.optim` is the place for that).
"""

from __future__ import annotations

import math
from typing import Any

from ...checks import check_number, check_step_size
from ...engine.base import Engine, Vector
from ...errors import ConfigError
from ...linesearch import LineSearchStatus
from ..directions import AdamDirection, Gradient, Rescale, RescaledAdam
from .base import Needs, StepChoice, StepContext, StepPoint

__all__ = ["DAdaptAdam", "DAdaptSGD", "DoG", "LDoG", "Prodigy"]


class _Kept:
    """A vector a rule keeps from step to step: the engine's arrays, or arrays loaded from
    a saved state and placed on the engine at the next step (the rule learns its engine
    from the step's point)."""

    def __init__(self) -> None:
        self.arrays: Vector | None = None
        self.engine: Engine | None = None

    def set(self, engine: Engine, arrays: Vector) -> None:
        self.engine, self.arrays = engine, arrays

    def get(self, point: StepPoint) -> Vector | None:
        if self.arrays is not None and self.engine is None:  # loaded: place it now
            self.arrays = point.engine.from_state(self.arrays, point.x)
            self.engine = point.engine
        return self.arrays

    def state(self) -> list[Any] | None:
        if self.arrays is None:
            return None
        return self.engine.to_state(self.arrays) if self.engine is not None else list(self.arrays)

    def load(self, arrays: list[Any] | None) -> None:
        self.arrays = None if arrays is None else list(arrays)
        self.engine = None


def _squared_distances(engine: Engine, x: Vector, x0: Vector) -> list[float]:
    """||x_i - x0_i||^2 per parameter (one temporary array at a time)."""
    return [engine.dot([a - b], [a - b]) for a, b in zip(x, x0)]


def _squared_norms(engine: Engine, g: Vector) -> list[float]:
    return [engine.dot([a], [a]) for a in g]


def _l1(vector: Vector) -> float:
    """sum_i ||v_i||_1, summed per parameter as the authors' code does (``abs`` and
    ``.sum()`` are shared by NumPy arrays and torch tensors)."""
    return sum(float(abs(a).sum()) for a in vector)


def _not_started(rule: Any) -> ConfigError:
    return ConfigError(f"{rule!r} reads the step's parameters and gradient before each step: "
                       "use it as the lr of a descend optimizer (GD, Adam, Subgradient, "
                       "or descend.torch's)")


class _Distance:
    """What the rules here share: no trial points; told the point before the direction."""

    needs = Needs.NOTHING

    def __init__(self) -> None:
        self._choice: StepChoice | None = None  # the step size start() set for this step

    def __call__(self, ctx: StepContext) -> StepChoice:
        if self._choice is None:
            raise _not_started(self)
        return self._choice

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._shown)
        return f"{type(self).__name__}({args})"

    _shown: tuple[str, ...] = ()


# ----------------------------------------------------------------------------------- DoG
class DoG(_Distance):
    """DoG, "distance over gradients" (Ivgi, Hinder & Carmon, ICML 2023, Algorithm 1):

        eta_t = lr * rbar_t / sqrt(G_t),    x_{t+1} = x_t - eta_t g_t,
        rbar_t = max(r_eps, max_{i <= t} ||x_i - x_0||),   G_t = eps + sum_{i <= t} ||g_i||^2,
        r_eps = reps_rel * (1 + ||x_0||).

    The step is the largest distance travelled so far over the root-sum-square of the
    gradients: it grows geometrically from the tiny first step r_eps / ||g_0|| while the
    parameters move away from x_0, and behaves like a well-tuned 1/sqrt(t) schedule after
    (the paper's Theorem 1: with high probability, optimal up to log factors for convex
    stochastic problems whose iterates stay bounded). Distances and norms are over all
    parameters as one vector; :class:`LDoG` takes them per parameter tensor.

    Parameters
    ----------
    lr : float > 0
        The paper's c (default 1; the authors advise against changing it).
    reps_rel : float > 0
        r_eps relative to 1 + ||x_0|| (default 1e-6; the authors suggest 1e-4 for models
        with batch normalisation).
    eps : float > 0
        Added once to G (default 1e-8), as the authors' code does.
    init_eta : float > 0 or None
        The first step size instead of r_eps / sqrt(||g_0||^2 + eps); then r_eps = 0.

    Defined along -g only (GD without momentum, ``Subgradient``). The defaults are the
    ``dog-optimizer`` package's (1.0.3), whose ``DoG`` it matches step for step, weight
    decay included (both add it to the gradient). It does not average iterates (the
    authors' ``PolynomialDecayAverager`` is separate there too).
    """

    gradient_direction_only = True
    _shown = ("lr", "reps_rel", "eps", "init_eta")

    def __init__(self, lr: float = 1.0, reps_rel: float = 1e-6, eps: float = 1e-8,
                 init_eta: float | None = None):
        super().__init__()
        self.lr = check_step_size("lr", lr)
        self.reps_rel = check_step_size("reps_rel", reps_rel)
        self.eps = check_step_size("eps", eps)
        self.init_eta = None if init_eta is None else check_step_size("init_eta", init_eta)
        self._x0 = _Kept()
        self.rbar: list[float] = []  # per block (one block: the whole model)
        self.G: list[float] = []
        self.eta: list[float] = []

    def _blocks(self, values: list[float]) -> list[float]:
        """Per-parameter values summed over this rule's blocks (DoG: one block)."""
        return [sum(values)]

    def start(self, point: StepPoint) -> None:
        engine, x, g = point.engine, point.x, point.g
        x0 = self._x0.get(point)
        sq_g = self._blocks(_squared_norms(engine, g))
        if x0 is None:  # the first step: r_eps, and eps in G
            self._x0.set(engine, engine.clone(x))
            r_eps = 0.0 if self.init_eta is not None else self.reps_rel
            self.rbar = [r_eps * (1 + math.sqrt(n)) for n in
                         self._blocks(_squared_norms(engine, x))]
            self.G = [s + self.eps for s in sq_g]
        else:
            distances = self._blocks(_squared_distances(engine, x, x0))
            self.rbar = [max(r, math.sqrt(d)) for r, d in zip(self.rbar, distances)]
            self.G = [G + s for G, s in zip(self.G, sq_g)]
        if x0 is None and self.init_eta is not None:
            self.eta = [self.init_eta] * len(self.G)
        else:
            self.eta = [self.lr * r / math.sqrt(G) for r, G in zip(self.rbar, self.G)]
        self._choice = self._answer(sq_g)

    def _answer(self, sq_g: list[float]) -> StepChoice:
        return StepChoice(self.eta[0])

    def state_dict(self) -> dict[str, Any]:
        return {"x0": self._x0.state(), "rbar": list(self.rbar), "G": list(self.G),
                "eta": list(self.eta)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._x0.load(state.get("x0"))
        self.rbar = [float(v) for v in state.get("rbar", [])]
        self.G = [float(v) for v in state.get("G", [])]
        self.eta = [float(v) for v in state.get("eta", [])]
        self._choice = None


class LDoG(DoG):
    """Layer-wise DoG (Ivgi, Hinder & Carmon, ICML 2023, §4.2): DoG's formula per parameter
    tensor i, each with its own step,

        eta_{i,t} = lr * rbar_{i,t} / sqrt(G_{i,t}),   x_{i,t+1} = x_{i,t} - eta_{i,t} g_{i,t},
        rbar_{i,t} = max(reps_rel (1 + ||x_{i,0}||), max_{s <= t} ||x_{i,s} - x_{i,0}||),
        G_{i,t} = eps + sum_{s <= t} ||g_{i,s}||^2.

    The step sizes are ``StepChoice.per_parameter``; ``opt.last.lr`` is the size of the
    whole move relative to ||g||, sqrt(sum_i eta_i^2 ||g_i||^2) / ||g|| (the largest eta_i
    where g = 0). Parameters, defaults and direction as :class:`DoG`'s; it matches the
    ``dog-optimizer`` package's ``LDoG`` step for step.
    """

    def _blocks(self, values: list[float]) -> list[float]:
        return values

    def _answer(self, sq_g: list[float]) -> StepChoice:
        total = sum(sq_g)
        moved = sum(eta * eta * s for eta, s in zip(self.eta, sq_g))
        lr = math.sqrt(moved / total) if total > 0 else max(self.eta, default=0.0)
        return StepChoice(lr, per_parameter=list(self.eta))


# ------------------------------------------------------------------------ D-Adaptation SGD
class DAdaptSGD(_Distance):
    """D-Adaptation along -g (Defazio & Mishchenko, ICML 2023; the authors' ``DAdaptSGD``
    with momentum 0): a lower bound d_k on D = ||x_0 - x*|| sets the step,

        lambda_k = lr * d_k / ||g_0||,           x_{k+1} = x_k - lambda_k g_k,
        s_{k+1} = s_k + lambda_k g_k  (= x_0 - x_{k+1}),
        d_hat = 2 sum_{i <= k} lambda_i <g_i, s_i> / ||s_{k+1}||,
        d_{k+1} = max(d_k, min(d_hat, growth_rate * d_k)),   d_0 = d0.

    For convex f, d_hat <= D (the paper's Lemma 4), so the step never passes the one a
    known D would give, and d_k reaches the order of D after O(log(D / d0)) rises.

    Parameters
    ----------
    lr : float > 0
        Multiplies the adapted step (default 1).
    d0 : float > 0
        The first estimate of D (default 1e-6).
    growth_rate : float >= 1 (inf allowed)
        The most d may grow per step (default inf).

    Defined along -g only. Matches ``dadaptation.DAdaptSGD(momentum=0)`` (3.2) step for
    step without weight decay; with weight decay the authors' ||g_0|| leaves it out (their
    first pass adds it out of place) while here it is part of g_0 like every later g.
    The first step waits for a nonzero gradient (no step while g = 0), where the authors'
    divides by ||g_0|| = 0.
    """

    gradient_direction_only = True
    _shown = ("lr", "d0", "growth_rate")

    def __init__(self, lr: float = 1.0, d0: float = 1e-6, growth_rate: float = math.inf):
        super().__init__()
        self.lr = check_step_size("lr", lr)
        self.d0 = check_step_size("d0", d0)
        self.growth_rate = check_number("growth_rate", growth_rate, 1.0, math.inf,
                                        hi_open=False)
        self.d = self.d0
        self.g0_norm: float | None = None
        self.numerator = 0.0
        self.k = 0
        self._s = _Kept()

    def start(self, point: StepPoint) -> None:
        engine, g = point.engine, point.g
        if self.g0_norm is None:
            g0 = math.sqrt(engine.dot(g, g))
            if g0 == 0:  # nothing to scale by yet: no step
                self._choice = StepChoice(0.0, status=LineSearchStatus.FLAT)
                return
            self.g0_norm = g0
        s = self._s.get(point)
        if s is None:
            s = engine.zeros_like(g)
            self._s.set(engine, s)
        lam = self.d * self.lr / self.g0_norm
        self.numerator += lam * engine.dot(g, s)
        for si, gi in zip(s, g):
            si += lam * gi
        s_norm = math.sqrt(engine.dot(s, s))
        if s_norm > 0:  # (s = x_0 - x_{k+1} is 0 only back at the start)
            d_hat = 2 * self.numerator / s_norm
            self.d = max(self.d, min(d_hat, self.d * self.growth_rate))
        self.k += 1
        self._choice = StepChoice(lam)

    def state_dict(self) -> dict[str, Any]:
        return {"d": self.d, "g0_norm": self.g0_norm, "numerator": self.numerator,
                "k": self.k, "s": self._s.state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.d = float(state.get("d", self.d0))
        g0 = state.get("g0_norm")
        self.g0_norm = None if g0 is None else float(g0)
        self.numerator = float(state.get("numerator", 0.0))
        self.k = int(state.get("k", 0))
        self._s.load(state.get("s"))
        self._choice = None


# -------------------------------------------------------------- Adam-moment rules (shared)
class _AdamMoments(_Distance):
    """A rule over Adam's moments of weighted gradients (:class:`RescaledAdam`), which it
    brings in place of the optimizer's direction (see the module docstring)."""

    def __init__(self, lr: float, d0: float, growth_rate: float,
                 bias_correction: bool) -> None:
        super().__init__()
        self.lr = check_step_size("lr", lr)
        self.d0 = check_step_size("d0", d0)
        self.growth_rate = check_number("growth_rate", growth_rate, 1.0, math.inf,
                                        hi_open=False)
        if not isinstance(bias_correction, bool):
            raise TypeError(f"bias_correction must be True or False, got {bias_correction!r}")
        self.bias_correction = bias_correction
        self.d = self.d0
        self.k = 0
        self._s = _Kept()
        self._direction: RescaledAdam | None = None

    def direction_for(self, direction: Any) -> RescaledAdam:
        """The direction this rule steps along: its own :class:`RescaledAdam`, with Adam's
        betas and eps when ``direction`` is Adam's, the authors' defaults when it is -g."""
        if self._direction is not None:
            if direction is self._direction:
                return direction
            raise ConfigError(f"{self!r} already drives another optimizer's direction: give "
                              "each optimizer a rule of its own")
        if isinstance(direction, RescaledAdam):
            own = direction
        elif isinstance(direction, AdamDirection):
            own = RescaledAdam((direction.b1, direction.b2), direction.eps)
        elif type(direction) is Gradient:
            own = RescaledAdam()
        else:
            raise ConfigError(
                f"{self!r} steps along Adam's moments of its weighted gradients: use it with "
                "GD without momentum or with Adam (whose betas and eps it keeps), not with "
                f"the {type(direction).__name__} direction")
        self._direction = own
        return own

    def _moments(self) -> RescaledAdam:
        if self._direction is None:
            raise _not_started(self)
        return self._direction

    def _correction(self, direction: RescaledAdam) -> float:
        """Adam's bias correction sqrt(1 - b2^(k+1)) / (1 - b1^(k+1)) when asked for."""
        if not self.bias_correction:
            return 1.0
        k = self.k + 1
        return math.sqrt(1 - direction.b2**k) / (1 - direction.b1**k)

    def _s_of(self, point: StepPoint) -> Vector:
        s = self._s.get(point)
        if s is None:
            s = point.engine.zeros_like(point.g)
            self._s.set(point.engine, s)
        return s

    def _base_state(self) -> dict[str, Any]:
        return {"d": self.d, "k": self.k, "s": self._s.state()}

    def _load_base(self, state: dict[str, Any]) -> None:
        self.d = float(state.get("d", self.d0))
        self.k = int(state.get("k", 0))
        self._s.load(state.get("s"))
        self._choice = None


class DAdaptAdam(_AdamMoments):
    """D-Adaptation's Adam form (Defazio & Mishchenko, ICML 2023, Appendix "Adam"; the
    authors' ``DAdaptAdam``). With lambda_k = lr d_k c_k (c_k Adam's bias correction, 1 by
    default) and b3 = sqrt(b2):

        m_k = b1 m_{k-1} + (1 - b1) lambda_k g_k,   v_k = b2 v_{k-1} + (1 - b2) g_k^2,
        r_k = b3 r_{k-1} + (1 - b3) lambda_k <g_k, s_{k-1} / (sqrt(v_{k-1}) + eps)>,
        s_k = b3 s_{k-1} + (1 - b3) lambda_k g_k,
        d_{k+1} = max(d_k, min(r_k / ((1 - b3) ||s_k||_1), growth_rate d_k)),
        x_{k+1} = x_k - m_k / (sqrt(v_k) + eps).

    Here m is kept divided by lambda_k (:class:`RescaledAdam`), so the step is
    x_{k+1} = x_k + lambda_k d_k with d_k Adam's direction of those moments, and
    ``opt.last.lr`` is lambda_k, the authors' ``dlr``.

    Parameters
    ----------
    lr : float > 0
        Multiplies the adapted step (default 1).
    d0 : float > 0
        The first estimate of D (default 1e-6).
    growth_rate : float >= 1 (inf allowed)
        The most d may grow per step (default inf).
    bias_correction : bool
        Adam's bias correction in lambda_k (default False, as the authors').

    Betas and eps are the direction's: Adam's when it is ``Adam(params, lr=DAdaptAdam())``,
    (0.9, 0.999) and 1e-8 over GD. Matches ``dadaptation.DAdaptAdam`` (3.2) step for step,
    weight decay included (both add it to the gradient, the authors' ``decouple=False``
    default); not offered: ``layer_scale`` (1), ``decouple=True``, FSDP.
    """

    _shown = ("lr", "d0", "growth_rate", "bias_correction")

    def __init__(self, lr: float = 1.0, d0: float = 1e-6, growth_rate: float = math.inf,
                 bias_correction: bool = False):
        super().__init__(lr, d0, growth_rate, bias_correction)
        self.numerator = 0.0
        self._previous = 0.0  # lambda_{k-1}: the units m is kept in

    def start(self, point: StepPoint) -> None:
        engine, g = point.engine, point.g
        moments = self._moments()
        b3 = math.sqrt(moments.b2)
        lam = self.d * self.lr * self._correction(moments)
        s = self._s_of(point)
        v = moments.second_moment
        acc = 0.0
        if v:  # before the first step s = 0: nothing to add
            for gi, si, vi in zip(g, s, v):
                denom = engine.sqrt(vi)
                denom += moments.eps
                acc += engine.dot([gi], [si / denom])
        acc *= lam
        for si, gi in zip(s, g):
            si *= b3
            si += (lam * (1 - b3)) * gi
        l1 = _l1(s)
        rho = self._previous / lam if self._previous else 1.0
        moments.rescale(Rescale(m=rho))
        self._previous = lam
        if l1 == 0:  # every gradient so far was 0: the authors' step makes no move
            self._choice = StepChoice(0.0, status=LineSearchStatus.FLAT)
            return
        self.numerator = b3 * self.numerator + (1 - b3) * acc
        d_hat = self.numerator / ((1 - b3) * l1)
        self.d = max(self.d, min(d_hat, self.d * self.growth_rate))
        self.k += 1
        self._choice = StepChoice(lam)

    def state_dict(self) -> dict[str, Any]:
        return {**self._base_state(), "numerator": self.numerator, "previous": self._previous}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._load_base(state)
        self.numerator = float(state.get("numerator", 0.0))
        self._previous = float(state.get("previous", 0.0))


class Prodigy(_AdamMoments):
    """Prodigy (Mishchenko & Defazio, ICML 2024, Algorithm 4, as in the authors'
    ``prodigyopt`` 1.1). With lambda_k = lr d_k c_k (c_k Adam's bias correction, 1 by
    default), b3 = sqrt(b2) unless given:

        m_k = b1 m_{k-1} + (1 - b1) d_k g_k,    v_k = b2 v_{k-1} + (1 - b2) d_k^2 g_k^2,
        r_k = b3 r_{k-1} + (d_k / d0) lambda_k <g_k, x_0 - x_k>,
        s_k = b3 s_{k-1} + (d_k / d0) lambda_k g_k     (d_k in place of lambda_k with
                                                        safeguard_warmup),
        d_hat = d_coef r_k / ||s_k||_1,
        d_max = max(d_max, d_hat),   d_{k+1} = min(d_max, growth_rate d'_k),
            d'_k = max(d_k, d_hat) while d_k = d0, else d_k,
        x_{k+1} = x_k - lambda_k m_k / (sqrt(v_k) + d_{k+1} eps).

    D-Adaptation with the gradients weighted by d_k (and the numerator's by d_k^2): the
    estimate rises faster (the paper's Theorem: a sqrt(log(D / d0)) better rate than
    D-Adaptation's). The moments are kept divided by d_k (:class:`RescaledAdam`), so the
    step is x_{k+1} = x_k + lambda_k d_k with d_k that direction, and ``opt.last.lr`` is
    lambda_k, the authors' ``dlr``.

    Parameters
    ----------
    lr : float > 0
        Multiplies the adapted step (default 1).
    d_coef : float > 0
        Multiplies the estimate d_hat (default 1; the authors' preferred knob, 0.5-2).
    d0 : float > 0
        The first estimate of D (default 1e-6).
    growth_rate : float >= 1 (inf allowed)
        The most d may grow per step once it has left d0 (default inf).
    beta3 : float in [0, 1) or None
        The decay of r and s (default sqrt(b2)).
    safeguard_warmup : bool
        s weighted by d_k instead of lambda_k (default False), for warm-up schedules.
    bias_correction : bool
        Adam's bias correction in lambda_k (default False, as the authors').

    Betas and eps are the direction's: Adam's when it is ``Adam(params, lr=Prodigy())``,
    (0.9, 0.999) and 1e-8 over GD. Matches ``prodigyopt.Prodigy(decouple=False)`` (1.1.2)
    step for step, weight decay included; the authors' default ``decouple=True`` (AdamW's
    decoupled decay, lambda_k wd x_k) is not offered, nor ``slice_p`` > 1 (statistics on
    every p-th entry) or FSDP. One deliberate difference: with b1 = 0 prodigyopt skips the
    first moment and steps by lambda_k d_{k+1} g_k / (sqrt(v_k) + d_{k+1} eps), the updated
    d_{k+1} where its b1 > 0 path's moment holds d_k g_k; here b1 = 0 is the b1 > 0 form
    (m_k = d_k g_k), so the authors' move is this one times d_{k+1} / d_k on the steps where
    d rises.
    """

    _shown = ("lr", "d_coef", "d0", "growth_rate", "beta3", "safeguard_warmup",
              "bias_correction")

    def __init__(self, lr: float = 1.0, d_coef: float = 1.0, d0: float = 1e-6,
                 growth_rate: float = math.inf, beta3: float | None = None,
                 safeguard_warmup: bool = False, bias_correction: bool = False):
        super().__init__(lr, d0, growth_rate, bias_correction)
        self.d_coef = check_step_size("d_coef", d_coef)
        self.beta3 = None if beta3 is None else check_number("beta3", beta3, 0.0, 1.0)
        if not isinstance(safeguard_warmup, bool):
            raise TypeError(f"safeguard_warmup must be True or False, got {safeguard_warmup!r}")
        self.safeguard_warmup = safeguard_warmup
        self.d_max = self.d0
        self.numerator = 0.0
        self._previous = self.d0  # d_{k-1}: the units the moments are kept in
        self._x0 = _Kept()

    def start(self, point: StepPoint) -> None:
        engine, x, g = point.engine, point.x, point.g
        moments = self._moments()
        b3 = math.sqrt(moments.b2) if self.beta3 is None else self.beta3
        d = self.d
        lam = d * self.lr * self._correction(moments)
        x0 = self._x0.get(point)
        if x0 is None:
            x0 = engine.clone(x)
            self._x0.set(engine, x0)
        weight = (d / self.d0) * lam
        delta = weight * sum(engine.dot([gi], [a - b]) for gi, a, b in zip(g, x0, x))
        s = self._s_of(point)
        s_weight = (d / self.d0) * (d if self.safeguard_warmup else lam)
        for si, gi in zip(s, g):
            si *= b3
            si += s_weight * gi
        l1 = _l1(s)
        if l1 == 0:  # every gradient so far was 0: the authors' step makes no move
            moments.rescale(Rescale(m=self._previous / d, v=(self._previous / d) ** 2))
            self._previous = d
            self._choice = StepChoice(0.0, status=LineSearchStatus.FLAT)
            return
        self.numerator = b3 * self.numerator + delta
        d_hat = self.d_coef * self.numerator / l1
        new = max(d, d_hat) if d == self.d0 else d
        self.d_max = max(self.d_max, d_hat)
        new = min(self.d_max, new * self.growth_rate)
        rho = self._previous / d
        moments.rescale(Rescale(m=rho, v=rho * rho, eps=new / d))
        self._previous, self.d = d, new
        self.k += 1
        self._choice = StepChoice(lam)

    def state_dict(self) -> dict[str, Any]:
        return {**self._base_state(), "d_max": self.d_max, "numerator": self.numerator,
                "previous": self._previous, "x0": self._x0.state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._load_base(state)
        self.d_max = float(state.get("d_max", self.d0))
        self.numerator = float(state.get("numerator", 0.0))
        self._previous = float(state.get("previous", self.d0))
        self._x0.load(state.get("x0"))
