"""Gradient utilities over parameters: clipping by the global norm, as in PyTorch."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable

import numpy as np

from ..autodiff.tensor import Tensor
from ..errors import ConfigError, GradientError

__all__ = ["clip_grad_norm_"]

#: Added to the norm before dividing, as PyTorch does, so a zero gradient stays zero.
_EPS = 1e-6


def clip_grad_norm_(
    parameters: Tensor | Iterable[Tensor],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> np.float64:
    """Scale the gradients of ``parameters`` in place so that their global norm is at most
    ``max_norm``; return the global norm they had before.

    The global norm treats every gradient as one vector g = (g_1, ..., g_m):

    ``total = (sum_i ||g_i||_p^p)^(1/p)`` (``p = norm_type``; ``inf``: ``max_i max |g_i|``),

    and when ``total > max_norm`` every gradient is multiplied by
    ``max_norm / (total + 1e-6)``, which keeps the direction of g (PyTorch's
    ``torch.nn.utils.clip_grad_norm_``, same formula and same 1e-6).

    Parameters
    ----------
    parameters : Tensor or iterable of Tensor
        Those with ``.grad`` None are skipped.
    max_norm : float
        The largest norm allowed, > 0.
    norm_type : float
        p >= 1, or ``math.inf``.
    error_if_nonfinite : bool
        Raise :class:`~descend.errors.GradientError` when the norm is NaN or inf (else the
        gradients are scaled by a NaN factor, as in PyTorch).

    Returns
    -------
    numpy.float64
        The norm before clipping (``float(total)`` and ``total.item()`` both work).
    """
    if isinstance(parameters, Tensor):
        params = [parameters]
    elif isinstance(parameters, Iterable) and not isinstance(parameters, str | bytes):
        params = list(parameters)
    else:
        raise TypeError("clip_grad_norm_: parameters must be a Tensor or an iterable of "
                        f"Tensors, got {type(parameters).__name__}")
    for p in params:
        if not isinstance(p, Tensor):
            raise TypeError("clip_grad_norm_: parameters must hold Tensors, got "
                            f"{type(p).__name__}")
    if (isinstance(max_norm, bool) or not isinstance(max_norm, numbers.Real)
            or not max_norm > 0):
        raise ConfigError(f"clip_grad_norm_: max_norm must be a number > 0, got {max_norm!r}")
    if (isinstance(norm_type, bool) or not isinstance(norm_type, numbers.Real)
            or not norm_type >= 1):
        raise ConfigError(f"clip_grad_norm_: norm_type must be >= 1 or inf, got {norm_type!r}")
    with_grad = [p for p in params if p.grad is not None]
    grads = [p.grad for p in with_grad]
    if not grads:
        return np.float64(0.0)
    p_norm = float(norm_type)
    if math.isinf(p_norm):
        total = max(float(np.max(np.abs(g))) if g.size else 0.0 for g in grads)
    elif p_norm == 2.0:
        # sums of squares in float64: float32 gradients of millions of entries lose digits
        total = math.sqrt(sum(float(np.dot(g.ravel().astype(np.float64),
                                           g.ravel().astype(np.float64))) for g in grads))
    else:
        total = sum(float(np.sum(np.abs(g.astype(np.float64)) ** p_norm))
                    for g in grads) ** (1.0 / p_norm)
    if error_if_nonfinite and not math.isfinite(total):
        raise GradientError(f"clip_grad_norm_: the total gradient norm is {total} (not "
                            "finite); pass error_if_nonfinite=False to scale anyway")
    coef = max_norm / (total + _EPS)
    if coef < 1.0 or math.isnan(coef):
        for p in with_grad:
            # a new array rather than in place: two gradients may share memory, and one
            # array must not be scaled twice
            p.grad = (p.grad * np.asarray(coef, dtype=p.grad.dtype)).astype(p.grad.dtype,
                                                                            copy=False)
    return np.float64(total)
