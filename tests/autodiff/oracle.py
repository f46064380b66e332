"""Independent references for the engine's gradients.

Two oracles that share no code with descend's backward pass:

- HIPS ``autograd`` differentiating the same expression written with ``autograd.numpy``;
- float64 central differences of descend's own forward pass (no backward involved).

A non-scalar output is reduced with fixed random weights ``w`` so that the whole
vector-Jacobian product ``w^T J`` is compared, not just the gradient of a plain sum.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import autograd.numpy as anp
import numpy as np
from autograd import grad
from numpy.testing import assert_allclose

import descend as ds

#: (rtol, atol) of value and gradient comparisons with autograd, per dtype of the inputs.
TOLERANCES: dict[np.dtype, tuple[float, float]] = {
    np.dtype(np.float64): (1e-6, 1e-9),
    np.dtype(np.float32): (2e-4, 2e-5),
}

#: (rtol, atol) of comparisons with central differences (truncation error ~ eps**2).
FD_TOLERANCE = (1e-5, 1e-6)

DTYPES = (np.float32, np.float64)


def random_array(
    shape: tuple[int, ...],
    dtype: Any = np.float64,
    rng: np.random.Generator | int = 0,
    domain: str = "real",
) -> np.ndarray:
    """Random data of ``shape`` in a domain where the function under test is smooth.

    ``real``: standard normal, but at least 0.05 away from 0 (kinks of relu, abs, ...);
    ``positive``: uniform on [0.5, 2] (log, sqrt, bases of powers);
    ``nonzero``: +-uniform on [0.5, 2] (divisors).
    """
    gen = np.random.default_rng(rng)
    if domain == "positive":
        arr = gen.uniform(0.5, 2.0, size=shape)
    elif domain == "nonzero":
        arr = gen.uniform(0.5, 2.0, size=shape) * gen.choice([-1.0, 1.0], size=shape)
    elif domain == "real":
        arr = gen.standard_normal(size=shape)
        arr = np.where(np.abs(arr) < 0.05, 0.05 + np.abs(arr), arr)
    else:
        raise ValueError(f"unknown domain {domain!r}")
    return np.asarray(arr, dtype=dtype)


def fixed_weights(shape: tuple[int, ...], seed: int = 12345) -> np.ndarray:
    """The fixed random weights that reduce a non-scalar output (ones for a scalar)."""
    if shape == ():
        return np.ones(())
    return np.random.default_rng(seed).standard_normal(shape)


def central_differences(
    fn: Callable[..., Any], arrays: Sequence[np.ndarray], weights: np.ndarray, eps: float = 1e-6
) -> list[np.ndarray]:
    """d/dx_i sum(w * fn(x)) for every input, by float64 central differences.

    ``fn`` takes and returns plain float64 ndarrays; it is evaluated at x +- eps e_k for every
    element k of every input.
    """
    xs = [np.array(a, dtype=np.float64) for a in arrays]
    grads = []
    for x in xs:
        g = np.zeros_like(x)
        flat, gflat = x.reshape(-1), g.reshape(-1)
        for k in range(flat.size):
            old = flat[k]
            flat[k] = old + eps
            up = float(np.sum(np.asarray(fn(*xs)) * weights))
            flat[k] = old - eps
            down = float(np.sum(np.asarray(fn(*xs)) * weights))
            flat[k] = old
            gflat[k] = (up - down) / (2 * eps)
        grads.append(g)
    return grads


def descend_forward(ds_fn: Callable[..., ds.Tensor]) -> Callable[..., np.ndarray]:
    """``ds_fn`` as a plain function of float64 arrays, run without recording a graph."""

    def fn(*arrays: np.ndarray) -> np.ndarray:
        with ds.no_grad():
            return ds_fn(*[ds.tensor(a) for a in arrays]).data

    return fn


def backprop(
    ds_fn: Callable[..., ds.Tensor], arrays: Sequence[np.ndarray], weights: np.ndarray | None
) -> tuple[ds.Tensor, list[ds.Tensor]]:
    """Run ``ds_fn`` on leaves made from ``arrays`` and backpropagate ``weights``."""
    leaves = [ds.tensor(a, requires_grad=True) for a in arrays]
    out = ds_fn(*leaves)
    assert isinstance(out, ds.Tensor), f"expected a Tensor, got {type(out).__name__}"
    w = fixed_weights(out.shape) if weights is None else weights
    if out.size == 1 and out.ndim == 0:
        out.backward()
    else:
        out.backward(grad=w)
    return out, leaves


def check_gradients(
    ds_fn: Callable[..., ds.Tensor],
    ag_fn: Callable[..., Any],
    arrays: Sequence[np.ndarray],
    *,
    finite_differences: bool = True,
    tol: tuple[float, float] | None = None,
) -> None:
    """Compare descend's forward value and every input's gradient with the oracles.

    ``ds_fn(*tensors) -> Tensor`` and ``ag_fn(*arrays)`` (written with ``autograd.numpy``)
    compute the same function. The inputs keep their dtype on descend's side; autograd always
    works in float64. Checks: the output's value, shape and dtype (the inputs' dtype); every
    gradient's value, shape and dtype (its leaf's) against autograd; and, for float64 inputs,
    against central differences of descend's forward.
    """
    arrays = [np.asarray(a) for a in arrays]
    dtype = np.result_type(*arrays)
    rtol, atol = tol if tol is not None else TOLERANCES[np.dtype(dtype)]
    out, leaves = backprop(ds_fn, arrays, None)
    weights = fixed_weights(out.shape).astype(out.dtype).astype(np.float64)

    arrays64 = [a.astype(np.float64) for a in arrays]
    expected = ag_fn(*arrays64)
    assert out.shape == np.shape(expected), f"shape {out.shape}, autograd {np.shape(expected)}"
    assert out.dtype == dtype, f"output dtype {out.dtype}, inputs {dtype}"
    assert_allclose(out.data, expected, rtol=rtol, atol=atol, err_msg="forward value")

    def weighted(xs: list[np.ndarray]) -> Any:
        return anp.sum(ag_fn(*xs) * weights)

    ag_grads = grad(weighted)(arrays64)
    for i, (leaf, ref) in enumerate(zip(leaves, ag_grads, strict=True)):
        # (that .grad is a writeable ndarray is asserted on its own in test_graph.py)
        assert leaf.grad is not None, f"input {i}: no gradient"
        assert leaf.grad.dtype == leaf.dtype, f"input {i}: grad dtype {leaf.grad.dtype}"
        assert leaf.grad.shape == leaf.shape, f"input {i}: grad shape {leaf.grad.shape}"
        assert_allclose(leaf.grad, ref, rtol=rtol, atol=atol, err_msg=f"input {i} vs autograd")

    if finite_differences and dtype == np.float64:
        numeric = central_differences(descend_forward(ds_fn), arrays64, weights)
        frtol, fatol = FD_TOLERANCE
        for i, (leaf, ref) in enumerate(zip(leaves, numeric, strict=True)):
            assert_allclose(
                leaf.grad, ref, rtol=frtol, atol=fatol, err_msg=f"input {i} vs differences"
            )
