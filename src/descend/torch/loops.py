"""Closures for the loops people write around ``descend.torch`` optimizers.

:func:`accumulate` turns the closures of several micro-batches into the closure of their
large batch (gradient accumulation), evaluating one micro-batch's graph at a time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from ..errors import ConfigError, ConfigTypeError

Closure = Callable[[], torch.Tensor]


def accumulate(closures: Sequence[Closure],
               weights: Sequence[float] | None = None) -> Closure:
    """One closure over several micro-batches: F = sum_i w_i f_i.

    Parameters
    ----------
    closures : sequence of callables
        One per micro-batch, each running its forward pass and returning its loss (without
        calling backward), as for ``opt.step(closure)``.
    weights : sequence of float, or None
        w_i; None means 1/k for k micro-batches, which makes F the large batch's mean loss
        when the micro-batches are of equal size (pass n_i / n for sizes n_i otherwise).

    Returns
    -------
    callable
        A closure for ``opt.step``. With gradients enabled (the step's evaluation) it runs
        each micro-batch's forward and backward pass in turn, so that one micro-batch's
        graph is alive at a time, the gradients adding up in ``.grad``, and returns F
        (detached): a closure that calls backward itself, which the optimizer detects.
        Under ``torch.no_grad()`` (line-search trial points) it runs the forward passes
        only. The random state is replayed around the whole closure, so every trial sees
        the micro-batches' dropout masks of the step's evaluation.

    A step with it equals the step on the large batch: same loss, same gradient (to
    rounding: the sum is taken in another order), same trials.
    """
    closures = list(closures)
    if not closures:
        raise ConfigError("accumulate() needs at least one closure")
    for i, c in enumerate(closures):
        if not callable(c):
            raise ConfigTypeError(f"accumulate(): closure {i} is a {type(c).__name__}, "
                                  "not a callable")
    if weights is None:
        ws = [1.0 / len(closures)] * len(closures)
    else:
        ws = [float(w) for w in weights]
        if len(ws) != len(closures):
            raise ConfigError(f"accumulate(): {len(ws)} weights for {len(closures)} closures")
        bad = [w for w in ws if not math.isfinite(w) or w < 0]
        if bad:
            raise ConfigError(f"accumulate(): weights must be finite and >= 0, got {bad[0]!r}")

    def closure() -> torch.Tensor:
        total: torch.Tensor | None = None
        backward = torch.is_grad_enabled()
        for c, w in zip(closures, ws):
            loss = c()
            if not isinstance(loss, torch.Tensor):
                raise ConfigTypeError("accumulate(): a closure must return the loss as a "
                                      f"torch.Tensor, got {type(loss).__name__}")
            part = loss * w
            if backward and part.requires_grad:
                part.backward()
            part = part.detach()
            total = part if total is None else total + part
        assert total is not None
        return total

    return closure
