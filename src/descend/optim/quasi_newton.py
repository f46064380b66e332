"""Directions that learn from the steps taken: L-BFGS and nonlinear conjugate gradients.

Both are :class:`~descend.optim.directions.Direction` objects with ``learns = True``: after
every step the optimizer hands them the accepted step s_k = x_{k+1} - x_k and the change of
gradient y_k = g_{k+1} - g_k (:class:`~descend.optim.directions.Feedback`). Like every
direction they compose with any step rule, and they are written against the engine seam
(elementwise arithmetic with Python operators, reductions and allocation through
``self.engine``), so the same code serves NumPy and PyTorch parameters.

They are made for line searches that enforce the curvature condition: under the strong
Wolfe conditions s'y >= (1 - c2) |g_k'd_k| > 0, so every L-BFGS pair has positive curvature
and the quasi-Newton matrix stays positive definite (Nocedal & Wright 2006, §6.1), and with
c2 < 1/2 the Fletcher-Reeves direction is a descent direction (N&W Lemma 5.6).
c2 = 0.9 lets quasi-Newton methods accept the unit step almost always; c2 = 0.1 makes the
search nearly exact, which conjugate gradients need to stay conjugate.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..checks import check_count, check_number
from ..engine.base import Engine, Vector
from ..errors import ConfigError
from .directions import Direction, DirectionStatus, Feedback
from .optimizer import Closure, Optimizer
from .rules import StrongWolfe

__all__ = [
    "BETAS",
    "CG",
    "LBFGS",
    "CGDirection",
    "CGState",
    "LBFGSDirection",
    "LBFGSState",
]

#: Powell's restart test: |g_k'g_{k-1}| >= POWELL ||g_k||^2 means conjugacy is lost (N&W 5.52).
POWELL = 0.2


# --------------------------------------------------------------------------- L-BFGS
@dataclass
class LBFGSState:
    """The limited memory: the last m curvature pairs, oldest first.

    Attributes
    ----------
    s, y : list of vectors
        s_i = x_{i+1} - x_i and y_i = g_{i+1} - g_i for the stored pairs.
    rho : list of float
        rho_i = 1 / (s_i'y_i).
    gamma : float
        The initial matrix H_k^0 = gamma I with gamma = s'y / y'y of the newest pair.
    stored, skipped, resets : int
        Pairs stored, pairs skipped by the curvature test, and memory resets, since the
        start.
    fresh : bool
        True until the first step after the start or a reset has been taken: the direction
        is then -g and the first trial step is scaled by 1/||g||_1.
    """

    s: list[Vector] = field(default_factory=list)
    y: list[Vector] = field(default_factory=list)
    rho: list[float] = field(default_factory=list)
    gamma: float = 1.0
    stored: int = 0
    skipped: int = 0
    resets: int = 0
    fresh: bool = True


class LBFGSDirection(Direction):
    """The L-BFGS direction d = -H_k g_k by the two-loop recursion (N&W Algorithm 7.4).

    With the pairs (s_i, y_i), i = k-m..k-1, and rho_i = 1/(s_i'y_i)::

        q <- g
        for i = k-1, ..., k-m:  a_i <- rho_i s_i'q;  q <- q - a_i y_i
        r <- gamma q,  gamma = s_{k-1}'y_{k-1} / y_{k-1}'y_{k-1}        (N&W 7.20)
        for i = k-m, ..., k-1:  b <- rho_i y_i'r;  r <- r + (a_i - b) s_i
        d = -r

    which is the BFGS inverse-Hessian update H <- (I - rho s y') H (I - rho y s') + rho s s'
    applied m times to gamma I (N&W 6.17), at 4mn operations instead of n^2.

    A pair is stored only when s'y > eps ||s|| ||y|| (positive curvature along s; the strong
    Wolfe conditions guarantee it, a schedule or Armijo does not): otherwise it is skipped
    and ``status`` says so. When the direction is not a descent direction (g'd >= 0, or not
    finite) or the rule took no step along it, the memory is cleared and the step is taken
    along -g.

    First trial step for a line search (``initial``): 1 when the memory holds a pair (the
    quasi-Newton step is scaled to the curvature), min(1, 1/||g||_1) for the steepest
    descent step that starts the run or follows a reset (as SciPy and PyTorch do).

    Parameters
    ----------
    history_size : int >= 1
        m, the number of pairs kept.
    curvature_eps : float in [0, 1)
        The pair test's threshold: a pair is stored when s'y > curvature_eps ||s|| ||y||.
    """

    learns = True
    sign = -1.0  # compute returns r = H g; d = -r

    def __init__(self, history_size: int = 10, curvature_eps: float = 1e-10):
        self.history_size = check_count("history_size", history_size)
        self.curvature_eps = check_number("curvature_eps", curvature_eps, 0.0, 1.0)
        self.state = LBFGSState()
        self._learned: DirectionStatus | None = None

    def compute(self, grads: Vector) -> Vector:
        st, engine = self.state, self.engine
        status, self._learned = self._learned, None
        if st.s:
            r = self._two_loop(grads)
            slope = -engine.dot(grads, r)
            if not slope < 0:  # not a descent direction (or not finite): start again
                self._reset()
                status = DirectionStatus.RESET
                r = grads
        else:
            r = grads
        self.status = status
        if st.s:
            self.initial = 1.0
        else:  # a steepest-descent step: scale its first trial to the gradient
            self.initial = _first_trial(grads)
        return r

    def _two_loop(self, grads: Vector) -> Vector:
        """r = H_k g by N&W Algorithm 7.4 (a new vector; ``grads`` untouched)."""
        st, engine = self.state, self.engine
        q = engine.clone(grads)
        m = len(st.s)
        a = [0.0] * m
        for i in range(m - 1, -1, -1):
            a[i] = st.rho[i] * engine.dot(st.s[i], q)
            for qj, yj in zip(q, st.y[i]):
                qj -= a[i] * yj
        for qj in q:
            qj *= st.gamma
        for i in range(m):
            b = st.rho[i] * engine.dot(st.y[i], q)
            for qj, sj in zip(q, st.s[i]):
                qj += (a[i] - b) * sj
        return q

    def learn(self, feedback: Feedback) -> None:
        st, engine = self.state, self.engine
        if feedback.s is None or feedback.y is None:  # no step was taken along d
            self._reset()
            self.status = DirectionStatus.RESET
            return
        st.fresh = False
        s, y = feedback.s, feedback.y
        sy = engine.dot(s, y)
        yy = engine.dot(y, y)
        ss = engine.dot(s, s)
        threshold = self.curvature_eps * math.sqrt(ss) * math.sqrt(yy)
        if math.isfinite(sy) and yy > 0 and sy > threshold:
            st.s.append(s)
            st.y.append(y)
            st.rho.append(1.0 / sy)
            if len(st.s) > self.history_size:
                del st.s[0], st.y[0], st.rho[0]
            st.gamma = sy / yy
            st.stored += 1
            self._learned = DirectionStatus.STORED
        else:
            st.skipped += 1
            self._learned = DirectionStatus.SKIPPED

    def _reset(self) -> None:
        st = self.state
        st.s.clear()
        st.y.clear()
        st.rho.clear()
        st.gamma = 1.0
        st.resets += 1
        st.fresh = True

    def state_dict(self) -> dict[str, Any]:
        st, engine = self.state, self.engine
        return {
            "s": [engine.to_state(v) for v in st.s],
            "y": [engine.to_state(v) for v in st.y],
            "rho": list(st.rho),
            "gamma": st.gamma,
            "stored": st.stored,
            "skipped": st.skipped,
            "resets": st.resets,
            "fresh": st.fresh,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        engine = self.engine
        s = [engine.from_state(v) for v in state["s"]]
        y = [engine.from_state(v) for v in state["y"]]
        rho = [float(r) for r in state["rho"]]
        if not len(s) == len(y) == len(rho) or len(s) > self.history_size:
            raise ConfigError(
                f"L-BFGS state holds {len(s)} s, {len(y)} y and {len(rho)} rho: expected "
                f"equal counts of at most history_size={self.history_size}"
            )
        self.state = LBFGSState(s, y, rho, float(state["gamma"]), int(state["stored"]),
                                int(state["skipped"]), int(state["resets"]),
                                bool(state["fresh"]))
        self._learned = None

    def __repr__(self) -> str:
        return (f"LBFGSDirection(history_size={self.history_size}, "
                f"curvature_eps={self.curvature_eps})")


def _first_trial(grads: Vector) -> float:
    """min(1, 1/||g||_1): the first trial step along -g when nothing is known of the scale
    (SciPy's and PyTorch's choice), so that the first trial moves by at most about 1.
    ``abs`` and ``.sum()`` are shared by NumPy arrays and torch tensors."""
    l1 = sum(float(abs(x).sum()) for x in grads)
    return min(1.0, 1.0 / l1) if l1 > 0 else 1.0


# --------------------------------------------------------------------------- CG
def _fletcher_reeves(gg: float, gy: float, dy: float, gg_prev: float) -> float:
    """beta_FR = g_k'g_k / g_{k-1}'g_{k-1} (N&W 5.41a)."""
    return gg / gg_prev


def _polak_ribiere_plus(gg: float, gy: float, dy: float, gg_prev: float) -> float:
    """beta_PR+ = max(0, g_k'(g_k - g_{k-1}) / g_{k-1}'g_{k-1}) (N&W 5.44, 5.46)."""
    return max(0.0, gy / gg_prev)


def _hestenes_stiefel(gg: float, gy: float, dy: float, gg_prev: float) -> float:
    """beta_HS = g_k'y_{k-1} / d_{k-1}'y_{k-1} (N&W 5.46)."""
    return gy / dy


def _dai_yuan(gg: float, gy: float, dy: float, gg_prev: float) -> float:
    """beta_DY = g_k'g_k / d_{k-1}'y_{k-1} (Dai & Yuan 1999, SIAM J. Optim. 10(1))."""
    return gg / dy


#: The beta formulas by name: (g_k'g_k, g_k'y_{k-1}, d_{k-1}'y_{k-1}, g_{k-1}'g_{k-1}) -> beta.
BETAS: dict[str, Callable[[float, float, float, float], float]] = {
    "FR": _fletcher_reeves,
    "PR+": _polak_ribiere_plus,
    "HS": _hestenes_stiefel,
    "DY": _dai_yuan,
}


@dataclass
class CGState:
    """Nonlinear CG's memory.

    Attributes
    ----------
    d : vector or None
        d_{k-1}, the direction of the last step taken (None at the start and after a
        reset).
    gg : float
        ||g_{k-1}||^2.
    y : vector or None
        y_{k-1} = g_k - g_{k-1}, from the optimizer's feedback.
    since_restart : int
        Steps taken since the last steepest-descent step.
    restarts, powell, resets : int
        Periodic restarts, Powell restarts and resets (non-descent or no step), since the
        start.
    pending : tuple or None
        (d_k, ||g_k||^2, steps since restart) of the direction just computed, kept until
        the feedback says the step was taken.
    """

    d: Vector | None = None
    gg: float = 0.0
    y: Vector | None = None
    since_restart: int = 0
    restarts: int = 0
    powell: int = 0
    resets: int = 0
    pending: tuple[Vector, float, int] | None = None


class CGDirection(Direction):
    """Nonlinear conjugate gradients (N&W §5.2): d_k = -g_k + beta_k d_{k-1}.

    ``beta`` is one of FR (Fletcher-Reeves), PR+ (Polak-Ribiere, clipped at 0), HS
    (Hestenes-Stiefel) and DY (Dai-Yuan), each a function of g_k'g_k, g_k'y_{k-1},
    d_{k-1}'y_{k-1} and g_{k-1}'g_{k-1} (:data:`BETAS`). The direction restarts with
    d_k = -g_k

    * every ``restart`` steps (n, the number of variables, by default: on a quadratic,
      CG with exact steps ends in n steps, N&W Theorem 5.3),
    * when conjugacy is lost: Powell's test |g_k'g_{k-1}| >= 0.2 ||g_k||^2 (N&W 5.52),
    * when d_k is not a descent direction (g_k'd_k >= 0; possible for FR, PR+ and HS when
      the line search is not exact enough), or beta is not finite,
    * when the step rule took no step along d_{k-1}.

    ``initial`` is left to the rule: StrongWolfe starts each search from the previous
    step scaled by the ratio of slopes, alpha_{k-1} g_{k-1}'d_{k-1} / g_k'd_k (N&W §3.5),
    since CG steps have no natural unit length.
    """

    learns = True

    def __init__(self, beta: str = "PR+", restart: int | None = None):
        if not isinstance(beta, str) or beta.strip().upper() not in BETAS:
            raise ConfigError(f"unknown beta {beta!r} for CG; known: {', '.join(BETAS)}")
        self.beta = beta.strip().upper()
        self.formula = BETAS[self.beta]
        self.restart = None if restart is None else check_count("restart", restart)
        self.state = CGState()

    def compute(self, grads: Vector) -> Vector:
        st, engine = self.state, self.engine
        status = None
        gg = engine.dot(grads, grads)
        d: Vector | None = None
        n = self.restart or sum(math.prod(x.shape) for x in grads)
        if st.d is not None and st.y is not None:
            if st.since_restart >= n:
                st.restarts += 1
                status = DirectionStatus.RESTART
            else:
                gy = engine.dot(grads, st.y)
                if abs(gg - gy) >= POWELL * gg:  # g_k'g_{k-1} = g_k'g_k - g_k'y_{k-1}
                    st.powell += 1
                    status = DirectionStatus.POWELL
                else:
                    dy = engine.dot(st.d, st.y)
                    try:
                        beta = self.formula(gg, gy, dy, st.gg)
                    except ZeroDivisionError:  # d'y = 0 or g_{k-1} = 0: restart
                        beta = math.nan
                    gd = -gg + beta * engine.dot(grads, st.d)  # g_k'd_k
                    if math.isfinite(beta) and gd < 0:
                        d = [beta * dj - gj for gj, dj in zip(grads, st.d)]
                    else:
                        st.resets += 1
                        status = DirectionStatus.RESET
        since = st.since_restart + 1
        # the first trial: the rule's warm start from the previous step, except for the
        # first steepest-descent step (at the start or after a reset), scaled as L-BFGS's
        self.initial = None if st.d is not None else _first_trial(grads)
        if d is None:
            d = [-g for g in grads]
            since = 1
        st.pending = (d, gg, since)
        self.status = status
        return d

    def learn(self, feedback: Feedback) -> None:
        st = self.state
        if feedback.s is None or feedback.y is None or st.pending is None:
            st.d = st.y = None
            st.pending = None
            st.since_restart = 0
            st.resets += 1
            self.status = DirectionStatus.RESET
            return
        st.d, st.gg, st.since_restart = st.pending
        st.pending = None
        st.y = feedback.y

    def state_dict(self) -> dict[str, Any]:
        st, engine = self.state, self.engine
        pending = st.pending
        return {
            "d": None if st.d is None else engine.to_state(st.d),
            "gg": st.gg,
            "y": None if st.y is None else engine.to_state(st.y),
            "since_restart": st.since_restart,
            "restarts": st.restarts,
            "powell": st.powell,
            "resets": st.resets,
            "pending": None if pending is None else
            {"d": engine.to_state(pending[0]), "gg": pending[1], "since": pending[2]},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        engine = self.engine
        p = state["pending"]
        self.state = CGState(
            None if state["d"] is None else engine.from_state(state["d"]),
            float(state["gg"]),
            None if state["y"] is None else engine.from_state(state["y"]),
            int(state["since_restart"]), int(state["restarts"]), int(state["powell"]),
            int(state["resets"]),
            None if p is None else (engine.from_state(p["d"]), float(p["gg"]), int(p["since"])),
        )

    def __repr__(self) -> str:
        return f"CGDirection(beta={self.beta!r}, restart={self.restart})"


# --------------------------------------------------------------------------- optimizers
class _Iterations(Optimizer):
    """The shell of L-BFGS and CG: up to ``max_iter`` iterations in one ``step(closure)``
    call, as ``torch.optim.LBFGS`` does (:class:`LBFGS` documents the rules)."""

    max_iter: int = 1

    def step(self, closure: Closure | None = None, *, same_batch: bool = False,
             loss: Any = None) -> Any:
        """Up to ``max_iter`` iterations; the loss at the start of the first.

        ``opt.last`` describes the last iteration, with ``iterations`` (how many ran) and
        ``call_evaluations`` / ``call_gradient_evaluations`` (all of them together).
        """
        if self.max_iter == 1:
            return super().step(closure, same_batch=same_batch, loss=loss)
        if closure is None:
            raise ConfigError(f"max_iter={self.max_iter} evaluates the loss after each "
                              "iteration: pass step(closure)")
        first = super().step(closure, same_batch=same_batch)
        info = self.last
        assert info is not None
        evaluations, gradient_evaluations = info.evaluations, info.gradient_evaluations
        iterations = 1
        while iterations < self.max_iter and info.step_norm > 0:
            super().step(closure, same_batch=True)  # the same objective, by construction
            info = self.last
            assert info is not None
            evaluations += info.evaluations
            gradient_evaluations += info.gradient_evaluations
            iterations += 1
        info.iterations = iterations
        info.call_evaluations = evaluations
        info.call_gradient_evaluations = gradient_evaluations
        return first


class LBFGS(_Iterations):
    """L-BFGS: the limited-memory BFGS direction with a step rule (strong Wolfe by default).

    x <- x - alpha H_k g_k with H_k from the last ``history_size`` pairs by the two-loop
    recursion (:class:`LBFGSDirection`, N&W Algorithm 7.4). Any step rule composes; with a
    schedule or Armijo, pairs without positive curvature are skipped
    (``opt.last.direction == "skipped"``).

    Parameters
    ----------
    params : iterable of Tensor or parameter groups
    lr : StepRule, float or schedule, default ``StrongWolfe()`` (c1 = 1e-4, c2 = 0.9)
    history_size : int >= 1
        m, the number of curvature pairs kept (10 as in SciPy and PyTorch).
    curvature_eps : float in [0, 1)
        A pair is stored only when s'y > curvature_eps ||s|| ||y||.
    weight_decay : float >= 0
    max_iter : int >= 1, default 1
        Iterations per ``step(closure)`` call (``torch.optim.LBFGS``'s ``max_iter``, whose
        default is 20). With 1, each call is one iteration.
    max_grad_norm : float or None
        Clip the gradient to this global norm before it makes the direction (as for
        :class:`~descend.optim.GD`; the curvature pairs keep the unclipped gradients).
    engine : Engine or None
        What the steps run on (None: a NumPy engine).

    Full-batch training. In a loop of ``opt.step(closure)`` calls on one objective, pass
    ``same_batch=True`` (``fit`` and ``minimize`` do), or use ``max_iter``. Without either,
    each iteration evaluates the closure again at the point the strong-Wolfe search has
    just evaluated, with its gradient, on the same trajectory: over the 15
    Moré-Garbow-Hillstrom problems of ``descend.problems`` (``bench/quasi_newton.py``'s
    target) L-BFGS then needs 816 evaluations instead of 455, CG 1,352 instead of 986. On
    mini-batches leave both alone: each call's closure is a different objective.

    ``max_iter=k`` runs up to k iterations in one ``step(closure)`` call. The closure of
    one call is one objective, so each iteration after the first runs as
    ``step(closure, same_batch=True)`` would, reusing the accepted point's gradient:
    ``max_iter=k`` is k calls with ``same_batch=True`` after the first (which follows the
    caller's ``same_batch``), with the same parameters bit for bit, the same evaluations
    and the same step count ``opt.t`` (one per iteration; ``restart`` and the rules'
    schedules count iterations). ``step`` returns the loss at the start of the call;
    ``opt.last`` describes the last iteration, with ``iterations`` (how many ran) and
    ``call_evaluations`` / ``call_gradient_evaluations`` (all of them together);
    ``opt.undo()`` puts back the parameters from before the last iteration.

    The iterations stop early after one that did not move the parameters
    (``opt.last.step_norm == 0``): the rule took no step (a search that found no
    decrease: ``FLAT``, ``ROUNDING``, ``MAX_EVALS``, ...), the gradient was exactly zero,
    or the loss or the gradient was not finite (``opt.last.finite`` False). That is
    torch's stop on a change of the loss below ``tolerance_change``, at its tightest (a
    rule's zero step has reset the direction: the caller's next call starts along -g). There
    is no gradient tolerance of its own: the search rules already stop moving where
    nothing can be gained at working precision (their ``FLAT`` and ``ROUNDING`` exits),
    and there is no cap on the evaluations of a call beyond each search's ``max_evals``.
    """

    def __init__(self, params: Iterable[Any], lr: Any = None, history_size: int = 10,
                 curvature_eps: float = 1e-10, weight_decay: float = 0.0,
                 max_iter: int = 1, *, max_grad_norm: float | None = None,
                 engine: Engine | None = None):
        max_iter = check_count("max_iter", max_iter)
        direction = LBFGSDirection(history_size, curvature_eps)
        super().__init__(params, StrongWolfe() if lr is None else lr, weight_decay, direction,
                         max_grad_norm=max_grad_norm, engine=engine)
        self.history_size = direction.history_size
        self.max_iter = max_iter


class CG(_Iterations):
    """Nonlinear conjugate gradients with a step rule (strong Wolfe, c2 = 0.1, by default).

    d_k = -g_k + beta_k d_{k-1} (:class:`CGDirection`, N&W §5.2) with restarts every n
    steps, on Powell's test and on a non-descent direction.

    Parameters
    ----------
    params : iterable of Tensor or parameter groups
    lr : StepRule, float or schedule, default ``StrongWolfe(c2=0.1)``
    beta : {"FR", "PR+", "HS", "DY"}
    restart : int or None
        Restart every ``restart`` steps (None: n, the number of variables).
    weight_decay : float >= 0
    max_iter : int >= 1, default 1
        Iterations per ``step(closure)`` call: one by default; with k > 1 up to k, with
        the reuse, early stop and records described for :class:`LBFGS`.
    max_grad_norm, engine : as for :class:`LBFGS`.

    Full-batch training: pass ``same_batch=True`` to each ``step``, or use ``max_iter``,
    as for :class:`LBFGS`; without either, each iteration costs a forward and backward
    pass more than it needs.
    """

    def __init__(self, params: Iterable[Any], lr: Any = None, beta: str = "PR+",
                 restart: int | None = None, weight_decay: float = 0.0, max_iter: int = 1,
                 *, max_grad_norm: float | None = None, engine: Engine | None = None):
        max_iter = check_count("max_iter", max_iter)
        direction = CGDirection(beta, restart)
        super().__init__(params, StrongWolfe(c2=0.1) if lr is None else lr, weight_decay,
                         direction, max_grad_norm=max_grad_norm, engine=engine)
        self.beta = direction.beta
        self.max_iter = max_iter
