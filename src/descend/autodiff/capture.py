"""Capture and replay of a training step: the same kernels, without the graph.

An eager step builds a graph (a Node and a Tensor per operation), walks it backwards and
frees it; on small networks that Python work costs more than the arithmetic. A step of a
fixed model on batches of one shape runs the same primitives in the same order every time,
so the first steps are *recorded* and the later ones *replayed*:

1. **Record.** While the closure runs, ``graph.tracer`` sees every primitive application
   (primitive, arguments, parameters, result). Arguments are classified: results of earlier
   operations (``v_k``), the batch's inputs and targets (``X``, ``Y``), leaf tensors read
   anew at every replay (parameters: ``L_i.data``) and constants (anything else). The
   backward walk of ``graph.backward`` is simulated on the recorded graph (the same heap
   order, so gradients are accumulated in the same order) and the whole step is written
   out as one straight-line Python function: forward kernels, vector-Jacobian products,
   accumulations, undoing of broadcasting. The forward-only pass that line-search trials
   run is recorded the same way, as its own program.
2. **Verify.** The next step of the same shape is recorded again; the two recordings must
   agree on every primitive, wiring, parameter and constant (constant arrays by identity:
   an array recomputed outside the primitives each step, e.g. from the data, is not a
   constant, and the model is left eager). Then the program is run on that step's inputs,
   with the random state rewound, and its loss, gradients and final random state must equal
   the eager step's bit for bit.
3. **Replay.** Later steps of that shape call the program: no Node, no Tensor per
   operation, no backward walk. Randomness is a recorded operation too (the dropout mask),
   so each replay draws fresh numbers from the generator the eager step would use.
   Primitives with a :class:`~descend.autodiff.graph.Kernel` (linear, ReLU, cross-entropy,
   mean) run it instead of their forward and VJP: the same operations over buffers the
   program keeps, so a replay allocates only what leaves it (the loss, the parameters'
   gradients). Their buffers fit the shapes and dtypes of the recording; the program checks
   the parameters' before each replay (:class:`Stale`: the key is recorded again).

What stays in Python: everything that depends on values (the optimizer's direction and step
rule, line-search trials, divergence and stopping) runs around the programs, which only
replace the engine's ``forward`` / ``backward`` / ``value`` (:class:`CaptureEngine`, an
:class:`~descend.optim.vectors.Engine`).

When a step cannot be replayed exactly the engine stays eager for that key, never
guessing: a model whose forward pass reads tensor values in Python (``item()``, ``bool``,
comparisons: a branch on values), recordings that differ, a verification that is not
bit-identical, or an error during a replay (that step is then redone eagerly).

Limits (stated, not checked every step): the program reads the *values* of the leaf
tensors it recorded at every replay, but not which tensors they are, nor attributes of the
modules read in Python during ``forward`` (a Dropout's ``p``): replacing a Parameter object
or changing such an attribute after training started needs :func:`reset`, as would a
change of the model's layers. Training mode (``train()`` / ``eval()`` of every module),
batch shapes and dtypes are part of the key, so changing them records again.
"""

from __future__ import annotations

import heapq
import math
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import backend
from ..optim.vectors import NumpyEngine
from . import graph
from .graph import FREED, no_grad, unbroadcast
from .tensor import Tensor, wrap

__all__ = ["Batch", "CaptureEngine", "CapturedStep", "captured_step", "engine_for", "reset"]


class NotCapturable(Exception):
    """The step cannot be written as a program (the engine stays eager for it)."""


class Stale(Exception):
    """A parameter changed its shape or dtype since the program was recorded (the step
    runs eagerly and its key is recorded again)."""


# ------------------------------------------------------------------------------ the closure
class Batch:
    """The closure of one mini-batch, ``loss_fn(model(x), y)``, that says what it holds.

    ``fit`` hands the optimizer these instead of plain functions, so that a capturing
    engine can tell which program a step runs (:meth:`key`) and what its inputs are.
    """

    __slots__ = ("loss_fn", "model", "tally", "x", "y")

    def __init__(self, model: Any, loss_fn: Callable[..., Any], x: Any, y: Any,
                 tally: Any = None):
        self.model = model
        self.loss_fn = loss_fn
        self.x = x if isinstance(x, Tensor) else wrap(np.asarray(x), False, None)
        self.y = y
        #: an object with ``armed`` and ``count(outputs, y)`` that counts the model's
        #: outputs at a step's first evaluation (fit's training accuracy), or None
        self.tally = tally

    def __call__(self) -> Any:
        out = self.model(self.x)
        rec = graph.tracer
        if isinstance(rec, _Recording):
            rec.output = out
        tally = self.tally
        if tally is not None and tally.armed:
            tally.count(out, self.y)
        return self.loss_fn(out, self.y)

    def replayed(self, out: Any) -> None:
        """A replayed program computed the model's outputs ``out`` (an array)."""
        tally = self.tally
        if tally is not None and tally.armed and out is not None:
            tally.count(out, self.y)

    def targets(self) -> Any:
        """The array the loss reads as targets (None when there is none to bind)."""
        y = self.y
        if isinstance(y, Tensor):
            return None if y.requires_grad else y.data
        return y if isinstance(y, np.ndarray) else None

    def key(self) -> tuple | None:
        """What a program is specific to: model, loss, input and target shapes and dtypes,
        and the training mode of every module (None: not capturable)."""
        y = self.y
        if type(y) is not np.ndarray:
            y = self.targets()
            if y is None:
                return None
        x = self.x.data
        return (self.model, self.loss_fn, x.shape, x.dtype, y.shape, y.dtype,
                _training_flags(self.model))


#: id(model) -> (weak reference to the model, its modules), read at every step
_modules_of: dict[int, tuple[Any, list]] = {}


def _training_flags(model: Any) -> tuple:
    known = _modules_of.get(id(model))
    if known is not None and known[0]() is model:
        mods = known[1]
    else:
        mods = list(model.modules()) if hasattr(model, "modules") else [model]
        key = id(model)
        try:
            ref = weakref.ref(model, lambda _, key=key, pop=_modules_of.pop: pop(key, None))
        except TypeError:  # not weakly referenceable: read it every time
            pass
        else:
            _modules_of[key] = (ref, mods)
    return tuple([getattr(m, "training", None) for m in mods])


# ------------------------------------------------------------------------------ recording
class _Recording:
    """What ``graph.tracer`` saw while the closure ran; used as a context manager."""

    def __init__(self, batch: Batch):
        self.x_tensor = batch.x
        self.x = batch.x.data
        self.y = batch.targets()
        self.ops: list[tuple[Any, tuple, dict, int]] = []  # (prim, specs, params, var)
        self.tensors: list[Tensor] = []  # the result of each op, by var
        self.var_of_tensor: dict[int, int] = {}
        self.var_of_array: dict[int, int] = {}
        self.leaves: list[Tensor] = []
        self.leaf_of: dict[int, int] = {}
        self.value_read = False
        self.previous: Any = None
        self.output: Any = None  # the model's outputs (a Tensor), for the training tally

    def __enter__(self) -> _Recording:
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
        if isinstance(a, np.ndarray):
            if a is self.x:
                return ("x",)
            if a is self.y:
                return ("y",)
            v = self._var_array(a)
            if v is not None:
                return ("v", v)
        return ("c", a)

    def signature(self, root: Tensor) -> tuple:
        """Everything a replay depends on, compared between two recordings."""
        if self.value_read:
            raise NotCapturable("the forward pass reads tensor values in Python")
        root_var = self.var_of_tensor.get(id(root))
        if root_var is None:
            raise NotCapturable("the closure's loss is not the result of a primitive")
        ops = tuple(
            (prim, specs, params, self.tensors[var].requires_grad,
             None if self.tensors[var]._node is None else self.tensors[var]._node.needs)
            for prim, specs, params, var in self.ops
        )
        return ops, tuple(self.leaves), root_var


def _same(a: Any, b: Any) -> bool:
    """Equal as a recorded constant: arrays and unknown objects by identity, numbers,
    strings, dtypes and containers of them by value (a NaN is never equal: not replayed)."""
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, tuple | list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, int | float | complex | str | bytes | np.generic | np.dtype | slice):
        try:
            return bool(a == b)
        except (TypeError, ValueError):
            return False
    return False


# ------------------------------------------------------------------------------ the program
def _own(g: np.ndarray, dtype: np.dtype, src: Any) -> np.ndarray:
    """A leaf's gradient as ``graph.backward`` hands it over: its dtype, never aliased."""
    if g.dtype is not dtype and g.dtype != dtype:
        return g.astype(dtype)
    if g is src or g.base is not None or not g.flags.writeable:
        return g.copy()
    return g


class Program:
    """One recorded step as a Python function of the batch's arrays.

    ``full``: ``(loss array, gradients of ``leaves``, the model's outputs or None)``;
    otherwise the loss array alone.
    ``source`` is the generated code (for reading and debugging).
    """

    def __init__(self, fn: Callable[..., Any], leaves: list[Tensor], full: bool, random: bool,
                 source: str):
        self.fn = fn
        self.leaves = leaves
        self.full = full
        self.random = random
        self.source = source

    def __call__(self, batch: Batch) -> Any:
        return self.fn(batch.x.data, batch.targets())


#: primitives that draw random numbers (their replays must see the same generators)
RANDOM_PRIMITIVES: set[str] = {"dropout_mask"}


def compile_program(rec: _Recording, root: Tensor, full: bool) -> Program:
    """Write the recorded step as straight-line code (see the module docstring)."""
    names: dict[str, Any] = {"UB": unbroadcast, "OWN": _own}
    lines: list[str] = []
    consts: dict[int, str] = {}

    def const(obj: Any) -> str:
        name = consts.get(id(obj))
        if name is None:
            name = consts[id(obj)] = f"C{len(consts)}"
            names[name] = obj
        return name

    def expr(spec: tuple) -> str:
        kind = spec[0]
        if kind == "v":
            return f"v{spec[1]}"
        if kind == "x":
            return "X"
        if kind == "y":
            return "Y"
        if kind == "L":
            names[f"L{spec[1]}"] = rec.leaves[spec[1]]
            return f"L{spec[1]}.data"
        return const(spec[1])

    random = kernels = False
    arg_text: dict[int, str] = {}
    root_var = rec.var_of_tensor[id(root)]
    for prim, specs, params, var in rec.ops:
        random = random or prim.name in RANDOM_PRIMITIVES
        args = ", ".join(expr(s) for s in specs)
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


def _backward_lines(rec: _Recording, root: Tensor, root_var: int, names: dict[str, Any],
                    arg_text: dict[int, str], lines: list[str]) -> tuple[list[Tensor], list[str]]:
    """``graph.backward`` walked without computing: the same heap order (by decreasing
    node seq, a chain taken directly), so that every gradient is summed in the same order
    and the code below computes the same bits."""
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
    heap: list[tuple[int, int, Tensor]] = [(-node.seq, 0, root)]
    nxt: Tensor | None = None
    while True:
        if nxt is not None:
            t, nxt = nxt, None
        elif heap:
            t = heapq.heappop(heap)[2]
        else:
            break
        node = t._node
        var = var_of.get(id(t))
        if var is None:
            raise NotCapturable("the graph reaches a tensor made outside the closure")
        g_in = in_flight[id(t)]
        exact = _vjp_line(node, var, g_in, arg_text[var], names, lines)
        first = None
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
            pnode = p._node
            if pnode is None:
                i_leaf = rec.leaf_of.get(id(p))
                if i_leaf is None:
                    raise NotCapturable("a leaf of the graph is not a persistent tensor")
                name = f"gl{i_leaf}"
                source_of[id(p)] = g_in
                leaves.append(p)
            elif pnode is FREED:
                raise NotCapturable("the graph was released")
            else:
                pv = var_of.get(id(p))
                if pv is None:
                    raise NotCapturable("the graph reaches a tensor made outside the closure")
                name = f"g{pv}"
                if first is None:
                    first = p
                else:
                    heapq.heappush(heap, (-pnode.seq, 0, p))
            in_flight[id(p)] = name
            lines.append(f"{name} = r")
        if first is not None:
            if heap:
                heapq.heappush(heap, (-first._node.seq, 0, first))
            else:
                nxt = first
    grads = []
    for leaf in leaves:
        i_leaf = rec.leaf_of[id(leaf)]
        names[f"D{i_leaf}"] = leaf.data.dtype
        src = source_of[id(leaf)] or "None"
        grads.append(f"OWN(gl{i_leaf}, D{i_leaf}, {src})")
    return leaves, grads


# ------------------------------------------------------------------------------ the engine
_RECORD, _VERIFY, _READY, _EAGER = "record", "verify", "ready", "eager"
#: recordings that disagree before a key is left eager (a model that branches)
MAX_MISSES = 3


class _Entry:
    """The state of one key: recording, verifying, ready to replay, or eager."""

    __slots__ = ("misses", "program", "signature", "state")

    def __init__(self) -> None:
        self.state = _RECORD
        self.program: Program | None = None
        self.signature: Any = None
        self.misses = 0


def _same_bits(a: Any, b: Any) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def _same_rng(a: list, b: list) -> bool:
    return len(a) == len(b) and all(ga is gb and sa == sb for (ga, sa), (gb, sb) in zip(a, b))


class CaptureEngine(NumpyEngine):
    """The NumPy engine, replaying recorded programs for :class:`Batch` closures.

    ``forward`` / ``backward`` (a step's first evaluation, and the trial points of rules
    that need slopes) and ``value`` (forward-only trials) look the closure's key up; any
    other closure, and any key that cannot be replayed exactly, runs eagerly. ``stats``
    counts replays and eager runs per kind (``"grad"``, ``"value"``).
    """

    name = "numpy-captured"

    def __init__(self) -> None:
        self.entries: dict[tuple, _Entry] = {}
        self._replayed: tuple | None = None  # (loss object, leaves, grads)
        self._verify: tuple | None = None  # (loss tensor, entry, batch, rng before)
        self.stats = {"grad": [0, 0], "value": [0, 0]}  # [replays, eager runs]

    # ---------------------------------------------------------------- forward + backward
    def evaluate(self, closure: Callable[[], Any], params: Any) -> tuple[Any, float]:
        for p in params:
            p.grad = None
        loss, value = self.forward(closure)
        if math.isfinite(value):
            self.backward(loss)
        return loss, value

    def forward(self, closure: Callable[[], Any]) -> tuple[Any, float]:
        self._replayed = self._verify = None
        entry = self._entry("grad", closure)
        if entry is None or entry.state is _EAGER:
            self.stats["grad"][1] += 1
            return super().forward(closure)
        if entry.state is _READY:
            program = entry.program
            assert program is not None
            result = self._replay(entry, closure)
            if result is None:  # redo the step eagerly (the key records again or stays eager)
                return self.forward(closure)
            loss, grads, out = result
            self.stats["grad"][0] += 1
            closure.replayed(out)
            obj = wrap(loss, False, None)
            self._replayed = (obj, program.leaves, grads)
            return obj, float(loss.item())
        self.stats["grad"][1] += 1
        before = backend.rng_snapshot() if entry.state is _VERIFY else None
        rec = _Recording(closure)  # type: ignore[arg-type]
        try:
            with rec:
                loss, value = super().forward(closure)
        except NotCapturable:
            entry.state = _EAGER
            return super().forward(closure)
        if self._learn(entry, rec, loss, full=True):
            self._verify = (loss, entry, closure, before)
        return loss, value

    def backward(self, loss: Any) -> None:
        replayed = self._replayed
        if replayed is not None and replayed[0] is loss:
            self._replayed = None
            for leaf, g in zip(replayed[1], replayed[2]):
                leaf.grad = g if leaf.grad is None else leaf.grad + g
            return
        super().backward(loss)
        verify = self._verify
        if verify is not None and verify[0] is loss:
            self._verify = None
            _, entry, batch, before = verify
            program = entry.program
            eager = [leaf.grad for leaf in program.leaves]
            after = backend.rng_snapshot()
            backend.rng_restore(before)
            try:
                out, grads, _ = program(batch)
                ok = (_same_bits(out, loss.data) and len(grads) == len(eager)
                      and all(e is not None and _same_bits(g, e) for g, e in zip(grads, eager))
                      and _same_rng(backend.rng_snapshot(), after))
            except Exception:
                ok = False
            backend.rng_restore(after)
            entry.state = _READY if ok else _EAGER

    # ---------------------------------------------------------------- forward only
    def value(self, closure: Callable[[], Any]) -> float:
        entry = self._entry("value", closure)
        if entry is None or entry.state is _EAGER:
            self.stats["value"][1] += 1
            return super().value(closure)
        if entry.state is _READY:
            out = self._replay(entry, closure)
            if out is None:
                return self.value(closure)
            self.stats["value"][0] += 1
            return float(out.item())
        self.stats["value"][1] += 1
        verifying = entry.state is _VERIFY
        before = backend.rng_snapshot() if verifying else None
        rec = _Recording(closure)  # type: ignore[arg-type]
        try:
            with rec, no_grad():
                loss = closure()
        except NotCapturable:
            entry.state = _EAGER
            return super().value(closure)
        value = float(loss.data.item())
        if self._learn(entry, rec, loss, full=False):
            program = entry.program
            after = backend.rng_snapshot()
            backend.rng_restore(before)
            try:
                ok = (_same_bits(program(closure), loss.data)
                      and _same_rng(backend.rng_snapshot(), after))
            except Exception:
                ok = False
            backend.rng_restore(after)
            entry.state = _READY if ok else _EAGER
        return value

    # ---------------------------------------------------------------- helpers
    @staticmethod
    def _replay(entry: _Entry, closure: Any) -> Any:
        """The entry's program run on this batch, or None when it failed: the key then stays
        eager and the random state is as before the attempt."""
        program = entry.program
        assert program is not None
        state = backend.rng_snapshot() if program.random else None
        try:
            return program(closure)
        except Stale:
            entry.state = _RECORD
            entry.misses = 0
        except Exception:
            entry.state = _EAGER
        if state is not None:
            backend.rng_restore(state)
        return None

    def _entry(self, kind: str, closure: Any) -> _Entry | None:
        if type(closure) is not Batch:
            return None
        key = closure.key()
        if key is None:
            return None
        key = (kind, *key)
        try:
            entry = self.entries.get(key)
        except TypeError:  # an unhashable model or loss
            return None
        if entry is None:
            entry = self.entries[key] = _Entry()
        return entry

    @staticmethod
    def _learn(entry: _Entry, rec: _Recording, loss: Any, full: bool) -> bool:
        """Take a recording; True when it matches the previous one (verify it now)."""
        try:
            if not isinstance(loss, Tensor):
                raise NotCapturable("the closure did not return a Tensor")
            signature = rec.signature(loss)
            if entry.state is _VERIFY and _same(signature, entry.signature):
                return True
            program = compile_program(rec, loss, full)
        except NotCapturable:
            entry.state = _EAGER
            return False
        if entry.state is _VERIFY:
            entry.misses += 1
            if entry.misses >= MAX_MISSES:
                entry.state = _EAGER
                return False
        entry.signature = signature
        entry.program = program
        entry.state = _VERIFY
        return False


# ------------------------------------------------------------------------------ installing
_engines: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def engine_for(optimizer: Any) -> CaptureEngine | None:
    """The capturing engine of ``optimizer`` (made once, so recorded programs are kept
    from one ``fit`` call to the next), or None when its engine is not descend's NumPy
    engine (e.g. an engine over another array library)."""
    engine = _engines.get(optimizer)
    if engine is None:
        if type(optimizer.engine) is not NumpyEngine:
            return None
        engine = _engines[optimizer] = CaptureEngine()
    return engine


class _Installed:
    """Context manager: ``optimizer.engine`` is the capturing engine inside."""

    def __init__(self, optimizer: Any, enabled: bool):
        self.optimizer = optimizer
        self.engine = engine_for(optimizer) if enabled else None
        self.had_own = "engine" in vars(optimizer)
        self.previous = vars(optimizer).get("engine")

    def __enter__(self) -> CaptureEngine | None:
        if self.engine is not None:
            self.optimizer.engine = self.engine
        return self.engine

    def __exit__(self, *exc: object) -> None:
        if self.engine is None:
            return
        if self.had_own:
            self.optimizer.engine = self.previous
        else:
            del self.optimizer.engine


def installed(optimizer: Any, enabled: bool = True) -> _Installed:
    """``with installed(opt): ...`` runs the optimizer's steps on the capturing engine."""
    return _Installed(optimizer, enabled)


def reset(optimizer: Any) -> None:
    """Forget every program recorded for ``optimizer`` (after replacing a Parameter object,
    changing a module attribute that ``forward`` reads, or the model's layers)."""
    engine = _engines.get(optimizer)
    if engine is not None:
        engine.entries.clear()


class CapturedStep:
    """``step(x, y)``: one optimizer step on the batch (x, y), recorded and then replayed.

    Made by :func:`captured_step`; returns the loss at the start of the step (a Tensor)."""

    def __init__(self, model: Any, loss_fn: Callable[..., Any], optimizer: Any):
        if not callable(model):
            raise TypeError(f"captured_step: model must be callable, got {type(model).__name__}")
        if not callable(loss_fn):
            raise TypeError(f"captured_step: loss_fn must be callable, got "
                            f"{type(loss_fn).__name__}")
        if not hasattr(optimizer, "engine") or not hasattr(optimizer, "step"):
            raise TypeError(f"captured_step: optimizer must be a descend optimizer, got "
                            f"{type(optimizer).__name__}")
        self.model = model
        self.loss_fn = loss_fn
        self.optimizer = optimizer
        engine = engine_for(optimizer)
        if engine is None:
            raise TypeError(
                f"captured_step needs an optimizer on descend's NumPy engine, got one on "
                f"{getattr(optimizer.engine, 'name', type(optimizer.engine).__name__)!r}"
            )
        self.engine = engine
        optimizer.engine = engine

    def __call__(self, x: Any, y: Any, *, same_batch: bool = False) -> Any:
        return self.optimizer.step(Batch(self.model, self.loss_fn, x, y), same_batch=same_batch)

    def close(self) -> None:
        """Put the optimizer back on its eager engine."""
        if vars(self.optimizer).get("engine") is self.engine:
            del self.optimizer.engine


def captured_step(model: Any, loss_fn: Callable[..., Any], optimizer: Any) -> CapturedStep:
    """Capture the training step of a hand-written loop: the explicit form of what
    ``fit(..., capture=True)`` does.

    ``step = captured_step(model, loss_fn, opt)`` then ``loss = step(xb, yb)`` for each
    batch is ``opt.step(lambda: loss_fn(model(xb), yb))``, bit for bit, with the first
    steps of each batch shape recorded and the following ones replayed (see the module
    docstring). The optimizer keeps the capturing engine until ``step.close()``.

    Examples
    --------
    >>> step = captured_step(model, ds.nn.CrossEntropyLoss(), opt)  # doctest: +SKIP
    >>> for xb, yb in batches:                                      # doctest: +SKIP
    ...     loss = step(xb, yb)
    """
    return CapturedStep(model, loss_fn, optimizer)
