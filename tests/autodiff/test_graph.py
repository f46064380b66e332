"""The graph: fan-out, depth, accumulation, retained and released graphs, no_grad, memory."""

from __future__ import annotations

import gc
import threading
import tracemalloc
import weakref

import autograd.numpy as anp
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import descend as ds
from descend.autodiff import functional as F
from descend.autodiff.graph import Node
from descend.errors import GradientError

from .oracle import check_gradients, random_array

# ------------------------------------------------------------------ shapes of graphs
# name -> (descend, autograd): the same input reaches the output along several paths.
FAN_OUT = {
    "x * x": (lambda x: x * x, lambda x: x * x),
    "x + x": (lambda x: x + x, lambda x: x + x),
    "x - x": (lambda x: x - x, lambda x: x - x),
    "x / x": (lambda x: x / x, lambda x: x / x),
    "x ** x": (lambda x: x.abs() ** x, lambda x: anp.abs(x) ** x),
    "x @ x": (lambda x: x.reshape(-1) @ x.reshape(-1), lambda x: anp.dot(x.ravel(), x.ravel())),
    "three uses": (
        lambda x: x * x + x * 3 + x.exp(),
        lambda x: x * x + x * 3 + anp.exp(x),
    ),
    "diamond": (
        lambda x: (x * 2).tanh() * ((x * 2) * (x * 2)),
        lambda x: anp.tanh(x * 2) * ((x * 2) * (x * 2)),
    ),
    "shared intermediate diamond": (
        lambda x: (lambda a: a.tanh() * (a * a) + a.sum())(x * 2),
        lambda x: (lambda a: anp.tanh(a) * (a * a) + anp.sum(a))(x * 2),
    ),
    "stack of itself": (
        lambda x: ds.stack([x, x * 2, x], axis=0),
        lambda x: anp.stack([x, x * 2, x], axis=0),
    ),
    "index and whole": (lambda x: x[0] * x, lambda x: x[0] * x),
    "softmax of sum": (
        lambda x: F.softmax(x + x.T, axis=0),
        lambda x: anp.exp(x + x.T) / anp.sum(anp.exp(x + x.T), axis=0, keepdims=True),
    ),
}


@pytest.mark.parametrize("name", sorted(FAN_OUT))
def test_fan_out_gradients_add_up(name):
    ds_fn, ag_fn = FAN_OUT[name]
    check_gradients(ds_fn, ag_fn, [random_array((3, 3), rng=91, domain="nonzero")])


def test_maximum_of_a_tensor_with_itself_passes_the_whole_gradient():
    x = ds.tensor(np.array([1.0, -2.0]), requires_grad=True)
    ds.maximum(x, x).sum().backward()
    assert_array_equal(x.grad, [1.0, 1.0])


def test_ten_thousand_deep_chain_of_products():
    c = 1.0001
    x = ds.tensor(np.array(1.5), requires_grad=True)
    h = x
    for _ in range(10_000):
        h = h * c
    h.backward()
    # h = x c^n, so dh/dx = c^n with n = 10,000
    assert_allclose(h.item(), 1.5 * c**10_000, rtol=1e-10)
    assert_allclose(x.grad, c**10_000, rtol=1e-10)


def test_ten_thousand_deep_chain_of_mixed_primitives():
    x = ds.tensor(np.array([0.3, -0.2]), requires_grad=True)
    h = x
    for _ in range(2_500):  # four primitives a round: 10,000 nodes
        h = (h * 2.0).exp().log() / 2.0
    (h * np.array([1.0, 3.0])).sum().backward()
    assert_allclose(h.data, x.data, rtol=1e-9)
    assert_allclose(x.grad, [1.0, 3.0], rtol=1e-9)


def test_ten_thousand_deep_graph_is_freed_without_backward():
    x = ds.tensor(np.array(1.0), requires_grad=True)
    h = x
    for _ in range(10_000):
        h = h + 1.0
    mid = weakref.ref(h._node.parents[0]._node.parents[0])
    assert mid() is not None
    del h
    assert mid() is None


def test_gradients_accumulate_across_separately_built_graphs():
    x = ds.tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    (x * x).sum().backward()
    assert_array_equal(x.grad, [2.0, 4.0, 6.0])
    (x * x).sum().backward()
    assert_array_equal(x.grad, [4.0, 8.0, 12.0])
    x.grad = None
    (x * 5.0).sum().backward()
    assert_array_equal(x.grad, [5.0, 5.0, 5.0])


def test_retain_graph_allows_a_second_backward():
    x = ds.tensor(np.array([1.0, 2.0]), requires_grad=True)
    loss = (x * x * x).sum()
    loss.backward(retain_graph=True)
    assert_array_equal(x.grad, [3.0, 12.0])
    loss.backward()
    assert_array_equal(x.grad, [6.0, 24.0])


def test_second_backward_without_retain_graph_raises():
    x = ds.tensor(np.array([1.0, 2.0]), requires_grad=True)
    loss = (x * x).sum()
    loss.backward()
    with pytest.raises(GradientError, match="retain_graph"):
        loss.backward()
    assert_array_equal(x.grad, [2.0, 4.0])  # the failed call changed nothing


def test_backward_through_an_intermediate_released_by_another_loss_raises():
    x = ds.tensor(np.array([1.0, 2.0]), requires_grad=True)
    h = x * 3.0
    first, second = h.sum(), (h * h).sum()
    first.backward()
    with pytest.raises(GradientError, match="retain_graph"):
        second.backward()


def test_intermediate_kept_by_retain_graph_serves_two_losses():
    x = ds.tensor(np.array([1.0, 2.0]), requires_grad=True)
    h = x * 3.0
    h.sum().backward(retain_graph=True)
    (h * h).sum().backward()
    assert_array_equal(x.grad, [3.0 + 18.0, 3.0 + 36.0])


def test_backward_from_a_leaf():
    x = ds.tensor(np.array(2.0), requires_grad=True)
    x.backward()
    assert x.grad == 1.0
    g = np.array([1.0, 2.0])
    v = ds.tensor(np.zeros(2), requires_grad=True)
    v.backward(grad=g)
    g[0] = 100.0
    assert_array_equal(v.grad, [1.0, 2.0])


# ------------------------------------------------------------------ no_grad and detach
NO_GRAD_OPS = {
    "arithmetic": lambda x: (x * 2 + 1) / 3 - x**2,
    "matmul": lambda x: x @ x.T,
    "reduce": lambda x: x.sum(axis=0).max(),
    "index": lambda x: x[[0, 0]],
    "shape": lambda x: x.reshape(-1).T,
    "softmax": F.softmax,
    "nonsmooth": lambda x: ds.maximum(x.relu().abs(), 0.5).clip(0, 1),
    "join": lambda x: ds.concatenate([x, x]),
}


@pytest.mark.parametrize("name", sorted(NO_GRAD_OPS))
def test_no_grad_records_nothing(name):
    x = ds.tensor(random_array((2, 3), rng=92), requires_grad=True)
    with ds.no_grad():
        assert not ds.is_grad_enabled()
        y = NO_GRAD_OPS[name](x)
    assert ds.is_grad_enabled()
    assert y.requires_grad is False
    assert y.is_leaf
    with pytest.raises(GradientError, match="does not require grad"):
        y.sum().backward()
    assert x.grad is None


def test_no_grad_keeps_no_reference_to_the_inputs():
    x = ds.tensor(np.ones(3), requires_grad=True)
    with ds.no_grad():
        h = x * 2.0
        ref = weakref.ref(h)
        y = h + 1.0
    del h
    assert ref() is None
    assert_array_equal(y.data, [3.0, 3.0, 3.0])


def test_nested_no_grad_and_enable_grad():
    x = ds.tensor(np.array([1.0, 2.0]), requires_grad=True)
    with ds.no_grad():
        a = x * 2
        with ds.enable_grad():
            assert ds.is_grad_enabled()
            b = x * 3
            with ds.no_grad():
                c = x * 4
            assert ds.is_grad_enabled()
        d = x * 5
        assert not ds.is_grad_enabled()
    assert ds.is_grad_enabled()
    assert [t.requires_grad for t in (a, b, c, d)] == [False, True, False, False]
    b.sum().backward()
    assert_array_equal(x.grad, [3.0, 3.0])


def test_no_grad_is_restored_after_an_exception():
    with pytest.raises(ZeroDivisionError), ds.no_grad():
        raise ZeroDivisionError
    assert ds.is_grad_enabled()


def test_no_grad_is_local_to_its_thread():
    seen = []
    with ds.no_grad():
        thread = threading.Thread(target=lambda: seen.append(ds.is_grad_enabled()))
        thread.start()
        thread.join()
    assert seen == [True]


def test_detach_cuts_the_graph_and_shares_the_values():
    x = ds.tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    d = x.detach()
    assert d.requires_grad is False
    assert d.is_leaf
    assert np.shares_memory(d.data, x.data)
    (x * d).sum().backward()  # d is a constant: the gradient is d, not 2x
    assert_array_equal(x.grad, [1.0, 2.0, 3.0])


def test_detach_of_an_intermediate_stops_gradient_upstream():
    x = ds.tensor(np.array([1.0, 2.0]), requires_grad=True)
    h = (x * x).detach()
    y = ds.tensor(np.array([3.0, 4.0]), requires_grad=True)
    (h * y).sum().backward()
    assert x.grad is None
    assert_array_equal(y.grad, [1.0, 4.0])


# ------------------------------------------------------------------ gradients as arrays
def test_leaf_gradients_are_independent_writeable_arrays():
    a = ds.tensor(np.array([1.0, 2.0]), requires_grad=True)
    b = ds.tensor(np.array([3.0, 4.0]), requires_grad=True)
    (a + b).sum().backward()
    for t in (a, b):
        assert isinstance(t.grad, np.ndarray)
        assert t.grad.flags.writeable
    assert not np.shares_memory(a.grad, b.grad)
    a.grad += 10.0
    a.grad[0] = -1.0
    assert_array_equal(b.grad, [1.0, 1.0])


# name -> expression of two leaves whose gradient arrays could be shared by the engine
SHARING = {
    "a + b": lambda a, b: a + b,
    "a - b": lambda a, b: a - b,
    "b + a, b broadcast": lambda a, b: b[0] + a,
    "a + b + a": lambda a, b: a + b + a,
    "stack": lambda a, b: ds.stack([a, b]),
    "concatenate": lambda a, b: ds.concatenate([a, b]),
    "where": lambda a, b: ds.where(np.array([True, False]), a, b),
    "reshape": lambda a, b: a.reshape(2, 1) + b.reshape(2, 1),
}


@pytest.mark.parametrize("name", sorted(SHARING))
def test_editing_one_gradient_in_place_leaves_the_others_alone(name):
    a = ds.tensor(np.array([1.0, 2.0]), requires_grad=True)
    b = ds.tensor(np.array([3.0, 4.0]), requires_grad=True)
    out = SHARING[name](a, b)
    g = np.arange(1.0, out.size + 1).reshape(out.shape)
    out.backward(grad=g)
    before_b = b.grad.copy()
    a.grad[...] = 1e6
    assert_array_equal(b.grad, before_b)
    g[...] = -7.0  # nor does the caller's array alias any gradient
    assert_array_equal(b.grad, before_b)
    assert a.grad.flags.writeable and b.grad.flags.writeable


@pytest.mark.parametrize(
    "reduce", [lambda x: x.sum(), lambda x: x.mean(), lambda x: x.max()], ids=["sum", "mean", "max"]
)
def test_gradient_of_a_reduction_is_a_writeable_array(reduce):
    x = ds.tensor(np.array([[1.0, 2.0], [3.0, 4.0]]), requires_grad=True)
    reduce(x).backward()
    assert isinstance(x.grad, np.ndarray)
    assert x.grad.flags.writeable
    x.grad *= 2.0  # an optimizer may scale it in place


def test_gradient_of_a_broadcast_0d_leaf_is_a_writeable_array():
    scale = ds.tensor(np.array(2.0), requires_grad=True)
    (scale * np.array([1.0, 2.0, 3.0])).sum().backward()
    assert scale.grad == 6.0
    assert isinstance(scale.grad, np.ndarray)
    assert scale.grad.flags.writeable


# ------------------------------------------------------------------ memory
def _build_loss(x: ds.Tensor) -> tuple[ds.Tensor, list[weakref.ref]]:
    """A small graph; weak references to an intermediate tensor and two saved arrays."""
    h = x * 2.0
    hh = h * h
    refs = [weakref.ref(h), weakref.ref(h.data), weakref.ref(hh.data)]
    return hh.sum(), refs


def test_backward_releases_the_saved_arrays_while_the_loss_lives():
    x = ds.tensor(np.ones(1000), requires_grad=True)
    loss, refs = _build_loss(x)
    assert all(r() is not None for r in refs)
    loss.backward()
    assert [r() for r in refs] == [None, None, None]
    assert loss.item() == 4000.0  # the loss itself is still usable


def test_retained_graph_is_released_with_the_loss():
    x = ds.tensor(np.ones(10), requires_grad=True)
    loss, refs = _build_loss(x)
    loss.backward(retain_graph=True)
    assert all(r() is not None for r in refs)
    del loss
    assert [r() for r in refs] == [None, None, None]


def test_dropping_the_loss_without_backward_frees_the_graph():
    x = ds.tensor(np.ones(10), requires_grad=True)
    loss, refs = _build_loss(x)
    del loss
    assert [r() for r in refs] == [None, None, None]


def test_graph_is_freed_by_reference_counting_alone():
    gc.collect()
    gc.disable()
    try:
        x = ds.tensor(np.ones(10), requires_grad=True)
        loss, refs = _build_loss(x)
        loss.backward()
        assert [r() for r in refs] == [None, None, None]
        loss, refs = _build_loss(x)
        del loss
        assert [r() for r in refs] == [None, None, None]
    finally:
        gc.enable()


def test_engine_makes_no_reference_cycles():
    def step(w: ds.Tensor, x: np.ndarray) -> None:
        h = F.softmax((x @ w).tanh(), axis=1)
        loss = (h[:, [0, 0, 1]].max(axis=1) - ds.F.logsumexp(h, axis=1)).mean()
        loss.backward()
        (x @ w * 2.0).sum()  # a graph dropped without backward

    w = ds.tensor(random_array((4, 3), rng=93), requires_grad=True)
    x = random_array((5, 4), rng=94)
    gc.collect()
    gc.garbage.clear()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(5):
            step(w, x)
        gc.collect()
        cyclic = [o for o in gc.garbage if isinstance(o, ds.Tensor | Node | np.ndarray)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert cyclic == []


def _numpy_bytes(snapshot: tracemalloc.Snapshot) -> int:
    """Bytes of NumPy array buffers alive in ``snapshot`` (Python's own free lists excluded)."""
    domain = tracemalloc.DomainFilter(True, np.lib.tracemalloc_domain)
    return sum(stat.size for stat in snapshot.filter_traces([domain]).statistics("filename"))


def _live_tensors() -> int:
    return sum(isinstance(o, ds.Tensor) for o in gc.get_objects())


def test_memory_does_not_grow_over_repeated_steps():
    rng = np.random.default_rng(95)
    w = ds.tensor(rng.standard_normal((64, 64)), requires_grad=True)
    x = rng.standard_normal((32, 64))

    def step() -> None:
        loss = (((x @ w).tanh() ** 2).mean(axis=1) + F.softplus(x @ w).sum(axis=1)).mean()
        loss.backward()
        w.grad = None

    one_graph = 6 * 32 * 64 * 8  # a handful of (32, 64) float64 intermediates
    tracemalloc.start()
    try:
        for i in range(200):
            step()
            if i == 19:
                tensors = _live_tensors()
                arrays = _numpy_bytes(tracemalloc.take_snapshot())
                tracemalloc.reset_peak()
            elif i == 109:
                _, first_peak = tracemalloc.get_traced_memory()
                tracemalloc.reset_peak()
        _, second_peak = tracemalloc.get_traced_memory()
        arrays_end = _numpy_bytes(tracemalloc.take_snapshot())
    finally:
        tracemalloc.stop()
    assert _live_tensors() == tensors
    assert arrays_end - arrays < one_graph // 4
    # a graph kept per step would add 90 graphs to the peak; Python's free lists add a little
    assert second_peak <= first_peak + 2 * one_graph


def _walk_order(root):
    """graph.walk with a consumer that reports each tensor it reaches first (as backward
    and the captured programs' code generator do)."""
    from descend.autodiff.graph import walk

    reached, seen, order = [], {id(root)}, []
    for t in walk(root, reached):
        order.append(t)
        for p, need in zip(t._node.parents, t._node.needs):
            if need and p._node is not None and id(p) not in seen:
                seen.add(id(p))
                reached.append(p)
    return order


def test_walk_yields_each_tensor_once_by_decreasing_seq():
    # a diamond with a chain and a shared input: x -> a -> b; c = a * b + a -> loss
    x = ds.tensor(np.arange(3.0), requires_grad=True)
    a = x.exp()
    b = a.tanh()
    c = a * b + a
    loss = c.sum()
    order = _walk_order(loss)
    assert order[0] is loss
    assert len({id(t) for t in order}) == len(order) == 5  # loss, c, a*b, b, a (x: a leaf)
    seqs = [t._node.seq for t in order]
    assert seqs == sorted(seqs, reverse=True)


def test_an_error_in_backward_leaves_no_gradient_in_flight():
    from descend.autodiff.ops._core import call, primitive

    def fail(g, out, inputs, needs):
        raise RuntimeError("no VJP here")

    broken = primitive("broken", lambda a: a * 1.0, fail)
    x = ds.tensor([1.0, 2.0], requires_grad=True)
    a = x * 2.0
    b = x * 3.0
    loss = (call(broken, a) + b).sum()
    with pytest.raises(RuntimeError, match="no VJP"):
        loss.backward(retain_graph=True)
    assert a._g is None and b._g is None and x._g is None and x.grad is None
