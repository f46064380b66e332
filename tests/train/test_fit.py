"""fit(): batching, seeded shuffling, validation, callbacks, silence, divergence handling, a
convex problem solved to SciPy's optimum, and bad inputs."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

import descend as ds
from descend import backend
from descend.autodiff.ops import cross_entropy_per_sample, linear, softplus
from descend.errors import ConfigError, DataError
from descend.optim import GD, Armijo, StrongWolfe
from descend.train import Callback, StopWhen, fit


# --------------------------------------------------------------------------- small models
class Softmax:
    """Multinomial logistic regression: logits = x W' + b, with train/eval flags recorded."""

    def __init__(self, d: int, k: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.W = ds.tensor(0.1 * rng.standard_normal((k, d)), requires_grad=True)
        self.b = ds.tensor(np.zeros(k), requires_grad=True)
        self.training = True
        self.seen: list[tuple[bool, np.ndarray]] = []

    def __call__(self, x):
        self.seen.append((self.training, np.array(x.data)))
        return linear(x, self.W, self.b)

    @property
    def steps_seen(self) -> list[tuple[bool, np.ndarray]]:
        """The forward passes made for training steps (fit first checks one sample in
        evaluation mode, before any step)."""
        return [(t, rows) for t, rows in self.seen if t]

    def parameters(self):
        return [self.W, self.b]

    def train(self):
        self.training = True

    def eval(self):
        self.training = False


class Noisy(Softmax):
    """Adds a mask drawn from descend's global generator (as dropout does) while training."""

    def __call__(self, x):
        out = super().__call__(x)
        if self.training:
            keep = backend.global_rng().random(out.shape) >= 0.3
            out = out * (keep / 0.7)
        return out


def cross_entropy(logits, targets):
    return cross_entropy_per_sample(logits, targets).mean()


def ce_np(W, b, X, y):
    z = X @ W.T + b
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-np.mean(logp[np.arange(len(y)), y]))


def blobs(n: int = 30, d: int = 3, k: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    centres = rng.standard_normal((k, d)) * 2
    X = centres[y] + rng.standard_normal((n, d))
    return X, y.astype(np.int64)


# --------------------------------------------------------------------------- batching
@pytest.mark.parametrize("batch_size,per_epoch", [(None, 1), (10, 1), (3, 4), (4, 3), (1, 10)])
def test_steps_per_epoch(batch_size, per_epoch):
    X, y = blobs(n=10)
    model = Softmax(3, 3)
    opt = GD(model.parameters(), lr=0.1)
    h = fit(model, cross_entropy, opt, (X, y), epochs=3, batch_size=batch_size, progress=False)
    assert h.steps == 3 * per_epoch
    assert opt.steps_per_epoch == per_epoch
    assert [e.step for e in h.epochs] == [per_epoch - 1, 2 * per_epoch - 1, 3 * per_epoch - 1]
    assert h.stop_reason.criterion == "epochs"


@pytest.mark.parametrize("batch_size", [1, 3, 7])
def test_each_epoch_visits_every_sample_once(batch_size):
    X, y = blobs(n=10)
    model = Softmax(3, 3)
    # capture=False: the model counts its forward passes in Python, which a replayed step
    # does not run (replays are checked in test_capture.py)
    fit(model, cross_entropy, GD(model.parameters(), lr=0.1), (X, y), epochs=2,
        batch_size=batch_size, progress=False, capture=False)
    per_epoch = math.ceil(10 / batch_size)
    assert model.seen[0][0] is False and len(model.seen[0][1]) == 1  # the check before training
    assert len(model.steps_seen) == 2 * per_epoch  # constant lr: one forward pass per step
    orders = []
    for e in range(2):
        rows = np.concatenate(
            [b for _, b in model.steps_seen[e * per_epoch:(e + 1) * per_epoch]]
        )
        assert rows.shape == X.shape
        order = [int(np.flatnonzero((X == r).all(axis=1))[0]) for r in rows]
        assert sorted(order) == list(range(10))
        orders.append(order)
    assert orders[0] != orders[1]  # shuffled afresh each epoch


def test_no_shuffle_keeps_the_order():
    X, y = blobs(n=10)
    model = Softmax(3, 3)
    fit(model, cross_entropy, GD(model.parameters(), lr=0.1), (X, y), epochs=1,
        batch_size=4, shuffle=False, progress=False)
    np.testing.assert_array_equal(np.concatenate([b for _, b in model.steps_seen]), X)


def test_full_batch_step_is_one_gradient_step_on_all_data():
    X, y = blobs(n=12)
    model = Softmax(3, 3)
    W0, b0 = model.W.data.copy(), model.b.data.copy()
    fit(model, cross_entropy, GD(model.parameters(), lr=0.5), (X, y), epochs=1, progress=False)
    # the gradient of the mean cross-entropy, written out: (softmax - onehot)' X / n
    z = X @ W0.T + b0
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(12), y] -= 1
    np.testing.assert_allclose(model.W.data, W0 - 0.5 * p.T @ X / 12, rtol=1e-12)
    np.testing.assert_allclose(model.b.data, b0 - 0.5 * p.mean(axis=0), rtol=1e-12, atol=1e-15)


def test_iterable_of_batches():
    X, y = blobs(n=12)
    batches = [(X[:5], y[:5]), (X[5:], y[5:])]
    model = Softmax(3, 3)
    opt = GD(model.parameters(), lr=0.1)
    h = fit(model, cross_entropy, opt, batches, epochs=2, progress=False)
    assert h.steps == 4 and opt.steps_per_epoch == 2
    np.testing.assert_array_equal(model.seen[2][1], X[:5])  # the given order, every epoch


# --------------------------------------------------------------------------- seeding
def _run(seed, model_cls=Softmax, batch_size=4):
    X, y = blobs(n=20)
    model = model_cls(3, 3, seed=1)
    h = fit(model, cross_entropy, GD(model.parameters(), lr=0.3, momentum=0.5), (X, y),
            epochs=4, batch_size=batch_size, seed=seed, progress=False)
    return model, h


@pytest.mark.parametrize("model_cls", [Softmax, Noisy])
def test_same_seed_is_bit_identical_and_another_seed_differs(model_cls):
    a, ha = _run(5, model_cls)
    b, hb = _run(5, model_cls)
    c, hc = _run(6, model_cls)
    assert np.array_equal(a.W.data, b.W.data) and np.array_equal(a.b.data, b.b.data)
    assert ha.loss == hb.loss and ha.grad_norm == hb.grad_norm and ha.lr == hb.lr
    assert [e.train_loss for e in ha.epochs] == [e.train_loss for e in hb.epochs]
    assert not np.array_equal(a.W.data, c.W.data)
    assert ha.loss != hc.loss


def test_seed_reaches_randomness_in_a_full_batch_model():
    a, ha = _run(5, Noisy, batch_size=None)
    b, hb = _run(5, Noisy, batch_size=None)
    c, hc = _run(6, Noisy, batch_size=None)
    assert ha.loss == hb.loss and np.array_equal(a.W.data, b.W.data)
    assert ha.loss != hc.loss and not np.array_equal(a.W.data, c.W.data)


# --------------------------------------------------------------------------- validation
def test_validation_metrics_are_those_of_the_final_parameters():
    X, y = blobs(n=30, seed=0)
    Xv, yv = blobs(n=15, seed=1)
    model = Softmax(3, 3)
    h = fit(model, cross_entropy, GD(model.parameters(), lr=0.5), (X, y), epochs=3,
            batch_size=10, validation=(Xv, yv), progress=False)
    assert all(e.val_loss is not None and e.val_accuracy is not None for e in h.epochs)
    last = h.epochs[-1]
    W, b = model.W.data, model.b.data
    assert last.val_loss == pytest.approx(ce_np(W, b, Xv, yv), rel=1e-12)
    accuracy = float(np.mean((Xv @ W.T + b).argmax(axis=1) == yv))
    assert last.val_accuracy == pytest.approx(accuracy, abs=1e-15)
    # validation runs in eval mode, training in train mode, and train mode is restored
    for training, rows in model.seen[2:]:  # after the one-sample checks of X and Xv
        is_val = rows.shape == Xv.shape and np.array_equal(rows, Xv)
        assert training is (not is_val)
    assert model.training


def test_validation_of_regression_has_no_accuracy():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 2))
    y = X @ np.array([1.0, -1.0])
    w = ds.tensor(np.zeros(2), requires_grad=True)

    class Lin:
        def __call__(self, x):
            return x @ w

        def parameters(self):
            return [w]

    h = fit(Lin(), lambda o, t: ((o - t) ** 2).mean(), GD([w], lr=0.1), (X, y), epochs=2,
            validation=(X[:5], y[:5]), progress=False)
    assert h.epochs[-1].val_accuracy is None
    assert h.epochs[-1].val_loss == pytest.approx(float(np.mean((X[:5] @ w.data - y[:5]) ** 2)),
                                                  rel=1e-12)


# --------------------------------------------------------------------------- callbacks, output
def test_plain_callable_is_called_each_epoch_and_can_stop():
    X, y = blobs(n=12)
    model = Softmax(3, 3)
    seen = []

    def enough(history):
        seen.append(len(history.epochs))
        return len(history.epochs) == 3

    h = fit(model, cross_entropy, GD(model.parameters(), lr=0.1), (X, y), epochs=10,
            batch_size=4, callbacks=[enough], progress=False)
    assert seen == [1, 2, 3]
    assert h.stop_reason.criterion == "callback"
    assert "enough" in str(h.stop_reason)
    assert len(h.epochs) == 3 and h.steps == 9


def test_callback_object_hooks_run_per_step_and_per_epoch():
    X, y = blobs(n=12)
    model = Softmax(3, 3)

    class Count(Callback):
        def __init__(self):
            self.steps, self.epochs = [], []

        def on_step_end(self, history, optimizer):
            self.steps.append((history.steps, optimizer.last.step))
            return history.steps == 7

        def on_epoch_end(self, history, model):
            self.epochs.append(len(history.epochs))

    cb = Count()
    h = fit(model, cross_entropy, GD(model.parameters(), lr=0.1), (X, y), epochs=10,
            batch_size=4, callbacks=[cb], progress=False)
    assert cb.steps == [(k, k - 1) for k in range(1, 8)]
    assert cb.epochs == [1, 2]  # the stop came in the third epoch, before its end
    assert h.stop_reason.criterion == "callback" and h.stop_reason.step == 6
    assert "Count" in str(h.stop_reason)


@pytest.mark.parametrize("progress", [False, True])
def test_fit_is_silent_without_a_terminal(progress, capfd):
    X, y = blobs(n=12)
    model = Softmax(3, 3)
    fit(model, cross_entropy, GD(model.parameters(), lr=0.1), (X, y), epochs=3, batch_size=4,
        progress=progress)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


# --------------------------------------------------------------------------- divergence
class Record(Callback):
    """Copies the parameters after every step (the optimizer reuses its buffers)."""

    def __init__(self, params):
        self.params = params
        self.after: list[list[np.ndarray]] = []

    def on_step_end(self, history, optimizer):
        self.after.append([p.data.copy() for p in self.params])


def _least_squares(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((20, 2)) * np.array([1.0, 3.0])
    return X, X @ np.array([1.0, -2.0])


class LinearRegression:
    def __init__(self, d):
        self.w = ds.tensor(np.zeros(d), requires_grad=True)

    def __call__(self, x):
        return x @ self.w

    def parameters(self):
        return [self.w]


def mse(out, t):
    return ((out - t) ** 2).mean()


def _start_of(step: int, record: Record, initial):
    return initial if step == 0 else record.after[step - 1]


@pytest.mark.parametrize("lr,overflow", [(1.0, False), (1e200, True)],
                         ids=["explodes", "overflows"])
def test_divergence_stops_and_puts_back_finite_parameters(lr, overflow):
    X, y = _least_squares()
    L = 2 * np.linalg.eigvalsh(X.T @ X / len(X)).max()
    assert lr > 2 / L  # far beyond the stable range of a constant step
    model = LinearRegression(2)
    initial = [model.w.data.copy()]
    rec = Record(model.parameters())
    with np.errstate(over="ignore", invalid="ignore"):
        h = fit(model, mse, GD(model.parameters(), lr=lr), (X, y), epochs=1000,
                callbacks=[rec], progress=False)
    reason = h.stop_reason
    assert reason.criterion == "diverged"
    assert h.steps < 1000
    assert math.isinf(h.loss[-1]) is overflow
    assert np.isfinite(model.w.data).all()
    text = str(reason)
    assert f"step {reason.step}" in text
    assert "Armijo" in text
    back = int(re.search(r"restored to those at the start of step (\d+)", text).group(1))
    assert back <= reason.step
    np.testing.assert_array_equal(model.w.data, _start_of(back, rec, initial)[0])
    # those parameters gave a finite loss, and every earlier step's loss was finite
    assert math.isfinite(float(np.mean((X @ model.w.data - y) ** 2)))
    assert all(math.isfinite(v) for v in h.loss[: back + 1])


def test_divergence_by_explosion_is_a_million_times_the_first_loss():
    X, y = _least_squares()
    model = LinearRegression(2)
    h = fit(model, mse, GD(model.parameters(), lr=1.0), (X, y), epochs=1000, progress=False)
    assert h.loss[-1] > 1e6 * h.loss[0]
    assert all(v <= 1e6 * h.loss[0] for v in h.loss[:-1])  # it stopped at the first such step


class LogModel:
    """loss = w + 0.01 log(w) (mean over a dummy batch): GD drives w below 0, where log is NaN."""

    def __init__(self):
        self.w = ds.tensor(np.array([1.0]), requires_grad=True)

    def __call__(self, x):
        return (x * 0.0 + 1.0) * (self.w + self.w.log() * 0.01)

    def parameters(self):
        return [self.w]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_nan_in_the_middle_of_training_stops_as_diverged():
    model = LogModel()
    rec = Record(model.parameters())
    X = np.ones((4, 1))
    y = np.zeros(4)
    h = fit(model, lambda out, t: out.mean() + 0.0 * t.sum(), GD(model.parameters(), lr=0.3),
            (X, y), epochs=100, callbacks=[rec], progress=False)
    # by hand: w = 1 -> 0.697 -> 0.3927 -> 0.0851 -> -0.2500: the loss at step 4 is NaN
    w, ws = 1.0, [1.0]
    while w > 0:
        w = w - 0.3 * (1 + 0.01 / w)
        ws.append(w)
    bad = len(ws) - 1
    assert bad == 4
    assert h.stop_reason.criterion == "diverged"
    assert h.stop_reason.step == bad and h.steps == bad + 1
    assert math.isnan(h.loss[-1]) and all(math.isfinite(v) for v in h.loss[:-1])
    assert f"step {bad}" in str(h.stop_reason)
    assert np.isfinite(model.w.data).all() and model.w.data[0] > 0
    back = int(re.search(r"start of step (\d+)", str(h.stop_reason)).group(1))
    assert back == bad - 1
    np.testing.assert_array_equal(model.w.data, rec.after[back - 1][0])
    assert model.w.data[0] == pytest.approx(ws[back], rel=1e-12)


# --------------------------------------------------------------------------- a convex optimum
def _logistic_problem():
    rng = np.random.default_rng(0)
    n, d = 200, 3
    X = rng.standard_normal((n, d)) * np.array([1.0, 2.0, 0.5])
    p = 1 / (1 + np.exp(-(X @ np.array([1.0, -1.0, 2.0]) + 0.3)))
    y = (rng.random(n) < p).astype(np.float64)
    return X, y


def _logistic_np(theta, X, y):
    w, b = theta[:-1], theta[-1]
    z = X @ w + b
    s = 1 / (1 + np.exp(-z)) - y
    return (float(np.mean(np.logaddexp(0.0, z) - y * z)),
            np.concatenate([X.T @ s / len(y), [s.mean()]]))


class BinaryLogistic:
    def __init__(self, d):
        self.w = ds.tensor(np.zeros(d), requires_grad=True)
        self.b = ds.tensor(np.zeros(1), requires_grad=True)

    def __call__(self, x):
        return x @ self.w + self.b

    def parameters(self):
        return [self.w, self.b]


def logistic_loss(z, t):
    return (softplus(z) - z * t).mean()


@pytest.mark.parametrize("rule", [Armijo, StrongWolfe])
def test_full_batch_line_search_reaches_the_scipy_optimum(rule):
    scipy_optimize = pytest.importorskip("scipy.optimize")
    X, y = _logistic_problem()
    ref = scipy_optimize.minimize(_logistic_np, np.zeros(4), args=(X, y), jac=True,
                                  method="L-BFGS-B",
                                  options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 10_000})
    model = BinaryLogistic(3)
    h = fit(model, logistic_loss, GD(model.parameters(), lr=rule()), (X, y), epochs=2000,
            stop=StopWhen(grad_norm_below=1e-7), progress=False)
    assert h.stop_reason.criterion == "grad_norm_below"
    theta = np.concatenate([model.w.data, model.b.data])
    np.testing.assert_allclose(theta, ref.x, atol=1e-4)
    assert _logistic_np(theta, X, y)[0] == pytest.approx(ref.fun, abs=1e-8)
    # the loss recorded by training is the objective (checked at the last start point)
    assert h.loss[-1] == pytest.approx(ref.fun, abs=1e-8)


# --------------------------------------------------------------------------- bad inputs
def _bad_fit(**change):
    X, y = blobs(n=10)
    model = Softmax(3, 3)
    args = {"model": model, "loss_fn": cross_entropy,
            "optimizer": GD(model.parameters(), lr=0.1), "data": (X, y)}
    kwargs = {"epochs": 2, "progress": False}
    for k, v in change.items():
        (args if k in args else kwargs)[k] = v(X, y, model) if callable(v) and k == "data" else v
    return lambda: fit(args["model"], args["loss_fn"], args["optimizer"], args["data"], **kwargs)


def _nan_X(X, y, model):
    X = X.copy()
    X[6, 2] = np.nan
    return X, y


BAD_FITS = [
    ("NaN in X", {"data": _nan_X}, DataError, ["NaN", "row 6", "column 2"]),
    ("inf in y", {"data": lambda X, y, m: (X, np.where(np.arange(10) == 3, np.inf, 1.0))},
     DataError, ["inf", "row 3"]),
    ("y too short", {"data": lambda X, y, m: (X, y[:7])}, DataError, ["10", "7"]),
    ("epochs=0", {"epochs": 0}, ConfigError, ["epochs", "0"]),
    ("epochs float", {"epochs": 2.5}, ConfigError, ["epochs", "2.5"]),
    ("batch too large", {"batch_size": 11}, ConfigError, ["11", "10"]),
    ("batch zero", {"batch_size": 0}, ConfigError, ["batch_size", "0"]),
    ("optimizer type", {"optimizer": object()}, TypeError, ["object"]),
    ("stop type", {"stop": 5}, TypeError, ["int"]),
    ("validation shape", {"validation": (np.zeros((3, 3)),)}, DataError, ["validation"]),
    ("validation NaN", {"validation": (np.full((2, 3), np.nan), np.zeros(2, np.int64))},
     DataError, ["NaN", "row 0"]),
    ("batch_size with batches", {"data": lambda X, y, m: [(X, y)], "batch_size": 2},
     ConfigError, ["batch_size"]),
]


@pytest.mark.parametrize("name,change,exc,texts", BAD_FITS, ids=[b[0] for b in BAD_FITS])
def test_bad_inputs_raise_clear_errors(name, change, exc, texts):
    run = _bad_fit(**change)
    with pytest.raises(exc) as info:
        run()
    for text in texts:
        assert text in str(info.value), str(info.value)


# --------------------------------------------------------------------------- train accuracy
def _blobs(n: int = 60, seed: int = 4):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = rng.standard_normal((n, 4)) + 1.5 * np.eye(3, 4)[y]
    return X, y


def _accuracy(model, X, y) -> float:
    out = model(ds.tensor(X)).data
    return float(np.mean(out.argmax(axis=1) == y))


@pytest.mark.parametrize("lr", [0.5, Armijo()], ids=["constant", "armijo"])
def test_train_accuracy_is_counted_at_each_steps_start_not_at_trials(lr):
    X, y = _blobs()
    model = Softmax(4, 3)
    starts = []

    class Before(Callback):  # the parameters each step starts from are those the last ended at
        def on_step_end(self, history, optimizer):
            starts.append([p.data.copy() for p in model.parameters()])

    probe = Softmax(4, 3)
    expected = [_accuracy(probe, X, y)]  # epoch 0's only step starts at the initial weights
    h = fit(model, ds.nn.CrossEntropyLoss(), GD(model.parameters(), lr=lr), (X, y), epochs=4,
            progress=False, callbacks=[Before()])
    for W, b in starts[:-1]:
        probe.W.data, probe.b.data = W, b
        expected.append(_accuracy(probe, X, y))
    assert [e.train_accuracy for e in h.epochs] == expected
    assert len(set(expected)) > 1  # training changed it: the comparison is not vacuous


def test_train_accuracy_over_mini_batches_is_the_mean_over_samples():
    X, y = _blobs(n=50)  # batches of 16, 16, 16 and 2 samples
    model = Softmax(4, 3)
    h = fit(model, ds.nn.CrossEntropyLoss(), GD(model.parameters(), lr=1e-12), (X, y),
            epochs=1, batch_size=16, shuffle=False, progress=False)
    # steps of 1e-12 leave the predictions as they were: the tally is the accuracy on all of
    # X, weighted by samples (not the mean of the four batches' accuracies)
    assert h.epochs[0].train_accuracy == _accuracy(Softmax(4, 3), X, y)


def test_regression_targets_have_no_train_accuracy():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 3))
    w = ds.tensor(np.zeros(3), requires_grad=True)
    h = fit(lambda x: x @ w, ds.nn.MSELoss(), GD([w], lr=0.1), (X, X @ np.ones(3)),
            epochs=2, progress=False)
    assert [e.train_accuracy for e in h.epochs] == [None, None]


# --------------------------------------------------------------------------- callbacks
def test_on_train_end_runs_once_for_every_way_training_ends():
    X, y = _blobs()
    ends = []

    class End(Callback):
        def on_train_end(self, history, model):
            ends.append(history.stop_reason.criterion)

    for lr, stop in ((0.5, None), (0.5, StopWhen(max_steps=2)), (1e30, None)):
        model = Softmax(4, 3)
        fit(model, ds.nn.CrossEntropyLoss(), GD(model.parameters(), lr=lr), (X, y), epochs=3,
            progress=False, callbacks=[End()], stop=stop)
    assert ends == ["epochs", "max_steps", "diverged"]


def test_on_train_end_runs_when_a_step_raises():
    X, y = _blobs()
    model = Softmax(4, 3)
    ends = []

    class End(Callback):
        def on_step_end(self, history, optimizer):
            raise RuntimeError("boom")

        def on_train_end(self, history, model):
            ends.append(history.steps)

    with pytest.raises(RuntimeError, match="boom"):
        fit(model, ds.nn.CrossEntropyLoss(), GD(model.parameters(), lr=0.5), (X, y),
            epochs=3, progress=False, callbacks=[End()])
    assert ends == [1]


def test_a_callback_may_name_its_own_stop_reason():
    X, y = _blobs()
    model = Softmax(4, 3)

    class Enough(Callback):
        def on_epoch_end(self, history, model):
            if len(history.epochs) == 2:
                return ds.train.StopReason("patience", "my own reason", history.steps - 1, 1)
            return None

    h = fit(model, ds.nn.CrossEntropyLoss(), GD(model.parameters(), lr=0.5), (X, y),
            epochs=5, progress=False, callbacks=[Enough()])
    assert h.stop_reason.criterion == "patience" and str(h.stop_reason) == "my own reason"
    assert len(h.epochs) == 2


def test_history_counts_every_forward_pass_of_a_multi_iteration_step():
    # LBFGS(max_iter=3) makes up to three iterations per step: History's evaluations are
    # the call's forward passes, all of them, not the last iteration's. The loop's own
    # passes outside the steps are the same with max_iter=1, where every pass is counted.
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    y = X @ np.array([1.0, -2.0, 0.5])
    mse = ds.nn.MSELoss()

    def run(max_iter):
        model = ds.nn.Sequential(ds.nn.Linear(3, 1, rng=0, dtype=np.float64))
        calls = []

        def loss_fn(out, target):
            calls.append(1)
            return mse(out.reshape(-1), target)

        opt = ds.optim.LBFGS(model.parameters(), max_iter=max_iter)
        history = ds.train.fit(model, loss_fn, opt, (X, y), epochs=2, batch_size=None,
                               progress=False, capture=False)
        return len(calls) - sum(history.evaluations), opt.last.iterations

    outside_one, _ = run(1)
    outside_three, iterations = run(3)
    assert iterations > 1
    assert outside_three == outside_one
