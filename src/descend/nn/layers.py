"""Layers: Sequential, Linear, Conv2d, MaxPool2d, Flatten, Dropout, and the ``mlp`` helper.

Initialisation (see ``descend.nn.init`` for the formulas): ``Linear(init="auto")`` is Xavier
uniform, because a Linear layer does not know which activation follows it and Xavier suits
both a symmetric activation and an output layer; ``Conv2d(init="auto")`` is He normal,
because convolutions are almost always followed by a ReLU-family activation. ``mlp`` picks
per layer: He for relu / leaky_relu / gelu / softplus hidden layers, Xavier for tanh /
sigmoid / identity ones and for the output layer. Biases start at zero (except with
``init="pytorch"``). Every layer takes ``rng``: a Generator, an int seed, or None for the
global generator (``ds.manual_seed``), and the same seed gives bit-identical weights.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from .. import backend
from ..autodiff import ops
from ..autodiff.functional import dropout as _dropout
from ..autodiff.ops.conv import as_pair
from ..errors import ConfigError, DTypeError
from .activations import ACTIVATIONS
from .init import RNG, initial_weights
from .module import Module, Parameter

_HE_ACTIVATIONS = frozenset({"relu", "leaky_relu", "gelu", "softplus"})


#: A size beyond any array NumPy makes in one dimension (2**31 - 1 elements).
_MAX_FEATURES = 2**31 - 1


def _positive_int(value: Any, name: str, layer: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ConfigError(f"{layer}: {name} must be a positive int, got {value!r}")
    if value > _MAX_FEATURES:
        raise ConfigError(f"{layer}: {name} must be at most {_MAX_FEATURES:,}, got {value!r}")
    return int(value)


def _is_auto(init: Any) -> bool:
    return isinstance(init, str) and init == "auto"


def _flag(value: Any, name: str) -> bool:
    """A yes/no argument: a bool (or 0/1), not an array whose truth is ambiguous."""
    if isinstance(value, bool | np.bool_) or (isinstance(value, int) and value in (0, 1)):
        return bool(value)
    if value is None:
        return False
    raise TypeError(f"{name} must be True or False, got {value!r:.40}")


def _float_dtype(dtype: Any, layer: str) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise DTypeError(f"{layer}: dtype {dtype!r:.40} is not a NumPy dtype") from None
    if dt.kind != "f":
        raise ConfigError(f"{layer}: dtype must be a floating dtype, got {dt}")
    return dt


class Sequential(Module):
    """Modules applied one after the other; children are named "0", "1", ...

    Supports ``len``, iteration, ``seq[i]`` (a module) and ``seq[i:j]`` (a Sequential
    sharing the same modules), and ``append``.
    """

    def __init__(self, *modules: Module):
        super().__init__()
        for module in modules:
            self.append(module)

    def append(self, module: Module) -> Sequential:
        """Add ``module`` at the end; returns self."""
        if not isinstance(module, Module):
            raise TypeError(
                f"Sequential(*modules) takes Modules, got {type(module).__name__} at position "
                f"{len(self._modules)}"
            )
        self.add_module(str(len(self._modules)), module)
        return self

    def forward(self, x: Any) -> Any:
        for module in self._modules.values():
            x = module(x)
        return x

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, index: int | slice) -> Any:
        modules = list(self._modules.values())
        if isinstance(index, slice):
            return Sequential(*modules[index])
        try:
            return modules[index]
        except IndexError:
            raise IndexError(
                f"Sequential index {index} is out of range for {len(modules)} modules"
            ) from None


class Linear(Module):
    """Affine map ``y = x @ W.T + b`` (PyTorch's layout).

    Parameters
    ----------
    in_features, out_features : int
    bias : bool
        Whether to learn ``b`` (shape (out_features,)); ``self.bias`` is None otherwise.
    rng : Generator, int or None
        Source of the initial weights (None: the global generator).
    init : str or callable
        ``"auto"`` (= ``"xavier"``), ``"he"``, ``"he_uniform"``, ``"xavier"``,
        ``"xavier_normal"``, ``"pytorch"``, or ``f(shape, rng) -> ndarray``.
    dtype : floating dtype
        Of the parameters (float32 by default).

    Shapes: input (..., in_features) -> output (..., out_features); weight
    (out_features, in_features).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        rng: RNG = None,
        init: Any = "auto",
        dtype: Any = np.float32,
    ):
        super().__init__()
        self.in_features = _positive_int(in_features, "in_features", "Linear")
        self.out_features = _positive_int(out_features, "out_features", "Linear")
        scheme = "xavier" if _is_auto(init) else init
        w, b = initial_weights(
            scheme,
            (self.out_features, self.in_features),
            _flag(bias, "bias"),
            rng,
            _float_dtype(dtype, "Linear"),
        )
        self.weight = Parameter(w)
        self.register_parameter("bias", None if b is None else Parameter(b))

    def forward(self, x: Any) -> Any:
        return ops.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


class Conv2d(Module):
    """2-D convolution (cross-correlation) over NCHW images, as ``ops.conv2d``.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int or (int, int)
    stride : int or (int, int)
    padding : int or (int, int)
    bias : bool
    rng : Generator, int or None
    init : str or callable
        ``"auto"`` (= ``"he"``), or any scheme ``Linear`` accepts.
    dtype : floating dtype

    Shapes: input (n, in_channels, h, w) -> output (n, out_channels, oh, ow) with
    ``oh = (h + 2 * padding - kh) // stride + 1``; weight (out_channels, in_channels, kh, kw).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        bias: bool = True,
        rng: RNG = None,
        init: Any = "auto",
        dtype: Any = np.float32,
    ):
        super().__init__()
        self.in_channels = _positive_int(in_channels, "in_channels", "Conv2d")
        self.out_channels = _positive_int(out_channels, "out_channels", "Conv2d")
        self.kernel_size = as_pair(kernel_size, "kernel_size", 1, "Conv2d")
        self.stride = as_pair(stride, "stride", 1, "Conv2d")
        self.padding = as_pair(padding, "padding", 0, "Conv2d")
        scheme = "he" if _is_auto(init) else init
        w, b = initial_weights(
            scheme,
            (self.out_channels, self.in_channels, *self.kernel_size),
            _flag(bias, "bias"),
            rng,
            _float_dtype(dtype, "Conv2d"),
        )
        self.weight = Parameter(w)
        self.register_parameter("bias", None if b is None else Parameter(b))

    def forward(self, x: Any) -> Any:
        return ops.conv2d(x, self.weight, self.bias, self.stride, self.padding)

    def extra_repr(self) -> str:
        text = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}"
        )
        if self.padding != (0, 0):
            text += f", padding={self.padding}"
        if self.bias is None:
            text += ", bias=False"
        return text


class MaxPool2d(Module):
    """Max pooling over ``kernel_size`` windows, as ``ops.max_pool2d`` (stride defaults to
    the kernel size; tied maxima share the gradient equally)."""

    def __init__(
        self, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None
    ):
        super().__init__()
        self.kernel_size = as_pair(kernel_size, "kernel_size", 1, "MaxPool2d")
        self.stride = (
            self.kernel_size if stride is None else as_pair(stride, "stride", 1, "MaxPool2d")
        )

    def forward(self, x: Any) -> Any:
        return ops.max_pool2d(x, self.kernel_size, self.stride)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


class Flatten(Module):
    """Merge dimensions ``start_dim`` .. ``end_dim`` into one: (n, c, h, w) -> (n, c*h*w)
    with the defaults."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        for name, value in (("start_dim", start_dim), ("end_dim", end_dim)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise ConfigError(f"Flatten: {name} must be an int, got {value!r}")
        self.start_dim = int(start_dim)
        self.end_dim = int(end_dim)

    def forward(self, x: Any) -> Any:
        shape = x.shape
        start = self.start_dim % len(shape) if shape else 0
        end = self.end_dim % len(shape) if shape else 0
        if start > end:
            raise ConfigError(
                f"Flatten: start_dim={self.start_dim} comes after end_dim={self.end_dim} "
                f"for an input of shape {shape}"
            )
        merged = int(np.prod(shape[start : end + 1]))
        return ops.reshape(x, (*shape[:start], merged, *shape[end + 1 :]))

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Dropout(Module):
    """Inverted dropout: in training mode zero each element with probability ``p`` and
    scale the rest by 1 / (1 - p), so the expected value is unchanged; the identity in
    evaluation mode (``eval()``).

    Parameters
    ----------
    p : float in [0, 1)
    rng : Generator, int or None
        Given, the layer owns that generator (registered with the backend so that line
        searches and checkpoints can replay and save it). None: each call draws from the
        global generator as it is at call time, so ``ds.manual_seed`` governs it.
    """

    def __init__(self, p: float = 0.5, rng: RNG = None):
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p < 1:
            raise ConfigError(f"Dropout: p must lie in [0, 1), got {p!r}")
        self.p = float(p)
        self.rng = None if rng is None else backend.track_rng(backend.get_rng(rng), self)

    def forward(self, x: Any) -> Any:
        return _dropout(x, self.p, self.training, self.rng)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def mlp(
    sizes: Sequence[int],
    activation: str = "relu",
    dropout: float = 0.0,
    rng: RNG = None,
    dtype: Any = np.float32,
) -> Sequential:
    """A multi-layer perceptron: Linear, activation[, Dropout], ..., Linear.

    Parameters
    ----------
    sizes : sequence of int
        ``[inputs, hidden_1, ..., outputs]``, at least two entries.
    activation : str
        One of relu, leaky_relu, gelu, softplus, tanh, sigmoid, identity; hidden layers use
        He initialisation before relu / leaky_relu / gelu / softplus and Xavier before
        the others; the output layer (no activation) uses Xavier.
    dropout : float
        Dropout probability after each hidden activation (0: no Dropout layers).
    rng : Generator, int or None
        One generator feeds every layer in order; with an int seed each Dropout gets its own
        generator drawn from it, so the whole model is reproducible from the seed.

    Returns
    -------
    Sequential
    """
    if isinstance(sizes, str) or not hasattr(sizes, "__iter__"):
        raise TypeError(f"mlp: sizes must be a sequence of layer sizes, got {sizes!r}")
    sizes = [_positive_int(s, "every size", "mlp") for s in sizes]
    if len(sizes) < 2:
        raise ConfigError(f"mlp needs at least [inputs, outputs] sizes, got {sizes}")
    if activation not in ACTIVATIONS:
        raise ConfigError(
            f"mlp: unknown activation {activation!r}; expected one of "
            f"{', '.join(sorted(ACTIVATIONS))}"
        )
    if isinstance(dropout, bool) or not isinstance(dropout, int | float) or not 0 <= dropout < 1:
        raise ConfigError(f"mlp: dropout must lie in [0, 1), got {dropout!r}")
    gen = backend.get_rng(rng)
    scheme = "he" if activation in _HE_ACTIVATIONS else "xavier"
    model = Sequential()
    for fan_in, fan_out in itertools.pairwise(sizes[:-1]):
        model.append(Linear(fan_in, fan_out, rng=gen, init=scheme, dtype=dtype))
        model.append(ACTIVATIONS[activation]())
        if dropout > 0:
            drop_rng = None if rng is None else np.random.default_rng(gen.integers(2**63))
            model.append(Dropout(dropout, rng=drop_rng))
    model.append(Linear(sizes[-2], sizes[-1], rng=gen, init="xavier", dtype=dtype))
    return model
