"""Suite-wide: one BLAS/OpenMP thread per test process, and a summary line saying whether
bit-for-bit checks run here or stated tolerances.

pytest-xdist runs one process per core; with OpenBLAS's and torch's default of one thread
per core on top, a 2-core machine runs 4+ busy-waiting threads, and small products (the
suite's) slow down 10-100x while anything else runs (a 0.17 s training run took 12-17 s).
Subprocesses started by tests inherit the environment variables.
"""

from __future__ import annotations

import json
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

# NumPy may have been imported (and its BLAS started) before this file: limit it anyway
_BLAS_LIMIT = threadpool_limits(limits=int(os.environ["OPENBLAS_NUM_THREADS"]))

from descend._environment import differences  # noqa: E402

PINS = Path(__file__).parent / "optim" / "data" / "pinned_runs.npz"


def bit_checks_line() -> str:
    """One line: whether this environment is the one that wrote the pinned bits."""
    with np.load(PINS, allow_pickle=False) as z:
        recorded = json.loads(str(z["__environment__"]))
    changed = differences(recorded)
    if not changed:
        return "bit-for-bit checks: on (this environment wrote the pinned runs)"
    return ("bit-for-bit checks: off, stated tolerances instead (the pinned runs were written "
            "where " + "; ".join(changed) + ")")


def pytest_terminal_summary(terminalreporter) -> None:
    # printed under -q too, after the results
    terminalreporter.write_line(bit_checks_line())
