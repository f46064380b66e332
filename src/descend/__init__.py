"""descend: backpropagation and gradient descent over NumPy, with first-class step-size control.

>>> import descend as ds
>>> x = ds.tensor([1.0, 2.0, 3.0], requires_grad=True)
>>> (x * x).sum().backward()
>>> x.grad
array([2., 4., 6.], dtype=float32)
"""

# The subpackages, importable as attributes: ds.nn, ds.optim, ds.train, ds.data, ...
from . import data, errors, functional, linesearch, nn, optim, problems, train
from . import functional as F
from .autodiff import (
    Tensor,
    concatenate,
    enable_grad,
    grad_check,
    is_grad_enabled,
    maximum,
    minimum,
    no_grad,
    ones,
    randn,
    stack,
    tensor,
    where,
    zeros,
)
from .autodiff.ops import (
    absolute,
    clip,
    exp,
    log,
    logsumexp,
    matmul,
    relu,
    sigmoid,
    sqrt,
    tanh,
)
from .backend import manual_seed
from .estimators import MLPClassifier, MLPRegressor

__version__ = "0.1.0"

__all__ = [
    "F",
    "MLPClassifier",
    "MLPRegressor",
    "Tensor",
    "__version__",
    "absolute",
    "clip",
    "concatenate",
    "data",
    "enable_grad",
    "errors",
    "exp",
    "functional",
    "grad_check",
    "is_grad_enabled",
    "linesearch",
    "log",
    "logsumexp",
    "manual_seed",
    "matmul",
    "maximum",
    "minimum",
    "nn",
    "no_grad",
    "ones",
    "optim",
    "problems",
    "randn",
    "relu",
    "sigmoid",
    "sqrt",
    "stack",
    "tanh",
    "tensor",
    "train",
    "where",
    "zeros",
]
