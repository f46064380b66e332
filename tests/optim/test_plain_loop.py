"""Armijo in a plain mini-batch loop that knows nothing of the epoch's length.

``opt.step(closure)`` per batch, no ``steps_per_epoch``, no ``same_batch``: the README's
loop. The step must not run away on batches that accept any step (a batch the model already
classifies correctly: the cross-entropy keeps falling along -g). With the full-batch growth
(2 per step) the step doubled on such batches to 64-1024 and the run ended at a full-data
loss of 0.85-20 against an optimum of 0.14-0.19; with 2^(1/50) per step it ends within 3x
of the optimum (:class:`descend.optim.Armijo`'s docstring derives the growth).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

import descend as ds
from descend import nn, optim
from descend.optim.rules.searches import STOCHASTIC_WINDOW

EPOCHS, BATCH = 5, 8


def blobs(seed: int, n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Two overlapping Gaussian classes in the plane (most batches of 8 are separable)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = rng.normal(size=(n, 2)) + 1.5 * (2 * y[:, None] - 1) * np.array([1.0, 0.0])
    return X.astype(np.float32), y


def optimum(X: np.ndarray, y: np.ndarray) -> float:
    """The least mean cross-entropy of a linear model with bias (float64, BFGS)."""
    X = X.astype(np.float64)

    def f(w: np.ndarray) -> float:
        z = X @ w[:4].reshape(2, 2).T + w[4:]
        z -= z.max(axis=1, keepdims=True)
        return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(y)), y]))

    return float(minimize(f, np.zeros(6)).fun)


def batches(seed: int, n: int):
    order = np.random.default_rng(seed)
    for _ in range(EPOCHS):
        perm = order.permutation(n)
        for i in range(0, n, BATCH):
            yield perm[i:i + BATCH]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_armijo_trains_in_a_plain_minibatch_loop(seed):
    X, y = blobs(seed)
    model = nn.Sequential(nn.Linear(2, 2, rng=seed))
    opt = optim.GD(model.parameters(), lr=optim.Armijo())
    loss = nn.CrossEntropyLoss()
    steps = 0
    for idx in batches(seed, len(X)):
        xb, yb = ds.tensor(X[idx]), y[idx]
        opt.step(lambda xb=xb, yb=yb: loss(model(xb), yb))
        steps += 1
    with ds.no_grad():
        final = loss(model(ds.tensor(X)), y).item()
    assert final <= 3 * optimum(X, y), final
    # the trial step grew by at most 2^(1/W) per step: from alpha0 = 1, 2^(steps/W)
    assert opt.last.lr <= 2.0 ** (steps / STOCHASTIC_WINDOW)


def test_full_batch_growth_is_kept_where_the_caller_says_so():
    # same_batch=True: the objective is the previous step's, the trial step may double
    X, y = blobs(0)
    model = nn.Sequential(nn.Linear(2, 2, rng=0))
    rule = optim.Armijo()
    opt = optim.GD(model.parameters(), lr=rule)
    loss = nn.CrossEntropyLoss()
    Xt = ds.tensor(X)
    starts = []
    for _ in range(6):
        previous, grew = rule.previous, rule.first_accepted
        opt.step(lambda: loss(model(Xt), y), same_batch=True)
        if previous is not None and grew and opt.last.evaluations == 2:
            starts.append(opt.last.lr / previous)
    assert starts and all(r == 2.0 for r in starts)
