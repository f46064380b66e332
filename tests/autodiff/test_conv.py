"""conv2d and max_pool2d against a direct autograd formulation (sums over kernel offsets)."""

from __future__ import annotations

import autograd.numpy as anp
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import descend as ds
from descend.autodiff import ops
from descend.errors import ConfigError, ShapeError

from .oracle import DTYPES, check_gradients, random_array


def _pad(x, ph, pw):
    """Zero padding written with concatenate, which autograd differentiates."""
    n, c, h, w = x.shape
    if pw:
        side = np.zeros((n, c, h, pw))
        x = anp.concatenate([side, x, side], axis=3)
    if ph:
        top = np.zeros((n, c, ph, w + 2 * pw))
        x = anp.concatenate([top, x, top], axis=2)
    return x


def ag_conv2d(x, w, b, stride, padding):
    """out[n, o, p, q] = b[o] + sum_{c, i, j} w[o, c, i, j] xpad[n, c, p sh + i, q sw + j]."""
    (sh, sw), (ph, pw) = stride, padding
    xpad = _pad(x, ph, pw)
    kh, kw = w.shape[2:]
    oh = (xpad.shape[2] - kh) // sh + 1
    ow = (xpad.shape[3] - kw) // sw + 1
    out = 0.0
    for i in range(kh):
        for j in range(kw):
            patch = xpad[:, :, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw]
            out = out + anp.transpose(
                anp.tensordot(patch, w[:, :, i, j], axes=([1], [1])), (0, 3, 1, 2)
            )
    if b is not None:
        out = out + anp.reshape(b, (1, -1, 1, 1))
    return out


def ag_max_pool2d(x, kernel, stride):
    (kh, kw), (sh, sw) = kernel, stride
    oh = (x.shape[2] - kh) // sh + 1
    ow = (x.shape[3] - kw) // sw + 1
    patches = [
        x[:, :, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw]
        for i in range(kh)
        for j in range(kw)
    ]
    return anp.max(anp.stack(patches, axis=0), axis=0)


# name -> (x shape, weight shape, bias, stride, padding)
CONV_CASES = {
    "3x3 plain": ((2, 3, 5, 5), (4, 3, 3, 3), True, 1, 0),
    "no bias": ((1, 2, 4, 4), (3, 2, 2, 2), False, 1, 0),
    "padding 1": ((2, 1, 4, 5), (2, 1, 3, 3), True, 1, 1),
    "stride 2": ((1, 2, 7, 6), (3, 2, 3, 3), True, 2, 0),
    "stride 2 padding 1": ((2, 2, 5, 5), (2, 2, 3, 3), True, 2, 1),
    "pairs": ((1, 2, 6, 7), (2, 2, 2, 3), True, (1, 2), (2, 0)),
    "1x1 kernel": ((2, 3, 3, 3), (5, 3, 1, 1), True, 1, 0),
    "kernel as large as image": ((2, 2, 3, 4), (1, 2, 3, 4), True, 1, 0),
    "stride larger than kernel": ((1, 1, 7, 7), (2, 1, 2, 2), True, 3, 0),
}


def _pair(v):
    return v if isinstance(v, tuple) else (v, v)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(CONV_CASES))
def test_conv2d_gradients(name, dtype):
    shape_x, shape_w, with_bias, stride, padding = CONV_CASES[name]
    arrays = [random_array(shape_x, dtype, rng=121), random_array(shape_w, dtype, rng=122)]
    st, pd = _pair(stride), _pair(padding)
    if with_bias:
        arrays.append(random_array((shape_w[0],), dtype, rng=123))
        check_gradients(
            lambda x, w, b: ops.conv2d(x, w, b, stride=stride, padding=padding),
            lambda x, w, b: ag_conv2d(x, w, b, st, pd),
            arrays,
        )
    else:
        check_gradients(
            lambda x, w: ops.conv2d(x, w, stride=stride, padding=padding),
            lambda x, w: ag_conv2d(x, w, None, st, pd),
            arrays,
        )


# name -> (x shape, kernel, stride)
POOL_CASES = {
    "2x2": ((2, 3, 4, 4), 2, None),
    "2x2 odd size drops the edge": ((1, 2, 5, 5), 2, None),
    "3x3 stride 1 overlapping": ((1, 1, 5, 4), 3, 1),
    "pairs": ((2, 1, 6, 6), (2, 3), (1, 2)),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(POOL_CASES))
def test_max_pool2d_gradients(name, dtype):
    shape, kernel, stride = POOL_CASES[name]
    x = random_array(shape, dtype, rng=124)
    kernel2 = _pair(kernel)
    stride2 = kernel2 if stride is None else _pair(stride)
    check_gradients(
        lambda t: ops.max_pool2d(t, kernel, stride),
        lambda a: ag_max_pool2d(a, kernel2, stride2),
        [x],
    )


def test_max_pool2d_ties_share_the_window_gradient():
    x = ds.tensor(np.array([[[[0.0, 0.0, 1.0, 5.0], [0.0, 0.0, 5.0, 2.0]]]]), requires_grad=True)
    out = ops.max_pool2d(x, 2)
    assert_array_equal(out.data, [[[[0.0, 5.0]]]])
    out.backward(grad=np.array([[[[4.0, 8.0]]]]))
    assert_array_equal(x.grad, [[[[1.0, 1.0, 0.0, 4.0], [1.0, 1.0, 4.0, 0.0]]]])


def test_conv2d_of_a_delta_kernel_copies_the_image():
    x = random_array((1, 1, 4, 4), rng=125)
    w = np.zeros((1, 1, 3, 3))
    w[0, 0, 1, 1] = 1.0
    out = ops.conv2d(ds.tensor(x), ds.tensor(w), padding=1).data
    assert_allclose(out, x, rtol=1e-15)


def test_conv2d_passes_grad_check():
    arrays = [
        random_array((1, 2, 4, 4), rng=126),
        random_array((2, 2, 3, 3), rng=127),
        random_array((2,), rng=128),
    ]
    assert ds.grad_check(lambda x, w, b: ops.conv2d(x, w, b, stride=2, padding=1), arrays)


# name -> (call, error, words)
BAD_CONV = {
    "3-D input": (
        lambda: ops.conv2d(np.ones((1, 4, 4)), np.ones((1, 1, 3, 3))),
        ShapeError,
        ["(1, 4, 4)"],
    ),
    "channels": (
        lambda: ops.conv2d(np.ones((1, 2, 4, 4)), np.ones((1, 3, 3, 3))),
        ShapeError,
        ["(1, 2, 4, 4)", "(1, 3, 3, 3)"],
    ),
    "kernel too big": (
        lambda: ops.conv2d(np.ones((1, 1, 2, 2)), np.ones((1, 1, 3, 3))),
        ShapeError,
        ["(3, 3)"],
    ),
    "bias shape": (
        lambda: ops.conv2d(np.ones((1, 1, 4, 4)), np.ones((2, 1, 3, 3)), np.ones(3)),
        ShapeError,
        ["(3,)"],
    ),
    "stride 0": (
        lambda: ops.conv2d(np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3)), stride=0),
        ConfigError,
        ["stride", "0"],
    ),
    "negative padding": (
        lambda: ops.conv2d(np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3)), padding=-1),
        ConfigError,
        ["padding", "-1"],
    ),
    "pool window too big": (
        lambda: ops.max_pool2d(np.ones((1, 1, 2, 2)), 3),
        ShapeError,
        ["(3, 3)"],
    ),
    "pool 2-D input": (lambda: ops.max_pool2d(np.ones((4, 4)), 2), ShapeError, ["(4, 4)"]),
}


@pytest.mark.parametrize("name", sorted(BAD_CONV))
def test_conv_and_pool_reject_bad_arguments(name):
    make, error, words = BAD_CONV[name]
    with pytest.raises(error) as info:
        make()
    for word in words:
        assert word in str(info.value), f"{word!r} not in {str(info.value)!r}"
