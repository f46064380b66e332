"""Kinks are decisions (API.md): each stated subgradient asserted exactly."""

from __future__ import annotations

import autograd.numpy as anp
import numpy as np
import pytest
from numpy.testing import assert_array_equal

import descend as ds
from descend.autodiff import functional as F
from descend.autodiff import ops

from .oracle import DTYPES, check_gradients, random_array


def grad_of(fn, values, dtype=np.float64):
    """The gradient of fn(x).sum() at x = values."""
    x = ds.tensor(np.array(values, dtype=dtype), requires_grad=True)
    fn(x).sum().backward()
    return x.grad


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_derivative_at_zero_is_zero(dtype):
    assert_array_equal(grad_of(lambda x: x.relu(), [-1.0, 0.0, 2.0], dtype), [0.0, 0.0, 1.0])
    assert_array_equal(grad_of(F.relu, [0.0, -0.0], dtype), [0.0, 0.0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_abs_derivative_at_zero_is_zero(dtype):
    assert_array_equal(grad_of(lambda x: x.abs(), [-2.0, 0.0, 3.0], dtype), [-1.0, 0.0, 1.0])
    assert_array_equal(grad_of(ds.absolute, [-0.0], dtype), [0.0])


def test_maximum_tie_gives_each_side_half():
    a = ds.tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    b = ds.tensor(np.array([1.0, 5.0, 3.0]), requires_grad=True)
    ds.maximum(a, b).backward(grad=np.array([2.0, 4.0, 6.0]))
    assert_array_equal(a.grad, [1.0, 0.0, 3.0])
    assert_array_equal(b.grad, [1.0, 4.0, 3.0])


def test_minimum_tie_gives_each_side_half():
    a = ds.tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    b = ds.tensor(np.array([1.0, 5.0, 3.0]), requires_grad=True)
    ds.minimum(a, b).backward(grad=np.array([2.0, 4.0, 6.0]))
    assert_array_equal(a.grad, [1.0, 4.0, 3.0])
    assert_array_equal(b.grad, [1.0, 0.0, 3.0])


def test_maximum_tie_with_a_broadcast_scalar_sums_the_halves():
    x = ds.tensor(np.array([0.0, -1.0, 0.0, 2.0]), requires_grad=True)
    floor = ds.tensor(np.array(0.0), requires_grad=True)
    ds.maximum(x, floor).sum().backward()
    assert_array_equal(x.grad, [0.5, 0.0, 0.5, 1.0])
    assert floor.grad == 0.5 + 1.0 + 0.5 + 0.0


def test_maximum_tie_with_a_python_number():
    assert_array_equal(grad_of(lambda x: ds.maximum(x, 0.0), [0.0, 1.0, -1.0]), [0.5, 1.0, 0.0])
    assert_array_equal(grad_of(lambda x: ds.minimum(1.0, x), [1.0, 2.0, -1.0]), [0.5, 0.0, 1.0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_reduction_ties_share_equally(dtype):
    assert_array_equal(grad_of(lambda x: x.max(), [1.0, 3.0, 3.0], dtype), [0.0, 0.5, 0.5])


@pytest.mark.parametrize("dtype", DTYPES)
def test_min_reduction_ties_share_equally(dtype):
    assert_array_equal(grad_of(lambda x: x.min(), [2.0, 1.0, 1.0, 5.0], dtype), [0, 0.5, 0.5, 0])


def test_max_reduction_ties_per_row():
    got = grad_of(lambda x: x.max(axis=1), [[1.0, 3.0, 3.0], [4.0, 4.0, 4.0], [0.0, 2.0, 1.0]])
    third = 1.0 / 3.0
    assert_array_equal(got, [[0.0, 0.5, 0.5], [third, third, third], [0.0, 1.0, 0.0]])


def test_max_reduction_ties_across_a_whole_matrix():
    got = grad_of(lambda x: x.max(), [[5.0, 1.0], [5.0, 5.0]])
    third = 1.0 / 3.0
    assert_array_equal(got, [[third, 0.0], [third, third]])


def test_min_reduction_ties_over_a_tuple_of_axes_keepdims():
    values = np.array([[[0.0, 1.0], [0.0, 3.0]], [[2.0, 2.0], [4.0, 2.0]]])
    got = grad_of(lambda x: x.min(axis=(1, 2), keepdims=True), values)
    assert_array_equal(got, [[[0.5, 0.0], [0.5, 0.0]], [[1 / 3, 1 / 3], [0.0, 1 / 3]]])


@pytest.mark.parametrize("dtype", DTYPES)
def test_clip_gradient_is_one_at_both_ends(dtype):
    #                     below  lo   inside  hi   above
    values = np.array([-2.0, -1.0, 0.5, 1.0, 3.0])
    assert_array_equal(grad_of(lambda x: x.clip(-1.0, 1.0), values, dtype), [0, 1, 1, 1, 0])


def test_clip_with_only_a_lower_end():
    got = grad_of(lambda x: x.clip(lo=0.0), [-1.0, 0.0, 1e6])
    assert_array_equal(got, [0.0, 1.0, 1.0])


def test_clip_with_only_an_upper_end():
    got = grad_of(lambda x: x.clip(None, 2.0), [-1e6, 2.0, 2.5])
    assert_array_equal(got, [1.0, 1.0, 0.0])


def test_clip_with_equal_ends_passes_gradient_at_that_point():
    assert_array_equal(grad_of(lambda x: ds.clip(x, 1.0, 1.0), [0.0, 1.0, 2.0]), [0, 1, 0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_leaky_relu_slope_at_zero_is_the_negative_slope(dtype):
    got = grad_of(lambda x: F.leaky_relu(x, 0.25), [-2.0, 0.0, 3.0], dtype)
    assert_array_equal(got, np.array([0.25, 0.25, 1.0], dtype=dtype))
    out = F.leaky_relu(ds.tensor(np.array([-2.0, 0.0, 3.0], dtype=dtype)), 0.25).data
    assert_array_equal(out, [-0.5, 0.0, 3.0])


def test_leaky_relu_default_slope():
    assert_array_equal(grad_of(ops.leaky_relu, [-1.0, 0.0, 1.0]), [0.01, 0.01, 1.0])


def test_where_routes_the_gradient_by_the_condition():
    a = ds.tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    b = ds.tensor(np.array([10.0, 20.0, 30.0]), requires_grad=True)
    cond = np.array([True, False, True])
    out = ds.where(cond, a, b)
    assert_array_equal(out.data, [1.0, 20.0, 3.0])
    out.backward(grad=np.array([5.0, 6.0, 7.0]))
    assert_array_equal(a.grad, [5.0, 0.0, 7.0])
    assert_array_equal(b.grad, [0.0, 6.0, 0.0])


# name -> (condition shape, a shape, b shape)
WHERE_SHAPES = {
    "same": ((3, 4), (3, 4), (3, 4)),
    "broadcast a": ((3, 4), (4,), (3, 4)),
    "broadcast b over rows": ((3, 4), (3, 4), (3, 1)),
    "condition broadcast": ((4,), (3, 4), (3, 4)),
    "condition widest": ((2, 3, 4), (4,), ()),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(WHERE_SHAPES))
def test_where_gradients(name, dtype):
    shape_c, shape_a, shape_b = WHERE_SHAPES[name]
    cond = np.random.default_rng(81).random(shape_c) > 0.5
    a, b = random_array(shape_a, dtype, rng=82), random_array(shape_b, dtype, rng=83)
    # autograd's where does not undo broadcasting: broadcast by a product with ones first
    ones = np.ones(np.broadcast_shapes(shape_c, shape_a, shape_b))
    check_gradients(
        lambda x, y: ds.where(cond, x, y),
        lambda x, y: anp.where(cond, x * ones, y * ones),
        [a, b],
    )


def test_where_accepts_a_tensor_condition_and_a_constant_branch():
    x = ds.tensor(np.array([-1.0, 2.0]), requires_grad=True)
    out = ds.where(ds.tensor(np.array([True, False])), 0.0, x)
    out.sum().backward()
    assert_array_equal(out.data, [0.0, 2.0])
    assert_array_equal(x.grad, [0.0, 1.0])


def test_class_mask_marks_each_rows_class_and_takes_no_gradient():
    mask = ops.class_mask(np.array([2, 0, 1, 2]), 3)
    assert mask.dtype == bool and not mask.requires_grad
    assert_array_equal(mask.data, np.eye(3, dtype=bool)[[2, 0, 1, 2]])
