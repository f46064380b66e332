"""grad_check: passes correct gradients, and catches a wrong VJP with a useful message."""

from __future__ import annotations

import re

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import descend as ds
from descend.autodiff import functional as F
from descend.autodiff import ops
from descend.autodiff.graph import Primitive
from descend.autodiff.ops._core import call

from .oracle import random_array

# name -> (function, inputs)
CORRECT = {
    "scalar output": (lambda x: (x * x).sum(), [random_array((3,), rng=101)]),
    "non-scalar output": (lambda x: x.tanh() * 2, [random_array((2, 3), rng=102)]),
    "0-d input": (lambda x: x.exp(), [np.array(0.3)]),
    "two inputs broadcast": (
        lambda a, b: a / b + a * b,
        [random_array((2, 3), rng=103), random_array((3,), rng=104, domain="nonzero")],
    ),
    "matmul chain": (
        lambda a, b: (a @ b).relu() @ b.T,
        [random_array((2, 3), rng=105), random_array((3, 4), rng=106)],
    ),
    "integer targets pass through": (
        ops.cross_entropy_per_sample,
        [random_array((3, 4), rng=107), np.array([0, 3, 1])],
    ),
    "boolean mask input": (
        lambda x, m: ds.where(m, x, -x),
        [random_array((4,), rng=108), np.array([True, False, True, False])],
    ),
    "float32 input promoted": (F.softplus, [random_array((3,), np.float32, rng=109)]),
    "a single Tensor": (lambda x: x.sigmoid(), ds.tensor(random_array((3,), rng=110))),
    "a single ndarray": (lambda x: x.sqrt(), random_array((3,), rng=111, domain="positive")),
}


@pytest.mark.parametrize("name", sorted(CORRECT))
def test_grad_check_returns_true_on_correct_gradients(name):
    fn, inputs = CORRECT[name]
    assert ds.grad_check(fn, inputs) is True


def test_grad_check_leaves_the_callers_inputs_alone():
    x = random_array((3,), np.float32, rng=112)
    before = x.copy()
    t = ds.tensor(random_array((2,), rng=113), requires_grad=True)
    ds.grad_check(lambda a, b: (a * 2).sum() + (b * b).sum(), [x, t])
    assert_array_equal(x, before)
    assert t.grad is None


def _wrong_square_vjp(g, out, inputs, needs):
    return (g * inputs[0],)  # the factor 2 is missing


WRONG_SQUARE = Primitive("wrong_square", np.square, _wrong_square_vjp)


def _numbers(message: str) -> list[float]:
    return [float(s) for s in re.findall(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?", message)]


def test_wrong_vjp_is_caught_naming_input_index_and_both_values():
    x = np.array([1.5, -2.0])
    with pytest.raises(AssertionError) as info:
        ds.grad_check(lambda t: call(WRONG_SQUARE, t).sum(), [x])
    message = str(info.value)
    assert "input 0" in message
    assert "(0,)" in message  # the first element disagrees first
    numbers = _numbers(message.split("(0,)", 1)[1])
    assert any(abs(v - 1.5) < 1e-6 for v in numbers), message  # backprop: x
    assert any(abs(v - 3.0) < 1e-5 for v in numbers), message  # differences: 2x


def test_wrong_vjp_on_the_second_input_names_input_one():
    def wrong_mul_vjp(g, out, inputs, needs):
        _a, b = inputs
        return g * b, g * b  # the second should be g * a

    wrong_mul = Primitive("wrong_mul", np.multiply, wrong_mul_vjp)
    a, b = np.array([2.0, 3.0]), np.array([5.0, 7.0])
    with pytest.raises(AssertionError, match=r"input 1\b") as info:
        ds.grad_check(lambda s, t: call(wrong_mul, s, t).sum(), [a, b])
    numbers = _numbers(str(info.value).split("(0,)", 1)[1])
    assert any(abs(v - 5.0) < 1e-6 for v in numbers)  # backprop gives b[0]
    assert any(abs(v - 2.0) < 1e-5 for v in numbers)  # the truth is a[0]


def test_error_at_one_element_names_that_element():
    def off_at_one_vjp(g, out, inputs, needs):
        grad = g * 2 * inputs[0]
        grad[1, 2] += 0.5
        return (grad,)

    off_at_one = Primitive("off_at_one", np.square, off_at_one_vjp)
    x = random_array((2, 3), rng=114)
    with pytest.raises(AssertionError, match=re.escape("(1, 2)")):
        ds.grad_check(lambda t: call(off_at_one, t) * 1.0, [x])


def test_wrong_vjp_in_a_non_scalar_output_is_caught():
    x = random_array((4,), rng=115)
    with pytest.raises(AssertionError, match="input 0"):
        ds.grad_check(lambda t: call(WRONG_SQUARE, t), [x])


def _scaled_square_vjp(g, out, inputs, needs, scale):
    return (g * 2 * inputs[0] * scale,)  # the true gradient times ``scale``


SCALED_SQUARE = Primitive("scaled_square", lambda a, scale: np.square(a), _scaled_square_vjp)


@pytest.mark.parametrize(
    ("scale", "rtol", "passes"),
    [(1 + 1e-6, 1e-3, True), (1 + 1e-2, 1e-3, False), (1 + 1e-2, 2e-2, True), (0.5, 0.1, False)],
)
def test_tolerances_decide_how_small_an_error_is_caught(scale, rtol, passes):
    def fn(t):
        return call(SCALED_SQUARE, t, scale=scale).sum()

    x = np.array([1.0, 2.0])
    if passes:
        assert ds.grad_check(fn, [x], rtol=rtol) is True
    else:
        with pytest.raises(AssertionError, match="input 0"):
            ds.grad_check(fn, [x], rtol=rtol)


def test_grad_check_needs_a_tensor_result():
    with pytest.raises(TypeError, match="Tensor"):
        ds.grad_check(lambda t: t.data.sum(), [np.ones(2)])
