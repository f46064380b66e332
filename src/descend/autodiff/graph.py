"""The computation graph: recording primitives, and the reverse walk that backpropagates.

A Tensor made by a primitive holds a ``Node``: the primitive, the parent tensors and the
input arrays its VJP needs. The node never refers to its own output tensor, so a graph holds
no reference cycles and is freed by reference counting as soon as the loss goes away.

``backward`` walks the graph once, iteratively, in reverse topological order (no recursion:
a 10,000-deep chain works), calls each primitive's vector-Jacobian product, undoes NumPy
broadcasting once per input, accumulates gradients and, unless ``retain_graph=True``, drops
every node it used so the saved arrays are released.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import GradientError, ShapeError

if TYPE_CHECKING:
    from .tensor import Tensor


class _GradMode(threading.local):
    enabled: bool = True


_mode = _GradMode()


def is_grad_enabled() -> bool:
    """Whether operations are recorded for backpropagation."""
    return _mode.enabled


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """Context in which nothing is recorded: results never require grad."""
    previous = _mode.enabled
    _mode.enabled = False
    try:
        yield
    finally:
        _mode.enabled = previous


@contextlib.contextmanager
def enable_grad() -> Iterator[None]:
    """Context in which recording is on again (inside ``no_grad``)."""
    previous = _mode.enabled
    _mode.enabled = True
    try:
        yield
    finally:
        _mode.enabled = previous


class Primitive:
    """An operation with its forward and its vector-Jacobian product, defined together.

    ``forward(*arrays, **params) -> ndarray`` and
    ``vjp(g, out, inputs, needs, **params) -> tuple[ndarray | None, ...]`` with one entry per
    input: the gradient of the loss with respect to that input *before* undoing
    broadcasting (the engine does that once), or None where ``needs[i]`` is False.
    """

    __slots__ = ("forward", "name", "vjp")

    def __init__(self, name: str, forward: Callable[..., np.ndarray], vjp: Callable[..., tuple]):
        self.name = name
        self.forward = forward
        self.vjp = vjp

    def __repr__(self) -> str:
        return f"<primitive {self.name}>"


class Node:
    """What backward needs of one recorded primitive application."""

    __slots__ = ("inputs", "params", "parents", "prim")

    def __init__(self, prim: Primitive, parents: tuple, inputs: tuple, params: dict):
        self.prim = prim
        self.parents = parents
        self.inputs = inputs
        self.params = params


#: Marks a tensor whose graph an earlier ``backward()`` released.
FREED = Node(Primitive("freed", None, None), (), (), {})  # type: ignore[arg-type]


def unbroadcast(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``g`` over the axes that broadcasting added or stretched, giving ``shape``."""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, n in enumerate(shape) if n == 1 and g.shape[i + lead] != 1
    )
    if axes:
        g = g.sum(axis=axes)
    return g.reshape(shape)


def _topological_order(root: Tensor) -> list[Tensor]:
    """Tensors reachable from ``root`` that require grad, children before parents."""
    order: list[Tensor] = []
    seen: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        t, done = stack.pop()
        if done:
            order.append(t)
            continue
        if id(t) in seen:
            continue
        seen.add(id(t))
        stack.append((t, True))
        node = t._node
        if node is not None:
            if node is FREED:
                raise GradientError(
                    "the graph through this tensor was already released by an earlier "
                    "backward(); call backward(retain_graph=True) the first time to "
                    "backpropagate through it twice"
                )
            for p in node.parents:
                if p is not None and p.requires_grad and id(p) not in seen:
                    stack.append((p, False))
    return order


def backward(root: Tensor, grad: np.ndarray, retain_graph: bool = False) -> None:
    """Backpropagate ``grad`` (d loss / d root) to every leaf that requires grad."""
    order = _topological_order(root)
    grads: dict[int, np.ndarray] = {id(root): grad}
    # Arrays handed on unchanged (or as views) by a VJP may be shared by several tensors;
    # a leaf gets its own copy of those so that editing one .grad never edits another.
    shared: set[int] = {id(grad)}
    for t in reversed(order):
        g = grads.pop(id(t), None)
        node = t._node
        if node is None:  # a leaf
            if g is None:
                continue
            if g.dtype != t.data.dtype:
                g = g.astype(t.data.dtype)
            elif id(g) in shared or g.base is not None or not g.flags.writeable:
                g = g.copy()
            t.grad = g if t.grad is None else t.grad + g
            continue
        if g is None:
            if not retain_graph:
                t._node = FREED
            continue
        parents = node.parents
        needs = tuple(p is not None and p.requires_grad for p in parents)
        results = node.prim.vjp(g, t.data, node.inputs, needs, **node.params)
        for p, r, need in zip(parents, results, needs):
            if not need or r is None:
                continue
            if r is g:
                shared.add(id(r))
            shape = p.data.shape
            if r.shape != shape:
                r = unbroadcast(r, shape)
            key = id(p)
            previous = grads.get(key)
            grads[key] = r if previous is None else previous + r
        if not retain_graph:
            t._node = FREED


def apply(prim: Primitive, args: tuple, params: dict[str, Any]) -> Tensor:
    """Run ``prim`` on tensors and constants, recording it when a gradient is needed."""
    Tensor = _tensor_type
    needs_grad = False
    arrays = []
    for a in args:
        if isinstance(a, Tensor):
            arrays.append(a.data)
            if a.requires_grad:
                needs_grad = True
        else:
            arrays.append(a)
    try:
        out = prim.forward(*arrays, **params)
    except ValueError as exc:
        text = str(exc)
        if any(k in text for k in ("broadcast", "mismatch", "align", "dimension")):
            shapes = " and ".join(str(np.shape(a)) for a in arrays)
            raise ShapeError(f"{prim.name}: shapes {shapes} cannot be combined ({exc})") from None
        raise
    if needs_grad and _mode.enabled:
        parents = tuple(a if isinstance(a, Tensor) else None for a in args)
        return _wrap(out, True, Node(prim, parents, tuple(arrays), params))
    return _wrap(out, False, None)


_tensor_type: Any = None
_wrap: Any = None


def bind_tensor_type(tensor_type: type, wrap: Callable) -> None:
    """Called once by ``tensor.py``: the class that ``apply`` makes (avoids a cyclic import)."""
    global _tensor_type, _wrap
    _tensor_type = tensor_type
    _wrap = wrap
