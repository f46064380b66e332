"""Bad input to ``ds.nn``: one table of invalid arguments per layer constructor, then bad
calls (wrong input shapes) and bad ``Module`` API use (``load_state_dict``, registration)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import descend as ds
from descend import nn
from descend.errors import CheckpointError, ConfigError, DTypeError, ShapeError

from . import case, raises_naming, user_error

NAN = float("nan")
RNG_BUG = (
    "backend.py get_rng(): a negative int seed (rng=-1) lets NumPy's raw ValueError "
    "'expected non-negative integer' escape, naming neither rng nor -1"
)

LINEAR = [
    case("in_features-zero", lambda: nn.Linear(0, 3), ConfigError, "got 0"),
    case("in_features-negative", lambda: nn.Linear(-1, 3), ConfigError, "-1"),
    case("in_features-float", lambda: nn.Linear(2.5, 3), ConfigError, "2.5"),
    case("in_features-string", lambda: nn.Linear("3", 3), ConfigError, "'3'"),
    case("in_features-None", lambda: nn.Linear(None, 3), ConfigError, "None"),
    case("in_features-bool", lambda: nn.Linear(True, 3), ConfigError, "True"),
    case("in_features-nan", lambda: nn.Linear(NAN, 3), ConfigError, "nan"),
    case("out_features-zero", lambda: nn.Linear(3, 0), ConfigError, "out_features"),
    case("dtype-int", lambda: nn.Linear(2, 3, dtype=np.int32), ConfigError, "int32"),
    case("dtype-unknown", lambda: nn.Linear(2, 3, dtype="float-ish"), TypeError, "float-ish"),
    case("init-unknown", lambda: nn.Linear(2, 3, init="glorot"), ConfigError, "'glorot'"),
    case("init-callable-shape", lambda: nn.Linear(2, 3, init=lambda s, r: np.ones((1, 1))),
         ConfigError, "(1, 1)"),
    case("rng-string", lambda: nn.Linear(2, 3, rng="seed"), TypeError, "'seed'"),
    case("rng-negative", lambda: nn.Linear(2, 3, rng=-1), ValueError, "-1", bug=RNG_BUG),
]

CONV2D = [
    case("in_channels-zero", lambda: nn.Conv2d(0, 1, 2), ConfigError, "in_channels"),
    case("out_channels-negative", lambda: nn.Conv2d(1, -2, 2), ConfigError, "-2"),
    case("kernel-zero", lambda: nn.Conv2d(1, 1, 0), ConfigError, "kernel_size"),
    case("kernel-triple", lambda: nn.Conv2d(1, 1, (1, 2, 3)), ConfigError, "(1, 2, 3)"),
    case("kernel-float", lambda: nn.Conv2d(1, 1, 2.5), ConfigError, "2.5"),
    case("stride-zero", lambda: nn.Conv2d(1, 1, 2, stride=0), ConfigError, "stride"),
    case("stride-bool", lambda: nn.Conv2d(1, 1, 2, stride=True), ConfigError, "True"),
    case("padding-negative", lambda: nn.Conv2d(1, 1, 2, padding=-1), ConfigError, "-1"),
    case("dtype-bool", lambda: nn.Conv2d(1, 1, 2, dtype=bool), ConfigError, "bool"),
]

POOL_DROPOUT_OTHERS = [
    case("maxpool-kernel-zero", lambda: nn.MaxPool2d(0), ConfigError, "kernel_size"),
    case("maxpool-stride-zero", lambda: nn.MaxPool2d(2, stride=0), ConfigError, "stride"),
    case("maxpool-kernel-string", lambda: nn.MaxPool2d("2"), ConfigError, "'2'"),
    case("dropout-negative", lambda: nn.Dropout(-0.1), ConfigError, "-0.1"),
    case("dropout-one", lambda: nn.Dropout(1), ConfigError, "got 1"),
    case("dropout-above-one", lambda: nn.Dropout(1.5), ConfigError, "1.5"),
    case("dropout-nan", lambda: nn.Dropout(NAN), ConfigError, "nan"),
    case("dropout-string", lambda: nn.Dropout("0.5"), ConfigError, "'0.5'"),
    case("dropout-bool", lambda: nn.Dropout(True), ConfigError, "True"),
    case("dropout-rng", lambda: nn.Dropout(0.5, rng="x"), TypeError, "'x'"),
    case("sequential-non-module", lambda: nn.Sequential(nn.ReLU(), 3), TypeError, "position 1"),
    case("flatten-start-string", lambda: nn.Flatten("a"), ValueError, "'a'"),
    case("leaky_relu-slope-string", lambda: nn.LeakyReLU("steep"), ValueError, "'steep'"),
    case("parameter-strings", lambda: nn.Parameter("abc"), TypeError, "<U3"),
    case("parameter-int-dtype", lambda: nn.Parameter([1, 2], dtype=np.int32), DTypeError,
         "int32"),
]

MLP = [
    case("one-size", lambda: nn.mlp([3]), ConfigError, "[3]"),
    case("zero-width", lambda: nn.mlp([3, 0, 2]), ConfigError, "got 0"),
    case("float-width", lambda: nn.mlp([3, 2.5, 2]), ConfigError, "2.5"),
    case("activation", lambda: nn.mlp([3, 2], activation="swish"), ConfigError, "'swish'"),
    case("dropout-one", lambda: nn.mlp([3, 4, 2], dropout=1.0), ConfigError, "1.0"),
    case("dropout-nan", lambda: nn.mlp([3, 4, 2], dropout=NAN), ConfigError, "nan"),
    case("dropout-string", lambda: nn.mlp([3, 4, 2], dropout="0.5"), ConfigError, "'0.5'",
         bug="nn/layers.py mlp(dropout='0.5'): the raw TypeError \"'<=' not supported between "
             "instances of 'int' and 'str'\" escapes; nn.Dropout('0.5') names it properly"),
    case("rng-negative", lambda: nn.mlp([3, 4, 2], rng=-3), ValueError, "-3", bug=RNG_BUG),
]

INIT = [
    case("gain-unknown", lambda: nn.init.gain("swish"), ConfigError, "'swish'"),
    case("fans-1d", lambda: nn.init.fans((3,)), ConfigError, "(3,)"),
]


@pytest.mark.parametrize(("fn", "error", "needle"), LINEAR)
def test_linear_rejects(fn: Callable[[], Any], error: type, needle: str) -> None:
    assert user_error(error)
    raises_naming(error, needle, fn)


@pytest.mark.parametrize(("fn", "error", "needle"), CONV2D)
def test_conv2d_rejects(fn: Callable[[], Any], error: type, needle: str) -> None:
    assert user_error(error)
    raises_naming(error, needle, fn)


@pytest.mark.parametrize(("fn", "error", "needle"), POOL_DROPOUT_OTHERS)
def test_other_layers_reject(fn: Callable[[], Any], error: type, needle: str) -> None:
    assert user_error(error)
    raises_naming(error, needle, fn)


@pytest.mark.parametrize(("fn", "error", "needle"), MLP)
def test_mlp_rejects(fn: Callable[[], Any], error: type, needle: str) -> None:
    assert user_error(error)
    raises_naming(error, needle, fn)


@pytest.mark.parametrize(("fn", "error", "needle"), INIT)
def test_init_rejects(fn: Callable[[], Any], error: type, needle: str) -> None:
    raises_naming(error, needle, fn)


# ------------------------------------------------------------------------------ calls
def _linear() -> nn.Linear:
    return nn.Linear(3, 2, rng=0)


CALLS = [
    case("linear-features", lambda: _linear()(ds.tensor(np.ones((4, 5)))), ShapeError,
         "(4, 5)"),
    case("linear-vector", lambda: _linear()(ds.tensor(np.ones(7))), ShapeError, "(7,)"),
    case("linear-strings", lambda: _linear()(np.array([["a", "b", "c"]])), TypeError, "<U1"),
    case("conv-channels", lambda: nn.Conv2d(3, 1, 2, rng=0)(np.ones((1, 2, 4, 4))), ShapeError,
         "(1, 2, 4, 4)"),
    case("conv-image-too-small", lambda: nn.Conv2d(1, 1, 5, rng=0)(np.ones((1, 1, 4, 4))),
         ShapeError, "(5, 5)"),
    case("pool-flat-input", lambda: nn.MaxPool2d(2)(np.ones((4, 4))), ShapeError, "(4, 4)"),
    case("flatten-start-after-end", lambda: nn.Flatten(2, 1)(ds.zeros(2, 3, 4)), ConfigError,
         "start_dim=2"),
    case("sequential-index", lambda: nn.Sequential(nn.ReLU())[5], IndexError, "5"),
]


@pytest.mark.parametrize(("fn", "error", "needle"), CALLS)
def test_bad_calls_are_named(fn: Callable[[], Any], error: type, needle: str) -> None:
    assert user_error(error)
    raises_naming(error, needle, fn)


# ------------------------------------------------------------------------------ Module API
GOOD_STATE = {"weight": np.ones((2, 3)), "bias": np.ones(2)}

LOAD_STATE = [
    case("missing-key", lambda m: m.load_state_dict({"weight": np.ones((2, 3))}),
         CheckpointError, "'bias'"),
    case("unexpected-key", lambda m: m.load_state_dict({**GOOD_STATE, "scale": np.ones(1)}),
         CheckpointError, "'scale'"),
    case("shape", lambda m: m.load_state_dict({**GOOD_STATE, "bias": np.ones(5)}), ShapeError,
         "(5,)"),
    case("strings", lambda m: m.load_state_dict({**GOOD_STATE, "bias": np.array(["a", "b"])}),
         TypeError, "<U1"),
    case("not-a-mapping", lambda m: m.load_state_dict([("weight", np.ones((2, 3)))]),
         TypeError, "weight"),
]


@pytest.mark.parametrize(("fn", "error", "needle"), LOAD_STATE)
def test_load_state_dict_refuses_and_changes_nothing(
    fn: Callable[[nn.Module], Any], error: type, needle: str
) -> None:
    model = _linear()
    before = {k: v.copy() for k, v in model.state_dict().items()}
    raises_naming(error, needle, lambda: fn(model))
    # Nothing is loaded unless every entry can be: not even the good "weight".
    for name, value in model.state_dict().items():
        assert np.array_equal(value, before[name]), name


def _assign_array_to_parameter() -> None:
    _linear().weight = np.ones((2, 3))


REGISTRATION = [
    case("train-mode-string", lambda: _linear().train("yes"), TypeError, "'yes'"),
    case("assign-array-to-parameter", _assign_array_to_parameter, TypeError, "'weight'"),
    case("register-array-as-parameter",
         lambda: _linear().register_parameter("scale", np.ones(2)), TypeError, "array"),
    case("add-module-int", lambda: _linear().add_module("child", 3), TypeError, "3"),
    case("buffer-of-strings", lambda: _linear().register_buffer("names", np.array(["a"])),
         TypeError, "'names'"),
]


@pytest.mark.parametrize(("fn", "error", "needle"), REGISTRATION)
def test_bad_registration_is_named(fn: Callable[[], Any], error: type, needle: str) -> None:
    raises_naming(error, needle, fn)
