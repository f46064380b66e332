"""The registry's doors for PyTorch: :func:`make_optimizer` with ``descend.torch``'s classes.

Step rules need nothing torch-specific (they read numbers from the step's context), so
:func:`descend.optim.parse_step_rule` serves both engines; only the optimizer classes differ:
:data:`TORCH` holds them under the names :data:`descend.optim.spec.OPTIMIZERS` looks up, as
:data:`descend.optim.spec.NUMPY` holds the NumPy engine's.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from ..optim import spec
from . import averaging, optimizers

__all__ = ["TORCH", "make_optimizer", "recommended"]

#: ``descend.torch``'s optimizer classes, by the names the registry's entries give.
TORCH = SimpleNamespace(
    GD=optimizers.GD, Adam=optimizers.Adam, Subgradient=optimizers.Subgradient,
    LBFGS=optimizers.LBFGS, CG=optimizers.CG, Momo=optimizers.Momo,
    MomoAdam=optimizers.MomoAdam, SGDScheduleFree=averaging.SGDScheduleFree,
    AdamWScheduleFree=averaging.AdamWScheduleFree, ScheduleFreePlus=averaging.ScheduleFreePlus,
)


def make_optimizer(name: str, params: Any, lr: Any = None, *, strict: bool = True,
                   **options: Any) -> Any:
    """The ``descend.torch`` optimizer ``name`` over torch parameters.

    ``lr`` is a spec string (``"armijo:c1=0.1"``, parsed by the one registry,
    :data:`descend.optim.spec.RULES`), a number, a schedule or a rule; None is the
    optimizer's registered default. ``strict`` and ``options`` as in
    :func:`descend.optim.spec.make_optimizer` (``momentum``, ``weight_decay``,
    ``schedule_free``, ...).

    >>> opt = descend.torch.make_optimizer("gd", model.parameters(), "sls", momentum=0.9)
    """
    return spec.make_optimizer(name, params, lr, namespace=TORCH, strict=strict, **options)


def recommended(params: Any, **overrides: Any) -> Any:
    """descend's best untuned optimizer over torch parameters (the registry's
    ``"recommended"`` entry: now ``descend.torch.Momo(params)``, MoMo's model step over
    averaged momentum, one forward and backward pass a step), for a plain loop that knows
    nothing of the epoch::

        opt = descend.torch.recommended(model.parameters())
        for x, y in loader:
            opt.step(lambda: loss_fn(model(x), y))   # the closure does not call backward

    ``overrides`` as in :func:`descend.optim.spec.recommended` (``lr``, ``weight_decay``,
    ``max_grad_norm``).
    """
    return spec.recommended(params, namespace=TORCH, **overrides)
