"""Regenerate the figures and tables of docs/step-sizes.md from ``descend.compare``.

    .venv/bin/python docs/make_figures.py            # writes docs/img/*.png, updates the guide
    .venv/bin/python docs/make_figures.py --print    # only prints the tables
    .venv/bin/python docs/make_figures.py --check    # exit 1 when a table in the guide is stale

Every number in the guide comes from here, so the guide stays true to the code: each table
sits between ``<!-- table:NAME -->`` and ``<!-- /table:NAME -->`` markers and is replaced on
every run. The runs are deterministic (seeded data, full-batch steps); the tables leave out
wall times for that reason.

The guide records the environment that wrote its tables (``<!-- tables-environment: ... -->``,
see :mod:`descend._environment`). ``--check`` compares the text exactly in that environment;
elsewhere other rounding may move a run's last digits, so it compares each row to stated
tolerances (:func:`rows_agree`) and says which mode ran.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from descend._environment import differences, fingerprint
from descend.compare import RunResult, compare, format_table, plot
from descend.problems import (
    Problem,
    least_squares,
    logistic_regression,
    max_affine,
    rosenbrock,
)

DOCS = Path(__file__).resolve().parent
GUIDE = DOCS / "step-sizes.md"
IMG = DOCS / "img"
ENVIRONMENT = re.compile(r"<!-- tables-environment: (\{.*?\}) -->")


@dataclass
class Figure:
    """One figure of the guide and the table printed beside it."""

    name: str
    title: str
    build: Callable[[], Problem]
    runs: Callable[[Problem], list[RunResult]]


def smooth_runs(p: Problem) -> list[RunResult]:
    return compare(p, ["constant:1/L", "invtime:100/L:100", "invsqrt:1/L", "armijo", "wolfe",
                       "exact", "polyak"], max_steps=300, tol=1e-10)


def overshooting_runs(p: Problem) -> list[RunResult]:
    return compare(p, ["constant:0.5/L", "constant:1/L", "constant:1.9/L", "constant:2.1/L",
                       "constant:3/L"], max_steps=300, tol=1e-10)


def subgradient_runs(p: Problem) -> list[RunResult]:
    runs = compare(p, ["invsqrt:0.1", "length:0.01", "polyak"], max_steps=2000, tol=1e-6)
    return [*runs, *compare(p, ["armijo"], max_steps=2000, tol=1e-6)]


def nonconvex_runs(p: Problem) -> list[RunResult]:
    runs = compare(p, ["constant:1e-3", "armijo", "wolfe", "polyak"], max_steps=3000, tol=1e-8)
    heavy = compare(p, ["constant:1e-3"], momentum=0.9, max_steps=3000, tol=1e-8)
    return [*runs, *heavy]


def quasi_newton_runs(p: Problem) -> list[RunResult]:
    steps = {"max_steps": 2000, "tol": 1e-10}
    return [
        *compare(p, ["wolfe"], optimizer="gd", **steps),
        *compare(p, ["wolfe", "wolfe:0.0001:0.1", "armijo"], optimizer="lbfgs", **steps),
        *compare(p, ["wolfe:0.0001:0.1", "wolfe"], optimizer="cg", **steps),
        *compare(p, ["wolfe:0.0001:0.1"], optimizer="cg", beta="FR", **steps),
    ]


FIGURES = [
    Figure("smooth", "logistic regression (smooth, strongly convex): every rule converges",
           logistic_regression, smooth_runs),
    Figure("overshooting", "least squares: constant steps around 2/L (overshooting above it)",
           least_squares, overshooting_runs),
    Figure("subgradient", "max of affine functions (an LP): the subgradient method and its bound",
           max_affine, subgradient_runs),
    Figure("nonconvex", "Rosenbrock (non-convex): line searches follow the curved valley",
           rosenbrock, nonconvex_runs),
    Figure("quasinewton", "Rosenbrock (MGH 1): L-BFGS and CG with the searches made for them",
           rosenbrock, quasi_newton_runs),
]


def table_block(results: list[RunResult]) -> str:
    return "```text\n" + format_table(results, timing=False) + "\n```"


def replace_block(text: str, name: str, block: str) -> tuple[str, bool]:
    pattern = re.compile(rf"(<!-- table:{name} -->\n).*?(\n<!-- /table:{name} -->)", re.S)
    new, count = pattern.subn(lambda m: m.group(1) + block + m.group(2), text)
    return new, count == 1


def current_block(text: str, name: str) -> str | None:
    """The table block of ``name`` in the guide's text, or None without markers."""
    match = re.search(rf"<!-- table:{name} -->\n(.*?)\n<!-- /table:{name} -->", text, re.S)
    return None if match is None else match.group(1)


def recorded_environment(guide: str) -> dict[str, str] | None:
    """The environment that wrote the guide's tables, as recorded in it (None if absent)."""
    match = ENVIRONMENT.search(guide)
    return None if match is None else json.loads(match.group(1))


def _cells(block: str) -> list[list[str]]:
    # rows of the table under its header and rule line; cells are separated by two spaces
    lines = block.strip("`\n").splitlines()[3:]
    return [re.split(r"\s{2,}", line.strip()) for line in lines]


def _close(a: str, b: str, rtol: float, atol: float = 0.0) -> bool:
    if a == b:
        return True
    try:
        x, y = float(a), float(b)
    except ValueError:
        return False
    return math.isclose(x, y, rel_tol=rtol, abs_tol=atol)


def rows_agree(recorded: str, current: str) -> bool:
    """Whether two tables agree within what another CPU's rounding may change.

    * rule, method and stop reason: equal;
    * f final: 1e-6 relative (the runs stop on f - f* <= 1e-10 or on a budget; a long
      non-convex run (3,000 Rosenbrock steps) magnifies an ulp of difference the most);
    * f - f*, the bound: 1e-6 relative or 1e-9 absolute (a gap of 1e-11 is itself rounding);
    * steps, f-evals, g-evals: within one (a stopping test or an acceptance test that sits
      on a rounding boundary), except for the exact search by Brent's method, whose
      evaluation count follows when its bracket falls below phi's rounding noise: within a
      factor of two (seen on two CPUs: 291 against 309).
    """
    old, new = _cells(recorded), _cells(current)
    if len(old) != len(new) or any(len(a) != len(b) for a, b in zip(old, new)):
        return False
    for a, b in zip(old, new):
        if a[0] != b[0] or a[1] != b[1] or a[-1] != b[-1] or not _close(a[2], b[2], 1e-6):
            return False
        middle = list(zip(a[3:-1], b[3:-1]))
        counts = middle[-3:]
        if not all(_close(x, y, 1e-6, 1e-9) for x, y in middle[:-3]):
            return False
        for i, (x, y) in enumerate(counts):
            if a[0] == "exact" and i == 1:
                if not int(y) / 2 <= int(x) <= 2 * int(y):
                    return False
            elif abs(int(x) - int(y)) > 1:
                return False
    return True


def check_mode(guide: str) -> tuple[bool, str]:
    """Whether tables are compared as text here, and a sentence saying why."""
    recorded = recorded_environment(guide)
    if recorded is None:
        return True, "no environment recorded in the guide: comparing the tables as text"
    changed = differences(recorded)
    if not changed:
        return True, "this environment wrote the tables: comparing them as text"
    return False, ("the tables were written in another environment (" + "; ".join(changed)
                   + "): comparing them to stated tolerances")


def stale_tables() -> list[str]:
    """The names of the guide's tables that differ from what the code gives now."""
    guide = GUIDE.read_text()
    exact, _ = check_mode(guide)
    stale = []
    for fig in FIGURES:
        block = table_block(fig.runs(fig.build()))
        recorded = current_block(guide, fig.name)
        if recorded is None or (recorded != block if exact else not rows_agree(recorded, block)):
            stale.append(fig.name)
    return stale


def with_environment(guide: str) -> str:
    """The guide with this environment recorded as the one that wrote its tables."""
    line = f"<!-- tables-environment: {json.dumps(fingerprint())} -->"
    if ENVIRONMENT.search(guide):
        return ENVIRONMENT.sub(lambda _: line, guide)
    return guide.rstrip("\n") + "\n\n" + line + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--print", action="store_true", help="print the tables only")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 when a table in the guide is stale")
    args = parser.parse_args(argv)
    if args.check:
        print(f"{GUIDE.name}: {check_mode(GUIDE.read_text())[1]}")
        stale = stale_tables()
        if stale:
            print(f"{GUIDE.name}: stale tables: {', '.join(stale)}; regenerate them with "
                  ".venv/bin/python docs/make_figures.py", file=sys.stderr)
            return 1
        print(f"{GUIDE.name}: every table matches the code")
        return 0
    IMG.mkdir(exist_ok=True)
    guide = GUIDE.read_text() if GUIDE.exists() else ""
    missing = []
    for fig in FIGURES:
        problem = fig.build()
        results = fig.runs(problem)
        block = table_block(results)
        print(f"## {fig.name}: {problem.description}\n{block}\n")
        if args.print:
            continue
        path = plot(results, IMG / f"{fig.name}.png", problem, title=fig.title, dpi=90)
        print(f"wrote {path.relative_to(DOCS.parent)} ({path.stat().st_size // 1024} KB)")
        guide, found = replace_block(guide, fig.name, block)
        if not found:
            missing.append(fig.name)
    if not args.print and guide:
        GUIDE.write_text(with_environment(guide))
    if missing:
        print(f"no markers for: {', '.join(missing)} (paste the tables above)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
