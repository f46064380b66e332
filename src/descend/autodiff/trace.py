"""Recording a step as a straight-line program: the same kernels, without the graph.

An eager step builds a graph (a Node and a Tensor per operation), walks it backwards and
frees it; on small networks that Python work costs more than the arithmetic. A step of a
fixed model on batches of one shape runs the same primitives in the same order every time,
so it can be written out once as code and run again without the graph.

**Recording.** While the closure runs, ``graph.tracer`` is a :class:`Recording` that sees
every primitive application (primitive, arguments, parameters, result). Arguments are
classified: results of earlier operations (``v_k``), the batch's inputs and targets
(``X``, ``Y``), leaf tensors read anew at every run (parameters: ``L_i.data``) and
constants (anything else). :meth:`Recording.signature` is everything a program depends on;
two recordings of the same step must have equal signatures (:func:`same`, constant arrays
by identity: an array recomputed outside the primitives each step, e.g. from the data, is
not a constant), and :func:`difference` says in words where two of them differ.

**Program generation.** :func:`compile_program` writes the recorded step as one Python
function of the batch's arrays: forward kernels, then (for a full step) the backward pass
in the order of :func:`~descend.autodiff.graph.walk` (the very walk ``graph.backward``
takes, so every gradient is summed in the same order and the program computes the same
bits), vector-Jacobian products, accumulations and undoing of broadcasting. Primitives with
a :class:`~descend.autodiff.graph.Kernel` (linear, ReLU, cross-entropy, mean) run it
instead of their forward and VJP: the same operations over buffers the program keeps, so a
run allocates only what leaves it (the loss, the parameters' gradients). Their buffers fit
the shapes and dtypes of the recording; the program checks the parameters' before each run
and raises :class:`Stale` when they changed. Randomness is a recorded operation too (the
dropout mask), so each run draws fresh numbers from the generator the eager step would use.

What decides when a program may replace the eager step (verifying it bit for bit first) is
the capturing engine's business: :mod:`descend.engine.captured`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from . import graph
from .graph import FREED, unbroadcast, walk
from .tensor import Tensor

__all__ = ["NotCapturable", "Program", "Recording", "Stale", "compile_program", "difference",
           "note_output", "same"]


class NotCapturable(Exception):
    """The step cannot be written as a program (it is run eagerly)."""


class Stale(Exception):
    """A parameter changed its shape or dtype since the program was recorded (the step
    runs eagerly and is recorded again)."""


# ------------------------------------------------------------------------------ recording
class Recording:
    """What ``graph.tracer`` saw while a closure ran; used as a context manager.

    Parameters
    ----------
    x : Tensor
        The batch's inputs (``X`` in the program).
    y : ndarray or None
        The array the loss reads as targets (``Y`` in the program), None when none is bound.
    """

    def __init__(self, x: Tensor, y: np.ndarray | None):
        self.x_tensor = x
        self.x = x.data
        self.y = y
        self.ops: list[tuple[Any, tuple, dict, int]] = []  # (prim, specs, params, var)
        self.tensors: list[Tensor] = []  # the result of each op, by var
        self.var_of_tensor: dict[int, int] = {}
        self.var_of_array: dict[int, int] = {}
        self.leaves: list[Tensor] = []
        self.leaf_of: dict[int, int] = {}
        self.value_read = False
        self.previous: Any = None
        self.output: Any = None  # the model's outputs (a Tensor), for the training tally

    def __enter__(self) -> Recording:
        self.previous = graph.tracer
        graph.tracer = self
        return self

    def __exit__(self, *exc: object) -> None:
        graph.tracer = self.previous

    def read(self, t: Tensor) -> None:
        """Python read a tensor's values: the step may branch on them."""
        self.value_read = True

    def __call__(self, prim: Any, args: tuple, params: dict, result: Tensor) -> None:
        specs = tuple(self._spec(a) for a in args)
        var = len(self.tensors)
        self.tensors.append(result)
        self.var_of_tensor[id(result)] = var
        self.var_of_array[id(result.data)] = var
        self.ops.append((prim, specs, params, var))

    def _var_array(self, arr: Any) -> int | None:
        v = self.var_of_array.get(id(arr))
        if v is not None and self.tensors[v].data is arr:
            return v
        return None

    def _spec(self, a: Any) -> tuple:
        if isinstance(a, Tensor):
            return self._tensor_spec(a)
        if isinstance(a, np.ndarray):
            if a is self.x:
                return ("x",)
            if a is self.y:
                return ("y",)
            v = self._var_array(a)
            if v is not None:
                return ("v", v)
        return ("c", a)

    def _tensor_spec(self, a: Tensor) -> tuple:
        v = self.var_of_tensor.get(id(a))
        if v is not None:
            return ("v", v)
        arr = a.data
        if a is self.x_tensor or arr is self.x:
            if a.requires_grad:
                raise NotCapturable("the batch's inputs require grad")
            return ("x",)
        if arr is self.y and not a.requires_grad:
            return ("y",)
        v = self._var_array(arr)
        if v is not None:  # e.g. detach(): the values, without a gradient edge
            if a.requires_grad:
                raise NotCapturable("a leaf tensor shares the array of a result")
            return ("v", v)
        i = self.leaf_of.get(id(a))
        if i is None:
            i = self.leaf_of[id(a)] = len(self.leaves)
            self.leaves.append(a)
        return ("L", i)

    def signature(self, root: Tensor) -> tuple:
        """Everything a replay depends on, compared between two recordings."""
        if self.value_read:
            raise NotCapturable("the forward pass reads tensor values in Python (a branch "
                                "on values: item(), float(), bool() or a comparison)")
        root_var = self.var_of_tensor.get(id(root))
        if root_var is None:
            raise NotCapturable("the closure's loss is not the result of a primitive")
        ops = tuple(
            (prim, specs, params, self.tensors[var].requires_grad,
             None if self.tensors[var]._node is None else self.tensors[var]._node.needs)
            for prim, specs, params, var in self.ops
        )
        return ops, tuple(self.leaves), root_var


def note_output(out: Any) -> None:
    """Tell the recording in progress, if any, that ``out`` is the model's output (a
    program then returns it too, for a training-accuracy tally)."""
    rec = graph.tracer
    if isinstance(rec, Recording):
        rec.output = out


def same(a: Any, b: Any) -> bool:
    """Equal as a recorded constant: arrays and unknown objects by identity, numbers,
    strings, dtypes and containers of them by value (a NaN is never equal: not replayed)."""
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, tuple | list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, int | float | complex | str | bytes | np.generic | np.dtype | slice):
        try:
            return bool(a == b)
        except (TypeError, ValueError):
            return False
    return False


_CONSTANT_WORDS = ("a constant array is compared by identity, so one made anew at every "
                   "step outside the primitives (e.g. from the targets) differs each time")


def difference(a: tuple, b: tuple) -> str:
    """Where two recordings' signatures first differ, in words (why a step stays eager)."""
    ops_a, leaves_a, _ = a
    ops_b, leaves_b, _ = b
    if len(ops_a) != len(ops_b):
        return (f"the recordings ran {len(ops_a)} and {len(ops_b)} operations: the forward "
                "pass takes different paths")
    for i, (x, y) in enumerate(zip(ops_a, ops_b)):
        if same(x, y):
            continue
        (prim, specs_a, params_a, *_), (prim_b, specs_b, params_b, *_) = x, y
        where = f"operation {i} ({prim.name})"
        if prim is not prim_b:
            return f"operation {i} is {prim.name} in one recording, {prim_b.name} in the other"
        for j, (sa, sb) in enumerate(zip(specs_a, specs_b)):
            if not same(sa, sb):
                words = _CONSTANT_WORDS if sa[0] == sb[0] == "c" else "its source differs"
                return f"argument {j} of {where} differs between recordings: {words}"
        if not same(params_a, params_b):
            keys = sorted(k for k in params_a.keys() | params_b.keys()
                          if not same(params_a.get(k), params_b.get(k)))
            return (f"parameter {', '.join(keys)} of {where} differs between recordings: "
                    f"{_CONSTANT_WORDS}")
        return f"{where} differs in which inputs need a gradient"
    if not same(leaves_a, leaves_b):
        return "the recordings read different parameter tensors"
    return "the loss is a different operation in each recording"


# ------------------------------------------------------------------------------ the program
def _own(g: np.ndarray, dtype: np.dtype, src: Any) -> np.ndarray:
    """A leaf's gradient as ``graph.backward`` hands it over: its dtype, never aliased."""
    if g.dtype is not dtype and g.dtype != dtype:
        return g.astype(dtype)
    if g is src or g.base is not None or not g.flags.writeable:
        return g.copy()
    return g


class Program:
    """One recorded step as a Python function of the batch's arrays, ``program(X, Y)``.

    ``full``: returns ``(loss array, gradients of ``leaves``, the model's outputs or
    None)``; otherwise the loss array alone. ``random``: it draws random numbers.
    ``source`` is the generated code (for reading and debugging).
    """

    def __init__(self, fn: Callable[..., Any], leaves: list[Tensor], full: bool, random: bool,
                 source: str):
        self.fn = fn
        self.leaves = leaves
        self.full = full
        self.random = random
        self.source = source

    def __call__(self, x: np.ndarray, y: np.ndarray | None) -> Any:
        return self.fn(x, y)


#: primitives that draw random numbers (their replays must see the same generators)
RANDOM_PRIMITIVES: set[str] = {"dropout_mask"}


class _Names:
    """The generated function's global names: constants, leaves, functions, buffers."""

    def __init__(self, rec: Recording):
        self.rec = rec
        self.names: dict[str, Any] = {"UB": unbroadcast, "OWN": _own}
        self.consts: dict[int, str] = {}

    def const(self, obj: Any) -> str:
        name = self.consts.get(id(obj))
        if name is None:
            name = self.consts[id(obj)] = f"C{len(self.consts)}"
            self.names[name] = obj
        return name

    def expr(self, spec: tuple) -> str:
        kind = spec[0]
        if kind == "v":
            return f"v{spec[1]}"
        if kind == "x":
            return "X"
        if kind == "y":
            return "Y"
        if kind == "L":
            self.names[f"L{spec[1]}"] = self.rec.leaves[spec[1]]
            return f"L{spec[1]}.data"
        return self.const(spec[1])


def compile_program(rec: Recording, root: Tensor, full: bool) -> Program:
    """Write the recorded step as straight-line code (see the module docstring).

    Raises :class:`NotCapturable` when the step cannot be written out."""
    table = _Names(rec)
    names = table.names
    lines: list[str] = []
    random = kernels = False
    arg_text: dict[int, str] = {}
    root_var = rec.var_of_tensor[id(root)]
    for prim, specs, params, var in rec.ops:
        random = random or prim.name in RANDOM_PRIMITIVES
        args = ", ".join(table.expr(s) for s in specs)
        arg_text[var] = args
        kwargs = f", **K{var}" if params else ""
        if params:
            names[f"K{var}"] = params
        kernel = prim.kernel
        if kernel is not None:
            names[f"W{var}"] = {}  # the kernel's buffers for this operation
            kernels = True
        if kernel is not None and kernel.forward is not None and var != root_var:
            # (the loss leaves the program: never a buffer)
            names[f"F{var}"] = kernel.forward
            lines.append(f"v{var} = F{var}(W{var}, {args}{kwargs})")
        else:
            names[f"F{var}"] = prim.forward
            lines.append(f"v{var} = F{var}({args}{kwargs})")
    leaves: list[Tensor] = []
    if not full:
        lines.append(f"return v{root_var}")
    else:
        leaves, grads = _backward_lines(rec, root, root_var, names, arg_text, lines)
        out_var = rec.var_of_tensor.get(id(rec.output)) if rec.output is not None else None
        out = "None" if out_var is None else f"v{out_var}"
        lines.append(f"return v{root_var}, ({''.join(g + ', ' for g in grads)}), {out}")
    if kernels:
        # Kernel buffers fit the shapes and dtypes this recording saw; those of X and Y
        # are part of the program's key, those of the parameters are checked here.
        leaf_text = "".join(f"L{i}.data.shape, L{i}.data.dtype, " for i in range(len(rec.leaves)))
        names["GUARD"] = tuple(x for leaf in rec.leaves for x in (leaf.data.shape, leaf.data.dtype))
        names["STALE"] = Stale
        lines.insert(0, f"if ({leaf_text}) != GUARD: raise STALE")
        if full:  # the loss is handed out: never a view of a buffer the next replay rewrites
            lines.insert(-1, f"if v{root_var}.base is not None: v{root_var} = v{root_var}.copy()")
    source = "def program(X, Y):\n" + "".join(f"    {line}\n" for line in lines)
    exec(compile(source, "<descend captured step>", "exec"), names)
    return Program(names["program"], leaves, full, random, source)


def _vjp_line(node: Any, var: int, g_in: str, args: str, names: dict[str, Any],
              lines: list[str]) -> bool:
    """The line ``R = ...`` calling operation ``var``'s VJP (its kernel's where it has one);
    True when the gradients come in their inputs' shapes (a kernel's)."""
    names[f"N{var}"] = node.needs
    inputs = args + ("," if len(node.needs) == 1 else "")
    kwargs = f", **K{var}" if node.params else ""
    kernel = node.prim.kernel
    if kernel is None or kernel.vjp is None:
        names[f"B{var}"] = node.prim.vjp
        lines.append(f"R = B{var}({g_in}, v{var}, ({inputs}), N{var}{kwargs})")
        return False
    names[f"B{var}"] = kernel.vjp
    # a parameter's gradient leaves the program: a new array, never a buffer
    names[f"FR{var}"] = tuple(p is not None and p._node is None for p in node.parents)
    lines.append(f"R = B{var}(W{var}, {g_in}, v{var}, ({inputs}), N{var}, FR{var}{kwargs})")
    return True


def _backward_lines(rec: Recording, root: Tensor, root_var: int, names: dict[str, Any],
                    arg_text: dict[int, str], lines: list[str]) -> tuple[list[Tensor], list[str]]:
    """``graph.backward`` written out without computing: the same :func:`walk`, so every
    gradient is summed in the same order and the code computes the same bits."""
    node = root._node
    if node is None or node is FREED:
        raise NotCapturable("the loss has no graph")
    var_of = rec.var_of_tensor
    seed = np.array(1, dtype=root.dtype).reshape(root.shape)
    seed.flags.writeable = False  # the walk never writes into a gradient it was handed
    names["SEED"] = seed
    lines.append(f"g{root_var} = SEED")
    in_flight: dict[int, str] = {id(root): f"g{root_var}"}
    source_of: dict[int, str | None] = {}  # leaf -> the incoming gradient it may alias
    leaves: list[Tensor] = []
    reached: list[Tensor] = []  # tensors given their first gradient, for the walk
    for t in walk(root, reached):
        var = var_of.get(id(t))
        if var is None:
            raise NotCapturable("the graph reaches a tensor made outside the closure")
        node = t._node
        g_in = in_flight[id(t)]
        exact = _vjp_line(node, var, g_in, arg_text[var], names, lines)
        for i, (p, need) in enumerate(zip(node.parents, node.needs)):
            if not need:
                continue
            shape = p.data.shape
            lines.append(f"r = R[{i}]")
            if not exact:  # (a kernel's gradients come in their inputs' shapes)
                lines.append(f"if r.shape != {shape!r}: r = UB(r, {shape!r})")
            name = in_flight.get(id(p))
            if name is not None:
                lines.append(f"{name} = {name} + r")
                source_of[id(p)] = None
                continue
            name = _gradient_name(rec, p, g_in, leaves, source_of)
            if p._node is not None:
                reached.append(p)
            in_flight[id(p)] = name
            lines.append(f"{name} = r")
    grads = []
    for leaf in leaves:
        i_leaf = rec.leaf_of[id(leaf)]
        names[f"D{i_leaf}"] = leaf.data.dtype
        src = source_of[id(leaf)] or "None"
        grads.append(f"OWN(gl{i_leaf}, D{i_leaf}, {src})")
    return leaves, grads


def _gradient_name(rec: Recording, p: Tensor, g_in: str, leaves: list[Tensor],
                   source_of: dict[int, str | None]) -> str:
    """The variable holding the gradient of ``p``, met for the first time."""
    if p._node is FREED:
        raise NotCapturable("the graph was released by an earlier backward()")
    if p._node is None:
        i_leaf = rec.leaf_of.get(id(p))
        if i_leaf is None:
            raise NotCapturable("a leaf of the graph is not a persistent tensor")
        source_of[id(p)] = g_in
        leaves.append(p)
        return f"gl{i_leaf}"
    pv = rec.var_of_tensor.get(id(p))
    if pv is None:
        raise NotCapturable("the graph reaches a tensor made outside the closure")
    return f"g{pv}"
