"""descend.torch against torch.optim.SGD: the cost of one optimizer step (CPU, float32).

Two cases, the same model, initial weights and batches for every engine:

- ``mlp``: the MNIST-shaped MLP 784-256-256-10 (ReLU), mean cross-entropy, batch 128;
- ``cnn``: a small CNN on (128, 1, 28, 28) images: Conv2d(1->16, 3x3, padding 1) -> ReLU ->
  MaxPool2d(2) -> Conv2d(16->32, 3x3, padding 1) -> ReLU -> MaxPool2d(2) -> Flatten ->
  Linear(1568 -> 10).

Data: 32 batches of seeded Gaussian inputs labelled by a fixed random teacher (a linear map of
the inputs), cycled; one timed iteration is one step on the next batch.

Engines:

- ``sgd``: ``torch.optim.SGD(lr=0.01)``, the usual loop ``zero_grad(); loss = ...;
  loss.backward(); opt.step()``;
- ``constant``: ``descend.torch.GD(lr=0.01)``, ``opt.step(closure)``;
- ``armijo``: ``descend.torch.GD(lr=Armijo(c1=0.1))``, the stochastic line search of Vaswani
  et al. (2019): every step evaluates at least one trial point (a forward pass without
  gradients on the same batch), with its random-state replay and module-buffer guard.

Targets (paired ratios): constant <= 1.05x SGD; stochastic Armijo <= 1.6x SGD (a trial
costs a forward pass, about a third of a step, so ~1.33x is the floor).

Each (engine, case) runs in a fresh worker process, engines alternating within each round
(``_bench_common.run_alternating``); medians over rounds and paired ratios are reported.
``torch.set_num_threads`` is ``--threads`` (default 1: the measuring machines are small and
shared, and idle-waiting OpenMP threads on busy cores distort every engine alike).

    .venv/bin/python bench/torch_bridge.py --markdown
    .venv/bin/python bench/torch_bridge.py --quick
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

import _bench_common as bc

ENGINES = ("sgd", "constant", "armijo")
CASES = ("mlp", "cnn")
BATCH = 128
POOL = 32
LR = 0.01


def _model(case: str) -> Any:
    import torch
    from torch import nn

    torch.manual_seed(0)
    if case == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256),
                             nn.ReLU(), nn.Linear(256, 10))
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(32 * 7 * 7, 10))


def _batches() -> list[tuple[Any, Any]]:
    import torch

    g = torch.Generator().manual_seed(1)
    teacher = torch.randn(784, 10, generator=g)
    out = []
    for _ in range(POOL):
        x = torch.randn(BATCH, 1, 28, 28, generator=g)
        out.append((x, (x.reshape(BATCH, -1) @ teacher).argmax(1)))
    return out


def worker(engine: str, case: str, plan: bc.TimingPlan, threads: int) -> dict[str, Any]:
    import torch
    from torch import nn

    import descend.torch as dt
    from descend.optim import Armijo

    torch.set_num_threads(threads)
    model = _model(case)
    batches = _batches()
    loss_fn = nn.functional.cross_entropy
    counter = {"i": 0, "evals": 0, "steps": 0}
    if engine == "sgd":
        opt: Any = torch.optim.SGD(model.parameters(), lr=LR)

        def step() -> None:
            x, y = batches[counter["i"] % POOL]
            counter["i"] += 1
            opt.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
    else:
        rule = LR if engine == "constant" else Armijo(c1=0.1)
        opt = dt.GD(model.parameters(), lr=rule)
        opt.steps_per_epoch = 60_000 // BATCH  # the step grows by 2 per MNIST-sized epoch

        def step() -> None:
            x, y = batches[counter["i"] % POOL]
            counter["i"] += 1
            opt.step(lambda: loss_fn(model(x), y))
            counter["evals"] += opt.last.evaluations
            counter["steps"] += 1

    result = bc.time_per_iteration(step, plan)
    result.update(engine=engine, case=case, threads=torch.get_num_threads(),
                  torch=torch.__version__,
                  evaluations=counter["evals"] / counter["steps"] if counter["steps"] else 1.0)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", choices=ENGINES, help="(internal) run one engine")
    parser.add_argument("--case", choices=CASES, help="(with --worker) the case")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per case (default 5)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--quick", action="store_true", help="a smoke test: 1 round")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    bc.add_timing_args(parser)
    args = parser.parse_args(argv)
    if args.worker:
        if not args.case:
            parser.error("--worker needs --case")
        bc.emit(worker(args.worker, args.case, bc.plan_from_args(args), args.threads))
        return 0

    rounds = 1 if args.quick else args.rounds
    plan = bc.TimingPlan.quick() if args.quick else bc.plan_from_args(args)

    def worker_cmd(engine: str, case: str) -> list[str]:
        return [sys.executable, str(Path(__file__).resolve()), "--worker", engine, "--case",
                case, "--threads", str(args.threads), *plan.as_args()]

    info = bc.machine_info()
    versions = bc.package_versions(["torch", "numpy"])
    results = bc.run_alternating(list(CASES), list(ENGINES), rounds, worker_cmd)
    pairs = [("constant", "sgd"), ("armijo", "sgd")]
    summary = bc.summarize(results, pairs)
    table = bc.markdown_table if args.markdown else bc.text_table
    headers = ["case", "torch.optim.SGD", "descend constant", "descend Armijo (SLS)",
               "constant / SGD", "Armijo / SGD", "Armijo forward passes per step"]
    rows = []
    for case in CASES:
        s = summary[case]
        evals = statistics.mean(r["evaluations"] for r in results.runs[case]["armijo"])
        rows.append([
            case,
            *(bc.format_time(s["times"][e].median) for e in ENGINES),
            bc.format_ratio(s["ratios"][("constant", "sgd")]) + " (target <= 1.05x)",
            bc.format_ratio(s["ratios"][("armijo", "sgd")]) + " (target <= 1.6x)",
            f"{evals:.2f}",
        ])
    lines = bc.machine_info_lines(info)
    lines.append("Packages: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    lines.append(f"torch threads: {args.threads}; {rounds} round(s); per-step time, median "
                 "of 7 timed repeats per worker, median over rounds; ratios paired per round")
    load = bc.load_average()
    if load:
        lines.append(f"1-min load average at the end: {load[0]:g}")
    print("\n".join(f"- {ln}" if args.markdown else ln for ln in lines))
    print()
    print(table(headers, rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
