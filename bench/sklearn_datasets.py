"""descend's MLP estimators against scikit-learn's on the data sets scikit-learn ships.

For each data set (breast cancer, wine, iris, digits: classification; diabetes: regression)
and each engine, one worker process runs 5-fold cross-validation (stratified for the
classifiers, ``KFold(shuffle=True, random_state=0)`` folds shared by both engines) of
``make_pipeline(StandardScaler(), MLP())`` with **default settings** on both sides:

- ``descend``: ``descend.MLPClassifier()`` / ``descend.MLPRegressor()`` as they come;
- ``sklearn``: ``sklearn.neural_network.MLPClassifier(max_iter=M)`` / ``MLPRegressor(...)``
  with only ``max_iter`` raised (``--sklearn-max-iter``, default 5000) so that every fold
  stops on its own convergence test rather than on the epoch budget: the worker counts the
  folds that ended with a ``ConvergenceWarning`` and the report shows them.

Both use ``random_state=r`` in round r, so every round is a different seed of the same
setting. The score is the mean accuracy (R^2 for diabetes) over the folds; the time is the
wall-clock time of the whole cross-validation (5 fits and 5 predictions). Workers limit the
BLAS to ``--threads`` threads (default 1: the matrices are small, and the machine's cores are
shared), the same for both engines. The driver alternates engines within each round
(A B, B A, ...) and reports per data set each engine's median score and time over rounds and
the paired time ratio (descend / scikit-learn, per round, then the median).

Run::

    .venv/bin/python bench/sklearn_datasets.py                 # 5 rounds, plain text
    .venv/bin/python bench/sklearn_datasets.py --markdown      # a table for BENCHMARKS.md
    .venv/bin/python bench/sklearn_datasets.py --rounds 1 --datasets iris wine
    .venv/bin/python bench/sklearn_datasets.py --quick          # smoke test
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench_common import (
    emit,
    machine_info,
    machine_info_lines,
    markdown_table,
    run_alternating,
    text_table,
)

DATASETS = ("breast_cancer", "wine", "iris", "digits", "diabetes")
ENGINES = ("descend", "sklearn")
REGRESSION = ("diabetes",)


def _load(name: str) -> tuple[Any, Any]:
    from sklearn import datasets

    loader = getattr(datasets, f"load_{name}")
    return loader(return_X_y=True)


def worker(engine: str, dataset: str, seed: int, threads: int, sklearn_max_iter: int) -> None:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import KFold, StratifiedKFold, cross_validate
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    X, y = _load(dataset)
    regression = dataset in REGRESSION
    if engine == "descend":
        import descend

        model = (descend.MLPRegressor if regression else descend.MLPClassifier)(
            random_state=seed)
    else:
        from sklearn import neural_network

        model = (neural_network.MLPRegressor if regression else neural_network.MLPClassifier)(
            max_iter=sklearn_max_iter, random_state=seed)
    cv = (KFold(5, shuffle=True, random_state=0) if regression
          else StratifiedKFold(5, shuffle=True, random_state=0))
    pipe = make_pipeline(StandardScaler(), model)
    with threadpool_limits(limits=threads, user_api="blas"), \
            warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        started = time.perf_counter()
        # n_jobs=None: the folds run one after the other in this process
        result = cross_validate(pipe, X, y, cv=cv, return_estimator=True)
        seconds = time.perf_counter() - started
    not_converged = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
    epochs = [est[-1].n_iter_ for est in result["estimator"]]
    emit({"median_s": seconds, "score": float(statistics.mean(result["test_score"])),
          "fold_scores": [float(s) for s in result["test_score"]],
          "epochs": epochs, "not_converged": not_converged, "engine": engine,
          "dataset": dataset, "seed": seed})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sklearn-max-iter", type=int, default=5000)
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke test: one round on iris and wine")
    parser.add_argument("--worker", nargs=3, metavar=("ENGINE", "DATASET", "SEED"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.datasets = 1, ["iris", "wine"]
    if args.worker:
        engine, dataset, seed = args.worker
        worker(engine, dataset, int(seed), args.threads, args.sklearn_max_iter)
        return 0

    # run_alternating calls the worker with (engine, case); the round is its seed, so the
    # case name carries it: one "case" per (data set, round) keeps the A B / B A order.
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for dataset in args.datasets:
        per_engine: dict[str, list[dict[str, Any]]] = {e: [] for e in ENGINES}
        for r in range(args.rounds):
            order = ENGINES if r % 2 == 0 else ENGINES[::-1]
            run = run_alternating(
                [dataset], order, 1,
                lambda engine, case, r=r: [sys.executable, __file__, "--worker", engine, case,
                                           str(r), "--threads", str(args.threads),
                                           "--sklearn-max-iter", str(args.sklearn_max_iter)],
                env=dict(os.environ), log=None)
            for engine in ENGINES:
                res = run.runs[dataset][engine][0]
                per_engine[engine].append(res)
                print(f"  {dataset:<14} round {r + 1}/{args.rounds}  {engine:<8} "
                      f"score {res['score']:.4f}  {res['median_s']:7.2f} s  epochs "
                      f"{res['epochs']}  not converged {res['not_converged']}",
                      file=sys.stderr, flush=True)
        results[dataset] = per_engine

    headers = ["data set", "metric", "descend", "scikit-learn", "difference",
               "descend time", "scikit-learn time", "time ratio"]
    rows = []
    total = {e: 0.0 for e in ENGINES}
    for dataset, per_engine in results.items():
        score = {e: statistics.median(r["score"] for r in per_engine[e]) for e in ENGINES}
        secs = {e: statistics.median(r["median_s"] for r in per_engine[e]) for e in ENGINES}
        ratios = [d["median_s"] / s["median_s"]
                  for d, s in zip(per_engine["descend"], per_engine["sklearn"])]
        unconverged = {e: sum(r["not_converged"] for r in per_engine[e]) for e in ENGINES}
        folds = 5 * len(per_engine["sklearn"])

        shown = {e: f"{score[e]:.4f}" + (f" ({unconverged[e]}/{folds} at max_iter)"
                                          if unconverged[e] else "") for e in ENGINES}
        for e in ENGINES:
            total[e] += secs[e]
        rows.append([dataset, "R^2" if dataset in REGRESSION else "accuracy",
                     shown["descend"], shown["sklearn"],
                     f"{100 * (score['descend'] - score['sklearn']):+.2f} pt",
                     f"{secs['descend']:.2f} s", f"{secs['sklearn']:.2f} s",
                     f"{statistics.median(ratios):.3g}x [{min(ratios):.3g}-{max(ratios):.3g}]"])
    rows.append(["total", "", "", "", "", f"{total['descend']:.2f} s",
                 f"{total['sklearn']:.2f} s", f"{total['descend'] / total['sklearn']:.3g}x"])
    info = machine_info()
    lines = machine_info_lines(info)
    versions = subprocess.run(
        [sys.executable, "-c", "import sklearn, descend; print(sklearn.__version__, "
         "descend.__version__)"], capture_output=True, text=True, check=True).stdout.split()
    lines.append(f"scikit-learn {versions[0]}, descend {versions[1]}; {args.rounds} rounds "
                 f"(seeds 0..{args.rounds - 1}), BLAS threads {args.threads}, "
                 f"scikit-learn max_iter {args.sklearn_max_iter}")
    if args.markdown:
        print(markdown_table(headers, rows))
        print()
        for line in lines:
            print(f"- {line}")
    else:
        print(text_table(headers, rows))
        for line in lines:
            print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
