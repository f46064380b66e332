"""Smooth elementwise primitives: arithmetic, exp/log, tanh, sigmoid, softplus, gelu.

Each forward is followed by its vector-Jacobian product ``vjp(g, out, inputs, needs)``.
Broadcasting is undone by the engine, so a VJP returns gradients in the broadcast shape.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...backend import xp
from ._core import apply1, apply2, primitive


# ---------------------------------------------------------------------------- add, sub
def _add_vjp(g, out, inputs, needs):
    return g, g


_ADD = primitive("add", xp.add, _add_vjp)


def add(a: Any, b: Any) -> Any:
    """a + b with broadcasting."""
    return apply2(_ADD, a, b)


def _sub_vjp(g, out, inputs, needs):
    return g, (-g if needs[1] else None)


_SUB = primitive("sub", xp.subtract, _sub_vjp)


def sub(a: Any, b: Any) -> Any:
    """a - b with broadcasting."""
    return apply2(_SUB, a, b)


def _neg_vjp(g, out, inputs, needs):
    return (-g,)


_NEG = primitive("neg", xp.negative, _neg_vjp)


def neg(a: Any) -> Any:
    """-a."""
    return apply1(_NEG, a)


# ---------------------------------------------------------------------------- mul, div
def _mul_vjp(g, out, inputs, needs):
    a, b = inputs
    return (g * b if needs[0] else None), (g * a if needs[1] else None)


_MUL = primitive("mul", xp.multiply, _mul_vjp)


def mul(a: Any, b: Any) -> Any:
    """a * b with broadcasting."""
    return apply2(_MUL, a, b)


def _div_vjp(g, out, inputs, needs):
    _a, b = inputs
    ga = g / b if needs[0] else None
    gb = -g * out / b if needs[1] else None
    return ga, gb


_DIV = primitive("div", xp.true_divide, _div_vjp)


def div(a: Any, b: Any) -> Any:
    """a / b with broadcasting."""
    return apply2(_DIV, a, b)


# ---------------------------------------------------------------------------- power
def _pow_forward(a, b):
    return xp.power(a, b)


def _pow_vjp(g, out, inputs, needs):
    a, b = inputs
    ga = gb = None
    if needs[0]:
        # d/da a**b = b * a**(b-1), taken as 0 where b == 0 (a**0 is constant, even at a = 0)
        if np.ndim(b) == 0:
            ga = g * b * xp.power(a, b - 1) if b != 0 else xp.zeros_like(g * a)
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                ga = g * xp.where(b == 0, 0, b * xp.power(a, b - 1))
    if needs[1]:
        # d/db a**b = a**b * log(a); at a = 0 the limit of a**b * log(a) is 0 for b > 0.
        safe = xp.where(a == 0, 1, a)
        gb = g * out * xp.log(safe)
    return ga, gb


_POW = primitive("pow", _pow_forward, _pow_vjp)


def power(a: Any, b: Any) -> Any:
    """a ** b; either may be a tensor. d/db uses log(a) (NaN for a < 0, 0 taken at a = 0)."""
    return apply2(_POW, a, b)


# ---------------------------------------------------------------------------- exp, log, sqrt
def _exp_vjp(g, out, inputs, needs):
    return (g * out,)


_EXP = primitive("exp", xp.exp, _exp_vjp)


def exp(a: Any) -> Any:
    """e ** a."""
    return apply1(_EXP, a)


def _log_vjp(g, out, inputs, needs):
    return (g / inputs[0],)


_LOG = primitive("log", xp.log, _log_vjp)


def log(a: Any) -> Any:
    """Natural logarithm (NaN below 0, -inf at 0, as NumPy)."""
    return apply1(_LOG, a)


def _sqrt_vjp(g, out, inputs, needs):
    return (g * 0.5 / out,)


_SQRT = primitive("sqrt", xp.sqrt, _sqrt_vjp)


def sqrt(a: Any) -> Any:
    """Square root; its gradient at 0 is +inf, as the mathematics says."""
    return apply1(_SQRT, a)


# ---------------------------------------------------------------------------- tanh, sigmoid
def _tanh_vjp(g, out, inputs, needs):
    return (g * (1 - out * out),)


_TANH = primitive("tanh", xp.tanh, _tanh_vjp)


def tanh(a: Any) -> Any:
    """Hyperbolic tangent."""
    return apply1(_TANH, a)


def _sigmoid_forward(a):
    # e = exp(-|a|) never overflows; 1/(1+e) for a >= 0 and e/(1+e) for a < 0 keep full
    # relative precision in both tails (sigmoid(-40) = 4.2e-18, not 0).
    e = xp.exp(-xp.abs(a))
    out = 1 / (1 + e)
    return xp.where(a >= 0, out, e * out)


def _sigmoid_vjp(g, out, inputs, needs):
    return (g * out * (1 - out),)


_SIGMOID = primitive("sigmoid", _sigmoid_forward, _sigmoid_vjp)


def sigmoid(a: Any) -> Any:
    """The logistic function 1 / (1 + exp(-a)), stable for any magnitude."""
    return apply1(_SIGMOID, a)


def _softplus_forward(a):
    return xp.logaddexp(0, a).astype(a.dtype, copy=False)


def _softplus_vjp(g, out, inputs, needs):
    return (g * _sigmoid_forward(inputs[0]),)


_SOFTPLUS = primitive("softplus", _softplus_forward, _softplus_vjp)


def softplus(a: Any) -> Any:
    """log(1 + exp(a)), computed without overflow; its derivative is sigmoid(a)."""
    return apply1(_SOFTPLUS, a)


_SQRT_HALF = 1 / math.sqrt(2.0)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)


def _erf(a):
    from scipy.special import erf

    return erf(a)


def _gelu_forward(a):
    return (0.5 * a * (1 + _erf(a * _SQRT_HALF))).astype(a.dtype, copy=False)


def _gelu_vjp(g, out, inputs, needs):
    a = inputs[0]
    cdf = 0.5 * (1 + _erf(a * _SQRT_HALF))
    pdf = _INV_SQRT_2PI * xp.exp(-0.5 * a * a)
    return ((g * (cdf + a * pdf)).astype(a.dtype, copy=False),)


_GELU = primitive("gelu", _gelu_forward, _gelu_vjp)


def gelu(a: Any) -> Any:
    """x * Phi(x) with Phi the standard normal CDF (the exact GELU, as PyTorch's default)."""
    return apply1(_GELU, a)
