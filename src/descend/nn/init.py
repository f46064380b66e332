"""Weight initialisation: He (Kaiming) and Xavier (Glorot) schemes, and PyTorch's default.

Every function draws from ``rng`` (a ``numpy.random.Generator``, an int seed, or None for
descend's global generator seeded by ``ds.manual_seed``), always in float64 and then cast, so
the same seed gives bit-identical weights.

Fans of a weight of shape ``(out, in, *kernel)``: ``fan_in = in * prod(kernel)`` and
``fan_out = out * prod(kernel)``.

Schemes (the ``init=`` names of layers)
---------------------------------------
``"he"``
    Normal, std = gain / sqrt(fan_in), gain = sqrt(2): keeps the variance of activations
    constant through ReLU layers (He et al. 2015, "Delving deep into rectifiers", eq. 10).
``"he_uniform"``
    Uniform on +-gain * sqrt(3 / fan_in): the same variance.
``"xavier"``
    Uniform on +-sqrt(6 / (fan_in + fan_out)): variance 2 / (fan_in + fan_out), a compromise
    between the forward and backward passes for symmetric activations (tanh, sigmoid,
    none) (Glorot & Bengio 2010, eq. 16).
``"xavier_normal"``
    Normal with the same variance.
``"pytorch"``
    PyTorch's default for Linear and Conv2d: weights and biases uniform on
    +-1 / sqrt(fan_in).

Biases are zero, except with ``"pytorch"``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import backend
from ..errors import ConfigError

Shape = tuple[int, ...]
RNG = np.random.Generator | int | None

SCHEMES = ("he", "he_uniform", "xavier", "xavier_normal", "pytorch")


def fans(shape: Shape) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of shape (out, in, *kernel)."""
    if len(shape) < 2:
        raise ConfigError(f"fans need a weight with at least 2 dimensions, got shape {shape}")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def gain(nonlinearity: str = "relu", negative_slope: float = 0.01) -> float:
    """The recommended scale for weights followed by ``nonlinearity`` (PyTorch's values).

    linear / identity / sigmoid: 1; tanh: 5/3; relu and gelu: sqrt(2) (for GELU, which is
    close to a ReLU away from 0, an approximation); leaky_relu: sqrt(2 / (1 + a^2)) with
    ``a = negative_slope``; selu: 3/4.
    """
    table = {
        "linear": 1.0,
        "identity": 1.0,
        "sigmoid": 1.0,
        "tanh": 5.0 / 3.0,
        "relu": math.sqrt(2.0),
        "gelu": math.sqrt(2.0),
        "leaky_relu": math.sqrt(2.0 / (1.0 + negative_slope**2)),
        "selu": 0.75,
    }
    if nonlinearity not in table:
        raise ConfigError(
            f"gain: unknown nonlinearity {nonlinearity!r}; known: {', '.join(sorted(table))}"
        )
    return table[nonlinearity]


def _fan(shape: Shape, mode: str) -> int:
    fan_in, fan_out = fans(shape)
    if mode == "fan_in":
        return fan_in
    if mode == "fan_out":
        return fan_out
    raise ConfigError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")


def kaiming_normal(
    shape: Shape,
    rng: RNG = None,
    *,
    nonlinearity: str = "relu",
    negative_slope: float = 0.01,
    mode: str = "fan_in",
    dtype: Any = np.float32,
) -> np.ndarray:
    """He normal: N(0, std^2) with std = gain(nonlinearity) / sqrt(fan)."""
    std = gain(nonlinearity, negative_slope) / math.sqrt(_fan(shape, mode))
    return (backend.get_rng(rng).standard_normal(shape) * std).astype(dtype)


def kaiming_uniform(
    shape: Shape,
    rng: RNG = None,
    *,
    nonlinearity: str = "relu",
    negative_slope: float = 0.01,
    mode: str = "fan_in",
    dtype: Any = np.float32,
) -> np.ndarray:
    """He uniform: U(-b, b) with b = gain(nonlinearity) * sqrt(3 / fan)."""
    bound = gain(nonlinearity, negative_slope) * math.sqrt(3.0 / _fan(shape, mode))
    return backend.get_rng(rng).uniform(-bound, bound, shape).astype(dtype)


def xavier_uniform(
    shape: Shape, rng: RNG = None, *, gain: float = 1.0, dtype: Any = np.float32
) -> np.ndarray:
    """Glorot uniform: U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = fans(shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return backend.get_rng(rng).uniform(-bound, bound, shape).astype(dtype)


def xavier_normal(
    shape: Shape, rng: RNG = None, *, gain: float = 1.0, dtype: Any = np.float32
) -> np.ndarray:
    """Glorot normal: N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = fans(shape)
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return (backend.get_rng(rng).standard_normal(shape) * std).astype(dtype)


def uniform_fan_in(
    shape: Shape, fan_in: int, rng: RNG = None, *, dtype: Any = np.float32
) -> np.ndarray:
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)): PyTorch's default for weights and biases."""
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return backend.get_rng(rng).uniform(-bound, bound, shape).astype(dtype)


def initial_weights(
    scheme: str | Callable[..., np.ndarray],
    weight_shape: Shape,
    bias: bool,
    rng: RNG = None,
    dtype: Any = np.float32,
) -> tuple[np.ndarray, np.ndarray | None]:
    """(weight, bias or None) for a layer whose weight has shape (out, in, *kernel).

    ``scheme`` is one of ``SCHEMES`` (see the module docstring) or a callable
    ``f(shape, rng) -> ndarray`` for the weight (the bias is then zero). The weight is drawn
    first, then (``"pytorch"`` only) the bias.
    """
    gen = backend.get_rng(rng)
    out_features = weight_shape[0]
    fan_in, _ = fans(weight_shape)
    zero_bias = np.zeros(out_features, dtype=dtype) if bias else None
    if callable(scheme):
        weight = np.asarray(scheme(weight_shape, gen), dtype=dtype)
        if weight.shape != tuple(weight_shape):
            raise ConfigError(
                f"init callable returned shape {weight.shape}, expected {tuple(weight_shape)}"
            )
        return weight, zero_bias
    if scheme == "he":
        return kaiming_normal(weight_shape, gen, dtype=dtype), zero_bias
    if scheme == "he_uniform":
        return kaiming_uniform(weight_shape, gen, dtype=dtype), zero_bias
    if scheme == "xavier":
        return xavier_uniform(weight_shape, gen, dtype=dtype), zero_bias
    if scheme == "xavier_normal":
        return xavier_normal(weight_shape, gen, dtype=dtype), zero_bias
    if scheme == "pytorch":
        weight = uniform_fan_in(weight_shape, fan_in, gen, dtype=dtype)
        b = uniform_fan_in((out_features,), fan_in, gen, dtype=dtype) if bias else None
        return weight, b
    raise ConfigError(
        f"unknown init scheme {scheme!r}; expected one of {', '.join(map(repr, SCHEMES))}, "
        "'auto' or a callable"
    )


# ---------------------------------------------------------------------------- in place
def kaiming_normal_(tensor: Any, rng: RNG = None, **kwargs: Any) -> Any:
    """Fill ``tensor`` (a Parameter) in place with ``kaiming_normal``; returns it."""
    tensor.data[...] = kaiming_normal(tensor.shape, rng, dtype=tensor.dtype, **kwargs)
    return tensor


def kaiming_uniform_(tensor: Any, rng: RNG = None, **kwargs: Any) -> Any:
    """Fill ``tensor`` in place with ``kaiming_uniform``; returns it."""
    tensor.data[...] = kaiming_uniform(tensor.shape, rng, dtype=tensor.dtype, **kwargs)
    return tensor


def xavier_uniform_(tensor: Any, rng: RNG = None, **kwargs: Any) -> Any:
    """Fill ``tensor`` in place with ``xavier_uniform``; returns it."""
    tensor.data[...] = xavier_uniform(tensor.shape, rng, dtype=tensor.dtype, **kwargs)
    return tensor


def xavier_normal_(tensor: Any, rng: RNG = None, **kwargs: Any) -> Any:
    """Fill ``tensor`` in place with ``xavier_normal``; returns it."""
    tensor.data[...] = xavier_normal(tensor.shape, rng, dtype=tensor.dtype, **kwargs)
    return tensor


def zeros_(tensor: Any) -> Any:
    """Fill ``tensor`` in place with zeros; returns it."""
    tensor.data[...] = 0
    return tensor
