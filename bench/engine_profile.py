"""Where descend's own time goes in the ``bench/engine.py`` cases.

Three views of one case's forward+backward step, all in this one process:

- ``breakdown`` (default): the step's time split into its parts, each measured with
  ``time.perf_counter`` (median of repeats): the forward alone, the backward alone, and the
  bare NumPy calls that descend makes for the same math (the floor any engine over NumPy
  pays), plus the cost of recording one primitive and of the backward walk per node;
- ``cprofile``: the functions of descend (and NumPy's Python-level helpers) with the most
  own time, in microseconds per step and per call. cProfile adds a fixed cost to every
  Python call, so per-call times are inflated; use them to rank, the breakdown to size;
- ``pyinstrument``: a sampling profile (if pyinstrument is installed), less distorted.

Usage::

    .venv/bin/python bench/engine_profile.py --case tiny_chain
    .venv/bin/python bench/engine_profile.py --case mlp --tool cprofile pyinstrument
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _bench_common as bc
import engine

ROOT = Path(__file__).resolve().parent.parent


def per_call(fn: Callable[[], object], repeat_s: float = 0.1, repeats: int = 7) -> float:
    """Median seconds per call of ``fn`` (timeit-style: calibrated loops, median repeat)."""
    plan = bc.TimingPlan(warmup_s=0.05, min_warmup=3, repeat_s=repeat_s, repeats=repeats)
    return bc.time_per_iteration(fn, plan)["median_s"]


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:10.2f} us"


# ------------------------------------------------------------------------------ breakdown
def breakdown_tiny_chain() -> list[tuple[str, float]]:
    """Parts of the tiny-chain step."""
    import numpy as np

    import descend as ds
    from descend.autodiff import graph

    x_np = engine.make_inputs("tiny_chain")["x"]
    x = ds.tensor(x_np, requires_grad=True)

    def forward() -> Any:
        e = ((x * 1.5 + 0.3).tanh() * x).exp()
        f = e - x
        return ((f * f).sigmoid() * e).sum()

    def step() -> None:
        x.grad = None
        forward().backward()

    # the NumPy calls descend's forward makes (sigmoid: tanh, *0.5 in place twice)
    def numpy_forward() -> Any:
        a = np.multiply(x_np, 1.5)
        b = np.add(a, 0.3)
        c = np.tanh(b)
        d = np.multiply(c, x_np)
        e = np.exp(d)
        f = np.subtract(e, x_np)
        g = np.multiply(f, f)
        h = np.tanh(g * 0.5)
        h *= 0.5
        h += 0.5
        i = np.multiply(h, e)
        return np.asarray(np.sum(i)), (a, b, c, d, e, f, g, h, i)

    # ... and the ones its backward makes: seed, VJPs, accumulation into x.grad
    def numpy_backward() -> Any:
        _s, (_a, _b, c, _d, e, f, _g, h, _i) = fwd_cache
        g0 = np.ones((), dtype=np.float32)
        gi = np.broadcast_to(g0.reshape((1,)), x_np.shape)
        gh, ge1 = gi * e, gi * h
        gg = gh * h * (1 - h)
        gf = gg * f
        gf2 = gg * f
        gf = gf + gf2
        ge2 = gf
        gx1 = -gf
        ge = ge1 + ge2
        gd = ge * e
        gc, gx2 = gd * x_np, gd * c
        gb = gc * (1 - c * c)
        ga = gb
        gx3 = ga * 1.5
        gx = gx1 + gx2
        gx = gx + gx3
        return gx

    fwd_cache = numpy_forward()
    xd = x_np

    def record_one() -> Any:  # one recorded primitive on a tensor that requires grad
        return x * 1.5

    def numpy_one() -> Any:
        return np.multiply(xd, 1.5)

    def no_grad_one() -> Any:
        with graph.no_grad():
            return x * 1.5

    t_step = per_call(step)
    t_fwd = per_call(forward)
    t_np_fwd = per_call(numpy_forward)
    t_np_bwd = per_call(numpy_backward)
    t_rec = per_call(record_one)
    t_np1 = per_call(numpy_one)
    n_nodes = 10
    return [
        ("step (forward + backward)", t_step),
        ("  forward (records 10 primitives)", t_fwd),
        ("  backward (step - forward)", t_step - t_fwd),
        ("NumPy calls of descend's forward, bare", t_np_fwd),
        ("NumPy calls of descend's backward, bare", t_np_bwd),
        ("=> descend's own overhead per step", t_step - t_np_fwd - t_np_bwd),
        ("   forward overhead per primitive", (t_fwd - t_np_fwd) / n_nodes),
        ("   backward overhead per node", (t_step - t_fwd - t_np_bwd) / n_nodes),
        ("x * 1.5 recorded (Tensor.__mul__ -> apply -> Node)", t_rec),
        ("np.multiply(x, 1.5) bare", t_np1),
        ("=> recording overhead of one primitive", t_rec - t_np1),
        ("x * 1.5 under no_grad (incl. context manager)", per_call(no_grad_one)),
    ]


def interleaved(fns: dict[str, Callable[[], object]], rounds: int = 7) -> dict[str, float]:
    """Median over ``rounds`` of each function's per-call time, the functions taking turns
    within every round (slow drifts of the machine then hit all of them alike)."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            times[name].append(per_call(fn, repeat_s=0.1, repeats=3))
    return {name: statistics.median(ts) for name, ts in times.items()}


def breakdown_mlp() -> list[tuple[str, float]]:
    """Parts of the MLP step, against the hand-written reference and against the bare
    NumPy calls that descend makes (same calls, no graph)."""
    import engine_numpy_ref as ref
    import numpy as np

    import descend as ds
    from descend.autodiff import ops

    inp = engine.make_inputs("mlp")
    x, y = inp["x"], inp["y"]
    w1, b1, w2, b2, w3, b3 = (inp[k] for k in engine._MLP_KEYS)
    args = [x, y, w1, b1, w2, b2, w3, b3]
    step, _ = engine.build_descend("mlp")

    xt = ds.tensor(x)
    tw1, tb1, tw2, tb2, tw3, tb3 = (ds.tensor(inp[k], requires_grad=True) for k in engine._MLP_KEYS)

    def descend_forward() -> Any:
        h = ops.relu(ops.linear(xt, tw1, tb1))
        h = ops.relu(ops.linear(h, tw2, tb2))
        return ops.cross_entropy_per_sample(ops.linear(h, tw3, tb3), y).mean()

    def linear(a: Any, w: Any, b: Any) -> Any:
        out = a @ w.T
        out += b
        return out

    def descend_calls_forward() -> Any:
        # linear, relu (a new array), linear, relu, linear, cross-entropy, mean
        h1 = np.maximum(linear(x, w1, b1), 0)
        h2 = np.maximum(linear(h1, w2, b2), 0)
        z = linear(h2, w3, b3)
        m = z.max(axis=1, keepdims=True)
        lse = np.log(np.exp(z - m).sum(axis=1))
        lse += m[:, 0]
        lse -= z[np.arange(len(y)), y]
        loss = np.asarray(lse.sum() / lse.size)
        return h1, h2, z, lse, loss

    def descend_calls_step() -> Any:
        h1, h2, z, lse, _loss = descend_calls_forward()
        g = np.ones((), np.float32)
        gl = np.empty(lse.shape, np.float32)
        gl[...] = (g / lse.size).reshape(1)
        rows = np.arange(len(y))
        shifted = z - z.max(axis=1, keepdims=True)
        p = np.exp(shifted - (lse + shifted[rows, y])[:, None])
        p[rows, y] -= 1
        p *= gl[:, None]
        d2, dw3, db3 = p @ w3, p.T @ h2, p.sum(axis=0)
        d2 = d2 * (h2 > 0)
        d1, dw2, db2 = d2 @ w2, d2.T @ h1, d2.sum(axis=0)
        d1 = d1 * (h1 > 0)
        dw1, db1 = d1.T @ x, d1.sum(axis=0)
        return dw1, db1, dw2, db2, dw3, db3

    def ref_step() -> Any:
        return ref.mlp(*args)

    t = interleaved(
        {
            "step": step,
            "ref": ref_step,
            "calls": descend_calls_step,
            "fwd": descend_forward,
            "calls_fwd": descend_calls_forward,
        }
    )
    h2 = np.maximum(linear(np.maximum(linear(x, w1, b1), 0), w2, b2), 0)
    g = np.ones((128, 256), np.float32)
    return [
        ("descend step (forward + backward)", t["step"]),
        ("NumPy reference step", t["ref"]),
        ("bare NumPy calls that descend's step makes", t["calls"]),
        ("=> descend's own overhead (step - its NumPy calls)", t["step"] - t["calls"]),
        ("=> extra NumPy work over the reference (calls - ref)", t["calls"] - t["ref"]),
        ("descend forward only", t["fwd"]),
        ("bare NumPy calls of descend's forward", t["calls_fwd"]),
        ("descend backward (step - forward)", t["step"] - t["fwd"]),
        ("bare NumPy calls of descend's backward", t["calls"] - t["calls_fwd"]),
        ("sgemm x @ W1.T (128x784 @ 784x256)", per_call(lambda: x @ w1.T)),
        ("sgemm g.T @ x for dW1 (256x128 @ 128x784)", per_call(lambda: g.T @ x)),
        ("relu VJP, new array: g * (out > 0)", per_call(lambda: g * (h2 > 0))),
        ("relu VJP, in place: g *= out > 0", per_call(lambda: np.multiply(g, h2 > 0, out=g))),
    ]


BREAKDOWNS = {"tiny_chain": breakdown_tiny_chain, "mlp": breakdown_mlp}


# ------------------------------------------------------------------------------ profilers
def run_cprofile(case: str, seconds: float, top: int) -> None:
    step, _ = engine.build_descend(case)
    for _ in range(20):
        step()
    n = max(1, int(seconds / per_call(step, repeat_s=0.05)))
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(n):
        step()
    prof.disable()
    stats = pstats.Stats(prof)
    total = stats.total_tt
    entries = []
    for (filename, line, name), (_cc, ncalls, tt, ct, _callers) in stats.stats.items():
        where = filename
        if filename.startswith(str(ROOT)):
            where = str(Path(filename).relative_to(ROOT))
        elif "site-packages/" in filename:
            where = filename.split("site-packages/", 1)[1]
        entries.append((tt, ct, ncalls, f"{where}:{line}({name})"))
    entries.sort(reverse=True)
    print(
        f"cProfile of descend '{case}': {n} steps, {total / n * 1e6:.1f} us per step "
        "under the profiler"
    )
    print(
        f"{'own us/step':>12} {'cum us/step':>12} {'calls/step':>10} {'own us/call':>12}  function"
    )
    for tt, ct, ncalls, label in entries[:top]:
        print(
            f"{tt / n * 1e6:12.2f} {ct / n * 1e6:12.2f} {ncalls / n:10.1f} "
            f"{tt / ncalls * 1e6:12.3f}  {label}"
        )


def run_pyinstrument(case: str, seconds: float) -> None:
    try:
        from pyinstrument import Profiler
    except ImportError:
        print("pyinstrument is not installed (.venv/bin/pip install pyinstrument)")
        return
    step, _ = engine.build_descend(case)
    for _ in range(20):
        step()
    profiler = Profiler(interval=0.0001)
    profiler.start()
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        step()
    profiler.stop()
    print(profiler.output_text(unicode=False, color=False, show_all=False))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", choices=sorted(engine.CASES), default="tiny_chain")
    parser.add_argument(
        "--tool",
        nargs="+",
        choices=("breakdown", "cprofile", "pyinstrument"),
        default=["breakdown", "cprofile"],
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="profiling time per tool")
    parser.add_argument("--top", type=int, default=25, help="cProfile rows to show")
    args = parser.parse_args(argv)
    for tool in args.tool:
        print(f"==== {tool}: descend, case {args.case}")
        if tool == "breakdown":
            if args.case not in BREAKDOWNS:
                print(f"(no breakdown for {args.case})")
                continue
            for label, seconds in BREAKDOWNS[args.case]():
                print(f"{_us(seconds)}  {label}")
        elif tool == "cprofile":
            run_cprofile(args.case, args.seconds, args.top)
        else:
            run_pyinstrument(args.case, args.seconds)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
