"""Matrix product with NumPy's rules: 1-D, 2-D and batched N-D operands."""

from __future__ import annotations

from typing import Any

from ...backend import xp
from ._core import call, primitive


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
    return call(_MATMUL, a, b)
