"""Reductions over every kind of axis, with and without keepdims."""

from __future__ import annotations

import autograd.numpy as anp
import numpy as np
import pytest
from numpy.testing import assert_allclose

import descend as ds
from descend.autodiff import functional as F
from descend.autodiff import ops

from .oracle import DTYPES, check_gradients, random_array

# (shape, axis): None, int, negative int, tuples (also unsorted and negative), 0-d input.
AXES = [
    ((2, 3, 4), None),
    ((2, 3, 4), 0),
    ((2, 3, 4), 1),
    ((2, 3, 4), -1),
    ((2, 3, 4), (0, 2)),
    ((2, 3, 4), (-1, 0)),
    ((2, 3, 4), (0, 1, 2)),
    ((3, 4), None),
    ((3, 4), -2),
    ((5,), 0),
    ((5,), None),
    ((1, 4), 0),
    ((), None),
]

# name -> (method call, autograd)
REDUCTIONS = {
    "sum": (lambda x, axis, k: x.sum(axis=axis, keepdims=k), anp.sum),
    "mean": (lambda x, axis, k: x.mean(axis=axis, keepdims=k), anp.mean),
    "max": (lambda x, axis, k: x.max(axis=axis, keepdims=k), anp.max),
    "min": (lambda x, axis, k: x.min(axis=axis, keepdims=k), anp.min),
    "logsumexp": (
        lambda x, axis, k: ds.F.logsumexp(x, axis=axis, keepdims=k),
        # the plain formula (inputs here are small, nothing overflows)
        lambda x, axis, keepdims: anp.log(anp.sum(anp.exp(x), axis=axis, keepdims=keepdims)),
    ),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize(("shape", "axis"), AXES)
@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_reduction_gradients(name, shape, axis, keepdims, dtype):
    ds_fn, ag_fn = REDUCTIONS[name]
    x = random_array(shape, dtype, rng=11)
    check_gradients(
        lambda t: ds_fn(t, axis, keepdims),
        lambda a: ag_fn(a, axis=axis, keepdims=keepdims),
        [x],
    )


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize(("shape", "axis"), AXES)
@pytest.mark.parametrize("name", ["sum", "mean", "max", "min"])
def test_reduction_shape_follows_numpy(name, shape, axis, keepdims):
    x = random_array(shape, rng=12)
    out = getattr(ds.tensor(x), name)(axis=axis, keepdims=keepdims)
    expected = getattr(np, name)(x, axis=axis, keepdims=keepdims)
    assert out.shape == np.shape(expected)
    assert_allclose(out.data, expected, rtol=1e-12)


@pytest.mark.parametrize(("shape", "axis"), [((2, 3, 4), (0, 2)), ((3, 4), -1), ((5,), None)])
@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_reduction_passes_grad_check(name, shape, axis):
    ds_fn, _ = REDUCTIONS[name]
    x = random_array(shape, rng=13)
    assert ds.grad_check(lambda t: ds_fn(t, axis, False), [x]) is True


def test_functional_and_ops_logsumexp_agree_with_method_free_form():
    x = random_array((3, 4), rng=14)
    expected = np.log(np.exp(x).sum(axis=1))
    for fn in (F.logsumexp, ops.logsumexp):
        assert_allclose(fn(ds.tensor(x), axis=1).data, expected, rtol=1e-12)


def test_sum_gradient_is_all_ones_and_mean_is_one_over_n():
    x = ds.tensor(np.zeros((2, 5)), requires_grad=True)
    x.sum().backward()
    assert_allclose(x.grad, np.ones((2, 5)))
    x.grad = None
    x.mean(axis=1).sum().backward()
    assert_allclose(x.grad, np.full((2, 5), 0.2))


def test_max_gradient_goes_to_the_argmax_only():
    x = ds.tensor(np.array([[1.0, 7.0, 3.0], [9.0, 2.0, 4.0]]), requires_grad=True)
    x.max(axis=1).backward(grad=np.array([10.0, 20.0]))
    assert_allclose(x.grad, [[0, 10, 0], [20, 0, 0]])
