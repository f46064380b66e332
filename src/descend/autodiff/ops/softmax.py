"""Fused primitives of the softmax family, written once for numerical stability and speed:
softmax, log_softmax and the cross-entropy of logits with integer targets."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...backend import xp
from ...errors import DataError, DTypeError, ShapeError
from ._core import Kernel, apply1, apply2, primitive


def _log_softmax_forward(x, axis):
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


def _log_softmax_vjp(g, out, inputs, needs, axis):
    return (g - xp.exp(out) * g.sum(axis=axis, keepdims=True),)


_LOG_SOFTMAX = primitive("log_softmax", _log_softmax_forward, _log_softmax_vjp)


def _one_axis(x: Any, axis: int) -> int:
    from .reduce import normalize_axis

    if not isinstance(axis, int | np.integer) or isinstance(axis, bool):
        raise TypeError(f"axis must be an int, got {axis!r}")
    try:
        ndim = np.ndim(getattr(x, "data", x))
    except ValueError:
        raise ShapeError("x must be a tensor or an array, got ragged nested sequences") from None
    return normalize_axis(axis, ndim)[0]  # type: ignore[index]


def log_softmax(x: Any, axis: int = -1) -> Any:
    """x - logsumexp(x, axis): log-probabilities, stable for logits of any magnitude."""
    return apply1(_LOG_SOFTMAX, x, {"axis": _one_axis(x, axis)})


def _softmax_forward(x, axis):
    e = xp.exp(x - x.max(axis=axis, keepdims=True))
    e /= e.sum(axis=axis, keepdims=True)
    return e


def _softmax_vjp(g, out, inputs, needs, axis):
    return (out * (g - (g * out).sum(axis=axis, keepdims=True)),)


_SOFTMAX = primitive("softmax", _softmax_forward, _softmax_vjp)


def softmax(x: Any, axis: int = -1) -> Any:
    """exp(x) / sum(exp(x)) along ``axis``, shifted by the maximum so it never overflows."""
    return apply1(_SOFTMAX, x, {"axis": _one_axis(x, axis)})


def _ce_forward(logits, targets):
    # loss_i = logsumexp(x_i) - x_{i, y_i}
    m = logits.max(axis=1, keepdims=True)
    lse = xp.log(xp.exp(logits - m).sum(axis=1))
    lse += m[:, 0]
    lse -= logits[xp.arange(len(targets)), targets]
    return lse


def _ce_vjp(g, out, inputs, needs):
    logits, targets = inputs
    rows = xp.arange(len(targets))
    # softmax = exp(x - lse) with lse - m = loss + (x_y - m) recovered from the forward's
    # result; shifting by the row maximum m keeps float32 precision for logits of size 1e3.
    shifted = logits - logits.max(axis=1, keepdims=True)
    p = xp.exp(shifted - (out + shifted[rows, targets])[:, None])
    p[rows, targets] -= 1
    p *= g[:, None]
    return p, None


def _ce_forward_into(ws, logits, targets):
    # (ndarray.max and .sum are these reductions, behind a Python wrapper)
    m = ws.get("m")
    if m is None:  # the first call's results, in NumPy's memory layout, are the buffers
        m = ws["m"] = xp.maximum.reduce(logits, axis=1, keepdims=True)
        shifted = ws["shifted"] = logits - m  # kept for the VJP, which computes it again
        e = ws["e"] = xp.exp(shifted)
        lse = ws["out"] = xp.log(xp.add.reduce(e, axis=1))
        rows = ws["rows"] = xp.arange(len(targets))
    else:
        shifted, e, rows, lse = ws["shifted"], ws["e"], ws["rows"], ws["out"]
        xp.maximum.reduce(logits, axis=1, keepdims=True, out=m)
        xp.subtract(logits, m, out=shifted)
        xp.exp(shifted, out=e)
        xp.log(xp.add.reduce(e, axis=1, out=lse), out=lse)
    lse += m[:, 0]
    lse -= logits[rows, targets]
    return lse


def _ce_vjp_into(ws, g, out, inputs, needs, fresh):
    _logits, targets = inputs
    shifted, rows = ws["shifted"], ws["rows"]  # the forward's, from the same logits
    p = xp.empty_like(shifted) if fresh[0] else ws["e"]  # e is free once the sum is taken
    xp.subtract(shifted, (out + shifted[rows, targets])[:, None], out=p)
    xp.exp(p, out=p)
    p[rows, targets] -= 1
    p *= g[:, None]
    return p, None


_CROSS_ENTROPY = primitive("cross_entropy", _ce_forward, _ce_vjp,
                           Kernel(_ce_forward_into, _ce_vjp_into))


def cross_entropy_per_sample(logits: Any, targets: Any) -> Any:
    """-log softmax(logits)[target] for each row: logits (n, k), integer targets (n,)."""
    x = getattr(logits, "data", logits)
    # (a Tensor's array; an ndarray itself, not a copy through its buffer: ndarray.data)
    t = targets.data if hasattr(targets, "requires_grad") else np.asarray(targets)
    if np.ndim(x) != 2:
        raise ShapeError(f"cross_entropy needs logits of shape (n, classes), got {np.shape(x)}")
    if t.dtype.kind not in "iu":
        raise DTypeError(f"cross_entropy needs integer class targets, got dtype {t.dtype}")
    if t.shape != (x.shape[0],):
        raise ShapeError(
            f"cross_entropy: logits of shape {x.shape} need targets of shape ({x.shape[0]},), "
            f"got {t.shape}"
        )
    if t.size and (t.min() < 0 or t.max() >= x.shape[1]):
        bad = t[(t < 0) | (t >= x.shape[1])][0]
        raise DataError(
            f"cross_entropy: target {bad} is out of range for {x.shape[1]} classes "
            f"(valid: 0..{x.shape[1] - 1})"
        )
    return apply2(_CROSS_ENTROPY, logits, t)
