"""The subgradient method: best-iterate tracking, a non-monotone run, rejected line searches,
and the classical bound (R^2 + G^2 sum a^2) / (2 sum a) checked by hand and on a problem."""

from __future__ import annotations

import math
from fractions import Fraction
from itertools import pairwise

import numpy as np
import pytest

import descend as ds
from descend.errors import ConfigError
from descend.optim import (
    Armijo,
    ConstantLength,
    Exact,
    InverseSqrt,
    InverseTime,
    Polyak,
    StrongWolfe,
    Subgradient,
)


def param(values) -> ds.Tensor:
    return ds.tensor(np.array(values, dtype=np.float64), requires_grad=True)


class WeightedL1:
    """f(x) = sum_i w_i |x_i - c_i|, minimum 0 at c; subgradient w * sign(x - c) (0 at a kink)."""

    def __init__(self, n: int = 6, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.w = rng.uniform(0.5, 2.0, n)
        self.c = rng.standard_normal(n)
        self.x0 = self.c + rng.standard_normal(n) * 3

    def f(self, x):
        return float(np.sum(self.w * np.abs(x - self.c)))

    @property
    def G(self) -> float:
        """A bound on every subgradient's norm."""
        return float(np.linalg.norm(self.w))

    def closure(self, x: ds.Tensor):
        w, c = self.w, self.c
        return lambda: ((x - c).abs() * w).sum()


def test_oscillating_run_is_not_monotone_but_best_is_kept():
    # f = |x| from x = 0.25 with lr = 1: x goes 0.25 -> -0.75 -> 0.25 -> -0.75 (all exact)
    x = param([0.25])
    opt = Subgradient([x], lr=1.0)
    closure = lambda: x.abs().sum()  # noqa: E731
    losses = []
    for _ in range(3):
        opt.step(closure)
        losses.append(opt.last.loss)
    assert losses == [0.25, 0.75, 0.25]  # the loss went up: not a descent method
    assert x.data[0] == -0.75
    assert opt.best_loss == 0.25
    assert opt.best_step == 0
    assert opt.restore_best() is True
    assert x.data[0] == 0.25


def test_best_loss_is_the_minimum_seen_and_restore_gives_its_parameters():
    prob = WeightedL1()
    x = param(prob.x0)
    opt = Subgradient([x], lr=0.7)  # a constant step: it ends up oscillating around c
    closure = prob.closure(x)
    starts, losses = [], []
    for _ in range(40):
        starts.append(x.data.copy())
        opt.step(closure)
        losses.append(opt.last.loss)
        assert opt.best_loss == min(losses)
        assert losses[opt.best_step] == opt.best_loss
    np.testing.assert_allclose(losses, [prob.f(s) for s in starts], rtol=1e-13)
    assert any(b > a for a, b in pairwise(losses))  # some steps went up
    assert opt.restore_best()
    np.testing.assert_array_equal(x.data, starts[int(np.argmin(losses))])
    assert prob.f(x.data) == pytest.approx(opt.best_loss, rel=1e-13)


def test_restore_best_before_any_step_returns_false():
    x = param([1.0])
    opt = Subgradient([x], lr=0.1)
    assert opt.restore_best() is False
    assert opt.best_loss == math.inf and opt.best_step is None


def test_subgradient_at_a_kink_is_zero():
    # |x|'(0) = 0: the coordinate sitting at its kink stays there
    x = param([0.0, 1.0])
    Subgradient([x], lr=0.5).step(lambda: x.abs().sum())
    np.testing.assert_array_equal(x.data, [0.0, 0.5])


@pytest.mark.parametrize("rule", [Armijo(), StrongWolfe(), Exact(), Exact(quadratic=True)],
                         ids=repr)
def test_line_searches_are_rejected(rule):
    with pytest.raises(ConfigError, match="not a descent method"):
        Subgradient([param([1.0])], lr=rule)


def test_guarantee_formula_by_hand():
    x = param([5.0, -3.0])
    opt = Subgradient([x], lr=InverseTime(1.0, 1.0))
    assert opt.guarantee(1.0, 1.0) == math.inf  # no step taken yet
    for _ in range(4):
        opt.step(lambda: x.abs().sum())
    # steps 1, 1/2, 1/3, 1/4
    s1 = Fraction(1) + Fraction(1, 2) + Fraction(1, 3) + Fraction(1, 4)
    s2 = Fraction(1) + Fraction(1, 4) + Fraction(1, 9) + Fraction(1, 16)
    R, G = 2, 3
    want = (R * R + G * G * s2) / (2 * s1)
    assert opt.guarantee(2.0, 3.0) == pytest.approx(float(want), rel=1e-14)
    assert opt.sum_lr == pytest.approx(float(s1), rel=1e-15)
    assert opt.sum_lr_sq == pytest.approx(float(s2), rel=1e-15)


@pytest.mark.parametrize("R,G", [(-1.0, 1.0), (1.0, -0.5)])
def test_guarantee_rejects_negative_constants(R, G):
    opt = Subgradient([param([1.0])], lr=0.1)
    with pytest.raises(ConfigError, match=str(min(R, G))):
        opt.guarantee(R, G)


@pytest.mark.parametrize("rule", [
    InverseTime(1.0, 1.0), InverseSqrt(0.5), ConstantLength(0.05), 0.05,
], ids=repr)
def test_best_gap_is_within_the_guarantee(rule):
    prob = WeightedL1(seed=3)
    x = param(prob.x0)
    opt = Subgradient([x], lr=rule)
    closure = prob.closure(x)
    R = float(np.linalg.norm(prob.x0 - prob.c))  # ||x_1 - x*||, f* = 0
    for k in range(200):
        opt.step(closure)
        if k % 20 == 19:
            assert opt.best_loss - 0.0 <= opt.guarantee(R, prob.G) + 1e-12
    assert opt.best_loss < prob.f(prob.x0)


def test_polyak_with_known_optimum_drives_the_best_gap_to_zero():
    prob = WeightedL1(seed=4)
    x = param(prob.x0)
    opt = Subgradient([x], lr=Polyak(f_star=0.0))
    closure = prob.closure(x)
    for _ in range(300):
        opt.step(closure)
    # Polyak's step: f_best - f* <= G R / sqrt(k) (Boyd & Mutapcic §3.4)
    R = float(np.linalg.norm(prob.x0 - prob.c))
    assert opt.best_loss <= prob.G * R / math.sqrt(300)
    assert opt.best_loss < 1e-2 * prob.f(prob.x0)


def test_state_dict_round_trip_keeps_the_best_iterate():
    prob = WeightedL1(seed=5)
    x = param(prob.x0)
    opt = Subgradient([x], lr=InverseSqrt(1.0))
    closure = prob.closure(x)
    for _ in range(15):
        opt.step(closure)
    state = opt.state_dict()
    y = param(x.data.copy())
    other = Subgradient([y], lr=InverseSqrt(1.0))
    other.load_state_dict(state)
    assert other.best_loss == opt.best_loss and other.best_step == opt.best_step
    assert other.guarantee(1.0, 1.0) == opt.guarantee(1.0, 1.0)
    for _ in range(5):
        opt.step(closure)
        other.step(prob.closure(y))
        assert np.array_equal(x.data, y.data)
    assert opt.restore_best() and other.restore_best()
    np.testing.assert_array_equal(x.data, y.data)
