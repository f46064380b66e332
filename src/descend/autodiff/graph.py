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

import heapq
import itertools
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ..errors import DTypeError, GradientError, ShapeError

if TYPE_CHECKING:
    from .tensor import Tensor


class _GradMode(threading.local):
    enabled: bool = True


# Whether operations are recorded, per thread (as PyTorch's grad mode).
_mode = _GradMode()


def is_grad_enabled() -> bool:
    """Whether operations are recorded for backpropagation (in this thread)."""
    return _mode.enabled


class _SetGradMode:
    """Context manager (and decorator-free switch) setting the grad mode of this thread.

    A small class rather than ``contextlib.contextmanager``: the optimizer enters one on
    every step and trial point, and a generator-based context costs several times more.
    """

    __slots__ = ("mode", "previous")

    def __init__(self, mode: bool):
        self.mode = mode
        self.previous = True

    def __enter__(self) -> None:
        self.previous = _mode.enabled
        _mode.enabled = self.mode

    def __exit__(self, *exc: object) -> None:
        _mode.enabled = self.previous


def no_grad() -> _SetGradMode:
    """Context in which nothing is recorded: results never require grad (this thread)."""
    return _SetGradMode(False)


def enable_grad() -> _SetGradMode:
    """Context in which recording is on again (inside ``no_grad``)."""
    return _SetGradMode(True)


class Kernel(NamedTuple):
    """A primitive's forward and VJP over preallocated buffers, for captured programs.

    ``forward(ws, *arrays, **params)`` and ``vjp(ws, g, out, inputs, needs, fresh,
    **params)`` compute *the same bits* as the primitive's own two functions (the same
    NumPy operations in the same order, only with ``out=`` buffers), keeping their buffers
    in ``ws``, a dict that belongs to one operation of one program and lives as long as the
    program. The buffers are the first call's own results, so they have the shapes, dtypes
    and memory layouts NumPy gives them (a layout that differed from what the operations
    make would cost strided loops in this and every later operation). Both of an
    operation's functions get the same ``ws``, so the VJP may reuse what the forward left
    there (it always runs after it, in the same replay). ``fresh[i]`` says that input i's
    gradient leaves the program (a parameter's): it must be a new array, not a buffer. The
    VJP returns each gradient in its input's own shape (no broadcasting left to undo).
    Neither function writes into its inputs.
    """

    forward: Callable[..., np.ndarray] | None
    vjp: Callable[..., tuple] | None


class Primitive:
    """An operation with its forward and its vector-Jacobian product, defined together.

    ``forward(*arrays, **params) -> ndarray`` and
    ``vjp(g, out, inputs, needs, **params) -> tuple[ndarray | None, ...]`` with one entry per
    input: the gradient of the loss with respect to that input *before* undoing
    broadcasting (the engine does that once), or None where ``needs[i]`` is False.

    ``kernel`` (optional, a :class:`Kernel`): the same two computations writing into
    buffers that a captured program keeps from one replay to the next.
    """

    __slots__ = ("forward", "kernel", "name", "vjp")

    def __init__(self, name: str, forward: Callable[..., np.ndarray], vjp: Callable[..., tuple],
                 kernel: Kernel | None = None):
        self.name = name
        self.forward = forward
        self.vjp = vjp
        self.kernel = kernel

    def __repr__(self) -> str:
        return f"<primitive {self.name}>"


class Node(NamedTuple):
    """What backward needs of one recorded primitive application.

    ``needs[i]`` says whether input i requires a gradient (fixed when the node is made).
    ``seq`` numbers nodes in creation order, a topological order of any graph: a node is
    always made after the nodes of its inputs, so backward visits nodes by decreasing seq.
    A tuple, because one is made for every recorded operation and tuples are cheap.
    """

    prim: Primitive
    parents: tuple
    inputs: tuple
    params: dict
    needs: tuple
    seq: int


_next_seq = itertools.count().__next__
_tuple_new = tuple.__new__


def make_node(prim: Primitive, parents: tuple, inputs: tuple, params: dict,
              needs: tuple) -> Node:
    """A Node, without NamedTuple's Python-level constructor."""
    return _tuple_new(Node, (prim, parents, inputs, params, needs, _next_seq()))


#: Marks a tensor whose graph an earlier ``backward()`` released.
FREED = make_node(Primitive("freed", None, None), (), (), {}, ())  # type: ignore[arg-type]
_EMPTY: dict[str, Any] = {}
_TRUE1 = (True,)
_FREED_MESSAGE = (
    "the graph through this tensor was already released by an earlier backward(); call "
    "backward(retain_graph=True) the first time to backpropagate through it twice"
)


def unbroadcast(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``g`` over the axes that broadcasting added or stretched, giving ``shape``."""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, n in enumerate(shape) if n == 1 and g.shape[i + lead] != 1
    )
    if axes:
        g = np.asarray(g.sum(axis=axes))  # a full reduction gives a scalar: keep an array
    return g.reshape(shape)


def walk(root: Tensor, reached: list[Tensor]) -> Iterator[Tensor]:
    """Root, then every tensor the consumer reaches, each once, in reverse topological
    order: by decreasing node seq.

    The consumer appends to ``reached`` each tensor made by an operation (``_node`` set)
    that it reaches for the first time, i.e. gives its first gradient, while it handles the
    tensor just yielded; the walk takes them in when asked for the next one. A tensor comes
    only after every operation that used it (their nodes are newer), so a consumer that
    accumulates gradients has each one complete when its tensor comes. When a tensor leads
    to a single new input and nothing else waits (a chain), that input comes next without
    going through the heap.

    This one walk orders :func:`backward` and the backward code of captured programs
    (``trace.py``) alike, so both sum every gradient in the same order, bit for bit. After
    an error the consumer may keep iterating, reaching nothing more, to be handed every
    tensor it reached and has not had yet.
    """
    heap: list[tuple[int, Tensor]] = []
    pop = heapq.heappop
    push = heapq.heappush
    t = root
    while True:
        yield t
        if reached:
            if not heap and len(reached) == 1:
                t = reached.pop()
                continue
            for p in reached:
                push(heap, (-p._node.seq, p))
            reached.clear()
        elif not heap:
            return
        t = pop(heap)[1]


def backward(root: Tensor, grad: np.ndarray, retain_graph: bool = False) -> None:
    """Backpropagate ``grad`` (d loss / d root) to every leaf that requires grad.

    One pass of :func:`walk`: each tensor's gradient is complete when it comes, its VJP
    runs, broadcasting is undone once per input, and the results are added to the inputs'
    gradients in flight, which live on the tensors (``_g``), not in a dictionary.
    """
    # Arrays handed on unchanged by a VJP may be shared by several tensors; a leaf gets its
    # own copy of those (and of views) so that editing one .grad never edits another.
    shared = {id(grad)}
    leaves: list[Tensor] = []
    reached: list[Tensor] = []  # tensors given their first gradient, for the walk
    if root._node is FREED:
        raise GradientError(_FREED_MESSAGE)
    observe = observer
    root._g = grad
    if root._node is None:
        leaves.append(root)
    order = walk(root, reached) if root._node is not None else ()
    try:
        for t in order:
            g = t._g
            t._g = None
            node = t._node
            if observe is not None:
                observe(t, node, g)
            if not retain_graph:
                t._node = FREED
            params = node.params
            if params:
                results = node.prim.vjp(g, t.data, node.inputs, node.needs, **params)
            else:
                results = node.prim.vjp(g, t.data, node.inputs, node.needs)
            for p, r, need in zip(node.parents, results, node.needs):
                if not need or r is None:
                    continue
                if r is g:
                    shared.add(id(r))
                shape = p.data.shape
                if r.shape != shape:
                    r = unbroadcast(r, shape)
                previous = p._g
                if previous is not None:
                    p._g = previous + r
                    continue
                pnode = p._node
                if pnode is FREED:
                    raise GradientError(_FREED_MESSAGE)
                p._g = r
                if pnode is None:
                    leaves.append(p)
                else:
                    reached.append(p)
        for leaf in leaves:
            g = leaf._g
            if observe is not None:
                observe(leaf, None, g)
            dtype = leaf.data.dtype
            if g.dtype is not dtype and g.dtype != dtype:
                g = g.astype(dtype)
            elif id(g) in shared or g.base is not None or not g.flags.writeable:
                g = g.copy()
            leaf.grad = g if leaf.grad is None else leaf.grad + g
    except BaseException:
        # leave no gradient half-way on any tensor: the walk hands over, reaching nothing
        # more, every tensor given a gradient and not yet taken
        for t in order:
            t._g = None
        raise
    finally:
        for leaf in leaves:
            leaf._g = None


def _shape_error(prim: Primitive, arrays: tuple, exc: ValueError) -> Exception:
    text = str(exc)
    try:
        shapes = " and ".join(str(np.shape(a)) for a in arrays)
    except ValueError:  # ragged nested lists have no shape
        shapes = "of ragged nested sequences"
    return ShapeError(f"{prim.name}: operands {shapes} cannot be combined ({text})")


def _constant(prim: Primitive, value: Any) -> Any:
    """A non-tensor operand, refused when complex or not numeric: NumPy would otherwise make
    a complex result (differentiated as if real) or fail with its own message."""
    if isinstance(value, complex) or (isinstance(value, np.ndarray | np.generic)
                                      and value.dtype.kind not in "fiub"):
        kind = "complex" if np.iscomplexobj(value) else f"dtype {np.asarray(value).dtype}"
        raise DTypeError(f"{prim.name}: an operand is {kind} ({value!r:.40}); descend computes "
                         "with real numbers only")
    return value


def _type_error(prim: Primitive, arrays: tuple, exc: Exception) -> DTypeError:
    kinds = ", ".join(type(a).__name__ if not hasattr(a, "dtype") else f"dtype {a.dtype}"
                      for a in arrays)
    return DTypeError(f"{prim.name}: operands of {kinds} cannot be combined ({exc})")


def apply(prim: Primitive, args: tuple, params: dict[str, Any]) -> Tensor:
    """Run ``prim`` on tensors and constants, recording it when a gradient is needed."""
    Tensor = _tensor_type
    arrays = []
    needs = []
    parents = []
    any_need = False
    for a in args:
        if isinstance(a, Tensor):
            arrays.append(a.data)
            need = a.requires_grad
            any_need = any_need or need
            needs.append(need)
            parents.append(a)
        else:
            arrays.append(_constant(prim, a))
            needs.append(False)
            parents.append(None)
    try:
        out = prim.forward(*arrays, **params)
    except ValueError as exc:
        raise _shape_error(prim, tuple(arrays), exc) from None
    except (TypeError, OverflowError, AttributeError) as exc:
        # a constant operand that is not an array of real numbers (None, a str, 2**63)
        raise _type_error(prim, tuple(arrays), exc) from None
    if any_need and _mode.enabled:
        node = make_node(prim, tuple(parents), tuple(arrays), params, tuple(needs))
        result = _wrap(out, True, node)
    else:
        result = _wrap(out, False, None)
    if tracer is not None:
        tracer(prim, args, params, result)
    return result


def apply1(prim: Primitive, a: Any, params: dict[str, Any] = _EMPTY) -> Tensor:
    """``apply`` for one input (the hot path of unary operations)."""
    if isinstance(a, _tensor_type):
        x = a.data
        try:
            out = prim.forward(x, **params)
        except ValueError as exc:
            raise _shape_error(prim, (x,), exc) from None
        except (TypeError, OverflowError) as exc:  # e.g. a parameter of the wrong type
            raise _type_error(prim, (x,), exc) from None
        if a.requires_grad and _mode.enabled:
            node = _tuple_new(Node, (prim, (a,), (x,), params, _TRUE1, _next_seq()))
            result = _wrap(out, True, node)
        else:
            result = _wrap(out, False, None)
    else:
        try:
            out = prim.forward(_constant(prim, a), **params)
        except ValueError as exc:
            raise _shape_error(prim, (a,), exc) from None
        except (TypeError, OverflowError, AttributeError) as exc:
            raise _type_error(prim, (a,), exc) from None
        result = _wrap(out, False, None)
    if tracer is not None:
        tracer(prim, (a,), params, result)
    return result


def apply2(prim: Primitive, a: Any, b: Any) -> Tensor:
    """``apply`` for two inputs without parameters (the hot path of arithmetic)."""
    Tensor = _tensor_type
    ta = isinstance(a, Tensor)
    tb = isinstance(b, Tensor)
    x = a.data if ta else _constant(prim, a)
    y = b.data if tb else _constant(prim, b)
    try:
        out = prim.forward(x, y)
    except ValueError as exc:
        raise _shape_error(prim, (x, y), exc) from None
    except (TypeError, OverflowError, AttributeError) as exc:
        raise _type_error(prim, (x, y), exc) from None
    na = ta and a.requires_grad
    nb = tb and b.requires_grad
    if (na or nb) and _mode.enabled:
        parents = (a if ta else None, b if tb else None)
        node = _tuple_new(Node, (prim, parents, (x, y), _EMPTY, (na, nb), _next_seq()))
        result = _wrap(out, True, node)
    else:
        result = _wrap(out, False, None)
    if tracer is not None:
        tracer(prim, (a, b), _EMPTY, result)
    return result


#: While a pass is being watched (``descend.plot.graph.record_graph``), a callable that
#: ``backward`` hands each tensor it walks, with its node (None for a leaf) and its complete
#: gradient, before the node is released: ``observer(tensor, node, grad)``; None otherwise.
observer: Any = None
#: While a step is being recorded (``descend.autodiff.trace``), a callable that sees
#: every primitive application: ``tracer(prim, args, params, result)``; None otherwise.
tracer: Any = None
_tensor_type: Any = None
_wrap: Any = None


def bind_tensor_type(tensor_type: type, wrap: Callable) -> None:
    """Called once by ``tensor.py``: the class that ``apply`` makes (avoids a cyclic import)."""
    global _tensor_type, _wrap
    _tensor_type = tensor_type
    _wrap = wrap
