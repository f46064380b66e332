"""The per-step cost of a ``torch.compile``'d model inside descend.torch's closures.

Variants: {eager, compiled} x {``torch.optim.Adam(1e-3)``, ``descend.torch.Adam(1e-3)``,
``descend.torch.GD(lr=Armijo(c1=0.1))`` (trials under ``no_grad``, the compiled model's
second graph)}. The model: an MLP 64-256-256-10 with dropout on the 8x8 digits, batch 64,
float32, one thread, CPU. Each variant runs in its own process (a fresh torch, its own
compile caches), in rounds that alternate the order A B A B; per run the compile time (the
first ``--warmup`` steps) is left out and the median wall time per step of the remaining
``--steps`` is taken; the table gives the median over rounds.

Run::

    .venv/bin/python bench/torch_compile.py                    # 3 rounds of 300 steps
    .venv/bin/python bench/torch_compile.py --rounds 1 --steps 50  # quick
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

VARIANTS = [f"{model}/{opt}" for opt in ("torch-adam", "descend-adam", "descend-armijo")
            for model in ("eager", "compiled")]


def one(variant: str, steps: int, warmup: int) -> dict[str, float]:
    """Run one variant in this process: compile seconds, median seconds per step."""
    import numpy as np
    import torch
    from torch import nn

    import descend.torch as dt
    from descend.data import load_digits
    from descend.optim import Armijo

    torch.set_num_threads(1)
    torch.manual_seed(0)
    digits = load_digits()
    X = torch.from_numpy(np.asarray(digits.X, dtype=np.float32))
    y = torch.from_numpy(np.asarray(digits.y, dtype=np.int64))
    model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Dropout(0.1), nn.Linear(256, 256),
                          nn.ReLU(), nn.Linear(256, 10))
    kind, name = variant.split("/")
    forward = torch.compile(model) if kind == "compiled" else model
    opt = {"torch-adam": lambda p: torch.optim.Adam(p, lr=1e-3),
           "descend-adam": lambda p: dt.Adam(p, lr=1e-3),
           "descend-armijo": lambda p: dt.GD(p, lr=Armijo(c1=0.1))}[name](model.parameters())
    rng = np.random.default_rng(0)
    times = []
    started = time.perf_counter()
    for step in range(warmup + steps):
        idx = torch.from_numpy(rng.integers(0, len(X), 64))
        xb, yb = X[idx], y[idx]

        def closure(xb: torch.Tensor = xb, yb: torch.Tensor = yb) -> torch.Tensor:
            return nn.functional.cross_entropy(forward(xb), yb)

        t = time.perf_counter()
        if name == "torch-adam":
            opt.zero_grad()
            closure().backward()
            opt.step()
        else:
            opt.step(closure)
        times.append(time.perf_counter() - t)
        if step == warmup - 1:
            compile_s = time.perf_counter() - started
    return {"compile_s": compile_s, "step_ms": 1e3 * statistics.median(times[warmup:])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.steps, args.warmup)))
        return
    results: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
    for r in range(args.rounds):
        order = VARIANTS if r % 2 == 0 else VARIANTS[::-1]
        for variant in order:
            done = subprocess.run([sys.executable, __file__, "--one", variant, "--steps",
                                   str(args.steps), "--warmup", str(args.warmup)],
                                  capture_output=True, text=True, check=True)
            results[variant].append(json.loads(done.stdout.strip().splitlines()[-1]))
    print("| variant | ms per step (median) | first steps incl. compile (s) |")
    print("| :--- | ---: | ---: |")
    for variant, runs in results.items():
        step = statistics.median(r["step_ms"] for r in runs)
        first = statistics.median(r["compile_s"] for r in runs)
        print(f"| {variant} | {step:.3f} | {first:.2f} |")


if __name__ == "__main__":
    main()
