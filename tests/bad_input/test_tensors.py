"""Bad input to tensors, the primitives and the functional layer (``ds.tensor``, operators,
reductions, shapes, ``backward``, ``ds.F``): each case names its bad value."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import descend as ds
from descend.errors import ConfigError, DTypeError, GradientError, ShapeError

from . import case, raises_naming, user_error


def x23() -> ds.Tensor:
    return ds.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)


def _backward_twice() -> None:
    y = (x23() * 2).sum()
    y.backward()
    y.backward()


def _detach_grad_off_non_leaf() -> None:
    (x23() * 2).requires_grad_(False)


IMAGES = np.ones((1, 1, 4, 4))
KERNEL = np.ones((1, 1, 2, 2))

TENSOR_CASES = [
    # ------------------------------------------------------------------ construction
    case("tensor-of-strings", lambda: ds.tensor(["a", "b"]), TypeError, "<U1"),
    case("tensor-of-None", lambda: ds.tensor(None), TypeError, "object"),
    case("tensor-unknown-dtype", lambda: ds.tensor([1.0], dtype="float-ish"), TypeError,
         "float-ish"),
    case("tensor-ragged-list", lambda: ds.tensor([[1.0, 2.0], [3.0]]), ShapeError, "[3.0]",
         bug="autodiff/tensor.py tensor() -> backend.as_array: a ragged nested list raises "
             "NumPy's raw ValueError 'inhomogeneous shape after 1 dimensions', not a ShapeError "
             "naming the ragged row"),
    case("int-requires-grad", lambda: ds.tensor([1, 2], requires_grad=True), DTypeError,
         "int64"),
    case("int-dtype-requires-grad",
         lambda: ds.tensor([1.0], dtype=np.int32, requires_grad=True), DTypeError, "int32"),
    case("requires_grad_-on-int", lambda: ds.tensor([1, 2]).requires_grad_(), DTypeError,
         "int64"),
    case("requires_grad_-off-non-leaf", _detach_grad_off_non_leaf, GradientError, "detach"),
    case("astype-unknown", lambda: x23().astype("float-ish"), TypeError, "float-ish"),
    # ------------------------------------------------------------------ shapes
    case("add-shapes", lambda: x23() + ds.tensor(np.ones(4)), ShapeError, "(4,)"),
    case("matmul-shapes", lambda: x23() @ ds.tensor(np.ones((2, 2))), ShapeError, "(2, 2)"),
    case("maximum-shapes", lambda: ds.maximum(x23(), np.ones(4)), ShapeError, "(4,)"),
    case("where-cond-shape", lambda: ds.where(np.ones(4, bool), x23(), x23()), ShapeError,
         "(4,)"),
    case("reshape-size", lambda: x23().reshape(4, 2), ShapeError, "(4, 2)"),
    case("reshape-two-minus-ones", lambda: x23().reshape(-1, -1), ShapeError, "(-1, -1)"),
    case("transpose-repeated-axis", lambda: x23().transpose(0, 0), ShapeError, "(0, 0)"),
    case("concatenate-nothing", lambda: ds.concatenate([]), ValueError, "at least one"),
    case("concatenate-shapes", lambda: ds.concatenate([x23(), ds.zeros(2, 4)]), ShapeError,
         "(2, 4)"),
    case("concatenate-axis", lambda: ds.concatenate([x23(), x23()], axis=3), ShapeError,
         "axis 3"),
    case("stack-shapes", lambda: ds.stack([x23(), ds.zeros(3, 2)]), ShapeError, "(3, 2)"),
    case("stack-axis", lambda: ds.stack([x23(), x23()], axis=4), ShapeError, "axis 4"),
    case("zeros-negative", lambda: ds.zeros(-1, 2), ShapeError, "-1"),
    case("ones-negative", lambda: ds.ones(3, -4), ShapeError, "-4"),
    case("randn-negative", lambda: ds.randn(-2), ShapeError, "-2"),
    case("zeros-float-size", lambda: ds.zeros(2.5), TypeError, "2.5",
         bug="autodiff/tensor.py _shape(): ds.zeros(2.5) raises TypeError \"'float' object is "
             "not iterable\", which does not name 2.5 (ds.zeros(-1) gets a ShapeError naming it)"),
    # ------------------------------------------------------------------ reductions and axes
    case("sum-axis-out-of-range", lambda: x23().sum(axis=5), ShapeError, "axis 5"),
    case("mean-axis-negative", lambda: x23().mean(axis=-3), ShapeError, "axis -3"),
    case("sum-axis-repeated", lambda: x23().sum(axis=(0, 0)), ShapeError, "(0, 0)"),
    case("sum-axis-string", lambda: x23().sum(axis="rows"), TypeError, "'rows'"),
    case("sum-axis-float", lambda: x23().sum(axis=1.0), TypeError, "1.0"),
    case("max-of-empty", lambda: ds.tensor(np.zeros((0, 3))).max(), ShapeError, "(0, 3)"),
    case("logsumexp-axis", lambda: ds.F.logsumexp(x23(), axis=5), ShapeError, "axis 5"),
    case("softmax-axis", lambda: ds.F.softmax(x23(), axis=5), ShapeError, "axis 5",
         bug="autodiff/ops/softmax.py softmax(): axis=5 on a 2-D tensor escapes as NumPy's "
             "AxisError from inside the forward, where logsumexp gives a ShapeError"),
    case("log_softmax-axis", lambda: ds.F.log_softmax(x23(), axis=-3), ShapeError, "axis -3",
         bug="autodiff/ops/softmax.py log_softmax(): axis=-3 escapes as NumPy's AxisError, not "
             "a ShapeError"),
    # ------------------------------------------------------------------ scalars and indexing
    case("item-of-matrix", lambda: x23().item(), ShapeError, "(2, 3)"),
    case("bool-of-matrix", lambda: bool(x23()), ShapeError, "(2, 3)"),
    case("index-out-of-range", lambda: x23()[5], IndexError, "5"),
    case("index-float", lambda: x23()[1.5], IndexError, "1.5"),
    case("clip-lo-above-hi", lambda: x23().clip(2.0, 1.0), ValueError, "lo=2.0"),
    case("clip-no-bounds", lambda: x23().clip(), ValueError, "lo and hi"),
    # ------------------------------------------------------------------ backward
    case("backward-non-scalar", lambda: (x23() * 2).backward(), GradientError, "(2, 3)"),
    case("backward-grad-shape", lambda: (x23() * 2).backward(np.ones((3, 2))), ShapeError,
         "(3, 2)"),
    case("backward-no-grad", lambda: ds.tensor([1.0]).sum().backward(), GradientError,
         "does not require grad"),
    case("backward-twice", _backward_twice, GradientError, "retain_graph"),
    case("grad_check-returns-float", lambda: ds.grad_check(lambda a: 1.0, [np.ones(2)]),
         TypeError, "float"),
    # ------------------------------------------------------------------ random generators
    case("manual_seed-string", lambda: ds.manual_seed("42"), TypeError, "str"),
    case("manual_seed-bool", lambda: ds.manual_seed(True), TypeError, "bool"),
    case("manual_seed-negative", lambda: ds.manual_seed(-1), ValueError, "-1",
         bug="backend.py manual_seed(-1): NumPy's raw ValueError 'expected non-negative "
             "integer' escapes; it names neither the argument nor -1"),
    case("randn-rng-string", lambda: ds.randn(2, rng="seed"), TypeError, "'seed'"),
    case("randn-rng-negative", lambda: ds.randn(2, rng=-7), ValueError, "-7",
         bug="backend.py get_rng(-7): NumPy's raw ValueError 'expected non-negative integer' "
             "escapes without naming -7 (every rng= argument goes through it)"),
    # ------------------------------------------------------------------ functional
    case("dropout-p-one", lambda: ds.F.dropout(x23(), 1.0), ConfigError, "1.0"),
    case("dropout-p-negative", lambda: ds.F.dropout(x23(), -0.5), ConfigError, "-0.5"),
    case("dropout-p-nan", lambda: ds.F.dropout(x23(), float("nan")), ConfigError, "nan"),
    case("dropout-p-string", lambda: ds.F.dropout(x23(), "0.5"), ConfigError, "'0.5'",
         bug="autodiff/functional.py dropout(p='0.5'): the raw TypeError \"'<=' not supported "
             "between instances of 'int' and 'str'\" escapes; it does not name the value"),
    case("leaky_relu-slope-string", lambda: ds.F.leaky_relu(x23(), "0.1"), TypeError, "'0.1'",
         bug="autodiff/ops/nonsmooth.py leaky_relu(negative_slope='0.1'): NumPy's "
             "UFuncTypeError from inside the forward, naming dtype('<U3'), not the value"),
    case("conv2d-3d-input", lambda: ds.F.conv2d(np.ones((1, 4, 4)), KERNEL), ShapeError,
         "(1, 4, 4)"),
    case("conv2d-channels", lambda: ds.F.conv2d(np.ones((1, 2, 4, 4)), KERNEL), ShapeError,
         "2 channels"),
    case("conv2d-stride-zero", lambda: ds.F.conv2d(IMAGES, KERNEL, stride=0), ConfigError,
         "0"),
    case("conv2d-stride-triple", lambda: ds.F.conv2d(IMAGES, KERNEL, stride=(1, 1, 1)),
         ConfigError, "(1, 1, 1)"),
    case("conv2d-padding-negative", lambda: ds.F.conv2d(IMAGES, KERNEL, padding=-1),
         ConfigError, "-1"),
    case("conv2d-kernel-too-large", lambda: ds.F.conv2d(IMAGES, np.ones((1, 1, 5, 5))),
         ShapeError, "(5, 5)"),
    case("conv2d-bias-shape", lambda: ds.F.conv2d(IMAGES, KERNEL, bias=np.ones(3)), ShapeError,
         "(3,)"),
    case("max_pool2d-kernel-zero", lambda: ds.F.max_pool2d(IMAGES, 0), ConfigError, "0"),
    case("max_pool2d-window-too-large", lambda: ds.F.max_pool2d(IMAGES, 5), ShapeError,
         "(5, 5)"),
    case("max_pool2d-3d-input", lambda: ds.F.max_pool2d(np.ones((1, 4, 4)), 2), ShapeError,
         "(1, 4, 4)"),
]


@pytest.mark.parametrize(("fn", "error", "needle"), TENSOR_CASES)
def test_bad_tensor_input_is_named(fn: Callable[[], Any], error: type, needle: str) -> None:
    assert user_error(error)
    raises_naming(error, needle, fn)


@pytest.mark.parametrize(
    "bad_grad",
    [np.ones((3, 2)), np.ones(6), np.ones((2, 3, 1))],
    ids=["transposed", "flat", "extra-axis"],
)
def test_failed_backward_leaves_no_gradient_behind(bad_grad: np.ndarray) -> None:
    x = x23()
    y = x * 2
    with pytest.raises(ShapeError, match=r"backward\(grad=\.\.\.\) got shape"):
        y.backward(bad_grad)
    assert x.grad is None
    # The graph was not consumed by the failed call: a correct call still works.
    y.backward(np.ones((2, 3)))
    assert np.array_equal(x.grad, np.full((2, 3), 2.0))


def test_failed_operation_records_nothing() -> None:
    x = x23()
    with pytest.raises(ShapeError):
        _ = x + ds.tensor(np.ones(4))
    assert x.grad is None and x.is_leaf
    (x * 1.0).sum().backward()
    assert np.array_equal(x.grad, np.ones((2, 3)))
