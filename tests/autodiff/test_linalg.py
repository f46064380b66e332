"""Matrix products in every NumPy layout, and the fused linear layer."""

from __future__ import annotations

import autograd.numpy as anp
import numpy as np
import pytest
from numpy.testing import assert_allclose

import descend as ds
from descend.autodiff import ops

from .oracle import DTYPES, check_gradients, random_array

# name -> (shape of a, shape of b)
MATMUL_SHAPES = {
    "1-D @ 1-D": ((4,), (4,)),
    "2-D @ 2-D": ((3, 4), (4, 5)),
    "1-D @ 2-D": ((4,), (4, 5)),
    "2-D @ 1-D": ((3, 4), (4,)),
    "1-D @ 3-D": ((4,), (2, 4, 5)),
    "3-D @ 1-D": ((2, 3, 4), (4,)),
    "3-D @ 3-D": ((2, 3, 4), (2, 4, 5)),
    "3-D @ 2-D": ((2, 3, 4), (4, 5)),
    "2-D @ 3-D": ((3, 4), (2, 4, 5)),
    "batch 1 @ batch 2": ((1, 3, 4), (2, 4, 5)),
    "4-D broadcast batch": ((2, 1, 3, 4), (3, 4, 2)),
    "1 x 1": ((1, 1), (1, 1)),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(MATMUL_SHAPES))
def test_matmul_gradients(name, dtype):
    shape_a, shape_b = MATMUL_SHAPES[name]
    a = random_array(shape_a, dtype, rng=41)
    b = random_array(shape_b, dtype, rng=42)
    check_gradients(lambda x, y: x @ y, anp.matmul, [a, b])


@pytest.mark.parametrize("name", sorted(MATMUL_SHAPES))
def test_matmul_function_passes_grad_check(name):
    shape_a, shape_b = MATMUL_SHAPES[name]
    a, b = random_array(shape_a, rng=43), random_array(shape_b, rng=44)
    assert ds.grad_check(ds.matmul, [a, b]) is True


@pytest.mark.parametrize("name", sorted(MATMUL_SHAPES))
def test_matmul_shape_follows_numpy(name):
    shape_a, shape_b = MATMUL_SHAPES[name]
    a, b = np.ones(shape_a), np.ones(shape_b)
    assert (ds.tensor(a) @ ds.tensor(b)).shape == np.matmul(a, b).shape


def test_matmul_with_one_side_constant_leaves_it_alone():
    a = ds.tensor(random_array((3, 4), rng=45), requires_grad=True)
    b = random_array((4, 2), rng=46)
    (a @ b).sum().backward()
    assert_allclose(a.grad, np.ones((3, 2)) @ b.T, rtol=1e-12)
    w = ds.tensor(b, requires_grad=True)
    const = random_array((3, 4), rng=47)
    (const @ w).sum().backward()
    assert_allclose(w.grad, const.T @ np.ones((3, 2)), rtol=1e-12)


# name -> (shape of x, shape of weight, with bias)
LINEAR_SHAPES = {
    "2-D with bias": ((5, 3), (4, 3), True),
    "2-D without bias": ((5, 3), (4, 3), False),
    "3-D with bias": ((2, 5, 3), (4, 3), True),
    "4-D with bias": ((2, 2, 3, 3), (2, 3), True),
    "1-D with bias": ((3,), (4, 3), True),
    "one feature out": ((6, 2), (1, 2), True),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(LINEAR_SHAPES))
def test_linear_gradients(name, dtype):
    shape_x, shape_w, with_bias = LINEAR_SHAPES[name]
    x = random_array(shape_x, dtype, rng=48)
    w = random_array(shape_w, dtype, rng=49)
    if with_bias:
        b = random_array((shape_w[0],), dtype, rng=50)
        check_gradients(ops.linear, lambda x, w, b: anp.matmul(x, w.T) + b, [x, w, b])
    else:
        check_gradients(ops.linear, lambda x, w: anp.matmul(x, w.T), [x, w])


@pytest.mark.parametrize("name", sorted(LINEAR_SHAPES))
def test_linear_passes_grad_check(name):
    shape_x, shape_w, with_bias = LINEAR_SHAPES[name]
    arrays = [random_array(shape_x, rng=51), random_array(shape_w, rng=52)]
    if with_bias:
        arrays.append(random_array((shape_w[0],), rng=53))
    assert ds.grad_check(ops.linear, arrays) is True


def test_linear_input_without_grad_gets_none():
    x = ds.tensor(random_array((5, 3), rng=54))
    w = ds.tensor(random_array((4, 3), rng=55), requires_grad=True)
    b = ds.tensor(random_array((4,), rng=56), requires_grad=True)
    g = random_array((5, 4), rng=57)
    ops.linear(x, w, b).backward(grad=g)
    assert x.grad is None
    assert_allclose(w.grad, g.T @ x.data, rtol=1e-12)
    assert_allclose(b.grad, g.sum(axis=0), rtol=1e-12)


def test_linear_equals_unfused_expression():
    x, w, b = random_array((4, 3), rng=58), random_array((2, 3), rng=59), random_array((2,), rng=60)
    fused = ops.linear(ds.tensor(x), ds.tensor(w), ds.tensor(b)).data
    assert_allclose(fused, x @ w.T + b, rtol=1e-12)
