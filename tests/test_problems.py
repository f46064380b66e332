"""Test problems: each optimum is right, checked independently of how it was computed."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

from descend import problems as P
from descend.errors import ConfigError

NAMES = ["leastsq", "ridge", "quad2d", "logreg", "lasso", "svm", "maxaffine", "rosenbrock",
         "saddle", "mlp"]
WITH_OPTIMUM = [n for n in NAMES if n != "mlp"]
SMOOTH_WITH_OPTIMUM = ["leastsq", "ridge", "quad2d", "logreg", "rosenbrock", "saddle"]
NONSMOOTH = ["lasso", "svm", "maxaffine"]


@pytest.fixture(scope="module")
def built():
    cache: dict[str, P.Problem] = {}

    def get(name: str) -> P.Problem:
        if name not in cache:
            kwargs = {"samples": 300} if name == "mlp" else {}
            cache[name] = P.PROBLEMS[name](**kwargs)
        p = cache[name]
        p.reset()
        return p

    return get


def gradient(p: P.Problem, point=None) -> list[np.ndarray]:
    """The gradient of the descend graph at ``point`` (or the current variables)."""
    if point is not None:
        p.set_point(point)
    for q in p.params:
        q.grad = None
    p.loss().backward()
    return [q.grad.copy() for q in p.params]


def flat(arrays) -> np.ndarray:
    return np.concatenate([np.ravel(a) for a in arrays])


def random_point(p: P.Problem, rng, scale=1.0) -> list[np.ndarray]:
    centre = p.x_star if p.x_star is not None else p.x0
    return [c + scale * rng.standard_normal(c.shape) for c in centre]


# ------------------------------------------------------------------------------ shape of the API
def test_registry_has_every_problem():
    # then the Moré-Garbow-Hillstrom set (tests/test_problems_mgh.py), Rosenbrock already in
    assert list(P.PROBLEMS) == NAMES + [n for n in P.MGH_PROBLEMS if n != "rosenbrock"]


@pytest.mark.parametrize("name", NAMES)
def test_problem_record(name, built):
    p = built(name)
    assert p.name == name
    assert p.params and all(q.dtype == np.float64 and q.requires_grad for q in p.params)
    out = p.loss()
    assert out.size == 1 and out.dtype == np.float64 and out.requires_grad
    assert math.isfinite(p.value())
    assert isinstance(p.description, str) and p.description
    if name == "mlp":
        assert p.f_star is None and p.x_star is None and p.gap() is None
        assert not p.convex
    else:
        assert [x.shape for x in p.x_star] == [q.shape for q in p.params]
        assert p.gap() > 0  # the start is not optimal


@pytest.mark.parametrize("name", NAMES)
def test_reset_restores_the_start(name, built):
    p = built(name)
    start = p.point()
    f0 = p.value()
    p.set_point([x + 1.0 for x in start])
    assert p.value() != f0
    p.reset()
    for a, b in zip(p.point(), start):
        np.testing.assert_array_equal(a, b)
    assert p.value() == f0


@pytest.mark.parametrize("name", WITH_OPTIMUM)
def test_descend_graph_matches_the_numpy_objective(name, built):
    p = built(name)
    rng = np.random.default_rng(0)
    for _ in range(5):
        pt = random_point(p, rng)
        p.set_point(pt)
        assert_allclose(p.value(), p.numpy_objective(pt), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", WITH_OPTIMUM)
def test_f_star_is_f_at_x_star(name, built):
    p = built(name)
    p.set_point(p.x_star)
    assert_allclose(p.value(), p.f_star, rtol=1e-12, atol=1e-14)
    assert abs(p.gap()) < 1e-12 * max(1.0, abs(p.f_star))
    assert p.distance() == 0.0
    p.reset()
    assert p.distance() > 0


@pytest.mark.parametrize("name", SMOOTH_WITH_OPTIMUM)
def test_gradient_vanishes_at_x_star(name, built):
    p = built(name)
    g = flat(gradient(p, p.x_star))
    g0 = flat(gradient(p, p.x0))
    assert np.linalg.norm(g) <= 1e-10 * max(1.0, np.linalg.norm(g0))


@pytest.mark.parametrize("name", ["leastsq", "ridge", "logreg"])
def test_smooth_convex_x_star_is_the_global_minimum(name, built):
    p = built(name)
    rng = np.random.default_rng(1)
    for scale in (1e-4, 1e-2, 1.0):
        for _ in range(50):
            assert p.numpy_objective(random_point(p, rng, scale)) >= p.f_star


@pytest.mark.parametrize("name", ["rosenbrock", "saddle"])
def test_nonconvex_minimum_has_positive_definite_hessian(name, built):
    p = built(name)
    H = hessian_fd(p, p.x_star[0])
    assert np.all(np.linalg.eigvalsh(H) > 0)


def hessian_fd(p: P.Problem, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of the descend gradient."""
    cols = []
    for i in range(len(x)):
        e = np.zeros_like(x)
        e[i] = eps
        gp = gradient(p, [x + e])[0]
        gm = gradient(p, [x - e])[0]
        cols.append((gp - gm) / (2 * eps))
    H = np.array(cols).T
    return (H + H.T) / 2


def test_saddle_is_a_strict_saddle(built):
    p = built("saddle")
    origin = np.zeros(2)
    assert np.all(gradient(p, [origin])[0] == 0)
    assert_allclose(np.linalg.eigvalsh(hessian_fd(p, origin)), [-1.0, 1.0], atol=1e-6)
    assert_allclose(p.numpy_objective([np.array([-1.0, 0.0])]), p.f_star)  # the other minimum


def test_rosenbrock_optimum_follows_its_parameters():
    p = P.rosenbrock(a=2.0, b=10.0)
    assert_allclose(p.x_star[0], [2.0, 4.0])
    assert p.f_star == 0.0
    assert_allclose(flat(gradient(p, p.x_star)), 0.0, atol=1e-12)


# ------------------------------------------------------------------------------ non-smooth optima
@pytest.mark.parametrize("name", NONSMOOTH)
def test_nonsmooth_x_star_beats_every_nearby_point(name, built):
    p = built(name)
    rng = np.random.default_rng(2)
    for scale in (1e-7, 1e-5, 1e-3, 1e-1):
        for _ in range(100):
            pt = random_point(p, rng, scale)
            assert p.numpy_objective(pt) >= p.f_star - 1e-13
    # and along each coordinate, where kinks sit
    xs = flat(p.x_star)
    shapes = [x.shape for x in p.x_star]
    for i in range(len(xs)):
        for step in (1e-6, -1e-6, 1e-3, -1e-3):
            y = xs.copy()
            y[i] += step
            assert p.numpy_objective(unflatten(y, shapes)) >= p.f_star - 1e-13


def unflatten(v: np.ndarray, shapes) -> list[np.ndarray]:
    out, i = [], 0
    for s in shapes:
        k = int(np.prod(s))
        out.append(v[i:i + k].reshape(s))
        i += k
    return out


def test_lasso_optimality_conditions(built):
    p = built("lasso")
    x = p.x_star[0]
    # A^T (A x - b)/n is the gradient of the smooth part: compute it with descend with the
    # L1 term's subgradient removed: g - lam*sign(x)
    g = gradient(p, p.x_star)[0]
    lam = 0.1
    smooth_grad = g - lam * np.sign(x)
    on = x != 0
    assert on.any() and (~on).any()  # a genuinely sparse solution
    assert_allclose(smooth_grad[on], -lam * np.sign(x[on]), atol=1e-10)
    assert np.all(np.abs(smooth_grad[~on]) <= lam + 1e-10)


def test_svm_optimality_conditions(built):
    p = built("svm")
    w, b = p.x_star
    # Rebuild the data from the same seed and check the subdifferential contains 0:
    # lam w - mean_i beta_i y_i x_i = 0, sum beta_i y_i = 0, with beta_i = 1 inside the margin,
    # 0 outside, in [0, 1] on it; the margin points' betas are fitted by least squares.
    X, y, lam = svm_data()
    m = y * (X @ w + b[0])
    inside, on = m < 1 - 1e-9, np.abs(m - 1) <= 1e-9
    assert on.sum() >= 1
    n = len(y)
    fixed = lam * w - (y[inside][:, None] * X[inside]).sum(axis=0) / n
    M = np.vstack([(y[on][:, None] * X[on]).T / n, y[on][None, :] / n])
    rhs = np.r_[fixed, -y[inside].sum() / n]
    beta, *_ = np.linalg.lstsq(M, rhs, rcond=None)
    assert_allclose(M @ beta, rhs, atol=1e-10)
    assert np.all(beta >= -1e-8) and np.all(beta <= 1 + 1e-8)


def svm_data(n=200, d=5, lam=0.1, seed=0):
    rng = np.random.default_rng(seed)
    y = np.where(rng.random(n) < 0.5, 1.0, -1.0)
    centre = rng.standard_normal(d)
    centre *= 1.0 / np.linalg.norm(centre)
    X = rng.standard_normal((n, d)) + y[:, None] * centre
    return X, y, lam


def test_max_affine_lp_matches_its_dual(built):
    from scipy.optimize import linprog

    p = built("maxaffine")
    A, b = max_affine_data()
    m = len(b)
    # dual: max b.lam s.t. A^T lam = 0, sum lam = 1, lam >= 0
    res = linprog(-b, A_eq=np.vstack([A.T, np.ones((1, m))]), b_eq=np.r_[np.zeros(A.shape[1]), 1],
                  bounds=[(0, None)] * m, method="highs")
    assert res.status == 0
    assert_allclose(-res.fun, p.f_star, rtol=1e-9, atol=1e-9)


def max_affine_data(m=50, d=10, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((m, d))
    A -= A.mean(axis=0)
    return A, rng.standard_normal(m)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_max_affine_lp_matches_brute_force_vertex_enumeration(seed):
    m, d = 7, 2
    p = P.max_affine(m=m, d=d, seed=seed)
    A, b = max_affine_data(m, d, seed)
    best = math.inf
    for rows in itertools.combinations(range(m), d + 1):
        # a_i . x - t = -b_i on d + 1 pieces: a vertex of the epigraph
        K = np.hstack([A[list(rows)], -np.ones((d + 1, 1))])
        if abs(np.linalg.det(K)) < 1e-12:
            continue
        sol = np.linalg.solve(K, -b[list(rows)])
        best = min(best, float(np.max(A @ sol[:d] + b)))
    assert_allclose(p.f_star, best, rtol=1e-10, atol=1e-10)


def test_max_affine_subgradient_bound_holds(built):
    p = built("maxaffine")
    rng = np.random.default_rng(3)
    for _ in range(20):
        g = gradient(p, random_point(p, rng, 2.0))[0]
        assert np.linalg.norm(g) <= p.subgradient_bound + 1e-12


# ------------------------------------------------------------------------------ constants
@pytest.mark.parametrize("name", ["leastsq", "ridge", "logreg"])
def test_lipschitz_constant_bounds_the_gradient_change(name, built):
    p = built(name)
    rng = np.random.default_rng(4)
    worst = 0.0
    for _ in range(30):
        x, y = random_point(p, rng), random_point(p, rng)
        gx, gy = flat(gradient(p, x)), flat(gradient(p, y))
        ratio = np.linalg.norm(gx - gy) / np.linalg.norm(flat(x) - flat(y))
        assert ratio <= p.lipschitz * (1 + 1e-10)
        worst = max(worst, ratio)
    assert worst > 0.1 * p.lipschitz  # not a uselessly loose constant


@pytest.mark.parametrize("name", ["leastsq", "ridge"])
def test_quadratic_constants_are_the_extreme_curvatures(name, built):
    p = built(name)
    H = hessian_fd(p, np.zeros_like(p.x0[0]))
    eig = np.linalg.eigvalsh(H)
    assert_allclose(eig[-1], p.lipschitz, rtol=1e-6)
    assert_allclose(eig[0], p.strong_convexity, rtol=1e-5)


def test_least_squares_optimum_solves_the_normal_equations():
    p = P.least_squares(n=50, d=5, seed=3)
    rng = np.random.default_rng(3)
    A = rng.standard_normal((50, 5))
    x_true = rng.standard_normal(5)
    b = A @ x_true + 0.1 * rng.standard_normal(50)
    assert_allclose(A.T @ A @ p.x_star[0], A.T @ b, rtol=1e-10)


def test_builders_are_seeded():
    a, b, c = P.logistic_regression(n=60, d=3, seed=5), P.logistic_regression(n=60, d=3, seed=5), \
        P.logistic_regression(n=60, d=3, seed=6)
    assert a.f_star == b.f_star and a.f_star != c.f_star
    m1, m2 = P.mlp_digits(hidden=4, seed=1, samples=40), P.mlp_digits(hidden=4, seed=1, samples=40)
    assert m1.value() == m2.value()


def test_mlp_gradients_reach_every_parameter(built):
    p = built("mlp")
    grads = gradient(p)
    assert [g.shape for g in grads] == [q.shape for q in p.params]
    assert all(np.any(g != 0) for g in grads)


# ------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "builder, kwargs",
    [
        (P.least_squares, {"n": 0}),
        (P.least_squares, {"d": 1.5}),
        (P.ridge, {"lam": -1.0}),
        (P.logistic_regression, {"lam": 0.0}),
        (P.lasso, {"lam": math.nan}),
        (P.svm, {"n": 1}),
        (P.max_affine, {"m": 1}),
        (P.rosenbrock, {"b": 0.0}),
        (P.saddle, {"start": (0.0, math.inf)}),
        (P.mlp_digits, {"hidden": 0}),
    ],
)
def test_bad_arguments_raise_config_error(builder, kwargs):
    with pytest.raises(ConfigError):
        builder(**kwargs)


def test_make_problem_and_set_point_check_their_input():
    with pytest.raises(ConfigError, match="unknown problem 'nope'"):
        P.make_problem("nope")
    p = P.make_problem("Rosenbrock")
    with pytest.raises(ConfigError):
        p.set_point([np.zeros(3)])
    with pytest.raises(ConfigError):
        p.set_point([np.zeros(2), np.zeros(2)])
    assert P.make_problem("leastsq", seed=1).f_star != P.make_problem("leastsq").f_star


def test_svm_dual_route_finds_the_same_optimum():
    """The fallback (dual QP with SLSQP, then the exact polish) agrees with the main route."""
    p = P.svm(n=60, d=3, lam=0.2, seed=4)
    X, y, lam = svm_data(n=60, d=3, lam=0.2, seed=4)
    w, b = P._svm_dual(X, y, lam)
    w, b, ok = P._polish_svm(X, y, lam, w, b)
    assert ok
    assert_allclose(w, p.x_star[0], atol=1e-8)
    assert_allclose(b, p.x_star[1][0], atol=1e-8)
