"""Shared by the line-search tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Counting:
    """Wraps phi (or phi_and_slope) and records every step it is called with."""

    def __init__(self, fn: Callable[[float], Any]) -> None:
        self.fn = fn
        self.calls: list[float] = []

    def __call__(self, alpha: float) -> Any:
        self.calls.append(float(alpha))
        return self.fn(alpha)
