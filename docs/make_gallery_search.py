"""Regenerate the gallery's pictures of the method: a line search and paths on a surface.

    .venv/bin/python docs/make_gallery_search.py            # writes docs/img/*.png and the facts
    .venv/bin/python docs/make_gallery_search.py --check    # exit 1 when an entry is stale

Each entry runs descend and draws one picture with ``descend.plot``; it also returns the
numbers the picture shows (the trials and the accepted step; each path's steps and final
gap), which are kept in ``docs/img/gallery_search.json``. ``--check`` reruns the entries
without drawing and compares those numbers (to 6 significant digits) and that every image
is there, so a change of the code that changes a picture fails until it is regenerated.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import descend as ds
from descend.compare import run_rule
from descend.problems import make_problem

DOCS = Path(__file__).resolve().parent
IMG = DOCS / "img"
FACTS = IMG / "gallery_search.json"


def _g(x: float) -> str:
    return f"{x:.6g}"


class Entry(NamedTuple):
    """One picture: its file under docs/img, what it shows, and how it is made:
    ``make(draw)`` returns (figure or None, the numbers it shows)."""

    name: str
    image: str
    caption: str
    make: Callable[[bool], tuple[Any, dict[str, Any]]]


def backtracking_search(draw: bool) -> tuple[Any, dict[str, Any]]:
    """The first step of gradient descent on logistic regression with Armijo's
    backtracking from alpha0 = 16 (c1 = 0.3): 16 and 8 fail the test, 4 passes."""
    p = make_problem("logreg")
    p.reset()
    opt = ds.optim.GD(p.params, lr=ds.optim.Armijo(alpha0=16.0, c1=0.3))
    opt.record_trials = True
    opt.step(p.loss)
    trials = opt.last.trials
    if len(trials) != 3:
        raise SystemExit(f"backtracking entry: expected 3 trials, got {len(trials)}")
    fig = ds.plot.line_search(opt, points=120) if draw else None
    facts = {"trials": [[_g(t.alpha), _g(t.value)] for t in trials],
             "accepted": _g(opt.last.lr), "phi0": _g(opt.last.loss),
             "slope0": _g(opt.last.slope), "status": opt.last.status.value}
    return fig, facts


#: the runs of the zig-zag picture: (step rule, momentum)
ZIGZAG = (("constant:1.8/L", 0.0), ("exact", 0.0), ("constant:3/L", 0.57))


def zigzag(draw: bool) -> tuple[Any, dict[str, Any]]:
    """Steepest descent on (x^2 + 50 y^2)/2 from (10, 1): a constant step of 1.8/L
    zig-zags across the valley, exact search turns by right angles, heavy-ball momentum
    (step 3/L, beta 0.57, near Polyak's optimal 4/(sqrt L + sqrt mu)^2 and
    ((sqrt kappa - 1)/(sqrt kappa + 1))^2) rolls along it."""
    p = make_problem("quad2d")
    runs = [run_rule(p, rule, momentum=m, max_steps=40, tol=1e-4, record_path=True)
            for rule, m in ZIGZAG]
    fig = ds.plot.paths(p, runs, points=160) if draw else None
    facts = {r.rule + (f" momentum {m:g}" if m else ""):
             {"steps": r.steps, "stop": r.stop_reason, "gap": _g(r.gap)}
             for r, (_, m) in zip(runs, ZIGZAG)}
    return fig, facts


ENTRIES = (
    Entry("backtracking", "line_search_backtracking.png",
          "A backtracking search of 3 trials: phi along -g, Armijo's line, the trials "
          "numbered, the accepted step.", backtracking_search),
    Entry("zigzag", "paths_zigzag.png",
          "Steepest descent with a constant step vs exact line search vs momentum on a "
          "quadratic of condition number 50.", zigzag),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="compare the entries' numbers with docs/img/gallery_search.json")
    args = parser.parse_args(argv)
    if args.check:
        kept = json.loads(FACTS.read_text()) if FACTS.exists() else {}
        stale = []
        for e in ENTRIES:
            _, facts = e.make(False)
            if kept.get(e.name) != facts:
                stale.append(f"{e.name}: its numbers changed")
            if not (IMG / e.image).exists():
                stale.append(f"{e.name}: docs/img/{e.image} is missing")
        for line in stale:
            print(f"stale gallery entry {line}; run docs/make_gallery_search.py", file=sys.stderr)
        return 1 if stale else 0
    facts_all = {}
    for e in ENTRIES:
        fig, facts = e.make(True)
        fig.savefig(IMG / e.image, dpi=90)
        facts_all[e.name] = facts
        print(f"docs/img/{e.image}: {e.caption}")
    FACTS.write_text(json.dumps(facts_all, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
