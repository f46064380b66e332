"""Checkpoints: exact resume, atomic writes, safe and strict loading."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

import descend as ds
from descend.errors import CheckpointError
from descend.train import fit
from descend.train.checkpoint import load_checkpoint, save_checkpoint


def _data(n=120, d=6, k=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(np.float32)
    W = rng.standard_normal((d, k))
    y = (X @ W).argmax(axis=1).astype(np.int64)
    return X, y


def _model(dropout=0.0, seeded_dropout=False):
    layers = [ds.nn.Linear(6, 16, rng=1), ds.nn.ReLU()]
    if dropout:
        layers.append(ds.nn.Dropout(dropout, rng=7 if seeded_dropout else None))
    layers.append(ds.nn.Linear(16, 3, rng=2))
    return ds.nn.Sequential(*layers)


OPTIMIZERS = {
    "gd": lambda p: ds.optim.GD(p, lr=0.1),
    "momentum": lambda p: ds.optim.GD(p, lr=0.05, momentum=0.9, nesterov=True),
    "adam": lambda p: ds.optim.Adam(p, lr=0.01),
    "armijo": lambda p: ds.optim.GD(p, lr=ds.optim.Armijo(c1=0.1, shrink=0.8)),
    "polyak-est": lambda p: ds.optim.GD(p, lr=ds.optim.Polyak(f_star=None, max_lr=1.0)),
    "subgradient": lambda p: ds.optim.Subgradient(p, lr=ds.optim.InverseSqrt(0.1)),
}


def _run(opt_name, epochs, *, dropout=0.0, seeded=False, checkpoint=None, resume=None,
         stop_after_steps=None):
    X, y = _data()
    model = _model(dropout, seeded)
    opt = OPTIMIZERS[opt_name](model.parameters())
    stop = None if stop_after_steps is None else ds.train.StopWhen(max_steps=stop_after_steps)
    history = fit(model, ds.nn.CrossEntropyLoss(), opt, (X, y), epochs=epochs, batch_size=16,
                  seed=3, stop=stop, progress=False, checkpoint=checkpoint, resume=resume)
    return model, history


@pytest.mark.parametrize("opt_name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_resume_from_epoch_checkpoint_is_bit_identical(tmp_path, opt_name, dropout):
    full, full_history = _run(opt_name, 4, dropout=dropout)
    ckpt = tmp_path / "run.npz"
    _run(opt_name, 2, dropout=dropout, checkpoint=ckpt)
    resumed, history = _run(opt_name, 4, dropout=dropout, resume=ckpt)
    for (name, a), (_, b) in zip(full.state_dict().items(), resumed.state_dict().items()):
        assert np.array_equal(a, b), name
    assert history.loss == full_history.loss
    assert history.steps == full_history.steps


@pytest.mark.parametrize("opt_name", ["armijo", "adam"])
def test_resume_mid_epoch_with_seeded_dropout_is_bit_identical(tmp_path, opt_name):
    """An interruption at step 11 (epoch 1 of 8 steps per epoch) resumes exactly."""
    full, _ = _run(opt_name, 3, dropout=0.25, seeded=True)
    ckpt = tmp_path / "mid.npz"
    X, y = _data()
    model = _model(0.25, True)
    opt = OPTIMIZERS[opt_name](model.parameters())

    class Interrupt(ds.train.Callback):
        def on_step_end(self, history, optimizer):
            return history.steps == 11

    h = fit(model, ds.nn.CrossEntropyLoss(), opt, (X, y), epochs=3, batch_size=16, seed=3,
            progress=False, checkpoint=ckpt, callbacks=[Interrupt()], checkpoint_every=100)
    assert h.stop_reason.criterion == "callback"
    state = load_checkpoint(ckpt)
    # the callback stop wrote an end-of-run checkpoint after finishing the epoch record
    assert state["epoch"] in (1, 2)
    resumed, _ = _run(opt_name, 3, dropout=0.25, seeded=True, resume=ckpt)
    for a, b in zip(full.parameters(), resumed.parameters()):
        assert np.array_equal(a.data, b.data)


def test_interrupt_flag_writes_mid_epoch_checkpoint_and_resumes_exactly(tmp_path):
    import signal

    full, _ = _run("momentum", 3, dropout=0.2)
    X, y = _data()
    model = _model(0.2)
    opt = OPTIMIZERS["momentum"](model.parameters())
    ckpt = tmp_path / "int.npz"

    class CtrlC(ds.train.Callback):
        def on_step_end(self, history, optimizer):
            if history.steps == 13:
                signal.raise_signal(signal.SIGINT)

    h = fit(model, ds.nn.CrossEntropyLoss(), opt, (X, y), epochs=3, batch_size=16, seed=3,
            progress=False, checkpoint=ckpt, callbacks=[CtrlC()])
    assert h.stop_reason.criterion == "interrupted"
    assert h.steps == 13
    state = load_checkpoint(ckpt)
    assert (state["epoch"], state["steps_in_epoch"]) == (1, 5)
    resumed, _ = _run("momentum", 3, dropout=0.2, resume=ckpt)
    for a, b in zip(full.parameters(), resumed.parameters()):
        assert np.array_equal(a.data, b.data)


def test_checkpoint_is_plain_npz_without_pickle(tmp_path):
    ckpt = tmp_path / "c.npz"
    _run("adam", 1, checkpoint=ckpt)
    with np.load(ckpt, allow_pickle=False) as npz:
        assert "__meta__" in npz.files
        meta = json.loads(npz["__meta__"].tobytes())
        assert all(npz[k].dtype != object for k in npz.files)
    assert meta["format"] == "descend-checkpoint"


def test_failed_write_leaves_previous_checkpoint_intact(tmp_path, monkeypatch):
    ckpt = tmp_path / "c.npz"
    save_checkpoint(ckpt, {"x": np.arange(5.0), "n": 1})
    before = ckpt.read_bytes()

    def explode(fh, **arrays):
        fh.write(b"PK\x03\x04half-written")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", explode)
    with pytest.raises(CheckpointError, match=r"disk full.*previous file.*unchanged"):
        save_checkpoint(ckpt, {"x": np.arange(7.0), "n": 2})
    assert ckpt.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"]  # no temporary file left
    monkeypatch.undo()
    assert load_checkpoint(ckpt, training=False)["n"] == 1


def test_round_trip_of_nested_state(tmp_path):
    payload = {"a": [np.ones((2, 3), np.float32), {"b": np.int64(4), "c": None}],
               "inf": float("inf"), "big": 2**100}
    save_checkpoint(tmp_path / "s.npz", payload)
    out = load_checkpoint(tmp_path / "s.npz", training=False)
    assert out["a"][0].dtype == np.float32 and np.array_equal(out["a"][0], np.ones((2, 3)))
    assert out["a"][1] == {"b": 4, "c": None}
    assert out["inf"] == float("inf") and out["big"] == 2**100


def _corrupt(path: Path) -> None:
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 8] = b"\x00\xff" * 4
    path.write_bytes(bytes(data))


def _newer(path: Path) -> None:
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(arrays["__meta__"].tobytes())
    meta["version"] = 99
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(path, **arrays)


def _pickled(path: Path) -> None:
    buf = io.BytesIO()
    np.save(buf, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("__meta__.npy", buf.getvalue())


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 3]), "truncated"),
        (_corrupt, "corrupted"),
        (_newer, "newer"),
        (lambda p: p.write_bytes(b"not a zip at all"), "truncated or corrupted"),
        (_pickled, "corrupted"),
    ],
    ids=["truncated", "corrupted", "newer-version", "garbage", "pickled-object"],
)
def test_bad_checkpoints_are_refused_and_model_untouched(tmp_path, damage, message):
    ckpt = tmp_path / "c.npz"
    _run("gd", 1, checkpoint=ckpt)
    damage(ckpt)
    X, y = _data()
    model = _model()
    before = {k: v.copy() for k, v in model.state_dict().items()}
    opt = OPTIMIZERS["gd"](model.parameters())
    with pytest.raises(CheckpointError, match=message):
        fit(model, ds.nn.CrossEntropyLoss(), opt, (X, y), epochs=2, batch_size=16,
            progress=False, resume=ckpt)
    for k, v in model.state_dict().items():
        assert np.array_equal(v, before[k])


def test_checkpoint_from_another_architecture_is_refused(tmp_path):
    ckpt = tmp_path / "c.npz"
    _run("gd", 1, checkpoint=ckpt)
    X, y = _data()
    other = ds.nn.Sequential(ds.nn.Linear(6, 8, rng=1), ds.nn.ReLU(), ds.nn.Linear(8, 3, rng=2))
    before = [p.data.copy() for p in other.parameters()]
    with pytest.raises(CheckpointError, match="another model architecture"):
        fit(other, ds.nn.CrossEntropyLoss(), ds.optim.GD(other.parameters(), lr=0.1), (X, y),
            epochs=2, batch_size=16, progress=False, resume=ckpt)
    assert all(np.array_equal(p.data, b) for p, b in zip(other.parameters(), before))


@pytest.mark.parametrize("path_kind", ["missing", "directory"])
def test_missing_or_directory_checkpoint(tmp_path, path_kind):
    path = tmp_path / "nope.npz"
    if path_kind == "directory":
        path.mkdir()
    with pytest.raises(CheckpointError, match=r"no such checkpoint|is a directory"):
        load_checkpoint(path)


def test_divergence_keeps_last_checkpoint(tmp_path):
    X, y = _data()
    model = _model()
    ckpt = tmp_path / "c.npz"
    fit(model, ds.nn.CrossEntropyLoss(), ds.optim.GD(model.parameters(), lr=0.1), (X, y),
        epochs=1, batch_size=16, progress=False, checkpoint=ckpt)
    good = ckpt.read_bytes()
    opt = ds.optim.GD(model.parameters(), lr=1e6)
    h = fit(model, ds.nn.CrossEntropyLoss(), opt, (X * 1e3, y), epochs=3, batch_size=None,
            progress=False, checkpoint=ckpt, overwrite=True)
    assert h.stop_reason.criterion == "diverged"
    assert all(np.isfinite(p.data).all() for p in model.parameters())
    # the checkpoint on disk is the last good one: written before the diverging epoch, finite
    state = load_checkpoint(ckpt)
    assert state["epoch"] <= h.stop_reason.epoch
    assert all(np.isfinite(v).all() for v in state["model"].values())
    if h.stop_reason.epoch == 0:
        assert ckpt.read_bytes() == good


def test_a_second_ctrl_c_between_steps_still_writes_the_checkpoint_and_propagates(tmp_path):
    # a KeyboardInterrupt the Ctrl-C flag did not turn into a stop (a second Ctrl-C, or one
    # raised by a callback): the History names it and travels with the exception, the
    # checkpoint is written, and the run resumes to the end of one never interrupted
    full, _ = _run("momentum", 3, dropout=0.2)
    X, y = _data()
    model = _model(0.2)
    opt = OPTIMIZERS["momentum"](model.parameters())
    ckpt = tmp_path / "int.npz"
    seen = []

    class CtrlC(ds.train.Callback):
        def on_step_end(self, history, optimizer):
            if history.steps == 13:
                raise KeyboardInterrupt

        def on_train_end(self, history, model):
            seen.append(history)

    with pytest.raises(KeyboardInterrupt) as info:
        fit(model, ds.nn.CrossEntropyLoss(), opt, (X, y), epochs=3, batch_size=16, seed=3,
            progress=False, checkpoint=ckpt, callbacks=[CtrlC()])
    h = info.value.history
    assert seen == [h]
    assert h.steps == 13 and h.stop_reason.criterion == "interrupted"
    assert str(h.stop_reason) == "interrupted at step 12 (epoch 1)"
    state = load_checkpoint(ckpt)
    assert (state["epoch"], state["steps_in_epoch"]) == (1, 5)
    resumed, _ = _run("momentum", 3, dropout=0.2, resume=ckpt)
    for a, b in zip(full.parameters(), resumed.parameters()):
        assert np.array_equal(a.data, b.data)


def test_a_ctrl_c_inside_a_step_writes_no_checkpoint_for_it(tmp_path):
    X, y = _data()
    model = _model(0.0)
    opt = OPTIMIZERS["momentum"](model.parameters())
    ckpt = tmp_path / "int.npz"
    step, calls = opt.step, []

    def step_interrupted_at_the_tenth(*args, **kwargs):
        calls.append(1)
        if len(calls) == 10:
            raise KeyboardInterrupt
        return step(*args, **kwargs)

    opt.step = step_interrupted_at_the_tenth
    with pytest.raises(KeyboardInterrupt) as info:
        fit(model, ds.nn.CrossEntropyLoss(), opt, (X, y), epochs=3, batch_size=16, seed=3,
            progress=False, checkpoint=ckpt)
    h = info.value.history
    assert h.steps == 9 and h.stop_reason.criterion == "interrupted"
    assert str(h.stop_reason).startswith("interrupted during step 9 (epoch 1), which did not "
                                         "finish; the history ends at step 8")
    assert "the last one written stands" in str(h.stop_reason)
    assert load_checkpoint(ckpt)["epoch"] == 1  # the end of epoch 0's checkpoint stands
