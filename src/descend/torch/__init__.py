"""descend's step sizes on PyTorch models: ``GD``, ``Adam``, ``Subgradient``, ``LBFGS``, ``CG`` as
``torch.optim.Optimizer`` subclasses, taking the same step rules as :mod:`descend.optim`; ``Momo``
and ``MomoAdam`` too; Schedule-Free averaging (``ScheduleFree`` around any of them,
``SGDScheduleFree``, ``AdamWScheduleFree``, ``ScheduleFreePlus``) with
``recompute_batch_norm`` for BatchNorm's statistics at the average.

>>> import descend.torch as dt
>>> from descend.optim import Armijo
>>> opt = dt.GD(model.parameters(), lr=Armijo(c1=0.1))
>>> loss = opt.step(lambda: loss_fn(model(x), y))   # the closure does not call backward
>>> opt = dt.make_optimizer("gd", model.parameters(), "armijo:c1=0.1")  # by name
>>> opt = dt.recommended(model.parameters())   # the best untuned choice, no learning rate
>>> opt.step(dt.accumulate([lambda: loss_fn(model(a), b) for a, b in micro_batches]))

Optional: ``pip install 'descend[torch]'``. ``import descend`` never imports torch.
"""

try:
    import torch as _torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess without torch
    raise ImportError(
        "descend.torch needs PyTorch, which is not installed: pip install 'descend[torch]'"
    ) from exc

from ..optim.averaging import ScheduleFree
from ..optim.optimizer import StepInfo
from .averaging import AdamWScheduleFree, ScheduleFreePlus, SGDScheduleFree, recompute_batch_norm
from .engine import TorchEngine
from .loops import accumulate
from .optimizers import CG, GD, LBFGS, Adam, Momo, MomoAdam, Optimizer, Subgradient
from .spec import make_optimizer, recommended

__all__ = ["CG", "GD", "LBFGS", "Adam", "AdamWScheduleFree", "Momo", "MomoAdam", "Optimizer",
           "SGDScheduleFree", "ScheduleFree", "ScheduleFreePlus", "StepInfo", "Subgradient",
           "TorchEngine", "accumulate", "make_optimizer", "recommended", "recompute_batch_norm"]
