"""How a primitive is declared: a forward and its VJP, registered together."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..graph import Kernel, Primitive, apply, apply1, apply2

__all__ = ["Kernel", "Primitive", "apply1", "apply2", "call", "primitive"]


def primitive(name: str, forward: Callable[..., Any], vjp: Callable[..., tuple],
              kernel: Kernel | None = None) -> Primitive:
    """Declare a primitive. See ``graph.Primitive`` for the signatures."""
    return Primitive(name, forward, vjp, kernel)


def call(prim: Primitive, *args: Any, **params: Any) -> Any:
    """Apply ``prim`` to tensors and constants (records it when a gradient is needed)."""
    return apply(prim, args, params)
