"""Matrix product with NumPy's rules: 1-D, 2-D and batched N-D operands."""

from __future__ import annotations

from typing import Any

from ...backend import xp
from ._core import Kernel, apply2, call, primitive


def _matmul_vjp(g, out, inputs, needs):
    a, b = inputs
    if a.ndim == 2 and b.ndim == 2:  # the common case, no reshaping
        return (g @ b.T if needs[0] else None), (a.T @ g if needs[1] else None)
    if a.ndim == 1 and b.ndim == 1:
        return (g * b if needs[0] else None), (g * a if needs[1] else None)
    # Promote 1-D operands as NumPy does, then drop the promoted axis again.
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    g2 = g
    if a.ndim == 1:
        g2 = xp.expand_dims(g2, -2)
    if b.ndim == 1:
        g2 = xp.expand_dims(g2, -1)
    ga = gb = None
    if needs[0]:
        ga = g2 @ xp.swapaxes(b2, -1, -2)
        if a.ndim == 1:
            ga = ga[..., 0, :]
    if needs[1]:
        gb = xp.swapaxes(a2, -1, -2) @ g2
        if b.ndim == 1:
            gb = gb[..., 0]
    return ga, gb


_MATMUL = primitive("matmul", xp.matmul, _matmul_vjp)


def matmul(a: Any, b: Any) -> Any:
    """a @ b (1-D, 2-D and batched, as ``numpy.matmul``); misaligned shapes raise
    ``ShapeError`` naming both."""
    return apply2(_MATMUL, a, b)


def _linear_forward(x, weight, bias):
    out = x @ weight.T
    if bias is not None:
        out += bias
    return out


def _linear_vjp(g, out, inputs, needs):
    x, weight, _bias = inputs
    gx = g @ weight if needs[0] else None
    gw = gb = None
    if needs[1]:
        if g.ndim == 2:
            gw = g.T @ x
        else:  # leading batch axes: fold them into one
            gw = g.reshape(-1, g.shape[-1]).T @ x.reshape(-1, x.shape[-1])
    if needs[2]:
        gb = xp.add.reduce(g.reshape(-1, g.shape[-1]), axis=0)  # .sum(axis=0), unwrapped
    return gx, gw, gb


def _linear_forward_into(ws, x, weight, bias):
    out = ws.get("out")
    if out is None:  # the first call's result is the buffer
        out = ws["out"] = _linear_forward(x, weight, bias)
        return out
    xp.matmul(x, weight.T, out=out)
    if bias is not None:
        out += bias
    return out


def _linear_vjp_into(ws, g, out, inputs, needs, fresh):
    gx, gw, gb = _linear_vjp(g, out, inputs, (False, *needs[1:]))
    if needs[0]:
        _x, weight, _bias = inputs
        gx = ws.get("gx")
        if fresh[0] or gx is None:
            gx = g @ weight
            if not fresh[0]:
                ws["gx"] = gx
        else:
            xp.matmul(g, weight, out=gx)
    return gx, gw, gb


_LINEAR = primitive("linear", _linear_forward, _linear_vjp,
                    Kernel(_linear_forward_into, _linear_vjp_into))


def linear(x: Any, weight: Any, bias: Any = None) -> Any:
    """x @ weight.T + bias, fused (PyTorch's layout: weight has shape (out, in)).

    One primitive instead of three so that the weight's gradient is computed directly in
    its own layout, without a transposed copy, and the input's gradient is skipped when the
    input needs none. Mismatched shapes raise ``ShapeError`` naming all three.
    """
    return call(_LINEAR, x, weight, bias)
