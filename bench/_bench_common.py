"""Shared machinery for descend's benchmarks.

Every engine (descend, a hand-written NumPy reference, PyTorch, ...) runs in its own worker
process: PyTorch's OpenMP threads and NumPy's OpenBLAS threads starve each other when both
libraries are loaded into one process, and a fresh process per measurement keeps one engine's
allocator and cache state from leaking into another's numbers.

A benchmark script is a *driver* and a *worker* in one file:

- the worker builds one case for one engine, times it with :func:`time_per_iteration`
  (a warm-up, then ``timeit``-style repeats of many iterations, on ``time.perf_counter``) and
  prints one JSON line with :func:`emit`;
- the driver calls :func:`run_alternating`, which launches the workers round after round,
  engines interleaved within each round (ABC, BCA, CAB, ...), so that slow drifts of the
  machine (frequency, other tenants) hit every engine alike; :func:`summarize` then reports,
  per case, each engine's median over rounds and *paired* ratios: the ratio of two engines is
  taken within each round, then the median of those per-round ratios is reported.

:func:`machine_info` records what the numbers depend on (CPU, cores, Python, NumPy, its BLAS,
thread pools, the BLAS-related environment variables) and :func:`markdown_table` /
:func:`text_table` format the summary.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

#: Prefix of the one line of stdout that carries a worker's JSON result.
RESULT_TAG = "BENCH-RESULT "

#: Environment variables that change what the BLAS and thread pools do.
THREAD_ENV_VARS = (
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
)


# ------------------------------------------------------------------------------ worker side
@dataclass(frozen=True)
class TimingPlan:
    """How a worker times one step function.

    warmup_s, min_warmup : run the step for at least this long and this many times first
        (caches, allocator pools, lazily loaded libraries, branch predictors).
    repeat_s : the number of iterations per repeat is chosen, as ``timeit.Timer.autorange``
        does (1, 2, 5, 10, 20, 50, ...), so that one repeat takes at least this long.
    repeats : how many repeats are timed; the worker reports their median.
    gc_enabled : keep Python's cyclic garbage collector running while timing (the realistic
        setting; ``timeit`` turns it off).
    """

    warmup_s: float = 0.5
    min_warmup: int = 5
    repeat_s: float = 0.2
    repeats: int = 7
    gc_enabled: bool = True

    @classmethod
    def quick(cls) -> TimingPlan:
        """A smoke-test plan: a few milliseconds per measurement."""
        return cls(warmup_s=0.01, min_warmup=2, repeat_s=0.005, repeats=3)

    def as_args(self) -> list[str]:
        """Command-line flags that :func:`add_timing_args` parses back into this plan."""
        args = [
            "--warmup-s",
            repr(self.warmup_s),
            "--min-warmup",
            str(self.min_warmup),
            "--repeat-s",
            repr(self.repeat_s),
            "--repeats",
            str(self.repeats),
        ]
        if not self.gc_enabled:
            args.append("--no-gc")
        return args


def add_timing_args(parser: Any) -> None:
    """Add the worker's timing flags (see :class:`TimingPlan`) to an ``argparse`` parser."""
    default = TimingPlan()
    parser.add_argument("--warmup-s", type=float, default=default.warmup_s)
    parser.add_argument("--min-warmup", type=int, default=default.min_warmup)
    parser.add_argument("--repeat-s", type=float, default=default.repeat_s)
    parser.add_argument("--repeats", type=int, default=default.repeats)
    parser.add_argument("--no-gc", action="store_true", help="disable gc while timing")


def plan_from_args(args: Any) -> TimingPlan:
    """The :class:`TimingPlan` that :func:`add_timing_args` flags describe."""
    return TimingPlan(
        warmup_s=args.warmup_s,
        min_warmup=args.min_warmup,
        repeat_s=args.repeat_s,
        repeats=args.repeats,
        gc_enabled=not args.no_gc,
    )


def _loop(step: Callable[[], object], number: int) -> float:
    """Seconds taken by ``number`` calls of ``step``."""
    start = time.perf_counter()
    for _ in range(number):
        step()
    return time.perf_counter() - start


def time_per_iteration(step: Callable[[], object], plan: TimingPlan) -> dict[str, Any]:
    """Time ``step()`` as ``timeit`` does and return seconds per call.

    Returns a dict with ``median_s`` (the median over repeats of time/iterations: the number
    reported), ``min_s``, ``max_s``, ``repeats_s`` (every repeat), ``number`` (iterations per
    repeat) and ``warmup_iters``.
    """
    warm = 0
    start = time.perf_counter()
    while warm < plan.min_warmup or time.perf_counter() - start < plan.warmup_s:
        step()
        warm += 1

    gc_was_enabled = gc.isenabled()
    if not plan.gc_enabled:
        gc.collect()
        gc.disable()
    try:
        number = 1
        while True:  # timeit.Timer.autorange: 1, 2, 5, 10, 20, 50, ...
            for factor in (1, 2, 5):
                n = number * factor
                if _loop(step, n) >= plan.repeat_s:
                    number = n
                    break
            else:
                number *= 10
                continue
            break
        cpu0, wall0 = _cpu_seconds(), time.perf_counter()
        per_call = [_loop(step, number) / number for _ in range(plan.repeats)]
        cpu_per_wall = (_cpu_seconds() - cpu0) / (time.perf_counter() - wall0)
    finally:
        if gc_was_enabled:
            gc.enable()
    return {
        "median_s": statistics.median(per_call),
        "min_s": min(per_call),
        "max_s": max(per_call),
        "repeats_s": per_call,
        "number": number,
        "warmup_iters": warm,
        "gc_enabled": plan.gc_enabled,
        "cpu_per_wall": cpu_per_wall,
    }


def _cpu_seconds() -> float:
    """User + system CPU time of this process so far (all its threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def threadpools() -> list[dict[str, Any]]:
    """The native thread pools loaded in this process (threadpoolctl), or [] without it."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    keys = (
        "user_api",
        "internal_api",
        "version",
        "num_threads",
        "threading_layer",
        "architecture",
        "prefix",
    )
    return [{k: pool[k] for k in keys if k in pool} for pool in threadpool_info()]


def emit(result: Mapping[str, Any], stream: TextIO | None = None) -> None:
    """Print a worker's result as the one tagged JSON line the driver reads."""
    stream = stream or sys.stdout
    stream.write(RESULT_TAG + json.dumps(result) + "\n")
    stream.flush()


# ------------------------------------------------------------------------------ driver side
@dataclass
class RunResults:
    """What :func:`run_alternating` measured.

    runs[case][engine] is the list of worker results, one per round, in round order (so
    index r of two engines belongs to the same round and can be paired).
    """

    cases: list[str]
    engines: list[str]
    rounds: int
    runs: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)
    wall_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "cases": self.cases,
            "engines": self.engines,
            "rounds": self.rounds,
            "wall_s": self.wall_s,
            "runs": self.runs,
        }


class WorkerError(RuntimeError):
    """A worker exited badly or printed no result."""


def run_worker(
    cmd: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float | None = 900.0
) -> dict[str, Any]:
    """Run one worker command and return the JSON it emitted (see :func:`emit`)."""
    proc = subprocess.run(
        list(cmd),
        capture_output=True,
        text=True,
        env=None if env is None else dict(env),
        timeout=timeout,
        check=False,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_TAG)]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-15:]
        raise WorkerError(
            f"worker {' '.join(cmd)} exited with {proc.returncode} and "
            f"{'no' if not lines else 'a'} result:\n  " + "\n  ".join(tail)
        )
    return json.loads(lines[-1][len(RESULT_TAG) :])


def _proc_stat() -> tuple[int, int] | None:
    """(total, idle) jiffies of all CPUs together, from the first line of /proc/stat."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields), idle


def cpu_busy_fraction(interval: float = 0.5) -> float | None:
    """Fraction of the whole machine's CPU capacity spent busy over ``interval`` seconds
    (None where /proc/stat is unavailable)."""
    first = _proc_stat()
    time.sleep(interval)
    second = _proc_stat()
    if first is None or second is None or second[0] == first[0]:
        return None
    total, idle = second[0] - first[0], second[1] - first[1]
    return 1.0 - idle / total


def wait_for_idle(max_wait_s: float, threshold: float = 0.2) -> float | None:
    """Wait (at most ``max_wait_s``) until less than ``threshold`` of the machine's CPU is
    busy, so that a measurement does not start while other work is running. Returns the
    last busy fraction seen."""
    deadline = time.monotonic() + max_wait_s
    while True:
        busy = cpu_busy_fraction()
        if busy is None or busy < threshold or time.monotonic() >= deadline:
            return busy


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_measured(
    cmd: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float | None = 900.0
) -> dict[str, Any]:
    """:func:`run_worker`, plus ``foreign_cpu``: the share of the machine's CPU capacity
    that *other* processes used while the worker ran (machine busy time from /proc/stat
    minus the worker's own CPU time from ``resource.getrusage``; None without /proc)."""
    stat0, child0, wall0 = _proc_stat(), _children_cpu_seconds(), time.perf_counter()
    result = run_worker(cmd, env=env, timeout=timeout)
    stat1, child1 = _proc_stat(), _children_cpu_seconds()
    result["worker_wall_s"] = time.perf_counter() - wall0
    result["foreign_cpu"] = None
    if stat0 is not None and stat1 is not None and stat1[0] > stat0[0]:
        hz = os.sysconf("SC_CLK_TCK")
        total = (stat1[0] - stat0[0]) / hz
        busy = total - (stat1[1] - stat0[1]) / hz
        result["foreign_cpu"] = max(0.0, busy - (child1 - child0)) / total
    return result


def run_alternating(
    cases: Sequence[str],
    engines: Sequence[str],
    rounds: int,
    worker_cmd: Callable[[str, str], Sequence[str]],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float | None = 900.0,
    idle_wait_s: float = 0.0,
    max_foreign_cpu: float = 1.0,
    retries: int = 0,
    log: TextIO | None = sys.stderr,
) -> RunResults:
    """Measure every (case, engine) ``rounds`` times, one fresh worker process per run.

    For each case, round r runs every engine once, in the order of ``engines`` rotated by r
    (ABC, BCA, CAB, ...): engines alternate within a round and none always goes first.
    ``worker_cmd(engine, case)`` gives the command line of one worker, which must print one
    result with :func:`emit`; the result should hold ``median_s`` (seconds per iteration).
    ``env`` is passed to the workers unchanged (None: this process's environment).

    On a shared machine: with ``idle_wait_s > 0`` each worker starts only once the machine
    is nearly idle (:func:`wait_for_idle`, waiting at most that long); a worker during which
    other processes used more than ``max_foreign_cpu`` of the machine's CPU capacity (see
    :func:`run_measured`) is run again, up to ``retries`` times, and the least disturbed
    attempt is kept. Each result records ``foreign_cpu``, ``busy_before`` and ``attempts``.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    results = RunResults(cases=list(cases), engines=list(engines), rounds=rounds)
    start = time.perf_counter()
    for case in cases:
        per_engine: dict[str, list[dict[str, Any]]] = {e: [] for e in engines}
        for r in range(rounds):
            shift = r % len(engines)
            order = list(engines[shift:]) + list(engines[:shift])
            for engine in order:
                best: dict[str, Any] | None = None
                for attempt in range(1, retries + 2):
                    busy = wait_for_idle(idle_wait_s) if idle_wait_s > 0 else None
                    res = run_measured(worker_cmd(engine, case), env=env, timeout=timeout)
                    res.update(round=r, busy_before=busy, attempts=attempt)
                    res["load_after"] = load_average()
                    foreign = res["foreign_cpu"]
                    if best is None or (foreign or 0.0) < (best["foreign_cpu"] or 0.0):
                        best = res
                    if log is not None:
                        us = res.get("median_s", float("nan")) * 1e6
                        other = "?" if foreign is None else f"{foreign:.2f}"
                        log.write(
                            f"  {case:<14} round {r + 1}/{rounds}  {engine:<8} {us:12.2f} us"
                            f"  (cpu/wall {res.get('cpu_per_wall', float('nan')):.2f}, "
                            f"other processes {other} of the CPU)\n"
                        )
                        log.flush()
                    if foreign is None or foreign <= max_foreign_cpu:
                        break
                assert best is not None
                per_engine[engine].append(best)
        results.runs[case] = per_engine
    results.wall_s = time.perf_counter() - start
    return results


@dataclass(frozen=True)
class Spread:
    """The median of some values and their range."""

    median: float
    low: float
    high: float
    values: tuple[float, ...]

    @classmethod
    def of(cls, values: Iterable[float]) -> Spread:
        vals = tuple(values)
        return cls(statistics.median(vals), min(vals), max(vals), vals)


def summarize(
    results: RunResults,
    pairs: Sequence[tuple[str, str]],
    key: str = "median_s",
) -> dict[str, dict[str, Any]]:
    """Per case: each engine's :class:`Spread` of ``key`` over rounds and paired ratios.

    For a pair (a, b) the ratio a/b is computed within each round, and the Spread of those
    per-round ratios is reported (its median is the number to quote).
    Returns ``{case: {"times": {engine: Spread}, "ratios": {(a, b): Spread}}}``.
    """
    out: dict[str, dict[str, Any]] = {}
    for case, per_engine in results.runs.items():
        times = {e: Spread.of(run[key] for run in runs) for e, runs in per_engine.items()}
        ratios = {}
        for a, b in pairs:
            if a in per_engine and b in per_engine:
                ratios[(a, b)] = Spread.of(
                    ra[key] / rb[key] for ra, rb in zip(per_engine[a], per_engine[b])
                )
        out[case] = {"times": times, "ratios": ratios}
    return out


def summary_to_json(summary: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """A JSON-friendly copy of :func:`summarize`'s result."""

    def spread(s: Spread) -> dict[str, Any]:
        return {"median": s.median, "low": s.low, "high": s.high, "values": list(s.values)}

    return {
        case: {
            "times_s": {e: spread(s) for e, s in entry["times"].items()},
            "ratios": {f"{a}/{b}": spread(s) for (a, b), s in entry["ratios"].items()},
        }
        for case, entry in summary.items()
    }


# ------------------------------------------------------------------------------ formatting
def format_time(seconds: float) -> str:
    """A duration with a unit that keeps three or four significant digits."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.3g} us" if seconds < 1e-5 else f"{seconds * 1e6:.1f} us"
    if seconds < 1.0:
        return f"{seconds * 1e3:.3g} ms" if seconds < 1e-2 else f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.3g} s"


def format_ratio(s: Spread) -> str:
    """``median x (low-high)`` of paired ratios."""
    return f"{s.median:.2f}x ({s.low:.2f}-{s.high:.2f})"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured Markdown table (first column left-aligned, the rest right)."""
    align = [":---"] + ["---:"] * (len(headers) - 1)
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain table padded with spaces (first column left-aligned, the rest right)."""
    cells = [list(headers)] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(r: Sequence[str]) -> str:
        parts = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:])]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule] + [line(r) for r in cells[1:]])


# ------------------------------------------------------------------------------ machine info
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for ln in f:
                if ln.startswith("model name"):
                    return ln.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _package_version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _numpy_blas() -> dict[str, Any]:
    import numpy as np

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            config = np.show_config(mode="dicts")
        blas = config.get("Build Dependencies", {}).get("blas", {})
        return {k: blas[k] for k in ("name", "version", "openblas configuration") if k in blas}
    except Exception as exc:  # older NumPy without mode="dicts"
        return {"error": repr(exc)}


def machine_info() -> dict[str, Any]:
    """What the timings depend on: CPU, cores, Python, NumPy and its BLAS, thread pools,
    torch's version (read from package metadata: torch is not imported here) and the
    thread- and BLAS-related environment variables (``None`` when unset)."""
    import numpy as np

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "cpu": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "platform": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "numpy": np.__version__,
        "numpy_blas": _numpy_blas(),
        "threadpools": threadpools(),
        "torch": _package_version("torch"),
        "env": {k: os.environ.get(k) for k in THREAD_ENV_VARS},
        "load_average": load_average(),
    }


def load_average() -> list[float] | None:
    """The 1, 5 and 15-minute load averages (other work on the machine skews timings)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def describe_pool(pool: Mapping[str, Any]) -> str:
    """One thread pool (from :func:`threadpools`) in a few words."""
    parts = [str(pool.get("internal_api", "?"))]
    if pool.get("version"):
        parts.append(str(pool["version"]))
    extra = [str(pool[k]) for k in ("architecture", "threading_layer") if pool.get(k)]
    extra.append(f"{pool.get('num_threads', '?')} threads")
    return " ".join(parts) + f" ({', '.join(extra)})"


def machine_info_lines(info: Mapping[str, Any]) -> list[str]:
    """:func:`machine_info` as short ``key: value`` lines (Markdown list items work too)."""
    blas = info.get("numpy_blas", {})
    blas_text = " ".join(str(blas[k]) for k in ("name", "version") if k in blas) or "?"
    env = info.get("env", {})
    env_text = ", ".join(f"{k}={'(unset)' if v is None else v}" for k, v in env.items())
    lines = [
        f"CPU: {info['cpu']} ({info['logical_cores']} logical cores, "
        f"{info['usable_cores']} usable)",
        f"OS: {info['platform']}",
        f"Python: {info['python']}; NumPy {info['numpy']} (BLAS: {blas_text}); "
        f"torch {info.get('torch') or 'not installed'}",
        f"Environment: {env_text}",
    ]
    if info.get("load_average"):
        load = ", ".join(f"{v:g}" for v in info["load_average"])
        lines.append(f"Load average before the run (1/5/15 min): {load}")
    pools = info.get("threadpools") or []
    if pools:
        lines.append("Thread pools in NumPy: " + "; ".join(describe_pool(p) for p in pools))
    return lines


# ------------------------------------------------------------------------------ memory, versions
def current_rss_bytes() -> int | None:
    """This process's resident set size now (from /proc/self/statm; None without /proc)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            resident_pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    """This process's peak resident set size so far (``resource.getrusage(...).ru_maxrss``,
    which Linux reports in KiB and macOS in bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def format_bytes(n: float) -> str:
    """A size in MiB (or KiB below one MiB)."""
    if abs(n) < 1024**2:
        return f"{n / 1024:.0f} KiB"
    return f"{n / 1024**2:.1f} MiB"


def package_versions(names: Iterable[str]) -> dict[str, str | None]:
    """Installed versions of the named distributions (from package metadata, without
    importing them); None for those not installed."""
    return {name: _package_version(name) for name in names}
