"""Property tests: random shapes, broadcast pairs and axes; gradients equal autograd's."""

from __future__ import annotations

import autograd.numpy as anp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, mutually_broadcastable_shapes

import descend as ds
from descend.autodiff import functional as F

from .oracle import check_gradients, random_array

SETTINGS = settings(max_examples=60, deadline=None, database=None)

# name -> (function of two operands for both libraries, domain of the second operand)
BINARY = {
    "add": (lambda a, b: a + b, "real"),
    "sub": (lambda a, b: a - b, "real"),
    "mul": (lambda a, b: a * b, "real"),
    "div": (lambda a, b: a / b, "nonzero"),
}

pairs = mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=4)
seeds = st.integers(min_value=0, max_value=2**32 - 1)
dtypes = st.sampled_from([np.float64, np.float32])


@SETTINGS
@given(shapes=pairs, name=st.sampled_from(sorted(BINARY)), seed=seeds, dtype=dtypes)
def test_arithmetic_gradients_equal_autograd(shapes, name, seed, dtype):
    fn, domain = BINARY[name]
    shape_a, shape_b = shapes.input_shapes
    a = random_array(shape_a, dtype, rng=seed)
    b = random_array(shape_b, dtype, rng=seed + 1, domain=domain)
    check_gradients(fn, fn, [a, b], finite_differences=False)


@SETTINGS
@given(shapes=pairs, seed=seeds, maximum=st.booleans())
def test_maximum_and_minimum_gradients_equal_autograd(shapes, seed, maximum):
    shape_a, shape_b = shapes.input_shapes
    a = random_array(shape_a, rng=seed)
    b = random_array(shape_b, rng=seed + 1)
    if maximum:
        check_gradients(ds.maximum, anp.maximum, [a, b], finite_differences=False)
    else:
        check_gradients(ds.minimum, anp.minimum, [a, b], finite_differences=False)


@st.composite
def shapes_and_axes(draw):
    shape = draw(array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    ndim = len(shape)
    kind = draw(st.sampled_from(["none", "int", "tuple"]))
    if kind == "none":
        axis = None
    elif kind == "int":
        axis = draw(st.integers(min_value=-ndim, max_value=ndim - 1))
    else:
        chosen = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
        # some axes written as negative numbers, in any order
        axis = tuple(a - ndim if draw(st.booleans()) else a for a in chosen)
    return shape, axis


REDUCTIONS = {
    "sum": anp.sum,
    "mean": anp.mean,
    "max": anp.max,
    "min": anp.min,
}


@SETTINGS
@given(
    case=shapes_and_axes(),
    name=st.sampled_from(sorted(REDUCTIONS)),
    keepdims=st.booleans(),
    seed=seeds,
)
def test_reduction_gradients_equal_autograd(case, name, keepdims, seed):
    shape, axis = case
    x = random_array(shape, rng=seed)
    check_gradients(
        lambda t: getattr(t, name)(axis=axis, keepdims=keepdims),
        lambda a: REDUCTIONS[name](a, axis=axis, keepdims=keepdims),
        [x],
        finite_differences=False,
    )


# Random graphs: each step applies an operation to earlier values (so values fan out and
# paths join again), in descend and autograd alike.
UNARY_STEPS = {
    "tanh": (lambda t: t.tanh(), anp.tanh),
    "sigmoid": (lambda t: t.sigmoid(), lambda a: 1 / (1 + anp.exp(-a))),
    "exp": (lambda t: (t * 0.3).exp(), lambda a: anp.exp(a * 0.3)),
    "square": (lambda t: t * t * 0.5, lambda a: a * a * 0.5),
    "softplus": (F.softplus, lambda a: anp.logaddexp(0.0, a)),
    "sum": (lambda t: t.sum(axis=-1, keepdims=True), lambda a: anp.sum(a, axis=-1, keepdims=True)),
}
BINARY_STEPS = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
}


@st.composite
def graphs(draw):
    steps = []
    for k in range(draw(st.integers(min_value=1, max_value=12))):
        available = k + 2  # the two inputs, then every earlier step
        if draw(st.booleans()):
            name = draw(st.sampled_from(sorted(UNARY_STEPS)))
            steps.append((name, draw(st.integers(0, available - 1)), None))
        else:
            name = draw(st.sampled_from(sorted(BINARY_STEPS)))
            first = draw(st.integers(0, available - 1))
            steps.append((name, first, draw(st.integers(0, available - 1))))
    return steps


def _run(steps, x, y, descend_side):
    values = [x, y]
    for name, i, j in steps:
        if j is None:
            fn = UNARY_STEPS[name][0 if descend_side else 1]
            values.append(fn(values[i]))
        else:
            values.append(BINARY_STEPS[name](values[i], values[j]))
    # every value reaches the output, through a bounded function
    total = values[-1]
    for v in values[:-1]:
        total = total + (v.tanh() if descend_side else anp.tanh(v))
    return total


@SETTINGS
@given(steps=graphs(), seed=seeds)
def test_random_graphs_with_fan_out_match_autograd(steps, seed):
    x = random_array((2, 3), rng=seed) * 0.5
    y = random_array((3,), rng=seed + 1) * 0.5
    check_gradients(
        lambda a, b: _run(steps, a, b, True),
        lambda a, b: _run(steps, a, b, False),
        [x, y],
        finite_differences=False,
    )
