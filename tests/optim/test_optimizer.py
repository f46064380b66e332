"""The optimizer shell: updates against hand-written formulas, the closure protocol, opt.last,
parameter groups, state round trips, undo, and one table of invalid constructor arguments.

Every expected value is computed here, by hand or in NumPy float64, never read back from the
code under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import descend as ds
from descend.errors import ConfigError, GradientError
from descend.linesearch import LineSearchStatus
from descend.optim import (
    GD,
    Adam,
    Armijo,
    Constant,
    ConstantLength,
    Cosine,
    Exact,
    ExponentialDecay,
    InverseSqrt,
    InverseTime,
    Polyak,
    StepDecay,
    StrongWolfe,
    Subgradient,
    parse_step_rule,
)

# A fixed, well-conditioned 2-D quadratic f(x) = 1/2 x'Ax - b'x with hand-checked numbers:
# at x0 = (1, -1): Ax0 = (2, -1), so g = Ax0 - b = (1, -1) and f(x0) = 1/2 * 3 - 1 = 0.5.
A2 = np.array([[3.0, 1.0], [1.0, 2.0]])
B2 = np.array([1.0, 0.0])
X0 = np.array([1.0, -1.0])


def f_np(x, A=A2, b=B2):
    return 0.5 * float(x @ A @ x) - float(b @ x)


def g_np(x, A=A2, b=B2):
    return A @ x - b


def param(values) -> ds.Tensor:
    return ds.tensor(np.array(values, dtype=np.float64), requires_grad=True)


def quadratic_closure(x: ds.Tensor, A=A2, b=B2, calls: list | None = None):
    def closure():
        if calls is not None:
            calls.append(x.data.copy())
        return 0.5 * (x @ (A @ x)) - b @ x

    return closure


def random_spd(n: int, seed: int, shift: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    Q = rng.standard_normal((n, n))
    return Q.T @ Q / n + shift * np.eye(n), rng.standard_normal(n)


# --------------------------------------------------------------------------- plain GD
def test_gd_step_by_hand():
    x = param(X0)
    opt = GD([x], lr=0.1)
    loss = opt.step(quadratic_closure(x))
    # g(x0) = (1, -1) worked out above; x1 = x0 - 0.1 g = (0.9, -0.9)
    np.testing.assert_allclose(x.data, [0.9, -0.9], rtol=0, atol=1e-15)
    assert float(loss.data) == pytest.approx(0.5, abs=1e-15)


@pytest.mark.parametrize("lr", [0.01, 0.1, 0.45])
def test_gd_step_on_several_shaped_parameters(lr):
    # f = sum(W^2) + sum((b - 1)^2): grad W = 2W, grad b = 2(b - 1)
    W0 = np.arange(6.0).reshape(2, 3) - 2.5
    b0 = np.array([0.5, -3.0])
    W, b = param(W0), param(b0)
    opt = GD([W, b], lr=lr)
    opt.step(lambda: (W * W).sum() + ((b - 1.0) * (b - 1.0)).sum())
    np.testing.assert_allclose(W.data, (1 - 2 * lr) * W0, rtol=1e-14)
    np.testing.assert_allclose(b.data, b0 - lr * 2 * (b0 - 1.0), rtol=1e-14)


# --------------------------------------------------------------------------- momentum, Adam
def heavy_ball_reference(x0, grad, lr, beta, nesterov, steps):
    """PyTorch's SGD with momentum, written out: b <- beta b + g (b = g at the first step),
    x <- x - lr b; Nesterov: x <- x - lr (g + beta b)."""
    x = np.array(x0, dtype=np.float64)
    buf = None
    path = []
    for _ in range(steps):
        g = grad(x)
        buf = g.copy() if buf is None else beta * buf + g
        x = x - lr * ((g + beta * buf) if nesterov else buf)
        path.append(x.copy())
    return path


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("beta", [0.5, 0.9])
def test_momentum_matches_pytorch_convention(beta, nesterov):
    x = param(X0)
    opt = GD([x], lr=0.1, momentum=beta, nesterov=nesterov)
    closure = quadratic_closure(x)
    expected = heavy_ball_reference(X0, g_np, 0.1, beta, nesterov, steps=3)
    for want in expected:
        opt.step(closure)
        np.testing.assert_allclose(x.data, want, rtol=1e-13, atol=1e-15)


def test_momentum_by_hand_on_one_dimension():
    # f = x^2 / 2 (g = x), x0 = 1, lr = 0.5, beta = 0.5:
    # step 1: b = 1, x = 0.5; step 2: g = 0.5, b = 0.5*1 + 0.5 = 1, x = 0.5 - 0.5 = 0;
    # step 3: g = 0, b = 0.5, x = -0.25.
    x = param([1.0])
    opt = GD([x], lr=0.5, momentum=0.5)
    closure = lambda: 0.5 * (x * x).sum()  # noqa: E731
    for want in (0.5, 0.0, -0.25):
        opt.step(closure)
        assert x.data[0] == pytest.approx(want, abs=1e-15)


def test_nesterov_by_hand_on_one_dimension():
    # f = x^2 / 2, x0 = 1, lr = 0.5, beta = 0.5, d = -(g + beta b):
    # step 1: g = 1, b = 1, x = 1 - 0.5 (1 + 0.5) = 0.25;
    # step 2: g = 0.25, b = 0.5 + 0.25 = 0.75, x = 0.25 - 0.5 (0.25 + 0.375) = -0.0625.
    x = param([1.0])
    opt = GD([x], lr=0.5, momentum=0.5, nesterov=True)
    closure = lambda: 0.5 * (x * x).sum()  # noqa: E731
    for want in (0.25, -0.0625):
        opt.step(closure)
        assert x.data[0] == pytest.approx(want, abs=1e-15)


def adam_reference(x0, grad, lr, b1, b2, eps, steps):
    """Kingma & Ba (2015), Algorithm 1, written out in NumPy."""
    x = np.array(x0, dtype=np.float64)
    m = np.zeros_like(x)
    v = np.zeros_like(x)
    path = []
    for t in range(1, steps + 1):
        g = grad(x)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat = m / (1 - b1**t)
        v_hat = v / (1 - b2**t)
        x = x - lr * m_hat / (np.sqrt(v_hat) + eps)
        path.append(x.copy())
    return path


@pytest.mark.parametrize("betas,eps", [((0.9, 0.999), 1e-8), ((0.5, 0.9), 0.1)])
def test_adam_first_steps_match_the_formulas(betas, eps):
    x = param([0.3, -2.0])
    opt = Adam([x], lr=0.05, betas=betas, eps=eps)
    closure = quadratic_closure(x)
    expected = adam_reference([0.3, -2.0], g_np, 0.05, *betas, eps, steps=3)
    for want in expected:
        opt.step(closure)
        np.testing.assert_allclose(x.data, want, rtol=1e-13)


def test_adam_first_step_moves_each_coordinate_by_about_lr():
    # m_hat = g and v_hat = g^2 at t = 1, so the step is lr * g / (|g| + eps): ~lr * sign(g)
    x = param([0.3, -2.0])
    g0 = g_np(np.array([0.3, -2.0]))
    Adam([x], lr=0.01, eps=1e-8).step(quadratic_closure(x))
    np.testing.assert_allclose(x.data - [0.3, -2.0], -0.01 * g0 / (np.abs(g0) + 1e-8), rtol=1e-12)


# --------------------------------------------------------------------------- weight decay
@pytest.mark.parametrize("make", [
    lambda p: GD(p, lr=0.1, weight_decay=0.3),
    lambda p: Adam(p, lr=0.1, weight_decay=0.3),
], ids=["GD", "Adam"])
def test_weight_decay_adds_lambda_x_to_gradient_and_half_lambda_sq_norm_to_loss(make):
    lam = 0.3
    x = param(X0)
    opt = make([x])
    loss = opt.step(quadratic_closure(x))
    g = g_np(X0) + lam * X0
    assert float(loss.data) == pytest.approx(f_np(X0), abs=1e-15)  # the closure's own loss
    assert opt.last.loss == pytest.approx(f_np(X0) + lam / 2 * float(X0 @ X0), rel=1e-14)
    assert opt.last.grad_norm == pytest.approx(float(np.linalg.norm(g)), rel=1e-14)
    if isinstance(opt, Adam):
        want = X0 - 0.1 * g / (np.abs(g) + 1e-8)
    else:
        want = X0 - 0.1 * g
    np.testing.assert_allclose(x.data, want, rtol=1e-13)


def test_weight_decay_per_group():
    a, b = param([1.0, 2.0]), param([3.0])
    opt = GD([{"params": [a], "weight_decay": 0.5}, {"params": [b]}], lr=0.1)
    opt.step(lambda: (a * a).sum() * 0.0 + (b * 0.0).sum() + a.sum() + b.sum())
    # grad of a.sum() is 1; a gets 1 + 0.5 a, b gets 1 only
    np.testing.assert_allclose(a.data, [1.0 - 0.1 * 1.5, 2.0 - 0.1 * 2.0], rtol=1e-15)
    np.testing.assert_allclose(b.data, [3.0 - 0.1], rtol=1e-15)
    assert opt.last.loss == pytest.approx(6.0 + 0.25 * 5.0, rel=1e-15)


# --------------------------------------------------------------------------- closure protocol
def test_step_calls_the_closure_once_and_backward_once():
    x = param(X0)
    calls: list[np.ndarray] = []
    opt = GD([x], lr=0.1)
    opt.step(quadratic_closure(x, calls=calls))
    assert len(calls) == 1
    np.testing.assert_array_equal(calls[0], X0)
    # .grad holds the gradient at the start, computed once (not doubled)
    np.testing.assert_allclose(x.grad, g_np(X0), rtol=1e-15)


def test_step_zeroes_stale_gradients_first():
    x = param(X0)
    x.grad = np.full(2, 1e6)
    GD([x], lr=0.1).step(quadratic_closure(x))
    np.testing.assert_allclose(x.data, X0 - 0.1 * g_np(X0), rtol=1e-15)


def test_gradients_are_not_accumulated_across_steps():
    x = param(X0)
    opt = GD([x], lr=0.1)
    closure = quadratic_closure(x)
    want = X0.copy()
    for _ in range(4):
        start = want
        want = start - 0.1 * g_np(start)
        opt.step(closure)
        np.testing.assert_allclose(x.data, want, rtol=1e-14)
        # .grad is the gradient at this step's start only, not a sum over the steps
        np.testing.assert_allclose(x.grad, g_np(start), rtol=1e-14)


def test_step_records_a_graph_even_under_no_grad():
    x = param(X0)
    opt = GD([x], lr=0.1)
    with ds.no_grad():
        opt.step(quadratic_closure(x))
    np.testing.assert_allclose(x.data, X0 - 0.1 * g_np(X0), rtol=1e-15)


@pytest.mark.parametrize("bad,exc,text", [
    (lambda x: 1.0, TypeError, "float"),
    (lambda x: x * 2.0, GradientError, "(2,)"),
    (lambda x: ds.tensor(3.0), GradientError, "require grad"),
], ids=["not-a-tensor", "not-scalar", "no-grad"])
def test_closure_returning_the_wrong_thing_is_named(bad, exc, text):
    x = param(X0)
    with pytest.raises(exc) as info:
        GD([x], lr=0.1).step(lambda: bad(x))
    assert text in str(info.value)


def test_step_without_closure_uses_existing_grad():
    x = param(X0)
    opt = GD([x], lr=0.1)
    loss = 0.5 * (x @ (A2 @ x)) - B2 @ x
    loss.backward()
    assert opt.step() is None
    np.testing.assert_allclose(x.data, X0 - 0.1 * g_np(X0), rtol=1e-15)
    assert opt.last.lr == 0.1
    assert opt.last.grad_norm == pytest.approx(math.sqrt(2.0), rel=1e-15)


def test_step_without_closure_needs_grad():
    x = param(X0)
    with pytest.raises(GradientError, match="backward"):
        GD([x], lr=0.1).step()


@pytest.mark.parametrize("rule", [Armijo(), StrongWolfe(), Exact()], ids=repr)
def test_step_without_closure_rejects_line_searches(rule):
    x = param(X0)
    (x * x).sum().backward()
    with pytest.raises(ConfigError, match="closure"):
        GD([x], lr=rule).step()
    np.testing.assert_array_equal(x.data, X0)


def test_step_returns_the_loss_at_the_start():
    x = param(X0)
    opt = GD([x], lr=Armijo())
    closure = quadratic_closure(x)
    for _ in range(3):
        start = x.data.copy()
        loss = opt.step(closure)
        assert float(loss.data) == pytest.approx(f_np(start), abs=1e-15)
        assert opt.last.loss == pytest.approx(f_np(start), abs=1e-15)


# --------------------------------------------------------------------------- opt.last
def test_last_describes_a_constant_step():
    x = param(X0)
    opt = GD([x], lr=0.25)
    opt.step(quadratic_closure(x))
    last = opt.last
    g = g_np(X0)
    assert last.step == 0
    assert last.lr == 0.25
    assert last.evaluations == 1
    assert last.gradient_evaluations == 1
    assert last.grad_norm == pytest.approx(float(np.linalg.norm(g)), rel=1e-15)
    assert last.status is None
    assert last.finite
    assert not last.fallback
    assert last.step_norm == pytest.approx(0.25 * float(np.linalg.norm(g)), rel=1e-15)
    assert last.step_norm == pytest.approx(float(np.linalg.norm(x.data - X0)), rel=1e-14)
    opt.step(quadratic_closure(x))
    assert opt.last.step == 1


def test_last_describes_a_line_search_step():
    A, b = random_spd(4, seed=3)
    x = param(np.ones(4))
    calls: list[np.ndarray] = []
    opt = GD([x], lr=Armijo(c1=0.3, alpha0=50.0))
    opt.step(quadratic_closure(x, A, b, calls))
    last = opt.last
    x0, x1 = np.ones(4), x.data.copy()
    g = g_np(x0, A, b)
    assert last.status is LineSearchStatus.CONVERGED
    assert last.evaluations == len(calls) > 1  # alpha0 = 50 is far too long: it backtracked
    assert last.gradient_evaluations == 1
    np.testing.assert_allclose(x1 - x0, -last.lr * g, rtol=1e-13)
    assert last.new_loss == pytest.approx(f_np(x1, A, b), rel=1e-12)
    assert last.step_norm == pytest.approx(float(np.linalg.norm(x1 - x0)), rel=1e-12)
    assert last.grad_norm == pytest.approx(float(np.linalg.norm(g)), rel=1e-14)


def test_last_step_norm_is_lr_times_direction_norm_with_momentum():
    x = param(X0)
    opt = GD([x], lr=0.1, momentum=0.9)
    closure = quadratic_closure(x)
    for _ in range(3):
        before = x.data.copy()
        opt.step(closure)
        assert opt.last.step_norm == pytest.approx(float(np.linalg.norm(x.data - before)),
                                                   rel=1e-12)


# --------------------------------------------------------------------------- groups
def test_parameter_groups_move_by_their_own_lr():
    a, b, c = param([1.0, -2.0]), param([[0.5]]), param([4.0])
    opt = GD([{"params": [a], "lr": 0.1}, {"params": [b, c], "lr": 0.01}], lr=0.5)
    # f = sum(a^2) + sum(b^2) + sum(c^2): grad = 2 x for each
    opt.step(lambda: (a * a).sum() + (b * b).sum() + (c * c).sum())
    np.testing.assert_allclose(a.data, [1.0 * 0.8, -2.0 * 0.8], rtol=1e-15)
    np.testing.assert_allclose(b.data, [[0.5 * 0.98]], rtol=1e-15)
    np.testing.assert_allclose(c.data, [4.0 * 0.98], rtol=1e-15)


def test_group_without_lr_takes_the_default():
    a, b = param([1.0]), param([1.0])
    opt = GD([{"params": [a], "lr": 0.1}, {"params": [b]}], lr=0.25)
    opt.step(lambda: (a * a).sum() + (b * b).sum())
    assert a.data[0] == pytest.approx(0.8, abs=1e-15)
    assert b.data[0] == pytest.approx(0.5, abs=1e-15)


@pytest.mark.parametrize("groups", [
    lambda a, b: [{"params": [a], "lr": Armijo()}, {"params": [b], "lr": Armijo()}],
    lambda a, b: [{"params": [a], "lr": StrongWolfe()}, {"params": [b], "lr": Exact()}],
], ids=["two-armijo", "wolfe-and-exact"])
def test_two_line_searches_over_groups_are_rejected(groups):
    # one search, one alpha: the searching groups share one rule object
    a, b = param([1.0]), param([1.0])
    with pytest.raises(ConfigError, match="same rule object"):
        GD(groups(a, b), lr=0.1)


def test_groups_sharing_one_line_search_are_accepted():
    a, b = param([1.0]), param([2.0])
    rule = Armijo()
    opt = GD([{"params": [a]}, {"params": [b], "lr": rule}], lr=rule)
    opt.step(lambda: (a * a).sum() + (b * b).sum())
    # one search along -g = (-2, -4): both parameters move by the same alpha
    alpha = opt.last.lr
    assert a.data[0] == pytest.approx(1.0 - 2 * alpha, abs=1e-15)
    assert b.data[0] == pytest.approx(2.0 - 4 * alpha, abs=1e-15)


# --------------------------------------------------------------------------- state round trip
STATEFUL = [
    ("gd-momentum", lambda p: GD(p, lr=0.05, momentum=0.9)),
    ("gd-nesterov", lambda p: GD(p, lr=0.05, momentum=0.8, nesterov=True)),
    ("adam", lambda p: Adam(p, lr=0.05)),
    ("gd-armijo", lambda p: GD(p, lr=Armijo(alpha0=30.0, grow=1.5))),
    ("gd-wolfe", lambda p: GD(p, lr=StrongWolfe())),
    ("adam-armijo", lambda p: Adam(p, lr=Armijo())),
    ("gd-invtime", lambda p: GD(p, lr=InverseTime(0.5, 1.0))),
    ("gd-polyak-estimated", lambda p: GD(p, lr=Polyak(f_star=None))),
]


@pytest.mark.parametrize("name,make", STATEFUL, ids=[s[0] for s in STATEFUL])
def test_state_dict_round_trip_continues_bit_identically(name, make):
    A, b = random_spd(5, seed=1, shift=0.1)
    x = param(np.linspace(-1.0, 1.0, 5))
    opt = make([x])
    closure = quadratic_closure(x, A, b)
    for _ in range(3):
        opt.step(closure)
    state = opt.state_dict()
    x_saved = x.data.copy()
    reference = []
    for _ in range(5):
        opt.step(closure)
        reference.append(x.data.copy())

    y = param(x_saved)
    restored = make([y])
    restored.load_state_dict(state)
    closure_y = quadratic_closure(y, A, b)
    for want in reference:
        restored.step(closure_y)
        assert np.array_equal(y.data, want)

    # and the state matters: a fresh optimizer from the same point goes elsewhere
    z = param(x_saved)
    fresh = make([z])
    closure_z = quadratic_closure(z, A, b)
    paths = []
    for _ in range(5):
        fresh.step(closure_z)
        paths.append(z.data.copy())
    assert any(not np.array_equal(p, q) for p, q in zip(paths, reference))


def test_load_state_dict_rejects_another_layout():
    a, b = param([1.0]), param([1.0])
    one = GD([a], lr=0.1)
    two = GD([{"params": [a]}, {"params": [b]}], lr=0.1)
    with pytest.raises(ConfigError, match="2 parameter groups"):
        one.load_state_dict(two.state_dict())


# --------------------------------------------------------------------------- undo
@pytest.mark.parametrize("make", [
    lambda p: GD(p, lr=0.1),
    lambda p: GD(p, lr=0.1, momentum=0.9),
    lambda p: GD(p, lr=Armijo(alpha0=40.0)),
    lambda p: Adam(p, lr=0.1),
], ids=["gd", "momentum", "armijo", "adam"])
def test_undo_restores_previous_parameters_bitwise(make):
    A, b = random_spd(3, seed=7)
    x = param([0.1, 0.2, 0.3])
    W = param(np.arange(6.0).reshape(2, 3) / 7)
    opt = make([x, W])
    closure = lambda: 0.5 * (x @ (A @ x)) - b @ x + (W * W).sum()  # noqa: E731
    opt.step(closure)
    before = [x.data.copy(), W.data.copy()]
    opt.step(closure)
    assert not np.array_equal(x.data, before[0])
    assert opt.undo() is True
    assert np.array_equal(x.data, before[0])
    assert np.array_equal(W.data, before[1])
    assert opt.undo() is False  # only the last step can be undone
    assert np.array_equal(x.data, before[0])


def test_undo_before_any_step_does_nothing():
    x = param(X0)
    assert GD([x], lr=0.1).undo() is False
    np.testing.assert_array_equal(x.data, X0)


def test_undo_invalidates_the_reused_wolfe_gradient():
    A = np.diag([1.0, 4.0])
    x = param([1.0, 1.0])
    closure = lambda: 0.5 * (x @ (A @ x))  # noqa: E731
    opt = GD([x], lr=StrongWolfe())
    opt.step(closure)
    x1 = x.data.copy()
    opt.step(closure)
    assert opt.undo()
    opt.step(closure)
    assert opt.last.loss == pytest.approx(0.5 * float(x1 @ A @ x1), rel=1e-14)
    assert opt.last.grad_norm == pytest.approx(float(np.linalg.norm(A @ x1)), rel=1e-14)


def test_steps_after_undo_start_from_the_restored_point():
    x = param(X0)
    opt = GD([x], lr=0.1)
    closure = quadratic_closure(x)
    opt.step(closure)
    x1 = x.data.copy()
    opt.step(closure)
    opt.undo()
    opt.step(closure)
    np.testing.assert_array_equal(x.data, x1 - 0.1 * g_np(x1))


# --------------------------------------------------------------------------- invalid arguments
def _p():
    return [param([1.0, 2.0])]


# (constructor call, exception, text the message must contain)
INVALID = [
    # GD
    ("GD lr<0", lambda: GD(_p(), lr=-0.1), ConfigError, "-0.1"),
    ("GD lr=nan", lambda: GD(_p(), lr=float("nan")), ConfigError, "nan"),
    ("GD lr=0", lambda: GD(_p(), lr=0.0), ConfigError, "0.0"),
    ("GD lr=inf", lambda: GD(_p(), lr=math.inf), ConfigError, "inf"),
    ("GD lr=str", lambda: GD(_p(), lr="fast"), ConfigError, "'fast'"),
    ("GD lr=bool", lambda: GD(_p(), lr=True), ConfigError, "True"),
    ("GD momentum=1", lambda: GD(_p(), momentum=1.0), ConfigError, "1.0"),
    ("GD momentum<0", lambda: GD(_p(), momentum=-0.1), ConfigError, "-0.1"),
    ("GD momentum=nan", lambda: GD(_p(), momentum=float("nan")), ConfigError, "nan"),
    ("GD nesterov w/o momentum", lambda: GD(_p(), nesterov=True), ConfigError, "nesterov"),
    ("GD weight_decay<0", lambda: GD(_p(), weight_decay=-1.0), ConfigError, "-1.0"),
    ("GD weight_decay=nan", lambda: GD(_p(), weight_decay=float("nan")), ConfigError, "nan"),
    # parameters
    ("params ndarray", lambda: GD([np.zeros(3)], lr=0.1), TypeError, "ndarray"),
    ("params no grad", lambda: GD([ds.tensor([1.0])], lr=0.1), ConfigError, "require grad"),
    ("params empty", lambda: GD([], lr=0.1), ConfigError, "empty"),
    ("params twice", lambda: (lambda p: GD([p, p], lr=0.1))(param([1.0])), ConfigError,
     "twice"),
    ("group w/o params", lambda: GD([{"lr": 0.1}], lr=0.1), ConfigError, "'params'"),
    # Adam
    ("Adam lr<0", lambda: Adam(_p(), lr=-1.0), ConfigError, "-1.0"),
    ("Adam beta1=1", lambda: Adam(_p(), betas=(1.0, 0.999)), ConfigError, "1.0"),
    ("Adam beta2<0", lambda: Adam(_p(), betas=(0.9, -0.1)), ConfigError, "-0.1"),
    ("Adam beta2=nan", lambda: Adam(_p(), betas=(0.9, float("nan"))), ConfigError, "nan"),
    ("Adam betas single", lambda: Adam(_p(), betas=(0.9,)), ConfigError, "(0.9,)"),
    ("Adam betas float", lambda: Adam(_p(), betas=0.9), ConfigError, "0.9"),
    ("Adam eps=0", lambda: Adam(_p(), eps=0.0), ConfigError, "eps"),
    ("Adam eps<0", lambda: Adam(_p(), eps=-1e-8), ConfigError, "-1e-08"),
    # Subgradient
    ("Subgradient lr<0", lambda: Subgradient(_p(), lr=-0.5), ConfigError, "-0.5"),
    ("Subgradient armijo", lambda: Subgradient(_p(), lr=Armijo()), ConfigError, "Armijo"),
    ("Subgradient wolfe", lambda: Subgradient(_p(), lr=StrongWolfe()), ConfigError,
     "StrongWolfe"),
    ("Subgradient exact", lambda: Subgradient(_p(), lr=Exact()), ConfigError, "line search"),
    # schedules
    ("Constant<0", lambda: Constant(-1.0), ConfigError, "-1.0"),
    ("Constant=0", lambda: Constant(0), ConfigError, "got 0"),
    ("Constant=nan", lambda: Constant(float("nan")), ConfigError, "nan"),
    ("InverseTime a=0", lambda: InverseTime(0.0), ConfigError, "0.0"),
    ("InverseTime b<0", lambda: InverseTime(1.0, -1.0), ConfigError, "-1.0"),
    ("InverseSqrt a<0", lambda: InverseSqrt(-2.0), ConfigError, "-2.0"),
    ("InverseSqrt b=nan", lambda: InverseSqrt(1.0, float("nan")), ConfigError, "nan"),
    ("ExponentialDecay gamma=1", lambda: ExponentialDecay(1.0, 1.0), ConfigError, "1.0"),
    ("ExponentialDecay gamma=0", lambda: ExponentialDecay(1.0, 0.0), ConfigError, "0.0"),
    ("ExponentialDecay lr<0", lambda: ExponentialDecay(-0.5), ConfigError, "-0.5"),
    ("StepDecay step_size=0", lambda: StepDecay(1.0, 0), ConfigError, "step_size"),
    ("StepDecay step_size float", lambda: StepDecay(1.0, 2.5), ConfigError, "2.5"),
    ("StepDecay gamma>1", lambda: StepDecay(1.0, 10, 1.5), ConfigError, "1.5"),
    ("Cosine total=0", lambda: Cosine(1.0, 0), ConfigError, "total_steps"),
    ("Cosine warmup=total", lambda: Cosine(1.0, 10, warmup=10), ConfigError, "10"),
    ("Cosine warmup<0", lambda: Cosine(1.0, 10, warmup=-1), ConfigError, "-1"),
    ("Cosine min_lr>lr", lambda: Cosine(1.0, 10, min_lr=2.0), ConfigError, "2.0"),
    # step-size rules
    ("Armijo c1=0", lambda: Armijo(c1=0.0), ConfigError, "c1"),
    ("Armijo c1=1", lambda: Armijo(c1=1.0), ConfigError, "1.0"),
    ("Armijo shrink=1", lambda: Armijo(shrink=1.0), ConfigError, "1.0"),
    ("Armijo shrink=0", lambda: Armijo(shrink=0.0), ConfigError, "shrink"),
    ("Armijo shrink>1", lambda: Armijo(shrink=1.5), ConfigError, "1.5"),
    ("Armijo shrink<0", lambda: Armijo(shrink=-0.5), ConfigError, "-0.5"),
    ("Armijo grow<1", lambda: Armijo(grow=0.5), ConfigError, "0.5"),
    ("Armijo alpha0=0", lambda: Armijo(alpha0=0.0), ConfigError, "alpha0"),
    ("Armijo alpha0=nan", lambda: Armijo(alpha0=float("nan")), ConfigError, "nan"),
    ("Armijo max_evals=0", lambda: Armijo(max_evals=0), ConfigError, "max_evals"),
    ("StrongWolfe c1>c2", lambda: StrongWolfe(c1=0.9, c2=0.5), ConfigError, "0.9"),
    ("StrongWolfe c1=c2", lambda: StrongWolfe(c1=0.5, c2=0.5), ConfigError, "0.5"),
    ("StrongWolfe c2=1", lambda: StrongWolfe(c2=1.0), ConfigError, "1.0"),
    ("StrongWolfe c1<0", lambda: StrongWolfe(c1=-1e-4), ConfigError, "-0.0001"),
    ("StrongWolfe max_evals=0", lambda: StrongWolfe(max_evals=0), ConfigError, "max_evals"),
    ("Exact tol=0", lambda: Exact(tol=0.0), ConfigError, "tol"),
    pytest.param(
        "Exact max_evals=0", lambda: Exact(max_evals=0), ConfigError, "max_evals",
    ),
    ("Polyak c=0", lambda: Polyak(c=0.0), ConfigError, "c must"),
    ("Polyak max_lr=0", lambda: Polyak(max_lr=0.0), ConfigError, "max_lr"),
    ("Polyak f_star=nan", lambda: Polyak(f_star=float("nan")), ConfigError, "nan"),
    ("Polyak f_star=inf", lambda: Polyak(f_star=math.inf), ConfigError, "inf"),
    ("Polyak gamma<0", lambda: Polyak(f_star=None, gamma=-1.0), ConfigError, "-1.0"),
    ("ConstantLength=0", lambda: ConstantLength(0.0), ConfigError, "gamma"),
    ("ConstantLength<0", lambda: ConstantLength(-0.1), ConfigError, "-0.1"),
    ("ConstantLength=nan", lambda: ConstantLength(float("nan")), ConfigError, "nan"),
    # the short string form
    ("parse unknown", lambda: parse_step_rule("fastest"), ConfigError, "'fastest'"),
    ("parse non-number", lambda: parse_step_rule("armijo:x"), ConfigError, "'armijo:x'"),
    ("parse too few", lambda: parse_step_rule("invtime"), ConfigError, "'invtime'"),
    ("parse too many", lambda: parse_step_rule("constant:1:2:3"), ConfigError,
     "'constant:1:2:3'"),
    ("parse bad value", lambda: parse_step_rule("constant:-1"), ConfigError, "-1"),
    ("parse empty", lambda: parse_step_rule(""), ConfigError, "''"),
    *(
        pytest.param(
            f"parse extra argument {spec}", (lambda spec=spec: parse_step_rule(spec)),
            ConfigError, repr(spec),
        )
        for spec in ("cosine:1:100:10:0.1:7", "exact:3", "sps:1:2", "polyak-est:1:2")
    ),
    pytest.param(
        "non-leaf tensor", lambda: (lambda W: GD([W * 2.0], lr=0.1))(param([1.0])),
        ConfigError, "leaf",
    ),
]


def _case_id(case) -> str:
    return case.values[0] if hasattr(case, "values") else case[0]


@pytest.mark.parametrize("name,build,exc,text", INVALID, ids=[_case_id(c) for c in INVALID])
def test_invalid_constructor_arguments_name_the_bad_value(name, build, exc, text):
    with pytest.raises(exc) as info:
        build()
    assert text in str(info.value), f"{name}: {info.value}"


def test_group_params_may_be_a_single_tensor():
    W = param(np.ones((2, 3)))
    opt = GD([{"params": W}], lr=0.1)  # PyTorch accepts a lone tensor here
    opt.step(lambda: (W * W).sum())
    np.testing.assert_allclose(W.data, np.full((2, 3), 0.8), rtol=1e-15)


def test_config_errors_are_value_errors():
    # catching the built-in works too (errors.py: ConfigError refines ValueError)
    with pytest.raises(ValueError):
        GD(_p(), lr=-1.0)


def test_schedule_returning_a_negative_step_is_rejected_at_the_step():
    x = param([1.0])
    opt = GD([x], lr=lambda t: 0.1 - t)
    closure = lambda: (x * x).sum()  # noqa: E731
    opt.step(closure)  # lr(0) = 0.1 is fine
    moved = x.data.copy()
    with pytest.raises(ConfigError, match=r"lr\(1\)"):
        opt.step(closure)
    np.testing.assert_array_equal(x.data, moved)
