"""The graph of one forward and backward pass: a typed record, a layered drawing, DOT text.

A recorded graph is read, never changed: the nodes come from the tensors' ``Node`` s (the
primitive's name, the parents, the constant operands) and the gradients from the one
backward pass, which hands each tensor's complete gradient to an observer while
:func:`record_graph` is active (``descend.autodiff.graph.observer``). The gradients are
those the primitives' own VJPs computed; nothing here differentiates anything.

Which module made which operation is noted by the same recording: each module's call marks
the range of node numbers (``Node.seq``, increasing in creation order) made inside it, so
a subgraph can be collapsed to the module's name.

The drawing is matplotlib's (imported when a figure is drawn, never by ``import descend``)
over a layered layout written here (longest-path layers, barycentre ordering), so no
system binary is needed; :func:`graph_dot` gives the same graph as DOT for graphviz users.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..autodiff import graph as _graph
from ..autodiff.tensor import Tensor
from ..errors import ConfigError, ConfigTypeError, GradientError
from ..nn import module as _module

__all__ = ["GraphNode", "GraphRecord", "GraphRecording", "Summary", "draw_graph",
           "graph_dot", "record_graph"]

#: Graphs with more nodes than this are collapsed to their modules by default.
TOY_SIZE = 24
_FORMATS = ("png", "svg", "dot")


class Summary(NamedTuple):
    """Minimum, maximum, mean and Euclidean norm of an array (NaN for an empty one)."""

    min: float
    max: float
    mean: float
    norm: float

    @classmethod
    def of(cls, array: Any) -> Summary:
        a = np.asarray(array, dtype=np.float64)
        if a.size == 0:
            return cls(math.nan, math.nan, math.nan, 0.0)
        return cls(float(a.min()), float(a.max()), float(a.mean()), float(np.linalg.norm(a)))

    def text(self, size: int) -> str:
        """``= v`` for one number, else ``mean m in [lo, hi]`` (3 significant digits)."""
        if size == 1:
            return f"= {self.mean:.4g}"
        return f"mean {self.mean:.3g} in [{self.min:.3g}, {self.max:.3g}]"


@dataclass(frozen=True)
class GraphNode:
    """One tensor of the graph (or, collapsed, one module's operations).

    Attributes
    ----------
    id : int
        Its number in the record (forward order: a node comes after its inputs).
    op : str
        The primitive that made it ("linear", "relu", ...); for a leaf "parameter",
        "variable" (requires grad) or "input"; for an operand that is not a tensor
        "constant"; for a collapsed module its class name.
    shape, dtype : the array's.
    value : Summary
        Of the values (a collapsed module: of its output).
    grad : Summary or None
        Of d loss / d this tensor, where the recorded backward pass computed it.
    name : str or None
        A parameter's dotted name ("0.weight"), a collapsed module's path ("0").
    module : str or None
        The path of the innermost module whose call made it ("" the model itself).
    members : tuple of int
        A collapsed module's nodes (ids in the uncollapsed record); empty otherwise.
    parameters : tuple of str
        A collapsed module's parameters' names.
    """

    id: int
    op: str
    shape: tuple[int, ...]
    dtype: str
    value: Summary
    grad: Summary | None = None
    name: str | None = None
    module: str | None = None
    members: tuple[int, ...] = ()
    parameters: tuple[str, ...] = ()

    @property
    def is_parameter(self) -> bool:
        """A parameter, or a collapsed module holding some."""
        return self.op == "parameter" or bool(self.parameters)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def lines(self) -> list[str]:
        """The text drawn in the node's box."""
        head = self.op if self.name is None else f"{self.name}: {self.op}"
        out = [head, f"shape {self.shape}" if self.shape else "scalar",
               "value " + self.value.text(self.size)]
        if self.grad is not None:
            g = self.grad
            out.append(f"grad = {g.mean:.4g}" if self.size == 1
                       else f"grad norm {g.norm:.3g} in [{g.min:.3g}, {g.max:.3g}]")
        return out


@dataclass(frozen=True)
class GraphRecord:
    """A recorded graph: nodes in forward order, edges in the direction data flowed.

    ``edges`` are ``(source id, target id)`` pairs; ``root`` is the loss's node;
    ``modules`` maps each module path to its class name; ``collapsed`` says whether module
    subgraphs were collapsed. :func:`draw_graph` returns the record with ``figure`` set.
    """

    nodes: tuple[GraphNode, ...]
    edges: tuple[tuple[int, int], ...]
    root: int
    modules: dict[str, str] = field(default_factory=dict)
    collapsed: bool = False
    figure: Any = None

    @property
    def has_gradients(self) -> bool:
        return any(n.grad is not None for n in self.nodes)

    def node(self, id: int) -> GraphNode:
        return self.nodes[id]


# ------------------------------------------------------------------------------ recording
class _Seen(NamedTuple):
    """What the recording keeps of one tensor (summaries, not arrays)."""

    tensor: Any  # held while recording, so that ids stay unique
    op: str
    seq: int  # -1 for leaves and constants
    parents: tuple[int, ...]  # keys of the inputs (tensors' ids, constants' keys)


class GraphRecording:
    """Watches a forward and backward pass; a context manager made by :func:`record_graph`.

    Inside the ``with`` block each module's call notes the operations it made, and the
    backward pass hands every gradient it computes to the recording. Nothing is watched
    outside the block (the hooks are None again), so training pays nothing for it.
    """

    def __init__(self, model: Any = None):
        if model is not None and not isinstance(model, _module.Module):
            raise ConfigTypeError(f"record_graph's model must be a descend Module, got "
                                  f"{type(model).__name__}")
        self.model = model
        self.calls: list[tuple[int, int, Any]] = []  # (first seq, last seq, module)
        self.seen: dict[int, _Seen] = {}
        self.values: dict[int, Summary] = {}
        self.shapes: dict[int, tuple[tuple[int, ...], str]] = {}
        self.grads: dict[int, Summary] = {}
        self.root: int | None = None
        self.outermost: Any = None
        self._previous: tuple[Any, Any] = (None, None)
        self._active = False

    # the hooks
    def _call(self, module: Any, args: tuple, kwargs: dict) -> Any:
        if self.outermost is None:
            self.outermost = module
        first = _graph._next_seq()
        try:
            return module.forward(*args, **kwargs)
        finally:
            self.calls.append((first, _graph._next_seq(), module))

    def _observe(self, t: Any, node: Any, g: Any) -> None:
        # the first backward pass is the one recorded: a later one (a line search's slope
        # at a trial point) reaches the same parameters, whose gradients stay the first's
        if self.root is None:
            self.root = id(t)
        self._note(t, node)
        if id(t) not in self.grads:
            self.grads[id(t)] = Summary.of(g)

    def _note(self, t: Any, node: Any) -> int:
        """Note a tensor (its inputs by key: an operation's input is noted when the walk
        reaches it, a leaf's at once; no recursion, so a 10,000-deep chain is fine)."""
        key = id(t)
        if key in self.seen:
            return key
        if node is None or node is _graph.FREED:
            op = ("parameter" if isinstance(t, _module.Parameter)
                  else "variable" if t.requires_grad else "input")
            self.seen[key] = _Seen(t, op, -1, ())
        else:
            parents = []
            for i, (p, a) in enumerate(zip(node.parents, node.inputs)):
                if p is None:
                    ckey = -(node.seq * 64 + i + 1)  # a constant operand: its own key
                    self.seen[ckey] = _Seen(None, "constant", -1, ())
                    self._summarise(ckey, a)
                    parents.append(ckey)
                elif p._node is None:
                    parents.append(self._note(p, None))
                else:
                    parents.append(id(p))
            self.seen[key] = _Seen(t, node.prim.name, node.seq, tuple(parents))
        self._summarise(key, t.data)
        return key

    def _summarise(self, key: int, a: Any) -> None:
        arr = np.asarray(a)
        self.values[key] = Summary.of(arr)
        self.shapes[key] = (tuple(arr.shape), str(arr.dtype))

    def __enter__(self) -> GraphRecording:
        if self._active:
            raise GradientError("this graph recording is already active")
        if _graph.observer is not None or _module.call_observer is not None:
            raise GradientError("another graph recording is active in this program")
        self._previous = (_graph.observer, _module.call_observer)
        _graph.observer = self._observe
        _module.call_observer = self._call
        self._active = True
        return self

    def __exit__(self, *exc: object) -> None:
        _graph.observer, _module.call_observer = self._previous
        self._active = False
        # keep summaries only: the tensors (and their arrays) may go
        self.seen = {k: s._replace(tensor=None) for k, s in self.seen.items()}

    # the record
    def graph(self, root: Tensor | None = None) -> GraphRecord:
        """The graph of ``root`` (a loss whose graph is still there), or of the pass that
        the recorded backward walked. Modules are named from the recording's model (else
        the outermost module called)."""
        if root is not None:
            snapshot = _snapshot(root)
            grads = {**snapshot.grads, **{k: v for k, v in self.grads.items()
                                          if k in snapshot.seen}}
            seen, values, shapes, top = (snapshot.seen, snapshot.values, snapshot.shapes,
                                         id(root))
        else:
            if self.root is None:
                raise GradientError("the recording saw no backward pass: call "
                                    "loss.backward() inside the `with record_graph()` block, "
                                    "or pass the loss: recording.graph(loss)")
            seen, values, shapes, grads, top = (self.seen, self.values, self.shapes,
                                                self.grads, self.root)
        return _build(seen, values, shapes, grads, top, self.calls,
                      self.model if self.model is not None else self.outermost)


def record_graph(model: Any = None) -> GraphRecording:
    """Record a forward and backward pass for :func:`draw_graph`::

        with ds.record_graph(model) as rec:
            loss = loss_fn(model(X), y)
            loss.backward()
        ds.draw_graph(rec, "graph.svg")

    Every node's gradient comes from that backward pass (the primitives' own VJPs; the
    first one in the block, when there are several), and each module's call marks the
    nodes it made (``model`` names them: ``"0"``, ``"1"``,
    ...; without it, the outermost module called does). One recording at a time: the
    hooks are the program's, not a thread's.
    """
    return GraphRecording(model)


def _snapshot(root: Any) -> GraphRecording:
    """The graph still attached to a tensor (before backward, or after it with
    ``retain_graph=True``), read with the walk that orders backward; the gradients
    are the leaves' ``.grad``, where backward left them."""
    rec = GraphRecording()
    if root._node is _graph.FREED:
        raise GradientError(
            "the graph of this tensor was released by backward(); draw it before "
            "backward(), call backward(retain_graph=True), or record the pass with "
            "ds.record_graph() and draw the recording")
    if root._node is None:
        raise GradientError(
            "this tensor was not made by a recorded operation (no input requires grad, "
            "or it was computed under no_grad()): there is no graph to draw")
    reached: list[Any] = []
    visited = {id(root)}
    for t in _graph.walk(root, reached):
        rec._note(t, t._node)
        for p in t._node.parents:
            if p is None or id(p) in visited:
                continue
            visited.add(id(p))
            if p._node is _graph.FREED:
                raise GradientError("part of this graph was released by an earlier "
                                    "backward(); there is no whole graph to draw")
            if p._node is not None:
                reached.append(p)
    # gradients only where backward left them: the leaves' .grad
    for key, s in rec.seen.items():
        if s.tensor is not None and s.seq < 0 and s.tensor.grad is not None:
            rec.grads[key] = Summary.of(s.tensor.grad)
    return rec


def _module_names(model: Any) -> tuple[dict[int, str], dict[str, str], dict[int, str]]:
    """(id(module) -> path, path -> class name, id(parameter) -> dotted name)."""
    if model is None:
        return {}, {}, {}
    paths: dict[int, str] = {}
    classes: dict[str, str] = {}
    for name, m in model.named_modules():
        paths[id(m)] = name
        classes[name] = type(m).__name__
    params = {id(p): name for name, p in model.named_parameters()}
    return paths, classes, params


def _owner(name: str) -> str:
    return name.rsplit(".", 1)[0] if "." in name else ""


def _build(seen: dict[int, _Seen], values: dict[int, Summary],
           shapes: dict[int, tuple[tuple[int, ...], str]], grads: dict[int, Summary],
           root: int, calls: list[tuple[int, int, Any]], model: Any) -> GraphRecord:
    paths, classes, param_names = _module_names(model)
    # the nodes reachable from the root (a recording may hold other passes' nodes)
    keep: set[int] = set()
    stack = [root]
    while stack:
        k = stack.pop()
        if k in keep:
            continue
        keep.add(k)
        stack.extend(p for p in seen[k].parents if p in seen)
    # forward order: operations by seq, each preceded by its leaves and constants
    order: list[int] = []
    placed: set[int] = set()
    for k in sorted((k for k in keep if seen[k].seq >= 0), key=lambda k: seen[k].seq):
        for p in seen[k].parents:
            if p in keep and seen[p].seq < 0 and p not in placed:
                placed.add(p)
                order.append(p)
        order.append(k)
        placed.add(k)
    if not order:  # a leaf root
        order = [root]
    number = {k: i for i, k in enumerate(order)}
    spans = sorted(((hi - lo, lo, hi, paths[id(m)]) for lo, hi, m in calls
                    if id(m) in paths), key=lambda s: s[0])
    nodes = []
    for k in order:
        s = seen[k]
        name = None
        module = None
        if s.op == "parameter":
            name = param_names.get(k)  # a tensor's key is its id
            module = None if name is None else _owner(name)
        elif s.seq >= 0:
            module = next((path for _, lo, hi, path in spans if lo < s.seq < hi), None)
        shape, dtype = shapes[k]
        nodes.append(GraphNode(number[k], s.op, shape, dtype, values[k], grads.get(k),
                               name, module))
    edges = tuple((number[p], number[k]) for k in order for p in seen[k].parents
                  if p in number)
    return GraphRecord(tuple(nodes), edges, number[root], classes)


# ------------------------------------------------------------------------------ collapsing
def collapse(record: GraphRecord, depth: int = 1) -> GraphRecord:
    """Each module ``depth`` levels below the model (1: its children) becomes one node.

    A node belongs to the module whose path starts with the node's first ``depth`` path
    components; the module's node shows its output (the member that feeds a node outside,
    the last one if several) and lists its parameters. Edges between members vanish, edges
    crossing the boundary join the module's node, each pair once.
    """
    if depth < 1:
        raise ConfigError(f"collapse depth must be >= 1, got {depth}")
    group_of: dict[int, str] = {}
    for n in record.nodes:
        if n.module:
            parts = n.module.split(".")
            if len(parts) >= depth:
                group_of[n.id] = ".".join(parts[:depth])
    if not group_of:
        return replace(record, collapsed=True)
    members: dict[str, list[int]] = {}
    for i, g in group_of.items():
        members.setdefault(g, []).append(i)
    # a module known only by its parameters' names (a loss drawn without a recording: no
    # operation is known to be the module's) stays as it is
    for g in [g for g, ids in members.items()
              if all(record.nodes[i].op == "parameter" for i in ids)]:
        for i in members.pop(g):
            del group_of[i]
    if not members:
        return replace(record, collapsed=True)
    outputs: dict[str, int] = {}
    for a, b in record.edges:
        ga = group_of.get(a)
        if ga is not None and group_of.get(b) != ga:
            outputs[ga] = max(outputs.get(ga, -1), a)
    # new numbering, in forward order of each group's first member
    new_id: dict[int, int] = {}
    new_nodes: list[GraphNode] = []
    done: set[str] = set()
    for n in record.nodes:
        g = group_of.get(n.id)
        if g is None:
            new_id[n.id] = len(new_nodes)
            new_nodes.append(replace(n, id=len(new_nodes)))
            continue
        if g in done:
            continue
        done.add(g)
        ids = sorted(members[g])
        out = record.nodes[outputs.get(g, max(i for i in ids
                                              if record.nodes[i].op != "parameter"))]
        params = tuple(record.nodes[i].name or "?" for i in ids
                       if record.nodes[i].op == "parameter")
        k = len(new_nodes)
        for i in ids:
            new_id[i] = k
        new_nodes.append(GraphNode(k, record.modules.get(g, "module"), out.shape, out.dtype,
                                   out.value, out.grad, g, g, tuple(ids), params))
    edges: list[tuple[int, int]] = []
    for a, b in record.edges:
        e = (new_id[a], new_id[b])
        if e[0] != e[1] and e not in edges:
            edges.append(e)
    return GraphRecord(tuple(new_nodes), tuple(edges), new_id[record.root], record.modules,
                       True)


# ------------------------------------------------------------------------------ the entry
def graph_record(source: Any, collapse_: bool | int | None = None,
                 model: Any = None) -> GraphRecord:
    """The record of ``source`` (a loss Tensor, a :class:`GraphRecording` or a
    :class:`GraphRecord`), collapsed as asked (None: when bigger than a toy); ``model``
    names a loss's parameters."""
    if isinstance(source, GraphRecord):
        record = source
    elif isinstance(source, GraphRecording):
        record = source.graph()
    elif isinstance(source, Tensor):
        record = GraphRecording(model).graph(source)
    else:
        raise ConfigTypeError(
            "draw_graph needs a descend Tensor (the loss), a record_graph() recording or a "
            f"GraphRecord, got {type(source).__name__}")
    if collapse_ is not None and not isinstance(collapse_, bool | int):
        raise ConfigTypeError(f"collapse must be True, False, None or a depth (int), got "
                              f"{type(collapse_).__name__}")
    if record.collapsed or collapse_ is False:
        return record
    if collapse_ is None:
        if len(record.nodes) <= TOY_SIZE:
            return record
        collapse_ = 1
    return collapse(record, int(collapse_))


def _check_options(path: Any, collapse: Any, format: Any, model: Any, title: Any) -> None:
    """Refuse options of the wrong type before anything is drawn, naming the option."""
    if path is not None and not isinstance(path, str | Path):
        raise ConfigTypeError(f"path must be a str or a Path, got {type(path).__name__}")
    if collapse is not None and not isinstance(collapse, bool | int):
        raise ConfigTypeError(f"collapse must be True, False, None or a depth (int), got "
                              f"{type(collapse).__name__}")
    if format is not None and not isinstance(format, str):
        raise ConfigTypeError(f"format must be a str ('svg', 'png' or 'dot'), got "
                              f"{type(format).__name__}")
    if model is not None and not isinstance(model, _module.Module):
        raise ConfigTypeError(f"model must be a descend Module, got {type(model).__name__}")
    if title is not None and not isinstance(title, str):
        raise ConfigTypeError(f"title must be a str, got {type(title).__name__}")


def _format(path: str | Path | None, format: str | None) -> str:
    if format is not None:
        if format not in _FORMATS:
            raise ConfigError(f"graph format must be one of {', '.join(_FORMATS)}, got "
                              f"{format!r}")
        return format
    if path is None:
        return "png"
    suffix = Path(str(path)).suffix.lower().lstrip(".")
    if suffix not in _FORMATS:
        raise ConfigError(f"cannot tell the graph's format from {str(path)!r}: use a .png, "
                          ".svg or .dot file name (or format=)")
    return suffix


def draw_graph(source: Any, path: str | Path | None = None, *,
               collapse: bool | int | None = None, format: str | None = None,
               model: Any = None, title: str | None = None) -> GraphRecord:
    """Draw the graph of one forward (and backward) pass.

    Parameters
    ----------
    source : Tensor, GraphRecording or GraphRecord
        A loss whose graph is still attached (drawn before ``backward()``: values only;
        after ``backward(retain_graph=True)``: the leaves' gradients too), or a
        :func:`record_graph` recording of the pass (every node's gradient).
    path : str or Path, optional
        Where to write it: ``.svg``, ``.png`` or ``.dot`` (DOT text) by its suffix, or by
        ``format``. None: only the figure is made.
    collapse : bool, int or None
        Collapse each module's subgraph to one node named after the module: True (the
        model's children), a depth (2: their children), False (every operation), None
        (collapse graphs bigger than a toy: more than ``TOY_SIZE`` nodes).
    format : "svg", "png" or "dot", optional
        Overrides the suffix.
    model : Module, optional
        Names the parameters of a loss drawn without a recording ("0.weight").
    title : str, optional
        A line above the drawing.

    Returns
    -------
    GraphRecord
        The nodes and edges drawn, with ``figure`` the matplotlib Figure (None for DOT).
        Each node's box carries the SVG id ``node-<id>``, each edge ``edge-<a>-<b>``.
    """
    _check_options(path, collapse, format, model, title)
    fmt = _format(path, format)
    record = graph_record(source, collapse, model)
    if fmt == "dot":
        text = graph_dot(record)
        if path is not None:
            _write(path, lambda fh: fh.write(text.encode("utf-8")), "graph")
        return record
    fig = figure(record, title)
    if path is not None:
        save_figure(fig, path, fmt)
    return replace(record, figure=fig)


def save_figure(fig: Any, path: str | Path, fmt: str) -> None:
    """Write a figure as SVG (text kept as text, no date: stable across runs) or PNG."""
    import matplotlib

    def write(fh: Any) -> None:
        with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "descend"}):
            fig.savefig(fh, format=fmt, dpi=100,
                        metadata={"Date": None} if fmt == "svg" else {"Software": None})

    _write(path, write, "graph")


def _write(path: str | Path, write: Callable[[Any], None], what: str) -> None:
    from .._output import write_output

    write_output(path, write, what=what)


# ------------------------------------------------------------------------------ layout
def layers(n: int, edges: Iterable[tuple[int, int]]) -> list[int]:
    """Each node's layer: longest path from the sources; a source sits just above its
    first consumer (a parameter beside the operation that reads it, not at the top)."""
    preds: list[list[int]] = [[] for _ in range(n)]
    succs: list[list[int]] = [[] for _ in range(n)]
    for a, b in edges:
        preds[b].append(a)
        succs[a].append(b)
    layer = [0] * n
    for v in range(n):  # ids are in forward (topological) order
        if preds[v]:
            layer[v] = max(layer[u] + 1 for u in preds[v])
    for v in range(n):
        if not preds[v] and succs[v]:
            layer[v] = max(0, min(layer[w] for w in succs[v]) - 1)
    return layer


#: the width of an edge's bend point in a layer, in boxes
DUMMY_WIDTH = 0.3


class Layout(NamedTuple):
    """Where :func:`layout` puts a graph: ``places[v]`` is node v's (x, layer), x in box
    widths from the centre line; ``routes[(a, b)]`` the bend points (x, layer) of an edge
    that crosses layers, one in each layer between its ends."""

    places: list[tuple[float, int]]
    routes: dict[tuple[int, int], list[tuple[float, int]]]


def layout(n: int, edges: Iterable[tuple[int, int]]) -> Layout:
    """A layered drawing (Sugiyama's method, lite): layers as in :func:`layers`; an edge
    that crosses layers gets a bend point (a narrow dummy node) in each layer between its
    ends, so that it is routed between boxes, not over them; then sweeps of the barycentre
    heuristic order every layer to cross few edges (each node goes to the mean position
    of its neighbours), and x places boxes (width 1) and bend points (``DUMMY_WIDTH``) side
    by side, each layer centred."""
    edges = list(edges)
    layer = layers(n, edges)
    layer_of = list(layer)
    width = [1.0] * n
    chains: dict[tuple[int, int], list[int]] = {}
    links: list[tuple[int, int]] = []
    for a, b in edges:
        previous = a
        chain = []
        for r in range(layer[a] + 1, layer[b]):
            dummy = len(layer_of)
            layer_of.append(r)
            width.append(DUMMY_WIDTH)
            chain.append(dummy)
            links.append((previous, dummy))
            previous = dummy
        links.append((previous, b))
        if chain:
            chains[(a, b)] = chain
    total = len(layer_of)
    depth = max(layer_of, default=0) + 1
    rows: list[list[int]] = [[] for _ in range(depth)]
    for v in range(total):
        rows[layer_of[v]].append(v)
    neighbours: list[list[int]] = [[] for _ in range(total)]
    for a, b in links:
        neighbours[a].append(b)
        neighbours[b].append(a)

    def place(row: list[int], pos: dict[int, float]) -> None:
        span = sum(width[v] for v in row)
        x = -span / 2
        for v in row:
            pos[v] = x + width[v] / 2
            x += width[v]

    pos: dict[int, float] = {}
    for row in rows:
        place(row, pos)
    for sweep in range(8):
        sequence = range(depth) if sweep % 2 == 0 else range(depth - 1, -1, -1)
        for r in sequence:
            row = rows[r]

            def key(v: int) -> tuple[float, int]:
                near = [pos[w] for w in neighbours[v]]
                return (sum(near) / len(near) if near else pos[v], v)

            row.sort(key=key)
            place(row, pos)
    return Layout([(pos[v], layer_of[v]) for v in range(n)],
                  {e: [(pos[d], layer_of[d]) for d in chain] for e, chain in chains.items()})


# ------------------------------------------------------------------------------ drawing
_FILL = {"parameter": "#fbd9a6", "input": "#e3ecf7", "constant": "#eeeeee",
         "variable": "#f7f0c8"}
_OP_FILL = "#ffffff"
_MODULE_FILL = "#e8f4e4"


def figure(record: GraphRecord, title: str | None = None) -> Any:
    """The matplotlib Figure of a record: top to bottom in the direction data flowed."""
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
    from matplotlib.path import Path as Polyline

    n = len(record.nodes)
    places, routes = layout(n, record.edges)
    depth = max((p[1] for p in places), default=0) + 1
    bends = [x for route in routes.values() for x, _ in route]
    reach = max((abs(x) for x in [p[0] for p in places] + bends), default=0.0) + 0.5
    box_w, box_h, gap_x, gap_y = 2.5, 1.0, 0.35, 0.55
    fig_w = max(4.0, 2 * reach * (box_w + gap_x) + 0.4)
    fig_h = max(2.0, depth * (box_h + gap_y) + 0.4 + (0.3 if title else 0.0))
    fig = Figure(figsize=(fig_w, fig_h))
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_xlim(-fig_w / 2, fig_w / 2)
    ax.set_ylim(-fig_h + 0.2, 0.2 + (0.3 if title else 0.0))
    ax.set_axis_off()
    def at(x: float, r: int) -> tuple[float, float]:
        return x * (box_w + gap_x), -(r * (box_h + gap_y) + box_h / 2)

    centre = [at(x, r) for x, r in places]
    for a, b in record.edges:
        (xa, ya), (xb, yb) = centre[a], centre[b]
        points = [(xa, ya - box_h / 2)]
        for x, r in routes.get((a, b), []):  # through the gaps of the layers it crosses
            cx, cy = at(x, r)
            points += [(cx, cy + box_h / 2), (cx, cy - box_h / 2)]
        points.append((xb, yb + box_h / 2))
        arrow = FancyArrowPatch(path=Polyline(points), arrowstyle="-|>", mutation_scale=10,
                                lw=0.8, color="#555555")
        arrow.set_gid(f"edge-{a}-{b}")
        ax.add_patch(arrow)
    for node, (x, y) in zip(record.nodes, centre):
        if node.members:
            fill = _MODULE_FILL
        else:
            fill = _FILL.get(node.op, _OP_FILL)
        edge = "#c47a00" if node.is_parameter else ("#b00000" if node.id == record.root
                                                     else "#333333")
        box = FancyBboxPatch((x - box_w / 2, y - box_h / 2), box_w, box_h,
                             boxstyle="round,pad=0.02", fc=fill, ec=edge,
                             lw=1.6 if node.is_parameter else 0.9)
        box.set_gid(f"node-{node.id}")
        ax.add_patch(box)
        lines = node.lines()
        if node.parameters:
            lines.append("params " + ", ".join(node.parameters))
        label = ax.text(x, y, "\n".join(lines), ha="center", va="center", fontsize=7.5,
                        family="DejaVu Sans", linespacing=1.25)
        label.set_gid(f"label-{node.id}")
    if title:
        ax.text(0, 0.15, title, ha="center", va="center", fontsize=9)
    return fig


# ------------------------------------------------------------------------------ DOT
def _dot_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def graph_dot(source: Any, *, collapse: bool | int | None = None, model: Any = None) -> str:
    """The graph as DOT text (``dot -Tsvg``): one node ``n<id>`` per node, labelled like
    the drawing, parameters filled orange, edges in the direction data flowed; without
    collapsing, each module's operations sit in a cluster named after it."""
    _check_options(None, collapse, None, model, None)
    record = graph_record(source, collapse, model)
    out = ["digraph descend {", "  rankdir=TB;",
           '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];']
    clusters: dict[str, list[GraphNode]] = {}
    free: list[GraphNode] = []
    for node in record.nodes:
        if not record.collapsed and node.module:
            clusters.setdefault(node.module, []).append(node)
        else:
            free.append(node)

    def line(node: GraphNode, indent: str) -> str:
        lines = node.lines()
        if node.parameters:
            lines.append("params " + ", ".join(node.parameters))
        label = "\\n".join(_dot_escape(s) for s in lines)
        fill = (_MODULE_FILL if node.members else _FILL.get(node.op, _OP_FILL))
        colour = "#c47a00" if node.is_parameter else "#333333"
        return (f'{indent}n{node.id} [label="{label}", fillcolor="{fill}", '
                f'color="{colour}"];')

    for node in free:
        out.append(line(node, "  "))
    for i, (path, members) in enumerate(clusters.items()):
        cls = record.modules.get(path, "module")
        out.append(f"  subgraph cluster_{i} {{")
        out.append(f'    label="{_dot_escape(f"{path} ({cls})")}";')
        out.extend(line(node, "    ") for node in members)
        out.append("  }")
    out.extend(f"  n{a} -> n{b};" for a, b in record.edges)
    out.append("}")
    return "\n".join(out) + "\n"
