"""Inputs that used to give a silently wrong result or NumPy's own error now give descend's:
huge CSV class labels, complex data, impossible allocations, object arrays holding None, and
line-search functions that return arrays."""

from __future__ import annotations

import math
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import descend as ds
from descend.data import MAX_CLASSES, load_csv
from descend.errors import DataError, DTypeError, ShapeError
from descend.linesearch import backtracking, exact, strong_wolfe


# ------------------------------------------------------------------ CSV class labels
@pytest.mark.parametrize("label", ["1e12", "1000000000000", str(MAX_CLASSES), "1e300"])
def test_huge_class_label_is_refused_before_any_allocation(tmp_path: Path, label: str) -> None:
    path = tmp_path / "d.csv"
    path.write_text(f"a,b,y\n1,2,0\n3,4,{label}\n")
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=r"row 3.*too large for a class index"):
            load_csv(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 10 * 2**20  # nothing near the 3.6 TiB a 1e12-class model would take


def test_largest_class_label_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text(f"a,y\n1,0\n2,{MAX_CLASSES - 1}\n")
    assert load_csv(path).n_classes == MAX_CLASSES


# ------------------------------------------------------------------ complex data
COMPLEX = [
    ("list", lambda: ds.tensor([1 + 2j])),
    ("array", lambda: ds.tensor(np.array([1.0, 2j]))),
    ("requires-grad", lambda: ds.tensor([1 + 1j], requires_grad=True)),
    ("dtype", lambda: ds.tensor([1.0], dtype=np.complex64)),
    ("zeros-dtype", lambda: ds.zeros(3, dtype=np.complex128)),
    ("parameter", lambda: ds.nn.Parameter(np.ones(2, dtype=np.complex64))),
    ("times-1j", lambda: ds.tensor([1.0], requires_grad=True) * 1j),
    ("plus-complex-array", lambda: ds.tensor([1.0], requires_grad=True) + np.array([1j])),
    ("exp-of-complex", lambda: ds.exp(np.array([1j]))),
    ("linear-on-complex", lambda: ds.nn.Linear(2, 2, rng=0)(np.ones((1, 2), dtype=complex))),
]


@pytest.mark.parametrize("make", [c for _, c in COMPLEX], ids=[i for i, _ in COMPLEX])
def test_complex_data_is_refused(make) -> None:
    with pytest.raises(DTypeError, match="complex"):
        make()


# ------------------------------------------------------------------ impossible allocations
@pytest.mark.parametrize("make", [ds.zeros, ds.ones, ds.randn], ids=["zeros", "ones", "randn"])
def test_impossible_shape_is_our_error(make) -> None:
    with pytest.raises(ShapeError, match=r"\(10000000000, 10000000000\)"):
        make(10**10, 10**10)


def test_shape_of_wrong_dtype_is_our_error() -> None:
    with pytest.raises(DTypeError, match="dtype"):
        ds.zeros(3, dtype="no such dtype")
    with pytest.raises(DTypeError, match="dtype"):
        ds.tensor([1.0], dtype="no such dtype")


# ------------------------------------------------------------------ object arrays holding None
NONE_HOLDERS = [
    ("object-array-with-dtype",
     lambda: ds.tensor(np.array([1.0, None], dtype=object), dtype=np.float32)),
    ("list-with-dtype", lambda: ds.tensor([1.0, None], dtype=np.float64)),
    ("object-array", lambda: ds.tensor(np.array([1.0, None], dtype=object))),
    ("operand", lambda: ds.tensor([1.0]) + np.array([None], dtype=object)),
    ("none-operand", lambda: ds.tensor([1.0], requires_grad=True) * None),
    ("parameter", lambda: ds.nn.Parameter(np.array([[1.0, None]], dtype=object),
                                          dtype=np.float32)),
]


@pytest.mark.parametrize("make", [c for _, c in NONE_HOLDERS], ids=[i for i, _ in NONE_HOLDERS])
def test_none_in_data_is_our_error_not_nan(make) -> None:
    with pytest.raises(DTypeError, match=r"None|object"):
        make()


def test_object_array_of_numbers_still_converts() -> None:
    t = ds.tensor(np.array([1, 2.5], dtype=object), dtype=np.float32)
    assert t.dtype == np.float32 and t.data.tolist() == [1.0, 2.5]


# ------------------------------------------------------------------ line searches
def _quad(a):
    return (a - 1.0) ** 2


@pytest.mark.parametrize("wrap", [lambda v: np.array([v]), lambda v: np.array([[v]]),
                                  lambda v: [v]], ids=["shape-1", "shape-1x1", "list"])
def test_line_search_phi_returning_an_array_is_our_error(wrap) -> None:
    with pytest.raises((ShapeError, TypeError), match=r"phi\(1\.0\) must return a real number"):
        backtracking(lambda a: wrap(_quad(a)), 1.0, -2.0)
    with pytest.raises((ShapeError, TypeError), match=r"phi.*must return a real number"):
        exact(lambda a: wrap(_quad(a)))
    with pytest.raises((ShapeError, TypeError), match=r"phi_and_slope.*must return a real"):
        strong_wolfe(lambda a: (wrap(_quad(a)), 2 * (a - 1)), 1.0, -2.0)
    with pytest.raises((ShapeError, TypeError), match=r"phi_and_slope.*must return a real"):
        strong_wolfe(lambda a: (_quad(a), wrap(2 * (a - 1))), 1.0, -2.0)


def test_line_search_shape_error_names_the_shape() -> None:
    with pytest.raises(ShapeError, match=r"shape \(1,\)"):
        backtracking(lambda a: np.array([_quad(a)]), 1.0, -2.0)


def test_phi_and_slope_must_return_a_pair() -> None:
    with pytest.raises(TypeError, match="must return a pair"):
        strong_wolfe(lambda a: _quad(a), 1.0, -2.0)


def test_line_search_accepts_numpy_and_zero_d_values() -> None:
    r = backtracking(lambda a: np.float32(_quad(a)), 1.0, -2.0)
    assert r.alpha == 1.0 and r.value == 0.0
    r = backtracking(lambda a: np.array(_quad(a)), 1.0, -2.0)
    assert r.alpha == 1.0
    r = exact(lambda a: np.float64(_quad(a)))
    assert math.isclose(r.alpha, 1.0, abs_tol=1e-6)
