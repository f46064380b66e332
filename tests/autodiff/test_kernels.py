"""Kernels (a primitive's forward and VJP over kept buffers) compute the primitive's bits.

Every primitive that declares a :class:`~descend.autodiff.graph.Kernel` is run both ways on
the same inputs, in float32 and float64, twice in a row on one workspace (the second call
reuses the buffers the first one made), and the results must be equal byte for byte. The
gradients that leave a program (``fresh``) must be new arrays, the others the kept buffers;
and the captured programs that use kernels must guard against parameters that change shape
or dtype, and never hand out a buffer as the loss.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

import numpy as np
import pytest

from descend import nn, optim
from descend.autodiff import ops
from descend.train import capture, fit

# (the modules, not the functions of the same names that ``ops`` exports)
linalg, nonsmooth, reduce, softmax = (
    import_module(f"descend.autodiff.ops.{name}")
    for name in ("linalg", "nonsmooth", "reduce", "softmax"))

DTYPES = (np.float32, np.float64)


def _cases(dtype: Any) -> list[tuple[Any, tuple, dict]]:
    rng = np.random.default_rng(0)

    def r(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape).astype(dtype)

    logits = r(7, 5) * 30  # large logits: the shifts matter
    targets = rng.integers(0, 5, 7)
    return [
        (linalg._LINEAR, (r(6, 4), r(3, 4), r(3)), {}),
        (linalg._LINEAR, (r(2, 6, 4), r(3, 4), r(3)), {}),  # leading batch axes
        (linalg._LINEAR, (r(6, 4), r(3, 4), None), {}),  # no bias
        (nonsmooth._RELU, (np.concatenate([r(5, 3), np.zeros((1, 3), dtype)]),), {}),
        # a strided input (a convolution's output is one): results in NumPy's own layout
        (nonsmooth._RELU, (r(2, 3, 4, 5).transpose(0, 3, 1, 2),), {}),
        (linalg._LINEAR, (r(4, 6).T, r(3, 4), r(3)), {}),
        (softmax._CROSS_ENTROPY, (r(5, 7).T * 10, rng.integers(0, 5, 7)), {}),
        (softmax._CROSS_ENTROPY, (logits, targets), {}),
        (reduce._MEAN, (r(7),), {"axis": None, "keepdims": False}),
        (reduce._MEAN, (r(4, 5),), {"axis": (1,), "keepdims": True}),
    ]


def _bits(a: Any) -> Any:
    """Everything the two computations must share: values, dtype, shape, memory layout."""
    return None if a is None else (a.dtype, a.shape, a.strides,
                                   np.ascontiguousarray(a).tobytes())


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("fresh", [True, False], ids=["fresh", "buffered"])
def test_kernels_compute_the_primitives_bits(dtype: Any, fresh: bool) -> None:
    for prim, args, params in _cases(dtype):
        kernel = prim.kernel
        assert kernel is not None
        out = prim.forward(*args, **params)
        g = np.random.default_rng(1).standard_normal(out.shape).astype(out.dtype)
        needs = tuple(isinstance(a, np.ndarray) and a.dtype.kind == "f" for a in args)
        grads = prim.vjp(g, out, args, needs, **params)
        ws: dict = {}
        seen: list[list[int]] = []
        for _ in range(2):  # the second call runs on the first call's buffers
            k_out = out if kernel.forward is None else kernel.forward(ws, *args, **params)
            assert _bits(k_out) == _bits(out), prim.name
            k_grads = kernel.vjp(ws, g, k_out, args, needs, (fresh,) * len(args), **params)
            assert len(k_grads) == len(grads)
            for a, b, x in zip(k_grads, grads, args):
                assert _bits(a) == _bits(b), prim.name
                if a is not None:  # in the input's own shape: nothing to unbroadcast
                    assert a.shape == x.shape, prim.name
            buffers = {id(b) for b in ws.values()}
            seen.append([id(a) for a in k_grads if a is not None and id(a) in buffers])
            for a in k_grads:
                if a is not None and fresh:  # leaves the program: never a kept buffer
                    assert id(a) not in buffers and a.base is None, prim.name
        if not fresh:  # the input's gradient in a kept buffer, the same call after call
            assert seen[0] and seen[0] == seen[1], prim.name
        for a in args:  # inputs are never written
            if isinstance(a, np.ndarray):
                assert a.flags.writeable


def _first_sample_loss(logits: Any, y: Any) -> Any:
    """A loss that is a view of a kernel's output (the first sample's cross-entropy)."""
    return ops.cross_entropy_per_sample(logits, y)[:1].reshape(())


def _mlp_run(capture_on: bool, switch_dtype_at: int | None = None,
             loss_fn: Any = None) -> tuple[list, list]:
    rng = np.random.default_rng(2)
    X = rng.standard_normal((64, 5)).astype(np.float32)
    y = (X[:, 0] > X[:, 1]).astype(np.int64) + (X[:, 2] > 0)
    model = nn.mlp([5, 7, 3], rng=1)
    opt = optim.GD(model.parameters(), lr=0.2)
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    step = capture.captured_step(model, loss_fn, opt) if capture_on else None
    losses = []
    for i in range(12):
        if i == switch_dtype_at:  # parameters replaced by float64 arrays mid-training
            for p in model.parameters():
                p.data = p.data.astype(np.float64)
        xb, yb = X[(i % 4) * 16:(i % 4 + 1) * 16], y[(i % 4) * 16:(i % 4 + 1) * 16]
        if step is not None:
            losses.append(step(xb, yb))
        else:
            losses.append(opt.step(lambda xb=xb, yb=yb: loss_fn(model(xb), yb)))
    if step is not None:
        assert step.engine.stats["grad"][0] > 0  # programs were replayed
        if switch_dtype_at is not None:  # the batches' key is the same: recorded again
            (entry,) = (e for k, e in step.engine.entries.items() if k[0] == "grad")
            guard = entry.program.fn.__globals__["GUARD"]
            assert entry.state == "ready" and np.dtype(np.float64) in guard
    return ([loss.data.tobytes() for loss in losses],
            [p.data.tobytes() for p in model.parameters()])


@pytest.mark.parametrize("loss_fn", [None, _first_sample_loss], ids=["mean", "view"])
def test_losses_handed_out_are_never_overwritten_by_later_replays(loss_fn: Any) -> None:
    # the loss of each step must keep its value after the following steps have replayed
    captured, eager = _mlp_run(True, loss_fn=loss_fn), _mlp_run(False, loss_fn=loss_fn)
    assert captured == eager
    assert len(set(captured[0])) == len(captured[0])


def test_a_parameter_that_changes_dtype_records_again_and_stays_exact() -> None:
    captured, eager = _mlp_run(True, switch_dtype_at=7), _mlp_run(False, switch_dtype_at=7)
    assert captured == eager
    assert len(captured[0][-1]) == 8  # the last loss is float64


def test_programs_with_kernels_check_their_parameters() -> None:
    rng = np.random.default_rng(3)
    X = rng.standard_normal((32, 4)).astype(np.float32)
    y = rng.integers(0, 3, 32)
    model = nn.mlp([4, 6, 3], rng=2)
    opt = optim.GD(model.parameters(), lr=0.1)
    fit(model, nn.CrossEntropyLoss(), opt, (X, y), epochs=2, batch_size=8, progress=False)
    entry = next(e for k, e in capture.engine_for(opt).entries.items() if k[0] == "grad")
    assert entry.state == "ready"
    source = entry.program.source
    assert "raise STALE" in source.splitlines()[1]
    # the kernels of linear, relu and cross-entropy write into kept buffers (W...)
    assert source.count("(W") >= 6
