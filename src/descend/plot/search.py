"""The picture of one step's line search: phi(alpha) along the step's line and what the
step rule did on it.

The numbers come from the step itself: ``opt.last`` (with ``opt.record_trials = True``)
holds phi(0), phi'(0), the trials in order and the accepted step; the curve phi(alpha) is
evaluated afterwards along the same line, on the same batch with the same random state
(:meth:`descend.optim.Optimizer.line_values`), so a trial lies on the curve.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..linesearch import Trial
from ..optim.rules import Armijo, Exact, Polyak, StrongWolfe
from ._figure import check_target, new_figure, save

__all__ = ["line_search", "polyak_target"]


def polyak_target(rule: Polyak, step: int) -> float:
    """The value f* the Polyak step of step ``step`` aimed at: the known f*, or the
    estimate f_best - gamma / sqrt(t + 1) (f_best as the rule holds it after the step)."""
    if rule.f_star is not None:
        return rule.f_star
    return rule.f_best - rule.gamma / math.sqrt(step + 1)


def line_search(optimizer: Any, path: str | Path | None = None, *, points: int = 200,
                alpha_max: float | None = None, title: str | None = None,
                dpi: int = 100) -> Any:
    """Draw the last step's line search: phi(alpha) = f(x + alpha d) and the rule's work.

    What is drawn (each artist carries a ``gid`` naming it, for tests and tools):

    - ``phi``: phi(alpha) at ``points`` steps from 0 to ``alpha_max`` (default: 1.15 times
      the largest step tried or taken), evaluated along the step's line on its batch;
    - ``trials``: the rule's trial points (alpha, phi(alpha)), numbered in order;
    - ``accepted``: the step taken, (alpha, phi(alpha)), and a vertical line at it;
    - searches with Armijo's test (``Armijo``, ``StrongWolfe``): ``armijo``, the line
      phi(0) + c1 alpha phi'(0) whose points below it are acceptable;
    - ``StrongWolfe``: ``wolfe-band``, the steps where |phi'(alpha)| <= c2 |phi'(0)| (the
      curvature condition, from slopes computed on the grid), and at each trial a short
      tangent of its slope (``tangent``);
    - ``Polyak``: ``polyak-model``, the model phi(0) + c alpha phi'(0) it sets equal to
      ``polyak-target``, the value f* it aims at (their crossing is the step, unless
      ``max_lr`` capped it);
    - ``Exact``: the accepted step is the minimiser found.

    Parameters
    ----------
    optimizer : descend.optim.Optimizer or descend.torch optimizer
        One whose last step was taken with ``record_trials = True`` and a closure.
    path : str or Path, optional
        Also write the figure there (format from the suffix: .png, .svg, .pdf, ...).
    points : int
        Grid size of the curve (extra forward passes; forward and backward for strong
        Wolfe's band).
    alpha_max : float, optional
        The right end of the grid.

    Returns
    -------
    matplotlib.figure.Figure
    """
    target = check_target(path, "line_search")
    info = getattr(optimizer, "last", None)
    if info is None:
        raise ConfigError("line_search: the optimizer has taken no step yet")
    if info.trials is None:
        raise ConfigError("line_search: the last step recorded no trials; set "
                          "opt.record_trials = True before the step")
    if not isinstance(points, int) or isinstance(points, bool) or points < 2:
        raise ConfigError(f"line_search: points must be an integer >= 2, got {points!r}")
    rule = optimizer.rule
    phi0, slope0, alpha = float(info.loss), float(info.slope), float(info.lr)
    trials: tuple[Trial, ...] = info.trials
    if alpha_max is None:
        far = max([alpha, *(t.alpha for t in trials if math.isfinite(t.alpha))], default=0.0)
        alpha_max = 1.15 * far if far > 0 else 1.0
    elif not (isinstance(alpha_max, int | float) and math.isfinite(alpha_max) and alpha_max > 0):
        raise ConfigError(f"line_search: alpha_max must be a finite number > 0, got {alpha_max!r}")
    grid = np.linspace(0.0, float(alpha_max), points)
    wolfe = isinstance(rule, StrongWolfe)
    evaluated = optimizer.line_values([*grid, alpha], slopes=wolfe)
    if wolfe:
        values = np.array([v for v, _ in evaluated[:-1]], dtype=float)
        slopes = np.array([s for _, s in evaluated[:-1]], dtype=float)
        at_alpha = float(evaluated[-1][0])
    else:
        values = np.array(evaluated[:-1], dtype=float)
        at_alpha = float(evaluated[-1])

    fig = new_figure(figsize=(7.0, 4.6))
    ax = fig.subplots()
    ax.plot(grid, values, color="C0", lw=1.6, label=r"$\phi(\alpha) = f(x + \alpha d)$",
            gid="phi")
    if isinstance(rule, Armijo | StrongWolfe):
        ax.plot([0.0, grid[-1]], [phi0, phi0 + rule.c1 * grid[-1] * slope0], "--",
                color="C2", lw=1.2, gid="armijo",
                label=rf"Armijo: $\phi(0) + c_1 \alpha \phi'(0)$, $c_1$ = {rule.c1:g}")
    if wolfe:
        _wolfe_band(ax, grid, slopes, rule.c2 * abs(slope0))
        _tangents(ax, trials, float(grid[-1]))
    extra = []
    if isinstance(rule, Polyak):
        f_star = polyak_target(rule, info.step)
        ax.plot([0.0, grid[-1]], [phi0, phi0 + rule.c * grid[-1] * slope0], "--",
                color="C4", lw=1.2, gid="polyak-model",
                label=rf"Polyak model $\phi(0) + c \alpha \phi'(0)$, c = {rule.c:g}")
        ax.axhline(f_star, color="C4", lw=1.0, ls=":", gid="polyak-target",
                   label=f"target f* = {f_star:.4g}")
        extra.append(f_star)
    if trials:
        ax.plot([t.alpha for t in trials], [t.value for t in trials], "o", color="C3",
                ms=6, mfc="none", mew=1.5, gid="trials", label=f"trials ({len(trials)})")
        for i, t in enumerate(trials, 1):
            ax.annotate(str(i), (t.alpha, t.value), textcoords="offset points",
                        xytext=(4, 5), fontsize=8, color="C3")
    name = "minimiser found" if isinstance(rule, Exact) else "accepted step"
    ax.axvline(alpha, color="C1", lw=0.8, alpha=0.6)
    ax.plot([alpha], [at_alpha], "*", color="C1", ms=13, gid="accepted",
            label=f"{name}: alpha = {alpha:.4g}")
    _limits(ax, values, [phi0, *extra], trials)
    ax.set_xlabel(r"step size $\alpha$")
    ax.set_ylabel(r"$\phi(\alpha)$")
    status = "" if info.status is None else f", {info.status.value}"
    ax.set_title(title or f"step {info.step}: {rule!r}{status}", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    if target is not None:
        save(fig, target, "line_search", dpi)
    return fig


def _wolfe_band(ax: Any, grid: np.ndarray, slopes: np.ndarray, bound: float) -> None:
    """Shade the grid's runs of steps where |phi'(alpha)| <= bound (each span from the
    first to the last grid point of a run)."""
    inside = np.abs(slopes) <= bound
    edges = np.flatnonzero(np.diff(np.concatenate([[0], inside.astype(int), [0]])))
    label = r"curvature: $|\phi'(\alpha)| \leq c_2 |\phi'(0)|$"
    for lo, hi in zip(edges[::2], edges[1::2]):
        ax.axvspan(grid[lo], grid[hi - 1], color="C2", alpha=0.12, gid="wolfe-band",
                   label=label)
        label = None


def _tangents(ax: Any, trials: tuple[Trial, ...], width: float) -> None:
    """A short segment of slope phi'(alpha) through each trial that has one."""
    half = 0.04 * width
    for t in trials:
        if t.slope is None or not math.isfinite(t.slope):
            continue
        ax.plot([t.alpha - half, t.alpha + half],
                [t.value - half * t.slope, t.value + half * t.slope],
                color="C3", lw=1.0, alpha=0.7, gid="tangent")


def _limits(ax: Any, values: np.ndarray, more: list[float], trials: tuple[Trial, ...]) -> None:
    """The vertical range: the curve's finite values and the trials, not the lines drawn
    to the grid's end (an Armijo line far below would squash the curve)."""
    ys = [v for v in values if math.isfinite(v)] + [t.value for t in trials
                                                     if math.isfinite(t.value)] + more
    lo, hi = min(ys), max(ys)
    pad = 0.08 * (hi - lo) if hi > lo else max(abs(hi), 1.0) * 0.1
    ax.set_ylim(lo - pad, hi + pad)
