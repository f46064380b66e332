"""Run every benchmark and print their Markdown tables (``make bench``).

Each benchmark runs the competitors in separate processes, alternating them, and reports
medians and paired ratios. Pass ``--quick`` for a smoke run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = [
    ("engine.py", ["--markdown"]),
    ("training.py", ["--markdown"]),
    ("step_rules.py", ["--markdown"]),
    ("linesearch_counts.py", []),
    ("quasi_newton.py", ["--markdown"]),
    ("sklearn_datasets.py", ["--markdown", "--rounds", "3", "--sklearn-max-iter", "50000"]),
    ("torch_bridge.py", ["--markdown"]),
    ("lr_free.py", ["--markdown"]),  # an hour or more on 2 cores
]


def main() -> int:
    extra = [a for a in sys.argv[1:] if a == "--quick"]
    failed = 0
    for script, args in BENCHMARKS:
        print(f"\n## bench/{script}\n", flush=True)
        cmd = [sys.executable, str(HERE / script), *args]
        if script not in ("linesearch_counts.py", "quasi_newton.py"):  # counts, no timing
            cmd += extra
        failed += subprocess.run(cmd, check=False).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
