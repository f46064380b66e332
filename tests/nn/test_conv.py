"""conv2d and max_pool2d against naive loops and SciPy, their gradients against central
differences, memory layouts, and the Conv2d / MaxPool2d modules."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.signal import correlate2d

import descend as ds
from descend import nn
from descend.autodiff import ops
from descend.errors import ConfigError, ShapeError


def naive_conv2d(x, w, b, stride, padding):
    """Loops over every sample, filter and output pixel."""
    (sh, sw), (ph, pw) = stride, padding
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.zeros((n, c, h + 2 * ph, wd + 2 * pw))
    xp[:, :, ph : ph + h, pw : pw + wd] = x
    oh = (h + 2 * ph - kh) // sh + 1
    ow = (wd + 2 * pw - kw) // sw + 1
    out = np.zeros((n, o, oh, ow))
    for s in range(n):
        for f in range(o):
            for p in range(oh):
                for q in range(ow):
                    patch = xp[s, :, p * sh : p * sh + kh, q * sw : q * sw + kw]
                    out[s, f, p, q] = np.sum(patch * w[f]) + (0.0 if b is None else b[f])
    return out


def naive_max_pool2d(x, kernel, stride):
    (kh, kw), (sh, sw) = kernel, stride
    n, c, h, w = x.shape
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    out = np.zeros((n, c, oh, ow))
    for p in range(oh):
        for q in range(ow):
            out[:, :, p, q] = x[:, :, p * sh : p * sh + kh, q * sw : q * sw + kw].max(axis=(2, 3))
    return out


# (x shape, weight shape, stride, padding, bias)
CONV_CASES = [
    ((2, 3, 7, 6), (4, 3, 3, 3), (1, 1), (1, 1), True),
    ((2, 2, 9, 8), (3, 2, 3, 2), (2, 3), (0, 1), True),
    ((1, 1, 5, 5), (2, 1, 5, 5), (1, 1), (0, 0), False),
    ((3, 2, 8, 8), (2, 2, 2, 2), (2, 2), (0, 0), True),
    ((2, 1, 6, 7), (1, 1, 1, 1), (3, 2), (2, 0), True),
    ((4, 1, 8, 8), (8, 1, 3, 3), (1, 1), (1, 1), True),  # the digits CNN's first layer
    ((1, 3, 4, 4), (2, 3, 3, 3), (1, 1), (2, 2), False),  # padding wider than needed
]


@pytest.mark.parametrize("case", CONV_CASES, ids=str)
def test_conv2d_matches_a_naive_loop(case):
    shape_x, shape_w, stride, padding, with_bias = case
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(shape_x), rng.standard_normal(shape_w)
    b = rng.standard_normal(shape_w[0]) if with_bias else None
    got = ops.conv2d(
        ds.tensor(x),
        ds.tensor(w),
        None if b is None else ds.tensor(b),
        stride=stride,
        padding=padding,
    )
    expected = naive_conv2d(x, w, b, stride, padding)
    assert got.shape == expected.shape
    assert_allclose(got.data, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("padding", [0, 1, 2])
def test_single_channel_conv2d_matches_scipy_correlate(padding):
    rng = np.random.default_rng(1)
    image, kernel = rng.standard_normal((9, 7)), rng.standard_normal((3, 4))
    padded = np.pad(image, padding)
    expected = correlate2d(padded, kernel, mode="valid")
    got = ops.conv2d(image[None, None], kernel[None, None], padding=padding).data[0, 0]
    assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", CONV_CASES[:5], ids=str)
def test_conv2d_gradients_pass_grad_check(case):
    shape_x, shape_w, stride, padding, with_bias = case
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal(shape_x), rng.standard_normal(shape_w)
    if with_bias:
        b = rng.standard_normal(shape_w[0])
        assert ds.grad_check(
            lambda x, w, b: ops.conv2d(x, w, b, stride=stride, padding=padding), [x, w, b]
        )
    else:
        assert ds.grad_check(lambda x, w: ops.conv2d(x, w, stride=stride, padding=padding), [x, w])


def test_conv2d_keeps_float32_and_skips_unneeded_gradients():
    rng = np.random.default_rng(3)
    x = ds.tensor(rng.standard_normal((2, 1, 5, 5)).astype(np.float32))
    w = ds.tensor(rng.standard_normal((3, 1, 3, 3)).astype(np.float32), requires_grad=True)
    out = ops.conv2d(x, w, padding=1)
    assert out.dtype == np.float32
    out.sum().backward()
    assert w.grad.dtype == np.float32
    assert x.grad is None
    # d(sum of outputs)/dw[o, c, i, j] = sum of the input pixels that offset (i, j) reaches
    xp = np.pad(x.data.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    expected = np.array(
        [[xp[:, 0, i : i + 5, j : j + 5].sum() for j in range(3)] for i in range(3)]
    )
    assert_allclose(w.grad[1, 0], expected, rtol=1e-5)


def test_conv2d_results_do_not_depend_on_the_input_memory_layout():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 2, 6, 6))
    w1, w2 = rng.standard_normal((4, 2, 3, 3)), rng.standard_normal((2, 4, 3, 3))
    batch_inner = np.ascontiguousarray(x.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)
    fortran = np.asfortranarray(x)
    for layout in (batch_inner, fortran, x[:, :, ::1, ::1]):
        assert_array_equal(ops.conv2d(layout, w1).data, ops.conv2d(x, w1).data)
    # a convolution of a convolution, unpadded, reads the first one's output without a copy
    first = ops.conv2d(x, w1)
    assert_allclose(
        ops.conv2d(first, w2).data,
        naive_conv2d(first.data, w2, None, (1, 1), (0, 0)),
        rtol=1e-12,
        atol=1e-12,
    )


def test_stacked_conv_relu_pool_flatten_gradients_pass_grad_check():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 2, 6, 6))
    w1, b1 = rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3)
    w2 = rng.standard_normal((2, 3, 2, 2))

    def net(x, w1, b1, w2):
        h = ops.relu(ops.conv2d(x, w1, b1, padding=1))
        h = ops.max_pool2d(h, 2)
        h = ops.conv2d(h, w2)
        return h.reshape(3, -1)

    assert ds.grad_check(net, [x, w1, b1, w2])


# (x shape, kernel, stride)
POOL_CASES = [
    ((2, 3, 4, 4), (2, 2), None),
    ((2, 2, 5, 7), (2, 2), None),  # the last row and column fall outside every window
    ((1, 2, 5, 4), (3, 3), (1, 1)),  # overlapping windows
    ((2, 1, 6, 6), (2, 3), (1, 2)),
    ((3, 2, 7, 7), (3, 3), (2, 2)),
    ((2, 2, 6, 6), (1, 1), None),
]


@pytest.mark.parametrize("case", POOL_CASES, ids=str)
def test_max_pool2d_matches_a_naive_loop_and_passes_grad_check(case):
    shape, kernel, stride = case
    x = np.random.default_rng(6).standard_normal(shape)  # continuous values: no ties
    got = ops.max_pool2d(x, kernel, stride).data
    assert_array_equal(got, naive_max_pool2d(x, kernel, kernel if stride is None else stride))
    assert ds.grad_check(lambda t: ops.max_pool2d(t, kernel, stride), [x])


@pytest.mark.parametrize("stride", [None, 1])
def test_max_pool2d_tied_maxima_share_the_gradient_equally(stride):
    x = np.array([[[[3.0, 3.0, 1.0], [3.0, 0.0, 2.0], [1.0, 2.0, 2.0]]]])
    xt = ds.tensor(x, requires_grad=True)
    out = ops.max_pool2d(xt, 2, stride)
    if stride is None:  # one window: three tied 3s
        assert_array_equal(out.data, [[[[3.0]]]])
        out.backward(np.array([[[[6.0]]]]))
        assert_array_equal(xt.grad[0, 0], [[2.0, 2.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    else:  # four overlapping windows; ties split within each window, windows add up
        assert_array_equal(out.data, [[[[3.0, 3.0], [3.0, 2.0]]]])
        out.backward(np.ones((1, 1, 2, 2)))
        expected = np.array(
            [[1 / 3, 1 / 3 + 1.0, 0.0], [1 / 3 + 1.0, 0.0, 1 / 3], [0.0, 1 / 3, 1 / 3]]
        )
        assert_allclose(xt.grad[0, 0], expected, rtol=1e-15)


def test_max_pool2d_of_a_relu_passes_no_gradient_through_windows_of_zeros():
    x = ds.tensor(-np.ones((1, 1, 2, 2)), requires_grad=True)
    out = ops.max_pool2d(ops.relu(x), 2)
    assert_array_equal(out.data, [[[[0.0]]]])
    out.backward(np.ones((1, 1, 1, 1)))
    assert_array_equal(x.grad, np.zeros((1, 1, 2, 2)))


def test_max_pool2d_results_do_not_depend_on_the_input_memory_layout():
    x = np.random.default_rng(7).standard_normal((4, 3, 6, 6))
    batch_inner = np.ascontiguousarray(x.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)
    for kernel, stride in (((2, 2), None), ((3, 3), (1, 1))):
        expected = naive_max_pool2d(x, kernel, kernel if stride is None else stride)
        for layout in (x, batch_inner):
            t = ds.tensor(layout, requires_grad=True)
            out = ops.max_pool2d(t, kernel, stride)
            assert_array_equal(out.data, expected)
            out.backward(np.ones(out.shape))
            assert t.grad.sum() == pytest.approx(out.size)


# ------------------------------------------------------------------ errors
BAD = {
    "3-D input": (
        lambda: ops.conv2d(np.ones((1, 5, 5)), np.ones((2, 1, 3, 3))),
        ShapeError,
        ["(1, 5, 5)", "batch, channels"],
    ),
    "2-D weight": (
        lambda: ops.conv2d(np.ones((1, 1, 5, 5)), np.ones((3, 3))),
        ShapeError,
        ["(3, 3)"],
    ),
    "channel mismatch": (
        lambda: ops.conv2d(np.ones((2, 3, 5, 5)), np.ones((4, 2, 3, 3))),
        ShapeError,
        ["(2, 3, 5, 5)", "(4, 2, 3, 3)", "3 channels"],
    ),
    "kernel larger than padded input": (
        lambda: ops.conv2d(np.ones((1, 1, 3, 3)), np.ones((1, 1, 6, 6)), padding=1),
        ShapeError,
        ["(6, 6)", "(5, 5)", "(1, 1, 3, 3)"],
    ),
    "bias": (
        lambda: ops.conv2d(np.ones((1, 1, 4, 4)), np.ones((2, 1, 3, 3)), np.ones(4)),
        ShapeError,
        ["(4,)", "(2,)"],
    ),
    "stride as float": (
        lambda: ops.conv2d(np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3)), stride=1.5),
        ConfigError,
        ["stride", "1.5"],
    ),
    "pool window": (
        lambda: ops.max_pool2d(np.ones((1, 1, 3, 4)), (4, 2)),
        ShapeError,
        ["(4, 2)", "(3, 4)"],
    ),
    "pool stride": (
        lambda: ops.max_pool2d(np.ones((1, 1, 4, 4)), 2, stride=0),
        ConfigError,
        ["stride"],
    ),
    "module kernel": (lambda: nn.Conv2d(1, 2, kernel_size=0), ConfigError, ["kernel_size"]),
    "module channels": (lambda: nn.Conv2d(0, 2, 3), ConfigError, ["in_channels"]),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_arguments_raise_clear_errors(name):
    make, error, words = BAD[name]
    with pytest.raises(error) as info:
        make()
    for word in words:
        assert word in str(info.value), f"{word!r} not in {str(info.value)!r}"


# ------------------------------------------------------------------ modules
def test_conv2d_module_has_pytorch_shapes_and_calls_the_primitive():
    layer = nn.Conv2d(3, 5, kernel_size=(3, 2), stride=2, padding=1, rng=0)
    assert layer.weight.shape == (5, 3, 3, 2)
    assert layer.bias.shape == (5,)
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]
    x = np.random.default_rng(8).standard_normal((2, 3, 7, 6)).astype(np.float32)
    out = layer(ds.tensor(x))
    expected = naive_conv2d(
        x.astype(np.float64),
        layer.weight.data.astype(np.float64),
        layer.bias.data.astype(np.float64),
        (2, 2),
        (1, 1),
    )
    assert out.shape == expected.shape == (2, 5, 4, 4)
    assert_allclose(out.data, expected, rtol=1e-5, atol=1e-5)
    assert repr(layer) == "Conv2d(3, 5, kernel_size=(3, 2), stride=(2, 2), padding=(1, 1))"
    assert nn.Conv2d(1, 2, 3, bias=False).bias is None


def test_maxpool_and_flatten_modules():
    x = np.random.default_rng(9).standard_normal((2, 3, 4, 6))
    pooled = nn.MaxPool2d(2)(ds.tensor(x))
    assert_array_equal(pooled.data, naive_max_pool2d(x, (2, 2), (2, 2)))
    flat = nn.Flatten()(pooled)
    assert flat.shape == (2, 3 * 2 * 3)
    assert_array_equal(flat.data, pooled.data.reshape(2, -1))
    assert repr(nn.MaxPool2d(3, stride=1)) == "MaxPool2d(kernel_size=(3, 3), stride=(1, 1))"


def test_small_cnn_learns_on_a_toy_problem():
    # vertical versus horizontal bars in 6x6 images
    rng = np.random.default_rng(10)
    images = np.zeros((40, 1, 6, 6), dtype=np.float32)
    labels = np.arange(40) % 2
    for k in range(40):
        line = rng.integers(0, 6)
        if labels[k]:
            images[k, 0, :, line] = 1.0
        else:
            images[k, 0, line, :] = 1.0
    images += 0.1 * rng.standard_normal(images.shape).astype(np.float32)
    ds.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, rng=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(4 * 3 * 3, 2, rng=2),
    )
    params = list(model.parameters())
    first = None
    for _ in range(60):
        model.zero_grad()
        loss = nn.cross_entropy(model(ds.tensor(images)), labels)
        loss.backward()
        for p in params:
            p.data -= 0.2 * p.grad
        first = loss.item() if first is None else first
    with ds.no_grad():
        accuracy = np.mean(np.argmax(model(ds.tensor(images)).data, axis=1) == labels)
    assert loss.item() < 0.2 * first
    assert accuracy == 1.0
