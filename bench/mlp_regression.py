"""``descend.MLPRegressor`` at its defaults against scikit-learn's ``MLPRegressor`` at its
defaults, on regression sets neither was tuned on.

Data: scikit-learn's Friedman #1-#3 (2,000 rows each, noise 1.0 / 10 / 0.1), a sparse
linear target (``make_regression``, 20 features, 10 informative, noise 10), the diabetes
set (442 rows), and a smooth interaction (sin(2 x0) + x1 x2 on 8 Gaussian features, noise
0.1, 3,000 rows); targets divided by their standard deviation (scikit-learn's MLPs do not
scale targets, and on diabetes' raw 25-346 both stall). Per seed: a 75/25 split, a
``StandardScaler`` in front, ``random_state=seed`` on both sides; the score is the test
R^2, the time the fit's. ``--descend KEY=VALUE ...`` sets descend's parameters (e.g.
``optimizer=gd lr=sls``, the defaults before the recommendation).

Run::

    .venv/bin/python bench/mlp_regression.py
    .venv/bin/python bench/mlp_regression.py --descend optimizer=gd lr=sls
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
from sklearn import datasets
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPRegressor as SklearnMLP
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

import descend


def regression_sets() -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    X, y = datasets.make_friedman1(2000, noise=1.0, random_state=0)
    yield "friedman1", X, y
    X, y = datasets.make_friedman2(2000, noise=10.0, random_state=0)
    yield "friedman2", X, y
    X, y = datasets.make_friedman3(2000, noise=0.1, random_state=0)
    yield "friedman3", X, y
    X, y = datasets.make_regression(2000, 20, n_informative=10, noise=10.0, random_state=0)
    yield "sparse linear", X, y
    X, y = datasets.load_diabetes(return_X_y=True)
    yield "diabetes", X, y
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3000, 8))
    y = np.sin(2 * X[:, 0]) + X[:, 1] * X[:, 2] + 0.1 * rng.standard_normal(3000)
    yield "sin + product", X, y


def _value(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return None if text == "None" else text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--descend", nargs="*", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    options = {k: _value(v) for k, v in (kv.split("=", 1) for kv in args.descend)}
    warnings.filterwarnings("ignore")  # scikit-learn's ConvergenceWarning at max_iter=200
    print(f"descend.MLPRegressor({', '.join(f'{k}={v!r}' for k, v in options.items())}) "
          f"against sklearn.neural_network.MLPRegressor(); test R^2, mean over seeds "
          f"{' '.join(map(str, args.seeds))}; one BLAS thread")
    print(f"{'data':14s} {'descend':>8s} {'time':>6s} {'sklearn':>8s} {'time':>6s} "
          f"{'difference':>10s}")
    gaps = []
    with threadpool_limits(1):
        for name, X, y in regression_sets():
            y = y / y.std()
            scores: dict[str, list[float]] = {"descend": [], "sklearn": []}
            times: dict[str, list[float]] = {"descend": [], "sklearn": []}
            for seed in args.seeds:
                Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=seed)
                for engine in scores:
                    model = (descend.MLPRegressor(random_state=seed, **options)
                             if engine == "descend" else SklearnMLP(random_state=seed))
                    pipe = make_pipeline(StandardScaler(), model)
                    started = time.perf_counter()
                    pipe.fit(Xtr, ytr)
                    times[engine].append(time.perf_counter() - started)
                    scores[engine].append(pipe.score(Xte, yte))
            d, s = statistics.mean(scores["descend"]), statistics.mean(scores["sklearn"])
            gaps.append(d - s)
            print(f"{name:14s} {d:8.4f} {statistics.mean(times['descend']):5.2f}s {s:8.4f} "
                  f"{statistics.mean(times['sklearn']):5.2f}s {d - s:+10.4f}")
    print(f"mean difference {statistics.mean(gaps):+.4f}")


if __name__ == "__main__":
    main()
