"""Bad input to the losses (functions and modules): reductions, constants, labels out of
range, float labels, wrong shapes and dtypes. The loss is where a bad label first meets the
model's output width, so each message must name the label and the number of classes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import descend as ds
from descend import nn
from descend.errors import ConfigError, DataError, DTypeError, ShapeError

from . import case, raises_naming, user_error

NAN = float("nan")
LOSS_MODULES = [nn.CrossEntropyLoss, nn.MSELoss, nn.L1Loss, nn.HuberLoss, nn.BCEWithLogitsLoss,
                nn.HingeLoss]


@pytest.mark.parametrize("loss", LOSS_MODULES, ids=lambda c: c.__name__)
@pytest.mark.parametrize(
    ("reduction", "needle"),
    [("avg", "'avg'"), ("MEAN", "'MEAN'"), (None, "None"), (1, "1"), ("", "''")],
)
def test_every_loss_module_rejects_an_unknown_reduction(
    loss: type, reduction: object, needle: str
) -> None:
    error = raises_naming(ConfigError, needle, lambda: loss(reduction=reduction))
    assert "'mean', 'sum' or 'none'" in str(error)


def logits(n: int = 4, k: int = 3) -> ds.Tensor:
    return ds.tensor(np.zeros((n, k)), requires_grad=True)


def vec(n: int = 4) -> ds.Tensor:
    return ds.tensor(np.zeros(n), requires_grad=True)


CE = nn.CrossEntropyLoss()
LOSS_CASES = [
    # ------------------------------------------------------------------ cross-entropy labels
    case("ce-label-equals-classes", lambda: CE(logits(), np.array([0, 1, 3, 2])), ValueError,
         "target 3 is out of range for 3 classes"),
    case("ce-label-far-too-large", lambda: CE(logits(), np.array([0, 1, 2, 10**6])),
         ValueError, "1000000"),
    case("ce-label-negative", lambda: CE(logits(), np.array([0, -1, 2, 1])), ValueError,
         "target -1"),
    case("ce-float-labels", lambda: CE(logits(), np.array([0.0, 1.0, 2.0, 1.0])), DTypeError,
         "float64"),
    case("ce-bool-labels", lambda: CE(logits(), np.array([True, False, True, False])),
         DTypeError, "bool"),
    case("ce-string-labels", lambda: CE(logits(), np.array(list("abcd"))), DTypeError, "<U1"),
    case("ce-labels-short", lambda: CE(logits(), np.array([0, 1, 2])), ShapeError, "(3,)"),
    case("ce-one-hot-labels", lambda: CE(logits(), np.eye(4, 3, dtype=np.int64)), ShapeError,
         "(4, 3)"),
    case("ce-column-labels", lambda: CE(logits(), np.zeros((4, 1), dtype=np.int64)),
         ShapeError, "(4, 1)"),
    case("ce-logits-1d", lambda: CE(vec(), np.zeros(4, dtype=np.int64)), ShapeError, "(4,)"),
    case("ce-logits-3d", lambda: CE(ds.zeros(4, 3, 2), np.zeros(4, dtype=np.int64)),
         ShapeError, "(4, 3, 2)"),
    case("ce-integer-logits", lambda: CE(np.zeros((4, 3), dtype=np.int64), np.zeros(4, int)),
         DTypeError, "int64"),
    case("ce-functional-reduction", lambda: nn.cross_entropy(logits(), np.zeros(4, int), "avg"),
         ConfigError, "'avg'"),
    # ------------------------------------------------------------------ regression losses
    case("mse-column-vs-flat", lambda: nn.MSELoss()(ds.zeros(4, 1), np.zeros(4)), ShapeError,
         "(4, 1)"),
    case("mse-string-target", lambda: nn.MSELoss()(vec(), np.array(list("abcd"))), DTypeError,
         "<U1"),
    case("mse-integer-input", lambda: nn.mse_loss(np.zeros(4, dtype=np.int32), np.zeros(4)),
         DTypeError, "int32"),
    case("l1-shape", lambda: nn.L1Loss()(vec(4), np.zeros(5)), ShapeError, "(5,)"),
    case("huber-shape", lambda: nn.HuberLoss()(vec(4), np.zeros((4, 4))), ShapeError, "(4, 4)"),
    case("huber-delta-zero", lambda: nn.HuberLoss(delta=0), ConfigError, "0"),
    case("huber-delta-negative", lambda: nn.HuberLoss(delta=-1.0), ConfigError, "-1.0"),
    case("huber-delta-nan", lambda: nn.HuberLoss(delta=NAN), ConfigError, "nan"),
    case("huber-delta-string", lambda: nn.HuberLoss(delta="1"), ConfigError, "'1'"),
    case("huber-delta-bool", lambda: nn.HuberLoss(delta=True), ConfigError, "True"),
    case("huber-functional-delta", lambda: nn.huber_loss(vec(), np.zeros(4), delta=-2),
         ConfigError, "-2"),
    # ------------------------------------------------------------------ binary losses
    case("bce-target-two", lambda: nn.BCEWithLogitsLoss()(vec(), np.array([0, 1, 2, 0.0])),
         DataError, "2.0"),
    case("bce-target-negative",
         lambda: nn.BCEWithLogitsLoss()(vec(), np.array([0, 1, -0.5, 0.0])), DataError, "-0.5"),
    case("bce-target-nan", lambda: nn.BCEWithLogitsLoss()(vec(), np.array([0, 1, NAN, 0.0])),
         DataError, "nan"),
    case("bce-shape", lambda: nn.BCEWithLogitsLoss()(vec(4), np.zeros(3)), ShapeError, "(3,)"),
    case("hinge-binary-zero-label", lambda: nn.HingeLoss()(vec(), np.array([1, -1, 0, 1])),
         DataError, "got 0"),
    case("hinge-binary-string", lambda: nn.HingeLoss()(vec(), np.array(list("abcd"))),
         DTypeError, "<U1"),
    case("hinge-class-out-of-range", lambda: nn.HingeLoss()(logits(), np.array([0, 1, 3, 1])),
         DataError, "target 3"),
    case("hinge-class-negative", lambda: nn.HingeLoss()(logits(), np.array([0, -2, 1, 1])),
         DataError, "target -2"),
    case("hinge-float-classes", lambda: nn.HingeLoss()(logits(), np.array([0.0, 1, 1, 1])),
         DTypeError, "float64"),
    case("hinge-one-class", lambda: nn.HingeLoss()(logits(4, 1), np.zeros(4, dtype=int)),
         ShapeError, "(4, 1)"),
    case("hinge-3d-scores", lambda: nn.HingeLoss()(ds.zeros(4, 3, 2), np.zeros(4, dtype=int)),
         ShapeError, "(4, 3, 2)"),
    case("hinge-targets-shape", lambda: nn.HingeLoss()(logits(), np.zeros(5, dtype=int)),
         ShapeError, "(5,)"),
]


@pytest.mark.parametrize(("fn", "error", "needle"), LOSS_CASES)
def test_bad_loss_input_is_named(fn: Callable[[], Any], error: type, needle: str) -> None:
    assert user_error(error)
    raises_naming(error, needle, fn)


@pytest.mark.parametrize(
    "targets",
    [np.array([0, 1, 3, 2]), np.array([0.0, 1.0, 2.0, 1.0]), np.array([0, 1, 2])],
    ids=["out-of-range", "float", "short"],
)
def test_rejected_targets_leave_no_graph_or_gradient(targets: np.ndarray) -> None:
    z = logits()
    with pytest.raises((ValueError, TypeError)):
        nn.CrossEntropyLoss()(z, targets)
    assert z.grad is None
    nn.CrossEntropyLoss()(z, np.array([0, 1, 2, 1])).backward()
    assert z.grad is not None and np.isfinite(z.grad).all()


def test_cross_entropy_label_out_of_range_is_a_descend_error() -> None:
    from descend.errors import DescendError

    with pytest.raises(DescendError, match="target 3"):
        nn.CrossEntropyLoss()(logits(), np.array([0, 1, 3, 2]))
