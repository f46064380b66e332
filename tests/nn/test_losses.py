"""Losses against PyTorch's definitions written out in NumPy (float64), their gradients
against HIPS autograd and central differences, stability, kinks and input validation."""

from __future__ import annotations

import autograd.numpy as anp
import numpy as np
import pytest
from autograd import grad
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import logsumexp

import descend as ds
from descend import nn
from descend.errors import ConfigError, DataError, DTypeError, ShapeError

REDUCTIONS = ("mean", "sum", "none")


# ------------------------------------------------------------------ references (NumPy)
def np_cross_entropy(x, y):
    return logsumexp(x, axis=1) - x[np.arange(len(y)), y]


def np_mse(x, t):
    return (x - t) ** 2


def np_l1(x, t):
    return np.abs(x - t)


def np_huber(x, t, delta=1.0):
    d = np.abs(x - t)
    return np.where(d < delta, 0.5 * d**2, delta * (d - 0.5 * delta))


def np_bce_logits(x, y):
    p = 1.0 / (1.0 + np.exp(-x))
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def np_hinge_binary(s, y):
    return np.maximum(0.0, 1.0 - y * s)


def np_hinge_multiclass(s, y):
    out = np.empty(len(y))
    for i, label in enumerate(y):
        others = [s[i, j] for j in range(s.shape[1]) if j != label]
        out[i] = max(0.0, 1.0 + max(others) - s[i, label])
    return out


# ------------------------------------------------------------------ references (autograd)
def ag_cross_entropy(x, y):
    m = anp.max(x, axis=1, keepdims=True)
    lse = anp.log(anp.sum(anp.exp(x - m), axis=1)) + m[:, 0]
    return lse - x[np.arange(len(y)), y]


def ag_mse(x, t):
    return (x - t) ** 2


def ag_l1(x, t):
    return anp.abs(x - t)


def ag_huber(x, t, delta=1.0):
    d = anp.abs(x - t)
    return anp.where(d < delta, 0.5 * d**2, delta * (d - 0.5 * delta))


def ag_bce_logits(x, y):
    return anp.logaddexp(0.0, x) - x * y


def ag_hinge_binary(s, y):
    return anp.maximum(0.0, 1.0 - y * s)


def ag_hinge_multiclass(s, y):
    true = s[np.arange(len(y)), y]
    mask = np.zeros(s.shape, dtype=bool)
    mask[np.arange(len(y)), y] = True
    runner_up = anp.max(anp.where(mask, -np.inf, s), axis=1)
    return anp.maximum(0.0, 1.0 + runner_up - true)


# ------------------------------------------------------------------ inputs, away from kinks
def _away(arr, lo=0.05):
    """Push values at least ``lo`` away from 0 (kinks of abs and relu)."""
    return np.where(np.abs(arr) < lo, np.sign(arr + 1e-12) * lo + arr, arr)


def inputs_regression(rng):
    x = rng.standard_normal((5, 3))
    t = x + _away(rng.standard_normal((5, 3)) * 1.5)  # |x - t| spans both Huber branches
    return x, t


def inputs_classes(rng):
    return rng.standard_normal((6, 4)) * 2, rng.integers(0, 4, size=6)


def inputs_bce(rng):
    return rng.standard_normal((4, 3)) * 2, rng.uniform(0, 1, size=(4, 3))


def inputs_hinge_binary(rng):
    y = rng.choice([-1.0, 1.0], size=8)
    margins = 1.0 + _away(rng.uniform(-1.5, 1.5, size=8))  # y * s, at least 0.05 off 1
    return y * margins, y


def inputs_hinge_multiclass(rng):
    while True:
        s = rng.standard_normal((6, 4))
        y = rng.integers(0, 4, size=6)
        viol = np_hinge_multiclass(s, y)
        others = np.where(np.eye(4, dtype=bool)[y], -np.inf, s)
        top2 = np.sort(others, axis=1)[:, -2:]
        # away from the margin and from ties between runner-up scores
        if np.all(np.abs(1 + np.max(others, axis=1) - s[np.arange(6), y]) > 0.05) and np.all(
            top2[:, 1] - top2[:, 0] > 0.05
        ):
            assert np.all(viol >= 0)
            return s, y


# name -> (descend function, NumPy reference, autograd reference, inputs, target is data)
LOSSES = {
    "cross_entropy": (nn.cross_entropy, np_cross_entropy, ag_cross_entropy, inputs_classes),
    "mse_loss": (nn.mse_loss, np_mse, ag_mse, inputs_regression),
    "l1_loss": (nn.l1_loss, np_l1, ag_l1, inputs_regression),
    "huber_loss": (nn.huber_loss, np_huber, ag_huber, inputs_regression),
    "huber_loss delta=0.5": (
        lambda x, t, reduction="mean": nn.huber_loss(x, t, delta=0.5, reduction=reduction),
        lambda x, t: np_huber(x, t, 0.5),
        lambda x, t: ag_huber(x, t, 0.5),
        inputs_regression,
    ),
    "binary_cross_entropy_with_logits": (
        nn.binary_cross_entropy_with_logits,
        np_bce_logits,
        ag_bce_logits,
        inputs_bce,
    ),
    "hinge_loss binary": (nn.hinge_loss, np_hinge_binary, ag_hinge_binary, inputs_hinge_binary),
    "hinge_loss multiclass": (
        nn.hinge_loss,
        np_hinge_multiclass,
        ag_hinge_multiclass,
        inputs_hinge_multiclass,
    ),
}


def _reduce(values, reduction):
    if reduction == "mean":
        return np.mean(values)
    if reduction == "sum":
        return np.sum(values)
    return values


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_values_match_the_numpy_definition(name, reduction):
    fn, reference, _, make = LOSSES[name]
    x, t = make(np.random.default_rng(1))
    got = fn(ds.tensor(x), t, reduction=reduction)
    expected = _reduce(reference(x, t), reduction)
    assert got.shape == np.shape(expected)
    assert got.dtype == np.float64
    assert_allclose(got.data, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_gradients_match_autograd(name, reduction):
    fn, _, ag_reference, make = LOSSES[name]
    x, t = make(np.random.default_rng(2))
    weights = np.random.default_rng(3).standard_normal(np.shape(ag_reference(x, t)))

    def ag_scalar(a):
        per = ag_reference(a, t)
        if reduction == "mean":
            return anp.mean(per)
        if reduction == "sum":
            return anp.sum(per)
        return anp.sum(per * weights)

    xt = ds.tensor(x, requires_grad=True)
    out = fn(xt, t, reduction=reduction)
    if reduction == "none":
        out.backward(weights)
    else:
        out.backward()
    assert_allclose(xt.grad, grad(ag_scalar)(x), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_gradients_pass_grad_check(name, reduction):
    fn, _, _, make = LOSSES[name]
    x, t = make(np.random.default_rng(4))
    assert ds.grad_check(lambda a: fn(a, t, reduction=reduction), [x])


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_float32_inputs_give_float32_losses_and_gradients(name):
    fn, reference, _, make = LOSSES[name]
    x, t = make(np.random.default_rng(5))
    xt = ds.tensor(x.astype(np.float32), requires_grad=True)
    target = t.astype(np.float32) if t.dtype.kind == "f" else t
    loss = fn(xt, target)
    assert loss.dtype == np.float32
    loss.backward()
    assert xt.grad.dtype == np.float32
    assert_allclose(loss.item(), np.mean(reference(x, t)), rtol=1e-5)


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "huber_loss"])
def test_regression_losses_differentiate_the_target_too(name):
    fn, _, ag_reference, make = LOSSES[name]
    x, t = make(np.random.default_rng(6))
    tt = ds.tensor(t, requires_grad=True)
    fn(ds.tensor(x), tt).backward()
    expected = grad(lambda b: anp.mean(ag_reference(x, b)))(t)
    assert_allclose(tt.grad, expected, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------ stability
def test_cross_entropy_is_stable_for_logits_of_magnitude_1e3():
    logits = np.array([[1000.0, -1000.0, 500.0], [-1000.0, 1000.0, 0.0], [1e3, 1e3, -1e3]])
    targets = np.array([2, 1, 0])
    expected = logsumexp(logits, axis=1) - logits[np.arange(3), targets]
    # float32 resolves numbers near 1e3 to ~6e-5, so its absolute error is of that order
    for dtype, atol in ((np.float32, 1e-4), (np.float64, 1e-12)):
        x = ds.tensor(logits.astype(dtype), requires_grad=True)
        per = nn.cross_entropy(x, targets, reduction="none")
        assert np.all(np.isfinite(per.data))
        assert_allclose(per.data, expected, rtol=0, atol=atol)
        per.sum().backward()
        assert np.all(np.isfinite(x.grad))
        softmax = np.exp(logits - logsumexp(logits, axis=1, keepdims=True))
        assert_allclose(x.grad, softmax - np.eye(3)[targets], rtol=0, atol=max(atol, 1e-12) / 2)
    assert_allclose(expected, [500.0, 0.0, np.log(2.0)])


def test_bce_with_logits_is_stable_for_large_logits():
    logits = np.array([1000.0, -1000.0, 50.0, -50.0], dtype=np.float32)
    targets = np.array([0.0, 1.0, 1.0, 0.0], dtype=np.float32)
    x = ds.tensor(logits, requires_grad=True)
    per = nn.binary_cross_entropy_with_logits(x, targets, reduction="none")
    assert_allclose(
        per.data, np.logaddexp(0.0, logits.astype(np.float64)) - logits * targets, rtol=1e-6
    )
    assert_allclose(per.data[:2], [1000.0, 1000.0])
    per.sum().backward()
    assert_allclose(x.grad, [1.0, -1.0, 0.0, 0.0], atol=1e-6)


# ------------------------------------------------------------------ kinks
def test_binary_hinge_has_subgradient_zero_at_the_margin():
    s = ds.tensor(np.array([1.0, -1.0, 0.5, 2.0]), requires_grad=True)
    y = np.array([1.0, -1.0, 1.0, 1.0])  # margins: exactly 1, exactly 1, 0.5, 2
    loss = nn.hinge_loss(s, y, reduction="sum")
    assert loss.item() == 0.5
    loss.backward()
    assert_array_equal(s.grad, [0.0, 0.0, -1.0, 0.0])


def test_multiclass_hinge_has_subgradient_zero_at_the_margin():
    s = ds.tensor(np.array([[2.0, 1.0, 0.5], [0.0, 3.0, 2.0]]), requires_grad=True)
    y = np.array([0, 1])  # 1 + 1.0 - 2.0 = 0 and 1 + 2.0 - 3.0 = 0: both on the margin
    loss = nn.hinge_loss(s, y, reduction="sum")
    assert loss.item() == 0.0
    loss.backward()
    assert_array_equal(s.grad, np.zeros((2, 3)))


def test_multiclass_hinge_tied_runner_ups_share_the_gradient():
    s = ds.tensor(np.array([[0.0, 1.0, 1.0, -2.0]]), requires_grad=True)
    loss = nn.hinge_loss(s, np.array([0]), reduction="sum")
    assert loss.item() == 2.0
    loss.backward()
    assert_array_equal(s.grad, [[-1.0, 0.5, 0.5, 0.0]])


def test_l1_loss_has_subgradient_zero_where_prediction_equals_target():
    x = ds.tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    nn.l1_loss(x, np.array([1.0, 0.0, 5.0]), reduction="sum").backward()
    assert_array_equal(x.grad, [0.0, 1.0, -1.0])


def test_huber_gradient_is_the_clipped_residual():
    x = ds.tensor(np.array([0.0, 0.3, -2.0, 5.0, 1.0]), requires_grad=True)
    nn.huber_loss(x, np.zeros(5), delta=1.0, reduction="sum").backward()
    assert_allclose(x.grad, [0.0, 0.3, -1.0, 1.0, 1.0])


# ------------------------------------------------------------------ penalties
def test_l2_penalty_is_half_the_squared_norm_with_gradient_w():
    a = ds.tensor(np.array([[1.0, -2.0], [0.5, 0.0]]), requires_grad=True)
    b = ds.tensor(np.array([3.0]), requires_grad=True)
    pen = nn.l2_penalty([a, b])
    assert_allclose(pen.item(), 0.5 * (1 + 4 + 0.25 + 0 + 9))
    pen.backward()
    assert_array_equal(a.grad, a.data)
    assert_array_equal(b.grad, b.data)


def test_l1_penalty_is_the_sum_of_absolute_values_with_sign_subgradient():
    a = ds.tensor(np.array([1.5, -2.0, 0.0]), requires_grad=True)
    pen = nn.l1_penalty([a])
    assert pen.item() == 3.5
    pen.backward()
    assert_array_equal(a.grad, [1.0, -1.0, 0.0])


def test_penalties_accept_model_parameters_and_empty_input():
    model = nn.Sequential(nn.Linear(3, 2, rng=0), nn.ReLU(), nn.Linear(2, 1, rng=1))
    expected = 0.5 * sum(float(np.sum(p.data.astype(np.float64) ** 2)) for p in model.parameters())
    assert_allclose(nn.l2_penalty(model.parameters()).item(), expected, rtol=1e-6)
    assert nn.l2_penalty([]).item() == 0.0
    assert nn.l1_penalty([]).item() == 0.0


# ------------------------------------------------------------------ modules
MODULES = {
    "CrossEntropyLoss": (nn.CrossEntropyLoss, nn.cross_entropy, inputs_classes),
    "MSELoss": (nn.MSELoss, nn.mse_loss, inputs_regression),
    "L1Loss": (nn.L1Loss, nn.l1_loss, inputs_regression),
    "HuberLoss": (nn.HuberLoss, nn.huber_loss, inputs_regression),
    "BCEWithLogitsLoss": (
        nn.BCEWithLogitsLoss,
        nn.binary_cross_entropy_with_logits,
        inputs_bce,
    ),
    "HingeLoss": (nn.HingeLoss, nn.hinge_loss, inputs_hinge_multiclass),
}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", sorted(MODULES))
def test_loss_modules_call_their_function(name, reduction):
    cls, fn, make = MODULES[name]
    x, t = make(np.random.default_rng(7))
    module = cls(reduction=reduction)
    assert_array_equal(module(ds.tensor(x), t).data, fn(ds.tensor(x), t, reduction=reduction).data)
    assert f"reduction={reduction!r}" in repr(module)


def test_huber_module_passes_delta():
    x, t = inputs_regression(np.random.default_rng(8))
    got = nn.HuberLoss(delta=0.3)(ds.tensor(x), t).item()
    assert_allclose(got, np.mean(np_huber(x, t, 0.3)), rtol=1e-12)


# ------------------------------------------------------------------ validation
BAD_CALLS = {
    "reduction": (
        lambda: nn.mse_loss(np.ones(3), np.ones(3), reduction="avg"),
        ConfigError,
        ["'avg'", "mean"],
    ),
    "module reduction": (lambda: nn.CrossEntropyLoss(reduction="max"), ConfigError, ["'max'"]),
    "mse shapes": (
        lambda: nn.mse_loss(np.ones((4, 1)), np.ones(4)),
        ShapeError,
        ["(4, 1)", "(4,)"],
    ),
    "bce shapes": (
        lambda: nn.binary_cross_entropy_with_logits(np.ones((2, 3)), np.ones((3, 2))),
        ShapeError,
        ["(2, 3)", "(3, 2)"],
    ),
    "ce label out of range": (
        lambda: nn.cross_entropy(np.ones((3, 4)), np.array([0, 7, 1])),
        ValueError,
        ["7", "4 classes"],
    ),
    "ce float targets": (
        lambda: nn.cross_entropy(np.ones((2, 3)), np.array([0.0, 1.0])),
        DTypeError,
        ["integer"],
    ),
    "ce target shape": (
        lambda: nn.cross_entropy(np.ones((2, 3)), np.array([0, 1, 2])),
        ShapeError,
        ["(2, 3)", "(3,)"],
    ),
    "hinge 0/1 targets": (
        lambda: nn.hinge_loss(np.ones(3), np.array([1, 0, 1])),
        DataError,
        ["-1 or +1", "got 0"],
    ),
    "hinge label out of range": (
        lambda: nn.hinge_loss(np.ones((2, 3)), np.array([0, 3])),
        DataError,
        ["3", "3 classes"],
    ),
    "hinge target shape": (
        lambda: nn.hinge_loss(np.ones((2, 3)), np.array([0, 1, 1])),
        ShapeError,
        ["(2, 3)", "(3,)"],
    ),
    "hinge one class": (
        lambda: nn.hinge_loss(np.ones((2, 1)), np.array([0, 0])),
        ShapeError,
        ["(2, 1)"],
    ),
    "hinge 3-D": (
        lambda: nn.hinge_loss(np.ones((2, 2, 2)), np.array([0, 0])),
        ShapeError,
        ["(2, 2, 2)"],
    ),
    "huber delta": (lambda: nn.huber_loss(np.ones(2), np.ones(2), delta=0), ConfigError, ["0"]),
    "huber module delta": (lambda: nn.HuberLoss(delta=-1.0), ConfigError, ["-1.0"]),
    "bce target range": (
        lambda: nn.binary_cross_entropy_with_logits(np.ones(3), np.array([0.0, 1.5, 1.0])),
        DataError,
        ["1.5", "[0, 1]"],
    ),
    "integer predictions": (
        lambda: nn.mse_loss(np.array([1, 2]), np.array([1.0, 2.0])),
        DTypeError,
        ["int"],
    ),
}


@pytest.mark.parametrize("name", sorted(BAD_CALLS))
def test_losses_reject_bad_arguments_with_clear_messages(name):
    make, error, words = BAD_CALLS[name]
    with pytest.raises(error) as info:
        make()
    for word in words:
        assert word in str(info.value), f"{word!r} not in {str(info.value)!r}"
