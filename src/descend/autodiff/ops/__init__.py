"""The primitives: THE ONLY PLACE GRADIENTS ARE WRITTEN.

Each module pairs forwards with their vector-Jacobian products. Everything else in descend
is composed from these and differentiated by the engine.
"""

from .conv import conv2d, max_pool2d
from .elementwise import (
    add,
    div,
    exp,
    gelu,
    log,
    mul,
    neg,
    power,
    sigmoid,
    softplus,
    sqrt,
    sub,
    tanh,
)
from .linalg import linear, matmul
from .nonsmooth import absolute, class_mask, clip, leaky_relu, maximum, minimum, relu, where
from .reduce import amax, amin, logsumexp, mean, sum
from .shape import astype, broadcast_to, concatenate, getitem, reshape, stack, transpose
from .softmax import cross_entropy_per_sample, log_softmax, softmax

__all__ = [
    "absolute",
    "add",
    "amax",
    "amin",
    "astype",
    "broadcast_to",
    "class_mask",
    "clip",
    "concatenate",
    "conv2d",
    "cross_entropy_per_sample",
    "div",
    "exp",
    "gelu",
    "getitem",
    "leaky_relu",
    "linear",
    "log",
    "log_softmax",
    "logsumexp",
    "matmul",
    "max_pool2d",
    "maximum",
    "mean",
    "minimum",
    "mul",
    "neg",
    "power",
    "relu",
    "reshape",
    "sigmoid",
    "softmax",
    "softplus",
    "sqrt",
    "stack",
    "sub",
    "sum",
    "tanh",
    "transpose",
    "where",
]
