"""How a primitive is declared: a forward and its VJP, registered together."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...backend import xp
from ..graph import Kernel, Primitive, apply, apply1, apply2

__all__ = ["Kernel", "Primitive", "apply1", "apply2", "buffer", "call", "primitive"]


def primitive(name: str, forward: Callable[..., Any], vjp: Callable[..., tuple],
              kernel: Kernel | None = None) -> Primitive:
    """Declare a primitive. See ``graph.Primitive`` for the signatures."""
    return Primitive(name, forward, vjp, kernel)


def buffer(ws: dict, name: str, shape: tuple[int, ...], dtype: Any) -> Any:
    """Make the kernel buffer ``name`` of workspace ``ws`` (for :class:`Kernel` functions,
    on their first call: ``buf = ws.get(name)``, then this when it is None). A program
    checks that its parameters kept their shapes and dtypes before each replay, so the
    shapes of everything it computes stay the ones its buffers were made for."""
    buf = ws[name] = xp.empty(shape, dtype)
    return buf


def call(prim: Primitive, *args: Any, **params: Any) -> Any:
    """Apply ``prim`` to tensors and constants (records it when a gradient is needed)."""
    return apply(prim, args, params)
