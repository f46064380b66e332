"""``descend train``'s flags as library objects, shared by both engines' command lines (the
NumPy engine's ``descend.cli`` and ``--engine torch``'s ``descend.torch.cli``, which must not
import each other)."""

from __future__ import annotations

import argparse
from typing import Any

from .train import StopWhen

__all__ = ["optimizer_options", "stop_when"]


def optimizer_options(args: argparse.Namespace) -> dict[str, Any]:
    """``descend train``'s optimizer flags as :func:`descend.optim.spec.make_optimizer`'s
    options (None: not given); both engines build their optimizer from them."""
    return {"momentum": args.momentum, "nesterov": args.nesterov,
            "weight_decay": args.weight_decay, "history_size": args.history_size,
            "beta": args.beta}


def stop_when(args: argparse.Namespace) -> StopWhen:
    """The stopping criteria ``descend train``'s flags ask for (both engines)."""
    return StopWhen(max_steps=args.max_steps, loss_below=args.loss_below,
                    grad_norm_below=args.grad_norm_below,
                    rel_loss_change_below=args.rel_change_below,
                    param_change_below=args.param_change_below, patience=args.patience,
                    time_limit=args.time_limit)
