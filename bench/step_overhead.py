"""What one optimizer step costs in Python, against an earlier revision of descend.

The step path (evaluate -> direction -> rule -> move -> record, through the engine seam)
must not make training slower. This benchmark exports a git revision of ``src/`` (default:
the commit before the step was rebuilt) to a temporary folder and times the same steps with
it and with the working tree, each in its own process, alternating A B A B, and reports the
medians and the paired ratios (working tree / revision).

Workloads: ``fit`` on digits-shaped data (64-32-10 MLP, batch 32, one BLAS thread) with a
constant step, momentum, the stochastic Armijo search and full-batch strong Wolfe;
``capture=False`` where the working tree has it, so the eager step is what is compared
(``--captured``: the working tree with fit's default, the captured step).

With ``--callgrind`` (needs valgrind) it also counts the instructions per step, which do not
depend on the machine's load: the difference of a 6-epoch and a 1-epoch run, divided by the
steps between them.

    python bench/step_overhead.py                 # against the commit before the rebuild
    python bench/step_overhead.py --base HEAD~5 --rounds 7 --callgrind
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: the last commit before the step path was rebuilt
DEFAULT_BASE = "768fba3"
WORKLOADS = ("constant", "momentum", "armijo", "wolfe")

WORKER = r"""
import inspect, json, sys, time
import numpy as np
import descend as ds
from descend.data import load_digits

kind, epochs, repeats, eager = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
d = load_digits()
X, y = d.X[:512], d.y[:512]
has_capture = "capture" in inspect.signature(ds.train.fit).parameters
extra = {"capture": False} if has_capture and eager == "1" else {}
times = []
steps = 0
for _ in range(repeats):
    model = ds.nn.mlp([64, 32, 10], rng=0)
    rule = {"constant": 0.05, "momentum": 0.05, "armijo": ds.optim.Armijo(c1=0.1),
            "wolfe": ds.optim.StrongWolfe()}[kind]
    opt = ds.optim.GD(model.parameters(), lr=rule, momentum=0.9 if kind == "momentum" else 0.0)
    batch = None if kind == "wolfe" else 32
    run_epochs = epochs * (16 if kind == "wolfe" else 1)  # full batch: one step an epoch
    start = time.perf_counter()
    h = ds.train.fit(model, ds.nn.CrossEntropyLoss(), opt, (X, y), epochs=run_epochs,
                     batch_size=batch, progress=False, seed=0, **extra)
    times.append((time.perf_counter() - start) / h.steps)
    steps = h.steps
print("RESULT " + json.dumps({"per_step_s": min(times), "steps": steps}))
"""


def export(base: str, into: Path) -> Path:
    """``src/`` of revision ``base``, unpacked under ``into``."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", base, "src"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "src"


def run(src: Path, kind: str, epochs: int, repeats: int, prefix: list[str],
        eager: bool = True) -> dict:
    env = dict(os.environ, PYTHONPATH=str(src), OPENBLAS_NUM_THREADS="1",
               PYTHONHASHSEED="0")
    out = subprocess.run([*prefix, sys.executable, "-c", WORKER, kind, str(epochs),
                          str(repeats), "1" if eager else "0"], env=env, capture_output=True,
                         text=True, cwd="/")
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    if not lines:
        raise RuntimeError(f"worker failed: {out.stderr[-2000:]}")
    result = json.loads(lines[-1][7:])
    if prefix:
        counted = [line for line in out.stderr.splitlines() if "Collected" in line]
        result["instructions"] = int(counted[-1].split()[-1])
    return result


def instructions_per_step(src: Path, kind: str, eager: bool) -> float:
    prefix = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    short = run(src, kind, 1, 1, prefix, eager)
    long = run(src, kind, 6, 1, prefix, eager)
    return (long["instructions"] - short["instructions"]) / (long["steps"] - short["steps"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default=DEFAULT_BASE, help="git revision to compare with")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=10, help="epochs of 16 steps per run")
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--callgrind", action="store_true",
                        help="also count instructions per step with valgrind")
    parser.add_argument("--captured", action="store_true",
                        help="the working tree with fit's default capture=True (else eager)")
    args = parser.parse_args()
    kinds = [k for k in args.workloads.split(",") if k]
    with tempfile.TemporaryDirectory() as tmp:
        srcs = {"base": export(args.base, Path(tmp)), "tree": ROOT / "src"}
        print(f"base {args.base} vs the working tree; {args.rounds} rounds, alternating")
        for kind in kinds:
            times: dict[str, list[float]] = {"base": [], "tree": []}
            for r in range(args.rounds):
                order = ("base", "tree") if r % 2 == 0 else ("tree", "base")
                for name in order:
                    eager = name == "base" or not args.captured
                    result = run(srcs[name], kind, args.epochs, 3, [], eager)
                    times[name].append(result["per_step_s"])
            ratios = [t / b for b, t in zip(times["base"], times["tree"])]
            line = (f"{kind:9s} base {statistics.median(times['base']) * 1e6:7.1f} us/step, "
                    f"tree {statistics.median(times['tree']) * 1e6:7.1f} us/step, "
                    f"tree/base {statistics.median(ratios):.3f} "
                    f"[{min(ratios):.3f}, {max(ratios):.3f}]")
            if args.callgrind:
                ib = instructions_per_step(srcs["base"], kind, True)
                it = instructions_per_step(srcs["tree"], kind, not args.captured)
                line += f"; instructions/step {ib:,.0f} -> {it:,.0f} ({it / ib:.3f}x)"
            print(line, flush=True)


if __name__ == "__main__":
    main()
