"""descend's step sizes on PyTorch models: ``GD``, ``Adam``, ``Subgradient``, ``LBFGS``, ``CG`` as
``torch.optim.Optimizer`` subclasses, taking the same step rules as :mod:`descend.optim`.

>>> import descend.torch as dt
>>> from descend.optim import Armijo
>>> opt = dt.GD(model.parameters(), lr=Armijo(c1=0.1))
>>> loss = opt.step(lambda: loss_fn(model(x), y))   # the closure does not call backward
>>> opt = dt.make_optimizer("gd", model.parameters(), "armijo:c1=0.1")  # by name

Optional: ``pip install 'descend[torch]'``. ``import descend`` never imports torch.
"""

try:
    import torch as _torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess without torch
    raise ImportError(
        "descend.torch needs PyTorch, which is not installed: pip install 'descend[torch]'"
    ) from exc

from ..optim.optimizer import StepInfo
from .engine import TorchEngine
from .optimizers import CG, GD, LBFGS, Adam, Optimizer, Subgradient
from .spec import make_optimizer

__all__ = ["CG", "GD", "LBFGS", "Adam", "Optimizer", "StepInfo", "Subgradient", "TorchEngine",
           "make_optimizer"]
