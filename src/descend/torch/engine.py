"""The engine seam over torch tensors: what one optimizer step does to parameters.

:class:`TorchEngine` implements :class:`descend.engine.base.Engine` for torch parameters,
so the step rules, directions and the restriction of the loss to a line run unchanged.

* Parameters, gradients and directions stay on their device; only the scalars a rule reads
  come back to Python: the loss (one ``.item()``), and the per-parameter dot products of a
  reduction, gathered in one transfer per device and added on the host in parameter order.
* The parameters are double-buffered as in the NumPy engine: a trial point or an update is
  written into spare tensors which then become the parameters' storage (``p.data = buf``),
  so the start point x stays intact for the next trial and for ``undo``.
* Random state: the CPU generator and the generator of every CUDA device holding a parameter.
* Distributed data parallel: with a process group (``torch.distributed`` initialised, or one
  given), every loss value read is averaged over the group, so all ranks take the same
  decisions; gradients are left to ``DistributedDataParallel``.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.overrides import TorchFunctionMode

from ..engine.base import Engine, Vector
from ..errors import ConfigError, GradientError, ShapeError

#: whether this build of torch has torch.distributed (read once: the check is not free)
_DISTRIBUTED = dist.is_available()


def _gathered(terms: list[torch.Tensor]) -> list[torch.Tensor]:
    """The per-parameter reductions as plain tensors: those of sharded parameters
    (``DTensor``: FSDP2's ``fully_shard``, tensor parallelism) are partial on each rank,
    a sum or a norm of its shard, and are completed over the mesh, all of them in one
    collective per placement; the others are returned as they are."""
    if "torch.distributed.tensor" not in sys.modules:  # no DTensor exists (2 s to import)
        return terms
    from torch.distributed.tensor import DTensor

    sharded = [i for i, t in enumerate(terms) if isinstance(t, DTensor)]
    if not sharded:
        return terms
    out = list(terms)
    by_layout: dict[Any, list[int]] = {}
    for i in sharded:
        by_layout.setdefault((terms[i].device_mesh, terms[i].placements), []).append(i)
    for where in by_layout.values():
        full = torch.stack([terms[i] for i in where]).full_tensor()
        for i, value in zip(where, full):
            out[i] = value
    return out


class TorchEngine(Engine):
    """The :class:`~descend.engine.base.Engine` protocol over torch tensors.

    Parameters
    ----------
    params : sequence of torch.Tensor
        The optimizer's parameters, in its order: their devices and dtypes say where loaded
        state goes, and which CUDA generators belong to the random state. The optimizers of
        ``descend.torch`` make their engine before they read their parameters, and
        :meth:`bind` them once they have.
    process_group : torch.distributed.ProcessGroup or None
        The group losses are averaged over; None means the default group when
        ``torch.distributed`` is initialised, and no averaging otherwise.
    """

    name = "torch"
    arrays = "torch"

    def __init__(self, params: Sequence[torch.Tensor] = (), process_group: Any = None):
        self.process_group = process_group
        #: whether the last closure run with gradients called backward() itself
        self.closure_backward = False
        self._backward_done = False  # ... so that the next backward() is the closure's
        #: the loss scaling of the step under way (``step(closure, scaler=...)``), or None
        self.loss_scaling: LossScaling | None = None
        self.bind(params)

    def bind(self, params: Sequence[torch.Tensor]) -> None:
        """(Re)read the parameters' layout: devices, dtypes, shapes."""
        self.params = list(params)
        self.layout = [(p.device, p.dtype, p.shape) for p in self.params]
        self.cuda_devices = sorted({p.device.index if p.device.index is not None
                                    else torch.cuda.current_device()
                                    for p in self.params if p.device.type == "cuda"})
        self.on_cuda = bool(self.cuda_devices)

    # ---------------------------------------------------------------- vectors
    def _terms(self, a: Vector, b: Vector) -> list[float]:
        """The per-parameter dot products <a_i, b_i>, one host transfer per device."""
        if not a:
            return []
        squared = a is b
        if squared:  # <a_i, a_i> = ||a_i||^2: one foreach call (one launch on a GPU)
            terms = list(torch._foreach_norm(a))
        else:
            terms = [torch.dot(x.reshape(-1), y.reshape(-1)) if type(x) is torch.Tensor
                     # a sharded DTensor need not flatten (uneven shards): sum of products
                     else torch.sum(x * y) for x, y in zip(a, b)]
        terms = _gathered(terms)
        devices = {t.device for t in terms}
        out: list[float] = [0.0] * len(terms)
        for device in devices:
            where = range(len(terms)) if len(devices) == 1 else \
                [i for i, t in enumerate(terms) if t.device == device]
            values = torch.stack([terms[i] for i in where]).to(torch.float64)
            for i, v in zip(where, (values.square() if squared else values).tolist()):
                out[i] = v
        return out

    def dot(self, a: Vector, b: Vector) -> float:
        return sum(self._terms(a, b))

    def fdot(self, a: Vector, b: Vector) -> float:
        return math.fsum(self._terms(a, b))

    @staticmethod
    def clone(a: Vector) -> Vector:
        return [x.detach().clone() for x in a]

    @staticmethod
    def zeros_like(a: Vector) -> Vector:
        return [torch.zeros_like(x) for x in a]

    @staticmethod
    def sqrt(x: Any) -> Any:
        return torch.sqrt(x)

    @staticmethod
    def spare_like(spare: Vector | None, like: Vector) -> Vector:
        if spare is not None and len(spare) == len(like):
            for s, x in zip(spare, like):
                if (s.shape != x.shape or s.dtype != x.dtype or s.device != x.device
                        or s.data_ptr() == x.data_ptr()):
                    break
            else:
                return spare
        return [torch.empty_like(x) for x in like]

    def _axpy_into(self, out: Vector, x: Vector, alpha: float, d: Vector) -> None:
        """out_i <- x_i + alpha d_i, written into ``out``."""
        if self.on_cuda and len(out) > 1:
            # two fused launches beat one launch per parameter on a GPU
            torch._foreach_copy_(out, x)
            torch._foreach_add_(out, d, alpha=alpha)
            return
        for buf, xi, di in zip(out, x, d):
            torch.add(xi, di, alpha=alpha, out=buf)

    def place(self, params: Sequence[torch.Tensor], out: Vector, x: Vector, alpha: float,
              d: Vector) -> None:
        self._axpy_into(out, x, alpha, d)
        self.assign(params, out)

    def shift(self, params: Sequence[torch.Tensor], alpha: float, d: Vector) -> None:
        values = [p.data for p in params]
        if self.on_cuda and len(values) > 1:
            torch._foreach_add_(values, d, alpha=alpha)
            return
        for x, di in zip(values, d):
            x.add_(di, alpha=alpha)

    @staticmethod
    def copy_into(dst: Vector, src: Vector) -> None:
        torch._foreach_copy_(dst, src)

    @staticmethod
    def to_state(a: Vector) -> Vector:
        """Detached copies on their devices (torch's ``state_dict`` keeps tensors)."""
        return [x.detach().clone() for x in a]

    def from_state(self, arrays: Sequence[Any], like: Vector | None = None) -> Vector:
        """Tensors of saved state, each on its parameter's device and in its dtype.

        ``arrays`` (tensors or NumPy arrays) with one entry per parameter are placed like
        the parameters (or like ``like``); other state goes to the first parameter's device.
        """
        if like is not None:
            layout = [(x.device, x.dtype, x.shape) for x in like]
        elif len(arrays) == len(self.layout):
            layout = self.layout
        else:
            layout = [(self.layout[0][0], None, None)] * len(arrays)
        out = []
        for i, (a, (device, dtype, shape)) in enumerate(zip(arrays, layout)):
            t = a if isinstance(a, torch.Tensor) else torch.as_tensor(np.asarray(a))
            if shape is not None and t.shape != shape:
                raise ShapeError(f"saved optimizer state {i} has shape {tuple(t.shape)}, "
                                 f"the parameter has shape {tuple(shape)}")
            if dtype is not None and not t.is_floating_point():
                dtype = t.dtype
            out.append(t.detach().to(device=device, dtype=dtype, copy=True))
        return out

    # ---------------------------------------------------------------- parameters
    @staticmethod
    def values(params: Sequence[torch.Tensor]) -> Vector:
        return [p.data for p in params]

    @staticmethod
    def assign(params: Sequence[torch.Tensor], values: Vector) -> None:
        # a storage swap, not a copy: the Parameter objects (and everything holding them:
        # modules, DDP's reducer, hooks) stay the same
        for p, x in zip(params, values):
            p.data = x

    @staticmethod
    def grads(params: Sequence[torch.Tensor]) -> Vector:
        return [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]

    @staticmethod
    def set_grads(params: Sequence[torch.Tensor], grads: Vector) -> None:
        for p, g in zip(params, grads):
            p.grad = g

    @staticmethod
    def zero_grad(params: Sequence[torch.Tensor]) -> None:
        for p in params:
            p.grad = None

    # ---------------------------------------------------------------- closures
    def group(self) -> Any:
        """The process group losses are averaged over, or None."""
        if self.process_group is not None:
            return self.process_group
        if _DISTRIBUTED and dist.is_initialized():
            return dist.group.WORLD
        return None

    def _read(self, loss: Any) -> float:
        """The loss value, averaged over the process group when there is one."""
        if not isinstance(loss, torch.Tensor):
            raise TypeError("the closure must return the loss as a torch.Tensor, got "
                            f"{type(loss).__name__}")
        if loss.numel() != 1:
            raise ShapeError("the closure must return a scalar loss, got shape "
                             f"{tuple(loss.shape)}")
        group = self.group()
        if group is None:
            return loss.detach().item()
        # float64 so that the mean of the ranks' losses is the whole batch's loss to rounding
        total = loss.detach().reshape(1).to(torch.float64)
        dist.all_reduce(total, op=dist.ReduceOp.SUM, group=group)
        return total.item() / dist.get_world_size(group)

    def forward(self, closure: Callable[[], Any]) -> tuple[Any, float]:
        """Run the closure with gradients: (its loss, the value).

        A closure that calls ``backward()`` itself (torch's convention: the gradients are
        there when it returns, as :meth:`evaluate` left none) is accepted, its backward
        pass being the step's: :attr:`closure_backward` says so, and :meth:`value` then
        drops the backward calls of the trials."""
        torch.clear_autocast_cache()  # see value()
        with torch.enable_grad():
            loss = closure()
        value = self._read(loss)
        called = any(p.grad is not None for p in self.params)
        self.closure_backward = self._backward_done = called
        if called:
            if self.loss_scaling is not None:
                raise ConfigError(
                    "step(closure, scaler=...) calls backward on the scaled loss itself: "
                    "the closure must return the loss without calling backward")
            return loss, value
        if not loss.requires_grad:
            raise GradientError(
                "the closure's loss does not depend on the optimizer's parameters "
                "(it does not require grad)"
            )
        return loss, value

    def backward(self, loss: Any) -> None:
        if self._backward_done:  # the closure's own backward pass was this one
            self._backward_done = False
            return
        if self.loss_scaling is not None:
            self.loss_scaling.backward(loss, self.params)
            return
        loss.backward()

    def value(self, closure: Callable[[], Any]) -> float:
        """The closure's loss at a trial point, forward only.

        The casts ``torch.autocast`` keeps of the parameters are dropped first: inside
        one autocast region it reuses a parameter's low-precision copy, which would be
        the step's start point's, not the trial point's. A closure that calls backward
        runs under :class:`DropBackward` (its backward calls do nothing)."""
        torch.clear_autocast_cache()
        with torch.no_grad(), DropBackward() if self.closure_backward else nullcontext():
            return self._read(closure())

    def loss_object(self, value: float, like: Any = None) -> Any:
        device, dtype, _ = self.layout[0]
        return torch.tensor(value, dtype=dtype, device=device)

    # ---------------------------------------------------------------- random state
    def rng_snapshot(self) -> Any:
        cuda = tuple(torch.cuda.get_rng_state(d) for d in self.cuda_devices)
        return torch.get_rng_state(), cuda

    def rng_restore(self, state: Any) -> None:
        cpu, cuda = state
        torch.set_rng_state(cpu)
        for d, s in zip(self.cuda_devices, cuda):
            torch.cuda.set_rng_state(s, d)

    @staticmethod
    def rng_same(a: Any, b: Any) -> bool:
        if a is None or b is None:
            return False
        return torch.equal(a[0], b[0]) and all(torch.equal(x, y) for x, y in zip(a[1], b[1]))


class DropBackward(TorchFunctionMode):
    """Inside it, ``Tensor.backward()`` and ``torch.autograd.backward()`` do nothing.

    Trial points of a closure that calls backward itself run under it, with
    ``torch.no_grad()``: the forward pass records no graph, and the closure's backward
    call, which would fail there (and is not needed: the trial reads the loss only),
    is dropped. ``dropped`` counts them."""

    def __init__(self) -> None:
        super().__init__()
        self.dropped = 0

    def __torch_function__(self, func: Any, types: Any, args: tuple = (),
                           kwargs: dict | None = None) -> Any:
        if func is torch.Tensor.backward or func is torch.autograd.backward:
            self.dropped += 1
            return None
        return func(*args, **(kwargs or {}))


class LossScaling:
    """Backward passes on a scaled loss for one step, with a ``torch.amp.GradScaler``.

    The loss is multiplied by the scaler's scale S before backward, so that float16
    gradients do not underflow; the gradients are then divided by S (a power of two: the
    division is exact). The step's first backward pass is unscaled by the scaler's own
    ``unscale_(optimizer)``, which records for ``scaler.update()`` whether a gradient was
    not finite; the backward passes at trial points (strong Wolfe's) are unscaled here.
    A gradient that is not finite makes no update (``opt.last.finite`` False), as without
    scaling; ``scaler.update()`` then lowers the scale.
    """

    def __init__(self, scaler: Any, optimizer: Any):
        self.scaler = scaler
        self.optimizer = optimizer
        self.first = True

    def backward(self, loss: torch.Tensor, params: Sequence[torch.Tensor]) -> None:
        self.scaler.scale(loss).backward()
        if self.first:
            self.first = False
            self.scaler.unscale_(self.optimizer)
            return
        grads = [p.grad for p in params if p.grad is not None]
        if grads and self.scaler.is_enabled():
            torch._foreach_mul_(grads, 1.0 / self.scaler.get_scale())
