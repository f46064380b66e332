"""L-BFGS and nonlinear CG on the Moré-Garbow-Hillstrom problems: evaluations to converge.

For every problem of ``descend.problems.MGH_PROBLEMS`` (standard starting points), each
method runs until an evaluated point has

    f(x) - f* <= 1e-10 (f(x0) - f*)

and the table reports how many objective-and-gradient evaluations it made up to and
including that point (the one at x0 included). Every method evaluates the same function:
descend's closure for the problem, with its gradient by descend's reverse mode, wrapped in
one counter, so an evaluation is counted the same way for all of them. A method that stops
(its own convergence test, a failed line search) or reaches the budget before the target
counts as unsolved ("-").

Methods:

* descend ``LBFGS`` (history 10, strong Wolfe c1 = 1e-4, c2 = 0.9) and ``CG`` (PR+, strong
  Wolfe c2 = 0.1), full batch, driven by ``opt.step(closure, same_batch=True)``;
* SciPy ``minimize(method="L-BFGS-B")`` with maxcor = 10 (its Moré-Thuente search), and
  ``minimize(method="CG")`` (Polak-Ribiere with SciPy's Wolfe search), tolerances set to 0
  so that only the target stops them;
* PyTorch ``torch.optim.LBFGS(lr=1, history_size=10, line_search_fn="strong_wolfe")`` with
  tolerances 0, on a float64 tensor whose gradient is set from the same closure.

Counts are deterministic (no timing), so the methods run in one process, one after the
other. Usage::

    python bench/quasi_newton.py [--budget 20000] [--markdown] [--ablation]

``--ablation`` runs descend's directions with other line searches instead (L-BFGS with
c2 = 0.1 and with Armijo, CG with c2 = 0.9, the other beta formulas).
"""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Callable

import numpy as np

import descend as ds
from descend.problems import MGH_PROBLEMS, Problem

TOLERANCE = 1e-10


class Reached(Exception):
    """The target was met (or the budget spent): unwinds out of any optimizer."""


class Counter:
    """Counts evaluations of one problem and stops the run at the target or the budget."""

    def __init__(self, problem: Problem, budget: int):
        self.problem = problem
        self.budget = budget
        f0 = problem.numpy_objective(problem.x0)
        self.target = problem.f_star + TOLERANCE * (f0 - problem.f_star)
        self.count = 0
        self.solved_at: int | None = None

    def seen(self, value: float) -> None:
        self.count += 1
        if value <= self.target:
            self.solved_at = self.count
            raise Reached
        if self.count >= self.budget:
            raise Reached

    def closure(self) -> Callable[[], ds.Tensor]:
        """descend's closure, counted (descend calls backward itself)."""
        loss_fn = self.problem.loss

        def closure() -> ds.Tensor:
            loss = loss_fn()
            self.seen(float(loss.data))
            return loss

        return closure

    def value_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """f and its gradient at x by descend's reverse mode, counted (SciPy, PyTorch)."""
        param = self.problem.params[0]
        param.data = np.array(x, dtype=np.float64)
        param.grad = None
        loss = self.problem.loss()
        loss.backward()
        value = float(loss.data)
        self.seen(value)
        return value, np.array(param.grad, dtype=np.float64)


def run_descend(name: str, make: Callable[[list], ds.optim.Optimizer], budget: int) -> Counter:
    problem = MGH_PROBLEMS[name]()
    counter = Counter(problem, budget)
    opt = make(problem.params)
    closure = counter.closure()
    zero_steps = 0
    try:
        with np.errstate(all="ignore"):
            while zero_steps < 2:  # two searches in a row found no step: stuck
                opt.step(closure, same_batch=True)
                zero_steps = zero_steps + 1 if opt.last.lr == 0 else 0
    except Reached:
        pass
    return counter


def run_scipy(name: str, method: str, budget: int) -> Counter:
    from scipy.optimize import minimize

    problem = MGH_PROBLEMS[name]()
    counter = Counter(problem, budget)
    if method == "L-BFGS-B":
        options = {"maxcor": 10, "maxiter": budget, "maxfun": budget + 1, "ftol": 0.0,
                   "gtol": 0.0}
    else:
        options = {"maxiter": budget, "gtol": 0.0}
    try:
        with np.errstate(all="ignore"):
            minimize(counter.value_and_grad, problem.x0[0], jac=True, method=method,
                     options=options)
    except Reached:
        pass
    return counter


def run_torch(name: str, budget: int) -> Counter:
    import torch

    problem = MGH_PROBLEMS[name]()
    counter = Counter(problem, budget)
    x = torch.tensor(problem.x0[0], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([x], lr=1, max_iter=budget, max_eval=2 * budget,
                            tolerance_grad=0.0, tolerance_change=0.0, history_size=10,
                            line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        value, grad = counter.value_and_grad(x.detach().numpy())
        x.grad = torch.from_numpy(grad)
        return torch.tensor(value, dtype=torch.float64)

    try:
        with np.errstate(all="ignore"):
            for _ in range(budget):
                before = counter.count
                opt.step(closure)
                if counter.count == before + 1:  # PyTorch stopped itself (no progress)
                    break
    except Reached:
        pass
    return counter


METHODS: dict[str, Callable[[str, int], Counter]] = {
    "descend L-BFGS": lambda n, b: run_descend(n, lambda p: ds.optim.LBFGS(p), b),
    "SciPy L-BFGS-B": lambda n, b: run_scipy(n, "L-BFGS-B", b),
    "PyTorch LBFGS": run_torch,
    "descend CG (PR+)": lambda n, b: run_descend(n, lambda p: ds.optim.CG(p), b),
    "SciPy CG": lambda n, b: run_scipy(n, "CG", b),
}


#: The same directions with other step rules (``--ablation``): the pairing of the directions
#: with their line searches (c2 = 0.9 for L-BFGS, 0.1 for CG) measured, not assumed.
ABLATIONS: dict[str, Callable[[str, int], Counter]] = {
    "L-BFGS, Wolfe c2=0.9": METHODS["descend L-BFGS"],
    "L-BFGS, Wolfe c2=0.1": lambda n, b: run_descend(
        n, lambda p: ds.optim.LBFGS(p, lr=ds.optim.StrongWolfe(c2=0.1)), b),
    "L-BFGS, Armijo": lambda n, b: run_descend(
        n, lambda p: ds.optim.LBFGS(p, lr=ds.optim.Armijo()), b),
    "CG PR+, Wolfe c2=0.1": METHODS["descend CG (PR+)"],
    "CG PR+, Wolfe c2=0.9": lambda n, b: run_descend(
        n, lambda p: ds.optim.CG(p, lr=ds.optim.StrongWolfe(c2=0.9)), b),
    "CG FR, Wolfe c2=0.1": lambda n, b: run_descend(n, lambda p: ds.optim.CG(p, beta="FR"), b),
    "CG HS, Wolfe c2=0.1": lambda n, b: run_descend(n, lambda p: ds.optim.CG(p, beta="HS"), b),
    "CG DY, Wolfe c2=0.1": lambda n, b: run_descend(n, lambda p: ds.optim.CG(p, beta="DY"), b),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=20000,
                        help="evaluations allowed per run (default: 20000)")
    parser.add_argument("--markdown", action="store_true", help="a Markdown table")
    parser.add_argument("--methods", default=None,
                        help="comma-separated subset of: " + ", ".join(METHODS))
    parser.add_argument("--ablation", action="store_true",
                        help="descend's directions with other step rules instead: "
                        + ", ".join(ABLATIONS))
    args = parser.parse_args(argv)
    table = ABLATIONS if args.ablation else METHODS
    methods = ([m.strip() for m in args.methods.split(",") if m.strip()] if args.methods
               else list(table))
    unknown = [m for m in methods if m not in table]
    if unknown:
        parser.error(f"unknown methods {unknown}; known: {', '.join(table)}")

    rows = []
    totals = dict.fromkeys(methods, 0)
    unsolved = dict.fromkeys(methods, 0)
    for name in MGH_PROBLEMS:
        problem = MGH_PROBLEMS[name]()
        row = [name, str(problem.params[0].size)]
        for m in methods:
            counter = table[m](name, args.budget)
            if counter.solved_at is None:
                unsolved[m] += 1
                totals[m] += counter.count
                row.append(f"- ({counter.count})")
            else:
                totals[m] += counter.solved_at
                row.append(str(counter.solved_at))
        rows.append(row)
        print(" ".join(row), file=sys.stderr, flush=True)
    rows.append(["total", ""] + [str(totals[m]) for m in methods])
    rows.append(["unsolved", ""] + [str(unsolved[m]) for m in methods])
    header = ["problem", "n", *methods]
    _print_table(header, rows, args.markdown)
    print(_versions())
    return 0


def _print_table(header: list[str], rows: list[list[str]], markdown: bool) -> None:
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join(["---"] + ["--:"] * (len(header) - 1)) + "|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
        return
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print("  ".join(h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(header,
                                                                                     widths))))
    for row in rows:
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row,
                                                                                      widths))))


def _versions() -> str:
    import scipy

    parts = [f"Python {platform.python_version()}", f"NumPy {np.__version__}",
             f"SciPy {scipy.__version__}"]
    try:
        import torch

        parts.append(f"PyTorch {torch.__version__}")
    except ImportError:
        parts.append("PyTorch not installed")
    return f"{platform.machine()}, {platform.system()}; " + ", ".join(parts)


if __name__ == "__main__":
    sys.exit(main())
