"""A checkpoint's JSON metadata, edited by hand or damaged: every field is checked by type
and range, and whatever the edit, resuming raises CheckpointError or works, nothing else."""

from __future__ import annotations

import copy
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import descend as ds
from descend.errors import CheckpointError
from descend.train import fit
from descend.train.checkpoint import load_checkpoint


def _data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3)).astype(np.float32)
    return X, (X[:, 0] > 0).astype(np.int64)


OPTIMIZERS = {
    "momentum": lambda p: ds.optim.GD(p, lr=0.1, momentum=0.5),
    "armijo": lambda p: ds.optim.GD(p, lr=ds.optim.Armijo()),
    "adam": lambda p: ds.optim.Adam(p, lr=0.01),
}


def _fit(opt_name: str, epochs: int, **kwargs):
    model = ds.nn.Sequential(ds.nn.Linear(3, 4, rng=1), ds.nn.ReLU(), ds.nn.Linear(4, 2, rng=2))
    opt = OPTIMIZERS[opt_name](model.parameters())
    return fit(model, ds.nn.CrossEntropyLoss(), opt, _data(), epochs=epochs, batch_size=10,
               progress=False, **kwargs)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, bytes]:
    """A real checkpoint per optimizer, written by fit after 2 epochs."""
    out = {}
    for name in OPTIMIZERS:
        path = tmp_path_factory.mktemp(name) / "run.npz"
        _fit(name, 2, checkpoint=path)
        out[name] = path.read_bytes()
    return out


def _edit(raw: bytes, change) -> bytes:
    """The archive with its metadata changed by ``change(meta) -> meta``."""
    with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(arrays["__meta__"].tobytes().decode())
    meta = change(meta)
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _set(path: tuple, value: Any):
    def change(meta):
        node = meta
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        return meta

    return change


def _resume(path: Path, opt_name: str = "momentum"):
    return _fit(opt_name, 3, resume=path)


# The edits the attack on the released package found, each with the field named.
P = ("payload",)
EDITS = [
    ("steps-in-epoch-huge", (*P, "steps_in_epoch"), 10**6, "steps_in_epoch"),
    ("global-rng-none", (*P, "global_rng"), None, "global_rng"),
    ("payload-none", ("payload",), None, "payload"),
    ("epoch-negative", (*P, "epoch"), -1, "epoch"),
    ("t-negative", (*P, "optimizer", "t"), -1, "optimizer.t"),
    ("epoch-string", (*P, "epoch"), "2", "epoch"),
    ("epoch-bool", (*P, "epoch"), True, "epoch"),
    ("seed-negative", (*P, "seed"), -3, "seed"),
    ("epoch-rng-garbage", (*P, "epoch_rng", "state"), {"state": "x", "inc": 1}, "epoch_rng"),
    ("epoch-rng-other-generator", (*P, "epoch_rng", "bit_generator"), "MT19937", "epoch_rng"),
    ("momentum-buffers-none", (*P, "optimizer", "direction", "buffers"), [None],
     "optimizer.direction.buffers"),
    ("weight-decay-negative", (*P, "optimizer", "weight_decay"), [-1.0],
     "optimizer.weight_decay"),
    ("rules-not-dicts", (*P, "optimizer", "rules"), [[1, 2]], "optimizer.rules[0]"),
    ("history-columns-none", (*P, "history", "columns"), None, "history.columns"),
    ("history-seconds-negative", (*P, "history", "seconds"), -5, "history.seconds"),
    ("stop-reason-list", (*P, "history", "stop_reason"), [], "history.stop_reason"),
    ("model-missing", (*P, "model"), None, "model"),
    ("config-list", (*P, "config"), [], "config"),
]


@pytest.mark.parametrize(("path", "value", "field"), [e[1:] for e in EDITS],
                         ids=[e[0] for e in EDITS])
def test_hand_edited_field_is_refused_by_name(tmp_path, checkpoints, path, value, field):
    ckpt = tmp_path / "run.npz"
    ckpt.write_bytes(_edit(checkpoints["momentum"], _set(path, value)))
    with pytest.raises(CheckpointError, match=field.replace("[", r"\[").replace("]", r"\]")):
        load_checkpoint(ckpt)
    with pytest.raises(CheckpointError):
        _resume(ckpt)


def test_unedited_checkpoints_are_accepted(tmp_path, checkpoints):
    for name, raw in checkpoints.items():
        ckpt = tmp_path / f"{name}.npz"
        ckpt.write_bytes(raw)
        assert len(_resume(ckpt, name).epochs) == 3


def test_armijo_previous_step_must_be_a_non_negative_number(tmp_path, checkpoints):
    ckpt = tmp_path / "run.npz"
    for bad in ("x", -1.0, [1.0], {"a": 1}):
        ckpt.write_bytes(_edit(checkpoints["armijo"],
                               _set((*P, "optimizer", "rules", 0, "previous"), bad)))
        with pytest.raises(CheckpointError, match=r"rules\[0\]\.previous"):
            load_checkpoint(ckpt)


def test_adam_moments_must_match(tmp_path, checkpoints):
    ckpt = tmp_path / "run.npz"
    ckpt.write_bytes(_edit(checkpoints["adam"],
                           _set((*P, "optimizer", "direction", "v"), [])))
    with pytest.raises(CheckpointError, match=r"direction\.v"):
        _resume(ckpt, "adam")


def test_cli_resume_with_edited_settings_is_one_line(tmp_path):
    ckpt = tmp_path / "run.npz"
    base = ["train", "--data", "spirals", "--samples", "120", "--hidden", "8", "--quiet"]
    run = lambda *a: subprocess.run([sys.executable, "-m", "descend", *a],  # noqa: E731
                                    capture_output=True, text=True, timeout=120)
    assert run(*base, "--epochs", "1", "--checkpoint", str(ckpt)).returncode == 0
    raw = ckpt.read_bytes()
    args = ("payload", "config", "train_args")
    for name, value in (("lr", 5), ("batch_size", "x"), ("hidden", [0]), ("seed", -1),
                        ("activation", "softmax"), ("momentum", 2.0), ("nesterov", "no")):
        ckpt.write_bytes(_edit(raw, _set((*args, name), value)))
        out = run("train", "--resume", str(ckpt), "--epochs", "2")
        assert out.returncode == 2 and "Traceback" not in out.stderr, (name, out.stderr)
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and f"{name}=" in lines[0], (name, out.stderr)


# --------------------------------------------------------------------------- fuzzing
def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path into the JSON metadata (dict keys and list indices)."""
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


BAD_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False),
    st.text(max_size=8), st.builds(list), st.builds(dict),
    st.lists(st.integers(-3, 3), max_size=3),
    st.builds(lambda: {"__float__": "nan"}), st.builds(lambda: {"__float__": "x"}),
    st.builds(lambda: {"__array__": "a/nope"}),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def _fuzz(tmp_path: Path, checkpoints: dict[str, bytes], data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(checkpoints)), label="optimizer")
    raw = checkpoints[name]
    with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
        meta = json.loads(npz["__meta__"].tobytes().decode())
    paths = _paths(meta)
    edits = data.draw(st.lists(st.tuples(st.sampled_from(paths), BAD_VALUES), min_size=1,
                               max_size=3), label="edits")

    def change(meta):
        for path, value in edits:
            node = meta
            try:
                for key in path[:-1]:
                    node = node[key]
                node[path[-1]] = copy.deepcopy(value)  # never one object in two places
            except (KeyError, IndexError, TypeError):
                pass  # an earlier edit removed this path
        return meta

    ckpt = tmp_path / f"fuzz-{name}.npz"
    ckpt.write_bytes(_edit(raw, change))
    try:
        history = _resume(ckpt, name)
    except CheckpointError:
        return
    # an edit that is still valid: the run resumed and completed its epochs
    assert len(history.epochs) == 3


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_fuzzed_metadata_raises_only_checkpoint_error(tmp_path, checkpoints, data):
    _fuzz(tmp_path, checkpoints, data)


@pytest.mark.slow
@settings(max_examples=2000, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_fuzzed_metadata_raises_only_checkpoint_error_long(tmp_path, checkpoints, data):
    _fuzz(tmp_path, checkpoints, data)


def test_a_step_rule_state_that_cannot_be_resumed_is_refused_at_resume(tmp_path, checkpoints):
    # previous = 0 passes the metadata check (a number >= 0), but the rule cannot start a
    # search from it: resuming says so as a CheckpointError, not a raw ConfigError mid-step
    ckpt = tmp_path / "run.npz"
    ckpt.write_bytes(_edit(checkpoints["armijo"],
                           _set((*P, "optimizer", "rules", 0, "previous"), 0)))
    load_checkpoint(ckpt)
    with pytest.raises(CheckpointError, match="previous"):
        _resume(ckpt, "armijo")
