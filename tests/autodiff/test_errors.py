"""Bad input fails early, with the right error class and a message naming the problem."""

from __future__ import annotations

import re

import autograd.numpy as anp
import numpy as np
import pytest
from numpy.testing import assert_array_equal

import descend as ds
from descend.autodiff import functional as F
from descend.autodiff import ops
from descend.errors import DescendError, DTypeError, GradientError, ShapeError

from .oracle import check_gradients


def test_error_classes_refine_the_builtins():
    assert issubclass(ShapeError, ValueError) and issubclass(ShapeError, DescendError)
    assert issubclass(DTypeError, TypeError) and issubclass(DTypeError, DescendError)
    assert issubclass(GradientError, RuntimeError) and issubclass(GradientError, DescendError)


# name -> (operation, shape of a, shape of b)
SHAPE_MISMATCHES = {
    "add": (lambda a, b: a + b, (3, 4), (5,)),
    "sub": (lambda a, b: a - b, (3, 4), (3, 2)),
    "mul": (lambda a, b: a * b, (2, 3, 4), (3, 3)),
    "div": (lambda a, b: a / b, (4,), (3,)),
    "pow": (lambda a, b: a**b, (2, 2), (3,)),
    "maximum": (ds.maximum, (3, 4), (5,)),
    "minimum": (ds.minimum, (3, 4), (2, 4)),
    "where": (lambda a, b: ds.where(np.ones((3, 4), bool), a, b), (3, 4), (5,)),
    "ndarray + tensor": (lambda a, b: a.data + b, (3, 4), (5,)),
    "matmul 2-D": (lambda a, b: a @ b, (3, 4), (5, 6)),
    "matmul 1-D": (lambda a, b: a @ b, (3,), (4,)),
    "matmul 1-D @ 2-D": (lambda a, b: a @ b, (3,), (4, 2)),
    "matmul batch": (lambda a, b: a @ b, (2, 3, 4), (3, 4, 5)),
    "matmul ndarray @ tensor": (lambda a, b: a.data @ b, (2, 3), (2, 3)),
    "linear": (lambda a, b: ops.linear(a, b), (5, 3), (4, 2)),
}


@pytest.mark.parametrize("name", sorted(SHAPE_MISMATCHES))
def test_shape_mismatch_names_both_shapes(name):
    op, shape_a, shape_b = SHAPE_MISMATCHES[name]
    a = ds.tensor(np.ones(shape_a), requires_grad=True)
    b = ds.tensor(np.ones(shape_b), requires_grad=True)
    with pytest.raises(ShapeError) as info:
        op(a, b)
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert str(shape_a) in message, message
    assert str(shape_b) in message, message


def test_matmul_with_a_0d_operand_raises_shape_error():
    with pytest.raises(ShapeError, match=re.escape("(3,)")):
        ds.tensor(2.0) @ ds.tensor(np.ones(3))


# ------------------------------------------------------------------ backward
def test_backward_of_a_non_scalar_without_grad_says_to_pass_grad():
    x = ds.tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(GradientError, match="grad") as info:
        (x * 2).backward()
    assert "(2, 3)" in str(info.value)
    assert x.grad is None


def test_backward_of_a_one_element_non_scalar_needs_no_grad():
    x = ds.tensor(np.array([[3.0]]), requires_grad=True)
    (x * x).backward()
    assert_array_equal(x.grad, [[6.0]])


def test_backward_on_a_tensor_without_grad_says_so():
    t = ds.tensor([1.0, 2.0]).sum()
    with pytest.raises(GradientError, match="does not require grad"):
        t.backward()


@pytest.mark.parametrize("grad_shape", [(3,), (2, 1), (), (3, 2), (1, 2, 3)])
def test_backward_with_a_grad_of_the_wrong_shape(grad_shape):
    x = ds.tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(ShapeError) as info:
        (x * 2).backward(grad=np.ones(grad_shape))
    assert str(grad_shape) in str(info.value)
    assert "(2, 3)" in str(info.value)
    assert x.grad is None


def test_requires_grad_cannot_be_turned_off_on_a_non_leaf():
    y = ds.tensor([1.0], requires_grad=True) * 2
    with pytest.raises(GradientError, match="detach"):
        y.requires_grad_(False)


# ------------------------------------------------------------------ axes and shapes
# name -> (operation on a (2, 3) tensor, error class, words the message must hold)
BAD_ARGUMENTS = {
    "sum axis 2": (lambda x: x.sum(axis=2), ShapeError, ["axis", "2"]),
    "mean axis -3": (lambda x: x.mean(axis=-3), ShapeError, ["axis", "-3"]),
    "max axis (0, 5)": (lambda x: x.max(axis=(0, 5)), ShapeError, ["axis", "5"]),
    "min repeated axis": (lambda x: x.min(axis=(1, -1)), ShapeError, ["axis"]),
    "logsumexp axis 3": (lambda x: ds.F.logsumexp(x, axis=3), ShapeError, ["axis", "3"]),
    "softmax axis 4": (lambda x: F.softmax(x, axis=4), ValueError, ["axis", "4"]),
    "reshape to 4": (lambda x: x.reshape(4), ShapeError, ["(2, 3)", "(4,)"]),
    "reshape two -1": (lambda x: x.reshape(-1, -1), ShapeError, ["(2, 3)", "(-1, -1)"]),
    "reshape -1 not dividing": (lambda x: x.reshape(4, -1), ShapeError, ["(2, 3)", "(4, -1)"]),
    "transpose repeated": (lambda x: x.transpose(0, 0), ShapeError, ["(0, 0)"]),
    "transpose too few": (lambda x: x.transpose(1), ShapeError, ["(1,)"]),
    "index out of range": (lambda x: x[5], IndexError, ["5", "(2, 3)"]),
    "integer index out of range": (lambda x: x[[0, 2]], IndexError, ["(2, 3)"]),
    "item of six": (lambda x: x.item(), ShapeError, ["(2, 3)"]),
    "truth value": (lambda x: bool(x), ShapeError, ["(2, 3)"]),
    "concatenate ranks": (
        lambda x: ds.concatenate([x, ds.tensor(np.ones(3))]),
        ShapeError,
        ["(2, 3)", "(3,)"],
    ),
    "concatenate sizes": (
        lambda x: ds.concatenate([x, ds.tensor(np.ones((2, 4)))], axis=0),
        ShapeError,
        ["(2, 3)", "(2, 4)"],
    ),
    "concatenate axis": (lambda x: ds.concatenate([x, x], axis=2), ShapeError, ["axis", "2"]),
    "concatenate nothing": (lambda x: ds.concatenate([]), ValueError, ["concatenate"]),
    "stack shapes": (
        lambda x: ds.stack([x, ds.tensor(np.ones((3, 2)))]),
        ShapeError,
        ["(2, 3)", "(3, 2)"],
    ),
    "stack axis": (lambda x: ds.stack([x, x], axis=3), ShapeError, ["axis", "3"]),
    "stack nothing": (lambda x: ds.stack([]), ValueError, ["stack"]),
    "clip lo > hi": (lambda x: x.clip(2.0, 1.0), ValueError, ["lo", "hi", "2.0", "1.0"]),
    "clip neither": (lambda x: x.clip(), ValueError, ["lo", "hi"]),
    "max of empty": (lambda x: x[:0].max(), ShapeError, ["empty"]),
}


@pytest.mark.parametrize("name", sorted(BAD_ARGUMENTS))
def test_bad_arguments_raise_with_a_clear_message(name):
    op, error, words = BAD_ARGUMENTS[name]
    x = ds.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    with pytest.raises(error) as info:
        op(x)
    for word in words:
        assert word in str(info.value), f"{word!r} not in {str(info.value)!r}"


# name -> (logits shape, targets, error class, words)
BAD_TARGETS = {
    "float targets": ((3, 4), np.array([0.0, 1.0, 2.0]), DTypeError, ["float64"]),
    "target too large": ((3, 4), np.array([0, 4, 1]), ValueError, ["4", "classes"]),
    "negative target": ((3, 4), np.array([0, -1, 1]), ValueError, ["-1"]),
    "too few targets": ((3, 4), np.array([0, 1]), ShapeError, ["(3, 4)", "(2,)"]),
    "1-D logits": ((4,), np.array([1]), ShapeError, ["(4,)"]),
}


@pytest.mark.parametrize("name", sorted(BAD_TARGETS))
def test_cross_entropy_rejects_bad_targets(name):
    shape, targets, error, words = BAD_TARGETS[name]
    logits = ds.tensor(np.zeros(shape), requires_grad=True)
    with pytest.raises(error) as info:
        ops.cross_entropy_per_sample(logits, targets)
    for word in words:
        assert word in str(info.value), f"{word!r} not in {str(info.value)!r}"


# ------------------------------------------------------------------ NaN is propagated
def test_log_of_a_negative_number_is_nan_and_its_gradient_follows_the_formula():
    x = ds.tensor(np.array([-1.0, 4.0]), requires_grad=True)
    with np.errstate(invalid="ignore"):
        y = x.log()
    assert np.isnan(y.data[0])
    assert y.data[1] == np.log(4.0)
    (y * 2.0).sum().backward()  # d/dx 2 log x = 2 / x, finite even where log is NaN
    assert_array_equal(x.grad, [-2.0, 0.5])


# name -> (descend, autograd, input): NaN flows through the forward and the backward
NAN_CASES = {
    "log(x)**2 at -1": (lambda x: x.log() ** 2, lambda x: anp.log(x) ** 2, [-1.0, 2.0]),
    "sqrt at -4": (lambda x: x.sqrt(), anp.sqrt, [-4.0, 4.0]),
    "exp(log(x)) at -1": (lambda x: x.log().exp(), lambda x: anp.exp(anp.log(x)), [-1.0, 3.0]),
    "NaN input": (lambda x: x * x, lambda x: x * x, [np.nan, 1.0]),
    "NaN constant": (
        lambda x: x * np.array([np.nan, 2.0]),
        lambda x: x * np.array([np.nan, 2.0]),
        [1.0, 1.0],
    ),
    "NaN through tanh": (lambda x: x.tanh() * 3, lambda x: anp.tanh(x) * 3, [np.nan, 0.5]),
    "NaN through sum": (lambda x: x.sum() * x, lambda x: anp.sum(x) * x, [np.nan, 0.5]),
}


@pytest.mark.parametrize("name", sorted(NAN_CASES))
def test_nan_is_propagated_not_replaced(name):
    ds_fn, ag_fn, values = NAN_CASES[name]
    x = np.array(values)
    with np.errstate(invalid="ignore"):
        out = ds_fn(ds.tensor(x)).data
        assert np.isnan(out).any()
        # autograd agrees, NaN for NaN (assert_allclose treats NaN as equal); differences of
        # a weighted sum holding a NaN are NaN everywhere, so they cannot serve here
        check_gradients(ds_fn, ag_fn, [x], finite_differences=False)
        leaf = ds.tensor(x, requires_grad=True)
        ds_fn(leaf).sum().backward()
    assert np.isnan(leaf.grad).any()


def test_non_integer_axis_is_named_in_the_error():
    x = ds.tensor(np.ones((2, 3)))
    with pytest.raises(TypeError, match="axis"):
        x.sum(axis=1.5)
