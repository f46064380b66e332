"""Checkpoints: everything a run needs to continue exactly, written atomically and safely.

Format: a NumPy ``.npz`` archive read with ``allow_pickle=False`` (so opening a checkpoint
from an untrusted source never runs code). Arrays are stored under their own keys; all the
rest (counters, step-rule state, random generator states, history) is JSON kept in one
uint8 array under ``__meta__``. Every member of the archive carries a CRC, so a truncated or
corrupted file is detected when read.

Writing goes to a temporary file in the same folder, which is flushed, fsynced and then
renamed over the target: a crash during a write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CheckpointError
from .history import Best, EpochRecord, History, StopReason

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
def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (nested dicts/lists of JSON values and ndarrays) atomically."""
    path = Path(path)
    if path.exists() and path.is_dir():
        raise CheckpointError(f"checkpoint path {path} is a directory")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise CheckpointError(f"cannot write checkpoint {path}: folder {folder} does not exist")
    arrays: dict[str, np.ndarray] = {}
    meta = {"format": FORMAT, "version": VERSION,
            "payload": flatten_state(payload, "a", arrays)}
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on folders
        pass
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`; never unpickles anything.

    Raises CheckpointError for a missing, truncated, corrupted, foreign or newer file."""
    path = Path(path)
    if not path.exists():
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
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CheckpointError(f"checkpoint {path} has corrupted metadata") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a descend checkpoint")
    version = meta.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format version {version}, newer than this descend "
            f"reads (version {VERSION}); upgrade descend to open it"
        )
    try:
        return unflatten_state(meta["payload"], arrays)
    except KeyError as exc:
        raise CheckpointError(f"checkpoint {path} is missing the array {exc}") from None


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
