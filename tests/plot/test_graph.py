"""The drawn graph is the recorded graph: nodes, edges, parameters, collapse, gradients,
against the tensors themselves and a NumPy computation of the gradients."""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter

import numpy as np
import pytest

import descend as ds
from descend.autodiff import graph as autodiff_graph
from descend.errors import ConfigError, ConfigTypeError, GradientError
from descend.nn import module as nn_module

pytest.importorskip("matplotlib")

SVG = "{http://www.w3.org/2000/svg}"


def tiny():
    model = ds.nn.Sequential(ds.nn.Linear(4, 5, rng=0), ds.nn.ReLU(), ds.nn.Linear(5, 3, rng=1))
    X = ds.tensor(np.random.default_rng(0).normal(size=(6, 4)))
    y = np.array([0, 1, 2, 0, 1, 2])
    return model, X, y, ds.nn.CrossEntropyLoss()


def own_walk(loss):
    """The graph as the tensors hold it, found by a plain depth-first search: each tensor
    once, the constant operands as (array, consumer) nodes."""
    nodes, edges = {}, []
    stack = [loss]
    while stack:
        t = stack.pop()
        if id(t) in nodes:
            continue
        node = t._node
        if node is None:
            nodes[id(t)] = ("parameter" if isinstance(t, ds.nn.Parameter) else "input",
                            t.shape)
            continue
        nodes[id(t)] = (node.prim.name, t.shape)
        for i, (p, a) in enumerate(zip(node.parents, node.inputs)):
            if p is None:
                key = (id(t), i)
                nodes[key] = ("constant", np.shape(a))
                edges.append((key, id(t)))
            else:
                stack.append(p)
                edges.append((id(p), id(t)))
    named = [(nodes[a], nodes[b]) for a, b in edges]
    return Counter(nodes.values()), Counter(named)


def record_signature(record):
    nodes = Counter((n.op, n.shape) for n in record.nodes)
    by_id = {n.id: (n.op, n.shape) for n in record.nodes}
    edges = Counter((by_id[a], by_id[b]) for a, b in record.edges)
    return nodes, edges


def test_drawn_nodes_and_edges_are_the_recorded_graphs():
    model, X, y, lf = tiny()
    loss = lf(model(X), y)
    want_nodes, want_edges = own_walk(loss)
    record = ds.draw_graph(loss, model=model)
    got_nodes, got_edges = record_signature(record)
    assert got_nodes == want_nodes and got_edges == want_edges
    assert len(record.nodes) == sum(want_nodes.values()) == 11
    # edges go the way data flowed: every edge from an earlier node to a later one, the
    # loss is the only sink
    assert all(a < b for a, b in record.edges)
    assert record.root == len(record.nodes) - 1 and record.nodes[record.root].op == "mean"
    # the figure holds one box per node and one arrow per edge, by id
    ax = record.figure.axes[0]
    gids = [p.get_gid() for p in ax.patches]
    assert sorted(g for g in gids if g.startswith("node-")) == sorted(
        f"node-{n.id}" for n in record.nodes)
    assert sorted(g for g in gids if g.startswith("edge-")) == sorted(
        f"edge-{a}-{b}" for a, b in record.edges)
    # before backward there are no gradients, and the values are the tensors'
    assert not record.has_gradients
    assert record.nodes[record.root].value.mean == pytest.approx(float(loss.item()))


def test_parameters_are_marked_and_named():
    model, X, y, lf = tiny()
    record = ds.draw_graph(lf(model(X), y), model=model)
    params = {n.name: n for n in record.nodes if n.is_parameter}
    assert set(params) == {name for name, _ in model.named_parameters()}
    for name, p in model.named_parameters():
        assert params[name].shape == p.shape
        assert params[name].value.norm == pytest.approx(float(np.linalg.norm(p.data)), rel=1e-6)
    # drawn with the parameter's edge colour, the others not
    ax = record.figure.axes[0]
    boxes = {p.get_gid(): p for p in ax.patches if p.get_gid().startswith("node-")}
    colours = {n.id: boxes[f"node-{n.id}"].get_edgecolor() for n in record.nodes}
    marked = {colours[n.id] for n in record.nodes if n.is_parameter}
    assert len(marked) == 1
    assert all(colours[n.id] not in marked for n in record.nodes if not n.is_parameter)


def numpy_gradients(model, X, y):
    """d mean cross-entropy / d each intermediate, by hand in float64."""
    W1, b1 = (p.data.astype(np.float64) for p in model[0].parameters())
    W2, b2 = (p.data.astype(np.float64) for p in model[2].parameters())
    x = X.data.astype(np.float64)
    pre = x @ W1.T + b1
    h = np.maximum(pre, 0)
    z = h @ W2.T + b2
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    n = len(y)
    g_z = (p - np.eye(3)[y]) / n
    g_h = g_z @ W2
    g_pre = g_h * (pre > 0)
    return {"linear_out": g_z, "relu": g_h, "linear_hidden": g_pre,
            "0.weight": g_pre.T @ x, "2.weight": g_z.T @ h, "cross_entropy": np.full(n, 1 / n)}


def test_recorded_gradients_are_the_backward_pass():
    model, X, y, lf = tiny()
    with ds.record_graph(model) as rec:
        loss = lf(model(X), y)
        loss.backward()
    record = ds.draw_graph(rec)
    want = numpy_gradients(model, X, y)
    ops = {}
    for n in record.nodes:
        ops.setdefault(n.op, []).append(n)
    linear_hidden, linear_out = ops["linear"]
    checks = [(linear_out, "linear_out"), (linear_hidden, "linear_hidden"),
              (ops["relu"][0], "relu"), (ops["cross_entropy"][0], "cross_entropy")]
    checks += [(n, n.name) for n in record.nodes if n.name in ("0.weight", "2.weight")]
    assert len(checks) == 6
    for node, key in checks:
        g = want[key]
        assert node.grad is not None, key
        assert node.grad.norm == pytest.approx(np.linalg.norm(g), rel=1e-4), key
        assert node.grad.min == pytest.approx(g.min(), rel=1e-4, abs=1e-7), key
        assert node.grad.max == pytest.approx(g.max(), rel=1e-4, abs=1e-7), key
    # the parameters' gradients are what backward left in .grad
    for name, p in model.named_parameters():
        node = next(n for n in record.nodes if n.name == name)
        assert node.grad.norm == pytest.approx(float(np.linalg.norm(p.grad)), rel=1e-6)
    # the root's gradient is 1; inputs and constants have none
    assert record.nodes[record.root].grad.mean == 1.0
    assert all(n.grad is None for n in record.nodes if n.op in ("input", "constant"))
    # modules: each operation inside the module that made it
    assert [n.module for n in record.nodes if n.op in ("linear", "relu")] == ["0", "1", "2"]
    assert all(n.module is None for n in record.nodes if n.op in ("cross_entropy", "mean"))


def test_a_second_backward_pass_in_the_block_changes_nothing_drawn():
    model, X, y, lf = tiny()
    with ds.record_graph(model) as rec:
        lf(model(X), y).backward()
        first = {n: p.grad.copy() for n, p in model.named_parameters()}
        model.zero_grad()
        lf(model(X * 3.0), y).backward()  # another pass, other gradients
    record = rec.graph()
    assert len(record.nodes) == 11
    for node in record.nodes:
        if node.is_parameter:
            assert node.grad.norm == pytest.approx(float(np.linalg.norm(first[node.name])))


def test_recording_changes_nothing_and_leaves_no_hook():
    model, X, y, lf = tiny()
    lf(model(X), y).backward()
    plain = [p.grad.copy() for p in model.parameters()]
    model.zero_grad()
    with ds.record_graph(model):
        lf(model(X), y).backward()
    assert all(np.array_equal(a, p.grad) for a, p in zip(plain, model.parameters()))
    assert autodiff_graph.observer is None and nn_module.call_observer is None
    # and drawing is not imported with descend
    code = "import descend, sys; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_a_long_chain_is_recorded_without_recursion():
    x = ds.tensor([0.5], requires_grad=True)
    y = x
    for _ in range(1000):
        y = y * 1.0001
    with ds.record_graph() as rec:
        (y.sum()).backward()
    record = rec.graph()
    assert sum(1 for n in record.nodes if n.op == "mul") == 1000
    assert record.nodes[0].grad.mean == pytest.approx(float(x.grad[0]))


def test_collapse_to_modules():
    model, X, y, lf = tiny()
    with ds.record_graph(model) as rec:
        loss = lf(model(X), y)
        loss.backward()
    full = rec.graph()
    small = ds.draw_graph(rec, collapse=True)
    assert small.collapsed and not ds.draw_graph(rec).collapsed  # a toy is not collapsed
    groups = [n for n in small.nodes if n.members]
    assert [(n.name, n.op) for n in groups] == [("0", "Linear"), ("1", "ReLU"), ("2", "Linear")]
    assert [n.parameters for n in groups] == [("0.weight", "0.bias"), (), ("2.weight", "2.bias")]
    members = sorted(i for n in groups for i in n.members)
    assert members == sorted(n.id for n in full.nodes if n.module in ("0", "1", "2"))
    assert len(small.nodes) == len(full.nodes) - len(members) + len(groups)
    # a module's box shows its output: the last linear's values and gradient
    last = full.nodes[groups[2].members[-1]]
    assert groups[2].value == last.value and groups[2].grad == last.grad
    # edges: the chain input -> 0 -> 1 -> 2 -> cross_entropy, each pair once
    name = {n.id: n.name or n.op for n in small.nodes}
    assert [(name[a], name[b]) for a, b in small.edges] == [
        ("input", "0"), ("0", "1"), ("1", "2"), ("2", "cross_entropy"),
        ("constant", "cross_entropy"), ("cross_entropy", "mean")]


def test_a_loss_drawn_without_a_recording_collapses_nothing():
    # its operations are not known to be any module's: nothing to collapse them into
    model, X, y, lf = tiny()
    loss = lf(model(X), y)
    record = ds.draw_graph(loss, model=model, collapse=True)
    assert record.collapsed and not any(n.members for n in record.nodes)
    assert record_signature(record) == own_walk(loss)
    # inside a recording, the same loss collapses (its modules' calls were seen)
    with ds.record_graph(model) as rec:
        loss = lf(model(X), y)
    small = ds.graph_dot(rec.graph(loss), collapse=True)
    assert "Linear" in small and "ReLU" in small


def test_a_graph_bigger_than_a_toy_is_collapsed_by_default():
    layers = []
    for i in range(8):
        layers += [ds.nn.Linear(4, 4, rng=i), ds.nn.Tanh()]
    model = ds.nn.Sequential(*layers)
    X = ds.tensor(np.ones((2, 4)))
    with ds.record_graph(model) as rec:
        model(X).sum().backward()
    full = rec.graph()
    assert len(full.nodes) > 24
    drawn = ds.draw_graph(rec)
    assert drawn.collapsed and len([n for n in drawn.nodes if n.members]) == 16
    assert not ds.draw_graph(rec, collapse=False).collapsed


def test_svg_is_xml_with_the_records_nodes_edges_and_numbers(tmp_path):
    model, X, y, lf = tiny()
    with ds.record_graph(model) as rec:
        loss = lf(model(X), y)
        loss.backward()
    record = ds.draw_graph(rec, tmp_path / "g.svg")
    root = ET.parse(tmp_path / "g.svg").getroot()  # raises on invalid XML
    assert root.tag == SVG + "svg"
    ids = {e.get("id") for e in root.iter() if e.get("id")}
    assert {i for i in ids if i.startswith("node-")} == {f"node-{n.id}" for n in record.nodes}
    assert {i for i in ids if i.startswith("edge-")} == {f"edge-{a}-{b}" for a, b in record.edges}
    # the text drawn in each box names the op and shape and states the numbers of the
    # tensors: the loss's value and the parameters' gradient norms
    texts = {}
    for g in root.iter(SVG + "g"):
        if (g.get("id") or "").startswith("label-"):
            texts[int(g.get("id")[6:])] = [t.text for t in g.iter(SVG + "text")]
    assert set(texts) == {n.id for n in record.nodes}
    for n in record.nodes:
        assert texts[n.id][0].endswith(n.op)
        assert texts[n.id][1] == (f"shape {n.shape}" if n.shape else "scalar")
    assert float(re.search(r"= (\S+)", texts[record.root][2]).group(1)) == pytest.approx(
        float(loss.item()), rel=1e-3)
    for name, p in model.named_parameters():
        node = next(n for n in record.nodes if n.name == name)
        norm = float(re.search(r"grad norm (\S+)", texts[node.id][3]).group(1))
        assert norm == pytest.approx(float(np.linalg.norm(p.grad)), rel=5e-3)


def test_png_has_the_png_signature(tmp_path):
    model, X, y, lf = tiny()
    ds.draw_graph(lf(model(X), y), tmp_path / "g.png")
    assert (tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def parse_dot(text):
    assert text.startswith("digraph ") and text.rstrip().endswith("}")
    assert text.count("{") == text.count("}")
    nodes = set(re.findall(r"^\s*n(\d+) \[label=\"", text, re.M))
    edges = re.findall(r"^\s*n(\d+) -> n(\d+);$", text, re.M)
    clusters = re.findall(r'subgraph cluster_\d+ \{\s*label="([^"]*)";', text)
    return {int(i) for i in nodes}, [(int(a), int(b)) for a, b in edges], clusters


def test_dot_text_has_the_records_structure(tmp_path):
    model, X, y, lf = tiny()
    with ds.record_graph(model) as rec:
        lf(model(X), y).backward()
    record = rec.graph()
    nodes, edges, clusters = parse_dot(ds.graph_dot(rec))
    assert nodes == {n.id for n in record.nodes}
    assert edges == list(record.edges)
    assert clusters == ["0 (Linear)", "1 (ReLU)", "2 (Linear)"]
    # collapsed: the modules are nodes
    small = ds.draw_graph(rec, tmp_path / "g.dot", collapse=True)
    nodes, edges, clusters = parse_dot((tmp_path / "g.dot").read_text())
    assert nodes == {n.id for n in small.nodes} and edges == list(small.edges) and not clusters
    assert small.figure is None
    assert ds.graph_dot(rec, collapse=True) == (tmp_path / "g.dot").read_text()


def test_after_backward_with_retained_graph_the_leaves_show_their_gradients():
    model, X, y, lf = tiny()
    loss = lf(model(X), y)
    loss.backward(retain_graph=True)
    record = ds.draw_graph(loss, model=model)
    with_grad = {n.name for n in record.nodes if n.grad is not None}
    assert with_grad == {name for name, _ in model.named_parameters()}


@pytest.mark.parametrize("source, error, words", [
    (np.ones(3), ConfigTypeError, "descend Tensor"),
    ("loss", ConfigTypeError, "got str"),
])
def test_not_a_graph_is_refused(source, error, words):
    with pytest.raises(error, match=words):
        ds.draw_graph(source)
    with pytest.raises(error, match=words):
        ds.graph_dot(source)


def test_bad_paths_collapse_and_freed_graphs_are_refused(tmp_path):
    model, X, y, lf = tiny()
    loss = lf(model(X), y)
    with pytest.raises(ConfigError, match=r"\.png, \.svg or \.dot"):
        ds.draw_graph(loss, tmp_path / "g.jpeg")
    with pytest.raises(ConfigError, match="format must be one of"):
        ds.draw_graph(loss, format="pdf")
    with pytest.raises(ConfigTypeError, match="collapse must be"):
        ds.draw_graph(loss, collapse="yes")
    with pytest.raises(ConfigError, match="depth must be >= 1"):
        ds.draw_graph(loss, collapse=-1)
    assert not (tmp_path / "g.jpeg").exists()
    loss.backward()
    with pytest.raises(GradientError, match="released by backward"):
        ds.draw_graph(loss)
    with pytest.raises(GradientError, match="no graph to draw"):
        ds.draw_graph(ds.tensor([1.0]))
    with pytest.raises(ConfigTypeError, match="descend Module"):
        ds.record_graph(model="model")
    with ds.record_graph() as rec:
        pass
    with pytest.raises(GradientError, match="saw no backward pass"):
        rec.graph()


def test_the_layout_layers_data_downwards_and_routes_long_edges_between_boxes():
    from descend.plot.graph import DUMMY_WIDTH, layout

    class Residual(ds.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = ds.nn.Linear(4, 4, rng=0)
            self.b = ds.nn.Linear(4, 4, rng=1)

        def forward(self, x):
            return self.b(self.a(x).relu()).tanh() + x

    model = Residual()
    X = ds.tensor(np.ones((2, 4)), requires_grad=True)
    with ds.record_graph(model) as rec:
        model(X).sum().backward()
    record = rec.graph()
    places, routes = layout(len(record.nodes), record.edges)
    layer = [r for _, r in places]
    assert all(layer[a] < layer[b] for a, b in record.edges)
    # a leaf sits just above the first operation that reads it
    for n in record.nodes:
        if n.op in ("parameter", "variable"):
            consumers = [layer[b] for a, b in record.edges if a == n.id]
            assert layer[n.id] == min(consumers) - 1
    # the skip connection x -> add crosses layers: one bend in each, beside every box there
    skip = next((a, b) for a, b in record.edges
                if record.nodes[a].op == "variable" and record.nodes[b].op == "add")
    assert [r for _, r in routes[skip]] == list(range(layer[skip[0]] + 1, layer[skip[1]]))
    assert set(routes) == {(a, b) for a, b in record.edges if layer[b] - layer[a] > 1}
    for x, r in routes[skip]:
        for bx, br in places:
            if br == r:
                assert abs(bx - x) >= (1 + DUMMY_WIDTH) / 2 - 1e-9
    # and the drawing has one arrow per edge, the skip one bent
    drawn = ds.draw_graph(rec, collapse=False)
    arrows = {p.get_gid(): p for p in drawn.figure.axes[0].patches
              if p.get_gid().startswith("edge-")}
    assert set(arrows) == {f"edge-{a}-{b}" for a, b in record.edges}
