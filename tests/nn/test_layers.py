"""Layers: Linear, Sequential, Flatten, Dropout, activations, mlp, the functional namespace,
and a small model trained end to end."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import erf

import descend as ds
import descend.functional as F
from descend import nn
from descend.errors import ConfigError


def test_linear_computes_x_wt_plus_b_and_its_gradients():
    layer = nn.Linear(4, 3, rng=0, dtype=np.float64)
    x = np.random.default_rng(1).standard_normal((5, 4))
    out = layer(ds.tensor(x))
    assert_allclose(out.data, x @ layer.weight.data.T + layer.bias.data, rtol=1e-12)
    assert ds.grad_check(lambda a, w, b: F.linear(a, w, b), [x, layer.weight.data, layer.bias.data])
    assert nn.Linear(4, 3, bias=False).bias is None


def test_linear_accepts_leading_batch_axes():
    layer = nn.Linear(3, 2, rng=0)
    x = np.ones((4, 5, 3), dtype=np.float32)
    assert layer(ds.tensor(x)).shape == (4, 5, 2)


def test_sequential_indexing_length_iteration_and_slicing():
    model = nn.Sequential(nn.Linear(2, 3, rng=0), nn.Tanh(), nn.Linear(3, 1, rng=1))
    assert len(model) == 3
    assert isinstance(model[1], nn.Tanh) and model[-1] is model[2]
    assert [type(m).__name__ for m in model] == ["Linear", "Tanh", "Linear"]
    head = model[:2]
    assert isinstance(head, nn.Sequential) and len(head) == 2 and head[0] is model[0]
    x = ds.tensor(np.ones((1, 2), dtype=np.float32))
    assert_allclose(model(x).data, model[2](model[1](model[0](x))).data)
    with pytest.raises(IndexError, match="out of range for 3"):
        model[3]
    with pytest.raises(TypeError, match="position 1"):
        nn.Sequential(nn.ReLU(), np.tanh)


def test_flatten_merges_the_requested_dimensions():
    x = ds.tensor(np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5))
    assert nn.Flatten()(x).shape == (2, 60)
    assert nn.Flatten(0)(x).shape == (120,)
    assert nn.Flatten(1, 2)(x).shape == (2, 12, 5)
    with pytest.raises(ConfigError):
        nn.Flatten(2, 1)(x)


# ------------------------------------------------------------------ activations
ACTIVATIONS = {
    "ReLU": (nn.ReLU(), lambda x: np.maximum(x, 0)),
    "LeakyReLU": (nn.LeakyReLU(0.2), lambda x: np.where(x > 0, x, 0.2 * x)),
    "Tanh": (nn.Tanh(), np.tanh),
    "Sigmoid": (nn.Sigmoid(), lambda x: 1 / (1 + np.exp(-x))),
    "GELU": (nn.GELU(), lambda x: 0.5 * x * (1 + erf(x / np.sqrt(2)))),
    "Softplus": (nn.Softplus(), lambda x: np.log1p(np.exp(x))),
    "Identity": (nn.Identity(), lambda x: x),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_modules_match_their_formulas(name):
    module, formula = ACTIVATIONS[name]
    x = np.linspace(-3, 3, 13)
    assert_allclose(module(ds.tensor(x)).data, formula(x), rtol=1e-12, atol=1e-15)
    assert repr(module).startswith(name + "(")


# ------------------------------------------------------------------ dropout
def test_dropout_with_the_same_seed_draws_the_same_mask():
    x = ds.tensor(np.ones((50, 20), dtype=np.float32))
    a, b = nn.Dropout(0.3, rng=7)(x).data, nn.Dropout(0.3, rng=7)(x).data
    assert_array_equal(a, b)
    assert not np.array_equal(a, nn.Dropout(0.3, rng=8)(x).data)


def test_dropout_keeps_the_mean_and_scales_survivors():
    x = ds.tensor(np.full(200_000, 3.0, dtype=np.float32))
    out = nn.Dropout(0.25, rng=0)(x).data
    assert set(np.unique(out)) == {0.0, 4.0}
    assert abs(np.mean(out == 0) - 0.25) < 0.005
    assert abs(out.mean() / 3.0 - 1) < 0.01


def test_dropout_is_the_identity_in_eval_mode_and_at_p_zero():
    x = ds.tensor(np.random.default_rng(0).standard_normal(100))
    layer = nn.Dropout(0.9, rng=0).eval()
    assert_array_equal(layer(x).data, x.data)
    assert_array_equal(nn.Dropout(0.0)(x).data, x.data)


def test_dropout_gradient_is_the_mask_over_keep_probability():
    x = ds.tensor(np.ones(1000), requires_grad=True)
    out = nn.Dropout(0.5, rng=3)(x)
    out.sum().backward()
    assert_array_equal(x.grad, out.data)  # x = 1: output and gradient are both mask / 0.5


def test_dropout_without_rng_follows_manual_seed():
    x = ds.tensor(np.ones(100, dtype=np.float32))
    layer = nn.Dropout(0.5)
    ds.manual_seed(4)
    first = layer(x).data
    ds.manual_seed(4)
    assert_array_equal(layer(x).data, first)


def test_dropout_rejects_bad_probabilities():
    for p in (-0.1, 1.0, 2, True):
        with pytest.raises(ConfigError, match="p must lie in"):
            nn.Dropout(p)


# ------------------------------------------------------------------ mlp
def test_mlp_builds_the_expected_stack():
    model = nn.mlp([4, 16, 8, 3], activation="tanh", dropout=0.1, rng=0)
    kinds = [type(m).__name__ for m in model]
    assert kinds == ["Linear", "Tanh", "Dropout", "Linear", "Tanh", "Dropout", "Linear"]
    assert [p.shape for p in model.parameters()] == [(16, 4), (16,), (8, 16), (8,), (3, 8), (3,)]
    assert model[2].rng is not None and model[2].rng is not model[5].rng
    with pytest.raises(ConfigError, match="'swish'"):
        nn.mlp([2, 2], activation="swish")
    with pytest.raises(ConfigError, match="at least"):
        nn.mlp([3])


def test_tiny_mlp_trained_by_hand_separates_two_blobs():
    rng = np.random.default_rng(0)
    centers = np.array([[2.0, 2.0], [-2.0, -2.0]])
    labels = np.repeat([0, 1], 50)
    points = (centers[labels] + 0.5 * rng.standard_normal((100, 2))).astype(np.float32)
    model = nn.mlp([2, 8, 2], activation="relu", rng=1)
    params = list(model.parameters())
    for _ in range(100):
        model.zero_grad()
        loss = nn.cross_entropy(model(ds.tensor(points)), labels)
        loss.backward()
        for p in params:
            p.data -= 0.5 * p.grad
    with ds.no_grad():
        predictions = np.argmax(model(ds.tensor(points)).data, axis=1)
    assert np.mean(predictions == labels) == 1.0
    assert loss.item() < 0.05


# ------------------------------------------------------------------ functional namespace
def test_functional_namespace_exposes_the_documented_names():
    names = [
        "relu", "leaky_relu", "tanh", "sigmoid", "softplus", "gelu", "softmax", "log_softmax",
        "logsumexp", "dropout", "cross_entropy", "mse_loss", "l1_loss", "huber_loss",
        "binary_cross_entropy_with_logits", "hinge_loss", "conv2d", "max_pool2d", "linear",
        "l1_penalty", "l2_penalty",
    ]  # fmt: skip
    for name in names:
        assert callable(getattr(F, name)), name
    assert sorted(F.__all__) == sorted(names)
    x = ds.tensor(np.array([[1.0, 2.0, 3.0]]))
    assert_allclose(F.softmax(x).data.sum(), 1.0)
    assert_allclose(F.cross_entropy(x, np.array([2])).item(), np.log(np.exp([1, 2, 3]).sum()) - 3)
