"""Loss functions (functions and modules) and parameter penalties.

Each loss computes a per-sample (per-element) value ``l`` and reduces it with
``reduction``: ``"mean"`` (the default), ``"sum"`` or ``"none"`` (``l`` itself). Definitions
match PyTorch's functions of the same name. All are composed from primitives, so their
gradients come from the engine; kinks use the stated subgradients (|x|'(0) = 0,
relu'(0) = 0, so the hinge's subgradient at the margin is 0).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from .. import backend
from ..autodiff import ops
from ..autodiff.tensor import Tensor
from ..errors import ConfigError, DataError, DTypeError, ShapeError
from .module import Module

REDUCTIONS = ("mean", "sum", "none")


# ---------------------------------------------------------------------------- helpers
def _check_reduction(reduction: Any, where: str) -> str:
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        raise ConfigError(f"{where}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return reduction


def _reduce(per: Any, reduction: str) -> Any:
    if reduction == "mean":
        return ops.mean(per)
    if reduction == "sum":
        return ops.sum(per)
    return per


def _array(x: Any) -> np.ndarray:
    if isinstance(x, Tensor):
        return x.data
    try:
        return np.asarray(x)
    except ValueError:
        raise ShapeError("targets must be an array, got ragged nested sequences") from None


def _input(x: Any, where: str) -> Any:
    """A floating Tensor or array for a loss's prediction argument."""
    if not isinstance(x, Tensor):
        x = backend.as_array(x)
    if x.dtype.kind != "f":
        raise DTypeError(f"{where}: the input must be floating, got dtype {x.dtype}")
    return x


def _target_like(target: Any, input_: Any, where: str, name: str = "target") -> Any:
    """``target`` checked to have the input's shape; a constant is cast to its dtype."""
    shape_in = _array(input_).shape
    t = target
    if not (isinstance(t, Tensor) and t.requires_grad):
        arr = _array(t)
        if arr.dtype.kind not in "biuf":
            raise DTypeError(f"{where}: {name} must hold numbers, got dtype {arr.dtype}")
        t = arr.astype(_array(input_).dtype, copy=False)
    if _array(t).shape != shape_in:
        raise ShapeError(
            f"{where}: input of shape {shape_in} and {name} of shape {_array(t).shape} "
            "differ; they must match (reshape one: broadcasting would silently pair every "
            "prediction with every target)"
        )
    return t


# ---------------------------------------------------------------------------- losses
def cross_entropy(logits: Any, targets: Any, reduction: str = "mean") -> Any:
    """Cross-entropy of logits with integer class targets (softmax + negative log-likelihood).

    ``l_i = logsumexp(x_i) - x_{i, y_i}`` for logits ``x`` of shape (n, k) and targets ``y``
    of shape (n,) in ``0 .. k-1``; computed by one fused primitive, stable for logits of any
    magnitude. Gradient: ``softmax(x_i) - onehot(y_i)`` (times the reduction's weight).

    Raises
    ------
    ShapeError, DTypeError, ValueError
        Logits not 2-D, targets not of shape (n,) or not integers, or a label outside
        ``0 .. k-1`` (the message names it and the number of classes).
    """
    _check_reduction(reduction, "cross_entropy")
    targets = _array(targets)
    return _reduce(
        ops.cross_entropy_per_sample(_input(logits, "cross_entropy"), targets), reduction
    )


def mse_loss(input: Any, target: Any, reduction: str = "mean") -> Any:
    """Mean squared error: ``l = (input - target)^2`` elementwise, shapes equal."""
    _check_reduction(reduction, "mse_loss")
    input = _input(input, "mse_loss")
    diff = ops.sub(input, _target_like(target, input, "mse_loss"))
    return _reduce(ops.mul(diff, diff), reduction)


def l1_loss(input: Any, target: Any, reduction: str = "mean") -> Any:
    """Mean absolute error: ``l = |input - target|`` elementwise; subgradient 0 where equal."""
    _check_reduction(reduction, "l1_loss")
    input = _input(input, "l1_loss")
    return _reduce(ops.absolute(ops.sub(input, _target_like(target, input, "l1_loss"))), reduction)


def huber_loss(input: Any, target: Any, delta: float = 1.0, reduction: str = "mean") -> Any:
    """Huber loss (PyTorch's ``huber_loss``): with ``d = input - target``,

    ``l = 0.5 d^2`` if ``|d| < delta``, else ``delta * (|d| - 0.5 delta)``,

    computed as ``0.5 q^2 + delta (|d| - q)`` with ``q = min(|d|, delta)``: quadratic near 0,
    linear in the tails, with a continuous derivative ``clip(d, -delta, delta)``.
    """
    _check_reduction(reduction, "huber_loss")
    if isinstance(delta, bool) or not isinstance(delta, int | float) or not delta > 0:
        raise ConfigError(f"huber_loss: delta must be a positive number, got {delta!r}")
    input = _input(input, "huber_loss")
    a = ops.absolute(ops.sub(input, _target_like(target, input, "huber_loss")))
    q = ops.minimum(a, delta)
    per = ops.add(ops.mul(ops.mul(q, q), 0.5), ops.mul(ops.sub(a, q), delta))
    return _reduce(per, reduction)


def binary_cross_entropy_with_logits(logits: Any, targets: Any, reduction: str = "mean") -> Any:
    """Binary cross-entropy of logits ``x`` with targets ``y`` in [0, 1] (shapes equal):

    ``l = -[y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))] = softplus(x) - x y``,

    which equals ``max(x, 0) - x y + log(1 + exp(-|x|))``: no overflow for any logit.
    Gradient: ``sigmoid(x) - y``.

    Raises
    ------
    ShapeError
        Targets whose shape differs from the logits'.
    DataError
        A target outside [0, 1] (named in the message).
    """
    where = "binary_cross_entropy_with_logits"
    _check_reduction(reduction, where)
    logits = _input(logits, where)
    t = _target_like(targets, logits, where, "targets")
    values = _array(t)
    bad = (values < 0) | (values > 1) | np.isnan(values)
    if bad.any():
        raise DataError(f"{where}: targets must lie in [0, 1], got {values[bad].flat[0].item()!r}")
    return _reduce(ops.sub(ops.softplus(logits), ops.mul(logits, t)), reduction)


def hinge_loss(scores: Any, targets: Any, reduction: str = "mean") -> Any:
    """Hinge loss, binary or multi-class (Crammer-Singer).

    Binary: scores of shape (n,), targets in {-1, +1}:
    ``l_i = max(0, 1 - y_i s_i)``.

    Multi-class: scores of shape (n, k), integer targets in ``0 .. k-1``:
    ``l_i = max(0, 1 + max_{j != y_i} s_ij - s_{i, y_i})``.

    Both are a ``relu`` of the margin violation, so at the margin (violation exactly 0)
    the subgradient is 0; tied runner-up scores share the gradient equally.

    Raises
    ------
    ShapeError
        Scores neither 1-D nor 2-D, targets of the wrong shape, or fewer than 2 classes.
    DataError
        Binary targets other than -1 and +1, or a class label out of range.
    """
    _check_reduction(reduction, "hinge_loss")
    scores = _input(scores, "hinge_loss")
    s = _array(scores)
    y = _array(targets)
    if s.ndim == 1:
        if y.shape != s.shape:
            raise ShapeError(
                f"hinge_loss: scores of shape {s.shape} need targets of shape {s.shape}, "
                f"got {y.shape}"
            )
        if y.dtype.kind not in "biuf":
            raise DTypeError(f"hinge_loss: targets must be -1 or +1, got dtype {y.dtype}")
        bad = (y != 1) & (y != -1)
        if bad.any():
            raise DataError(
                f"hinge_loss: binary targets must be -1 or +1, got {y[bad].flat[0].item()!r} "
                "(for 0/1 labels pass 2 * y - 1)"
            )
        # (a cast of other labels is an operation, so a captured step repeats it per batch)
        signs = y if y.dtype == s.dtype else ops.astype(y, s.dtype)
        margin = ops.mul(scores, signs)
        return _reduce(ops.relu(ops.sub(1.0, margin)), reduction)
    if s.ndim != 2:
        raise ShapeError(
            f"hinge_loss: scores must have shape (n,) (binary) or (n, classes), got {s.shape}"
        )
    n, k = s.shape
    if k < 2:
        raise ShapeError(
            f"hinge_loss: multi-class scores need at least 2 classes, got shape {s.shape} "
            "(for binary scores pass shape (n,) and targets in {-1, +1})"
        )
    if y.shape != (n,):
        raise ShapeError(
            f"hinge_loss: scores of shape {s.shape} need targets of shape ({n},), got {y.shape}"
        )
    if y.dtype.kind not in "iu":
        raise DTypeError(f"hinge_loss: class targets must be integers, got dtype {y.dtype}")
    if y.size and (y.min() < 0 or y.max() >= k):
        bad = y[(y < 0) | (y >= k)][0].item()
        raise DataError(
            f"hinge_loss: target {bad} is out of range for {k} classes (valid: 0..{k - 1})"
        )
    # The mask is an operation on the targets (not a NumPy array made here), so that a
    # captured step makes it anew from each batch's labels. The true class's score is the
    # max of its row under the mask: the same value as scores[i, y_i], and the same
    # gradient bits (-g there, +0 elsewhere) as indexing would give.
    onehot = ops.class_mask(y, k)
    true = ops.amax(ops.where(onehot, scores, -np.inf), axis=1)
    runner_up = ops.amax(ops.where(onehot, -np.inf, scores), axis=1)
    return _reduce(ops.relu(ops.add(ops.sub(runner_up, true), 1.0)), reduction)


# ---------------------------------------------------------------------------- penalties
def _tensors(params: Any, where: str) -> list[Any]:
    """The tensors of ``params`` (an iterable of Tensors or arrays), or a TypeError."""
    if isinstance(params, Tensor | np.ndarray):
        return [params]
    try:
        items = list(params)
    except TypeError:
        raise TypeError(f"{where}: params must be an iterable of tensors (e.g. "
                        f"model.parameters()), got {type(params).__name__}") from None
    for i, p in enumerate(items):
        if not isinstance(p, Tensor | np.ndarray):
            raise TypeError(f"{where}: params must hold tensors, got "
                            f"{type(p).__name__} at position {i}")
    return items


def l2_penalty(params: Iterable[Any]) -> Any:
    """``0.5 * sum_w ||w||^2`` over the given tensors (e.g. ``model.parameters()``);
    its gradient is ``w``. Returns a scalar Tensor (0 for no tensors)."""
    total: Any = None
    for p in _tensors(params, "l2_penalty"):
        term = ops.sum(ops.mul(p, p))
        total = term if total is None else ops.add(total, term)
    if total is None:
        return Tensor(np.zeros((), dtype=np.float32))
    return ops.mul(total, 0.5)


def l1_penalty(params: Iterable[Any]) -> Any:
    """``sum_w sum_i |w_i|`` over the given tensors; its subgradient is ``sign(w)``, 0 at 0.
    Returns a scalar Tensor (0 for no tensors)."""
    total: Any = None
    for p in _tensors(params, "l1_penalty"):
        term = ops.sum(ops.absolute(p))
        total = term if total is None else ops.add(total, term)
    if total is None:
        return Tensor(np.zeros((), dtype=np.float32))
    return total


# ---------------------------------------------------------------------------- modules
class _Loss(Module):
    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = _check_reduction(reduction, type(self).__name__)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class CrossEntropyLoss(_Loss):
    """Module form of ``cross_entropy(logits, targets, reduction)``."""

    def forward(self, logits: Any, targets: Any) -> Any:
        return cross_entropy(logits, targets, self.reduction)


class MSELoss(_Loss):
    """Module form of ``mse_loss(input, target, reduction)``."""

    def forward(self, input: Any, target: Any) -> Any:
        return mse_loss(input, target, self.reduction)


class L1Loss(_Loss):
    """Module form of ``l1_loss(input, target, reduction)``."""

    def forward(self, input: Any, target: Any) -> Any:
        return l1_loss(input, target, self.reduction)


class HuberLoss(_Loss):
    """Module form of ``huber_loss(input, target, delta, reduction)``."""

    def __init__(self, reduction: str = "mean", delta: float = 1.0):
        super().__init__(reduction)
        if isinstance(delta, bool) or not isinstance(delta, int | float) or not delta > 0:
            raise ConfigError(f"HuberLoss: delta must be a positive number, got {delta!r}")
        self.delta = float(delta)

    def forward(self, input: Any, target: Any) -> Any:
        return huber_loss(input, target, self.delta, self.reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}, delta={self.delta}"


class BCEWithLogitsLoss(_Loss):
    """Module form of ``binary_cross_entropy_with_logits(logits, targets, reduction)``."""

    def forward(self, logits: Any, targets: Any) -> Any:
        return binary_cross_entropy_with_logits(logits, targets, self.reduction)


class HingeLoss(_Loss):
    """Module form of ``hinge_loss(scores, targets, reduction)`` (binary or multi-class)."""

    def forward(self, scores: Any, targets: Any) -> Any:
        return hinge_loss(scores, targets, self.reduction)
