"""descend's autodiff engine against a hand-written NumPy reference and PyTorch (CPU).

Three cases, each a forward *and* backward pass, float32:

- ``tiny_chain``: ten elementwise operations on a 10-element vector, then ``sum().backward()``
  -- nearly pure per-operation overhead (graph recording, the backward walk, Python calls);
- ``matmul_small``: ``(16, 32) @ (32, 16)``, sum, backward -- small BLAS calls plus overhead;
- ``mlp``: a 784-256-256-10 ReLU MLP with mean cross-entropy on a (128, 784) batch --
  dominated by matrix products, so descend should be close to the NumPy reference.

Targets: on ``tiny_chain`` descend takes at most 0.5x PyTorch's time and at most 3x the NumPy
reference's; on ``mlp`` at most 1.2x the NumPy reference's.

Every (engine, case) measurement runs in its own process (``--worker ENGINE --case CASE``);
the driver interleaves engines within each round and reports medians over rounds and paired
ratios (see ``bench/_bench_common.py``). Usage::

    .venv/bin/python bench/engine.py                 # full run, plain-text report
    .venv/bin/python bench/engine.py --markdown      # Markdown for BENCHMARKS.md
    .venv/bin/python bench/engine.py --quick         # smoke test, a few seconds
    .venv/bin/python bench/engine.py --json out.json --rounds 7
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python bench/engine.py

The environment is passed to the workers unchanged; the report records the BLAS-related
variables so that runs with and without them can be told apart.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import re
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _bench_common as bc

ENGINES = ("descend", "numpy", "torch")
ENGINE_LABELS = {"descend": "descend", "numpy": "NumPy by hand", "torch": "PyTorch"}
PAIRS = (("descend", "numpy"), ("descend", "torch"))
TORCH_THREADS = 2
SEED = 0


@dataclass(frozen=True)
class Case:
    """One benchmark case: what it computes and the ratios descend should stay under."""

    name: str
    label: str
    targets: dict[str, float]  # other engine -> largest allowed descend/other ratio


CASES = {
    "tiny_chain": Case(
        "tiny_chain",
        "tiny chain: 10 elementwise ops on 10 floats, fwd+bwd",
        {"numpy": 3.0, "torch": 0.5},
    ),
    "matmul_small": Case("matmul_small", "(16,32) @ (32,16), sum, fwd+bwd", {}),
    "mlp": Case("mlp", "MLP 784-256-256-10, batch 128, ReLU, CE mean, fwd+bwd", {"numpy": 1.2}),
}

# Step = one forward+backward; Check = the result of one step, to compare engines.
Step = Callable[[], object]
Check = Callable[[], dict[str, Any]]


# ------------------------------------------------------------------------------ inputs
def make_inputs(case: str) -> dict[str, Any]:
    """The case's float32 inputs, identical for every engine (seeded NumPy arrays)."""
    import numpy as np

    rng = np.random.default_rng(SEED)
    f32 = np.float32
    if case == "tiny_chain":
        return {"x": (0.5 * rng.standard_normal(10)).astype(f32)}
    if case == "matmul_small":
        return {
            "a": rng.standard_normal((16, 32)).astype(f32),
            "b": rng.standard_normal((32, 16)).astype(f32),
        }
    if case == "mlp":
        sizes = [784, 256, 256, 10]
        params = {}
        for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes), start=1):
            bound = 1 / math.sqrt(n_in)  # PyTorch's default nn.Linear initialisation
            params[f"w{i}"] = rng.uniform(-bound, bound, (n_out, n_in)).astype(f32)
            params[f"b{i}"] = rng.uniform(-bound, bound, n_out).astype(f32)
        return {
            "x": rng.standard_normal((128, 784)).astype(f32),
            "y": rng.integers(0, 10, 128).astype(np.int64),
            **params,
        }
    raise ValueError(f"unknown case {case!r}; choose from {sorted(CASES)}")


def _summary(loss: float, grads: list[Any]) -> dict[str, Any]:
    import numpy as np

    return {
        "loss": float(loss),
        "grad_norms": [float(np.linalg.norm(np.asarray(g, dtype=np.float64))) for g in grads],
    }


# ------------------------------------------------------------------------------ descend
def build_descend(case: str) -> tuple[Step, Check]:
    """One fwd+bwd step of ``case`` in descend, and a function reporting its result."""
    import descend as ds
    from descend.autodiff import ops

    inp = make_inputs(case)
    if case == "tiny_chain":
        x = ds.tensor(inp["x"], requires_grad=True)

        def step() -> Any:
            x.grad = None
            e = ((x * 1.5 + 0.3).tanh() * x).exp()
            f = e - x
            s = ((f * f).sigmoid() * e).sum()
            s.backward()
            return s

        def check() -> dict[str, Any]:
            return _summary(step().item(), [x.grad])

    elif case == "matmul_small":
        a = ds.tensor(inp["a"], requires_grad=True)
        b = ds.tensor(inp["b"], requires_grad=True)

        def step() -> Any:
            a.grad = b.grad = None
            s = (a @ b).sum()
            s.backward()
            return s

        def check() -> dict[str, Any]:
            return _summary(step().item(), [a.grad, b.grad])

    elif case == "mlp":
        x = ds.tensor(inp["x"])
        y = inp["y"]
        params = [ds.tensor(inp[k], requires_grad=True) for k in _MLP_KEYS]
        w1, b1, w2, b2, w3, b3 = params

        def step() -> Any:
            for p in params:
                p.grad = None
            h = ops.relu(ops.linear(x, w1, b1))
            h = ops.relu(ops.linear(h, w2, b2))
            loss = ops.cross_entropy_per_sample(ops.linear(h, w3, b3), y).mean()
            loss.backward()
            return loss

        def check() -> dict[str, Any]:
            return _summary(step().item(), [p.grad for p in params])

    else:
        raise ValueError(f"unknown case {case!r}")
    return step, check


_MLP_KEYS = ("w1", "b1", "w2", "b2", "w3", "b3")


# ------------------------------------------------------------------------------ NumPy
def build_numpy(case: str) -> tuple[Step, Check]:
    """One fwd+bwd step of ``case`` by the hand-written NumPy reference."""
    import engine_numpy_ref as ref

    inp = make_inputs(case)
    if case == "tiny_chain":
        x = inp["x"]

        def step() -> Any:
            return ref.tiny_chain(x)

        def check() -> dict[str, Any]:
            s, gx = step()
            return _summary(s, [gx])

    elif case == "matmul_small":
        a, b = inp["a"], inp["b"]

        def step() -> Any:
            return ref.matmul_sum(a, b)

        def check() -> dict[str, Any]:
            s, ga, gb = step()
            return _summary(s, [ga, gb])

    elif case == "mlp":
        args = [inp["x"], inp["y"]] + [inp[k] for k in _MLP_KEYS]

        def step() -> Any:
            return ref.mlp(*args)

        def check() -> dict[str, Any]:
            loss, grads = step()
            return _summary(loss, grads)

    else:
        raise ValueError(f"unknown case {case!r}")
    return step, check


# ------------------------------------------------------------------------------ PyTorch
def build_torch(case: str) -> tuple[Step, Check]:
    """One fwd+bwd step of ``case`` in PyTorch eager mode on the CPU."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(TORCH_THREADS)
    inp = make_inputs(case)

    def leaf(a: Any) -> Any:
        return torch.from_numpy(a.copy()).requires_grad_()

    if case == "tiny_chain":
        x = leaf(inp["x"])

        def step() -> Any:
            x.grad = None
            e = ((x * 1.5 + 0.3).tanh() * x).exp()
            f = e - x
            s = ((f * f).sigmoid() * e).sum()
            s.backward()
            return s

        def check() -> dict[str, Any]:
            return _summary(step().item(), [x.grad.numpy()])

    elif case == "matmul_small":
        a, b = leaf(inp["a"]), leaf(inp["b"])

        def step() -> Any:
            a.grad = b.grad = None
            s = (a @ b).sum()
            s.backward()
            return s

        def check() -> dict[str, Any]:
            return _summary(step().item(), [a.grad.numpy(), b.grad.numpy()])

    elif case == "mlp":
        x = torch.from_numpy(inp["x"])
        y = torch.from_numpy(inp["y"])
        params = [leaf(inp[k]) for k in _MLP_KEYS]
        w1, b1, w2, b2, w3, b3 = params

        def step() -> Any:
            for p in params:
                p.grad = None
            h = F.relu(F.linear(x, w1, b1))
            h = F.relu(F.linear(h, w2, b2))
            loss = F.cross_entropy(F.linear(h, w3, b3), y)
            loss.backward()
            return loss

        def check() -> dict[str, Any]:
            return _summary(step().item(), [p.grad.numpy() for p in params])

    else:
        raise ValueError(f"unknown case {case!r}")
    return step, check


BUILDERS: dict[str, Callable[[str], tuple[Step, Check]]] = {
    "descend": build_descend,
    "numpy": build_numpy,
    "torch": build_torch,
}


def source_digest(package_dir: Path) -> str:
    """A short SHA-256 of a package's Python sources: tells apart runs of different code."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(package_dir.rglob("*.py")):
        digest.update(str(path.relative_to(package_dir)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def engine_details(engine: str) -> dict[str, Any]:
    """Versions and thread settings of the engine loaded in this (worker) process."""
    import numpy as np

    info: dict[str, Any] = {"numpy": np.__version__, "threadpools": bc.threadpools()}
    if engine == "descend":
        import descend

        info["descend"] = descend.__version__
        info["descend_source"] = source_digest(Path(descend.__file__).parent)
    elif engine == "torch":
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        blas = re.search(r"BLAS_INFO=(\w+)", torch.__config__.show())
        info["torch_blas"] = blas.group(1) if blas else None
    return info


def worker(engine: str, case: str, plan: bc.TimingPlan) -> dict[str, Any]:
    """Build, check, warm up and time one (engine, case); the dict the driver receives."""
    step, check = BUILDERS[engine](case)
    result = check()  # also the first warm-up iteration
    timing = bc.time_per_iteration(step, plan)
    return {
        "engine": engine,
        "case": case,
        **timing,
        "check": result,
        "details": engine_details(engine),
    }


# ------------------------------------------------------------------------------ driver
def engine_available(engine: str) -> bool:
    """Whether the engine's library can be imported (checked without importing it)."""
    from importlib.util import find_spec

    module = {"descend": "descend", "numpy": "numpy", "torch": "torch"}[engine]
    return find_spec(module) is not None


def check_agreement(results: bc.RunResults, rtol: float = 2e-3) -> list[str]:
    """Warnings where engines disagree on a case's loss or gradient norms (first round)."""
    problems = []
    for case, per_engine in results.runs.items():
        checks = {e: runs[0]["check"] for e, runs in per_engine.items() if runs}
        ref_engine = "numpy" if "numpy" in checks else next(iter(checks))
        ref = checks[ref_engine]
        ref_vals = [ref["loss"], *ref["grad_norms"]]
        for engine, chk in checks.items():
            vals = [chk["loss"], *chk["grad_norms"]]
            bad = len(vals) != len(ref_vals) or any(
                not math.isclose(v, r, rel_tol=rtol, abs_tol=1e-6) for v, r in zip(vals, ref_vals)
            )
            if bad:
                problems.append(
                    f"{case}: {engine} computes {vals}, {ref_engine} computes {ref_vals}"
                )
    return problems


def report_rows(
    summary: dict[str, dict[str, Any]], engines: list[str]
) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of the results table."""
    pairs = [p for p in PAIRS if p[0] in engines and p[1] in engines]
    headers = ["Case"] + [ENGINE_LABELS[e] for e in engines]
    headers += [f"{ENGINE_LABELS[a]} / {ENGINE_LABELS[b]}" for a, b in pairs]
    headers += ["Target", "Met"]
    rows = []
    for name, entry in summary.items():
        case = CASES[name]
        row = [case.label] + [bc.format_time(entry["times"][e].median) for e in engines]
        row += [bc.format_ratio(entry["ratios"][p]) for p in pairs]
        goals, met = [], []
        for other, limit in case.targets.items():
            if ("descend", other) not in entry["ratios"]:
                continue
            ratio = entry["ratios"][("descend", other)].median
            goals.append(f"<= {limit:g}x {ENGINE_LABELS[other]}")
            met.append("yes" if ratio <= limit else f"no ({ratio / limit:.2f}x the target)")
        row += ["; ".join(goals) or "-", "; ".join(met) or "-"]
        rows.append(row)
    return headers, rows


def worker_details_lines(results: bc.RunResults) -> list[str]:
    """One line per engine on its versions and thread pools, from its first worker."""
    lines = []
    for engine in results.engines:
        for per_engine in results.runs.values():
            runs = per_engine.get(engine)
            if not runs:
                continue
            d = runs[0]["details"]
            pools = "; ".join(bc.describe_pool(p) for p in d.get("threadpools", [])) or "-"
            extra = ""
            if engine == "torch":
                extra = f"torch {d.get('torch')}, {d.get('torch_threads')} threads, "
                extra += f"BLAS {d.get('torch_blas') or '?'}; "
            elif engine == "descend":
                versions = sorted(
                    {
                        run["details"].get("descend_source", "?")
                        for rs in results.runs.values()
                        for run in rs.get("descend", [])
                    }
                )
                extra = f"descend {d.get('descend')} (source digest {', '.join(versions)}"
                extra += "; CHANGED DURING THE RUN); " if len(versions) > 1 else "); "
            lines.append(f"{ENGINE_LABELS[engine]} worker: {extra}pools: {pools}")
            break
    return lines


def contention_line(results: bc.RunResults) -> str:
    """How much the machine interfered: each engine's median CPU/wall share while timing
    (about 1.0 for a single-threaded step with a core to itself; more with several
    threads) and the load average seen after the workers."""
    shares = []
    for engine in results.engines:
        vals = [
            run["cpu_per_wall"]
            for per_engine in results.runs.values()
            for run in per_engine.get(engine, [])
            if "cpu_per_wall" in run
        ]
        if vals:
            shares.append(f"{ENGINE_LABELS[engine]} {statistics.median(vals):.2f}")
    loads = [
        run["load_after"][0]
        for per_engine in results.runs.values()
        for runs in per_engine.values()
        for run in runs
        if run.get("load_after")
    ]
    runs = [run for per_engine in results.runs.values() for rs in per_engine.values() for run in rs]
    foreign = [run["foreign_cpu"] for run in runs if run.get("foreign_cpu") is not None]
    reruns = sum(run.get("attempts", 1) - 1 for run in runs)
    text = "Contention: process CPU time / wall time while timing (median) " + ", ".join(shares)
    if foreign:
        text += (
            f"; other processes' share of the machine's CPU during the kept measurements: "
            f"median {statistics.median(foreign):.2f}, max {max(foreign):.2f}"
        )
    text += f"; {reruns} disturbed measurement(s) rerun"
    if loads:
        text += f"; 1-min load average {min(loads):g}-{max(loads):g}"
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", choices=ENGINES, help="(internal) time one engine")
    parser.add_argument("--case", choices=sorted(CASES), help="(with --worker) the case")
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES))
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--rounds", type=int, default=5, help="rounds per case (default 5)")
    parser.add_argument("--quick", action="store_true", help="few iterations: a smoke test")
    parser.add_argument("--markdown", action="store_true", help="print Markdown")
    parser.add_argument("--json", metavar="PATH", help="also write every measurement here")
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=30.0,
        metavar="S",
        help="before each worker, wait up to S seconds for the machine to be nearly idle "
        "(default 30; 0: never wait)",
    )
    parser.add_argument(
        "--max-foreign-cpu",
        type=float,
        default=0.1,
        metavar="F",
        help="rerun a worker during which other processes used more than this share of "
        "the machine's CPU (default 0.1)",
    )
    parser.add_argument(
        "--retries", type=int, default=3, help="reruns per disturbed worker (default 3)"
    )
    bc.add_timing_args(parser)
    args = parser.parse_args(argv)

    if args.worker:
        if not args.case:
            parser.error("--worker needs --case")
        bc.emit(worker(args.worker, args.case, bc.plan_from_args(args)))
        return 0

    plan = bc.TimingPlan.quick() if args.quick else bc.plan_from_args(args)
    engines = [e for e in args.engines if engine_available(e)]
    missing = [e for e in args.engines if e not in engines]
    if missing:
        print(f"skipping (not installed): {', '.join(missing)}", file=sys.stderr)
    rounds = 2 if args.quick and args.rounds == 5 else args.rounds

    def worker_cmd(engine: str, case: str) -> list[str]:
        return [
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker",
            engine,
            "--case",
            case,
            *plan.as_args(),
        ]

    info = bc.machine_info()
    print(
        f"running {len(args.cases)} cases x {len(engines)} engines x {rounds} rounds, "
        "one process each ...",
        file=sys.stderr,
    )
    results = bc.run_alternating(
        args.cases,
        engines,
        rounds,
        worker_cmd,
        idle_wait_s=args.wait_idle,
        max_foreign_cpu=args.max_foreign_cpu,
        retries=args.retries,
    )
    summary = bc.summarize(results, [p for p in PAIRS if p[0] in engines and p[1] in engines])
    problems = check_agreement(results)

    headers, rows = report_rows(summary, engines)
    md = args.markdown
    machine = bc.machine_info_lines(info) + worker_details_lines(results)
    machine.append(contention_line(results))
    method = (
        f"Each cell: median over {rounds} rounds of one worker process's median of "
        f"{plan.repeats} repeats (each >= {plan.repeat_s:g} s of iterations, after >= "
        f"{plan.warmup_s:g} s warm-up), time per forward+backward; ratios are paired (taken "
        f"within each round; median and range over rounds). "
        + (f"PyTorch eager, torch.set_num_threads({TORCH_THREADS}); " if "torch" in engines else "")
        + f"gc {'on' if plan.gc_enabled else 'off'}."
    )
    if md:
        print("#### Autodiff engine: descend vs NumPy by hand vs PyTorch (CPU, float32)\n")
        print("\n".join(f"- {ln}" for ln in machine))
        print()
        print(bc.markdown_table(headers, rows))
        print(f"\n{method}")
    else:
        print("\n".join(machine))
        print()
        print(bc.text_table(headers, rows))
        print(f"\n{method}")
    print(f"(wall time {results.wall_s:.0f} s)")
    for p in problems:
        print(f"WARNING: engines disagree: {p}")

    if args.json:
        payload = {
            "machine": info,
            "plan": plan.__dict__,
            "results": results.to_json(),
            "summary": bc.summary_to_json(summary),
            "disagreements": problems,
        }
        Path(args.json).write_text(json.dumps(payload, indent=1))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
