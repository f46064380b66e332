"""Compare step-size rules on one test problem: ``descend compare``.

:func:`run_rule` runs one optimizer with one step rule on a :class:`~descend.problems.Problem`
from its starting point and records, per step, f(x_k), f(x_k) - f*, the step size and the
cumulative cost; :func:`compare` does it for several rules; :func:`format_table` and
:func:`plot` show the results.

>>> from descend.problems import logistic_regression
>>> p = logistic_regression()
>>> results = compare(p, ["constant:1/L", "armijo", "wolfe", "polyak"], max_steps=300)
>>> print(format_table(results))

Conventions
-----------
* The optimizer is chosen from the problem unless forced: the subgradient method
  (:class:`~descend.optim.Subgradient`, which keeps the best iterate) for convex non-smooth
  problems when the rule is not a line search, gradient descent otherwise. ``"lbfgs"`` and
  ``"cg"`` run :class:`~descend.optim.LBFGS` and :class:`~descend.optim.CG` with the rule
  (by default strong Wolfe with c2 = 0.9 and 0.1 respectively).
* Step-rule strings are those of the registry (:mod:`descend.optim.spec`), parsed with
  the problem as the objective: a number written ``k/L`` (``constant:1/L``) is k divided
  by the problem's gradient Lipschitz constant, and a bare ``polyak`` uses the problem's
  known f* (the estimated-target Polyak step when f* is unknown). Optimizers are built by
  the same registry (:func:`~descend.optim.spec.make_optimizer`).
* Every run is :func:`descend.train.minimize`, the training loop of ``fit``: the same
  stopping criteria, the same divergence rule and the same stop reasons
  (:data:`~descend.train.stopping.STOP_REASONS`).
* Step k of a run starts at x_k; ``losses[k] = f(x_k)``; ``cum_evaluations[k]`` counts the
  forward passes made to *reach* x_k (so 0 for x_0), excluding the bookkeeping evaluation of
  the point returned. A run stops at the first of: f(x_k) - f* < ``tol`` (``loss_below``),
  divergence, ``max_steps`` moves, a stall (``stalled``: the line search found no acceptable
  step five times in a row), a zero gradient (``stationary``), or the time limit.
* Divergence ("overshooting"): f(x_k) is not finite, or f(x_k) - f(x_0) exceeds
  ``DIVERGENCE_FACTOR`` times the initial gap f(x_0) - f* (times max(|f(x_0)|, 1) when f*
  is unknown; ``DIVERGENCE_FACTOR_SUBGRADIENT`` for the subgradient method, which is not a
  descent method): :class:`~descend.train.stopping.Divergence` with these factors. Gradient
  descent with a step below 2/L never raises f, so this fires only for steps that
  overshoot. The run then stops with reason ``"diverged"``, the loop puts back the last
  parameters, and the reported numbers are those of the last finite iterate.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._output import write_output
from .checks import check_count, check_step_size
from .errors import ConfigError
from .optim import spec
from .optim.rules import Needs
from .problems import Problem
from .train.history import History
from .train.loop import Callback, minimize
from .train.stopping import STOP_REASONS, Divergence, StopWhen

__all__ = [
    "DIVERGENCE_FACTOR",
    "DIVERGENCE_FACTOR_SUBGRADIENT",
    "OPTIMIZERS",
    "STOP_REASONS",
    "RunResult",
    "compare",
    "default_specs",
    "format_table",
    "plot",
    "plotted_values",
    "resolve_rule",
    "run_rule",
]

#: f(x_k) - f(x_0) above this many initial gaps counts as divergence (gradient descent).
DIVERGENCE_FACTOR = 10.0
#: the same for the subgradient method, whose f(x_k) may rise on purpose.
DIVERGENCE_FACTOR_SUBGRADIENT = 1e3
#: consecutive zero steps from a line search that count as a stall.
STALL_STEPS = 5


@dataclass
class RunResult:
    """One run of one step rule on one problem.

    Attributes
    ----------
    rule : str
        The rule as it was asked for (e.g. ``"constant:1/L"``), with its resolved value.
    problem : str
        The problem's registry name.
    optimizer : str
        ``"gd"``, ``"gd+momentum(0.9)"``, ``"subgradient"``, ``"lbfgs(10)"`` or
        ``"cg(PR+)"``.
    final_loss : float
        f at the point returned: the last iterate for gradient descent, the best iterate for
        the subgradient method, the last finite iterate after divergence.
    best_loss : float
        min_k f(x_k) over the finite iterates.
    gap : float or None
        ``final_loss - f*`` (None when f* is unknown).
    steps : int
        Moves made (the returned point is x_steps, except after divergence).
    evaluations, gradient_evaluations : int
        Forward and backward passes made to reach the returned point.
    seconds : float
        Wall time of the run.
    stop_reason : str
        One of :data:`STOP_REASONS`.
    detail : str
        One sentence on why it stopped, with the numbers.
    losses : ndarray, shape (steps + 1,)
        f(x_k), k = 0..steps (the last may be inf or nan after divergence).
    gaps, best_gaps : ndarray or None
        f(x_k) - f* and min_{j<=k} f(x_j) - f* (None when f* is unknown).
    lrs : ndarray, shape (steps,)
        The step size alpha_k used by each move.
    cum_evaluations, cum_gradient_evaluations : ndarray of int, shape (steps + 1,)
        Passes made before step k (the cost of reaching x_k).
    bounds : ndarray or None
        For subgradient runs on problems with known R = ||x_0 - x*|| and G: the classical
        bound (R^2 + G^2 sum_{j<k} alpha_j^2) / (2 sum_{j<k} alpha_j) on f_best - f*
        (Boyd & Mutapcic, *Subgradient Methods*, §2.3), per step (inf at k = 0).
    iterates : ndarray or None
        With ``run_rule(..., record_path=True)``: x_k, k = 0..steps, one row per iterate
        (every parameter flattened and concatenated, shape (steps + 1, n)); else None.
    """

    rule: str
    problem: str
    optimizer: str
    final_loss: float
    best_loss: float
    gap: float | None
    steps: int
    evaluations: int
    gradient_evaluations: int
    seconds: float
    stop_reason: str
    detail: str
    losses: np.ndarray
    gaps: np.ndarray | None
    best_gaps: np.ndarray | None
    lrs: np.ndarray
    cum_evaluations: np.ndarray
    cum_gradient_evaluations: np.ndarray
    bounds: np.ndarray | None = None
    iterates: np.ndarray | None = None

    @property
    def diverged(self) -> bool:
        return self.stop_reason == "diverged"

    @property
    def best_step(self) -> int:
        """k of the lowest finite f(x_k) (the first where several tie): the best iterate,
        which the subgradient method returns."""
        finite = np.where(np.isfinite(self.losses), self.losses, np.inf)
        return int(np.argmin(finite))

    @property
    def bound(self) -> float | None:
        """The subgradient method's guarantee at the end of the run, where known."""
        if self.bounds is None or not len(self.bounds):
            return None
        return float(self.bounds[-1])


# ------------------------------------------------------------------------------ rules
def resolve_rule(problem: Problem, spec_or_rule: Any) -> tuple[Any, str]:
    """Turn a rule string (or a step-rule object) into a fresh rule and a display name.

    Strings are parsed by the registry (:func:`descend.optim.spec.resolve_rule`) with
    ``problem`` as the objective: ``k/L`` arguments and a bare ``polyak`` are resolved
    against it (see the module docstring). A rule object is deep-copied, so its state (a
    warm-started line search, Polyak's f_best) starts fresh.
    """
    parsed = spec.resolve_rule(spec_or_rule, problem)
    return parsed.rule, parsed.label


#: The optimizers ``run_rule`` builds, by name.
OPTIMIZERS = ("auto", "gd", "subgradient", "lbfgs", "cg")


def default_specs(problem: Problem, optimizer: str = "auto") -> list[str]:
    """The rules ``descend compare`` runs when ``--steps`` is not given: for L-BFGS and CG
    the strong Wolfe search they are made for (c2 = 0.9 and 0.1), and Armijo."""
    if optimizer == "lbfgs":
        return ["wolfe", "armijo"]
    if optimizer == "cg":
        return ["wolfe:0.0001:0.1", "wolfe"]
    if not problem.smooth and problem.convex:
        return ["invsqrt:0.1", "length:0.01", "polyak"]
    specs = ["constant:1/L"] if problem.lipschitz is not None else []
    specs += ["armijo", "wolfe", "exact"]
    if problem.f_star is not None:
        specs.append("polyak")
    return specs


def _choose_optimizer(problem: Problem, rule: Any, optimizer: str, momentum: float) -> str:
    if optimizer not in OPTIMIZERS:
        raise ConfigError(f"optimizer must be one of {', '.join(map(repr, OPTIMIZERS))}, "
                          f"got {optimizer!r}")
    if optimizer in ("lbfgs", "cg") and momentum:
        raise ConfigError(f"optimizer={optimizer!r} takes no momentum; use optimizer='gd'")
    if optimizer == "auto":
        wants_sub = not problem.smooth and problem.convex
        plain = rule.needs == Needs.NOTHING and not momentum
        optimizer = "subgradient" if wants_sub and plain else "gd"
    if optimizer == "subgradient" and momentum:
        raise ConfigError("the subgradient method takes no momentum; use optimizer='gd'")
    return optimizer


# ------------------------------------------------------------------------------ running
def run_rule(
    problem: Problem,
    spec_or_rule: Any,
    *,
    optimizer: str = "auto",
    momentum: float = 0.0,
    max_steps: int = 500,
    tol: float = 1e-6,
    time_limit: float | None = None,
    progress: bool = False,
    history_size: int = 10,
    beta: str = "PR+",
    record_path: bool = False,
) -> RunResult:
    """Run one step rule on ``problem`` from its starting point.

    Parameters
    ----------
    problem : Problem
        Reset to its starting point first; left at the returned point.
    spec_or_rule : str or step rule
        ``"armijo"``, ``"constant:1/L"``, ``"invsqrt:0.5"``, ... or a rule object (copied).
    optimizer : {"auto", "gd", "subgradient", "lbfgs", "cg"}
        ``"auto"``: the subgradient method on convex non-smooth problems for non-search
        rules, gradient descent otherwise.
    momentum : float in [0, 1)
        Heavy-ball momentum for gradient descent.
    max_steps : int >= 1
        The most moves to make.
    tol : float >= 0
        Stop when f_best - f* <= tol (problems with known f* only).
    time_limit : float or None
        Seconds.
    progress : bool
        A progress bar for runs that last longer than a second (on a terminal).
    history_size : int
        L-BFGS's memory (``optimizer="lbfgs"``).
    beta : {"FR", "PR+", "HS", "DY"}
        CG's formula (``optimizer="cg"``).
    record_path : bool
        Keep every iterate x_k in ``RunResult.iterates`` (for ``descend.plot.paths``).

    Returns
    -------
    RunResult
    """
    check_count("max_steps", max_steps)
    check_step_size("tol", tol, allow_zero=True)
    if time_limit is not None:
        check_step_size("time_limit (seconds)", time_limit, allow_inf=True)
    rule, label = resolve_rule(problem, spec_or_rule)
    kind = _choose_optimizer(problem, rule, optimizer, momentum)
    problem.reset()
    opt, method = _make_optimizer(problem, rule, kind, momentum, history_size, beta)

    f_star = problem.f_star
    stop = StopWhen(max_steps=max_steps, time_limit=time_limit, stalled=STALL_STEPS,
                    stationary=True,
                    loss_below=None if f_star is None else f_star + tol)
    factor = DIVERGENCE_FACTOR_SUBGRADIENT if kind == "subgradient" else DIVERGENCE_FACTOR
    passes = _GradientPasses()
    callbacks: list[Callback] = [passes]
    path = _Path(problem) if record_path else None
    if path is not None:
        callbacks.append(path)
    started = time.perf_counter()
    # overflow on the way to divergence is reported by name, not as NumPy warnings
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        history = minimize(problem.loss, opt, stop=stop, divergence=Divergence(factor, f_star),
                           callbacks=callbacks, progress=label if progress else False)
        reason = history.stop_reason
        assert reason is not None
        losses = list(history.loss)
        if reason.criterion != "diverged":
            losses.append(problem.value())  # bookkeeping: the point returned, not counted
    seconds = time.perf_counter() - started
    result = _result(problem, opt, kind, label, method, history, losses, passes.counts, seconds)
    if path is not None:
        result.iterates = np.array(path.points[: len(losses)])
    return result


def _make_optimizer(problem: Problem, rule: Any, kind: str, momentum: float,
                    history_size: int, beta: str) -> tuple[Any, str]:
    """The optimizer of one run (from the registry; each takes the options that apply to
    it) and its name in the table."""
    opt = spec.make_optimizer(kind, problem.params, rule, strict=False, momentum=momentum,
                              history_size=history_size, beta=beta)
    if kind == "lbfgs":
        return opt, f"lbfgs({opt.history_size})"
    if kind == "cg":
        return opt, f"cg({opt.beta})"
    if kind == "gd" and momentum:
        return opt, f"gd+momentum({momentum:g})"
    return opt, kind


def _result(problem: Problem, opt: Any, kind: str, label: str, method: str, history: History,
            losses: list[float], gradient_passes: list[int], seconds: float) -> RunResult:
    """A run's record from its History (see RunResult for the conventions)."""
    reason = history.stop_reason
    assert reason is not None
    f_star = problem.f_star
    moves = len(losses) - 1

    if kind == "subgradient" and reason.criterion != "diverged":
        final = losses[-1]
        if not final <= opt.best_loss and opt.restore_best():
            final = float(opt.best_loss)
    else:
        final = _last_finite(losses)
    loss_arr = np.asarray(losses, dtype=float)
    finite = np.where(np.isfinite(loss_arr), loss_arr, np.inf)
    best_arr = np.minimum.accumulate(finite)
    lrs = np.asarray(history.lr[:moves], dtype=float)
    gaps = best_gaps = bounds = None
    if f_star is not None:
        gaps = loss_arr - f_star
        best_gaps = best_arr - f_star
    if kind == "subgradient" and problem.subgradient_bound is not None and problem.x_star:
        R = problem.distance(problem.x0)
        G = problem.subgradient_bound
        s1 = np.r_[0.0, np.cumsum(lrs)]
        s2 = np.r_[0.0, np.cumsum(lrs**2)]
        with np.errstate(divide="ignore", invalid="ignore"):
            bounds = np.where(s1 > 0, (R * R + G * G * s2) / (2 * s1), np.inf)
    cum_f = np.r_[0, np.cumsum(history.evaluations[:moves])].astype(np.int64)
    cum_g = np.r_[0, np.cumsum(gradient_passes[:moves])].astype(np.int64)
    return RunResult(
        rule=label,
        problem=problem.name,
        optimizer=method,
        final_loss=final,
        best_loss=float(best_arr[-1]) if len(best_arr) else math.nan,
        gap=None if f_star is None else final - f_star,
        steps=moves,
        evaluations=int(cum_f[-1]),
        gradient_evaluations=int(cum_g[-1]),
        seconds=seconds,
        stop_reason=reason.criterion,
        detail=reason.message,
        losses=loss_arr,
        gaps=gaps,
        best_gaps=best_gaps,
        lrs=lrs,
        cum_evaluations=cum_f,
        cum_gradient_evaluations=cum_g,
        bounds=bounds,
    )


class _GradientPasses(Callback):
    """Collects each step's backward passes (History records the forward passes)."""

    def __init__(self) -> None:
        self.counts: list[int] = []

    def on_step_end(self, history: History, optimizer: Any) -> None:
        self.counts.append(optimizer.last.gradient_evaluations)


class _Path(Callback):
    """Collects x_k: the starting point, then the point after each step."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.points: list[np.ndarray] = [self._flat()]

    def _flat(self) -> np.ndarray:
        return np.concatenate([np.ravel(p.data) for p in self.problem.params]).astype(float)

    def on_step_end(self, history: History, optimizer: Any) -> None:
        self.points.append(self._flat())


def _last_finite(values: list[float]) -> float:
    for v in reversed(values):
        if math.isfinite(v):
            return float(v)
    return math.nan


def compare(problem: Problem, specs: Sequence[Any] | str, **kwargs: Any) -> list[RunResult]:
    """:func:`run_rule` for each rule (a list, or one comma-separated string); the keyword
    arguments are passed on."""
    items = split_specs(specs) if isinstance(specs, str) else list(specs)
    if not items:
        raise ConfigError("no step rules to compare")
    return [run_rule(problem, item, **kwargs) for item in items]


def split_specs(text: str) -> list[str]:
    """``"armijo, wolfe"`` -> ``["armijo", "wolfe"]``."""
    return [part.strip() for part in text.split(",") if part.strip()]


# ------------------------------------------------------------------------------ reporting
def _num(value: float | None, fmt: str = ".4g") -> str:
    if value is None:
        return "n/a"
    if not math.isfinite(value):
        return str(value)
    return format(value, fmt)


def format_table(results: Sequence[RunResult], *, timing: bool = True) -> str:
    """A plain-text table: one row per run (final loss, gap to f*, steps, forward and
    backward passes, wall time, stop reason; the subgradient bound where known).
    ``timing=False`` leaves out the wall time, so the table is reproducible."""
    has_bound = any(r.bound is not None for r in results)
    header = ["rule", "method", "f final", "f - f*", "steps", "f-evals", "g-evals", "time",
              "stop"]
    if has_bound:
        header.insert(4, "bound")
    rows = []
    for r in results:
        row = [r.rule, r.optimizer, _num(r.final_loss, ".10g"), _num(r.gap, ".2e"),
               str(r.steps), str(r.evaluations), str(r.gradient_evaluations),
               f"{r.seconds:.2f}s", r.stop_reason]
        if has_bound:
            row.insert(4, _num(r.bound, ".2e"))
        rows.append(row)
    if not timing:
        drop = header.index("time")
        header.pop(drop)
        for row in rows:
            row.pop(drop)
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    left = {0, 1, len(header) - 1}

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i in left else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    out = [line(header), line(["-" * w for w in widths])]
    out += [line(row) for row in rows]
    return "\n".join(out)


def plotted_values(results: Sequence[RunResult]) -> tuple[list[np.ndarray], str]:
    """What :func:`plot` draws per run against the steps, and the axis label.

    With f* known: f(x_k) - f* (the best value so far for the subgradient method). Without
    it: f(x_k) - f_ref, f_ref a thousandth of the largest initial gap below the lowest value
    any run reached, so that on a log scale the curves stay apart (f itself on a linear
    scale flattens them into one line) and the best run's curve ends readably instead of
    plunging towards zero. Values are floored at 1e-16 for the log scale.
    """
    floor = 1e-16
    if all(r.gaps is not None for r in results):
        return [np.maximum(r.best_gaps if r.optimizer == "subgradient" else r.gaps, floor)
                for r in results], "f(x_k) - f*"
    finite = [r.losses[np.isfinite(r.losses)] for r in results]
    f_low = min((float(v.min()) for v in finite if v.size), default=0.0)
    f_top = max((float(v[0]) for v in finite if v.size), default=f_low)
    f_ref = f_low - 1e-3 * max(f_top - f_low, 1e-12 * max(abs(f_low), 1.0))
    return ([np.maximum(r.losses - f_ref, floor) for r in results],
            f"f(x_k) - f_ref (f_ref = {f_ref:.6g})")


def plot(results: Sequence[RunResult], path: str | Path, problem: Problem | None = None, *,
         title: str | None = None, dpi: int = 90) -> Path:
    """Save a figure: f - f* (log scale) against steps and against forward passes, and the
    step sizes used. Subgradient runs show the best value so far, with the classical bound
    dashed where known; a diverged run ends with a cross. Where f* is unknown,
    f - f_ref is plotted on a log scale, f_ref just below the lowest value reached. The
    format follows the extension (PNG for ``"-"``, standard output); the file is written as
    ``History.plot`` writes it (atomically). Needs matplotlib (imported here; pyplot's
    global state is left alone)."""
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - matplotlib is an optional dependency
        raise ImportError("compare.plot needs matplotlib: pip install 'descend[plot]'") from exc

    path = Path(path)
    has_star = all(r.gaps is not None for r in results)
    curves, ylabel = plotted_values(results)
    show_method = len({r.optimizer for r in results}) > 1
    # a bare Figure (no pyplot): nothing global changes, the file is rendered with Agg
    fig = Figure(figsize=(12.5, 3.7))
    axes = fig.subplots(1, 3)
    ax_steps, ax_evals, ax_lr = axes
    start = highest = 0.0
    for i, r in enumerate(results):
        color = f"C{i % 10}"
        sub = r.optimizer == "subgradient"
        y = curves[i]
        ok = np.isfinite(y)
        ks = np.arange(len(y))
        evals = r.cum_evaluations[: len(y)]
        label = r.rule + (f" [{r.optimizer}]" if show_method else "")
        label += " (best)" if sub and has_star else ""
        ax_steps.plot(ks[ok], y[ok], color=color, label=label, lw=1.4)
        ax_evals.plot(evals[ok], y[ok], color=color, lw=1.4)
        if ok.any():
            start = max(start, float(y[ok][0]))
            highest = max(highest, float(np.max(y[ok])))
        if r.diverged and ok.any():
            j = np.flatnonzero(ok)[-1]
            ax_steps.plot(ks[j], y[j], "x", color=color, ms=8, mew=2)
            ax_evals.plot(evals[j], y[j], "x", color=color, ms=8, mew=2)
        if r.bounds is not None and has_star:
            b = r.bounds
            fin = np.isfinite(b)
            ax_steps.plot(np.arange(len(b))[fin], b[fin], "--", color=color, lw=1,
                          label=f"bound for {r.rule}")
        if len(r.lrs):
            lr = np.where(r.lrs > 0, r.lrs, np.nan)
            ax_lr.plot(np.arange(len(lr)), lr, color=color, lw=1, alpha=0.85)
    for ax, xlabel in ((ax_steps, "step k"), (ax_evals, "forward passes")):
        ax.set_xlabel(xlabel)
        ax.set_yscale("log")
        if has_star:
            if start > 0:  # room for a divergence, without squashing the rest
                ax.set_ylim(top=3 * min(max(highest, 10 * start), 1e4 * start))
        ax.grid(True, alpha=0.3)
    ax_steps.set_ylabel(ylabel)
    ax_lr.set_yscale("log")
    ax_lr.set_xlabel("step k")
    ax_lr.set_ylabel("step size alpha_k")
    ax_lr.grid(True, alpha=0.3)
    ax_steps.legend(fontsize=7, loc="best")
    name = problem.name if problem is not None else (results[0].problem if results else "")
    fig.suptitle(title or f"descend compare --problem {name}", fontsize=10)
    fig.tight_layout()
    fmt = path.suffix.lower().lstrip(".") or "png"
    write_output(path, lambda fh: fig.savefig(fh, dpi=dpi, format=fmt), what="plot")
    return path
