"""Arithmetic operators and smooth elementwise functions against autograd and differences."""

from __future__ import annotations

import autograd.numpy as anp
import numpy as np
import pytest
from autograd.scipy.special import erf, expit
from numpy.testing import assert_allclose

import descend as ds
from descend.autodiff import functional as F
from descend.autodiff import ops

from .oracle import DTYPES, check_gradients, random_array

# Broadcast-compatible operand shapes, including scalars and 0-d tensors.
BINARY_SHAPES = [
    ((3, 4), (3, 4)),
    ((3, 4), (4,)),
    ((3, 1), (1, 4)),
    ((2, 3, 4), (3, 1)),
    ((4,), (2, 3, 4)),
    ((), (3,)),
    ((2, 3), ()),
    ((), ()),
    ((1,), (2, 3)),
]

# name -> (descend, autograd, domain of a, domain of b)
BINARY_OPS = {
    "add": (lambda a, b: a + b, lambda a, b: a + b, "real", "real"),
    "sub": (lambda a, b: a - b, lambda a, b: a - b, "real", "real"),
    "mul": (lambda a, b: a * b, lambda a, b: a * b, "real", "real"),
    "div": (lambda a, b: a / b, lambda a, b: a / b, "real", "nonzero"),
    "pow": (lambda a, b: a**b, lambda a, b: a**b, "positive", "real"),
    "maximum": (ds.maximum, anp.maximum, "real", "real"),
    "minimum": (ds.minimum, anp.minimum, "real", "real"),
    "ops.add": (ops.add, anp.add, "real", "real"),
    "ops.power": (ops.power, anp.power, "positive", "real"),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("shape_a", "shape_b"), BINARY_SHAPES)
@pytest.mark.parametrize("name", sorted(BINARY_OPS))
def test_binary_operator_gradients(name, shape_a, shape_b, dtype):
    ds_fn, ag_fn, dom_a, dom_b = BINARY_OPS[name]
    a = random_array(shape_a, dtype, rng=1, domain=dom_a)
    b = random_array(shape_b, dtype, rng=2, domain=dom_b)
    check_gradients(ds_fn, ag_fn, [a, b])


@pytest.mark.parametrize(("shape_a", "shape_b"), BINARY_SHAPES)
def test_broadcast_result_shape_follows_numpy(shape_a, shape_b):
    a = ds.tensor(np.ones(shape_a), requires_grad=True)
    b = ds.tensor(np.ones(shape_b), requires_grad=True)
    assert (a * b).shape == np.broadcast_shapes(shape_a, shape_b)


# name -> (descend, autograd, domain)
UNARY_OPS = {
    "neg": (lambda x: -x, lambda x: -x, "real"),
    "exp": (lambda x: x.exp(), anp.exp, "real"),
    "ds.exp": (ds.exp, anp.exp, "real"),
    "log": (lambda x: x.log(), anp.log, "positive"),
    "ds.log": (ds.log, anp.log, "positive"),
    "sqrt": (lambda x: x.sqrt(), anp.sqrt, "positive"),
    "abs": (lambda x: x.abs(), anp.abs, "real"),
    "builtin abs": (abs, anp.abs, "real"),
    "ds.absolute": (ds.absolute, anp.abs, "real"),
    "relu": (lambda x: x.relu(), lambda x: anp.maximum(x, 0.0), "real"),
    "ds.F.relu": (ds.F.relu, lambda x: anp.maximum(x, 0.0), "real"),
    "tanh": (lambda x: x.tanh(), anp.tanh, "real"),
    "ds.F.tanh": (ds.F.tanh, anp.tanh, "real"),
    "sigmoid": (lambda x: x.sigmoid(), expit, "real"),
    "F.sigmoid": (F.sigmoid, expit, "real"),
    "softplus": (F.softplus, lambda x: anp.logaddexp(0.0, x), "real"),
    "gelu": (F.gelu, lambda x: 0.5 * x * (1.0 + erf(x / np.sqrt(2.0))), "real"),
    "leaky_relu": (F.leaky_relu, lambda x: anp.where(x > 0, x, 0.01 * x), "real"),
    "leaky_relu(0.2)": (
        lambda x: ops.leaky_relu(x, negative_slope=0.2),
        lambda x: anp.where(x > 0, x, 0.2 * x),
        "real",
    ),
    "clip(lo, hi)": (lambda x: x.clip(-0.5, 0.7), lambda x: anp.clip(x, -0.5, 0.7), "real"),
    "clip(lo)": (lambda x: x.clip(-0.5), lambda x: anp.maximum(x, -0.5), "real"),
    "clip(hi=)": (lambda x: x.clip(hi=0.3), lambda x: anp.minimum(x, 0.3), "real"),
    "ds.clip": (lambda x: ds.clip(x, -1.0, 1.0), lambda x: anp.clip(x, -1.0, 1.0), "real"),
    "square": (lambda x: x**2, lambda x: x**2, "real"),
    "cube": (lambda x: x**3, lambda x: x**3, "real"),
    "pow -1.5": (lambda x: x**-1.5, lambda x: x**-1.5, "positive"),
    "pow 0.5": (lambda x: x**0.5, anp.sqrt, "positive"),
    "rpow 2": (lambda x: 2**x, lambda x: 2.0**x, "real"),
    "rpow 0.3": (lambda x: 0.3**x, lambda x: 0.3**x, "real"),
    "rpow ndarray": (
        lambda x: np.full(x.shape, 1.7, dtype=x.dtype) ** x,
        lambda x: np.full(x.shape, 1.7, dtype=x.dtype) ** x,
        "real",
    ),
    "reciprocal": (lambda x: 1 / x, lambda x: 1 / x, "nonzero"),
    "composite": (
        lambda x: (x * x + 1).log() * x.tanh() - (x / 3).exp(),
        lambda x: anp.log(x * x + 1) * anp.tanh(x) - anp.exp(x / 3),
        "real",
    ),
}

UNARY_SHAPES = [(), (5,), (2, 3), (2, 1, 3)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", UNARY_SHAPES)
@pytest.mark.parametrize("name", sorted(UNARY_OPS))
def test_unary_function_gradients(name, shape, dtype):
    ds_fn, ag_fn, domain = UNARY_OPS[name]
    x = random_array(shape, dtype, rng=3, domain=domain)
    check_gradients(ds_fn, ag_fn, [x])


@pytest.mark.parametrize("name", sorted(UNARY_OPS))
def test_unary_function_passes_grad_check(name):
    ds_fn, _, domain = UNARY_OPS[name]
    assert ds.grad_check(ds_fn, [random_array((2, 3), rng=4, domain=domain)]) is True


@pytest.mark.parametrize("name", sorted(BINARY_OPS))
def test_binary_operator_passes_grad_check(name):
    ds_fn, _, dom_a, dom_b = BINARY_OPS[name]
    a = random_array((2, 3), rng=5, domain=dom_a)
    b = random_array((3,), rng=6, domain=dom_b)
    assert ds.grad_check(ds_fn, [a, b]) is True


# Reflected forms and mixed operands: (descend, autograd) with a constant on either side.
CONSTANT = np.array([[0.5, -1.5, 2.0, 0.75]])
MIXED_FORMS = {
    "x + 2": (lambda x: x + 2, lambda x: x + 2),
    "2 + x": (lambda x: 2 + x, lambda x: 2 + x),
    "x - 2.5": (lambda x: x - 2.5, lambda x: x - 2.5),
    "2.5 - x": (lambda x: 2.5 - x, lambda x: 2.5 - x),
    "x * 3": (lambda x: x * 3, lambda x: x * 3),
    "3 * x": (lambda x: 3 * x, lambda x: 3 * x),
    "x / 4": (lambda x: x / 4, lambda x: x / 4),
    "4 / x": (lambda x: 4 / x, lambda x: 4 / x),
    "x ** 2.0": (lambda x: x**2.0, lambda x: x**2.0),
    "1.5 ** x": (lambda x: 1.5**x, lambda x: 1.5**x),
    "ndarray + x": (lambda x: CONSTANT + x, lambda x: CONSTANT + x),
    "x + ndarray": (lambda x: x + CONSTANT, lambda x: x + CONSTANT),
    "ndarray - x": (lambda x: CONSTANT - x, lambda x: CONSTANT - x),
    "ndarray * x": (lambda x: CONSTANT * x, lambda x: CONSTANT * x),
    "ndarray / x": (lambda x: CONSTANT / x, lambda x: CONSTANT / x),
    "x / ndarray": (lambda x: x / CONSTANT, lambda x: x / CONSTANT),
    "ndarray ** x": (lambda x: np.abs(CONSTANT) ** x, lambda x: np.abs(CONSTANT) ** x),
    "x ** ndarray": (lambda x: x.abs() ** CONSTANT, lambda x: anp.abs(x) ** CONSTANT),
    "ndarray @ x.T": (lambda x: CONSTANT @ x.T, lambda x: anp.matmul(CONSTANT, x.T)),
    "x @ ndarray.T": (lambda x: x @ CONSTANT.T, lambda x: anp.matmul(x, CONSTANT.T)),
    "-x": (lambda x: -x, lambda x: -x),
    "+x": (lambda x: +x, lambda x: x),
}


@pytest.mark.parametrize("name", sorted(MIXED_FORMS))
def test_mixed_operands_with_constants(name):
    ds_fn, ag_fn = MIXED_FORMS[name]
    x = random_array((3, 4), np.float64, rng=7, domain="nonzero")
    check_gradients(ds_fn, ag_fn, [x])


@pytest.mark.parametrize("name", sorted(MIXED_FORMS))
def test_constant_operand_gives_a_tensor(name):
    ds_fn, _ = MIXED_FORMS[name]
    out = ds_fn(ds.tensor(random_array((3, 4), rng=8, domain="nonzero"), requires_grad=True))
    assert type(out) is ds.Tensor
    assert out.requires_grad


# Expressions that must keep float32 when the other operand is a Python number.
FLOAT32_WITH_PYTHON_SCALARS = {
    "x + 1": lambda x: x + 1,
    "1.5 + x": lambda x: 1.5 + x,
    "x - 0.1": lambda x: x - 0.1,
    "0.1 - x": lambda x: 0.1 - x,
    "x * 2.0": lambda x: x * 2.0,
    "x / 3": lambda x: x / 3,
    "3.0 / x": lambda x: 3.0 / x,
    "x ** 2": lambda x: x**2,
    "x ** 0.5": lambda x: x.abs() ** 0.5,
    "2 ** x": lambda x: 2**x,
    "2.0 ** x": lambda x: 2.0**x,
    "clip": lambda x: x.clip(-0.5, 0.5),
    "maximum": lambda x: ds.maximum(x, 0.25),
    "minimum": lambda x: ds.minimum(0.25, x),
    "where": lambda x: ds.where(x.data > 0, x, 0.0),
    "leaky_relu": lambda x: F.leaky_relu(x, 0.1),
    "gelu": F.gelu,
    "softplus": F.softplus,
    "mean": lambda x: x.mean(),
    "sum * 0.5": lambda x: x.sum() * 0.5,
}


@pytest.mark.parametrize("name", sorted(FLOAT32_WITH_PYTHON_SCALARS))
def test_python_scalars_keep_float32(name):
    x = ds.tensor([[0.5, -1.5, 2.0], [1.0, 0.25, -0.75]], requires_grad=True)
    assert x.dtype == np.float32
    out = FLOAT32_WITH_PYTHON_SCALARS[name](x)
    assert out.dtype == np.float32
    out.sum().backward()
    assert x.grad.dtype == np.float32


def test_power_with_tensor_exponent_differentiates_both():
    a = ds.tensor(np.array([2.0, 3.0]), requires_grad=True)
    b = ds.tensor(np.array([3.0, 0.5]), requires_grad=True)
    (a**b).sum().backward()
    assert_allclose(a.grad, [3.0 * 2.0**2, 0.5 * 3.0**-0.5], rtol=1e-12)
    assert_allclose(b.grad, [8.0 * np.log(2.0), np.sqrt(3.0) * np.log(3.0)], rtol=1e-12)


def test_power_derivative_at_zero_base():
    # d/dx x**2 = 0 and d/dx x**1 = 1 at x = 0; d/dx x**0 = 0 (a constant).
    for exponent, expected in [(2, 0.0), (1, 1.0), (3.0, 0.0), (0, 0.0), (0.0, 0.0)]:
        x = ds.tensor(np.array([0.0]), requires_grad=True)
        (x**exponent).sum().backward()
        assert x.grad[0] == expected, f"exponent {exponent}: got {x.grad[0]}"


def test_power_array_exponent_zero_at_zero_base_has_zero_gradient():
    # polynomial features x ** [0, 1, 2] evaluated at x = 0: derivative [0, 1, 0]
    x = ds.tensor(np.array([0.0]), requires_grad=True)
    with np.errstate(all="ignore"):
        (x ** np.array([0.0, 1.0, 2.0])).sum().backward()
    assert_allclose(x.grad, [1.0])


def test_exponent_gradient_at_zero_base_is_zero():
    # d/db 0**b = 0**b log 0, taken as its limit 0 for b > 0
    a = ds.tensor(np.array([0.0, 2.0]))
    b = ds.tensor(np.array([2.0, 2.0]), requires_grad=True)
    (a**b).sum().backward()
    assert_allclose(b.grad, [0.0, 4.0 * np.log(2.0)], rtol=1e-12)


def test_sqrt_gradient_at_zero_is_infinite():
    x = ds.tensor(np.array([0.0, 4.0]), requires_grad=True)
    with np.errstate(divide="ignore"):
        x.sqrt().sum().backward()
    assert x.grad[0] == np.inf
    assert x.grad[1] == 0.25


def test_gelu_values_match_exact_definition():
    from scipy.special import erf as sp_erf

    x = np.linspace(-4, 4, 17)
    out = F.gelu(ds.tensor(x)).data
    assert_allclose(out, 0.5 * x * (1 + sp_erf(x / np.sqrt(2))), rtol=1e-12, atol=1e-15)
