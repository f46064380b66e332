"""Reverse-mode automatic differentiation over NumPy arrays."""

from .check import grad_check
from .graph import enable_grad, is_grad_enabled, no_grad
from .ops import concatenate, maximum, minimum, stack, where
from .tensor import Tensor, ones, randn, tensor, zeros

__all__ = [
    "Tensor",
    "concatenate",
    "enable_grad",
    "grad_check",
    "is_grad_enabled",
    "maximum",
    "minimum",
    "no_grad",
    "ones",
    "randn",
    "stack",
    "tensor",
    "where",
    "zeros",
]
