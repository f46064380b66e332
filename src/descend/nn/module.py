"""``Parameter`` and ``Module``: the PyTorch-like shell around models.

A Module registers the Parameters, sub-Modules and buffers assigned to its attributes, in
the order they are assigned, so ``parameters()`` and ``state_dict()`` walk a model in a fixed,
predictable order and dotted names (``"0.weight"``) address every entry.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from .. import backend
from ..autodiff.tensor import Tensor
from ..errors import CheckpointError, DTypeError, ShapeError

#: While a pass is being watched (``descend.plot.graph.record_graph``), a callable that runs
#: each module's call in its place, ``call_observer(module, args, kwargs)``, to note which
#: operations the module's forward made; None otherwise.
call_observer: Any = None


class Parameter(Tensor):
    """A Tensor that a Module owns and an optimizer updates; it always requires grad.

    Parameters
    ----------
    data : Tensor, ndarray, list or scalar
        The initial values. An ndarray or a Tensor's array is used as is (not copied), so
        in-place updates by an optimizer are seen by whoever else holds it. Floating data
        keeps its dtype; integer or boolean data is converted to float32.
    dtype : dtype, optional
        Override the dtype (must be floating).
    """

    __slots__ = ()

    def __init__(self, data: Any, dtype: Any = None):
        arr = data.data if isinstance(data, Tensor) else data
        arr = backend.as_array(arr, dtype)
        if arr.dtype.kind not in "f":
            if dtype is not None:
                raise DTypeError(f"a Parameter needs a floating dtype, got {arr.dtype}")
            arr = arr.astype(backend.DEFAULT_FLOAT)
        super().__init__(arr, requires_grad=True)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class LoadResult(NamedTuple):
    """What ``Module.load_state_dict`` did not match (both empty when ``strict=True``)."""

    missing_keys: list[str]
    unexpected_keys: list[str]


class Module:
    """Base class of layers and models.

    Subclasses call ``super().__init__()`` first, assign Parameters, sub-Modules and
    buffers as attributes, and define ``forward``. Calling the module calls ``forward``.

    Attributes
    ----------
    training : bool
        True in training mode (the default), False after ``eval()``; layers such as Dropout
        read it.
    """

    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "training", True)

    # ------------------------------------------------------------------ registration
    def __setattr__(self, name: str, value: Any) -> None:
        # Registered entries live both in their registry (for ordered walks) and in the
        # instance dict (so that reading self.weight in forward is a plain attribute read).
        registries = self.__dict__.get("_parameters")
        if registries is None:
            raise AttributeError(
                f"cannot assign {name!r} before Module.__init__() has run: call "
                "super().__init__() first in the subclass's __init__"
            )
        params, modules, buffers = self._parameters, self._modules, self._buffers
        if isinstance(value, Parameter):
            self._forget(name)
            params[name] = value
        elif isinstance(value, Module):
            self._forget(name)
            modules[name] = value
        elif name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign a {type(value).__name__} to parameter {name!r}: a "
                    "Parameter or None is expected"
                )
            params[name] = None
        elif name in modules:
            if value is not None:
                raise TypeError(
                    f"cannot assign a {type(value).__name__} to sub-module {name!r}: a "
                    "Module or None is expected"
                )
            modules[name] = None
        elif name in buffers:
            buffers[name] = None if value is None else _buffer_array(name, value)
            value = buffers[name]
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        self._forget(name)
        object.__delattr__(self, name)

    def _forget(self, name: str) -> None:
        for registry in (self._parameters, self._modules, self._buffers):
            registry.pop(name, None)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register ``param`` (or None, a placeholder such as a missing bias) as ``name``."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter expects a Parameter or None, got {param!r}")
        self._forget(name)
        self._parameters[name] = param
        object.__setattr__(self, name, param)

    def register_buffer(self, name: str, value: Any) -> None:
        """Register state that is saved in ``state_dict`` but not trained (e.g. running
        statistics): an ndarray, or None."""
        self._forget(name)
        array = None if value is None else _buffer_array(name, value)
        self._buffers[name] = array
        object.__setattr__(self, name, array)

    def add_module(self, name: str, module: Module | None) -> None:
        """Register ``module`` as a child named ``name``."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module expects a Module or None, got {module!r}")
        self._forget(name)
        self._modules[name] = module
        object.__setattr__(self, name, module)

    # ------------------------------------------------------------------ calling
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The computation; subclasses define it."""
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if call_observer is None:
            return self.forward(*args, **kwargs)
        return call_observer(self, args, kwargs)

    # ------------------------------------------------------------------ walking the tree
    def named_children(self) -> Iterator[tuple[str, Module]]:
        """(name, module) for each direct child, in registration order."""
        for name, module in self._modules.items():
            if module is not None:
                yield name, module

    def children(self) -> Iterator[Module]:
        """The direct children, in registration order."""
        for _, module in self.named_children():
            yield module

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """(dotted name, module) for this module (name ``prefix``, "" by default) and every
        descendant, depth first; a module reachable twice is listed once."""
        seen: set[int] = set()
        stack: list[tuple[str, Module]] = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            kids = [(_join(name, n), m) for n, m in module.named_children()]
            stack.extend(reversed(kids))

    def modules(self) -> Iterator[Module]:
        """This module and every descendant, depth first."""
        for _, module in self.named_modules():
            yield module

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """(dotted name, Parameter) for every parameter, e.g. ``("0.weight", W)``: a
        module's own parameters first, then its children's, in registration order. A
        parameter shared by several modules is listed once, under its first name."""
        seen: set[int] = set()
        for name, p in self._named_entries("_parameters", prefix):
            if id(p) not in seen:
                seen.add(id(p))
                yield name, p

    def parameters(self) -> Iterator[Parameter]:
        """Every Parameter, in the order of ``named_parameters``."""
        for _, p in self.named_parameters():
            yield p

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        """(dotted name, array) for every buffer that is not None."""
        yield from self._named_entries("_buffers", prefix)

    def buffers(self) -> Iterator[np.ndarray]:
        for _, b in self.named_buffers():
            yield b

    def _named_entries(self, registry: str, prefix: str) -> Iterator[tuple[str, Any]]:
        for mod_name, module in self.named_modules(prefix):
            for name, value in getattr(module, registry).items():
                if value is not None:
                    yield _join(mod_name, name), value

    def num_parameters(self, trainable_only: bool = False) -> int:
        """The number of scalar parameters (those requiring grad if ``trainable_only``)."""
        return sum(p.size for p in self.parameters() if p.requires_grad or not trainable_only)

    def apply(self, fn: Any) -> Module:
        """Call ``fn(module)`` on every descendant and then on this module; returns self."""
        for module in reversed(list(self.modules())):
            fn(module)
        return self

    # ------------------------------------------------------------------ training state
    def zero_grad(self) -> None:
        """Set the ``.grad`` of every parameter to None."""
        for p in self.parameters():
            p.grad = None

    def train(self, mode: bool = True) -> Module:
        """Set training mode (``mode=True``) or evaluation mode on this module and every
        descendant; returns self."""
        if not isinstance(mode, bool | np.bool_):
            raise TypeError(f"train(mode) expects a bool, got {mode!r}")
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self) -> Module:
        """Evaluation mode: ``train(False)``. Dropout becomes the identity."""
        return self.train(False)

    # ------------------------------------------------------------------ saving and loading
    def _state_entries(self) -> dict[str, tuple[Module, str, np.ndarray]]:
        """name -> (owning module, attribute, array) for every parameter and buffer:
        each module's own parameters, then its buffers, then its children's."""
        entries: dict[str, tuple[Module, str, np.ndarray]] = {}
        for mod_name, module in self.named_modules():
            for name, p in module._parameters.items():
                if p is not None:
                    entries[_join(mod_name, name)] = (module, name, p.data)
            for name, b in module._buffers.items():
                if b is not None:
                    entries[_join(mod_name, name)] = (module, name, b)
        return entries

    def state_dict(self) -> dict[str, np.ndarray]:
        """name -> a copy of the array of every parameter and buffer (dotted names, in the
        order of ``named_parameters``)."""
        return {name: array.copy() for name, (_, _, array) in self._state_entries().items()}

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> LoadResult:
        """Copy the arrays of ``state`` into this module's parameters and buffers, in place.

        The existing arrays are overwritten (cast to their dtype), never replaced, so an
        optimizer that holds the Parameters sees the loaded values. Nothing is changed
        unless every entry can be loaded.

        Parameters
        ----------
        state : mapping of name -> array
            As made by ``state_dict()``.
        strict : bool
            Whether a key missing from ``state`` or a key the model does not have is an
            error. With ``strict=False`` they are skipped and reported in the result.

        Returns
        -------
        LoadResult(missing_keys, unexpected_keys)

        Raises
        ------
        CheckpointError
            (a ValueError) with ``strict=True``, naming every missing and unexpected key.
        ShapeError
            naming every entry whose shape differs, e.g. ``0.weight: checkpoint has shape
            (10, 64), model has (32, 64)``.
        """
        if not isinstance(state, Mapping):
            raise TypeError(f"load_state_dict expects a mapping of name -> array, got {state!r}")
        entries = self._state_entries()
        missing = [k for k in entries if k not in state]
        unexpected = [k for k in state if k not in entries]
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append("missing keys " + ", ".join(map(repr, missing)))
            if unexpected:
                parts.append("unexpected keys " + ", ".join(map(repr, unexpected)))
            raise CheckpointError(
                f"load_state_dict: the state does not match {type(self).__name__}: "
                + "; ".join(parts)
            )
        values: list[tuple[np.ndarray, np.ndarray]] = []
        mismatched = []
        for name, (_, _, target) in entries.items():
            if name not in state:
                continue
            value = state[name]
            value = np.asarray(value.data if isinstance(value, Tensor) else value)
            if value.dtype.kind not in "biuf":
                raise TypeError(
                    f"load_state_dict: {name} has dtype {value.dtype}, expected numbers"
                )
            if value.shape != target.shape:
                mismatched.append(
                    f"{name}: checkpoint has shape {value.shape}, model has {target.shape}"
                )
            values.append((target, value))
        if mismatched:
            raise ShapeError("load_state_dict: shapes differ: " + "; ".join(mismatched))
        for target, value in values:
            np.copyto(target, value, casting="unsafe")
        return LoadResult(missing, unexpected)

    # ------------------------------------------------------------------ printing
    def extra_repr(self) -> str:
        """The text between the parentheses of this module's repr (its settings)."""
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        lines = [extra] if extra else []
        for name, module in self._modules.items():
            lines.append(f"({name}): " + repr(module).replace("\n", "\n  "))
        if not self._modules:
            return f"{type(self).__name__}({extra})"
        return type(self).__name__ + "(\n  " + "\n  ".join(lines) + "\n)"


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _buffer_array(name: str, value: Any) -> np.ndarray:
    if isinstance(value, Tensor):
        value = value.data
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"buffer {name!r} must hold numbers, got dtype {array.dtype}")
    return array
