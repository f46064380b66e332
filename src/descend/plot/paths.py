"""The iterates of step rules on the contours of a test problem's objective.

In two dimensions the plane is the problem's own; in more, the plane through the start x0,
the best point (x* where known, else the lowest iterate of any run) and the end of one run
(the run whose end lies farthest from the line through the other two), each iterate drawn
at its orthogonal projection onto that plane, and the contours those of f on the plane.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..errors import ConfigError
from ._figure import check_target, new_figure, save

__all__ = ["Plane", "path_plane", "paths"]

#: width over height of the drawn region
ASPECT = 1.35


class Plane(NamedTuple):
    """A plane of parameter space: x = origin + s basis[0] + t basis[1].

    ``basis`` holds two orthonormal rows; :meth:`project` gives the coordinates (s, t) of
    a point's orthogonal projection, :meth:`lift` the point of coordinates (s, t).
    ``description`` says which plane it is (shown in the title).
    """

    origin: np.ndarray
    basis: np.ndarray
    description: str

    def project(self, points: np.ndarray) -> np.ndarray:
        """(s, t) per row of ``points`` (shape (k, n) -> (k, 2))."""
        return (np.asarray(points, float) - self.origin) @ self.basis.T

    def lift(self, coords: np.ndarray) -> np.ndarray:
        """The points of coordinates ``coords`` (shape (k, 2) -> (k, n))."""
        return self.origin + np.asarray(coords, float) @ self.basis


def _label(r: Any) -> str:
    return r.rule if r.optimizer == "gd" else f"{r.rule} [{r.optimizer}]"


def _finite_rows(points: np.ndarray) -> np.ndarray:
    return points[np.all(np.isfinite(points), axis=1)]


def path_plane(problem: Any, results: Sequence[Any]) -> Plane:
    """The plane :func:`paths` draws on (see the module docstring).

    Two dimensions: the coordinate plane itself (origin 0, the identity basis). More: the
    origin is x0, the first axis points from x0 to the best point, the second is the
    component, orthogonal to it, of the end of the run whose end lies farthest from that
    line (of any iterate, when every end lies on it; of a coordinate axis, when every
    iterate does).
    """
    _check_results(results)
    x0 = np.concatenate([np.ravel(x) for x in problem.x0]).astype(float)
    n = x0.size
    if n == 2:
        return Plane(np.zeros(2), np.eye(2), "the plane of (x1, x2)")
    if problem.x_star is not None:
        best = np.concatenate([np.ravel(x) for x in problem.x_star]).astype(float)
        best_name = "x*"
    else:
        r, k = min(((r, r.best_step) for r in results), key=lambda rk: rk[0].losses[rk[1]])
        best = r.iterates[k].astype(float)
        best_name = f"the best iterate ({_label(r)}, step {k})"
    u1 = best - x0
    if not np.linalg.norm(u1) > 0:  # the start is the best point: any run's end leads
        ends = [_finite_rows(r.iterates)[-1] - x0 for r in results]
        u1 = max(ends, key=np.linalg.norm)
        best_name = "the end of the farthest run"
        if not np.linalg.norm(u1) > 0:
            u1 = np.eye(n)[0]
    u1 = u1 / np.linalg.norm(u1)

    def residual(x: np.ndarray) -> np.ndarray:
        v = x - x0
        return v - (v @ u1) * u1

    ends = [(residual(_finite_rows(r.iterates)[-1]), f"the end of {_label(r)}") for r in results]
    u2, name = max(ends, key=lambda e: np.linalg.norm(e[0]))
    scale = max(np.linalg.norm(best - x0), 1.0)
    if not np.linalg.norm(u2) > 1e-9 * scale:  # every end on the line: any iterate
        rows = np.vstack([_finite_rows(r.iterates) for r in results])
        res = np.array([residual(x) for x in rows])
        i = int(np.argmax(np.linalg.norm(res, axis=1)))
        u2, name = res[i], "the iterate farthest from that line"
        if not np.linalg.norm(u2) > 1e-9 * scale:  # every iterate on it: a coordinate axis
            axis = int(np.argmin(np.abs(u1)))
            u2, name = residual(x0 + np.eye(n)[axis]), f"coordinate axis {axis + 1}"
    u2 = u2 / np.linalg.norm(u2)
    return Plane(x0, np.stack([u1, u2]), f"the plane through x0, {best_name} and {name}")


def _check_results(results: Sequence[Any]) -> None:
    if not results:
        raise ConfigError("paths: no runs to draw")
    missing = [r.rule for r in results if getattr(r, "iterates", None) is None]
    if missing:
        raise ConfigError(f"paths: run {missing[0]!r} kept no iterates; run it with "
                          "run_rule(..., record_path=True)")


def _objective(problem: Any) -> Any:
    """f at a flat point: the problem's NumPy objective where it has one, else its own
    loss (the variables are put back afterwards)."""
    shapes = [np.shape(x) for x in problem.x0]
    sizes = [int(np.prod(s)) for s in shapes]

    def split(x: np.ndarray) -> list[np.ndarray]:
        out, start = [], 0
        for shape, size in zip(shapes, sizes):
            out.append(x[start:start + size].reshape(shape))
            start += size
        return out

    if problem.numpy_objective is not None:
        return lambda x: problem.numpy_objective(split(x))

    def through_loss(x: np.ndarray) -> float:
        kept = problem.point()
        try:
            problem.set_point(split(x))
            return problem.value()
        finally:
            problem.set_point(kept)

    return through_loss


def paths(problem: Any, results: Sequence[Any], path: str | Path | None = None, *,
          points: int = 100, title: str | None = None, dpi: int = 100) -> Any:
    """Draw each run's iterates over the contours of f.

    Parameters
    ----------
    problem : descend.problems.Problem
        The problem the runs solved (its start, x* where known, its objective).
    results : sequence of descend.compare.RunResult
        Runs made with ``record_path=True`` (``descend compare --path-plot``).
    path : str or Path, optional
        Also write the figure there (format from the suffix).
    points : int
        Contour grid per axis (points^2 evaluations of f).

    Each run is a line through its iterates' coordinates on the plane of
    :func:`path_plane` (gid ``path:i``, i the run's index), the start is marked (``start``),
    x* where known (``x_star``), and for the subgradient method, which returns its best
    iterate rather than its last, the best iterate (``best:i``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    target = check_target(path, "paths")
    if not isinstance(points, int) or isinstance(points, bool) or points < 5:
        raise ConfigError(f"paths: points must be an integer >= 5, got {points!r}")
    plane = path_plane(problem, results)
    coords = [plane.project(r.iterates) for r in results]
    x_star = None
    if problem.x_star is not None:
        flat = np.concatenate([np.ravel(x) for x in problem.x_star]).astype(float)
        x_star = plane.project(flat[None])[0]
    start = plane.project(plane.origin[None] * 0 + np.concatenate(
        [np.ravel(x) for x in problem.x0]).astype(float)[None])[0]

    # the box: every finite iterate of the runs that did not diverge, the start and x*
    shown = [c for c, r in zip(coords, results) if not r.diverged] or coords
    box = np.vstack([_finite_rows(c) for c in shown] + [start[None]]
                    + ([x_star[None]] if x_star is not None else []))
    lo, hi = box.min(axis=0), box.max(axis=0)
    span = np.maximum(hi - lo, 1e-3 * max(float(np.max(np.abs(box))), 1.0))
    lo, hi = lo - 0.08 * span, hi + 0.08 * span
    # equal units on both axes (the right angles of exact search stay right angles): the
    # box grows along its short side to the axes' shape, and the contours fill it
    middle, (w, h) = (lo + hi) / 2, hi - lo
    w, h = max(w, ASPECT * h), max(h, w / ASPECT)
    lo, hi = middle - np.array([w, h]) / 2, middle + np.array([w, h]) / 2
    s = np.linspace(lo[0], hi[0], points)
    t = np.linspace(lo[1], hi[1], points)
    S, T = np.meshgrid(s, t)
    f = _objective(problem)
    grid = plane.lift(np.column_stack([S.ravel(), T.ravel()]))
    with np.errstate(all="ignore"):
        F = np.array([f(x) for x in grid], dtype=float).reshape(S.shape)

    fig = new_figure(figsize=(7.2, 5.6))
    ax = fig.subplots()
    finite = F[np.isfinite(F)]
    if finite.size:
        f_low = float(finite.min())
        rise = np.geomspace(1e-3, 1.0, 18) * max(float(finite.max()) - f_low, 1e-300)
        levels = np.unique(f_low + rise)
        ax.contour(S, T, F, levels=levels, cmap="Greys", linewidths=0.6, alpha=0.8)
    for i, (c, r) in enumerate(zip(coords, results)):
        color = f"C{i % 10}"
        ax.plot(c[:, 0], c[:, 1], "-o", color=color, ms=2.5, lw=1.1, alpha=0.9,
                gid=f"path:{i}", label=f"{_label(r)}: {r.steps} steps, {r.stop_reason}")
        if r.optimizer == "subgradient":
            k = r.best_step
            ax.plot([c[k, 0]], [c[k, 1]], "D", color=color, ms=8, mec="black",
                    gid=f"best:{i}", label=f"best iterate of {_label(r)} (step {k})")
    ax.plot([start[0]], [start[1]], "s", color="black", ms=7, gid="start", label="start x0")
    if x_star is not None:
        ax.plot([x_star[0]], [x_star[1]], "*", color="gold", mec="black", ms=14,
                gid="x_star", label="x*")
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_aspect("equal", adjustable="box")
    n = plane.origin.size
    if n == 2:
        ax.set_xlabel("x1")
        ax.set_ylabel("x2")
    else:
        ax.set_xlabel("s: along the first axis of the plane")
        ax.set_ylabel("t: along the second")
    where = "" if n == 2 else f"\n{n}-D, drawn on {plane.description}"
    ax.set_title(title or f"{problem.name}: {problem.description}{where}", fontsize=9)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    if target is not None:
        save(fig, target, "paths", dpi)
    return fig
