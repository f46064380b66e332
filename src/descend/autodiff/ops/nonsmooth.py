"""Primitives with kinks, each with its stated subgradient choice.

- relu'(0) = 0
- |x|'(0) = 0
- ``maximum(a, b)`` / ``minimum(a, b)`` at a tie: each input gets half the gradient
- ``max``/``min`` reductions: tied extremes share the gradient equally
- ``clip(lo, hi)``: gradient 1 on the closed interval [lo, hi], 0 outside
- ``leaky_relu``: slope 1 for x > 0 and ``negative_slope`` for x <= 0
"""

from __future__ import annotations

import numbers
from typing import Any

from ...backend import xp
from ...errors import ConfigError
from ._core import Kernel, apply1, apply2, call, primitive


def _relu_forward(a):
    return xp.maximum(a, 0)


def _relu_vjp(g, out, inputs, needs):
    return (g * (out > 0),)  # relu'(0) = 0


def _relu_forward_into(ws, a):
    out = ws.get("out")
    if out is None:  # the first call's result, in NumPy's memory layout, is the buffer
        out = ws["out"] = _relu_forward(a)
        return out
    return xp.maximum(a, 0, out=out)


def _relu_vjp_into(ws, g, out, inputs, needs, fresh):
    if fresh[0]:
        return _relu_vjp(g, out, inputs, needs)
    mask, ga = ws.get("mask"), ws.get("g")
    if ga is None:
        mask = ws["mask"] = out > 0
        ga = ws["g"] = g * mask
        return (ga,)
    xp.greater(out, 0, out=mask)
    return (xp.multiply(g, mask, out=ga),)


_RELU = primitive("relu", _relu_forward, _relu_vjp, Kernel(_relu_forward_into, _relu_vjp_into))


def relu(a: Any) -> Any:
    """max(a, 0); the subgradient at 0 is 0."""
    return apply1(_RELU, a)


def _leaky_forward(a, negative_slope):
    return xp.where(a > 0, a, a * negative_slope)


def _leaky_vjp(g, out, inputs, needs, negative_slope):
    return (xp.where(inputs[0] > 0, g, g * negative_slope),)


_LEAKY = primitive("leaky_relu", _leaky_forward, _leaky_vjp)


def leaky_relu(a: Any, negative_slope: float = 0.01) -> Any:
    """a for a > 0, negative_slope * a otherwise (the slope at 0 is negative_slope)."""
    if isinstance(negative_slope, bool) or not isinstance(negative_slope, numbers.Real):
        raise TypeError(f"negative_slope must be a number, got {negative_slope!r}")
    return apply1(_LEAKY, a, {"negative_slope": negative_slope})


def _abs_vjp(g, out, inputs, needs):
    return (g * xp.sign(inputs[0]),)  # sign(0) = 0: |x|'(0) = 0


_ABS = primitive("abs", xp.abs, _abs_vjp)


def absolute(a: Any) -> Any:
    """|a|; the subgradient at 0 is 0."""
    return apply1(_ABS, a)


def _maximum_vjp(g, out, inputs, needs):
    a, b = inputs
    half = g * 0.5 * (a == b)
    ga = g * (a > b) + half if needs[0] else None
    gb = g * (b > a) + half if needs[1] else None
    return ga, gb


_MAXIMUM = primitive("maximum", xp.maximum, _maximum_vjp)


def maximum(a: Any, b: Any) -> Any:
    """Elementwise maximum with broadcasting; a tie gives each input half the gradient."""
    return apply2(_MAXIMUM, a, b)


def _minimum_vjp(g, out, inputs, needs):
    a, b = inputs
    half = g * 0.5 * (a == b)
    ga = g * (a < b) + half if needs[0] else None
    gb = g * (b < a) + half if needs[1] else None
    return ga, gb


_MINIMUM = primitive("minimum", xp.minimum, _minimum_vjp)


def minimum(a: Any, b: Any) -> Any:
    """Elementwise minimum with broadcasting; a tie gives each input half the gradient."""
    return apply2(_MINIMUM, a, b)


def _clip_forward(a, lo, hi):
    return xp.clip(a, lo, hi)


def _clip_vjp(g, out, inputs, needs, lo, hi):
    a = inputs[0]
    inside = xp.ones(a.shape, dtype=bool)
    if lo is not None:
        inside &= a >= lo
    if hi is not None:
        inside &= a <= hi
    return (g * inside,)


_CLIP = primitive("clip", _clip_forward, _clip_vjp)


def clip(a: Any, lo: float | None = None, hi: float | None = None) -> Any:
    """Clip to [lo, hi] (either may be None); gradient 1 on the closed interval, else 0."""
    for name, bound in (("lo", lo), ("hi", hi)):
        if bound is not None and (isinstance(bound, bool)
                                  or not isinstance(bound, numbers.Real)
                                  or bound != bound):
            raise ConfigError(f"clip: {name} must be a number or None, got {bound!r:.40}")
    if lo is None and hi is None:
        raise ValueError("clip needs at least one of lo and hi")
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"clip needs lo <= hi, got lo={lo}, hi={hi}")
    return apply1(_CLIP, a, {"lo": lo, "hi": hi})


def _where_forward(cond, a, b):
    return xp.where(cond, a, b)


def _where_vjp(g, out, inputs, needs):
    cond = inputs[0]
    ga = xp.where(cond, g, 0) if needs[1] else None
    gb = xp.where(cond, 0, g) if needs[2] else None
    return None, ga, gb


_WHERE = primitive("where", _where_forward, _where_vjp)


def where(cond: Any, a: Any, b: Any) -> Any:
    """a where ``cond`` holds, else b (``cond`` a boolean array; it gets no gradient)."""
    from ..tensor import Tensor

    if isinstance(cond, Tensor):
        cond = cond.data
    return call(_WHERE, xp.asarray(cond, dtype=bool), a, b)


def _class_mask_forward(targets, classes):
    n = targets.shape[0]
    mask = xp.zeros((n, classes), dtype=bool)
    mask[xp.arange(n), targets] = True
    return mask


def _class_mask_vjp(g, out, inputs, needs, classes):
    return (None,)  # integer labels: no gradient


_CLASS_MASK = primitive("class_mask", _class_mask_forward, _class_mask_vjp)


def class_mask(targets: Any, classes: int) -> Any:
    """The boolean (n, classes) mask that is True at ``[i, targets[i]]`` (integer labels,
    checked by the caller; no gradient). A primitive rather than NumPy code in a loss, so
    that a captured step computes it from each batch's targets instead of keeping the
    first batch's mask as a constant."""
    return apply1(_CLASS_MASK, targets, {"classes": int(classes)})
