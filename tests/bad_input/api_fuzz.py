"""The machinery of the public-API fuzz: which callables, which values, which outcomes pass.

Every public function and constructor (from the packages' ``__all__``) is called with
arguments drawn from bad values (wrong types, shapes, NaN/inf, negative, huge, empty, wrong
dtypes) mixed with plausible ones, so that later arguments are reached too. An outcome passes
when the call returns, or raises one of descend's own errors, or raises a ``TypeError`` /
``ValueError`` from descend's own code whose message names one of the arguments.
"""

from __future__ import annotations

import importlib
import inspect
import math
import os
import signal
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np
from hypothesis import strategies as st

import descend as ds
from descend.errors import DescendError

SRC = os.path.dirname(ds.__file__)

PACKAGES = {
    "descend": ds,
    "descend.nn": ds.nn,
    "descend.optim": ds.optim,
    "descend.optim.extend": importlib.import_module("descend.optim.extend"),
    "descend.train": ds.train,
    "descend.linesearch": ds.linesearch,
    "descend.data": ds.data,
    "descend.problems": ds.problems,
    "descend.functional": ds.functional,
}

#: Public names that are not functions or constructors to fuzz, with the reason.
SKIP = {
    # typed records and enums: plain containers of what descend computed, not input checkers
    "LoadResult", "Best", "EpochRecord", "StopReason", "StepInfo", "StepChoice", "StepContext",
    "LineSearchResult", "LineSearchStatus", "Problem", "Needs", "STOP_REASONS",
    "DirectionStatus", "Feedback", "MomoModel",
    # abstract bases and protocols: subclassed, not called with data
    "Module", "Optimizer", "StepRule", "Direction", "Schedule", "Callback", "MetricObserver",
    "StatelessRule", "PointObserver", "DirectionProvider", "ModelSource",
    # rule authors' rounding guards, read on every step with the optimizer's own StepContext
    "working_precision", "gradient_is_noise", "flat_start",
    # context managers and global switches that take no data
    "no_grad", "enable_grad", "is_grad_enabled",
    # modules and constants re-exported as names
    "F", "data", "errors", "functional", "linesearch", "nn", "optim", "problems", "train",
    "init", "PROBLEMS", "__version__",
}


def public_callables() -> list[tuple[str, Callable[..., Any]]]:
    out = {}
    for pkg_name, pkg in PACKAGES.items():
        for name in getattr(pkg, "__all__", ()):
            if name in SKIP:
                continue
            obj = getattr(pkg, name)
            if callable(obj) and not inspect.ismodule(obj):
                out.setdefault(name, (f"{pkg_name}.{name}", obj))
    return sorted(out.values())


def _model() -> Any:
    return ds.nn.Sequential(ds.nn.Linear(3, 2, rng=0))


def _params() -> list[Any]:
    return list(ds.nn.Linear(3, 2, rng=0).parameters())


# Bad values: each a factory, so that no object is shared between calls.
BAD: list[tuple[str, Callable[[], Any]]] = [
    ("None", lambda: None),
    ("True", lambda: True),
    ("str", lambda: "x"),
    ("-1", lambda: -1),
    ("0", lambda: 0),
    ("huge int", lambda: 10**30),
    ("2**63", lambda: 2**63),
    ("nan", lambda: math.nan),
    ("inf", lambda: math.inf),
    ("-inf", lambda: -math.inf),
    ("-0.5", lambda: -0.5),
    ("1e308", lambda: 1e308),
    ("complex", lambda: 1j),
    ("empty list", lambda: []),
    ("empty dict", lambda: {}),
    ("object", lambda: object()),
    ("empty array", lambda: np.array([], dtype=np.float32)),
    ("nan array", lambda: np.array([[math.nan, 1.0]], dtype=np.float32)),
    ("3-d array", lambda: np.zeros((2, 3, 4), dtype=np.float32)),
    ("str array", lambda: np.array(["a", "b"])),
    ("complex array", lambda: np.array([1 + 1j, 2.0])),
    ("object array with None", lambda: np.array([1.0, None], dtype=object)),
    ("int array", lambda: np.array([[1, 2, 3]], dtype=np.int64)),
    ("nan tensor", lambda: ds.tensor([math.nan, 1.0], requires_grad=True)),
    ("empty tensor", lambda: ds.tensor(np.zeros((0, 3), dtype=np.float32))),
    ("callable returning None", lambda: (lambda *a, **k: None)),
    ("tuple of None", lambda: (None, None)),
]

# Plausible values, so that calls get past their first argument.
PLAUSIBLE: list[tuple[str, Callable[[], Any]]] = [
    ("2", lambda: 2),
    ("0.5", lambda: 0.5),
    ("array (4, 3)", lambda: np.ones((4, 3), dtype=np.float32)),
    ("labels (4,)", lambda: np.array([0, 1, 0, 1])),
    ("tensor (4, 3)", lambda: ds.tensor(np.ones((4, 3), dtype=np.float32), requires_grad=True)),
    ("parameters", _params),
    ("model", _model),
    ("loss", lambda: ds.nn.MSELoss()),
]

BAD_NAMES = [n for n, _ in BAD]
VALUE = {n: f for n, f in BAD + PLAUSIBLE}


def arguments(fn: Callable[..., Any]) -> list[inspect.Parameter]:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return []
    return [p for p in sig.parameters.values()
            if p.kind is not inspect.Parameter.VAR_KEYWORD and p.name != "self"]


def draw_call(data: st.DataObject, fn: Callable[..., Any],
              only: dict[str, set[str]] | None = None) -> dict[str, str]:
    """Per argument, the name of the value to pass ("default" keeps the default); one
    argument (outside ``only``, which pins arguments to the named values) gets a bad value."""
    params = arguments(fn)
    only = only or {}
    if not params:
        return {}
    free = [p.name for p in params if p.name not in only] or [params[0].name]
    bad_at = data.draw(st.sampled_from(free), label="bad argument")
    plan = {}
    for p in params:
        if p.name in only:
            choices = sorted(only[p.name])
        elif p.name == bad_at:
            choices = list(BAD_NAMES)
        else:
            choices = [n for n, _ in PLAUSIBLE] + list(BAD_NAMES)
            if p.default is not inspect.Parameter.empty:
                choices = ["default", *choices]
        plan[p.name] = data.draw(st.sampled_from(choices), label=p.name)
    return plan


#: The callables passed to the last call: what they raise when descend calls them is theirs.
LAST_CALLABLES: list[Any] = []


class Hang(Exception):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise Hang


def call(fn: Callable[..., Any], plan: dict[str, str], seconds: int = 30) -> Any:
    """Call ``fn`` by ``plan``; the result, or the exception raised (a Hang past
    ``seconds``)."""
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    skipped = False  # after an argument left to its default, the rest go by keyword
    for p in arguments(fn):
        choice = plan.get(p.name, "default")
        if choice == "default":
            skipped = True
            continue
        value = VALUE[choice]()
        if p.kind is inspect.Parameter.VAR_POSITIONAL:
            if not skipped:
                args.append(value)
        elif p.kind is inspect.Parameter.POSITIONAL_ONLY or (
                p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD and not skipped):
            args.append(value)
        else:
            kwargs[p.name] = value
    LAST_CALLABLES[:] = [v for v in (*args, *kwargs.values()) if callable(v)]
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(seconds)
    try:
        return fn(*args, **kwargs)
    except Hang:
        return Hang(f"no answer within {seconds} s")
    except Exception as exc:
        return exc
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def raised_by_descend(exc: BaseException) -> bool:
    """Whether the innermost frame of the traceback is descend's own code."""
    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and frames[-1].filename.startswith(SRC)


def raised_in_a_callable_passed_in(exc: BaseException) -> bool:
    """Whether the error came from calling one of the callables the call was given (a phi,
    a closure, a model called with the wrong arguments): the caller's error, passed on."""
    passed = [id(c) for c in LAST_CALLABLES]
    codes = {getattr(c, "__code__", None) for c in LAST_CALLABLES}
    tb = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code in codes or id(frame.f_locals.get("self")) in passed:
            return True
        tb = tb.tb_next
    return False


def verdict(fn: Callable[..., Any], plan: dict[str, str], outcome: Any) -> str | None:
    """None when the outcome is acceptable, else a description of the failure."""
    if not isinstance(outcome, BaseException):
        return None
    if isinstance(outcome, DescendError):
        return None
    if not isinstance(outcome, Hang) and raised_in_a_callable_passed_in(outcome):
        return None
    names = [p.name for p in arguments(fn)]
    if (type(outcome) in (TypeError, ValueError) and raised_by_descend(outcome)
            and any(n in str(outcome) for n in names)):
        return None
    frame = traceback.extract_tb(outcome.__traceback__)[-1] if outcome.__traceback__ else None
    where = f"{os.path.relpath(frame.filename, SRC)}:{frame.lineno}" if frame else "?"
    if frame and not frame.filename.startswith(SRC):
        where = f"{os.path.basename(frame.filename)}:{frame.lineno}"
    return (f"{plan} -> {type(outcome).__module__}.{type(outcome).__name__}: "
            f"{str(outcome)[:200]} (at {where})")
