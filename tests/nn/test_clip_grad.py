"""clip_grad_norm_: PyTorch's formula, checked against NumPy written out here."""

from __future__ import annotations

import math

import numpy as np
import pytest

import descend as ds
from descend.errors import ConfigError, GradientError


def _params_with_grads(scale: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    params = [ds.nn.Parameter(rng.standard_normal(s).astype(np.float32))
              for s in ((3, 4), (4,), (2, 2))]
    for p in params:
        p.grad = (scale * rng.standard_normal(p.shape)).astype(np.float32)
    return params


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
def test_clips_to_max_norm_and_returns_the_norm_before(norm_type):
    params = _params_with_grads(10.0)
    before = [p.grad.astype(np.float64) for p in params]
    flat = np.concatenate([g.ravel() for g in before])
    expected = (np.abs(flat).max() if math.isinf(norm_type)
                else (np.abs(flat) ** norm_type).sum() ** (1 / norm_type))
    total = ds.nn.clip_grad_norm_(params, 1.5, norm_type=norm_type)
    assert float(total) == pytest.approx(expected, rel=1e-6) and total.item() == float(total)
    after = np.concatenate([p.grad.astype(np.float64).ravel() for p in params])
    new = (np.abs(after).max() if math.isinf(norm_type)
           else (np.abs(after) ** norm_type).sum() ** (1 / norm_type))
    assert new == pytest.approx(1.5 * expected / (expected + 1e-6), rel=1e-5)
    # the direction is kept: every entry scaled by the same factor
    np.testing.assert_allclose(after, flat * (1.5 / (expected + 1e-6)), rtol=1e-5)
    assert all(p.grad.dtype == np.float32 for p in params)


def test_leaves_small_gradients_alone_and_skips_missing_ones():
    params = _params_with_grads(1e-3)
    before = [p.grad.copy() for p in params]
    params[1].grad = None
    total = ds.nn.clip_grad_norm_(iter(params), 10.0)
    expected = math.sqrt(sum(float((g.astype(np.float64) ** 2).sum())
                             for i, g in enumerate(before) if i != 1))
    assert float(total) == pytest.approx(expected, rel=1e-6)
    assert np.array_equal(params[0].grad, before[0]) and params[1].grad is None
    assert ds.nn.clip_grad_norm_(ds.nn.Parameter(np.zeros(2, np.float32)), 1.0) == 0.0


def test_clipped_gradients_feed_a_plain_step():
    model = ds.nn.Linear(3, 1, rng=0)
    x = ds.tensor(np.full((4, 3), 100.0, dtype=np.float32))
    loss = (model(x) ** 2).mean()
    loss.backward()
    opt = ds.optim.GD(model.parameters(), lr=0.1)
    start = [p.data.copy() for p in model.parameters()]
    ds.nn.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    moved = math.sqrt(sum(float(((p.data - s) ** 2).sum())
                          for p, s in zip(model.parameters(), start)))
    assert moved == pytest.approx(0.1, rel=1e-4)  # lr x the clipped norm 1


@pytest.mark.parametrize(("kwargs", "error", "needle"), [
    ({"max_norm": 0.0}, ConfigError, "max_norm"),
    ({"max_norm": -1.0}, ConfigError, "max_norm"),
    ({"max_norm": float("nan")}, ConfigError, "max_norm"),
    ({"max_norm": 1.0, "norm_type": 0.5}, ConfigError, "norm_type"),
])
def test_bad_arguments(kwargs, error, needle):
    with pytest.raises(error, match=needle):
        ds.nn.clip_grad_norm_(_params_with_grads(1.0), **kwargs)


def test_non_finite_norm():
    params = _params_with_grads(1.0)
    params[0].grad[0, 0] = np.inf
    with pytest.raises(GradientError, match="not finite"):
        ds.nn.clip_grad_norm_(params, 1.0, error_if_nonfinite=True)
    with pytest.raises(TypeError, match="Tensors"):
        ds.nn.clip_grad_norm_([np.ones(2)], 1.0)
