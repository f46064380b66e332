"""Hand-written NumPy training loops: the reference that descend is measured against in
``bench/training.py``.

What a careful engineer writes for one fixed model and plain SGD, in float32:

- the forward and backward passes written out by hand (the chain rule, no graph);
- every activation, delta and gradient buffer allocated once, at the largest batch size,
  and reused through views (``out=`` arguments, in-place ``+=``, ``*=``), so a step
  allocates almost nothing;
- mini-batches gathered with ``np.take(..., out=buffer, mode="clip")`` instead of fancy
  indexing (with ``out=``, the default ``mode="raise"`` gathers into a temporary first);
- the step size folded into the output delta (``(softmax - onehot) * lr / m``), so the
  weight gradients come out already scaled and the update is one in-place subtraction.

Two trainers, :class:`MLPTrainer` (ReLU hidden layers, softmax cross-entropy) and
:class:`CNNTrainer` (Conv2d 3x3 / padding 1 -> ReLU -> MaxPool 2 -> Flatten -> Linear, by
im2col), plus a plain float64 evaluator (:func:`mean_loss`) that every engine's parameters
are scored with, so the losses printed by the benchmark are comparable across engines.

Parameters use PyTorch's layout everywhere: Linear weights (out, in), conv weights
(out, in, kh, kw).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

F32 = np.float32


def _softmax_ce_delta(z: np.ndarray, y: np.ndarray, rows: np.ndarray, scale: float) -> float:
    """Mean softmax cross-entropy of logits ``z`` (m, k) against labels ``y``; overwrites
    ``z`` with ``(softmax(z) - onehot(y)) * scale`` (d loss / d z times lr, for scale =
    lr / m). Returns the loss (float)."""
    z -= z.max(axis=1, keepdims=True)  # the loss does not change; exp cannot overflow
    picked = z[rows, y]
    np.exp(z, out=z)
    total = z.sum(axis=1)
    loss = float(np.mean(np.log(total) - picked))
    z *= (F32(scale) / total)[:, None]
    z[rows, y] -= F32(scale)
    return loss


class MLPTrainer:
    """Plain SGD on ``relu(... relu(x W1^T + b1) ...) W_L^T + b_L`` with mean softmax
    cross-entropy, buffers preallocated for ``batch_size`` rows.

    ``params``: [W1, b1, W2, b2, ...] in PyTorch's layout; they are copied (float32) and
    trained in place (``self.params``).
    """

    def __init__(self, params: Sequence[np.ndarray], lr: float, batch_size: int):
        self.params = [np.array(p, dtype=F32) for p in params]
        self.weights = self.params[0::2]
        self.biases = self.params[1::2]
        self.lr = float(lr)
        self.batch_size = int(batch_size)
        b = self.batch_size
        n_in = self.weights[0].shape[1]
        self.xb = np.empty((b, n_in), F32)
        self.yb = np.empty(b, np.int64)
        # activations (outputs of each Linear, ReLU applied in place for hidden layers)
        self.acts = [np.empty((b, w.shape[0]), F32) for w in self.weights]
        # deltas of the hidden layers (d loss / d pre-activation)
        self.deltas = [np.empty((b, w.shape[0]), F32) for w in self.weights[:-1]]
        self.gw = [np.empty_like(w) for w in self.weights]
        self.gb = [np.empty_like(bias) for bias in self.biases]
        self.rows = np.arange(b)

    def set_params(self, params: Sequence[np.ndarray]) -> None:
        """Copy ``params`` into the trained arrays (in place)."""
        for dst, src in zip(self.params, params):
            dst[...] = src

    def step(self, x: np.ndarray, y: np.ndarray) -> float:
        """One SGD step on the batch (x, y) (at most ``batch_size`` rows); the loss before it."""
        m = len(x)
        ws, bs = self.weights, self.biases
        last = len(ws) - 1
        acts = [a[:m] for a in self.acts]
        # forward
        h = x
        for i, (w, bias) in enumerate(zip(ws, bs)):
            out = acts[i]
            np.matmul(h, w.T, out=out)
            out += bias
            if i < last:
                np.maximum(out, 0, out=out)
            h = out
        # backward: the output delta, lr folded in
        delta = acts[last]
        loss = _softmax_ce_delta(delta, y, self.rows[:m], self.lr / m)
        for i in range(last, -1, -1):
            below = x if i == 0 else acts[i - 1]
            np.matmul(delta.T, below, out=self.gw[i])
            np.sum(delta, axis=0, out=self.gb[i])
            if i > 0:
                nxt = self.deltas[i - 1][:m]
                np.matmul(delta, ws[i], out=nxt)
                nxt *= below > 0  # relu'(0) = 0
                delta = nxt
        # update (the gradients already carry lr)
        for w, g in zip(ws, self.gw):
            w -= g
        for bias, g in zip(bs, self.gb):
            bias -= g
        return loss

    def epoch(self, X: np.ndarray, y: np.ndarray, order: np.ndarray) -> float:
        """One pass over (X, y) in the sample order ``order``; the mean of the batch losses."""
        b = self.batch_size
        total, steps = 0.0, 0
        for start in range(0, len(order), b):
            idx = order[start : start + b]
            m = len(idx)
            xb = np.take(X, idx, axis=0, out=self.xb[:m], mode="clip")
            yb = np.take(y, idx, out=self.yb[:m], mode="clip")
            total += self.step(xb, yb)
            steps += 1
        return total / steps


class CNNTrainer:
    """Plain SGD on Conv2d(c_in -> c_out, 3x3, padding 1) -> ReLU -> MaxPool2d(2) ->
    Flatten -> Linear(c_out * (h/2) * (w/2) -> k), mean softmax cross-entropy.

    The convolution is an im2col matrix product in NHWC layout: the padded batch's 3x3
    windows are copied into one (m*h*w, c_in*9) buffer, and the feature maps stay
    (m, h, w, c_out), so pooling and the Linear layer need no transposes. The Linear
    weight's columns are permuted once, at set-up, from PyTorch's (c, h, w) flatten order
    to (h, w, c). Max-pool ties share the gradient equally (descend's convention).

    ``params``: [conv_w (c_out, c_in, 3, 3), conv_b, lin_w (k, c_out*h*w/4), lin_b].
    """

    def __init__(
        self, params: Sequence[np.ndarray], lr: float, batch_size: int, image_hw: tuple[int, int]
    ):
        conv_w, conv_b, lin_w, lin_b = (np.asarray(p, dtype=F32) for p in params)
        self.c_out, self.c_in, kh, kw = conv_w.shape
        if (kh, kw) != (3, 3):
            raise ValueError("CNNTrainer is written for 3x3 kernels with padding 1")
        self.h, self.w = image_hw
        if self.h % 2 or self.w % 2:
            raise ValueError("image sides must be even (2x2 pooling)")
        self.k = lin_w.shape[0]
        self.lr = float(lr)
        self.batch_size = b = int(batch_size)
        h, w, c = self.h, self.w, self.c_out
        # (c_in*9, c_out) kernel matrix, columns in (c_in, kh, kw) order like the windows
        self.kmat = np.ascontiguousarray(conv_w.reshape(c, -1).T)
        self.cb = conv_b.copy()
        self.lw = self._to_nhwc(lin_w)
        self.lb = lin_b.copy()
        self.xpad = np.zeros((b, h + 2, w + 2, self.c_in), F32)  # borders stay zero
        self.cols = np.empty((b, h, w, self.c_in, 3, 3), F32)
        self.conv = np.empty((b * h * w, c), F32)
        self.logits = np.empty((b, self.k), F32)
        self.dflat = np.empty((b, c * h * w // 4), F32)
        self.dconv = np.empty((b, h // 2, 2, w // 2, 2, c), F32)
        self.gk = np.empty_like(self.kmat)
        self.gcb = np.empty_like(self.cb)
        self.glw = np.empty_like(self.lw)
        self.glb = np.empty_like(self.lb)
        self.xb = np.empty((b, self.c_in, h, w), F32)
        self.yb = np.empty(b, np.int64)
        self.rows = np.arange(b)

    def _to_nhwc(self, lin_w: np.ndarray) -> np.ndarray:
        c, h2, w2 = self.c_out, self.h // 2, self.w // 2
        return np.ascontiguousarray(
            lin_w.reshape(self.k, c, h2, w2).transpose(0, 2, 3, 1).reshape(self.k, -1)
        )

    def torch_params(self) -> list[np.ndarray]:
        """The parameters in PyTorch's layout (copies)."""
        c, h2, w2 = self.c_out, self.h // 2, self.w // 2
        conv_w = self.kmat.T.reshape(c, self.c_in, 3, 3).copy()
        lin_w = self.lw.reshape(self.k, h2, w2, c).transpose(0, 3, 1, 2).reshape(self.k, -1)
        return [conv_w, self.cb.copy(), lin_w.copy(), self.lb.copy()]

    def set_params(self, params: Sequence[np.ndarray]) -> None:
        conv_w, conv_b, lin_w, lin_b = (np.asarray(p, dtype=F32) for p in params)
        self.kmat[...] = conv_w.reshape(self.c_out, -1).T
        self.cb[...] = conv_b
        self.lw[...] = self._to_nhwc(lin_w)
        self.lb[...] = lin_b

    def step(self, x: np.ndarray, y: np.ndarray) -> float:
        """One SGD step on (x (m, c_in, h, w), y); the loss before it."""
        m = len(x)
        h, w, c = self.h, self.w, self.c_out
        # im2col: the 3x3 windows of the zero-padded batch, (m*h*w, c_in*9)
        xpad = self.xpad[:m]
        xpad[:, 1 : h + 1, 1 : w + 1, :] = x.transpose(0, 2, 3, 1)
        cols = self.cols[:m]
        np.copyto(cols, sliding_window_view(xpad, (3, 3), axis=(1, 2)))
        cols2 = cols.reshape(m * h * w, -1)
        conv = self.conv[: m * h * w]
        np.matmul(cols2, self.kmat, out=conv)
        conv += self.cb
        np.maximum(conv, 0, out=conv)
        # 2x2 max pooling
        win = conv.reshape(m, h // 2, 2, w // 2, 2, c)
        pooled = win.max(axis=(2, 4))  # (m, h/2, w/2, c)
        flat = pooled.reshape(m, -1)
        z = self.logits[:m]
        np.matmul(flat, self.lw.T, out=z)
        z += self.lb
        loss = _softmax_ce_delta(z, y, self.rows[:m], self.lr / m)
        # Linear backward
        np.matmul(z.T, flat, out=self.glw)
        np.sum(z, axis=0, out=self.glb)
        dflat = self.dflat[:m]
        np.matmul(z, self.lw, out=dflat)
        # pooling backward: share among the window's maxima, then relu'(0) = 0
        mask = win == pooled[:, :, None, :, None, :]
        count = mask.sum(axis=(2, 4), keepdims=True, dtype=F32)
        dconv = self.dconv[:m]
        np.divide(dflat.reshape(m, h // 2, 1, w // 2, 1, c), count, out=dconv)
        dconv *= mask
        dconv *= win > 0
        dconv2 = dconv.reshape(m * h * w, c)
        np.matmul(cols2.T, dconv2, out=self.gk)
        np.sum(dconv2, axis=0, out=self.gcb)
        # update (the gradients already carry lr)
        self.kmat -= self.gk
        self.cb -= self.gcb
        self.lw -= self.glw
        self.lb -= self.glb
        return loss

    def epoch(self, X: np.ndarray, y: np.ndarray, order: np.ndarray) -> float:
        b = self.batch_size
        total, steps = 0.0, 0
        for start in range(0, len(order), b):
            idx = order[start : start + b]
            m = len(idx)
            xb = np.take(X, idx, axis=0, out=self.xb[:m], mode="clip")
            yb = np.take(y, idx, out=self.yb[:m], mode="clip")
            total += self.step(xb, yb)
            steps += 1
        return total / steps


# ------------------------------------------------------------------ scoring any engine's model
def mlp_logits(params: Sequence[np.ndarray], x: np.ndarray) -> np.ndarray:
    """Logits of the ReLU MLP with parameters [W1, b1, ...] (PyTorch layout), float64."""
    h = np.asarray(x, dtype=np.float64)
    ws, bs = params[0::2], params[1::2]
    for i, (w, b) in enumerate(zip(ws, bs)):
        h = h @ np.asarray(w, np.float64).T + np.asarray(b, np.float64)
        if i < len(ws) - 1:
            np.maximum(h, 0, out=h)
    return h


def cnn_logits(params: Sequence[np.ndarray], x: np.ndarray) -> np.ndarray:
    """Logits of Conv2d(3x3, padding 1) -> ReLU -> MaxPool2d(2) -> Flatten -> Linear,
    NCHW, PyTorch layout, float64."""
    conv_w, conv_b, lin_w, lin_b = (np.asarray(p, np.float64) for p in params)
    x = np.asarray(x, np.float64)
    n, _, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    win = sliding_window_view(xp, (3, 3), axis=(2, 3))  # (n, c_in, h, w, 3, 3)
    conv = np.einsum("nchwij,ocij->nohw", win, conv_w) + conv_b[None, :, None, None]
    np.maximum(conv, 0, out=conv)
    pooled = conv.reshape(n, -1, h // 2, 2, w // 2, 2).max(axis=(3, 5))
    return pooled.reshape(n, -1) @ lin_w.T + lin_b


def mean_loss(kind: str, params: Sequence[np.ndarray], X: np.ndarray, y: np.ndarray,
              chunk: int = 2048) -> float:
    """Mean softmax cross-entropy of the model ``kind`` ("mlp" or "cnn") on (X, y), in
    float64, evaluated ``chunk`` rows at a time (little memory)."""
    logits_of = mlp_logits if kind == "mlp" else cnn_logits
    total = 0.0
    for start in range(0, len(X), chunk):
        z = logits_of(params, X[start : start + chunk])
        z -= z.max(axis=1, keepdims=True)
        lse = np.log(np.exp(z).sum(axis=1))
        yy = y[start : start + chunk]
        total += float(np.sum(lse - z[np.arange(len(yy)), yy]))
    return total / len(X)
