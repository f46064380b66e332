"""Schedule-Free optimizers over torch parameters, and BatchNorm statistics at the average.

:class:`~descend.optim.averaging.ScheduleFree` wraps any descend optimizer, these included
(``ScheduleFree(descend.torch.Adam(...))``): its arithmetic runs on the base's engine. The
classes here are the authors' named optimizers built over ``descend.torch``'s ``GD`` and
``Adam`` (same arguments as in :mod:`descend.optim`, ``process_group`` for ``engine``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from ..optim import averaging as core
from .optimizers import GD, Adam

__all__ = ["AdamWScheduleFree", "SGDScheduleFree", "ScheduleFreePlus", "recompute_batch_norm"]


class SGDScheduleFree(core.SGDScheduleFree):
    """Schedule-Free SGD on torch parameters: ``descend.optim.SGDScheduleFree`` around
    ``descend.torch.GD``; the defaults of ``schedulefree.SGDScheduleFree``."""

    def __init__(self, params: Iterable[Any], lr: Any = 1.0, momentum: float = 0.9,
                 weight_decay: float = 0.0, warmup_steps: int = 0, r: float = 0.0,
                 weight_lr_power: float = 2.0, *, max_grad_norm: float | None = None,
                 process_group: Any = None):
        base = GD(params, lr, max_grad_norm=max_grad_norm, process_group=process_group)
        core.ScheduleFree.__init__(self, base, momentum, warmup_steps=warmup_steps, r=r,
                                   weight_lr_power=weight_lr_power, weight_decay=weight_decay)


class AdamWScheduleFree(core.AdamWScheduleFree):
    """Schedule-Free AdamW on torch parameters: ``descend.optim.AdamWScheduleFree`` around
    ``descend.torch.Adam``; the defaults of ``schedulefree.AdamWScheduleFree``."""

    def __init__(self, params: Iterable[Any], lr: Any = 0.0025,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, warmup_steps: int = 0, r: float = 0.0,
                 weight_lr_power: float = 2.0, *, max_grad_norm: float | None = None,
                 process_group: Any = None):
        core.check_betas(betas)
        base = Adam(params, lr, (0.0, betas[1]), eps, max_grad_norm=max_grad_norm,
                    process_group=process_group)
        core.ScheduleFree.__init__(self, base, betas[0], warmup_steps=warmup_steps, r=r,
                                   weight_lr_power=weight_lr_power, weight_decay=weight_decay)


class ScheduleFreePlus(core.ScheduleFreePlus):
    """ScheduleFree+ on torch parameters: ``descend.optim.ScheduleFreePlus`` around
    ``descend.torch.Adam``, with the defaults of the authors' reference implementation."""

    def __init__(self, params: Iterable[Any], lr: Any = 1.0,
                 betas: tuple[float, float] = (0.9, 0.95), sf_beta1: float = 0.9,
                 eps: float = 1e-8, weight_decay: float = 0.0, r: float = 0.0,
                 polyak_beta: float = 0.0, c_warmup: int = 0, sf_beta1_anneal_steps: int = 0,
                 sf_beta1_max: float = 0.965, weight_lr_power: float = 2.0, *,
                 max_grad_norm: float | None = None, process_group: Any = None):
        core.check_betas(betas)
        base = Adam(params, lr, tuple(betas), eps, max_grad_norm=max_grad_norm,
                    process_group=process_group)
        self._plus(base, sf_beta1, weight_decay, r, polyak_beta, c_warmup,
                   sf_beta1_anneal_steps, sf_beta1_max, weight_lr_power)


def recompute_batch_norm(model: torch.nn.Module, batches: Iterable[Any],
                         optimizer: core.ScheduleFree | None = None) -> None:
    """BatchNorm's running statistics recomputed at the point the model is evaluated at.

    During training the statistics are gathered at y, where gradients are taken; the model
    is evaluated at the average x, where they are off. This puts the optimizer in evaluation
    mode (parameters at x) when one is given, resets every BatchNorm's statistics and runs
    ``model`` over ``batches`` (inputs, or tuples whose first item is the input) in
    training mode without gradients, each statistic a plain average over the batches
    (``torch.optim.swa_utils.update_bn``). The optimizer is left in evaluation mode: evaluate
    next, then ``optimizer.train()`` to go on training (its steps gather statistics at y
    again).
    """
    from torch.optim.swa_utils import update_bn

    if optimizer is not None:
        optimizer.eval()
    update_bn(batches, model)
