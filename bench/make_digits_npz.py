"""Regenerate ``src/descend/datasets/digits.npz`` from scikit-learn's bundled digits.

The file ships with descend so that scikit-learn is not needed at run time. It holds the
1,797 8x8 handwritten digits of the UCI optical-recognition set as scikit-learn bundles them:

- ``X``: uint8, shape (1797, 64), pixel intensities 0..16, rows are images in row-major order;
- ``y``: uint8, shape (1797,), class labels 0..9.

Run from the repository root::

    python bench/make_digits_npz.py

The output is compressed with ``numpy.savez_compressed`` and contains no pickled objects.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "src" / "descend" / "datasets" / "digits.npz"


def make_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """Return scikit-learn's digits as ``(X uint8 (1797, 64), y uint8 (1797,))``."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    data = np.asarray(bunch.data)
    target = np.asarray(bunch.target)
    if data.shape != (1797, 64) or target.shape != (1797,):
        raise RuntimeError(f"unexpected digits shapes {data.shape} and {target.shape}")
    # The pixels are small whole numbers stored as float64; check before narrowing.
    if not np.array_equal(data, np.round(data)) or data.min() < 0 or data.max() > 16:
        raise RuntimeError("digits pixels are not whole numbers in 0..16")
    if target.min() < 0 or target.max() > 9:
        raise RuntimeError("digits labels are not in 0..9")
    return data.astype(np.uint8), target.astype(np.uint8)


def main(argv: list[str] | None = None) -> None:
    """Write the digits archive (default: the package's data folder)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the .npz")
    args = parser.parse_args(argv)
    X, y = make_digits_arrays()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, X=X, y=y)
    print(f"wrote {args.out} (X {X.shape} {X.dtype}, y {y.shape} {y.dtype})")


if __name__ == "__main__":
    main()
