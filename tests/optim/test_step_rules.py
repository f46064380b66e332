"""Step rules inside the optimizer: line-search conditions recomputed on the real objective in
NumPy, warm starts and evaluation counts, randomness replayed across trial points, the strong
Wolfe gradient reuse, exact, Polyak and constant-length steps, and the fallback to -g."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import descend as ds
from descend import backend
from descend.autodiff.ops import softplus
from descend.linesearch import LineSearchStatus
from descend.optim import (
    GD,
    Adam,
    Armijo,
    Constant,
    ConstantLength,
    Cosine,
    Exact,
    InverseTime,
    Polyak,
    StrongWolfe,
)
from descend.optim.directions import AdamState


def param(values) -> ds.Tensor:
    return ds.tensor(np.array(values, dtype=np.float64), requires_grad=True)


# --------------------------------------------------------------------------- two objectives
class Quadratic:
    """f(x) = 1/2 x'Ax - b'x with A symmetric positive definite."""

    def __init__(self, n: int = 5, seed: int = 0, shift: float = 0.1):
        rng = np.random.default_rng(seed)
        Q = rng.standard_normal((n, n))
        self.A = Q.T @ Q + shift * np.eye(n)
        self.b = rng.standard_normal(n)
        self.x0 = rng.standard_normal(n) * 2

    def f(self, x):
        return 0.5 * float(x @ self.A @ x) - float(self.b @ x)

    def g(self, x):
        return self.A @ x - self.b

    def closure(self, x: ds.Tensor, calls: list | None = None):
        A, b = self.A, self.b

        def closure():
            if calls is not None:
                calls.append(x.data.copy())
            return 0.5 * (x @ (A @ x)) - b @ x

        return closure


class Logistic:
    """Mean logistic loss of a linear model (labels 0/1, noisy so the optimum is finite)."""

    def __init__(self, n: int = 60, d: int = 3, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.X = rng.standard_normal((n, d))
        w_true = np.arange(1.0, d + 1)
        p = 1 / (1 + np.exp(-self.X @ w_true))
        self.y = (rng.random(n) < p).astype(np.float64)
        self.x0 = np.zeros(d)

    def f(self, w):
        z = self.X @ w
        return float(np.mean(np.logaddexp(0.0, z) - self.y * z))

    def g(self, w):
        z = self.X @ w
        return self.X.T @ (1 / (1 + np.exp(-z)) - self.y) / len(self.y)

    def closure(self, w: ds.Tensor, calls: list | None = None):
        X, y = self.X, self.y

        def closure():
            if calls is not None:
                calls.append(w.data.copy())
            z = X @ w
            return (softplus(z) - z * y).mean()

        return closure


PROBLEMS = [("quadratic", Quadratic), ("logistic", Logistic)]


def tol(*values: float) -> float:
    """Slack for recomputing a condition in another order of operations."""
    return 1e-12 * (1.0 + max(abs(v) for v in values))


# --------------------------------------------------------------------------- Armijo
@pytest.mark.parametrize("name,problem", PROBLEMS, ids=[p[0] for p in PROBLEMS])
@pytest.mark.parametrize("c1,shrink", [(1e-4, 0.5), (0.3, 0.7)])
def test_armijo_accepted_steps_satisfy_sufficient_decrease(name, problem, c1, shrink):
    prob = problem()
    x = param(prob.x0)
    rule = Armijo(c1=c1, shrink=shrink, alpha0=20.0)
    opt = GD([x], lr=rule)
    calls: list[np.ndarray] = []
    closure = prob.closure(x, calls)
    backtracked = 0
    for _ in range(15):
        x0 = x.data.copy()
        g = prob.g(x0)
        del calls[:]
        opt.step(closure, same_batch=True)  # full batch: the trial step may double
        alpha, x1 = opt.last.lr, x.data.copy()
        assert opt.last.status is LineSearchStatus.CONVERGED
        assert opt.last.evaluations == len(calls)
        np.testing.assert_allclose(x1 - x0, -alpha * g, rtol=1e-12, atol=1e-15)
        f0, f1 = prob.f(x0), prob.f(x1)
        assert f1 <= f0 - c1 * alpha * float(g @ g) + tol(f0)
        if opt.last.evaluations > 2:  # it backtracked: the previous trial alpha/shrink failed
            backtracked += 1
            a = alpha / shrink
            assert prob.f(x0 - a * g) > f0 - c1 * a * float(g @ g) - tol(f0)
    assert backtracked >= 1  # the maximality check above did run


def test_armijo_with_weight_decay_searches_the_penalised_objective():
    prob = Quadratic(seed=4)
    lam = 0.5
    x = param(prob.x0)
    opt = GD([x], lr=Armijo(c1=0.4, alpha0=10.0), weight_decay=lam)
    closure = prob.closure(x)
    for _ in range(5):
        x0 = x.data.copy()
        g = prob.g(x0) + lam * x0
        opt.step(closure)
        x1, alpha = x.data.copy(), opt.last.lr
        F0 = prob.f(x0) + lam / 2 * float(x0 @ x0)
        F1 = prob.f(x1) + lam / 2 * float(x1 @ x1)
        assert opt.last.loss == pytest.approx(F0, rel=1e-13)
        assert opt.last.new_loss == pytest.approx(F1, rel=1e-11)
        np.testing.assert_allclose(x1 - x0, -alpha * g, rtol=1e-12)
        assert F1 <= F0 - 0.4 * alpha * float(g @ g) + tol(F0)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("grow,steps_per_epoch", [(1.0, None), (None, 10)],
                         ids=["grow=1", "minibatch-growth"])
def test_armijo_warm_start_needs_one_trial_on_most_steps(seed, grow, steps_per_epoch):
    prob = Quadratic(seed=seed, shift=0.5)
    x = param(prob.x0)
    calls: list[np.ndarray] = []
    opt = GD([x], lr=Armijo(grow=grow))
    opt.steps_per_epoch = steps_per_epoch
    closure = prob.closure(x, calls)
    trials = []
    for _ in range(40):
        del calls[:]
        opt.step(closure)
        assert opt.last.evaluations == len(calls)
        trials.append(opt.last.evaluations - 1)  # minus the forward pass at the start
    assert trials[0] > 1  # the cold start from alpha0 = 1 backtracked
    assert np.mean(np.array(trials[1:]) == 1) >= 0.75


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_armijo_full_batch_warm_start_averages_at_most_two_trials(seed):
    """Docstring: most steps need one trial; a larger step is probed now and then."""
    prob = Quadratic(seed=seed, shift=0.5)
    x = param(prob.x0)
    opt = GD([x], lr=Armijo())
    closure = prob.closure(x)
    trials = []
    for _ in range(40):
        opt.step(closure)
        trials.append(opt.last.evaluations - 1)
    assert np.mean(trials[1:]) <= 2.0
    assert np.mean(np.array(trials[1:]) == 1) > 0.5


@pytest.mark.parametrize("grow,steps_per_epoch,same_batch,factor", [
    (3.0, None, False, 3.0),
    (None, None, True, 2.0),  # full batch
    (None, None, False, 2.0 ** (1 / 50)),  # mini-batches, epoch unknown: STOCHASTIC_WINDOW
    (None, 8, False, 2.0 ** (1 / 8)),
    (None, 8, True, 2.0 ** (1 / 8)),  # what fit does: the epoch's length first
])
def test_armijo_first_trial_is_previous_step_times_growth(grow, steps_per_epoch, same_batch,
                                                          factor):
    prob = Quadratic(seed=5, shift=0.5)
    x = param(prob.x0)
    calls: list[np.ndarray] = []
    opt = GD([x], lr=Armijo(grow=grow))
    opt.steps_per_epoch = steps_per_epoch
    closure = prob.closure(x, calls)
    for _ in range(50):  # the step grows only after a step accepted at its first trial
        del calls[:]
        opt.step(closure, same_batch=same_batch)
        if opt.last.evaluations == 2:
            break
    assert opt.last.evaluations == 2
    previous = opt.last.lr
    del calls[:]
    x1 = x.data.copy()
    opt.step(closure, same_batch=same_batch)
    first_trial = calls[1]  # calls[0] is the forward pass at the start point x1
    d = -prob.g(x1)
    start = float(np.linalg.norm(first_trial - x1) / np.linalg.norm(d))
    assert start == pytest.approx(previous * factor, rel=1e-12)


def test_armijo_restarts_from_the_found_step_after_a_backtrack():
    prob = Quadratic(seed=5, shift=0.5)
    x = param(prob.x0)
    calls: list[np.ndarray] = []
    opt = GD([x], lr=Armijo(alpha0=100.0))
    closure = prob.closure(x, calls)
    opt.step(closure)
    assert opt.last.evaluations > 2  # the cold start from 100 backtracked
    previous = opt.last.lr
    x1 = x.data.copy()
    del calls[:]
    opt.step(closure)
    d = -prob.g(x1)
    start = float(np.linalg.norm(calls[1] - x1) / np.linalg.norm(d))
    assert start == pytest.approx(previous, rel=1e-12)


def test_armijo_warm_start_is_capped_by_max_lr():
    prob = Quadratic(seed=5, shift=0.5)
    x = param(prob.x0)
    calls: list[np.ndarray] = []
    opt = GD([x], lr=Armijo(alpha0=0.01, grow=100.0, max_lr=0.05))
    closure = prob.closure(x, calls)
    opt.step(closure)
    del calls[:]
    x1 = x.data.copy()
    opt.step(closure)
    start = float(np.linalg.norm(calls[1] - x1) / np.linalg.norm(prob.g(x1)))
    assert start == pytest.approx(0.05, rel=1e-12)


# --------------------------------------------------------------------------- replayed randomness
class MaskedRegression:
    """Least squares through a dropout-like mask drawn inside the forward pass; the masks seen
    by each call of the closure are recorded."""

    def __init__(self, draw, n: int = 16, d: int = 3):
        rng = np.random.default_rng(11)
        self.X = rng.standard_normal((n, d))
        self.y = rng.standard_normal(n)
        self.draw = draw
        self.masks: list[np.ndarray] = []

    def closure(self, w: ds.Tensor):
        def closure():
            keep = self.draw(len(self.y))
            self.masks.append(keep.copy())
            r = (self.X @ w) * (keep * 2.0) - self.y
            return (r * r).mean()

        return closure


def _one_step_masks(model, opt, closure):
    del model.masks[:]
    opt.step(closure)
    assert opt.last.evaluations == len(model.masks) >= 3  # it tried several points
    return [m.copy() for m in model.masks]


def _global_draw(n):
    return backend.global_rng().random(n) >= 0.5


class _Owner:
    """Something that owns a generator (as a dropout layer would)."""


def _tracked_draw():
    owner = _Owner()
    gen = backend.track_rng(np.random.default_rng(123), owner)
    owner.draw = lambda n: gen.random(n) >= 0.5
    return owner


@pytest.mark.parametrize("source", ["global", "tracked"])
def test_armijo_trial_points_share_one_mask(source):
    ds.manual_seed(3)
    owner = _tracked_draw() if source == "tracked" else None
    model = MaskedRegression(owner.draw if owner else _global_draw)
    w = param(np.zeros(3))
    opt = GD([w], lr=Armijo(alpha0=1e3))
    masks = _one_step_masks(model, opt, model.closure(w))
    for m in masks[2:]:
        np.testing.assert_array_equal(m, masks[1])


@pytest.mark.parametrize("source", ["global", "tracked"])
def test_armijo_every_evaluation_of_a_step_sees_the_same_mask(source):
    ds.manual_seed(3)
    owner = _tracked_draw() if source == "tracked" else None
    model = MaskedRegression(owner.draw if owner else _global_draw)
    w = param(np.zeros(3))
    opt = GD([w], lr=Armijo(alpha0=1e3))
    masks = _one_step_masks(model, opt, model.closure(w))
    for m in masks[1:]:
        np.testing.assert_array_equal(m, masks[0])


@pytest.mark.parametrize("source", ["global", "tracked"])
def test_armijo_next_step_draws_a_fresh_mask(source):
    ds.manual_seed(3)
    owner = _tracked_draw() if source == "tracked" else None
    model = MaskedRegression(owner.draw if owner else _global_draw, n=64)
    w = param(np.zeros(3))
    opt = GD([w], lr=Armijo(alpha0=1e3))
    closure = model.closure(w)
    first = _one_step_masks(model, opt, closure)
    del model.masks[:]
    opt.step(closure)
    second = model.masks[0]
    for m in first:
        assert not np.array_equal(second, m)


# --------------------------------------------------------------------------- strong Wolfe
@pytest.mark.parametrize("name,problem", PROBLEMS, ids=[p[0] for p in PROBLEMS])
@pytest.mark.parametrize("c1,c2", [(1e-4, 0.9), (1e-4, 0.1), (0.3, 0.4)])
def test_strong_wolfe_accepted_points_satisfy_both_conditions(name, problem, c1, c2):
    prob = problem()
    x = param(prob.x0)
    opt = GD([x], lr=StrongWolfe(c1=c1, c2=c2))
    closure = prob.closure(x)
    for _ in range(10):
        x0 = x.data.copy()
        g0 = prob.g(x0)
        if np.linalg.norm(g0) < 1e-9:
            break
        d = -g0
        opt.step(closure)
        assert opt.last.status is LineSearchStatus.CONVERGED
        alpha, x1 = opt.last.lr, x.data.copy()
        np.testing.assert_allclose(x1, x0 + alpha * d, rtol=1e-12, atol=1e-15)
        slope0 = float(g0 @ d)
        slope1 = float(prob.g(x1) @ d)
        f0, f1 = prob.f(x0), prob.f(x1)
        assert f1 <= f0 + c1 * alpha * slope0 + tol(f0)
        assert abs(slope1) <= c2 * abs(slope0) + 1e-12 * abs(slope0)


def test_strong_wolfe_reuses_the_last_gradient_on_the_same_batch():
    prob = Logistic(seed=2)
    w = param(prob.x0)
    calls: list[np.ndarray] = []
    opt = GD([w], lr=StrongWolfe())
    closure = prob.closure(w, calls)
    reused = 0
    for k in range(8):
        start = w.data.copy()
        del calls[:]
        opt.step(closure, same_batch=k > 0)
        assert opt.last.evaluations == len(calls)
        assert opt.last.gradient_evaluations == len(calls)
        at_start = sum(np.array_equal(c, start) for c in calls)
        if k == 0:
            assert at_start == 1
        else:
            reused += at_start == 0
    assert reused >= 5  # the start point's gradient came from the previous accepted trial


def test_strong_wolfe_reuses_nothing_unless_told_the_batch_is_the_same():
    # The same closure object alone says nothing: a closure may read a batch that changes.
    prob = Logistic(seed=2)
    w = param(prob.x0)
    calls: list[np.ndarray] = []
    opt = GD([w], lr=StrongWolfe())
    closure = prob.closure(w, calls)
    for _ in range(4):
        start = w.data.copy()
        del calls[:]
        opt.step(closure)
        assert sum(np.array_equal(c, start) for c in calls) == 1


def test_strong_wolfe_reuse_gives_the_same_trajectory_as_fresh_evaluations():
    prob = Logistic(seed=2)
    w_same, w_fresh = param(prob.x0), param(prob.x0)
    same, fresh = GD([w_same], lr=StrongWolfe()), GD([w_fresh], lr=StrongWolfe())
    closure = prob.closure(w_same)
    saved, spent = 0, 0
    for _ in range(8):
        same.step(closure, same_batch=True)
        fresh.step(prob.closure(w_fresh))  # not said to be the same batch: nothing reused
        assert np.array_equal(w_same.data, w_fresh.data)
        assert same.last.loss == fresh.last.loss
        saved += fresh.last.evaluations - same.last.evaluations
        spent += fresh.last.evaluations
        assert fresh.last.evaluations >= 2  # its start point plus at least one trial
    assert saved >= 5


# --------------------------------------------------------------------------- exact, Polyak, length
def test_exact_quadratic_step_is_the_closed_form():
    prob = Quadratic(seed=6)
    x = param(prob.x0)
    opt = GD([x], lr=Exact(quadratic=True))
    closure = prob.closure(x)
    for _ in range(4):
        x0 = x.data.copy()
        g = prob.g(x0)
        d = -g
        opt.step(closure)
        alpha = -float(g @ d) / float(d @ prob.A @ d)
        assert opt.last.lr == pytest.approx(alpha, rel=1e-9)
        assert opt.last.evaluations == 2  # the start point and phi(1)
        np.testing.assert_allclose(x.data, x0 + alpha * d, rtol=1e-9, atol=1e-12)
        # an exact step ends where the new gradient is orthogonal to the search direction
        assert abs(float(prob.g(x.data) @ d)) <= 1e-8 * float(d @ d)


@pytest.mark.parametrize("name,problem", PROBLEMS, ids=[p[0] for p in PROBLEMS])
def test_exact_search_minimises_along_the_line(name, problem):
    prob = problem()
    x = param(prob.x0)
    opt = GD([x], lr=Exact())
    for _ in range(3):
        x0 = x.data.copy()
        d = -prob.g(x0)
        opt.step(prob.closure(x))
        assert opt.last.status is LineSearchStatus.CONVERGED
        # phi'(alpha) = g(x1).d vanishes at the minimiser along the line
        assert abs(float(prob.g(x.data) @ d)) <= 1e-5 * float(d @ d)
        assert prob.f(x.data) < prob.f(x0)


def test_polyak_step_by_hand():
    # f = x^2 / 2 from x = 2 with f* = 0: alpha = (f - f*) / g^2 = 2 / 4 = 0.5, so x halves
    x = param([2.0])
    opt = GD([x], lr=Polyak(f_star=0.0))
    closure = lambda: 0.5 * (x * x).sum()  # noqa: E731
    for want in (1.0, 0.5, 0.25):
        opt.step(closure)
        assert opt.last.lr == pytest.approx(0.5, rel=1e-15)
        assert x.data[0] == pytest.approx(want, rel=1e-15)


def test_polyak_with_known_optimum_on_a_quadratic():
    prob = Quadratic(seed=8)
    f_star = prob.f(np.linalg.solve(prob.A, prob.b))
    x = param(prob.x0)
    opt = GD([x], lr=Polyak(f_star=f_star, c=0.5))
    closure = prob.closure(x)
    for _ in range(5):
        x0 = x.data.copy()
        g = prob.g(x0)
        opt.step(closure)
        alpha = (prob.f(x0) - f_star) / (0.5 * float(g @ g))
        assert opt.last.lr == pytest.approx(alpha, rel=1e-10)
        np.testing.assert_allclose(x.data, x0 - alpha * g, rtol=1e-9)


def test_polyak_is_capped_by_max_lr_and_stops_at_the_target():
    x = param([2.0])
    opt = GD([x], lr=Polyak(f_star=0.0, max_lr=0.3))
    closure = lambda: 0.5 * (x * x).sum()  # noqa: E731
    opt.step(closure)  # uncapped it would be 0.5
    assert opt.last.lr == 0.3
    assert x.data[0] == pytest.approx(2.0 - 0.3 * 2.0, rel=1e-15)
    y = param([2.0])
    above = GD([y], lr=Polyak(f_star=5.0))  # f = 2 is already below the target
    above.step(lambda: 0.5 * (y * y).sum())
    assert above.last.lr == 0.0
    assert y.data[0] == 2.0


def test_polyak_with_estimated_optimum_first_step():
    # target = f_best - gamma / sqrt(t + 1) = f - gamma at t = 0, so alpha = gamma / ||g||^2
    x = param([2.0, 1.0])
    opt = GD([x], lr=Polyak(f_star=None, gamma=0.5))
    opt.step(lambda: 0.5 * (x * x).sum())
    assert opt.last.lr == pytest.approx(0.5 / 5.0, rel=1e-15)


@pytest.mark.parametrize("gamma", [1e-3, 0.1, 2.0])
def test_constant_length_moves_exactly_gamma(gamma):
    prob = Quadratic(seed=9)
    x = param(prob.x0)
    W = param(np.ones((2, 2)))
    opt = GD([x, W], lr=ConstantLength(gamma))
    closure = prob.closure(x)

    def both():
        return closure() + (W * W).sum()

    for _ in range(4):
        before = np.concatenate([x.data.ravel(), W.data.ravel()])
        g = np.concatenate([prob.g(x.data), 2 * W.data.ravel()])
        opt.step(both)
        after = np.concatenate([x.data.ravel(), W.data.ravel()])
        assert np.linalg.norm(after - before) == pytest.approx(gamma, rel=1e-13)
        assert opt.last.lr == pytest.approx(gamma / np.linalg.norm(g), rel=1e-13)
        assert opt.last.step_norm == pytest.approx(gamma, rel=1e-13)


def test_constant_length_with_momentum_moves_gamma_along_the_direction():
    prob = Quadratic(seed=9)
    x = param(prob.x0)
    opt = GD([x], lr=ConstantLength(0.2), momentum=0.9)
    closure = prob.closure(x)
    for _ in range(4):
        before = x.data.copy()
        opt.step(closure)
        assert np.linalg.norm(x.data - before) == pytest.approx(0.2, rel=1e-13)


def test_constant_length_at_a_stationary_point_does_not_move():
    x = param([0.0, 0.0])
    opt = GD([x], lr=ConstantLength(0.5))
    opt.step(lambda: (x * x).sum())
    assert opt.last.lr == 0.0
    np.testing.assert_array_equal(x.data, [0.0, 0.0])


# --------------------------------------------------------------------------- non-descent fallback
def _momentum_made_ascent(opt, g0):
    # b <- beta b + g with b = -10 g gives b = (1 - 10 beta) g: with beta = 0.9, d = -b = 8 g
    opt.direction.state.buffers = [-10.0 * g0]


def _adam_made_ascent(opt, g0):
    # m <- b1 m + (1 - b1) g with m = -10 g gives m = -8.9 g: d points along +g
    opt.direction.state = AdamState(t=3, m=[-10.0 * g0], v=[g0 * g0])


@pytest.mark.parametrize("make,spoil", [
    (lambda p, r: GD(p, lr=r, momentum=0.9), _momentum_made_ascent),
    (lambda p, r: Adam(p, lr=r), _adam_made_ascent),
], ids=["momentum", "adam"])
@pytest.mark.parametrize("rule", [lambda: Armijo(c1=0.1), lambda: StrongWolfe()],
                         ids=["armijo", "wolfe"])
def test_line_search_falls_back_to_minus_gradient(make, spoil, rule):
    prob = Quadratic(seed=10)
    x = param(prob.x0)
    opt = make([x], rule())
    g0 = prob.g(prob.x0)
    spoil(opt, g0)
    opt.step(prob.closure(x))
    assert opt.last.fallback is True
    alpha = opt.last.lr
    assert alpha > 0
    np.testing.assert_allclose(x.data - prob.x0, -alpha * g0, rtol=1e-12)
    assert prob.f(x.data) <= prob.f(prob.x0) - 1e-4 * alpha * float(g0 @ g0) + tol(prob.f(prob.x0))


def test_descent_direction_does_not_fall_back():
    prob = Quadratic(seed=10)
    x = param(prob.x0)
    opt = GD([x], lr=Armijo(), momentum=0.5)
    opt.step(prob.closure(x))
    assert opt.last.fallback is False


def test_constant_step_follows_a_non_descent_direction_without_fallback():
    prob = Quadratic(seed=10)
    x = param(prob.x0)
    opt = GD([x], lr=0.01, momentum=0.9)
    g0 = prob.g(prob.x0)
    _momentum_made_ascent(opt, g0)
    opt.step(prob.closure(x))
    assert opt.last.fallback is False
    np.testing.assert_allclose(x.data, prob.x0 + 0.01 * 8.0 * g0, rtol=1e-12)


# --------------------------------------------------------------------------- rule state
@pytest.mark.parametrize("rule", [
    Constant(0.1), InverseTime(1.0), Cosine(1.0, 10), Armijo(), StrongWolfe(), Exact(),
    Polyak(f_star=None), ConstantLength(0.1),
], ids=lambda r: type(r).__name__)
def test_rule_state_is_json_serialisable_after_steps(rule):
    prob = Quadratic(seed=12)
    x = param(prob.x0)
    opt = GD([x], lr=rule)
    for _ in range(2):
        opt.step(prob.closure(x))
    state = rule.state_dict()
    assert json.loads(json.dumps(state)) == state
    assert all(math.isfinite(v) for v in state.values() if isinstance(v, float))
