"""grad_check: compare backpropagation with float64 central differences."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import backend
from ..errors import ConfigError
from .graph import no_grad
from .tensor import Tensor


def grad_check(
    fn: Callable[..., Tensor],
    inputs: Sequence[Any] | Tensor | np.ndarray,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    *,
    seed: int = 0,
) -> bool:
    """Check the gradients of ``fn`` at ``inputs`` against central differences.

    Every floating input is copied to float64 and made to require grad; integer and boolean
    inputs (class targets, masks) are passed unchanged. A non-scalar output is reduced with
    fixed random weights v, so the check covers the whole vector-Jacobian product
    ``v^T J``. Each element's derivative is estimated by (f(x + eps) - f(x - eps)) / (2 eps)
    and must satisfy ``|backprop - numeric| <= atol + rtol * |numeric|``.

    Returns
    -------
    True when every element agrees.

    Raises
    ------
    AssertionError
        Naming the input, the element's index and both values, at the first disagreement.
    """
    if not callable(fn):
        raise TypeError(f"grad_check: fn must be callable, got {type(fn).__name__}")
    for name, value in (("eps", eps), ("atol", atol), ("rtol", rtol)):
        if (isinstance(value, bool) or not isinstance(value, int | float | np.floating)
                or not math.isfinite(value) or value < 0 or (name == "eps" and value == 0)):
            raise ConfigError(f"grad_check: {name} must be a finite number "
                              f"{'> 0' if name == 'eps' else '>= 0'}, got {value!r:.40}")
    if isinstance(inputs, Tensor | np.ndarray):
        inputs = [inputs]
    if isinstance(inputs, str) or not hasattr(inputs, "__iter__"):
        raise TypeError(f"grad_check: inputs must be a tensor or a sequence of tensors, got "
                        f"{type(inputs).__name__}")
    args: list[Any] = []
    for x in inputs:
        arr = x.data if isinstance(x, Tensor) else backend.as_array(x)
        if arr.dtype.kind == "f":
            args.append(Tensor(np.array(arr, dtype=np.float64), requires_grad=True))
        else:
            args.append(x)
    out = fn(*args)
    if not isinstance(out, Tensor):
        raise TypeError(f"grad_check: fn must return a Tensor, got {type(out).__name__}")
    weights = np.random.default_rng(backend.check_seed(seed)).standard_normal(out.shape)
    if out.size == 1:
        weights = np.ones(out.shape)
    (out * weights).sum().backward()

    def value() -> float:
        with no_grad():
            return float(np.sum(fn(*args).data * weights))

    for i, x in enumerate(args):
        if not isinstance(x, Tensor) or not x.requires_grad:
            continue
        analytic = x.grad if x.grad is not None else np.zeros_like(x.data)
        flat = x.data.reshape(-1)  # a view: editing it edits x.data
        for k in range(flat.size):
            old = flat[k]
            flat[k] = old + eps
            up = value()
            flat[k] = old - eps
            down = value()
            flat[k] = old
            numeric = (up - down) / (2 * eps)
            got = float(analytic.reshape(-1)[k])
            if not abs(got - numeric) <= atol + rtol * abs(numeric):
                index = np.unravel_index(k, x.shape) if x.ndim else ()
                raise AssertionError(
                    f"grad_check: input {i} (shape {x.shape}) at index {tuple(map(int, index))}:"
                    f" backprop gives {got:.8g}, central differences give {numeric:.8g}"
                )
    return True
