"""Initialisation: reproducibility, the variances of He and Xavier, and the layer defaults."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import descend as ds
from descend import nn
from descend.errors import ConfigError
from descend.nn import init


def test_fans_of_dense_and_convolution_weights():
    assert init.fans((32, 64)) == (64, 32)
    assert init.fans((8, 3, 5, 5)) == (75, 200)
    with pytest.raises(ConfigError):
        init.fans((5,))


def test_gains_match_pytorch():
    assert init.gain("relu") == pytest.approx(math.sqrt(2))
    assert init.gain("tanh") == pytest.approx(5 / 3)
    assert init.gain("sigmoid") == 1.0
    assert init.gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    with pytest.raises(ConfigError, match="'swish'"):
        init.gain("swish")


# (function, expected standard deviation for shape (out, in) = (400, 1000))
FAN_IN, FAN_OUT = 1000, 400
SCHEMES = {
    "kaiming_normal": (init.kaiming_normal, math.sqrt(2 / FAN_IN)),
    "kaiming_uniform": (init.kaiming_uniform, math.sqrt(2 / FAN_IN)),
    "xavier_uniform": (init.xavier_uniform, math.sqrt(2 / (FAN_IN + FAN_OUT))),
    "xavier_normal": (init.xavier_normal, math.sqrt(2 / (FAN_IN + FAN_OUT))),
}


@pytest.mark.parametrize("name", sorted(SCHEMES))
def test_large_layer_standard_deviation_is_within_five_percent(name):
    fn, std = SCHEMES[name]
    w = fn((FAN_OUT, FAN_IN), 0)
    assert w.dtype == np.float32
    assert abs(w.std() / std - 1) < 0.05
    assert abs(w.mean()) < 0.05 * std


def test_uniform_schemes_stay_within_their_bounds():
    he = init.kaiming_uniform((50, 60), 0)
    assert np.abs(he).max() <= math.sqrt(2) * math.sqrt(3 / 60)
    xavier = init.xavier_uniform((50, 60), 0)
    assert np.abs(xavier).max() <= math.sqrt(6 / 110)


def test_he_for_convolutions_uses_the_receptive_field():
    w = init.kaiming_normal((64, 16, 3, 3), 1)
    assert abs(w.std() / math.sqrt(2 / (16 * 9)) - 1) < 0.05


def test_same_seed_gives_bit_identical_layers_and_models():
    a, b = nn.Linear(30, 20, rng=5), nn.Linear(30, 20, rng=5)
    assert_array_equal(a.weight.data, b.weight.data)
    assert not np.array_equal(a.weight.data, nn.Linear(30, 20, rng=6).weight.data)
    c1, c2 = nn.Conv2d(2, 4, 3, rng=np.random.default_rng(9)), nn.Conv2d(2, 4, 3, rng=9)
    assert_array_equal(c1.weight.data, c2.weight.data)
    m1, m2 = nn.mlp([5, 8, 8, 2], rng=3), nn.mlp([5, 8, 8, 2], rng=3)
    for p, q in zip(m1.parameters(), m2.parameters()):
        assert_array_equal(p.data, q.data)
    # one generator feeds the layers in turn: they differ from each other
    assert not np.array_equal(m1[0].weight.data[:, :5], m1[2].weight.data[:, :5])


def test_rng_none_draws_from_the_global_generator_seeded_by_manual_seed():
    ds.manual_seed(123)
    first = nn.Linear(4, 4).weight.data.copy()
    ds.manual_seed(123)
    assert_array_equal(nn.Linear(4, 4).weight.data, first)


def test_layer_defaults_and_biases():
    linear = nn.Linear(1000, 400, rng=0)
    assert abs(linear.weight.data.std() / math.sqrt(2 / 1400) - 1) < 0.05  # auto = xavier
    assert_array_equal(linear.bias.data, np.zeros(400))
    he = nn.Linear(1000, 400, rng=0, init="he")
    assert abs(he.weight.data.std() / math.sqrt(2 / 1000) - 1) < 0.05
    conv = nn.Conv2d(16, 64, 3, rng=0)  # auto = he
    assert abs(conv.weight.data.std() / math.sqrt(2 / 144) - 1) < 0.05
    assert_array_equal(conv.bias.data, np.zeros(64))
    torchlike = nn.Linear(100, 50, rng=0, init="pytorch")
    assert np.abs(torchlike.weight.data).max() <= 0.1
    assert np.abs(torchlike.bias.data).max() <= 0.1
    assert np.any(torchlike.bias.data != 0)
    custom = nn.Linear(3, 2, init=lambda shape, rng: np.full(shape, 0.5))
    assert_array_equal(custom.weight.data, np.full((2, 3), 0.5))
    assert nn.Linear(3, 2, dtype=np.float64).weight.dtype == np.float64


def test_mlp_chooses_he_for_relu_family_and_xavier_otherwise():
    relu = nn.mlp([1000, 400, 10], activation="relu", rng=0)
    assert abs(relu[0].weight.data.std() / math.sqrt(2 / 1000) - 1) < 0.05
    assert abs(relu[2].weight.data.std() / math.sqrt(2 / 410) - 1) < 0.1  # output: xavier
    tanh = nn.mlp([1000, 400, 10], activation="tanh", rng=0)
    assert abs(tanh[0].weight.data.std() / math.sqrt(2 / 1400) - 1) < 0.05


def test_in_place_initialisers_fill_a_parameter():
    layer = nn.Linear(500, 300, rng=0)
    array = layer.weight.data
    init.kaiming_normal_(layer.weight, rng=1)
    assert layer.weight.data is array
    assert abs(array.std() / math.sqrt(2 / 500) - 1) < 0.05
    init.zeros_(layer.bias)
    assert not layer.bias.data.any()


def test_bad_schemes_are_named():
    with pytest.raises(ConfigError, match="'lecun'"):
        nn.Linear(2, 2, init="lecun")
    with pytest.raises(ConfigError, match="dtype"):
        nn.Linear(2, 2, dtype=np.int32)
    with pytest.raises(ConfigError, match="in_features"):
        nn.Linear(0, 2)
    with pytest.raises(ConfigError, match="shape"):
        nn.Linear(2, 2, init=lambda shape, rng: np.zeros(3))
