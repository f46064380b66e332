"""The softmax family and the other stability primitives, including huge logits."""

from __future__ import annotations

import autograd.numpy as anp
import numpy as np
import pytest
import scipy.special as sp
from autograd.scipy.special import expit
from autograd.scipy.special import logsumexp as ag_logsumexp
from numpy.testing import assert_allclose

import descend as ds
from descend.autodiff import functional as F
from descend.autodiff import ops

from .oracle import DTYPES, check_gradients, random_array


def ag_softmax(x, axis):
    return anp.exp(x - ag_logsumexp(x, axis=axis, keepdims=True))


def ag_log_softmax(x, axis):
    return x - ag_logsumexp(x, axis=axis, keepdims=True)


SOFTMAX_CASES = [((4,), -1), ((3, 5), -1), ((3, 5), 0), ((2, 3, 4), 1), ((2, 3, 4), -1)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("shape", "axis"), SOFTMAX_CASES)
@pytest.mark.parametrize("fn", [F.softmax, ops.softmax])
def test_softmax_gradients(fn, shape, axis, dtype):
    x = random_array(shape, dtype, rng=61)
    check_gradients(lambda t: fn(t, axis=axis), lambda a: ag_softmax(a, axis), [x])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("shape", "axis"), SOFTMAX_CASES)
@pytest.mark.parametrize("fn", [F.log_softmax, ops.log_softmax])
def test_log_softmax_gradients(fn, shape, axis, dtype):
    x = random_array(shape, dtype, rng=62)
    check_gradients(lambda t: fn(t, axis=axis), lambda a: ag_log_softmax(a, axis), [x])


def test_softmax_default_axis_is_last():
    x = random_array((3, 4), rng=63)
    assert_allclose(F.softmax(ds.tensor(x)).data, sp.softmax(x, axis=-1), rtol=1e-12)
    assert_allclose(F.log_softmax(ds.tensor(x)).data, sp.log_softmax(x, axis=-1), rtol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 2), (4, 3), (6, 10)])
def test_cross_entropy_gradients(shape, dtype):
    logits = random_array(shape, dtype, rng=64)
    targets = np.random.default_rng(65).integers(0, shape[1], size=shape[0])
    rows = np.arange(shape[0])
    check_gradients(
        lambda t: ops.cross_entropy_per_sample(t, targets),
        lambda x: ag_logsumexp(x, axis=1) - x[rows, targets],
        [logits],
    )


def test_cross_entropy_passes_grad_check_with_integer_targets():
    logits = random_array((4, 3), rng=66)
    targets = np.array([0, 2, 2, 1])
    assert ds.grad_check(ops.cross_entropy_per_sample, [logits, targets]) is True


def test_cross_entropy_gradient_is_softmax_minus_one_hot():
    logits = random_array((3, 4), rng=67)
    targets = np.array([3, 0, 3])
    x = ds.tensor(logits, requires_grad=True)
    ops.cross_entropy_per_sample(x, targets).sum().backward()
    assert_allclose(x.grad, sp.softmax(logits, axis=1) - np.eye(4)[targets], rtol=1e-12)


@pytest.mark.parametrize(
    "fn", [F.softmax, F.log_softmax, ops.logsumexp, F.softplus, F.sigmoid], ids=lambda f: f.__name__
)
def test_stability_primitives_pass_grad_check(fn):
    x = random_array((3, 4), rng=68)
    assert ds.grad_check(lambda t: fn(t) if fn is not ops.logsumexp else fn(t, axis=1), [x])


def test_probabilities_sum_to_one():
    x = random_array((2, 3, 5), rng=69) * 10
    for axis in (0, 1, 2, -1):
        assert_allclose(F.softmax(ds.tensor(x), axis=axis).data.sum(axis=axis), 1.0, rtol=1e-12)
        p = np.exp(F.log_softmax(ds.tensor(x), axis=axis).data)
        assert_allclose(p.sum(axis=axis), 1.0, rtol=1e-12)


# ------------------------------------------------------------------ logits of magnitude 1e3
HUGE = np.array(
    [
        [1000.0, -1000.0, 999.5, 0.0],
        [-1000.0, -1000.0, -999.0, -1001.0],
        [1000.0, 1000.0, 1000.0, 1000.0],
        [-3.0, 800.0, -900.0, 2.0],
    ]
)
HUGE_TARGETS = np.array([1, 2, 0, 0])
ROW_WEIGHTS = np.array([0.5, -1.0, 2.0, 1.5])
TABLE_WEIGHTS = np.random.default_rng(70).standard_normal(HUGE.shape)


def softmax_vjp(s: np.ndarray, w: np.ndarray) -> np.ndarray:
    return s * (w - (w * s).sum(axis=1, keepdims=True))


# name -> (descend, value reference, gradient reference given the weights, weights)
STABLE = {
    "logsumexp": (
        lambda t: ds.F.logsumexp(t, axis=1),
        sp.logsumexp(HUGE, axis=1),
        ROW_WEIGHTS[:, None] * sp.softmax(HUGE, axis=1),
        ROW_WEIGHTS,
    ),
    "softmax": (
        lambda t: F.softmax(t, axis=1),
        sp.softmax(HUGE, axis=1),
        softmax_vjp(sp.softmax(HUGE, axis=1), TABLE_WEIGHTS),
        TABLE_WEIGHTS,
    ),
    "log_softmax": (
        lambda t: F.log_softmax(t, axis=1),
        sp.log_softmax(HUGE, axis=1),
        TABLE_WEIGHTS - sp.softmax(HUGE, axis=1) * TABLE_WEIGHTS.sum(axis=1, keepdims=True),
        TABLE_WEIGHTS,
    ),
    "softplus": (
        F.softplus,
        np.logaddexp(0.0, HUGE),
        TABLE_WEIGHTS * sp.expit(HUGE),
        TABLE_WEIGHTS,
    ),
    "sigmoid": (
        F.sigmoid,
        sp.expit(HUGE),
        TABLE_WEIGHTS * sp.expit(HUGE) * sp.expit(-HUGE),
        TABLE_WEIGHTS,
    ),
    "cross_entropy": (
        lambda t: ops.cross_entropy_per_sample(t, HUGE_TARGETS),
        sp.logsumexp(HUGE, axis=1) - HUGE[np.arange(4), HUGE_TARGETS],
        ROW_WEIGHTS[:, None] * (sp.softmax(HUGE, axis=1) - np.eye(4)[HUGE_TARGETS]),
        ROW_WEIGHTS,
    ),
}


@pytest.mark.parametrize("name", sorted(STABLE))
def test_huge_inputs_match_careful_float64_reference(name):
    fn, value, gradient, weights = STABLE[name]
    x = ds.tensor(HUGE, requires_grad=True)
    # no overflow, no division by zero, no invalid operation anywhere (underflow to 0 is fine)
    with np.errstate(over="raise", divide="raise", invalid="raise", under="ignore"):
        out = fn(x)
        out.backward(grad=weights)
    assert np.all(np.isfinite(out.data))
    assert np.all(np.isfinite(x.grad))
    assert_allclose(out.data, value, rtol=1e-12, atol=1e-300)
    assert_allclose(x.grad, gradient, rtol=1e-9, atol=1e-300)


@pytest.mark.parametrize("name", sorted(STABLE))
def test_huge_float32_inputs_stay_finite_and_float32(name):
    fn, value, gradient, weights = STABLE[name]
    x = ds.tensor(HUGE.astype(np.float32), requires_grad=True)
    out = fn(x)
    out.backward(grad=weights)
    assert out.dtype == np.float32
    assert x.grad.dtype == np.float32
    assert np.all(np.isfinite(out.data))
    assert np.all(np.isfinite(x.grad))
    assert_allclose(out.data, value, rtol=1e-5, atol=1e-4)
    assert_allclose(x.grad, gradient, rtol=1e-4, atol=1e-4)


def test_sigmoid_saturates_exactly_without_overflow():
    x = ds.tensor(np.array([-1e4, -745.0, 0.0, 745.0, 1e4]), requires_grad=True)
    with np.errstate(over="raise"):
        s = F.sigmoid(x)
        s.sum().backward()
    assert_allclose(s.data, [0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-300)
    assert_allclose(x.grad, [0.0, 0.0, 0.25, 0.0, 0.0], atol=1e-300)


def test_sigmoid_keeps_relative_precision_in_the_left_tail():
    x = np.array([-20.0, -40.0, -80.0])
    t = ds.tensor(x, requires_grad=True)
    s = F.sigmoid(t)
    s.sum().backward()
    assert_allclose(s.data, sp.expit(x), rtol=1e-10)
    assert_allclose(t.grad, sp.expit(x) * sp.expit(-x), rtol=1e-10)


def test_softplus_keeps_relative_precision_in_the_left_tail():
    x = np.array([-20.0, -40.0, -80.0])
    t = ds.tensor(x, requires_grad=True)
    s = F.softplus(t)
    s.sum().backward()
    assert_allclose(s.data, np.log1p(np.exp(x)), rtol=1e-10)  # exp(x) is exact enough here
    assert_allclose(t.grad, sp.expit(x), rtol=1e-10)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_matches_autograd_on_moderate_inputs(dtype):
    x = np.linspace(-8, 8, 11).astype(dtype)
    check_gradients(F.sigmoid, expit, [x])


def test_logsumexp_of_all_minus_infinity_rows():
    x = np.array([[-np.inf, -np.inf], [0.0, -np.inf]])
    with np.errstate(divide="ignore"):  # log(0) = -inf is the answer here
        out = ds.F.logsumexp(ds.tensor(x), axis=1).data
    assert out[0] == -np.inf
    assert out[1] == 0.0


def test_activations_have_one_home():
    # ds.functional (ds.F) is their home; the top-level spellings warn and are the same
    assert ds.F is ds.functional
    for name in ds.MOVED_TO_FUNCTIONAL:
        assert name not in ds.__all__
        with pytest.warns(DeprecationWarning, match=f"descend.functional.{name}"):
            assert getattr(ds, name) is getattr(ds.functional, name)
