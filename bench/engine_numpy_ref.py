"""Hand-written NumPy forward and backward passes: the reference that descend is measured
against in ``bench/engine.py``.

Each function computes exactly the math of the corresponding descend / PyTorch case, in
float32, with the gradients derived by hand (the chain rule written out, no graph, no
bookkeeping), reusing buffers in place where that is natural. This is what a careful
engineer would write for one fixed model, so it is the bar for descend's own overhead.
"""

from __future__ import annotations

import numpy as np


# ------------------------------------------------------------------ tiny elementwise chain
def tiny_chain(x: np.ndarray) -> tuple[float, np.ndarray]:
    """s = sum(sigmoid(f*f) * e) with e = exp(tanh(1.5x + 0.3) * x), f = e - x.

    Ten operations (mul, add, tanh, mul, exp, sub, mul, sigmoid, mul, sum) on a small
    vector; returns (s, ds/dx).
    """
    # forward
    c = np.tanh(x * np.float32(1.5) + np.float32(0.3))
    e = np.exp(c * x)
    f = e - x
    h = 1 / (1 + np.exp(-(f * f)))  # sigmoid(f^2); f^2 >= 0, so exp(-f^2) cannot overflow
    s = float((h * e).sum())
    # backward: ds/di = 1 for i = h * e
    gg = e * h * (1 - h)  # through h = sigmoid(g), g = f^2
    ge = h + gg * 2 * f  # e feeds i directly and through f = e - x
    gd = ge * e  # e = exp(d)
    gx = gd * c - 2 * gg * f  # d = c * x, and f = e - x
    gx += gd * x * (1 - c * c) * np.float32(1.5)  # c = tanh(1.5x + 0.3)
    return s, gx


# ------------------------------------------------------------------ small matmul
def matmul_sum(a: np.ndarray, b: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """s = sum(a @ b); returns (s, ds/da, ds/db) through the general matmul VJP."""
    out = a @ b
    s = float(out.sum())
    g = np.ones_like(out)
    return s, g @ b.T, a.T @ g


# ------------------------------------------------------------------ 3-layer MLP
def mlp(
    x: np.ndarray,
    y: np.ndarray,
    w1: np.ndarray,
    b1: np.ndarray,
    w2: np.ndarray,
    b2: np.ndarray,
    w3: np.ndarray,
    b3: np.ndarray,
) -> tuple[float, list[np.ndarray]]:
    """Mean cross-entropy of relu(relu(x W1^T + b1) W2^T + b2) W3^T + b3 against labels y.

    x: (n, d) float32, y: (n,) int class labels, weights in PyTorch's (out, in) layout.
    Returns (loss, [dW1, db1, dW2, db2, dW3, db3]); no gradient for x.
    """
    n = x.shape[0]
    rows = np.arange(n)
    # forward
    h1 = x @ w1.T
    h1 += b1
    np.maximum(h1, 0, out=h1)
    h2 = h1 @ w2.T
    h2 += b2
    np.maximum(h2, 0, out=h2)
    z = h2 @ w3.T
    z += b3
    # softmax cross-entropy, shifted by the row maximum (the loss does not change)
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    total = p.sum(axis=1)
    loss = float(np.mean(np.log(total) - z[rows, y]))
    # backward: d loss / d z = (softmax(z) - onehot(y)) / n
    p /= total[:, None]
    p[rows, y] -= 1
    p *= np.float32(1 / n)
    dw3 = p.T @ h2
    db3 = p.sum(axis=0)
    d2 = p @ w3
    d2 *= h2 > 0  # relu'(0) = 0
    dw2 = d2.T @ h1
    db2 = d2.sum(axis=0)
    d1 = d2 @ w2
    d1 *= h1 > 0
    dw1 = d1.T @ x
    db1 = d1.sum(axis=0)
    return loss, [dw1, db1, dw2, db2, dw3, db3]
