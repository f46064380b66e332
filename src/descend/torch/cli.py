"""``descend train --engine torch``: the same job as ``descend train``, run through PyTorch.

The MLP is built by descend (same sizes, activation, dropout and initial weights for a given
seed) and copied into ``torch.nn`` layers; the optimizer is ``descend.torch``'s, built by
the registry (:func:`descend.optim.spec.make_optimizer`) from the same flags and step rule as
for the NumPy engine, and the stopping criteria by the same function
(:func:`descend._flags.stop_when`). The loop is descend's ``train_steps``: seeded shuffles,
``opt.step(closure)``, a line per epoch.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, TextIO

import numpy as np
import torch
from torch import nn

from .._flags import optimizer_options, stop_when
from ..nn import Dropout, Linear, mlp
from ..optim.spec import make_optimizer
from ..train import train_steps
from .loops import accumulate
from .spec import TORCH

#: ``descend train`` flags this engine does not take, with their value when not given.
#: docs/pytorch.md lists them between its ``torch-refuses`` markers (a test compares).
UNSUPPORTED = {"checkpoint": None, "resume": None, "checkpoint_every": 1, "overwrite": False,
               "report": None}

_ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(0.01), "tanh": nn.Tanh,
                "sigmoid": nn.Sigmoid, "gelu": nn.GELU}


def unsupported_flags(args: argparse.Namespace) -> list[str]:
    """The flags given that ``--engine torch`` does not support."""
    return [f"--{name.replace('_', '-')}" for name, default in UNSUPPORTED.items()
            if getattr(args, name, default) != default]


def torch_mlp(sizes: list[int], activation: str, dropout: float, seed: int) -> nn.Sequential:
    """descend's ``mlp(sizes, ...)`` with its initial weights, as float32 torch layers."""
    layers: list[nn.Module] = []
    for layer in mlp(sizes, activation=activation, dropout=dropout, rng=seed):
        if isinstance(layer, Linear):
            lin = nn.Linear(layer.in_features, layer.out_features)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(np.asarray(layer.weight.data)))
                lin.bias.copy_(torch.from_numpy(np.asarray(layer.bias.data)))
            layers.append(lin)
        elif isinstance(layer, Dropout):
            layers.append(nn.Dropout(layer.p))
        else:
            layers.append(_ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


def _metrics(model: nn.Module, X: torch.Tensor, y: torch.Tensor,
             loss_fn: Callable[..., torch.Tensor]) -> dict[str, float]:
    """The loss, and for class targets the accuracy, in evaluation mode."""
    was = model.training
    model.eval()
    with torch.no_grad():
        out = model(X)
        metrics = {"loss": loss_fn(out, y).item()}
        if not y.is_floating_point():
            metrics["accuracy"] = (out.argmax(1) == y).double().mean().item()
    model.train(was)
    return metrics


def train(args: argparse.Namespace, rule: Any, sizes: list[int], X_train: np.ndarray,
          y_train: np.ndarray, X_val: np.ndarray, y_val: np.ndarray, *,
          out: TextIO = sys.stdout) -> tuple[Any, dict[str, float], dict[str, float], float]:
    """Train as ``descend train`` does; (the History, train and validation metrics, the
    seconds of training), which the command line reports. Integer targets are classes
    (cross-entropy), floating ones a regression (mean squared error, targets of shape
    (n, 1)). The loop is descend's (``train_steps``): the stopping criteria, the validation
    metrics after every epoch (``--patience`` reads them), the divergence rule and Ctrl-C
    are those of the NumPy engine. Messages go to ``out``."""
    # --threads, as for the NumPy engine's BLAS: more intra-op threads than free cores
    # make every parallel region wait for a descheduled thread
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = torch_mlp(sizes, args.activation, args.dropout, args.seed)
    params = list(model.parameters())
    opt = make_optimizer(args.optimizer, params, rule, namespace=TORCH,
                         **optimizer_options(args))
    regression = np.asarray(y_train).dtype.kind == "f"
    target_type = np.float32 if regression else np.int64
    loss_fn = nn.functional.mse_loss if regression else nn.functional.cross_entropy
    Xt = torch.from_numpy(X_train)
    yt = torch.from_numpy(np.asarray(y_train, dtype=target_type))
    Xv = torch.from_numpy(X_val)
    yv = torch.from_numpy(np.asarray(y_val, dtype=target_type))
    n = len(Xt)
    batch = n if args.batch_size is None else args.batch_size
    per_epoch = math.ceil(n / batch)  # train_steps gives it to the optimizer
    print(f"model: MLP {'-'.join(map(str, sizes))} ({args.activation}), "
          f"{sum(p.numel() for p in params):,} parameters, PyTorch {torch.__version__}",
          file=out)
    print(f"optimizer: descend.torch.{type(opt).__name__}, lr={rule!r}, "
          f"{'full batch' if args.batch_size is None else f'batch {batch}'}, seed {args.seed}",
          file=out, flush=True)
    order = np.random.default_rng(args.seed)

    closure = _closure_maker(args, model, loss_fn)

    def batches() -> Iterator[tuple[Callable[[], Any], int]]:
        perm = torch.from_numpy(order.permutation(n)) if args.batch_size else torch.arange(n)
        for start in range(0, n, batch):
            idx = perm[start:start + batch]
            yield closure(Xt[idx], yt[idx]), len(idx)

    stop = stop_when(args)
    started = time.perf_counter()
    try:
        history = train_steps(opt, batches, epochs=args.epochs,
                              steps_per_epoch=per_epoch, stop=stop,
                              progress=not args.quiet, model=model,
                              validate=lambda: _metrics(model, Xv, yv, loss_fn),
                              same_batch=args.batch_size is None)
    except KeyboardInterrupt as exc:  # reported like any other stop: the caller exits 130
        history = getattr(exc, "history", None)
        if history is None:
            raise
    seconds = time.perf_counter() - started
    return (history, _metrics(model, Xt, yt, loss_fn), _metrics(model, Xv, yv, loss_fn),
            seconds)


def _closure_maker(args: argparse.Namespace, model: nn.Module,
                   loss_fn: Callable[..., torch.Tensor]) -> Callable[..., Callable[[], Any]]:
    """batch -> the step's closure, with ``--compile`` (the model through
    ``torch.compile``), ``--amp bf16`` (the forward pass under bf16 autocast, the loss in
    float32) and ``--accumulate N`` (:func:`descend.torch.accumulate` over N micro-batches,
    weighted by their sizes)."""
    forward = torch.compile(model) if getattr(args, "compile", False) else model
    amp = getattr(args, "amp", None)
    parts = getattr(args, "accumulate", 1)

    def loss(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        if amp == "bf16":
            with torch.autocast(xb.device.type, dtype=torch.bfloat16):
                out = forward(xb)
            return loss_fn(out.float(), yb)
        return loss_fn(forward(xb), yb)

    def make(xb: torch.Tensor, yb: torch.Tensor) -> Callable[[], Any]:
        if parts == 1:
            return lambda: loss(xb, yb)
        chunks = [(a, b) for a, b in zip(torch.tensor_split(xb, parts),
                                         torch.tensor_split(yb, parts)) if len(a)]
        return accumulate([lambda a=a, b=b: loss(a, b) for a, b in chunks],
                          [len(a) / len(xb) for a, _ in chunks])

    return make
