"""StopWhen: every criterion fires for its own reason, at the first epoch (or step) where its
condition holds when recomputed from the history; messages name the criterion and value;
criteria combine with |; criteria never change the run; invalid arguments are named."""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
import pytest

import descend as ds
from descend.autodiff.ops import cross_entropy_per_sample, linear
from descend.errors import ConfigError
from descend.optim import GD, Armijo
from descend.train import Callback, StopWhen, fit


class Softmax:
    def __init__(self, d: int, k: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.W = ds.tensor(0.1 * rng.standard_normal((k, d)), requires_grad=True)
        self.b = ds.tensor(np.zeros(k), requires_grad=True)

    def __call__(self, x):
        return linear(x, self.W, self.b)

    def parameters(self):
        return [self.W, self.b]


class LinearRegression:
    def __init__(self, d: int):
        self.w = ds.tensor(np.zeros(d), requires_grad=True)

    def __call__(self, x):
        return x @ self.w

    def parameters(self):
        return [self.w]


def cross_entropy(logits, targets):
    return cross_entropy_per_sample(logits, targets).mean()


def mse(out, t):
    return ((out - t) ** 2).mean()


def regression(n: int = 24, seed: int = 0, noise: float = 0.1):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + noise * rng.standard_normal(n)
    return X, y


def two_blobs(n: int = 40, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % 2).astype(np.int64)
    X = rng.standard_normal((n, 2)) + np.where(y[:, None] == 1, 1.5, -1.5)
    return X, y


def run_regression(stop, *, lr=0.05, batch_size=None, epochs=500, callbacks=(), noise=0.1):
    X, y = regression(noise=noise)
    model = LinearRegression(3)
    opt = GD(model.parameters(), lr=lr)
    h = fit(model, mse, opt, (X, y), epochs=epochs, batch_size=batch_size, stop=stop,
            callbacks=callbacks, progress=False)
    return model, h


def epoch_losses(h):
    return [e.train_loss for e in h.epochs]


class Record(Callback):
    def __init__(self, params):
        self.params = params
        self.after: list[np.ndarray] = []

    def on_step_end(self, history, optimizer):
        self.after.append(np.concatenate([p.data.ravel().copy() for p in self.params]))


# --------------------------------------------------------------------------- each criterion
def test_max_epochs():
    _, h = run_regression(StopWhen(max_epochs=3), batch_size=5)
    assert h.stop_reason.criterion == "max_epochs"
    assert len(h.epochs) == 3 and h.steps == 3 * 5
    assert "max_epochs = 3" in str(h.stop_reason)


def test_max_steps_stops_in_the_middle_of_an_epoch():
    _, h = run_regression(StopWhen(max_steps=7), batch_size=5)  # 5 steps per epoch
    assert h.stop_reason.criterion == "max_steps"
    assert h.steps == 7 and h.stop_reason.step == 6 and h.stop_reason.epoch == 1
    assert "max_steps = 7" in str(h.stop_reason)


def test_loss_below_fires_at_the_first_epoch_below():
    threshold = 0.5
    _, h = run_regression(StopWhen(loss_below=threshold))
    r = h.stop_reason
    losses = epoch_losses(h)
    assert r.criterion == "loss_below"
    assert losses[-1] < threshold and all(v >= threshold for v in losses[:-1])
    assert len(losses) > 1  # it did not fire at once
    assert r.value == losses[-1] and r.threshold == threshold
    assert "loss" in str(r) and "<" in str(r) and "0.5" in str(r)


def test_grad_norm_below_uses_the_mean_gradient_norm_of_the_epoch():
    threshold = 1e-3
    # noiseless targets: every mini-batch gradient vanishes at the optimum
    _, h = run_regression(StopWhen(grad_norm_below=threshold), batch_size=6, lr=0.02, noise=0)
    r = h.stop_reason
    assert r.criterion == "grad_norm_below"
    per_epoch = 4
    means = [float(np.mean(h.grad_norm[i:i + per_epoch])) for i in range(0, h.steps, per_epoch)]
    assert means[-1] < threshold and all(m >= threshold for m in means[:-1])
    assert r.value == pytest.approx(means[-1], rel=1e-12)
    text = str(r)
    assert "gradient norm" in text and "<" in text and "0.001" in text


def test_grad_norm_below_on_a_full_batch_matches_numpy():
    threshold = 1e-6
    X, y = regression()
    model = LinearRegression(3)
    rec = Record(model.parameters())
    h = fit(model, mse, GD(model.parameters(), lr=Armijo()), (X, y), epochs=500,
            stop=StopWhen(grad_norm_below=threshold), callbacks=[rec], progress=False)
    assert h.stop_reason.criterion == "grad_norm_below"
    assert f"at step {h.steps - 1}" in str(h.stop_reason)  # full batch: an epoch is a step
    # every recorded norm is ||grad|| at that step's start point, recomputed in NumPy
    starts = [np.zeros(3), *rec.after[:-1]]
    norms = [float(np.linalg.norm(2 * X.T @ (X @ w - y) / len(y))) for w in starts]
    np.testing.assert_allclose(h.grad_norm, norms, rtol=1e-9)
    assert norms[-1] < threshold and all(v >= threshold for v in norms[:-1])


def test_rel_loss_change_below():
    threshold = 1e-3
    _, h = run_regression(StopWhen(rel_loss_change_below=threshold), lr=0.02)
    r = h.stop_reason
    losses = epoch_losses(h)
    changes = [abs(b - a) / max(abs(a), 1e-12) for a, b in pairwise(losses)]
    assert r.criterion == "rel_loss_change_below"
    assert changes[-1] < threshold and all(c >= threshold for c in changes[:-1])
    assert r.value == pytest.approx(changes[-1], rel=1e-12)
    assert "relative loss change" in str(r) and "<" in str(r)


def test_param_change_below_sums_the_distances_moved_in_the_epoch():
    threshold = 1e-3
    X, y = regression(noise=0.0)
    model = LinearRegression(3)
    rec = Record(model.parameters())
    h = fit(model, mse, GD(model.parameters(), lr=0.02), (X, y), epochs=2000, batch_size=8,
            stop=StopWhen(param_change_below=threshold), callbacks=[rec], progress=False)
    r = h.stop_reason
    assert r.criterion == "param_change_below"
    path = [np.zeros(3), *rec.after]
    moved = [float(np.linalg.norm(b - a)) for a, b in pairwise(path)]
    np.testing.assert_allclose(h.step_norm, moved, rtol=1e-9, atol=1e-15)
    per_epoch = [sum(moved[i:i + 3]) for i in range(0, h.steps, 3)]
    assert per_epoch[-1] < threshold and all(m >= threshold for m in per_epoch[:-1])
    assert "parameter change" in str(r) and "<" in str(r)


def test_patience_on_validation_loss():
    X, y = two_blobs()
    model = Softmax(2, 2)
    # validation labels flipped: the better the fit, the worse the validation loss
    h = fit(model, cross_entropy, GD(model.parameters(), lr=0.5), (X, y), epochs=50,
            validation=(X, 1 - y), stop=StopWhen(patience=2), progress=False)
    val = [e.val_loss for e in h.epochs]
    assert h.stop_reason.criterion == "patience"
    assert all(b > a for a, b in pairwise(val))
    assert h.best.epoch == 0 and len(h.epochs) == 3
    assert "no lower validation loss for 2 epochs" in str(h.stop_reason)


def test_patience_without_validation_watches_training_loss():
    # f(w) = (w - 3)^2 has L = 2; lr = 1.05 = 1.05 * 2/L gives w - 3 <- -1.1 (w - 3): the
    # iterates oscillate with growing amplitude and the loss grows by 1.21 per step
    X = np.ones((4, 1))
    y = np.full(4, 3.0)
    model = LinearRegression(1)
    h = fit(model, mse, GD(model.parameters(), lr=1.05), (X, y), epochs=50,
            stop=StopWhen(patience=3), progress=False)
    losses = epoch_losses(h)
    assert h.stop_reason.criterion == "patience"
    assert all(b > a for a, b in pairwise(losses))
    assert len(losses) == 4 and h.best.epoch == 0
    assert losses[1] / losses[0] == pytest.approx(1.21, rel=1e-12)
    assert "training loss" in str(h.stop_reason)


def test_time_limit():
    _, h = run_regression(StopWhen(time_limit=1e-9), batch_size=5)
    assert h.stop_reason.criterion == "time_limit"
    assert h.steps == 1
    assert "time limit" in str(h.stop_reason)


def test_completing_the_epochs_names_them():
    _, h = run_regression(None, epochs=4)
    assert h.stop_reason.criterion == "epochs"
    assert "4 epochs" in str(h.stop_reason)


# --------------------------------------------------------------------------- combining
def test_or_keeps_the_earliest_limit_and_the_loosest_threshold():
    a = StopWhen(max_epochs=10, max_steps=100, loss_below=0.1, grad_norm_below=1e-6,
                 time_limit=60.0)
    b = StopWhen(max_epochs=5, loss_below=0.2, grad_norm_below=1e-8, patience=3,
                 param_change_below=1e-4)
    c = a | b
    assert c.max_epochs == 5 and c.max_steps == 100 and c.time_limit == 60.0
    assert c.loss_below == 0.2 and c.grad_norm_below == 1e-6
    assert c.patience == 3 and c.param_change_below == 1e-4
    assert c.rel_loss_change_below is None
    assert (b | a) == c


@pytest.mark.parametrize("first", ["max_epochs", "loss_below"])
def test_combined_criteria_stop_at_whichever_holds_first(first):
    _, ref = run_regression(StopWhen(loss_below=0.5))
    n = len(ref.epochs)  # the epoch count at which loss_below fires
    epochs_limit = n - 1 if first == "max_epochs" else n + 5
    _, h = run_regression(StopWhen(max_epochs=epochs_limit) | StopWhen(loss_below=0.5))
    assert h.stop_reason.criterion == first
    assert len(h.epochs) == min(n, epochs_limit)


def test_criteria_never_change_the_run():
    _, plain = run_regression(None, batch_size=5, epochs=6)
    model_a, _ = run_regression(None, batch_size=5, epochs=6)
    model_b, watched = run_regression(
        StopWhen(loss_below=1e-30, grad_norm_below=1e-30, rel_loss_change_below=1e-30,
                 param_change_below=1e-30, patience=1000, time_limit=1e9, max_steps=10**6),
        batch_size=5, epochs=6)
    assert watched.loss == plain.loss and watched.lr == plain.lr
    assert np.array_equal(model_a.w.data, model_b.w.data)


# --------------------------------------------------------------------------- invalid arguments
INVALID = [
    ("max_epochs", 0, "0"),
    ("max_epochs", 2.5, "2.5"),
    ("max_steps", -1, "-1"),
    ("patience", 0, "0"),
    ("patience", True, "True"),
    ("loss_below", math.nan, "nan"),
    ("grad_norm_below", 0.0, "0.0"),
    ("grad_norm_below", -1e-3, "-0.001"),
    ("rel_loss_change_below", "small", "'small'"),
    ("param_change_below", -1.0, "-1.0"),
    ("time_limit", 0, "0"),
    ("time_limit", -5.0, "-5.0"),
]


@pytest.mark.parametrize("name,value,text", INVALID, ids=[f"{n}={v!r}" for n, v, _ in INVALID])
def test_invalid_stop_arguments_are_named(name, value, text):
    with pytest.raises(ConfigError) as info:
        StopWhen(**{name: value})
    assert name in str(info.value) and text in str(info.value)


# --------------------------------------------------------------------------- minimize, divergence
def test_minimize_runs_the_loop_of_fit_on_a_closure():
    import descend as ds

    x = ds.tensor(np.array([3.0, -2.0]), requires_grad=True)
    opt = ds.optim.GD([x], lr=ds.optim.Armijo())
    h = ds.train.minimize(lambda: (x * x).sum(), opt, stop=StopWhen(max_steps=50,
                                                                      loss_below=1e-12))
    assert h.stop_reason.criterion == "loss_below"
    assert h.loss[-1] < 1e-12 and h.steps == len(h.epochs)  # one step per epoch
    assert h.loss == sorted(h.loss, reverse=True)  # Armijo decreases f at every step
    with pytest.raises(ConfigError, match="budget"):
        ds.train.minimize(lambda: (x * x).sum(), opt, stop=StopWhen(loss_below=0.0))


def test_divergence_fires_on_overshoot_and_on_non_finite_values_only():
    from descend.train import Divergence, History

    h = History()
    for loss in (10.0, 12.0, 10.0 + 1e6 * 10.0):
        h.record_step(loss, 0.5, 1.0, 1, 0.1)
    rule = Divergence()
    assert rule.limit(h) == 10.0 + 1e6 * 10.0
    assert rule.check(h, 0) is None  # equal to the limit is not above it
    h.record_step(10.0 + 1e6 * 10.0 + 1e3, 0.5, 1.0, 1, 0.1)
    reason = rule.check(h, 0)
    assert reason.criterion == "diverged" and "overshooting" in reason.message
    assert "Hint: the constant step 0.5" in reason.message  # every step had that size
    h2 = History()
    h2.record_step(0.01, 0.1, 1.0, 1, 0.1)
    h2.record_step(0.02, 0.2, math.inf, 1, 0.1)
    assert "gradient norm inf" in Divergence().check(h2, 0).message
    # with f* known the scale is the initial gap: f rising 10 gaps above f_0 diverges
    h3 = History()
    for loss in (2.0, 2.0 + 10.0 * 1.0 + 1e-9):
        h3.record_step(loss, 0.1, 1.0, 1, 0.1)
    assert Divergence(10.0, f_star=1.0).check(h3, 0).criterion == "diverged"
    assert Divergence(10.0).check(h3, 0) is None  # without f*: scale max(|f_0|, 1) = 2, limit 22
    with pytest.raises(ConfigError):
        Divergence(0.0)


def _batches_of(model, loss_fn, X, y):
    import descend as ds

    def batches():
        for i in range(0, len(X), 10):
            xb, yb = ds.tensor(X[i:i + 10]), y[i:i + 10]
            yield (lambda xb=xb, yb=yb: loss_fn(model(xb), yb)), 10

    return batches


def test_train_steps_is_the_loop_of_fit_over_the_callers_closures():
    import descend as ds

    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    losses = []
    for run in ("fit", "train_steps"):
        model = ds.nn.mlp([3, 4, 2], rng=1)
        opt = ds.optim.GD(model.parameters(), lr=0.5)
        loss_fn = ds.nn.CrossEntropyLoss()
        if run == "fit":
            h = ds.train.fit(model, loss_fn, opt, (X, y), epochs=3, batch_size=10,
                             shuffle=False, progress=False, capture=False)
        else:
            h = ds.train.train_steps(opt, _batches_of(model, loss_fn, X, y), epochs=3,
                                     steps_per_epoch=4)
        losses.append(h.loss)
        assert h.stop_reason.criterion == "epochs" and len(h.epochs) == 3
    assert losses[0] == losses[1]
    # divergence is fit's rule too: named, and the last good parameters put back
    model = ds.nn.mlp([3, 4, 2], rng=1)
    opt = ds.optim.GD(model.parameters(), lr=1e6)
    big = ds.tensor(X * 1e4)
    h = ds.train.train_steps(opt, lambda: [(lambda: ds.nn.CrossEntropyLoss()(model(big), y), 40)],
                             epochs=50)
    assert h.stop_reason.criterion == "diverged"
    assert all(np.isfinite(p.data).all() for p in model.parameters())


# --------------------------------------------------------------------------- messages
@pytest.mark.parametrize(
    "value,threshold,digits",
    [(0.44513455, 0.4451354445, 6), (0.4451344445 + 4e-7, 0.4451344445 + 1e-6, 6),
     (0.0099999, 0.01, 3), (9.99999999e-7, 1e-6, 3), (0.3, 0.30000000000000004, 6),
     (1.5e-9, 1e-6, 3)],
)
def test_compared_numbers_show_the_digits_that_differ(value, threshold, digits):
    from descend.train.stopping import compared

    a, b = compared(value, threshold, digits)
    assert a != b
    assert float(a) < float(b)  # the comparison the message states can be read off it


def test_loss_below_message_tells_the_loss_from_the_threshold():
    from descend.train import History
    from descend.train.history import EpochRecord

    h = History()
    h.record_step(0.44513455, 0.1, 1.0, 1, 0.1)
    h.epochs.append(EpochRecord(epoch=0, step=0, train_loss=0.44513455))
    reason = StopWhen(loss_below=0.4451354445).check_epoch(h, 1)
    assert str(reason) == "loss 0.4451346 < 0.4451354 at step 0"


def test_divergence_names_the_step_whose_parameters_are_kept():
    from descend.train import Divergence, History

    h = History()
    h.record_step(math.nan, 0.1, math.nan, 1, 0.0)  # the very first loss: nothing to undo
    reason = Divergence.restored(Divergence().check(h, 0), h, undone=False)
    assert "the parameters kept are those at the start of step 0" in str(reason)


def test_hints_in_command_line_syntax():
    from descend.train.stopping import HINTS, for_command_line

    message = ("diverged at step 3: loss nan. Hint: the constant step 1 is too large for "
               "this problem; try a line search (lr=ds.optim.Armijo()) or a smaller step")
    assert for_command_line(message) == message.replace("lr=ds.optim.Armijo()", "--lr armijo")
    assert "(--steps armijo)" in for_command_line(message, "--steps")
    assert all(python.startswith("lr=") for python in HINTS)


def test_train_steps_records_validation_and_stops_as_fit_does():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    model = ds.nn.mlp([3, 4, 2], rng=1)
    opt = ds.optim.GD(model.parameters(), lr=0.5)
    loss_fn = ds.nn.CrossEntropyLoss()
    Xv, yv = X[:10], y[:10]
    h = ds.train.train_steps(opt, _batches_of(model, loss_fn, X, y), epochs=6,
                             steps_per_epoch=4, stop=StopWhen(patience=1),
                             validate=lambda: ds.train.evaluate(model, loss_fn, Xv, yv))
    assert all(e.val_loss is not None and e.val_accuracy is not None for e in h.epochs)
    assert h.best is not None and h.best.loss == min(e.val_loss for e in h.epochs)
    if h.stop_reason.criterion == "patience":
        assert "validation loss" in str(h.stop_reason)
    # a full batch at an exactly zero gradient: fit's `stationary` stop
    x = ds.tensor(np.zeros(2), requires_grad=True)
    opt = ds.optim.GD([x], lr=0.1)
    h = ds.train.train_steps(opt, lambda: [(lambda: (x * x).sum(), 1)], epochs=50,
                             same_batch=True)
    assert h.stop_reason.criterion == "stationary" and h.steps == 1


@pytest.mark.parametrize("capture", [False, True])
def test_a_diverging_run_keeps_the_last_parameters_with_a_good_loss(capture):
    # an overshooting constant step: the loss at the start of step 1 is already far above
    # the limit, so the parameters of step 1 are bad; the run must end on those of step 0
    data = ds.data.load_digits()
    model = ds.nn.mlp([64, 32, 10], activation="relu", rng=0)
    loss_fn = ds.nn.CrossEntropyLoss()
    opt = ds.optim.GD(model.parameters(), lr=1e5)
    history = ds.train.fit(model, loss_fn, opt, (data.X, data.y), epochs=5, batch_size=None,
                           progress=False, capture=capture)
    assert history.stop_reason.criterion == "diverged"
    assert history.loss[-1] > 1e6 * history.loss[0]
    with ds.no_grad():
        kept = loss_fn(model(ds.tensor(data.X)), data.y).item()
    assert kept == history.loss[-2]  # the last good loss, bit for bit
    assert "start of step 0" in history.stop_reason.message
    assert opt.last.updated is False and opt.last.finite is True
