"""Convolution and max pooling over NCHW images, each forward beside its VJP.

Both are primitives for speed: written from elementwise operations they would record one
node per kernel offset and per pixel. Shapes follow PyTorch: images ``(n, c, h, w)``,
convolution weights ``(out_channels, in_channels, kh, kw)``.

Memory layout: batch innermost
------------------------------
NumPy pays a fixed cost for every run of contiguous elements it copies or combines, and in
NCHW order an image row is short (8 pixels for 8x8 digits), so NCHW copies are slow. Here
the padded input is copied once into a buffer laid out ``(c, hp, wp, n)``: batch innermost.
In that layout the pixels a kernel offset ``(i, j)`` reads for every output position and
every sample form one strided block whose rows are ``ow * n`` contiguous numbers (stride 1),
so the im2col matrix

    cols[(c, i, j), (p, q, n)] = xpad[n, c, p * sh + i, q * sw + j]

is gathered in one copy with long inner loops, and the forward is ONE matrix product
``W.reshape(out, c * kh * kw) @ cols`` of shape ``(out, oh * ow * n)``. The result is
returned as a transposed *view*: logically ``(n, out, oh, ow)``, batch innermost in memory,
so no copy reorders it. Elementwise operations keep that layout (NumPy allocates results in
the order of their inputs), and ``max_pool2d`` also works batch innermost (it copies an
input laid out otherwise once, and hands back its result and gradient in that layout), so a
Conv2d -> ReLU -> MaxPool2d stack never reorders its data until it is flattened. Only
memory order differs from a contiguous NCHW array: shapes, values and indexing are the same.

The VJP multiplies by the same matrices transposed: ``dW = G @ cols.T`` (one product; ``G``
is the output gradient, a free reshape when it arrives batch-innermost) and
``dcols = W.T @ G``, scattered back ("col2im") by adding, for each of the ``kh * kw`` kernel
offsets, one strided slab of the zero buffer: a loop over kernel offsets, never over pixels
or samples.

Subgradient choice of ``max_pool2d``
------------------------------------
When several entries of a pooling window tie for the maximum, they **share the window's
gradient equally** (each of k tied entries receives g / k), as ``max``/``maximum`` do
elsewhere in descend. (PyTorch gives it all to one of them.) Ties are common after a ReLU:
a window of zeros passes a quarter of its gradient to each zero, which the ReLU then stops.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...backend import xp
from ...errors import ConfigError, ShapeError
from ._core import call, primitive

Pair = tuple[int, int]


# ---------------------------------------------------------------------------- helpers
def as_pair(value: Any, name: str, minimum: int, op: str) -> Pair:
    """An int or a pair of ints, each >= ``minimum``, as a pair."""
    items = value if isinstance(value, tuple | list) else (value, value)
    if len(items) != 2 or not all(
        isinstance(v, int | np.integer) and not isinstance(v, bool) for v in items
    ):
        raise ConfigError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    a, b = int(items[0]), int(items[1])
    if a < minimum or b < minimum:
        raise ConfigError(f"{op}: {name} must be >= {minimum}, got {value!r}")
    return a, b


def _strided(base: np.ndarray, shape: tuple[int, ...], steps: tuple[int, ...]) -> np.ndarray:
    """A view of the C-contiguous array ``base`` with ``steps`` counted in elements; the
    caller guarantees every index stays inside ``base``."""
    strides = tuple(s * base.itemsize for s in steps)
    if xp is np:  # the ndarray constructor costs ~1 us, as_strided ~6 us of Python
        return np.ndarray(shape, base.dtype, base, 0, strides)
    return xp.lib.stride_tricks.as_strided(base, shape, strides)


class _Geometry:
    """Sizes of one convolution: the padded batch-innermost buffer and the output."""

    __slots__ = ("c", "h", "hp", "kh", "kw", "n", "oh", "ow", "ph", "pw", "sh", "sw", "w", "wp")

    def __init__(self, xshape: tuple, kh: int, kw: int, stride: Pair, padding: Pair):
        self.n, self.c, self.h, self.w = xshape
        self.kh, self.kw = kh, kw
        self.sh, self.sw = stride
        self.ph, self.pw = padding
        self.hp = self.h + 2 * self.ph
        self.wp = self.w + 2 * self.pw
        self.oh = (self.hp - kh) // self.sh + 1
        self.ow = (self.wp - kw) // self.sw + 1

    def buffer(self, x: np.ndarray, dtype: np.dtype) -> np.ndarray:
        """``x`` zero-padded, in layout (c, hp, wp, n)."""
        xt = x.transpose(1, 2, 3, 0)
        if self.ph == self.pw == 0 and xt.dtype == dtype and xt.flags.c_contiguous:
            return xt  # already batch-innermost (the output of a conv or a pool): no copy
        buf = xp.zeros((self.c, self.hp, self.wp, self.n), dtype=dtype)
        buf[:, self.ph : self.ph + self.h, self.pw : self.pw + self.w, :] = xt
        return buf

    def cols(self, buf: np.ndarray) -> np.ndarray:
        """The im2col matrix, shape (c * kh * kw, oh * ow * n), gathered in one copy."""
        n, wp = self.n, self.wp
        view = _strided(
            buf,
            (self.c, self.kh, self.kw, self.oh, self.ow, n),
            (self.hp * wp * n, wp * n, n, self.sh * wp * n, self.sw * n, 1),
        )
        return xp.ascontiguousarray(view).reshape(self.c * self.kh * self.kw, -1)

    def offset(self, i: int, j: int) -> tuple[slice, slice, slice, slice]:
        """Index of the buffer entries that kernel offset (i, j) reads, shape
        (c, oh, ow, n)."""
        rows = slice(i, i + self.sh * (self.oh - 1) + 1, self.sh)
        cols = slice(j, j + self.sw * (self.ow - 1) + 1, self.sw)
        return slice(None), rows, cols, slice(None)


# ---------------------------------------------------------------------------- conv2d
def _conv2d_forward(x, weight, bias, stride, padding):
    o, _c, kh, kw = weight.shape
    geo = _Geometry(x.shape, kh, kw, stride, padding)
    dtype = np.result_type(x.dtype, weight.dtype)
    cols = geo.cols(geo.buffer(x, dtype))
    y = weight.reshape(o, -1).astype(dtype, copy=False) @ cols  # (o, oh * ow * n)
    if bias is not None:
        y += bias.reshape(o, 1)
    return y.reshape(o, geo.oh, geo.ow, geo.n).transpose(3, 0, 1, 2)


def _conv2d_vjp(g, out, inputs, needs, stride, padding):
    x, weight, _bias = inputs
    o, _c, kh, kw = weight.shape
    geo = _Geometry(x.shape, kh, kw, stride, padding)
    # (o, oh * ow * n): free when g arrives batch-innermost, as the forward made it
    gmat = g.transpose(1, 2, 3, 0).reshape(o, -1)
    gx = gw = gb = None
    if needs[1]:
        cols = geo.cols(geo.buffer(x, g.dtype))
        gw = (gmat @ cols.T).reshape(weight.shape)
    if needs[2]:
        gb = gmat.sum(axis=1)
    if needs[0]:
        w2 = weight.reshape(o, -1).astype(g.dtype, copy=False)
        dcols = (w2.T @ gmat).reshape(geo.c, kh, kw, geo.oh, geo.ow, geo.n)
        dbuf = xp.zeros((geo.c, geo.hp, geo.wp, geo.n), dtype=g.dtype)
        for i in range(kh):  # col2im: one strided add per kernel offset
            for j in range(kw):
                dbuf[geo.offset(i, j)] += dcols[:, i, j]
        crop = dbuf[:, geo.ph : geo.ph + geo.h, geo.pw : geo.pw + geo.w, :]
        gx = crop.transpose(3, 0, 1, 2)
    return gx, gw, gb


_CONV2D = primitive("conv2d", _conv2d_forward, _conv2d_vjp)


def conv2d(
    x: Any,
    weight: Any,
    bias: Any = None,
    stride: int | Pair = 1,
    padding: int | Pair = 0,
) -> Any:
    """2-D cross-correlation of a batch of images with a bank of filters (PyTorch's conv2d).

    ``out[n, o, p, q] = bias[o] + sum_{c, i, j} weight[o, c, i, j]
    * xpad[n, c, p * sh + i, q * sw + j]`` where ``xpad`` is ``x`` with ``padding`` zeros
    on each side.

    Parameters
    ----------
    x : Tensor or array, shape (n, c, h, w)
    weight : Tensor or array, shape (out_channels, c, kh, kw)
    bias : Tensor or array, shape (out_channels,), optional
    stride : int or (int, int)
        Step between output positions (rows, columns), >= 1.
    padding : int or (int, int)
        Zeros added on both sides of each image (rows, columns), >= 0.

    Returns
    -------
    Tensor of shape (n, out_channels, oh, ow) with
    ``oh = (h + 2 * ph - kh) // sh + 1`` and ``ow = (w + 2 * pw - kw) // sw + 1``.

    Raises
    ------
    ShapeError
        Input or weight not 4-D, channel counts that differ, a bias of the wrong shape, or
        a kernel larger than the padded input; the message names the shapes.
    ConfigError
        A stride below 1 or a negative padding.

    Notes
    -----
    The result is batch-innermost in memory (see the module docstring): ``out.data`` is a
    transposed view, equal in every value to the NCHW array; ``np.ascontiguousarray``
    gives a C-ordered copy if one is needed.
    """
    x_shape = _shape_of(x, "x")
    w_shape = _shape_of(weight, "weight")
    if len(x_shape) != 4:
        raise ShapeError(
            f"conv2d: input must have shape (batch, channels, height, width), got {x_shape}"
        )
    if len(w_shape) != 4:
        raise ShapeError(
            f"conv2d: weight must have shape (out_channels, in_channels, kh, kw), got {w_shape}"
        )
    if x_shape[1] != w_shape[1]:
        raise ShapeError(
            f"conv2d: input of shape {x_shape} has {x_shape[1]} channels but weight of "
            f"shape {w_shape} expects {w_shape[1]}"
        )
    stride_ = as_pair(stride, "stride", 1, "conv2d")
    padding_ = as_pair(padding, "padding", 0, "conv2d")
    hp, wp = x_shape[2] + 2 * padding_[0], x_shape[3] + 2 * padding_[1]
    if w_shape[2] > hp or w_shape[3] > wp or min(w_shape[2:]) < 1:
        raise ShapeError(
            f"conv2d: kernel of size {w_shape[2:]} (weight {w_shape}) does not fit the "
            f"padded input of size {(hp, wp)} (input {x_shape}, padding {padding_})"
        )
    if bias is not None:
        sb = _shape_of(bias, "bias")
        if sb != (w_shape[0],):
            raise ShapeError(
                f"conv2d: bias of shape {sb} does not match weight {w_shape} "
                f"(expected ({w_shape[0]},))"
            )
    return call(_CONV2D, x, weight, bias, stride=stride_, padding=padding_)


# ---------------------------------------------------------------------------- max_pool2d
def _window_slices(kernel: Pair, stride: Pair, oh: int, ow: int):
    """For each kernel offset (i, j): the slices of the image it reads at every window."""
    (kh, kw), (sh, sw) = kernel, stride
    for i in range(kh):
        for j in range(kw):
            yield (
                slice(i, i + sh * (oh - 1) + 1, sh),
                slice(j, j + sw * (ow - 1) + 1, sw),
            )


def _pool_size(shape: tuple, kernel: Pair, stride: Pair) -> Pair:
    return (shape[2] - kernel[0]) // stride[0] + 1, (shape[3] - kernel[1]) // stride[1] + 1


def _batch_innermost(x: np.ndarray) -> np.ndarray:
    """``x`` itself if its batch axis is the fastest-varying one in memory, else a copy laid
    out that way (same shape and values). Pooling runs one elementwise operation per
    kernel offset; in NCHW order their inner loops would be a few pixels long."""
    if x.shape[0] == 1 or x.strides[0] == x.itemsize:
        return x
    return xp.ascontiguousarray(x.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)


def _max_pool_forward(x, kernel, stride):
    # One elementwise maximum per kernel offset, batch innermost (see the module
    # docstring); the result keeps that layout.
    x = _batch_innermost(x)
    oh, ow = _pool_size(x.shape, kernel, stride)
    parts = [x[:, :, rows, cols] for rows, cols in _window_slices(kernel, stride, oh, ow)]
    if len(parts) == 1:
        return parts[0].copy(order="K")
    out = xp.maximum(parts[0], parts[1])
    for part in parts[2:]:
        xp.maximum(out, part, out=out)
    return out


def _max_pool_vjp(g, out, inputs, needs, kernel, stride):
    # Tied maxima share the window's gradient equally (see the module docstring).
    x = _batch_innermost(inputs[0])
    if g.strides != out.strides:  # e.g. from a flatten: one copy into the forward's layout
        same_layout = xp.empty_like(out, dtype=g.dtype)
        same_layout[...] = g
        g = same_layout
    if stride == kernel:
        return (_tiled_pool_vjp(g, out, x, kernel),)
    oh, ow = _pool_size(x.shape, kernel, stride)
    slices = list(_window_slices(kernel, stride, oh, ow))
    hits = [x[:, :, rows, cols] == out for rows, cols in slices]
    count = hits[0].astype(g.dtype)
    for hit in hits[1:]:
        count += hit
    share = g / count  # every window holds at least one hit: its maximum
    gx = xp.zeros_like(x, dtype=g.dtype)  # same layout as x
    for (rows, cols), hit in zip(slices, hits):
        gx[:, :, rows, cols] += share * hit
    return (gx,)


def _tiled_pool_vjp(g, out, x, kernel):
    """The VJP when the windows tile the image (stride == kernel): with the window offsets
    split into their own axes, (n, c, oh, kh, ow, kw), every step is one whole-array
    operation instead of one per kernel offset."""
    (kh, kw), (oh, ow) = kernel, out.shape[2:]
    n, c = x.shape[:2]
    tiles = (n, c, oh, kh, ow, kw)
    x6 = x[:, :, : oh * kh, : ow * kw].reshape(tiles)  # splitting axes: always a view
    hit = x6 == out[:, :, :, None, :, None]
    count = hit[:, :, :, 0, :, 0].astype(g.dtype)
    for i in range(kh):
        for j in range(kw):
            if i or j:
                count += hit[:, :, :, i, :, j]
    share = g / count  # every window holds at least one hit: its maximum
    gx = xp.zeros_like(x, dtype=g.dtype)  # same layout as x
    xp.multiply(
        hit, share[:, :, :, None, :, None], out=gx[:, :, : oh * kh, : ow * kw].reshape(tiles)
    )
    return gx


_MAX_POOL2D = primitive("max_pool2d", _max_pool_forward, _max_pool_vjp)


def _shape_of(value: Any, name: str) -> tuple[int, ...]:
    """The shape of a tensor or array argument; a ShapeError naming it for ragged lists."""
    try:
        return tuple(np.shape(getattr(value, "data", value)))
    except ValueError:
        raise ShapeError(f"{name} must be a tensor or an array, got ragged nested "
                         f"sequences") from None


def max_pool2d(x: Any, kernel_size: int | Pair, stride: int | Pair | None = None) -> Any:
    """Maximum over each ``kernel_size`` window of every image and channel (no padding).

    ``out[n, c, p, q] = max_{i < kh, j < kw} x[n, c, p * sh + i, q * sw + j]``; windows that
    would run past the edge are dropped (PyTorch's ``ceil_mode=False``).

    Parameters
    ----------
    x : Tensor or array, shape (n, c, h, w)
    kernel_size : int or (int, int)
    stride : int or (int, int), optional
        Defaults to ``kernel_size`` (non-overlapping windows).

    Returns
    -------
    Tensor of shape (n, c, (h - kh) // sh + 1, (w - kw) // sw + 1).

    Notes
    -----
    Subgradient: tied maxima in a window share its gradient equally.

    Raises
    ------
    ShapeError
        An input that is not 4-D, or a window larger than the image.
    ConfigError
        A kernel size or stride below 1.
    """
    sx = _shape_of(x, "x")
    if len(sx) != 4:
        raise ShapeError(
            f"max_pool2d: input must have shape (batch, channels, height, width), got {sx}"
        )
    kernel = as_pair(kernel_size, "kernel_size", 1, "max_pool2d")
    step = kernel if stride is None else as_pair(stride, "stride", 1, "max_pool2d")
    if kernel[0] > sx[2] or kernel[1] > sx[3]:
        raise ShapeError(
            f"max_pool2d: window of size {kernel} is larger than the input images of size "
            f"{sx[2:]} (input {sx})"
        )
    return call(_MAX_POOL2D, x, kernel=kernel, stride=step)
