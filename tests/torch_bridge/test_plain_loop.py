"""descend.torch's Armijo in a plain mini-batch loop (no ``steps_per_epoch``): the step does
not run away on separable batches (tests/optim/test_plain_loop.py, the NumPy twin, has the
numbers)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

import descend.torch as dt
from descend.optim import Armijo
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
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    torch.manual_seed(seed)
    model = torch.nn.Linear(2, 2)
    opt = dt.GD(model.parameters(), lr=Armijo())
    steps = 0
    for idx in batches(seed, len(X)):
        i = torch.from_numpy(idx)
        opt.step(lambda i=i: torch.nn.functional.cross_entropy(model(Xt[i]), yt[i]))
        steps += 1
    with torch.no_grad():
        final = torch.nn.functional.cross_entropy(model(Xt), yt).item()
    assert final <= 3 * optimum(X, y), final
    assert opt.last.lr <= 2.0 ** (steps / STOCHASTIC_WINDOW)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_recommendation_trains_in_a_plain_minibatch_loop(seed):
    # the README's line as a new user writes it: one closure per batch, nothing else
    X, y = blobs(seed)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    torch.manual_seed(seed)
    model = torch.nn.Linear(2, 2)
    opt = dt.recommended(model.parameters())
    calls = 0

    def closure(i):
        nonlocal calls
        calls += 1
        return torch.nn.functional.cross_entropy(model(Xt[i]), yt[i])

    steps = 0
    for idx in batches(seed, len(X)):
        i = torch.from_numpy(idx)
        opt.step(lambda i=i: closure(i))
        steps += 1
        assert opt.last.lr <= 1.0  # MoMo's cap: the step cannot run away
    with torch.no_grad():
        final = torch.nn.functional.cross_entropy(model(Xt), yt).item()
    assert final <= 1.5 * optimum(X, y), final
    assert calls == steps  # one forward pass a step
