"""Gradient clipping as an optimizer option: the direction is made from the clipped
gradient, line searches measure the slope of the true objective along it."""

from __future__ import annotations

import math

import numpy as np
import pytest

import descend as ds
from descend.errors import ConfigError
from descend.optim import GD, Adam, Armijo, StrongWolfe, Subgradient


def _problem(seed: int = 0):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((30, 5))
    b = 10.0 * rng.standard_normal(30)  # far from the optimum: large gradients
    x = ds.tensor(np.zeros(5), requires_grad=True)

    def closure():
        r = x @ ds.tensor(A.T) - ds.tensor(b)
        return (r * r).mean()

    def value_and_grad(v):
        r = A @ v - b
        return float(np.mean(r * r)), 2.0 * A.T @ r / len(b)

    return x, closure, value_and_grad


@pytest.mark.parametrize("wd", [0.0, 0.1])
def test_a_constant_step_moves_along_the_clipped_gradient(wd):
    x, closure, value_and_grad = _problem()
    opt = GD([x], lr=0.05, weight_decay=wd, max_grad_norm=1.0)
    x0 = x.data.copy()
    _, g = value_and_grad(x0)
    assert np.linalg.norm(g) > 1.0  # clipping is active
    opt.step(closure)
    clipped = g * (1.0 / (np.linalg.norm(g) + 1e-6))
    np.testing.assert_allclose(x.data, x0 - 0.05 * (clipped + wd * x0), rtol=1e-12)
    assert opt.last.clipped
    assert opt.last.grad_norm == pytest.approx(np.linalg.norm(g + wd * x0), rel=1e-12)


def test_the_option_matches_clip_grad_norm_before_a_closure_free_step():
    x, closure, _ = _problem()
    y, closure_y, _ = _problem()  # the same objective over another tensor
    GD([x], lr=0.1, max_grad_norm=0.5).step(closure)
    manual = GD([y], lr=0.1)
    closure_y().backward()  # PyTorch style: backward, clip by hand, step without a closure
    ds.nn.clip_grad_norm_([y], 0.5)
    manual.step()
    np.testing.assert_allclose(x.data, y.data, rtol=1e-12)


@pytest.mark.parametrize("rule", [Armijo(), StrongWolfe()], ids=["armijo", "wolfe"])
def test_line_searches_check_their_conditions_on_the_true_objective(rule):
    x, closure, value_and_grad = _problem(1)
    opt = GD([x], lr=rule, max_grad_norm=0.3)
    for _ in range(5):
        x0 = x.data.copy()
        f0, g = value_and_grad(x0)
        opt.step(closure)
        alpha = opt.last.lr
        clipped = g * min(1.0, 0.3 / (np.linalg.norm(g) + 1e-6))
        d = -clipped
        f1, g1 = value_and_grad(x0 + alpha * d)
        np.testing.assert_allclose(x.data, x0 + alpha * d, rtol=1e-12)
        slope = float(g @ d)  # the true slope, not -||clipped||^2
        assert f1 <= f0 + rule.c1 * alpha * slope + 1e-12
        if isinstance(rule, StrongWolfe):
            assert abs(float(g1 @ d)) <= rule.c2 * abs(slope) + 1e-12


def test_small_gradients_are_not_clipped_and_the_step_is_unchanged():
    x, closure, _ = _problem()
    y, closure_y, _ = _problem()
    GD([x], lr=0.01, max_grad_norm=1e6).step(closure)
    GD([y], lr=0.01).step(closure_y)
    assert np.array_equal(x.data, y.data)


@pytest.mark.parametrize("make", [
    lambda ps: Adam(ps, lr=0.1, max_grad_norm=1.0),
    lambda ps: Subgradient(ps, lr=0.1, max_grad_norm=1.0),
])
def test_every_optimizer_takes_the_option(make):
    x, closure, _ = _problem()
    opt = make([x])
    opt.step(closure)
    assert opt.last.clipped and math.isfinite(opt.last.loss)


@pytest.mark.parametrize("bad", [0, -1.0, math.nan, math.inf, "1", True])
def test_bad_max_grad_norm_is_refused_by_name(bad):
    x, _, _ = _problem()
    with pytest.raises(ConfigError, match="max_grad_norm"):
        GD([x], lr=0.1, max_grad_norm=bad)
