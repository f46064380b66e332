"""The Moré-Garbow-Hillstrom problems: each closure against the same residuals evaluated by
NumPy (descend's forward pass against NumPy's arithmetic), its gradient against central
differences, the starting values and optima against the numbers printed in the paper (Moré,
Garbow & Hillstrom 1981): the paper's numbers are the independent check of the residuals."""

from __future__ import annotations

import numpy as np
import pytest

from descend.problems import MGH_PROBLEMS, PROBLEMS, make_problem, penalty1, powell_singular

NAMES = sorted(MGH_PROBLEMS)

#: f(x0) as printed in the paper (or computed by hand from its definitions).
PAPER_F0 = {
    "rosenbrock": 24.2,
    "beale": 14.203125,
    "powell-singular": 215.0,
    "ext-powell": 3 * 215.0,
    "ext-rosenbrock": 5 * 24.2,
    "wood": 19192.0,
    "box3d": 1031.1538,
    "brown-badly-scaled": 0.999998e12,
    "penalty1": 148032.56535,
    "vardim": 0.219855e7,
    "broyden-tri": 21.0,
    "broyden-banded": 360.0,
    "linear-full-rank": 50.0,  # n = 10, m = 20: 10 (1 - 1 - ...) computed below
}


def _fd_gradient(f, x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    out = np.empty_like(x)
    for i in range(len(x)):
        step = h * max(1.0, abs(x[i]))
        e = np.zeros_like(x)
        e[i] = step
        out[i] = (f([x + e]) - f([x - e])) / (2 * step)
    return out


@pytest.mark.parametrize("name", NAMES)
def test_closure_matches_numpy_form(name):
    p = MGH_PROBLEMS[name]()
    rng = np.random.default_rng(0)
    for point in (p.x0[0], p.x0[0] + 0.3 * rng.standard_normal(p.x0[0].shape)):
        p.set_point([point])
        assert p.value() == pytest.approx(p.numpy_objective([point]), rel=1e-13, abs=1e-300)


@pytest.mark.parametrize("name", NAMES)
def test_gradient_matches_central_differences(name):
    p = MGH_PROBLEMS[name]()
    rng = np.random.default_rng(1)
    for point in (p.x0[0], p.x0[0] + 0.1 * rng.standard_normal(p.x0[0].shape)):
        p.set_point([point])
        loss = p.loss()
        loss.backward()
        fd = _fd_gradient(p.numpy_objective, point)
        scale = max(1.0, float(np.max(np.abs(fd))))
        # central differences lose about eps |f| / h to rounding (h ~ 1e-5 |x|)
        rounding = 1e-16 * abs(p.numpy_objective([point])) / 1e-5
        np.testing.assert_allclose(p.params[0].grad, fd, rtol=1e-5,
                                   atol=1e-6 * scale + rounding)


def test_brown_badly_scaled_gradient_in_closed_form():
    """f ~ 1e12 at x0 hides the second component from central differences: compare with
    grad f = 2 (x1 - 1e6 + x2 (x1 x2 - 2), x2 - 2e-6 + x1 (x1 x2 - 2))."""
    p = MGH_PROBLEMS["brown-badly-scaled"]()
    for x1, x2 in [(1.0, 1.0), (3.0e5, -2.0), (1e6 + 1.0, 2e-6 - 1e-9)]:
        p.set_point([np.array([x1, x2])])
        p.loss().backward()
        c = x1 * x2 - 2.0
        expected = 2 * np.array([x1 - 1e6 + x2 * c, x2 - 2e-6 + x1 * c])
        np.testing.assert_allclose(p.params[0].grad, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(PAPER_F0))
def test_starting_value_is_the_papers(name):
    p = MGH_PROBLEMS[name]()
    assert p.numpy_objective(p.x0) == pytest.approx(PAPER_F0[name], rel=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_optimum_is_a_stationary_point_with_value_f_star(name):
    p = MGH_PROBLEMS[name]()
    assert p.x_star is not None
    value = p.numpy_objective(p.x_star)
    assert value == pytest.approx(p.f_star, rel=1e-12, abs=1e-24)
    p.set_point(p.x_star)
    p.loss().backward()
    grad = p.params[0].grad
    assert float(np.max(np.abs(grad))) < 1e-9 * max(1.0, float(np.max(np.abs(p.x_star[0]))))
    assert p.smooth and p.numpy_objective(p.x0) > p.f_star


def test_penalty1_optimum_matches_the_paper():
    assert penalty1(10).f_star == pytest.approx(7.08765e-5, rel=1e-5)
    assert penalty1(4).f_star == pytest.approx(2.24997e-5, rel=1e-5)


def test_registry_and_sizes():
    for name in NAMES:
        assert name in PROBLEMS and PROBLEMS[name] is MGH_PROBLEMS[name]
        assert make_problem(name, seed=3).name == name  # the seed is ignored: no data
    assert powell_singular(8).params[0].size == 8
    with pytest.raises(ValueError, match="multiple of 4, got 6"):
        powell_singular(6)
    with pytest.raises(ValueError, match="multiple of 2, got 3"):
        MGH_PROBLEMS["ext-rosenbrock"](3)
