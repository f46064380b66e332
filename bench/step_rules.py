"""Step-size rules compared: cost to a tolerance on logistic regression, and an untuned
stochastic line search against a grid of constant steps on a digits MLP.

Three parts:

1. **Logistic regression** (``descend.problems`` ``logreg``, float64). For each step rule of
   gradient descent (constant 1/L, InverseSqrt 1/(L sqrt(1 + t)), Armijo, strong Wolfe,
   exact, Polyak with the known f*, heavy-ball momentum 0.9 with the constant step
   (1 - beta)/L): the steps, forward passes (f-evals), backward passes (g-evals) and wall
   time (median of 5 repetitions) to reach f - f* <= 1e-6, measured with
   :func:`descend.compare.run_rule`. Beside them, SciPy's L-BFGS-B (``minimize(jac=True)`` on
   an independent NumPy version of the same objective, stopped by its callback at the first
   iterate within the tolerance) and steepest descent with SciPy's strong-Wolfe
   ``scipy.optimize.line_search``, on the same NumPy objective.
2. **Digits MLP** (64-128-64-10 ReLU, the ``descend train`` default; standardised features,
   80/20 stratified split, batch 64, 20 epochs): the untuned stochastic Armijo line search
   (``Armijo(c1=0.1, shrink=0.9)``, the CLI's ``sls``) against constant steps 0.003 ... 1.0.
   Final validation accuracy (mean over 3 seeds, per seed in the JSON) and the wall time of
   the ``fit()`` call only (median over the repeated timings of each seeded run).
3. **Line-search cost** of the Armijo runs of part 2: forward passes per step (the first,
   with its backward pass, included) and trial evaluations per step (forward passes minus
   one) after the first epoch.

Timing. Every time is ``time.perf_counter`` wall time. The BLAS is limited to one thread
(``--blas-threads``, default 1) before NumPy is imported: with these small matrices a
multi-threaded BLAS on a shared machine mostly spins, and its timings swing by several times
from run to run. Runs are interleaved (seed after seed, the order of the configurations
rotated each round) so that a slow drift of the machine hits every configuration alike.

Usage::

    python bench/step_rules.py --markdown              # the full run (under a minute)
    python bench/step_rules.py --markdown --json out.json
    python bench/step_rules.py --quick                 # a smoke run (a few seconds)
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import platform
import statistics
import sys
import time
from typing import Any

TOL = 1e-6
LOGREG_RULES = (
    # (label, spec for descend.compare.run_rule, momentum)
    ("constant 1/L", "constant:1/L", 0.0),
    ("InverseSqrt 1/(L sqrt(1+t))", "invsqrt:1/L", 0.0),
    ("Armijo (c1=1e-4, shrink=0.5)", "armijo", 0.0),
    ("StrongWolfe (c1=1e-4, c2=0.9)", "wolfe", 0.0),
    ("Exact (Brent)", "exact", 0.0),
    ("Polyak (known f*)", "polyak", 0.0),
    ("momentum 0.9, constant (1-beta)/L", "constant:0.1/L", 0.9),
)
GRID = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
SIZES = [64, 128, 64, 10]
ACC_TARGET_PP = 0.5
TIME_TARGET = 1.3
TRIALS_TARGET = 1.5


# ------------------------------------------------------------------------------ machine
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine_info() -> dict[str, Any]:
    import numpy as np
    import scipy

    import descend

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    try:
        load = [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        load = None
    blas = "?"
    try:
        cfg = np.show_config(mode="dicts")
        b = cfg.get("Build Dependencies", {}).get("blas", {})
        blas = " ".join(str(b[k]) for k in ("name", "version") if k in b) or "?"
    except Exception:  # older NumPy: the BLAS name is only cosmetic
        pass
    env = {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                          "MKL_NUM_THREADS")}
    return {
        "cpu": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "platform": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "numpy": np.__version__,
        "numpy_blas": blas,
        "scipy": scipy.__version__,
        "descend": getattr(descend, "__version__", "?"),
        "blas_threads_env": env,
        "load_average_at_start": load,
    }


# ------------------------------------------------------------------------------ part 1
def _logreg_numpy(problem):
    """The logreg data rebuilt from the builder's documented recipe and its defaults, and a
    NumPy ``value_and_grad(z)`` with z = [w, b]; checked against the problem's own NumPy
    reference objective before use."""
    import numpy as np

    from descend.problems import logistic_regression

    defaults = {k: v.default for k, v in inspect.signature(logistic_regression).parameters.items()}
    n, d, lam, seed = defaults["n"], defaults["d"], defaults["lam"], defaults["seed"]
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    teacher = rng.standard_normal(d)
    y = np.where(X @ teacher + 0.5 > 0, 1.0, -1.0)
    flip = rng.random(n) < 0.1
    y[flip] = -y[flip]
    Z = np.hstack([X, np.ones((n, 1))])
    reg = np.r_[np.ones(d), 0.0]

    def value(z):
        m = y * (Z @ z)
        return float(np.mean(np.logaddexp(0.0, -m))) + 0.5 * lam * float(reg @ (z * z))

    def grad(z):
        m = y * (Z @ z)
        s = 0.5 * (1.0 + np.tanh(-0.5 * m))  # sigmoid(-m), overflow-free
        return Z.T @ (-y * s) / n + lam * reg * z

    def value_and_grad(z):
        m = y * (Z @ z)
        s = 0.5 * (1.0 + np.tanh(-0.5 * m))
        f = float(np.mean(np.logaddexp(0.0, -m))) + 0.5 * lam * float(reg @ (z * z))
        return f, Z.T @ (-y * s) / n + lam * reg * z

    check = np.random.default_rng(1)
    points = [np.zeros(d + 1), np.r_[problem.x_star[0], problem.x_star[1]],
              check.standard_normal(d + 1)]
    for z in points:
        ref = problem.numpy_objective([z[:d], z[d:]])
        if not math.isclose(value(z), ref, rel_tol=1e-12, abs_tol=1e-14):
            raise RuntimeError("the NumPy logistic objective does not match the problem's "
                               f"reference ({value(z)!r} != {ref!r}); the recipe changed")
    return value, grad, value_and_grad, d + 1


def _median(xs):
    return float(statistics.median(xs))


def part_logreg(reps: int) -> dict[str, Any]:
    import numpy as np
    from scipy.optimize import line_search, minimize

    from descend.compare import run_rule
    from descend.problems import make_problem

    problem = make_problem("logreg")
    f_star = problem.f_star
    value, grad, value_and_grad, dim = _logreg_numpy(problem)
    rows: list[dict[str, Any]] = []

    for label, spec, momentum in LOGREG_RULES:
        run_rule(problem, spec, momentum=momentum, max_steps=100_000, tol=TOL)  # warm-up
        runs = [run_rule(problem, spec, momentum=momentum, max_steps=100_000, tol=TOL)
                for _ in range(reps)]
        r = runs[0]
        counts = {(x.steps, x.evaluations, x.gradient_evaluations) for x in runs}
        if len(counts) != 1:
            raise RuntimeError(f"{label}: the repetitions disagree on the counts: {counts}")
        rows.append({
            "method": "descend GD" + (f" + momentum {momentum:g}" if momentum else ""),
            "rule": label, "spec": spec, "steps": r.steps, "f_evals": r.evaluations,
            "g_evals": r.gradient_evaluations, "seconds": _median([x.seconds for x in runs]),
            "seconds_all": [x.seconds for x in runs], "gap": r.gap, "stop": r.stop_reason,
            "resolved_rule": r.rule,
        })

    # SciPy L-BFGS-B: jac=True (one call = one f and one g); the callback stops the run at
    # the first iterate within the tolerance.
    def lbfgs_once():
        calls = [0]
        iters = [0]

        def fun(z):
            calls[0] += 1
            return value_and_grad(z)

        def callback(intermediate_result):
            iters[0] += 1
            if intermediate_result.fun - f_star <= TOL:
                raise StopIteration

        t0 = time.perf_counter()
        res = minimize(fun, np.zeros(dim), jac=True, method="L-BFGS-B", callback=callback,
                       options={"gtol": 1e-14, "ftol": 1e-16, "maxiter": 100_000})
        seconds = time.perf_counter() - t0
        return {"steps": iters[0], "f_evals": calls[0], "g_evals": calls[0],
                "seconds": seconds, "gap": float(res.fun) - f_star,
                "scipy_nfev": int(res.nfev), "scipy_njev": int(getattr(res, "njev", res.nfev)),
                "stop": "tol" if float(res.fun) - f_star <= TOL else str(res.message)}

    lbfgs_once()  # warm-up
    runs = [lbfgs_once() for _ in range(reps)]
    row = dict(runs[0])
    row.update(method="SciPy L-BFGS-B (jac=True)", rule="quasi-Newton, its own line search",
               spec=None, seconds=_median([x["seconds"] for x in runs]),
               seconds_all=[x["seconds"] for x in runs])
    rows.append(row)

    # Steepest descent with SciPy's strong-Wolfe line search (c1=1e-4, c2=0.9), value and
    # gradient as separate functions; a gradient the search already computed at the accepted
    # point is reused (not counted twice).
    def sd_once(max_steps=100_000):
        nf = [0]
        ng = [0]
        cache: dict[bytes, np.ndarray] = {}

        def f(z):
            nf[0] += 1
            return value(z)

        def fp(z):
            ng[0] += 1
            g = grad(z)
            cache.clear()
            cache[z.tobytes()] = g
            return g

        t0 = time.perf_counter()
        z = np.zeros(dim)
        fz = f(z)
        g = fp(z)
        steps = 0
        stop = "max steps"
        f_prev = None
        while steps < max_steps:
            if fz - f_star <= TOL:
                stop = "tol"
                break
            # old_old_fval lets SciPy pick its first trial from the last decrease, as its
            # own CG and BFGS do
            alpha, _, _, f_new, _, _ = line_search(f, fp, z, -g, gfk=g, old_fval=fz,
                                                   old_old_fval=f_prev, c1=1e-4, c2=0.9)
            if alpha is None:
                stop = "line search failed"
                break
            z = z - alpha * g
            f_prev = fz
            fz = f(z) if f_new is None else f_new
            g = cache.get(z.tobytes())
            if g is None:
                g = fp(z)
            steps += 1
        seconds = time.perf_counter() - t0
        return {"steps": steps, "f_evals": nf[0], "g_evals": ng[0], "seconds": seconds,
                "gap": fz - f_star, "stop": stop}

    sd_once()  # warm-up
    runs = [sd_once() for _ in range(reps)]
    row = dict(runs[0])
    row.update(method="steepest descent + scipy.optimize.line_search",
               rule="strong Wolfe (c1=1e-4, c2=0.9)", spec=None,
               seconds=_median([x["seconds"] for x in runs]),
               seconds_all=[x["seconds"] for x in runs])
    rows.append(row)

    lb = next(r for r in rows if r["method"].startswith("SciPy L-BFGS-B"))
    for row in rows:
        row["us_per_f_eval"] = 1e6 * row["seconds"] / max(row["f_evals"], 1)
        row["min_seconds"] = min(row["seconds_all"])
        row["f_evals_vs_lbfgs"] = row["f_evals"] / lb["f_evals"]
        row["g_evals_vs_lbfgs"] = row["g_evals"] / lb["g_evals"]
    return {
        "problem": problem.description, "f_star": f_star, "lipschitz": problem.lipschitz,
        "dimension": dim, "tol": TOL, "repetitions": reps, "rows": rows,
    }


# ------------------------------------------------------------------------------ part 2
def _digits(seed: int):
    import numpy as np

    from descend.data import Standardizer, load_digits, train_val_split

    data = load_digits()
    train, val = train_val_split(data, 0.2, seed=seed)
    scaler = Standardizer().fit(train.X)
    return (scaler.transform(train.X).astype(np.float32), train.y,
            scaler.transform(val.X).astype(np.float32), val.y)


def _train_once(config: str, seed: int, data, epochs: int) -> dict[str, Any]:
    """One seeded training run; only the fit() call is timed."""
    import numpy as np

    import descend as ds
    from descend.train import evaluate, fit

    X_tr, y_tr, X_val, y_val = data
    ds.manual_seed(seed)
    model = ds.nn.mlp(SIZES, activation="relu", rng=seed)
    lr: Any = ds.optim.Armijo(c1=0.1, shrink=0.9) if config == "armijo" else float(config)
    opt = ds.optim.GD(list(model.parameters()), lr=lr)
    loss_fn = ds.nn.CrossEntropyLoss()
    t0 = time.perf_counter()
    history = fit(model, loss_fn, opt, (X_tr, y_tr), epochs=epochs, batch_size=64, seed=seed,
                  progress=False)
    seconds = time.perf_counter() - t0
    with np.errstate(all="ignore"):
        val = evaluate(model, loss_fn, X_val, y_val)
    reason = history.stop_reason
    return {
        "seconds": seconds,
        "val_accuracy": float(val["accuracy"]),
        "val_loss": float(val["loss"]),
        "steps": history.steps,
        "diverged": reason is not None and reason.criterion == "diverged",
        "stop": str(reason),
        "evaluations": [int(e) for e in history.evaluations],
        "lr": [float(a) for a in history.lr],
    }


def part_mlp(seeds: list[int], epochs: int, time_reps: int) -> dict[str, Any]:
    configs = ["armijo", *(repr(g) for g in GRID)]
    datas = {s: _digits(s) for s in seeds}
    _train_once("0.1", seeds[0], datas[seeds[0]], 1)  # warm-up (imports, allocator)
    runs: dict[str, dict[int, dict[str, Any]]] = {c: {} for c in configs}
    for rep in range(time_reps):
        for i, seed in enumerate(seeds):
            k = (i + rep * len(seeds)) % len(configs)
            for config in configs[k:] + configs[:k]:  # rotated order, round after round
                out = _train_once(config, seed, datas[seed], epochs)
                prev = runs[config].get(seed)
                if prev is None:
                    out["seconds_all"] = [out["seconds"]]
                    runs[config][seed] = out
                else:
                    if (prev["val_accuracy"], prev["steps"]) != (out["val_accuracy"],
                                                                 out["steps"]):
                        raise RuntimeError(f"{config}, seed {seed}: a repeated run differs")
                    prev["seconds_all"].append(out["seconds"])
    for config in configs:
        for r in runs[config].values():
            r["seconds"] = _median(r["seconds_all"])
            r["min_seconds"] = min(r["seconds_all"])

    n_train = len(datas[seeds[0]][0])
    steps_per_epoch = -(-n_train // 64)
    table = []
    for config in configs:
        rs = [runs[config][s] for s in seeds]
        accs = [r["val_accuracy"] for r in rs]
        table.append({
            "config": config,
            "label": "Armijo (c1=0.1, shrink=0.9), untuned" if config == "armijo"
            else f"constant {config}",
            "mean_val_accuracy": statistics.fmean(accs),
            "val_accuracy_per_seed": dict(zip(map(str, seeds), accs)),
            "val_loss_per_seed": {str(s): runs[config][s]["val_loss"] for s in seeds},
            "median_seconds": _median([r["seconds"] for r in rs]),
            "seconds_per_seed": {str(s): runs[config][s]["seconds"] for s in seeds},
            "seconds_all_per_seed": {str(s): runs[config][s]["seconds_all"] for s in seeds},
            "diverged_seeds": [s for s in seeds if runs[config][s]["diverged"]],
            "steps_per_seed": {str(s): runs[config][s]["steps"] for s in seeds},
        })
    grid_rows = [t for t in table if t["config"] != "armijo"]
    arm = table[0]
    best = max(grid_rows, key=lambda t: t["mean_val_accuracy"])
    # one constant-step run's time: the median over every grid run that completed all epochs
    full_const = [runs[c][s]["seconds"] for c in configs[1:] for s in seeds
                  if not runs[c][s]["diverged"]]
    const_median = _median(full_const)
    # the same with each run's fastest repeat: less sensitive to other load on the machine
    const_min = _median([runs[c][s]["min_seconds"] for c in configs[1:] for s in seeds
                         if not runs[c][s]["diverged"]])
    time_ratio_min = _median([runs["armijo"][s]["min_seconds"] for s in seeds]) / const_min
    paired = []
    for s in seeds:
        own = [runs[c][s]["seconds"] for c in configs[1:] if not runs[c][s]["diverged"]]
        paired.append(runs["armijo"][s]["seconds"] / _median(own))
    grid_total = [sum(runs[c][s]["seconds"] for c in configs[1:]) for s in seeds]
    all_total = [t + runs["armijo"][s]["seconds"] for t, s in zip(grid_total, seeds)]
    acc_diff_pp = 100 * (arm["mean_val_accuracy"] - best["mean_val_accuracy"])
    time_ratio = arm["median_seconds"] / const_median

    # part 3: the line search's cost after the first epoch
    ls = []
    for s in seeds:
        ev = runs["armijo"][s]["evaluations"]
        lrs = runs["armijo"][s]["lr"]
        after = ev[steps_per_epoch:] or ev
        trials = [e - 1 for e in after]
        first = [e - 1 for e in ev[:steps_per_epoch]]
        ls.append({
            "seed": s,
            "steps_after_epoch_1": len(after),
            "forward_passes_per_step": statistics.fmean(after),
            "trials_per_step": statistics.fmean(trials),
            "trials_per_step_epoch_1": statistics.fmean(first),
            "share_one_trial": sum(t == 1 for t in trials) / len(trials),
            "max_trials": max(trials),
            "median_step_size_after_epoch_1": _median(lrs[steps_per_epoch:] or lrs),
        })
    fwd = statistics.fmean(x["forward_passes_per_step"] for x in ls)
    tri = statistics.fmean(x["trials_per_step"] for x in ls)
    return {
        "setup": {"sizes": SIZES, "activation": "relu", "batch_size": 64, "epochs": epochs,
                  "seeds": seeds, "val_fraction": 0.2, "stratified": True,
                  "train_samples": n_train, "val_samples": len(datas[seeds[0]][2]),
                  "steps_per_epoch": steps_per_epoch, "timing_repeats_per_run": time_reps},
        "table": table,
        "best_grid": best["config"],
        "armijo_minus_best_pp": acc_diff_pp,
        "accuracy_target_met": acc_diff_pp >= -ACC_TARGET_PP,
        "constant_run_median_seconds": const_median,
        "armijo_time_ratio": time_ratio,
        "armijo_time_ratio_paired_per_seed": dict(zip(map(str, seeds), paired)),
        "armijo_time_ratio_of_fastest_repeats": time_ratio_min,
        "time_target_met": time_ratio <= TIME_TARGET,
        "grid_total_seconds_median": _median(grid_total),
        "grid_plus_armijo_total_seconds_median": _median(all_total),
        "line_search": {
            "per_seed": ls,
            "forward_passes_per_step": fwd,
            "trials_per_step": tri,
            "trials_target_met": tri <= TRIALS_TARGET,
            "forward_passes_at_most_target": fwd <= TRIALS_TARGET,
        },
    }


# ------------------------------------------------------------------------------ reporting
def _table(header: list[str], rows: list[list[str]], markdown: bool, right: set[int]) -> str:
    if markdown:
        sep = ["---:" if i in right else "---" for i in range(len(header))]
        lines = [header, sep, *rows]
        return "\n".join("| " + " | ".join(r) + " |" for r in lines)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]

    def line(cells):
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def _ok(flag: bool) -> str:
    return "met" if flag else "NOT met"


def report(result: dict[str, Any], markdown: bool) -> str:
    h1, h2 = ("# ", "## ") if markdown else ("", "")
    bullet = "- " if markdown else "  "
    out = [f"{h1}Step-size rules: logistic regression and a digits MLP", ""]
    m = result["machine"]
    env = ", ".join(f"{k}={v if v is not None else '(unset)'}"
                    for k, v in m["blas_threads_env"].items())
    load = m["load_average_at_start"]
    out += [f"{h2}Machine", "",
            f"{bullet}CPU: {m['cpu']} ({m['logical_cores']} logical cores, "
            f"{m['usable_cores']} usable)",
            f"{bullet}OS: {m['platform']}",
            f"{bullet}Python {m['python']}; NumPy {m['numpy']} (BLAS: {m['numpy_blas']}); "
            f"SciPy {m['scipy']}; descend {m['descend']}",
            f"{bullet}BLAS threads: {env}",
            f"{bullet}Load average at start (1/5/15 min): "
            + (", ".join(map(str, load)) if load else "n/a"),
            f"{bullet}Mode: {'quick (smoke run)' if result['quick'] else 'full'}; "
            f"total wall time {result['seconds']:.0f} s",
            ""]

    lg = result["logreg"]
    out += [f"{h2}1. Logistic regression: cost to reach f - f* <= {lg['tol']:g}", "",
            f"{lg['problem']}; {lg['dimension']} variables, float64, start at 0; "
            f"f* = {lg['f_star']:.10f}, L = {lg['lipschitz']:.4g}. Time: median of "
            f"{lg['repetitions']} repetitions (after a warm-up run). descend's counts are the "
            "passes made to reach the first iterate within the tolerance (descend.compare."
            "run_rule; they leave out the pass that would evaluate that last iterate), "
            "SciPy's are the calls made up to and including that iterate (L-BFGS-B: one call "
            "gives f and g). 'fastest' is the quickest of the repetitions.", ""]
    rows = []
    for r in lg["rows"]:
        rows.append([r["method"], r["rule"], str(r["steps"]), str(r["f_evals"]),
                     str(r["g_evals"]), f"{r['f_evals_vs_lbfgs']:.1f}x",
                     f"{r['g_evals_vs_lbfgs']:.1f}x", f"{1e3 * r['seconds']:.2f}",
                     f"{1e3 * r['min_seconds']:.2f}", f"{r['us_per_f_eval']:.0f}",
                     f"{r['gap']:.2e}", r["stop"]])
    out.append(_table(["method", "step rule", "steps", "f-evals", "g-evals",
                       "f-evals vs L-BFGS-B", "g-evals vs L-BFGS-B", "time (ms)",
                       "fastest (ms)", "us per f-eval", "f - f*", "stop"], rows, markdown,
                      set(range(2, 11))))
    out.append("")
    lb = next(r for r in lg["rows"] if r["method"].startswith("SciPy L-BFGS-B"))
    desc = [r for r in lg["rows"] if r["method"].startswith("descend") and r["stop"] == "tol"]
    if desc:
        best_f = min(desc, key=lambda r: r["f_evals"])
        best_g = min(desc, key=lambda r: r["g_evals"])
        best_t = min(desc, key=lambda r: r["seconds"])
        const = next((r for r in desc if r["spec"] == "constant:1/L"), None)
        more_f = [r for r in desc if r["f_evals"] > lb["f_evals"]]
        more_g = [r["rule"] for r in desc if r["g_evals"] > lb["g_evals"]]
        not_more_g = [f"{r['rule']} ({r['g_evals']})" for r in desc
                      if r["g_evals"] <= lb["g_evals"]]
        lo = min(more_f, key=lambda r: r["f_evals"]) if more_f else None
        hi = max(more_f, key=lambda r: r["f_evals"]) if more_f else None
        out += [
            f"{bullet}L-BFGS-B reached the tolerance with {lb['f_evals']} function and "
            f"{lb['g_evals']} gradient evaluations in {lb['steps']} iterations.",
            f"{bullet}Fewest forward passes among descend's first-order rules: "
            f"{best_f['rule']} ({best_f['f_evals']}, "
            f"{best_f['f_evals'] / lb['f_evals']:.1f}x L-BFGS-B); fewest backward passes: "
            f"{best_g['rule']} ({best_g['g_evals']}, "
            f"{best_g['g_evals'] / lb['g_evals']:.1f}x).",
            f"{bullet}Forward passes: {len(more_f)} of {len(desc)} descend rules need more "
            "than L-BFGS-B"
            + (f" (from {lo['f_evals'] / lb['f_evals']:.1f}x for {lo['rule']} to "
               f"{hi['f_evals'] / lb['f_evals']:.1f}x for {hi['rule']})" if more_f else "")
            + f". Backward passes: {len(more_g)} of {len(desc)} need more"
            + (f"; not more: {', '.join(not_more_g)}" if not_more_g else "")
            + ". L-BFGS-B builds a curvature model from past gradients (quasi-Newton); every "
            "descend rule here is a first-order method moving along -g (or heavy-ball), so it "
            "pays in evaluations, as expected.",
            f"{bullet}Wall time: fastest descend rule {best_t['rule']} "
            f"{1e3 * best_t['seconds']:.2f} ms against L-BFGS-B's "
            f"{1e3 * lb['seconds']:.2f} ms."
            + (f" Per evaluation of f and g together, descend's engine (constant 1/L: "
               f"{const['us_per_f_eval']:.0f} us) against NumPy called by SciPy "
               f"({lb['us_per_f_eval']:.0f} us) shows the engine's overhead (autodiff graph, "
               "Python) on a problem this small, apart from the algorithm's evaluation count."
               if const else ""),
            f"{bullet}SciPy's line_search caps its first trial at 1 (it is made for "
            f"quasi-Newton directions), while 1/L = {1 / lg['lipschitz']:.3g} here: steepest "
            "descent with it takes short steps.",
            ""]

    ml = result["mlp"]
    st = ml["setup"]
    out += [f"{h2}2. Digits MLP: untuned stochastic Armijo against a constant-step grid", "",
            f"MLP {'-'.join(map(str, st['sizes']))} ({st['activation']}), standardised "
            f"features, stratified {100 * (1 - st['val_fraction']):.0f}/"
            f"{100 * st['val_fraction']:.0f} split ({st['train_samples']} train / "
            f"{st['val_samples']} validation), batch {st['batch_size']} ({st['steps_per_epoch']}"
            f" steps per epoch), {st['epochs']} epochs, float32, seeds {st['seeds']} (the seed "
            "sets the split, the initialisation and the shuffling). Accuracy: validation, "
            "after the last epoch, mean over seeds. Time: the fit() call only; per seed the "
            f"median of {st['timing_repeats_per_run']} identical runs, then the median over "
            "seeds.", ""]
    rows = []
    for t in ml["table"]:
        per_seed = " / ".join(f"{100 * a:.2f}" for a in t["val_accuracy_per_seed"].values())
        div = ", ".join(map(str, t["diverged_seeds"])) or "-"
        rows.append([t["label"], f"{100 * t['mean_val_accuracy']:.2f}", per_seed,
                     f"{t['median_seconds']:.3f}", div])
    out.append(_table(["step rule", "val acc (%)", "per seed (%)", "time (s)",
                       "diverged (seeds)"], rows, markdown, {1, 3}))
    out.append("")
    best = next(t for t in ml["table"] if t["config"] == ml["best_grid"])
    paired = ", ".join(f"{v:.2f}x" for v in ml["armijo_time_ratio_paired_per_seed"].values())
    arm = ml["table"][0]
    out += [
        f"{bullet}Best grid point: constant {best['config']} "
        f"({100 * best['mean_val_accuracy']:.2f}%).",
        f"{bullet}Armijo - best grid accuracy: {ml['armijo_minus_best_pp']:+.2f} percentage "
        f"points (target >= -{ACC_TARGET_PP} pp): {_ok(ml['accuracy_target_met'])}.",
        f"{bullet}Armijo time / one constant-step run (median of every grid run that "
        f"completed, {ml['constant_run_median_seconds']:.3f} s): "
        f"{ml['armijo_time_ratio']:.2f}x (target <= {TIME_TARGET}x): "
        f"{_ok(ml['time_target_met'])}. Paired within each seed: {paired}; with each "
        f"run's fastest repeat instead of its median: "
        f"{ml['armijo_time_ratio_of_fastest_repeats']:.2f}x.",
        f"{bullet}The whole grid (6 constant runs): {ml['grid_total_seconds_median']:.2f} s; "
        f"grid plus Armijo (7 runs): {ml['grid_plus_armijo_total_seconds_median']:.2f} s; "
        f"one Armijo run: {arm['median_seconds']:.2f} s.",
        ""]

    ls = ml["line_search"]
    out += [f"{h2}3. Cost of the Armijo line search (runs of part 2, after the first epoch)", "",
            "Forward passes per step count every forward pass of a step: the first one (which "
            "also runs backward) and the trial points (forward only). Trials per step = "
            "forward passes - 1; at least one trial per step is needed to test the Armijo "
            "condition.", ""]
    rows = [[str(x["seed"]), str(x["steps_after_epoch_1"]),
             f"{x['forward_passes_per_step']:.3f}", f"{x['trials_per_step']:.3f}",
             f"{x['trials_per_step_epoch_1']:.3f}", f"{100 * x['share_one_trial']:.1f}",
             str(x["max_trials"]), f"{x['median_step_size_after_epoch_1']:.3g}"]
            for x in ls["per_seed"]]
    out.append(_table(["seed", "steps", "forward passes / step", "trials / step",
                       "trials / step (epoch 1)", "steps with 1 trial (%)", "max trials",
                       "median step size"], rows, markdown, {1, 2, 3, 4, 5, 6, 7}))
    out += ["",
            f"{bullet}Mean over seeds: {ls['forward_passes_per_step']:.3f} forward passes per "
            f"step, {ls['trials_per_step']:.3f} trials per step.",
            f"{bullet}Target <= {TRIALS_TARGET} trials per step: "
            f"{_ok(ls['trials_target_met'])}. (Read as forward passes per step, "
            f"<= {TRIALS_TARGET} is {_ok(ls['forward_passes_at_most_target'])}: it cannot be, "
            "since every step makes its first pass plus at least one trial.)",
            ""]
    return "\n".join(out)


# ------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--markdown", action="store_true", help="print Markdown")
    parser.add_argument("--json", metavar="PATH", help="write every number as JSON")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 1 repetition, 1 seed, 2 epochs")
    parser.add_argument("--seeds", type=int, default=3, help="MLP seeds 0..N-1 (default 3)")
    parser.add_argument("--epochs", type=int, default=20, help="MLP epochs (default 20)")
    parser.add_argument("--reps", type=int, default=5,
                        help="logistic-regression timing repetitions (default 5)")
    parser.add_argument("--time-reps", type=int, default=5,
                        help="identical repeats of each seeded MLP run, for its median "
                        "time (default 5)")
    parser.add_argument("--blas-threads", type=int, default=1,
                        help="BLAS threads, set before NumPy is imported unless the "
                        "environment already sets them (default 1)")
    args = parser.parse_args(argv)
    for name in ("seeds", "epochs", "reps", "time_reps", "blas_threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if "numpy" not in sys.modules:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(var, str(args.blas_threads))
    if args.quick:
        args.seeds, args.epochs, args.reps, args.time_reps = 1, 2, 1, 1

    started = time.perf_counter()
    result: dict[str, Any] = {"machine": machine_info(), "quick": args.quick}
    print("part 1: logistic regression ...", file=sys.stderr, flush=True)
    result["logreg"] = part_logreg(args.reps)
    print("part 2: digits MLP ...", file=sys.stderr, flush=True)
    result["mlp"] = part_mlp(list(range(args.seeds)), args.epochs, args.time_reps)
    result["seconds"] = time.perf_counter() - started
    print(report(result, args.markdown))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1, default=float)
        print(f"JSON written to {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
