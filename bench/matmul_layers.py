"""GFLOP/s of the matrix products of one MLP training step, against this machine's peak.

For each Linear layer of the MNIST-shaped MLP (784-256-256-10, batch 128, float32) the
three products a step makes are timed with NumPy's BLAS in the layouts descend uses and in
the alternatives:

- forward ``x @ W.T`` with W stored (out, in) (descend, PyTorch), and ``x @ Wt`` with the
  transpose stored contiguously (in, out);
- weight gradient ``g.T @ x`` (out, in) and ``x.T @ g`` (in, out);
- input gradient ``g @ W`` and ``g @ Wt.T``;
- each with ``out=`` into a preallocated buffer and without;
- bias and ReLU fused into the product's output pass (``out += b; maximum(out, 0, out)``)
  against separate temporaries.

The peak is the best of a few large square products (2048^3). Threads: whatever the BLAS
uses by default (``threadpoolctl`` reports it); ``--threads N`` limits it.

Usage: ``.venv/bin/python bench/matmul_layers.py [--threads 1] [--repeat 200]``
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np


def best_seconds(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(repeat):
            fn()
        times.append((time.perf_counter() - t) / repeat)
    return min(times)


def layer_products(rng: np.random.Generator, batch: int, n_in: int,
                   n_out: int) -> dict[str, Callable[[], object]]:
    """The products of one Linear layer's step, each as a function of no argument."""
    f32 = np.float32
    x = rng.standard_normal((batch, n_in), dtype=f32)
    W = rng.standard_normal((n_out, n_in), dtype=f32)
    Wt = np.ascontiguousarray(W.T)
    g = rng.standard_normal((batch, n_out), dtype=f32)
    bias = rng.standard_normal(n_out, dtype=f32)
    out = np.empty((batch, n_out), f32)
    gw = np.empty((n_out, n_in), f32)
    gwt = np.empty((n_in, n_out), f32)
    gx = np.empty((batch, n_in), f32)

    def fused() -> None:
        np.matmul(x, W.T, out=out)
        np.add(out, bias, out=out)
        np.maximum(out, 0, out=out)

    def separate() -> None:
        np.maximum(x @ W.T + bias, 0)

    return {
        "fwd x @ W.T (out, in)": lambda: x @ W.T,
        "fwd x @ W.T, out=": lambda: np.matmul(x, W.T, out=out),
        "fwd x @ Wt (in, out) contiguous": lambda: x @ Wt,
        "fwd + bias + relu, in place": fused,
        "fwd + bias + relu, temporaries": separate,
        "dW g.T @ x (out, in)": lambda: g.T @ x,
        "dW g.T @ x, out=": lambda: np.matmul(g.T, x, out=gw),
        "dW x.T @ g (in, out)": lambda: np.matmul(x.T, g, out=gwt),
        "dx g @ W": lambda: g @ W,
        "dx g @ W, out=": lambda: np.matmul(g, W, out=gx),
        "dx g @ Wt.T": lambda: g @ Wt.T,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    from threadpoolctl import threadpool_info, threadpool_limits

    limit = threadpool_limits(args.threads) if args.threads else None
    info = [(i["internal_api"], i["num_threads"]) for i in threadpool_info()]
    rng = np.random.default_rng(0)
    f32 = np.float32
    n = 2048
    a = rng.standard_normal((n, n), dtype=f32)
    b = rng.standard_normal((n, n), dtype=f32)
    c = np.empty((n, n), f32)
    peak = 2 * n**3 / best_seconds(lambda: np.matmul(a, b, out=c), 3) / 1e9
    print(f"BLAS {info}; peak (2048^3 sgemm): {peak:.0f} GFLOP/s\n")
    print(f"{'layer':>14} {'product':<34} {'GFLOP/s':>8} {'% peak':>7}")
    batch = 128
    for n_in, n_out in ((784, 256), (256, 256), (256, 10)):
        flops = 2 * batch * n_in * n_out
        for name, fn in layer_products(rng, batch, n_in, n_out).items():
            rate = flops / best_seconds(fn, args.repeat) / 1e9
            print(f"{n_in:>5}->{n_out:<8} {name:<34} {rate:8.1f} {100 * rate / peak:6.0f}%")
        print()
    if limit is not None:
        limit.restore_original_limits()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
