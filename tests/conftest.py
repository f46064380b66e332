"""Suite-wide: the header says whether bit-for-bit checks run here or stated tolerances."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from descend._environment import differences

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
