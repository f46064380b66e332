"""History: per-step and per-epoch records, CSV export read back, plots, column access, and the
best epoch kept with its parameters."""

from __future__ import annotations

import csv
import importlib
import importlib.util

import numpy as np
import pytest

import descend as ds
from descend.autodiff.ops import cross_entropy_per_sample, linear
from descend.optim import GD
from descend.train import Callback, History, fit


class Softmax:
    """Multinomial logistic regression; ``copy_state`` picks the two state_dict conventions:
    copies, or the live arrays as PyTorch's ``state_dict`` returns them."""

    def __init__(self, d: int = 2, k: int = 2, seed: int = 0, copy_state: bool = True):
        rng = np.random.default_rng(seed)
        self.W = ds.tensor(0.1 * rng.standard_normal((k, d)), requires_grad=True)
        self.b = ds.tensor(np.zeros(k), requires_grad=True)
        self.copy_state = copy_state

    def __call__(self, x):
        return linear(x, self.W, self.b)

    def parameters(self):
        return [self.W, self.b]

    def state_dict(self):
        if self.copy_state:
            return {"W": self.W.data.copy(), "b": self.b.data.copy()}
        return {"W": self.W.data, "b": self.b.data}


def cross_entropy(logits, targets):
    return cross_entropy_per_sample(logits, targets).mean()


def two_blobs(n: int = 40, seed: int = 0, spread: float = 1.0):
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % 2).astype(np.int64)
    X = spread * rng.standard_normal((n, 2)) + np.where(y[:, None] == 1, 1.0, -1.0)
    return X, y


class Snapshots(Callback):
    """The parameters at the end of every epoch."""

    def __init__(self):
        self.at: dict[int, dict[str, np.ndarray]] = {}

    def on_epoch_end(self, history, model):
        self.at[history.epochs[-1].epoch] = {"W": model.W.data.copy(), "b": model.b.data.copy()}


def trained(epochs=5, batch_size=10, validation=True, keep_best=False, copy_state=True,
            callbacks=()):
    X, y = two_blobs()
    Xv, yv = two_blobs(n=20, seed=1, spread=3.0)
    model = Softmax(copy_state=copy_state)
    h = fit(model, cross_entropy, GD(model.parameters(), lr=0.2), (X, y), epochs=epochs,
            batch_size=batch_size, validation=(Xv, yv) if validation else None,
            keep_best=keep_best, callbacks=callbacks, progress=False)
    return model, h


# --------------------------------------------------------------------------- records
def test_per_step_and_per_epoch_records_agree():
    _, h = trained(epochs=3, batch_size=15)  # 3 steps per epoch (15, 15, 10)
    assert h.steps == 9
    for column in ("loss", "lr", "grad_norm", "evaluations", "step_norm"):
        assert len(h[column]) == 9
    assert h.evaluations == [1] * 9 and h.lr == [0.2] * 9
    for e, record in enumerate(h.epochs):
        assert record.epoch == e and record.step == 3 * e + 2
        assert record.train_loss == pytest.approx(np.mean(h.loss[3 * e:3 * e + 3]), rel=1e-14)
        assert record.lr == 0.2
    assert h.seconds > 0


def test_column_access_by_name():
    _, h = trained(epochs=4)
    assert h["loss"] is h.loss
    assert h["val_accuracy"] == [e.val_accuracy for e in h.epochs]
    assert len(h["val_accuracy"]) == 4 and all(0 <= a <= 1 for a in h["val_accuracy"])
    assert h["train_loss"] == [e.train_loss for e in h.epochs]
    with pytest.raises(KeyError, match="'accuracy_typo'"):
        h["accuracy_typo"]


def test_empty_history():
    h = History()
    assert h.steps == 0 and h["loss"] == [] and h["val_loss"] == []


# --------------------------------------------------------------------------- CSV
def test_to_csv_writes_one_row_per_step(tmp_path):
    _, h = trained(epochs=3, batch_size=15)
    path = h.to_csv(tmp_path / "run.csv")
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == h.steps
    assert list(rows[0]) == ["step", "loss", "lr", "grad_norm", "evaluations", "step_norm",
                             "epoch", "train_loss", "train_accuracy", "val_loss",
                             "val_accuracy"]
    for i, row in enumerate(rows):
        assert int(row["step"]) == i
        assert float(row["loss"]) == h.loss[i]  # written with full precision
        assert float(row["grad_norm"]) == h.grad_norm[i]
        assert float(row["step_norm"]) == h.step_norm[i]
        assert int(row["evaluations"]) == h.evaluations[i]
    ends = {e.step: e for e in h.epochs}
    for i, row in enumerate(rows):
        if i in ends:
            assert int(row["epoch"]) == ends[i].epoch
            assert float(row["train_loss"]) == ends[i].train_loss
            assert float(row["val_loss"]) == ends[i].val_loss
            assert float(row["val_accuracy"]) == ends[i].val_accuracy
            assert row["train_accuracy"] != ""  # counted on the training batches
        else:
            assert row["epoch"] == "" and row["val_loss"] == ""
    assert not list(tmp_path.glob("*.tmp"))  # the temporary file was moved into place


# --------------------------------------------------------------------------- plots
@pytest.mark.parametrize("validation", [True, False])
def test_plot_writes_a_png(tmp_path, validation):
    pytest.importorskip("matplotlib")
    _, h = trained(epochs=3, validation=validation)
    path = h.plot(tmp_path / "run.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 5_000


def test_plot_format_follows_the_extension(tmp_path):
    pytest.importorskip("matplotlib")
    _, h = trained(epochs=2)
    text = h.plot(tmp_path / "run.svg").read_text()
    assert "<svg" in text


# --------------------------------------------------------------------------- best epoch
def test_best_is_the_lowest_validation_loss_with_its_parameters():
    snaps = Snapshots()
    _, h = trained(epochs=8, keep_best=True, callbacks=[snaps])
    val = [e.val_loss for e in h.epochs]
    best = int(np.argmin(val))
    assert h.best.epoch == best and h.best.loss == val[best]
    assert h.best.step == h.epochs[best].step
    for name in ("W", "b"):
        np.testing.assert_array_equal(h.best.state[name], snaps.at[best][name])


def test_best_without_validation_uses_training_loss():
    _, h = trained(epochs=5, validation=False)
    train = [e.train_loss for e in h.epochs]
    assert h.best.epoch == int(np.argmin(train)) and h.best.loss == min(train)
    assert h.best.state is None  # keep_best=False keeps no copy


def test_keep_best_without_state_dict_keeps_no_state():
    X, y = two_blobs()
    W = ds.tensor(np.zeros((2, 2)), requires_grad=True)

    class Bare:
        def __call__(self, x):
            return linear(x, W)

        def parameters(self):
            return [W]

    h = fit(Bare(), cross_entropy, GD([W], lr=0.1), (X, y), epochs=2, keep_best=True,
            progress=False)
    assert h.best is not None and h.best.state is None


def test_best_state_is_a_copy_even_when_state_dict_returns_live_arrays():
    snaps = Snapshots()
    _, h = trained(epochs=8, keep_best=True, copy_state=False, callbacks=[snaps])
    val = [e.val_loss for e in h.epochs]
    best = int(np.argmin(val))
    assert best < len(val) - 2  # later steps ran after the best epoch
    for name in ("W", "b"):
        np.testing.assert_array_equal(h.best.state[name], snaps.at[best][name])


def test_best_state_with_descend_nn_module():
    nn = importlib.import_module("descend.nn") if importlib.util.find_spec("descend.nn") else None
    if nn is None or not hasattr(nn, "Linear"):
        pytest.skip("descend.nn is not available yet")
    X, y = two_blobs()
    Xv, yv = two_blobs(n=20, seed=1, spread=3.0)
    model = nn.Linear(2, 2, rng=0)
    saved: dict[int, list[np.ndarray]] = {}

    class Save(Callback):
        def on_epoch_end(self, history, m):
            saved[history.epochs[-1].epoch] = [p.data.copy() for p in m.parameters()]

    h = fit(model, nn.CrossEntropyLoss(), GD(model.parameters(), lr=0.2), (X, y), epochs=8,
            batch_size=10, validation=(Xv, yv), keep_best=True, callbacks=[Save()],
            progress=False)
    best = int(np.argmin([e.val_loss for e in h.epochs]))
    kept = sorted((np.asarray(v) for v in h.best.state.values()), key=lambda a: a.size)
    want = sorted(saved[best], key=lambda a: a.size)
    for a, b in zip(kept, want):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------- train accuracy
def test_train_accuracy_in_the_csv_the_plot_and_checkpoints(tmp_path):
    from descend.train.checkpoint import history_from_state, history_to_state

    _, h = trained(epochs=3, validation=True)
    for i, record in enumerate(h.epochs):
        record.train_accuracy = 0.5 + 0.1 * i
    with open(h.to_csv(tmp_path / "run.csv"), newline="") as fh:
        rows = {int(r["step"]): r for r in csv.DictReader(fh)}
    assert [float(rows[e.step]["train_accuracy"]) for e in h.epochs] == [0.5, 0.6, 0.7]
    restored = history_from_state(history_to_state(h))
    assert [e.train_accuracy for e in restored.epochs] == [0.5, 0.6, 0.7]
    plt = pytest.importorskip("matplotlib.pyplot")
    fig = h._figure(plt, None)
    lines = {line.get_label(): line for line in fig.axes[1].get_lines()}
    assert set(lines) == {"train accuracy", "validation accuracy"}
    assert list(lines["train accuracy"].get_ydata()) == [0.5, 0.6, 0.7]
    assert list(lines["train accuracy"].get_xdata()) == [e.step + 1 for e in h.epochs]
    plt.close(fig)
    assert h.plot(tmp_path / "run.png").stat().st_size > 0
