"""Checkpoints: everything a run needs to continue exactly, written atomically and safely.

Format: a NumPy ``.npz`` archive read with ``allow_pickle=False`` (so opening a checkpoint
from an untrusted source never runs code). Arrays are stored under their own keys; all the
rest (counters, step-rule state, random generator states, history) is JSON kept in one
uint8 array under ``__meta__``. Every member of the archive carries a CRC, so a truncated or
corrupted file is detected when read.

Writing goes to a temporary file in the same folder, which is flushed, fsynced and then
renamed over the target: a crash during a write leaves the previous checkpoint intact (see
``descend._output``, the one place files are written). Reading checks every field of the
metadata by type and range, so a hand-edited file fails with one CheckpointError.

A training run's state is the typed record :class:`RunState`; :class:`Checkpointer`
writes it during a run and :func:`restore_run` loads it into a model, an optimizer and the
random generators (all or nothing) to continue bit for bit.
"""

from __future__ import annotations

import io
import json
import math
import numbers
import os
import zipfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import backend
from .._output import remove_stale_temporaries, target_kind, write_output
from ..errors import CheckpointError
from .history import Best, EpochRecord, History, StopReason

if TYPE_CHECKING:
    from ..optim.optimizer import Optimizer

FORMAT = "descend-checkpoint"
VERSION = 1


# ------------------------------------------------------------------ nested state <-> arrays
def flatten_state(obj: Any, prefix: str, arrays: dict[str, np.ndarray]) -> Any:
    """Replace every ndarray in a nested dict/list by ``{"__array__": key}``, storing it."""
    if isinstance(obj, np.ndarray):
        key = prefix
        arrays[key] = obj
        return {"__array__": key}
    if isinstance(obj, dict):
        return {str(k): flatten_state(v, f"{prefix}/{k}", arrays) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [flatten_state(v, f"{prefix}/{i}", arrays) for i, v in enumerate(obj)]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return {"__float__": repr(obj)}
    return obj


def unflatten_state(obj: Any, arrays: Any) -> Any:
    """The inverse of :func:`flatten_state`."""
    if isinstance(obj, dict):
        if set(obj) == {"__array__"}:
            return np.array(arrays[obj["__array__"]])
        if set(obj) == {"__float__"}:
            return float(obj["__float__"])
        return {k: unflatten_state(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list):
        return [unflatten_state(v, arrays) for v in obj]
    return obj


# --------------------------------------------------------------------------- history
def history_to_state(history: History) -> dict[str, Any]:
    return {
        "columns": {c: np.asarray(getattr(history, c), dtype=np.float64)
                    for c in History.STEP_COLUMNS},
        "epochs": [asdict(e) for e in history.epochs],
        "best": None if history.best is None else {
            "epoch": history.best.epoch, "step": history.best.step, "loss": history.best.loss,
            "state": history.best.state},
        "seconds": history.seconds,
        "stop_reason": None if history.stop_reason is None else asdict(history.stop_reason),
    }


def history_from_state(state: dict[str, Any]) -> History:
    h = History()
    for c in History.STEP_COLUMNS:
        values = np.asarray(state["columns"][c]).tolist()
        if c == "evaluations":
            values = [int(v) for v in values]
        setattr(h, c, values)
    h.epochs = [EpochRecord(**e) for e in state["epochs"]]
    best = state["best"]
    if best is not None:
        h.best = Best(int(best["epoch"]), int(best["step"]), float(best["loss"]), best["state"])
    h.seconds = float(state["seconds"])
    if state["stop_reason"] is not None:
        h.stop_reason = StopReason(**state["stop_reason"])
    return h


# --------------------------------------------------------------------------- files
def check_checkpoint_target(path: str | Path, *, resume: str | Path | None = None,
                            overwrite: bool = False) -> Path:
    """Refuse to start a run whose checkpoint would replace one that exists already.

    A fresh run (``resume=None``) pointed at an existing checkpoint would overwrite it at
    its first save, losing the run it holds. That is refused unless ``overwrite=True``; a
    run resumed from ``path`` itself continues it and may write there. The target must also
    be writable as a checkpoint: not a directory or other non-regular file, in an existing
    folder, with a name the file system can hold.

    Parameters
    ----------
    path : str or Path
        Where the run will write its checkpoint.
    resume : str or Path, optional
        The checkpoint the run continues, if any.
    overwrite : bool, default False
        Allow replacing an existing checkpoint at ``path`` that the run does not continue.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    CheckpointError
        ``path`` holds a checkpoint the run would destroy, or cannot be written.
    """
    if not isinstance(overwrite, bool):
        raise TypeError(f"overwrite must be True or False, got {overwrite!r}")
    path = Path(path)
    kind = target_kind(path, what="checkpoint", error=CheckpointError)
    if kind != "regular" or overwrite:
        return path
    if resume is not None:
        try:
            if os.path.samefile(path, resume):
                return path
        except OSError:
            pass  # the resumed checkpoint is checked when it is read
    raise CheckpointError(
        f"checkpoint {path} already exists; a new run would overwrite it. Continue that run "
        f"with --resume {path} (resume={str(path)!r} in fit), or replace it on purpose with "
        "--overwrite (overwrite=True in fit)"
    )


def save_checkpoint(path: str | Path, payload: dict[str, Any], *,
                    overwrite: bool = True) -> Path:
    """Write ``payload`` (nested dicts/lists of JSON values and ndarrays) atomically.

    A regular file is replaced by rename after the new content is on disk, so any failure
    (a kill, a full disk, a file-size limit, a read-only folder) leaves the previous
    checkpoint intact; a device or FIFO is written in place; a directory is refused. With
    ``overwrite=False`` an existing checkpoint is refused (see
    :func:`check_checkpoint_target`).

    Raises
    ------
    CheckpointError
        The target is not writable (one line naming the file and the cause).
    """
    path = Path(path)
    if not overwrite:
        check_checkpoint_target(path)
    arrays: dict[str, np.ndarray] = {}
    meta = {"format": FORMAT, "version": VERSION,
            "payload": flatten_state(payload, "a", arrays)}
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    write_output(path, lambda fh: np.savez(fh, **arrays), what="checkpoint",
                 error=CheckpointError)
    return path


def load_checkpoint(path: str | Path, *, training: bool = True) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`; never unpickles anything.

    With ``training=True`` (the default) the payload must be the state of a training run
    as ``fit`` writes it, and every field is checked by type and range
    (:func:`validate_training_state`), so a hand-edited or damaged file is refused before any
    of it reaches a model or an optimizer. ``training=False`` returns any payload.

    Raises CheckpointError for a missing, truncated, corrupted, foreign, newer or invalid
    file."""
    path = Path(path)
    remove_stale_temporaries(path)  # left by a writer that was killed mid-write
    try:
        exists = path.exists()
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc.strerror}") from None
    if not exists:
        raise CheckpointError(f"no such checkpoint: {path}")
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a directory, expected a file")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc.strerror}") from None
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as exc:
        raise CheckpointError(
            f"checkpoint {path} is truncated or corrupted ({type(exc).__name__}: {exc})"
        ) from None
    except Exception as exc:  # zlib/CRC errors surface under several types
        raise CheckpointError(f"checkpoint {path} is corrupted ({type(exc).__name__})") from None
    if "__meta__" not in arrays:
        raise CheckpointError(f"{path} is not a descend checkpoint (no metadata)")
    try:
        meta = json.loads(arrays.pop("__meta__").tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise CheckpointError(f"checkpoint {path} has corrupted metadata") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a descend checkpoint")
    version = meta.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format version {version}, newer than this descend "
            f"reads (version {VERSION}); upgrade descend to open it"
        )
    if "payload" not in meta:
        raise CheckpointError(f"checkpoint {path} has no payload")
    try:
        payload = unflatten_state(meta["payload"], arrays)
    except (KeyError, TypeError) as exc:
        raise CheckpointError(f"checkpoint {path} is missing the array {exc}") from None
    except RecursionError:
        raise CheckpointError(f"checkpoint {path} has metadata nested too deeply") from None
    except (ValueError, OverflowError) as exc:  # e.g. {"__float__": "x"}
        raise CheckpointError(f"checkpoint {path} has corrupted metadata ({exc})") from None
    if training:
        validate_training_state(path, payload)
    return payload


def check_model_state(path: str | Path, saved: dict[str, np.ndarray], model: Any) -> None:
    """Refuse a checkpoint whose parameters do not match ``model`` (before touching it)."""
    current = model.state_dict()
    missing = [k for k in current if k not in saved]
    extra = [k for k in saved if k not in current]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:5])}")
        if extra:
            parts.append(f"unexpected {', '.join(extra[:5])}")
        raise CheckpointError(
            f"checkpoint {path} is from another model architecture: {'; '.join(parts)}"
        )
    for k, v in current.items():
        if np.shape(saved[k]) != np.shape(v):
            raise CheckpointError(
                f"checkpoint {path} is from another model architecture: {k} has shape "
                f"{np.shape(saved[k])} in the checkpoint, {np.shape(v)} in the model"
            )


# --------------------------------------------------------------------------- run state
def module_rngs(model: Any) -> dict[str, np.random.Generator]:
    """The generators owned by the model's modules (e.g. seeded Dropout layers), by module
    name (``"<root>"`` for the model itself); none for a model without ``named_modules``."""
    named = getattr(model, "named_modules", None)
    if named is None:
        return {}
    return {name or "<root>": m.rng for name, m in named()
            if isinstance(getattr(m, "rng", None), np.random.Generator)}


@dataclass
class RunState:
    """Everything a training run needs to continue exactly: a training checkpoint's payload.

    Attributes (in the order they are written)
    ----------
    epoch, steps_in_epoch : int
        Where the run continues: ``epoch`` epochs completed, and ``steps_in_epoch`` steps of
        the next one already taken.
    seed : int
        The run's seed.
    epoch_rng : dict
        The shuffling generator's state at the start of the epoch under way (its batches
        are drawn again, and the steps already taken skipped).
    global_rng, module_rngs : dict
        descend's global generator's state; the states of the model's own generators
        (:func:`module_rngs`), by module name.
    model, optimizer : dict
        Their ``state_dict()``.
    optimizer_type : str
        The optimizer's class name (a checkpoint resumes with the same kind).
    history : History
        What the run recorded so far.
    config : dict
        JSON-able settings of the caller (the command line keeps its flags there).
    """

    epoch: int
    steps_in_epoch: int
    seed: int
    epoch_rng: dict[str, Any]
    global_rng: dict[str, Any]
    module_rngs: dict[str, dict[str, Any]]
    model: dict[str, np.ndarray]
    optimizer: dict[str, Any]
    optimizer_type: str
    history: History
    config: dict[str, Any]

    @classmethod
    def of(cls, model: Any, optimizer: Optimizer, history: History, *, epoch: int,
           steps_in_epoch: int, epoch_rng: dict[str, Any], seed: int,
           config: dict[str, Any] | None) -> RunState:
        """The state of a run now (the generators' states read at this moment)."""
        return cls(
            epoch=epoch, steps_in_epoch=steps_in_epoch, seed=seed, epoch_rng=epoch_rng,
            global_rng=backend.global_rng().bit_generator.state,
            module_rngs={k: g.bit_generator.state for k, g in module_rngs(model).items()},
            model=model.state_dict(), optimizer=optimizer.state_dict(),
            optimizer_type=type(optimizer).__name__, history=history, config=config or {})

    def payload(self) -> dict[str, Any]:
        """The nested dict :func:`save_checkpoint` writes (the history as plain state)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["history"] = history_to_state(self.history)
        return out

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> RunState:
        """The record of a payload that :func:`validate_training_state` accepted."""
        state = {name: payload[name] for name in TRAINING_FIELDS}
        state["history"] = history_from_state(payload["history"])
        return cls(**state)

    def save(self, path: str | Path) -> Path:
        """Write the state atomically to ``path`` (see :func:`save_checkpoint`)."""
        return save_checkpoint(path, self.payload())

    @classmethod
    def read(cls, path: str | Path) -> RunState:
        """The state in the training checkpoint at ``path``, every field checked."""
        return cls.from_payload(load_checkpoint(path))


#: The fields of a training checkpoint, as ``fit`` writes them.
TRAINING_FIELDS = tuple(f.name for f in fields(RunState))


class Checkpointer:
    """Writes one run's checkpoints to ``path``: the parts fixed for the run are held, the
    position in the run is given to each :meth:`save`."""

    def __init__(self, path: Path, model: Any, optimizer: Optimizer,
                 config: dict[str, Any] | None, seed: int) -> None:
        self.path = path
        self.model = model
        self.optimizer = optimizer
        self.config = config
        self.seed = seed

    def save(self, history: History, epoch: int, steps_in_epoch: int,
             epoch_rng: dict[str, Any]) -> None:
        """Write the run's state, resumable at (``epoch``, ``steps_in_epoch``)."""
        RunState.of(self.model, self.optimizer, history, epoch=epoch,
                    steps_in_epoch=steps_in_epoch, epoch_rng=epoch_rng, seed=self.seed,
                    config=self.config).save(self.path)


def restore_run(path: str | Path, model: Any, optimizer: Optimizer,
                shuffle_rng: np.random.Generator) -> RunState:
    """Load the checkpoint at ``path`` into ``model``, ``optimizer`` and the generators
    (descend's global one, the model's own and ``shuffle_rng``); returns its state, whose
    history has no stop reason (the run goes on).

    Everything is checked before anything changes: the checkpoint's fields
    (:func:`validate_training_state`), the model's architecture, the optimizer's kind and
    state, the model's random layers. If the model refuses its parameters, the optimizer's
    state is put back.

    Raises
    ------
    CheckpointError
        The checkpoint cannot be read, is invalid, or does not fit the model or optimizer.
    """
    payload = load_checkpoint(path)
    try:
        check_model_state(path, payload["model"], model)
        if payload["optimizer_type"] != type(optimizer).__name__:
            raise CheckpointError(
                f"checkpoint {path} was written by a {payload['optimizer_type']} optimizer, "
                f"not {type(optimizer).__name__}"
            )
        rngs = module_rngs(model)
        if set(rngs) != set(payload["module_rngs"]):
            raise CheckpointError(f"checkpoint {path} does not match the model's random layers")
        for name, gen in rngs.items():  # each saved state fits its generator's kind
            type(gen.bit_generator)().state = payload["module_rngs"][name]
        state = RunState.from_payload(payload)
        previous = optimizer.state_dict()
        optimizer.load_state_dict(state.optimizer)
    except (KeyError, TypeError) as exc:
        raise CheckpointError(f"checkpoint {path} is incomplete or malformed ({exc})") from None
    except (ValueError, IndexError) as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"checkpoint {path} does not fit this optimizer: {exc}") from None
    try:
        model.load_state_dict(state.model)
    except Exception:
        optimizer.load_state_dict(previous)
        raise
    backend.global_rng().bit_generator.state = state.global_rng
    for name, gen in rngs.items():
        gen.bit_generator.state = state.module_rngs[name]
    shuffle_rng.bit_generator.state = state.epoch_rng
    state.history.stop_reason = None
    return state


def skip_done(batches: Iterator[Any], done: int, per_epoch: int | None, epoch: int) -> None:
    """Resuming mid-epoch: draw and drop the first ``done`` batches of ``epoch`` (the
    checkpoint's ``steps_in_epoch``), the batches the run had already taken.

    Raises
    ------
    CheckpointError
        ``done`` exceeds the steps an epoch of this data has.
    """
    if per_epoch is not None and done > per_epoch:
        raise CheckpointError(f"the checkpoint says {done} steps of epoch {epoch} were "
                              f"done, but an epoch of this data has {per_epoch} steps")
    for _ in range(done):
        if next(batches, None) is None:
            raise CheckpointError(f"the checkpoint says {done} steps of epoch {epoch} "
                                  "were done, but the data has fewer batches")


# --------------------------------------------------------------------------- validation

#: Bit generators a checkpoint may name (``default_rng`` makes PCG64).
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


class _Fields:
    """Checks of one checkpoint's fields; each failure names the file, the field and the
    value, as one CheckpointError."""

    def __init__(self, path: str | Path) -> None:
        self.path = path

    def fail(self, where: str, expected: str, value: Any) -> CheckpointError:
        shown = repr(value)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        return CheckpointError(
            f"checkpoint {self.path}: {where} must be {expected}, got {shown}")

    def dict(self, where: str, value: Any, keys: tuple[str, ...] | None = None) -> dict:
        if not isinstance(value, dict):
            raise self.fail(where, "a mapping", value)
        if keys is not None:
            missing = [k for k in keys if k not in value]
            if missing:
                raise CheckpointError(
                    f"checkpoint {self.path}: {where} lacks {', '.join(missing)}")
        return value

    def list(self, where: str, value: Any) -> list:
        if not isinstance(value, list):
            raise self.fail(where, "a list", value)
        return value

    def int(self, where: str, value: Any, low: int = 0) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(where, f"an integer >= {low}", value)
        if value < low:
            raise self.fail(where, f"an integer >= {low}", value)
        return value

    def number(self, where: str, value: Any, *, low: float | None = None,
               high: float | None = None, finite: bool = False,
               optional: bool = False) -> float | None:
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise self.fail(where, "a number" + (" or null" if optional else ""), value)
        v = float(value)
        if finite and not math.isfinite(v):
            raise self.fail(where, "a finite number", value)
        if (low is not None and v < low) or (high is not None and v > high):
            bounds = f"in [{low}, {high}]" if high is not None else f">= {low}"
            raise self.fail(where, f"a number {bounds}", value)
        return v

    def str(self, where: str, value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(where, "a non-empty string", value)
        return value

    def array(self, where: str, value: Any, *, kinds: str = "fiub",
              finite: bool = False) -> np.ndarray:
        if not isinstance(value, np.ndarray) or value.dtype.kind not in kinds:
            raise self.fail(where, "an array of numbers", value)
        if finite and value.dtype.kind == "f" and not np.isfinite(value).all():
            raise self.fail(where, "an array of finite numbers", "NaN or inf")
        return value

    def rng(self, where: str, value: Any, *, kind: str | None = None) -> None:
        state = self.dict(where, value, ("bit_generator", "state"))
        name = state["bit_generator"]
        allowed = (kind,) if kind else _BIT_GENERATORS
        if name not in allowed:
            raise self.fail(f"{where}.bit_generator", f"one of {', '.join(allowed)}", name)
        try:  # the generator itself is the judge of its state's fields and ranges
            getattr(np.random, name)().state = state
        except Exception:
            raise self.fail(where, f"a valid {name} state", value) from None

    def leaves(self, where: str, value: Any, depth: int = 0) -> None:
        """JSON values, numeric arrays and containers of them, nothing else."""
        if depth > 20:
            raise self.fail(where, "nested at most 20 levels", "deeper")
        if isinstance(value, dict):
            for k, v in value.items():
                self.leaves(f"{where}.{k}", v, depth + 1)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                self.leaves(f"{where}[{i}]", v, depth + 1)
        elif isinstance(value, np.ndarray):
            self.array(where, value)
        elif value is not None and not isinstance(value, bool | int | float | str):
            raise self.fail(where, "a number, a string, null or an array", value)


def validate_training_state(path: str | Path, state: Any) -> dict[str, Any]:
    """Check every field of a training checkpoint's payload by type and range.

    The fields and their rules: ``epoch`` and ``steps_in_epoch`` are integers >= 0 that
    agree with the history (``epoch`` completed epochs recorded, and the recorded steps equal
    the steps of those epochs plus ``steps_in_epoch``); ``seed`` an integer >= 0;
    ``epoch_rng`` and ``global_rng`` PCG64 states and ``module_rngs`` a mapping of generator
    states, each accepted by its NumPy bit generator; ``model`` a mapping of names to finite
    numeric arrays; ``optimizer`` a step count ``t >= 0``, a direction state, one rule state
    and one weight decay ``>= 0`` per parameter group (arrays numeric, known fields typed);
    ``optimizer_type`` a name; ``history`` its step columns (equal lengths, whole
    non-negative evaluation counts), epoch records, best epoch and stop reason, each typed;
    ``config`` a mapping.

    Returns the state unchanged.

    Raises
    ------
    CheckpointError
        The first field found wrong, with its name and value.
    """
    c = _Fields(path)
    state = c.dict("the payload", state, TRAINING_FIELDS)
    epoch = c.int("epoch", state["epoch"])
    steps_in_epoch = c.int("steps_in_epoch", state["steps_in_epoch"])
    c.int("seed", state["seed"])
    c.rng("epoch_rng", state["epoch_rng"], kind="PCG64")
    c.rng("global_rng", state["global_rng"], kind="PCG64")
    for name, value in c.dict("module_rngs", state["module_rngs"]).items():
        c.rng(f"module_rngs.{name}", value)
    for name, value in c.dict("model", state["model"]).items():
        c.array(f"model.{name}", value, finite=True)
    _validate_optimizer(c, state["optimizer"])
    c.str("optimizer_type", state["optimizer_type"])
    c.dict("config", state["config"])
    c.leaves("config", state["config"])
    steps, epochs = _validate_history(c, state["history"])
    if len(epochs) != epoch:
        raise CheckpointError(
            f"checkpoint {path}: epoch is {epoch} but the history records {len(epochs)} "
            "completed epochs")
    done = epochs[-1]["step"] + 1 if epochs else 0
    if done + steps_in_epoch != steps:
        raise CheckpointError(
            f"checkpoint {path}: steps_in_epoch is {steps_in_epoch} but the history records "
            f"{steps - done} steps after the last completed epoch")
    return state


def _validate_optimizer(c: _Fields, value: Any) -> None:
    opt = c.dict("optimizer", value, ("t", "direction", "rules"))
    c.int("optimizer.t", opt["t"])
    direction = c.dict("optimizer.direction", opt["direction"])
    c.leaves("optimizer.direction", direction)
    for key in ("buffers", "m", "v"):  # momentum and Adam's moments: float arrays
        if key in direction:
            for i, a in enumerate(c.list(f"optimizer.direction.{key}", direction[key])):
                c.array(f"optimizer.direction.{key}[{i}]", a, kinds="f", finite=True)
    if "t" in direction:
        c.int("optimizer.direction.t", direction["t"])
    if "m" in direction and "v" in direction and len(direction["m"]) != len(direction["v"]):
        raise c.fail("optimizer.direction.v", f"{len(direction['m'])} arrays, like m",
                     len(direction["v"]))
    rules = c.list("optimizer.rules", opt["rules"])
    for i, rule in enumerate(rules):
        where = f"optimizer.rules[{i}]"
        c.dict(where, rule)
        c.leaves(where, rule)
        if "previous" in rule and rule["previous"] is not None:
            prev = rule["previous"]
            if isinstance(prev, list):  # (alpha, slope) of a strong-Wolfe search
                if len(prev) != 2:
                    raise c.fail(f"{where}.previous", "null, a step or a pair", prev)
                for j, v in enumerate(prev):
                    c.number(f"{where}.previous[{j}]", v, finite=True)
                c.number(f"{where}.previous[0]", prev[0], low=0.0)
            else:
                c.number(f"{where}.previous", prev, low=0.0, finite=True)
        if "first_accepted" in rule and not isinstance(rule["first_accepted"], bool):
            raise c.fail(f"{where}.first_accepted", "true or false", rule["first_accepted"])
        if "f_best" in rule:
            c.number(f"{where}.f_best", rule["f_best"])
    if "weight_decay" in opt:
        decays = c.list("optimizer.weight_decay", opt["weight_decay"])
        if len(decays) != len(rules):
            raise c.fail("optimizer.weight_decay", f"{len(rules)} values, one per rule",
                         decays)
        for i, v in enumerate(decays):
            c.number(f"optimizer.weight_decay[{i}]", v, low=0.0, finite=True)


def _validate_history(c: _Fields, value: Any) -> tuple[int, list[dict[str, Any]]]:
    """Returns (steps recorded, epoch records)."""
    h = c.dict("history", value, ("columns", "epochs", "best", "seconds", "stop_reason"))
    columns = c.dict("history.columns", h["columns"], History.STEP_COLUMNS)
    lengths = set()
    for name in History.STEP_COLUMNS:
        col = c.array(f"history.columns.{name}", columns[name])
        if col.ndim != 1:
            raise c.fail(f"history.columns.{name}", "a 1-D array", f"shape {col.shape}")
        lengths.add(len(col))
    if len(lengths) != 1:
        raise CheckpointError(
            f"checkpoint {c.path}: the history's step columns differ in length "
            f"({sorted(lengths)})")
    steps = lengths.pop()
    evals = np.asarray(columns["evaluations"], dtype=np.float64)
    if not (np.isfinite(evals).all() and (evals >= 0).all() and (evals == np.round(evals)).all()):
        raise c.fail("history.columns.evaluations", "whole numbers >= 0", columns["evaluations"])
    names = {f.name for f in fields(EpochRecord)}
    epochs = c.list("history.epochs", h["epochs"])
    last_step = -1
    for i, e in enumerate(epochs):
        where = f"history.epochs[{i}]"
        c.dict(where, e, ("epoch", "step", "train_loss"))
        extra = set(e) - names
        if extra:
            raise c.fail(where, f"an epoch record (fields {', '.join(sorted(names))})",
                         sorted(extra))
        if c.int(f"{where}.epoch", e["epoch"]) != i:
            raise c.fail(f"{where}.epoch", f"{i} (records are in order)", e["epoch"])
        step = c.int(f"{where}.step", e["step"])
        if not last_step < step < steps:
            raise c.fail(f"{where}.step", f"an integer in ({last_step}, {steps})", step)
        last_step = step
        c.number(f"{where}.train_loss", e["train_loss"])
        for key in ("train_accuracy", "val_accuracy"):
            c.number(f"{where}.{key}", e.get(key), low=0.0, high=1.0, optional=True)
        c.number(f"{where}.val_loss", e.get("val_loss"), optional=True)
        c.number(f"{where}.lr", e.get("lr", math.nan))
        c.number(f"{where}.seconds", e.get("seconds", 0.0), low=0.0, finite=True)
    best = h["best"]
    if best is not None:
        c.dict("history.best", best, ("epoch", "step", "loss", "state"))
        c.int("history.best.epoch", best["epoch"])
        c.int("history.best.step", best["step"])
        c.number("history.best.loss", best["loss"])
        if best["state"] is not None:
            for name, a in c.dict("history.best.state", best["state"]).items():
                c.array(f"history.best.state.{name}", a)
    c.number("history.seconds", h["seconds"], low=0.0, finite=True)
    reason = h["stop_reason"]
    if reason is not None:
        c.dict("history.stop_reason", reason, ("criterion", "message", "step", "epoch"))
        extra = set(reason) - {f.name for f in fields(StopReason)}
        if extra:
            raise c.fail("history.stop_reason", "a stop reason", sorted(extra))
        c.str("history.stop_reason.criterion", reason["criterion"])
        if not isinstance(reason["message"], str):
            raise c.fail("history.stop_reason.message", "a string", reason["message"])
        c.int("history.stop_reason.step", reason["step"], low=-1)
        c.int("history.stop_reason.epoch", reason["epoch"])
        for key in ("value", "threshold"):
            c.number(f"history.stop_reason.{key}", reason.get(key), optional=True)
    return steps, epochs
