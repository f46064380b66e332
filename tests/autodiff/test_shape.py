"""Reshape, transpose, indexing, concatenate and stack: values move, gradients move back."""

from __future__ import annotations

import autograd.numpy as anp
import numpy as np
import pytest
from numpy.testing import assert_array_equal

import descend as ds
from descend.autodiff import ops

from .oracle import DTYPES, check_gradients, random_array

# name -> (input shape, descend, autograd)
RESHAPES = {
    "reshape -1": ((2, 3, 4), lambda x: x.reshape(-1), lambda x: anp.reshape(x, -1)),
    "reshape (4, -1)": ((2, 3, 4), lambda x: x.reshape(4, -1), lambda x: anp.reshape(x, (4, -1))),
    "reshape tuple": ((2, 3, 4), lambda x: x.reshape((6, 4)), lambda x: anp.reshape(x, (6, 4))),
    "reshape (-1, 1)": ((5,), lambda x: x.reshape(-1, 1), lambda x: anp.reshape(x, (-1, 1))),
    "reshape 0-d": ((1, 1), lambda x: x.reshape(()), lambda x: anp.reshape(x, ())),
    "flatten": ((2, 3, 4), lambda x: x.flatten(1), lambda x: anp.reshape(x, (2, 12))),
    "transpose()": ((2, 3, 4), lambda x: x.transpose(), anp.transpose),
    "transpose axes": (
        (2, 3, 4),
        lambda x: x.transpose(1, 2, 0),
        lambda x: anp.transpose(x, (1, 2, 0)),
    ),
    "transpose tuple": (
        (2, 3, 4),
        lambda x: x.transpose((2, 0, 1)),
        lambda x: anp.transpose(x, (2, 0, 1)),
    ),
    "transpose negative": (
        (2, 3, 4),
        lambda x: x.transpose(-1, 0, 1),
        lambda x: anp.transpose(x, (2, 0, 1)),
    ),
    ".T 2-D": ((3, 4), lambda x: x.T, lambda x: x.T),
    ".T 3-D": ((2, 3, 4), lambda x: x.T, lambda x: anp.transpose(x)),
    ".T 1-D": ((4,), lambda x: x.T, lambda x: x),
    "ops.transpose": ((3, 4), lambda x: ops.transpose(x, (1, 0)), lambda x: x.T),
    "ops.reshape": ((3, 4), lambda x: ops.reshape(x, (2, 6)), lambda x: anp.reshape(x, (2, 6))),
    "broadcast_to": (
        (3, 1),
        lambda x: ops.broadcast_to(x, (2, 3, 4)),
        lambda x: x * np.ones((2, 3, 4)),  # autograd's broadcast_to cannot add axes
    ),
    "astype float32": ((3,), lambda x: x.astype(np.float32) * 1, lambda x: x * 1),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(RESHAPES))
def test_reshape_and_transpose_gradients(name, dtype):
    shape, ds_fn, ag_fn = RESHAPES[name]
    x = random_array(shape, dtype, rng=21)
    if name == "astype float32":  # the output is float32 whatever goes in
        leaf = ds.tensor(x, requires_grad=True)
        out = ds_fn(leaf)
        assert out.dtype == np.float32
        out.backward(grad=np.array([1.0, 2.0, 3.0]))
        assert leaf.grad.dtype == dtype
        assert_array_equal(leaf.grad, [1.0, 2.0, 3.0])
        return
    check_gradients(ds_fn, ag_fn, [x])


MASK = np.array([[True, False, True, False], [False, False, True, True], [True, True, True, False]])

# name -> (index, for descend and autograd alike)
INDICES = {
    "int": 1,
    "negative int": -1,
    "slice": slice(1, 3),
    "step slice": (slice(None), slice(None, None, -2)),
    "int and slice": (0, slice(1, None)),
    "ellipsis": (Ellipsis, 2),
    "new axis": (None, slice(0, 2)),
    "int array": np.array([2, 0]),
    "repeated int array": np.array([0, 0, 1, 0]),
    "list": [2, 2, 1],
    "2-D int array": np.array([[0, 1], [1, 1]]),
    "mixed tuple": (np.array([0, 2, 2]), slice(1, 3)),
    "two int arrays": (np.array([0, 2, 0]), np.array([1, 3, 1])),
    "boolean mask": MASK,
    "boolean row mask": np.array([True, False, True]),
    "boolean mask and slice": (np.array([False, True, True]), slice(None, 2)),
    "list of bools": [True, True, False],
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(INDICES))
def test_indexing_gradients(name, dtype):
    index = INDICES[name]
    ag_index = np.asarray(index) if isinstance(index, list) else index
    x = random_array((3, 4), dtype, rng=22)
    check_gradients(lambda t: t[index], lambda a: a[ag_index], [x])


def test_repeated_indices_accumulate():
    x = ds.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[[0, 0, 1]].sum().backward()
    assert_array_equal(x.grad, [2.0, 1.0, 0.0])


def test_repeated_indices_accumulate_weighted_in_two_dimensions():
    x = ds.tensor(np.zeros((2, 3)), requires_grad=True)
    rows, cols = np.array([1, 1, 0, 1]), np.array([2, 2, 0, 2])
    x[rows, cols].backward(grad=np.array([1.0, 10.0, 100.0, 1000.0]))
    assert_array_equal(x.grad, [[100.0, 0, 0], [0, 0, 1011.0]])


def test_boolean_mask_from_a_comparison():
    x = ds.tensor(np.array([-1.0, 2.0, -3.0, 4.0]), requires_grad=True)
    picked = x[x > 0]
    assert_array_equal(picked.data, [2.0, 4.0])
    (picked * picked).sum().backward()
    assert_array_equal(x.grad, [0.0, 4.0, 0.0, 8.0])


def test_index_given_as_a_tensor():
    x = ds.tensor(np.array([5.0, 6.0, 7.0]), requires_grad=True)
    idx = ds.tensor(np.array([2, 2]))
    x[idx].sum().backward()
    assert_array_equal(x.grad, [0.0, 0.0, 2.0])


# name -> (shapes, axis)
JOINS = {
    "concatenate axis 0": ("concatenate", [(2, 3), (1, 3), (3, 3)], 0),
    "concatenate axis 1": ("concatenate", [(2, 1), (2, 4)], 1),
    "concatenate axis -1": ("concatenate", [(2, 2, 1), (2, 2, 3)], -1),
    "concatenate one": ("concatenate", [(4,)], 0),
    "stack axis 0": ("stack", [(2, 3), (2, 3), (2, 3)], 0),
    "stack axis 1": ("stack", [(2, 3), (2, 3)], 1),
    "stack axis -1": ("stack", [(2, 3), (2, 3)], -1),
    "stack 0-d": ("stack", [(), (), ()], 0),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(JOINS))
def test_concatenate_and_stack_gradients(name, dtype):
    fn_name, shapes, axis = JOINS[name]
    arrays = [random_array(s, dtype, rng=30 + i) for i, s in enumerate(shapes)]
    ds_join, ag_join = getattr(ds, fn_name), getattr(anp, fn_name)
    check_gradients(
        lambda *ts: ds_join(list(ts), axis=axis) * 1.0,
        lambda *xs: ag_join(list(xs), axis=axis) * 1.0,
        arrays,
    )


def test_concatenate_with_a_constant_array():
    x = ds.tensor(np.array([1.0, 2.0]), requires_grad=True)
    out = ds.concatenate([np.array([9.0]), x, x], axis=0)
    assert_array_equal(out.data, [9.0, 1.0, 2.0, 1.0, 2.0])
    out.backward(grad=np.array([1.0, 2.0, 3.0, 4.0, 5.0]))
    assert_array_equal(x.grad, [6.0, 8.0])


@pytest.mark.parametrize("name", sorted(set(RESHAPES) - {"astype float32"}))
def test_reshape_and_transpose_pass_grad_check(name):
    shape, ds_fn, _ = RESHAPES[name]
    assert ds.grad_check(lambda t: ds_fn(t) * 2.0, [random_array(shape, rng=23)]) is True


@pytest.mark.parametrize("name", sorted(INDICES))
def test_indexing_passes_grad_check(name):
    index = INDICES[name]
    assert ds.grad_check(lambda t: t[index] * 3.0, [random_array((3, 4), rng=24)]) is True


def test_reshape_view_gradient_is_a_copy_not_a_view():
    # a reshaped gradient arriving at a leaf must not alias another tensor's gradient
    x = ds.tensor(np.ones((2, 3)), requires_grad=True)
    g = np.arange(6.0)
    x.reshape(-1).backward(grad=g)
    g[:] = -1
    assert_array_equal(x.grad, np.arange(6.0).reshape(2, 3))
    assert not np.shares_memory(x.grad, g)


def test_concatenate_with_a_python_list_constant():
    x = ds.tensor(np.array([1.0, 2.0]), requires_grad=True)
    out = ds.concatenate([x, [5.0]], axis=0)
    assert_array_equal(out.data, [1.0, 2.0, 5.0])
    out.backward(grad=np.array([1.0, 2.0, 3.0]))
    assert_array_equal(x.grad, [1.0, 2.0])


def test_iterating_over_a_tensor_gives_differentiable_rows():
    x = ds.tensor(np.arange(6.0).reshape(3, 2), requires_grad=True)
    rows = list(x)
    assert len(rows) == 3
    assert_array_equal(rows[2].data, [4.0, 5.0])
    (rows[0] * 1.0 + rows[2] * 3.0).sum().backward()
    assert_array_equal(x.grad, [[1.0, 1.0], [0.0, 0.0], [3.0, 3.0]])
