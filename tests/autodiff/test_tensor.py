"""Making tensors: the dtype policy, attributes, constructors and seeded randomness."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import descend as ds
from descend import backend
from descend.errors import DTypeError, ShapeError

# name -> (data, dtype argument, expected dtype)
DTYPE_POLICY = {
    "python float": (1.5, None, np.float32),
    "list of floats": ([1.0, 2.0], None, np.float32),
    "nested list": ([[1.0], [2.5]], None, np.float32),
    "list mixing ints and floats": ([1, 2.5], None, np.float32),
    "float64 ndarray": (np.array([1.0, 2.0]), None, np.float64),
    "float32 ndarray": (np.array([1.0], dtype=np.float32), None, np.float32),
    "float64 numpy scalar": (np.float64(2.0), None, np.float64),
    "python int": (3, None, np.int64),
    "list of ints": ([1, 2, 3], None, np.int64),
    "int32 ndarray": (np.array([1, 2], dtype=np.int32), None, np.int32),
    "bool": ([True, False], None, np.bool_),
    "dtype= float64 on a list": ([1.0, 2.0], np.float64, np.float64),
    "dtype= float32 on float64": (np.array([1.0]), np.float32, np.float32),
    "dtype= as a string": ([1, 2], "float64", np.float64),
    "dtype= as a dtype object": ([1.0], np.dtype(np.float64), np.float64),
    "dtype= float on ints": ([1, 2], np.float32, np.float32),
}


@pytest.mark.parametrize("name", sorted(DTYPE_POLICY))
def test_dtype_policy(name):
    data, dtype, expected = DTYPE_POLICY[name]
    t = ds.tensor(data, dtype=dtype)
    assert t.dtype == expected
    assert_array_equal(t.data, np.asarray(data, dtype=expected))


def test_tensor_copies_the_array_it_is_given():
    source = np.array([1.0, 2.0])
    t = ds.tensor(source)
    source[0] = 99.0
    assert t.data[0] == 1.0
    same_dtype = np.array([1.0], dtype=np.float32)
    t32 = ds.tensor(same_dtype, dtype=np.float32)
    same_dtype[0] = 5.0
    assert t32.data[0] == 1.0


def test_tensor_of_a_tensor_is_a_new_leaf_with_its_dtype():
    x = ds.tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = ds.tensor(x * 2)
    assert y.dtype == np.float64
    assert y.is_leaf and not y.requires_grad
    assert_array_equal(y.data, [2.0, 4.0])


# name -> (data, dtype argument) that cannot require grad
NOT_FLOATING = {
    "list of ints": ([1, 2], None, "int64"),
    "int32 array": (np.array([1, 2], dtype=np.int32), None, "int32"),
    "bools": ([True, False], None, "bool"),
    "dtype=int64": ([1.0, 2.0], np.int64, "int64"),
    "uint8": (np.zeros(2, dtype=np.uint8), None, "uint8"),
}


@pytest.mark.parametrize("name", sorted(NOT_FLOATING))
def test_integer_and_bool_tensors_cannot_require_grad(name):
    data, dtype, dtype_name = NOT_FLOATING[name]
    with pytest.raises(DTypeError, match=dtype_name) as info:
        ds.tensor(data, dtype=dtype, requires_grad=True)
    assert isinstance(info.value, TypeError)
    with pytest.raises(DTypeError, match=dtype_name):
        ds.tensor(data, dtype=dtype).requires_grad_()


def test_requires_grad_flag_and_leaves():
    x = ds.tensor([1.0, 2.0])
    assert x.requires_grad is False and x.is_leaf and x.grad is None
    assert x.requires_grad_() is x
    assert x.requires_grad is True
    y = x * 2
    assert y.requires_grad and not y.is_leaf
    assert ds.tensor([1.0], requires_grad=True).requires_grad is True


def test_attributes():
    arr = np.arange(6.0).reshape(2, 3)
    t = ds.tensor(arr, requires_grad=True)
    assert isinstance(t.data, np.ndarray)
    assert_array_equal(t.data, arr)
    assert t.shape == (2, 3) and isinstance(t.shape, tuple)
    assert t.ndim == 2
    assert t.dtype == np.float64
    assert t.size == 6
    assert len(t) == 2
    assert t.grad is None
    assert t.numpy() is t.data
    assert isinstance(t.requires_grad, bool)


def test_numpy_shares_the_values():
    t = ds.tensor([1.0, 2.0])
    t.numpy()[0] = 7.0
    assert t.data[0] == 7.0


@pytest.mark.parametrize(
    ("data", "expected"),
    [(2.5, 2.5), ([[3.0]], 3.0), (np.array([4.0]), 4.0), (7, 7), ([True], True)],
)
def test_item_gives_a_python_number(data, expected):
    value = ds.tensor(data).item()
    assert value == expected
    assert type(value) is type(expected)


def test_float_and_int_conversions():
    assert float(ds.tensor([[2.5]])) == 2.5
    assert int(ds.tensor(3.0)) == 3
    assert bool(ds.tensor(1.0)) is True


def test_detach_returns_a_plain_tensor():
    x = ds.tensor([1.0, 2.0], requires_grad=True)
    d = (x * 3).detach()
    assert isinstance(d, ds.Tensor)
    assert not d.requires_grad and d.is_leaf and d.grad is None
    assert_array_equal(d.data, [3.0, 6.0])


# name -> comparison of a tensor with a tensor, a number or an array
COMPARISONS = {
    "<": (lambda a, b: a < b, np.less),
    "<=": (lambda a, b: a <= b, np.less_equal),
    ">": (lambda a, b: a > b, np.greater),
    ">=": (lambda a, b: a >= b, np.greater_equal),
    "==": (lambda a, b: a == b, np.equal),
    "!=": (lambda a, b: a != b, np.not_equal),
}


@pytest.mark.parametrize("other", ["tensor", "number", "ndarray"])
@pytest.mark.parametrize("name", sorted(COMPARISONS))
def test_comparisons_return_plain_boolean_arrays(name, other):
    compare, reference = COMPARISONS[name]
    values = np.array([1.0, 2.0, 3.0])
    x = ds.tensor(values, requires_grad=True)
    rhs = {"tensor": ds.tensor([2.0, 2.0, 2.0]), "number": 2.0, "ndarray": np.full(3, 2.0)}[other]
    got = compare(x, rhs)
    assert type(got) is np.ndarray
    assert got.dtype == np.bool_
    assert_array_equal(got, reference(values, 2.0))


def test_comparison_with_the_array_on_the_left():
    got = np.array([0.0, 5.0]) < ds.tensor([1.0, 1.0])
    assert type(got) is np.ndarray
    assert_array_equal(got, [True, False])


# name -> (constructor call, expected shape, expected dtype)
CONSTRUCTORS = {
    "zeros(2, 3)": (lambda: ds.zeros(2, 3), (2, 3), np.float32),
    "zeros((2, 3))": (lambda: ds.zeros((2, 3)), (2, 3), np.float32),
    "zeros() is 0-d": (lambda: ds.zeros(), (), np.float32),
    "zeros float64": (lambda: ds.zeros(4, dtype=np.float64), (4,), np.float64),
    "zeros like a dtype": (lambda: ds.zeros(2, dtype=np.dtype("float64")), (2,), np.float64),
    "ones(3)": (lambda: ds.ones(3), (3,), np.float32),
    "ones([2, 2])": (lambda: ds.ones([2, 2]), (2, 2), np.float32),
    "ones float64": (lambda: ds.ones(1, 2, dtype=np.float64), (1, 2), np.float64),
    "randn(2, 3)": (lambda: ds.randn(2, 3, rng=0), (2, 3), np.float32),
    "randn((4,))": (lambda: ds.randn((4,), rng=0), (4,), np.float32),
    "randn float64": (lambda: ds.randn(3, rng=0, dtype=np.float64), (3,), np.float64),
}


@pytest.mark.parametrize("name", sorted(CONSTRUCTORS))
def test_constructors(name):
    make, shape, dtype = CONSTRUCTORS[name]
    t = make()
    assert isinstance(t, ds.Tensor)
    assert t.shape == shape
    assert t.dtype == dtype
    assert not t.requires_grad


def test_zeros_and_ones_values_and_requires_grad():
    z = ds.zeros(2, 2, requires_grad=True)
    o = ds.ones(2, 2)
    assert z.requires_grad
    assert_array_equal(z.data, 0.0)
    assert_array_equal(o.data, 1.0)
    (z * o).sum().backward()
    assert_array_equal(z.grad, np.ones((2, 2)))


def test_constructors_reject_negative_sizes():
    with pytest.raises(ShapeError, match="-1"):
        ds.zeros(2, -1)


@pytest.fixture
def global_rng(monkeypatch):
    """Let a test reseed descend's global generator; the previous one comes back after."""
    monkeypatch.setattr(backend, "_global_rng", np.random.default_rng(0))


def test_randn_with_an_int_seed_is_reproducible():
    a, b = ds.randn(5, rng=42), ds.randn(5, rng=42)
    assert_array_equal(a.data, b.data)
    assert_array_equal(a.data, np.random.default_rng(42).standard_normal(5).astype(np.float32))
    assert not np.array_equal(a.data, ds.randn(5, rng=43).data)


def test_randn_with_a_generator_draws_from_it():
    gen = np.random.default_rng(7)
    first, second = ds.randn(3, rng=gen), ds.randn(3, rng=gen)
    reference = np.random.default_rng(7).standard_normal(6).astype(np.float32)
    assert_array_equal(np.concatenate([first.data, second.data]), reference)


def test_manual_seed_makes_global_draws_identical(global_rng):
    ds.manual_seed(123)
    a = ds.randn(2, 3)
    a2 = ds.randn(2, 3)
    ds.manual_seed(123)
    b = ds.randn(2, 3)
    b2 = ds.randn(2, 3)
    assert_array_equal(a.data, b.data)
    assert_array_equal(a2.data, b2.data)
    assert not np.array_equal(a.data, a2.data)
    ds.manual_seed(124)
    assert not np.array_equal(ds.randn(2, 3).data, a.data)


def test_manual_seed_and_rng_int_give_the_same_draws(global_rng):
    ds.manual_seed(9)
    assert_array_equal(ds.randn(4).data, ds.randn(4, rng=9).data)


@pytest.mark.parametrize("seed", [1.5, "3", None, True])
def test_manual_seed_rejects_non_integers(seed, global_rng):
    with pytest.raises(TypeError, match="seed"):
        ds.manual_seed(seed)


# ------------------------------------------------------------------ dtypes of gradients
def test_gradients_have_their_leafs_dtype_in_mixed_precision():
    a = ds.tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    b = ds.tensor(np.array([3.0, 4.0]), requires_grad=True)
    out = a * b
    assert out.dtype == np.float64  # NumPy's promotion
    out.sum().backward()
    assert a.grad.dtype == np.float32
    assert b.grad.dtype == np.float64
    assert_array_equal(a.grad, [3.0, 4.0])
    assert_array_equal(b.grad, [1.0, 2.0])


def test_float32_leaf_through_float64_constants_gets_float32_gradient():
    x = ds.tensor([1.0, 2.0], requires_grad=True)
    out = (x * np.array([0.5, 0.25]) + np.float64(1.0)) ** 2
    out.sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad, [2 * 1.5 * 0.5, 2 * 1.5 * 0.25])


def test_backward_grad_is_cast_to_the_output_dtype():
    x = ds.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).backward(grad=np.array([1.0, 1.0]))  # a float64 grad for a float32 output
    assert x.grad.dtype == np.float32
    assert_array_equal(x.grad, [3.0, 3.0])


def test_astype_differentiates_between_floating_dtypes():
    x = ds.tensor([1.0, 2.0], requires_grad=True)
    y = x.astype(np.float64)
    assert y.dtype == np.float64
    (y * y).sum().backward()
    assert x.grad.dtype == np.float32
    assert_array_equal(x.grad, [2.0, 4.0])


def test_repr_mentions_values_and_requires_grad():
    text = repr(ds.tensor([1.0, 2.0], requires_grad=True))
    assert "1." in text and "2." in text and "requires_grad=True" in text
    assert "float64" in repr(ds.tensor(np.array([1.0])))
