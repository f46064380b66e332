"""Activation functions as modules (no parameters), each a thin shell over a primitive."""

from __future__ import annotations

import math
import numbers
from typing import Any

from ..autodiff import ops
from ..errors import ConfigError
from .module import Module


class ReLU(Module):
    """max(x, 0) elementwise; the subgradient at 0 is 0."""

    def forward(self, x: Any) -> Any:
        return ops.relu(x)


class LeakyReLU(Module):
    """x for x > 0, ``negative_slope * x`` otherwise."""

    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        if (isinstance(negative_slope, bool) or not isinstance(negative_slope, numbers.Real)
                or not math.isfinite(negative_slope)):
            raise ConfigError(f"LeakyReLU: negative_slope must be a finite number, got "
                              f"{negative_slope!r}")
        self.negative_slope = float(negative_slope)

    def forward(self, x: Any) -> Any:
        return ops.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class Tanh(Module):
    """tanh(x) elementwise."""

    def forward(self, x: Any) -> Any:
        return ops.tanh(x)


class Sigmoid(Module):
    """1 / (1 + exp(-x)) elementwise, stable for any magnitude."""

    def forward(self, x: Any) -> Any:
        return ops.sigmoid(x)


class GELU(Module):
    """x * Phi(x), Phi the standard normal CDF (the exact GELU)."""

    def forward(self, x: Any) -> Any:
        return ops.gelu(x)


class Softplus(Module):
    """log(1 + exp(x)) elementwise, stable for any magnitude."""

    def forward(self, x: Any) -> Any:
        return ops.softplus(x)


class Identity(Module):
    """Returns its input unchanged."""

    def forward(self, x: Any) -> Any:
        return x


#: Activation modules by name (used by ``mlp``).
ACTIVATIONS: dict[str, type[Module]] = {
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "tanh": Tanh,
    "sigmoid": Sigmoid,
    "gelu": GELU,
    "softplus": Softplus,
    "identity": Identity,
}
