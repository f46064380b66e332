"""``descend train --engine torch``: the same job as ``descend train``, run through PyTorch.

The MLP is built by descend (same sizes, activation, dropout and initial weights for a given
seed) and copied into ``torch.nn`` layers; the optimizer is ``descend.torch``'s, with the
step rule parsed from ``--lr`` exactly as for the NumPy engine. The loop is a plain PyTorch
loop: seeded shuffles, ``opt.step(closure)``, a line per epoch.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from ..nn import Dropout, Linear, mlp
from ..train import StopWhen, train_steps
from .optimizers import CG, GD, LBFGS, Adam, Subgradient

#: ``descend train`` flags this engine does not take (their value when not given)
UNSUPPORTED = {"checkpoint": None, "resume": None}

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


def _metrics(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    was = model.training
    model.eval()
    with torch.no_grad():
        out = model(X)
        loss = nn.functional.cross_entropy(out, y).item()
        accuracy = (out.argmax(1) == y).double().mean().item()
    model.train(was)
    return {"loss": loss, "accuracy": accuracy}


def train(args: argparse.Namespace, rule: Any, sizes: list[int], X_train: np.ndarray,
          y_train: np.ndarray, X_val: np.ndarray,
          y_val: np.ndarray) -> tuple[Any, dict[str, float], dict[str, float], float]:
    """Train as ``descend train`` does; (the History, train and validation metrics, the
    seconds of training), which the command line reports."""
    # --threads, as for the NumPy engine's BLAS: more intra-op threads than free cores
    # make every parallel region wait for a descheduled thread
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = torch_mlp(sizes, args.activation, args.dropout, args.seed)
    params = list(model.parameters())
    if args.optimizer == "gd":
        opt: Any = GD(params, lr=rule, momentum=args.momentum, nesterov=args.nesterov,
                      weight_decay=args.weight_decay)
    elif args.optimizer == "adam":
        opt = Adam(params, lr=rule, weight_decay=args.weight_decay)
    elif args.optimizer == "lbfgs":
        opt = LBFGS(params, lr=rule, history_size=args.history_size or 10,
                    weight_decay=args.weight_decay)
    elif args.optimizer == "cg":
        opt = CG(params, lr=rule, beta=args.beta or "PR+", weight_decay=args.weight_decay)
    else:
        opt = Subgradient(params, lr=rule, weight_decay=args.weight_decay)
    Xt, yt = torch.from_numpy(X_train), torch.from_numpy(np.asarray(y_train, dtype=np.int64))
    Xv, yv = torch.from_numpy(X_val), torch.from_numpy(np.asarray(y_val, dtype=np.int64))
    n = len(Xt)
    batch = n if args.batch_size is None else args.batch_size
    opt.steps_per_epoch = math.ceil(n / batch)
    print(f"model: MLP {'-'.join(map(str, sizes))} ({args.activation}), "
          f"{sum(p.numel() for p in params):,} parameters, PyTorch {torch.__version__}")
    print(f"optimizer: descend.torch.{type(opt).__name__}, lr={rule!r}, "
          f"{'full batch' if args.batch_size is None else f'batch {batch}'}, seed {args.seed}",
          flush=True)
    order = np.random.default_rng(args.seed)

    def batches() -> Iterator[tuple[Callable[[], Any], int]]:
        perm = torch.from_numpy(order.permutation(n)) if args.batch_size else torch.arange(n)
        for start in range(0, n, batch):
            idx = perm[start:start + batch]
            xb, yb = Xt[idx], yt[idx]
            yield (lambda xb=xb, yb=yb: nn.functional.cross_entropy(model(xb), yb)), len(idx)

    stop = StopWhen(max_steps=args.max_steps, loss_below=args.loss_below,
                    grad_norm_below=args.grad_norm_below,
                    rel_loss_change_below=args.rel_change_below,
                    param_change_below=args.param_change_below, patience=args.patience,
                    time_limit=args.time_limit)
    started = time.perf_counter()
    history = train_steps(opt, batches, epochs=args.epochs,
                          steps_per_epoch=opt.steps_per_epoch, stop=stop,
                          progress=not args.quiet)
    seconds = time.perf_counter() - started
    return history, _metrics(model, Xt, yt), _metrics(model, Xv, yv), seconds
