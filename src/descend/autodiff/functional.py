"""Differentiable functions built from the primitives (no hand-written gradients here)."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from .. import backend
from ..errors import ConfigError, DTypeError
from .ops import (
    gelu,
    leaky_relu,
    log_softmax,
    logsumexp,
    relu,
    sigmoid,
    softmax,
    softplus,
    tanh,
)
from .ops._core import apply1, primitive
from .tensor import Tensor


def dropout(
    x: Any, p: float = 0.5, training: bool = True, rng: np.random.Generator | int | None = None
) -> Any:
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p) (inverted
    dropout); the identity when ``training`` is False or p == 0."""
    if isinstance(p, bool) or not isinstance(p, numbers.Real):
        raise ConfigError(f"dropout probability p must be a number, got {p!r}")
    if not 0 <= p < 1:
        raise ConfigError(f"dropout probability p must lie in [0, 1), got {p}")
    if not isinstance(training, bool | np.bool_):
        raise TypeError(f"dropout: training must be True or False, got {training!r:.40}")
    if not training or p == 0:
        return x
    if not isinstance(x, Tensor):
        x = Tensor(x)  # the dtype policy and its checks, as for any tensor
    if x.data.dtype.kind != "f":
        raise DTypeError(f"dropout needs a floating x, got dtype {x.data.dtype}")
    # The mask is made by a (gradient-free) primitive so that a recorded step replays the
    # draw, from the generator ``rng`` names at that time, instead of reusing the numbers.
    return x * apply1(_DROPOUT_MASK, x.data, {"p": p, "rng": rng})


def _dropout_mask(data: np.ndarray, p: float, rng: np.random.Generator | int | None) -> Any:
    """keep / (1 - p) with keep ~ Bernoulli(1 - p), in ``data``'s shape and dtype."""
    keep = backend.get_rng(rng).random(data.shape) >= p
    scale = np.asarray(1.0 / (1.0 - p), dtype=data.dtype)
    return (keep * scale).astype(data.dtype, copy=False)


def _no_gradient(g, out, inputs, needs, **params):  # pragma: no cover - never recorded
    raise AssertionError("the dropout mask is a constant of the graph")


_DROPOUT_MASK = primitive("dropout_mask", _dropout_mask, _no_gradient)


__all__ = [
    "dropout",
    "gelu",
    "leaky_relu",
    "log_softmax",
    "logsumexp",
    "relu",
    "sigmoid",
    "softmax",
    "softplus",
    "tanh",
]
