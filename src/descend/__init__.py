"""descend: backpropagation and gradient descent over NumPy, with first-class step-size control.

>>> import descend as ds
>>> x = ds.tensor([1.0, 2.0, 3.0], requires_grad=True)
>>> (x * x).sum().backward()
>>> x.grad
array([2., 4., 6.], dtype=float32)
"""

# The subpackages, importable as attributes: ds.nn, ds.optim, ds.train, ds.data, ...
from . import data, errors, functional, linesearch, nn, optim, plot, problems, train
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
from .autodiff.ops import absolute, clip, exp, log, matmul, sqrt
from .backend import manual_seed

__version__ = "0.1.0"


#: activations and the softmax family have one home, ds.functional (ds.F); these top-level
#: spellings still work, with a warning (the top level keeps NumPy's math: exp, log, ...)
MOVED_TO_FUNCTIONAL = frozenset({"relu", "sigmoid", "tanh", "logsumexp"})


def __getattr__(name: str) -> object:
    if name in MOVED_TO_FUNCTIONAL:
        import warnings

        warnings.warn(f"descend.{name} is descend.functional.{name} (also ds.F.{name}); the "
                      "top-level name will be removed", DeprecationWarning, stacklevel=2)
        return getattr(functional, name)
    # The estimators are scikit-learn estimators: scikit-learn is imported only when they
    # are first asked for, so that `import descend` stays light and works without it.
    if name in ("MLPClassifier", "MLPRegressor", "estimators"):
        import importlib

        estimators = importlib.import_module(".estimators", __name__)
        return estimators if name == "estimators" else getattr(estimators, name)
    raise AttributeError(f"module 'descend' has no attribute {name!r}")


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
    "estimators",
    "exp",
    "functional",
    "grad_check",
    "is_grad_enabled",
    "linesearch",
    "log",
    "manual_seed",
    "matmul",
    "maximum",
    "minimum",
    "nn",
    "no_grad",
    "ones",
    "optim",
    "plot",
    "problems",
    "randn",
    "sqrt",
    "stack",
    "tensor",
    "train",
    "where",
    "zeros",
]
