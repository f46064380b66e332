"""Memory per optimizer on PyTorch models: descend's optimizers (searched, Polyak, Prodigy,
with and without the lean mode) against torch's SGD and Adam.

Models (bench/lr_free.py's): ``cnn``, the MNIST CNN (``mnist_cnn()``, 28x28 inputs, batch
64), and ``lm``, the character-level transformer LM (``char_transformer()``, vocabulary 96,
context 128; ``--lm-width``/``--lm-layers``/``--lm-batch`` scale it, default 4 layers of
width 512, 12.7M parameters, batch 2, so that the parameters' bytes stand out of the CPU's
resident-set noise). The data are random (inputs, tokens, labels from a seeded
generator): memory does not depend on their values.

Each (model, optimizer) runs in its own process (``--worker``), which

1. builds the model and one batch, runs two plain forward and backward passes (the model's
   own activations and gradients), and reads the peak so far: the baseline;
2. builds the optimizer and takes ``--steps`` steps (``step(closure)`` for descend, the
   usual zero_grad/backward/step for torch's);
3. reports

   - ``state``: bytes of tensors the optimizer holds between steps (every storage reachable
     from the optimizer object once: torch's ``state``, descend's direction state, its
     spare copy of the parameters; parameters, gradients and scalars excluded), also as a
     multiple of the parameters' bytes (``x params``);
   - ``peak``: the peak memory's rise over the baseline: on CUDA
     ``torch.cuda.max_memory_allocated()``, exact; on the CPU the peak resident set size
     (``getrusage``'s ``ru_maxrss``), which includes the allocator's slack and is only
     resolved to a few hundred kB (small models show 0).

Run: ``.venv/bin/python bench/torch_memory.py [--device cuda] [--steps 3] [--json out.json]
[--markdown] [--only cnn]``; ``--quick`` uses a small LM (width 64, 2 layers) and 2 steps.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

RESULT_TAG = "RESULT "

#: optimizer name -> (description, builder of params -> optimizer, is torch's own)
OPTIMIZERS: dict[str, tuple[str, bool]] = {
    "torch-sgd": ("torch.optim.SGD(lr=0.01, momentum=0.9)", True),
    "torch-adam": ("torch.optim.Adam(lr=1e-3)", True),
    "gd-constant": ("descend.torch.GD(lr=0.01, momentum=0.9)", False),
    "gd-constant-lean": ("descend.torch.GD(lr=0.01, momentum=0.9, lean=True)", False),
    "gd-armijo": ("descend.torch.GD(lr=Armijo())", False),
    "gd-armijo-lean": ("descend.torch.GD(lr=Armijo(), lean=True)", False),
    "adam-armijo": ("descend.torch.Adam(lr=Armijo())", False),
    "adam-armijo-lean": ("descend.torch.Adam(lr=Armijo(), lean=True)", False),
    "recommended": ("descend.torch.recommended() (MoMo)", False),
    "adam-salsa": ("descend.torch.Adam(lr=SmoothedArmijo()) (SaLSA's search)", False),
    "adam-salsa-lean": ("descend.torch.Adam(lr=SmoothedArmijo(), lean=True)", False),
    "gd-polyak": ("descend.torch.GD(lr=Polyak(c=0.5, max_lr=1.0)) (SPS_max)", False),
    "gd-polyak-lean": ("descend.torch.GD(lr=Polyak(c=0.5, max_lr=1.0), lean=True)", False),
    "adam-prodigy": ("descend.torch.Adam(lr=Prodigy())", False),
}


def build_optimizer(name: str, params: list[Any]) -> Any:
    """The optimizer ``name`` of :data:`OPTIMIZERS` over ``params``."""
    import torch

    import descend.torch as dt
    from descend.optim import Armijo, Polyak, Prodigy, SmoothedArmijo

    lean = name.endswith("-lean")
    base = name.removesuffix("-lean")
    makers: dict[str, Callable[[], Any]] = {
        "torch-sgd": lambda: torch.optim.SGD(params, lr=0.01, momentum=0.9),
        "torch-adam": lambda: torch.optim.Adam(params, lr=1e-3),
        "gd-constant": lambda: dt.GD(params, lr=0.01, momentum=0.9, lean=lean),
        "gd-armijo": lambda: dt.GD(params, lr=Armijo(), lean=lean),
        "adam-armijo": lambda: dt.Adam(params, lr=Armijo(), lean=lean),
        "recommended": lambda: dt.recommended(params),
        "adam-salsa": lambda: dt.Adam(params, lr=SmoothedArmijo(), lean=lean),
        "gd-polyak": lambda: dt.GD(params, lr=Polyak(c=0.5, max_lr=1.0), lean=lean),
        "adam-prodigy": lambda: dt.Adam(params, lr=Prodigy(), lean=lean),
    }
    return makers[base]()


def build_model(model: str, args: argparse.Namespace, device: Any) -> tuple[Any, Callable]:
    """(the model, a closure returning the loss on one fixed random batch)."""
    import lr_free
    import torch
    from torch.nn import functional as F

    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    if model == "cnn":
        net = lr_free.mnist_cnn().to(device)
        x = torch.randn(64, 1, 28, 28, generator=g).to(device)
        y = torch.randint(0, 10, (64,), generator=g).to(device)
        return net, lambda: F.cross_entropy(net(x), y)
    vocab, context = 96, 128
    net = lr_free.char_transformer(vocab, args.lm_layers, args.lm_width, 4, context).to(device)
    idx = torch.randint(0, vocab, (args.lm_batch, context + 1), generator=g).to(device)
    return net, lambda: F.cross_entropy(net(idx[:, :-1]).reshape(-1, vocab),
                                        idx[:, 1:].reshape(-1))


def _peak(device: Any) -> int:
    """The peak memory so far, in bytes: CUDA's allocator, or the peak RSS."""
    import torch

    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux


def _warm_up() -> None:
    """One step of a torch and of a descend optimizer on a scalar: what they import or
    allocate once per process (torch's first ``step`` imports its compiler stack, tens of
    MB) falls before the baseline."""
    import torch

    import descend.torch as dt
    from descend.optim import Armijo

    w = torch.zeros(2, requires_grad=True)
    ref = torch.optim.SGD([w], lr=0.1)
    (w - 1).square().sum().backward()
    ref.step()
    dt.GD([w], lr=Armijo()).step(lambda: (w - 1).square().sum())


def worker(args: argparse.Namespace) -> None:
    import lr_free
    import torch

    torch.set_num_threads(1)
    device = torch.device(args.device)
    net, closure = build_model(args.model, args, device)
    params = list(net.parameters())
    for _ in range(2):  # the model's own activations and gradients
        for p in params:
            p.grad = None
        closure().backward()
    for p in params:
        p.grad = None
    _warm_up()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    baseline = _peak(device)
    opt = build_optimizer(args.optimizer, params)
    torch_own = OPTIMIZERS[args.optimizer][1]
    for _ in range(args.steps):
        if torch_own:
            opt.zero_grad()
            closure().backward()
            opt.step()
        else:
            opt.step(closure)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    param_bytes = sum(p.numel() * p.element_size() for p in params)
    # state_floats counts floats per parameter, float32 here: 4 bytes each
    state_per_param = lr_free.state_floats(opt, params)
    print(RESULT_TAG + json.dumps({
        "model": args.model, "optimizer": args.optimizer, "device": str(device),
        "parameters": sum(p.numel() for p in params), "param_bytes": param_bytes,
        "state_bytes": round(state_per_param * param_bytes),
        "state_x_params": state_per_param,
        "peak_rise_bytes": _peak(device) - baseline,
    }), flush=True)


def _mb(n: float) -> str:
    return f"{n / 2**20:.2f}"


def table(results: list[dict[str, Any]], markdown: bool) -> str:
    head = ["model", "optimizer", "params (MB)", "state (MB)", "state (x params)",
            "peak rise (MB)"]
    rows = [[r["model"], r["optimizer"], _mb(r["param_bytes"]), _mb(r["state_bytes"]),
             f"{r['state_x_params']:.2f}", _mb(r["peak_rise_bytes"])] for r in results]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(str(c)) for c in col) for col in zip(head, *rows)]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths))
                     for row in [head, *rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--lm-width", type=int, default=512)
    parser.add_argument("--lm-layers", type=int, default=4)
    parser.add_argument("--lm-batch", type=int, default=2)
    parser.add_argument("--only", nargs="*", default=["cnn", "lm"], choices=["cnn", "lm"])
    parser.add_argument("--optimizers", nargs="*", default=list(OPTIMIZERS),
                        choices=list(OPTIMIZERS))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--optimizer", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.lm_width, args.lm_layers, args.steps = 64, 2, 2
    if args.worker:
        worker(args)
        return
    results = []
    for model in args.only:
        for name in args.optimizers:
            cmd = [sys.executable, __file__, "--worker", "--model", model, "--optimizer",
                   name, "--device", args.device, "--steps", str(args.steps),
                   "--lm-width", str(args.lm_width), "--lm-layers", str(args.lm_layers),
                   "--lm-batch", str(args.lm_batch)]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_TAG)]
            if proc.returncode != 0 or not lines:
                sys.exit(f"{model}/{name} failed:\n{proc.stderr[-2000:]}")
            results.append(json.loads(lines[-1][len(RESULT_TAG):]))
            print(f"{model:4} {name:18} done", file=sys.stderr, flush=True)
    print(table(results, args.markdown))
    if args.json:
        args.json.write_text(json.dumps({"steps": args.steps, "lm_width": args.lm_width,
                                         "lm_layers": args.lm_layers,
                                         "lm_batch": args.lm_batch, "results": results},
                                        indent=1) + "\n")


if __name__ == "__main__":
    main()
