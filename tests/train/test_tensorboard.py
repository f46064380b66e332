"""The TensorBoard callback: the event file read back record by record."""

from __future__ import annotations

import struct
import subprocess
import sys
from collections import defaultdict

import numpy as np
import pytest

import descend as ds

pytest.importorskip("tensorboardX")
from descend.train.tensorboard import TensorBoardLogger


def _read_scalars(folder):
    """tag -> [(step, value)], from TFRecord framing: length (8 bytes), its CRC (4), the
    serialized Event, its CRC (4)."""
    from tensorboardX.proto import event_pb2

    files = list(folder.glob("events.out.tfevents.*"))
    assert len(files) == 1
    data = files[0].read_bytes()
    scalars = defaultdict(list)
    pos = 0
    while pos < len(data):
        (length,) = struct.unpack("<Q", data[pos:pos + 8])
        event = event_pb2.Event.FromString(data[pos + 12:pos + 12 + length])
        pos += 12 + length + 4
        for value in event.summary.value:
            scalars[value.tag].append((event.step, value.simple_value))
    return scalars


def test_writes_step_and_epoch_scalars(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    model = ds.nn.mlp([3, 8, 2], rng=0)
    opt = ds.optim.GD(model.parameters(), lr=ds.optim.Armijo())
    with TensorBoardLogger(tmp_path / "run") as tb:
        history = ds.train.fit(model, ds.nn.CrossEntropyLoss(), opt, (X, y), epochs=3,
                               batch_size=20, validation=(X[:10], y[:10]), callbacks=[tb],
                               progress=False)
    scalars = _read_scalars(tmp_path / "run")
    assert [s for s, _ in scalars["step/loss"]] == list(range(9))
    np.testing.assert_allclose([v for _, v in scalars["step/loss"]], history.loss, rtol=1e-6)
    np.testing.assert_allclose([v for _, v in scalars["step/lr"]], history.lr, rtol=1e-6)
    np.testing.assert_allclose([v for _, v in scalars["step/grad_norm"]], history.grad_norm,
                               rtol=1e-6)
    assert [v for _, v in scalars["step/evaluations"]] == history.evaluations
    assert [s for s, _ in scalars["epoch/val_accuracy"]] == [0, 1, 2]
    np.testing.assert_allclose([v for _, v in scalars["epoch/val_loss"]],
                               [e.val_loss for e in history.epochs], rtol=1e-6)
    assert "epoch/train_accuracy" not in scalars or len(scalars["epoch/train_accuracy"]) == 3


def test_every_thins_the_step_scalars(tmp_path):
    X = np.random.default_rng(1).standard_normal((40, 2)).astype(np.float32)
    y = X @ np.array([1.0, -1.0], dtype=np.float32)
    model = ds.nn.Linear(2, 1, rng=0)
    opt = ds.optim.GD(model.parameters(), lr=0.1)
    tb = TensorBoardLogger(tmp_path, every=3)
    ds.train.fit(model, lambda out, t: ds.nn.mse_loss(out[:, 0], t), opt, (X, y), epochs=10,
                 callbacks=[tb], progress=False)
    tb.close()
    scalars = _read_scalars(tmp_path)
    assert [s for s, _ in scalars["step/lr"]] == [0, 3, 6, 9]
    assert [v for _, v in scalars["step/lr"]] == pytest.approx([0.1] * 4)
    assert len(scalars["epoch/train_loss"]) == 10


def test_bad_arguments(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ds.errors.ConfigError, match="not a folder"):
        TensorBoardLogger(tmp_path / "file")
    with pytest.raises(ds.errors.ConfigError, match="every"):
        TensorBoardLogger(tmp_path, every=0)


def test_import_descend_does_not_import_tensorboardx():
    code = "import sys, descend, descend.train; print('tensorboardX' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"
