"""Schedule-Free averaging in the NumPy engine: each step against the paper's three
sequences written out (x, y and z stored, as Defazio et al., 2024 state them), ScheduleFree+
against its equations, the wrapper over other directions and rules, the train/eval switch,
undo, state round trips, and ``fit``: validation at the average x, resuming bit for bit. The
authors' optimizers (``schedulefree``) run beside descend.torch's in
tests/torch_bridge/test_schedule_free.py."""

from __future__ import annotations

import math

import numpy as np
import pytest

import descend as ds
from descend.errors import ConfigError
from descend.optim import (
    GD,
    LBFGS,
    Adam,
    AdamWScheduleFree,
    Armijo,
    Momo,
    ScheduleFree,
    ScheduleFreePlus,
    SGDScheduleFree,
    make_optimizer,
)
from descend.train import fit
from descend.train.metrics import ModeSwitching, evaluate

from .test_momo import LeastSquares

STEPS = 30


def reference(problem: LeastSquares, steps: int, *, lr: float, beta: float,
              warmup: int = 0, r: float = 0.0, p: float = 2.0, decay: float = 0.0,
              adam: tuple[float, float] | None = None) -> tuple[list, list]:
    """y_t and x_t after each step, the sequences stored as the paper writes them."""
    x, y, z = (problem.w0.copy() for _ in range(3))
    v = np.zeros_like(x)
    weight_sum, lr_max = 0.0, 0.0
    ys, xs = [], []
    for k in range(steps):
        _, g = problem.value_and_grad(y, k)
        lr_k = lr * ((k + 1) / warmup if k < warmup else 1.0)
        if adam is not None:
            beta2, eps = adam
            v = beta2 * v + (1 - beta2) * g * g
            g = g / (np.sqrt(v / (1 - beta2 ** (k + 1))) + eps)
        z = z - lr_k * (g + decay * y)
        lr_max = max(lr_max, lr_k)
        weight = (k + 1) ** r * lr_max**p
        weight_sum += weight
        c = weight / weight_sum
        x = (1 - c) * x + c * z
        y = (1 - beta) * z + beta * x
        ys.append(y.copy())
        xs.append(x.copy())
    return ys, xs


def plus_reference(problem: LeastSquares, steps: int, *, lr: float = 1.0,
                   betas: tuple[float, float] = (0.9, 0.95), sf_beta1: float = 0.9,
                   eps: float = 1e-8, decay: float = 0.0, r: float = 0.0,
                   polyak_beta: float = 0.0, c_warmup: int = 0, anneal: int = 0,
                   sf_beta1_max: float = 0.965, p: float = 2.0) -> tuple[list, list, list]:
    """ScheduleFree+'s equations (ScheduleFreePlus's docstring), x, y and z stored."""
    x, y, z = (problem.w0.copy() for _ in range(3))
    m, v = np.zeros_like(x), np.zeros_like(x)
    e, weight_sum, lr_max = 0.0, 0.0, eps
    ys, xs, gammas = [], [], []
    for k in range(steps):
        progress = min(k / anneal, 1.0) if anneal else 0.0
        beta = 1 - math.exp(math.log(1 - sf_beta1) * (1 - progress)
                            + math.log(1 - sf_beta1_max) * progress)
        f, g = problem.value_and_grad(y, k)
        e = polyak_beta * e + (1 - polyak_beta) * np.abs(g).sum() * math.sqrt(math.pi / 2)
        gamma = lr * max(0.0, f + beta * float(g @ (z - x))) / (e / (1 - polyak_beta ** (k + 1)))
        lr_max = max(lr_max, gamma)
        if k < c_warmup:
            c = 1.0
        else:
            weight = (k + 1) ** r * lr_max**p
            weight_sum += weight
            c = weight / weight_sum
        z = z - gamma * gamma * decay * y
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
        z = z - gamma * (m / (1 - betas[0] ** (k + 1))) / (np.sqrt(v / (1 - betas[1] ** (k + 1)))
                                                            + eps)
        x = (1 - c) * x + c * z
        y = beta * x + (1 - beta) * z
        ys.append(y.copy())
        xs.append(x.copy())
        gammas.append(gamma)
    return ys, xs, gammas


def run(problem: LeastSquares, make, steps: int = STEPS):
    """y after each step, and x (through eval/train) after each step; the optimizer."""
    w = ds.tensor(problem.w0.copy(), requires_grad=True)
    opt = make([w])
    ys, xs = [], []
    for step in range(steps):
        opt.step(problem.closure(w, step))
        ys.append(w.data.copy())
        opt.eval()
        xs.append(w.data.copy())
        opt.train()
        assert np.array_equal(w.data, ys[-1])  # the round trip puts y back bit for bit
    return ys, xs, opt


CASES = {
    "sgd": (lambda p: SGDScheduleFree(p, lr=0.2), {"lr": 0.2, "beta": 0.9}),
    "sgd-warmup-decay-r": (
        lambda p: SGDScheduleFree(p, lr=0.3, momentum=0.7, weight_decay=0.01, warmup_steps=8,
                                  r=1.0, weight_lr_power=1.0),
        {"lr": 0.3, "beta": 0.7, "decay": 0.01, "warmup": 8, "r": 1.0, "p": 1.0}),
    "adamw": (lambda p: AdamWScheduleFree(p, lr=0.05), {"lr": 0.05, "beta": 0.9,
                                                        "adam": (0.999, 1e-8)}),
    "adamw-warmup-decay": (
        lambda p: AdamWScheduleFree(p, lr=0.05, betas=(0.8, 0.99), weight_decay=0.05,
                                    warmup_steps=10),
        {"lr": 0.05, "beta": 0.8, "adam": (0.99, 1e-8), "decay": 0.05, "warmup": 10}),
    "wrapper-gd": (lambda p: ScheduleFree(GD(p, lr=0.2), 0.9), {"lr": 0.2, "beta": 0.9}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_step_follows_the_three_sequences(case):
    make, settings = CASES[case]
    problem = LeastSquares()
    ys, xs, _ = run(problem, make)
    ref_ys, ref_xs = reference(problem, STEPS, **settings)
    for k in range(STEPS):
        np.testing.assert_allclose(ys[k], ref_ys[k], rtol=1e-12, atol=1e-13, err_msg=f"y {k}")
        np.testing.assert_allclose(xs[k], ref_xs[k], rtol=1e-12, atol=1e-13, err_msg=f"x {k}")


@pytest.mark.parametrize("settings", [
    {},
    {"lr": 0.5, "decay": 2.0, "r": 2.0, "polyak_beta": 0.9, "c_warmup": 5, "anneal": 10},
], ids=["defaults", "every-option"])
def test_schedule_free_plus_follows_its_equations(settings):
    problem = LeastSquares()
    names = {"decay": "weight_decay", "anneal": "sf_beta1_anneal_steps"}
    options = {names.get(k, k): v for k, v in settings.items()}
    ys, xs, opt = run(problem, lambda p: ScheduleFreePlus(p, **options))
    ref_ys, ref_xs, gammas = plus_reference(problem, STEPS, **settings)
    for k in range(STEPS):
        np.testing.assert_allclose(ys[k], ref_ys[k], rtol=1e-12, atol=1e-13, err_msg=f"y {k}")
        np.testing.assert_allclose(xs[k], ref_xs[k], rtol=1e-12, atol=1e-13, err_msg=f"x {k}")
    assert opt.last.lr == pytest.approx(gammas[-1], rel=1e-12)


def test_eval_puts_the_average_and_train_recomputes_y_after_a_change():
    problem = LeastSquares()
    w = ds.tensor(problem.w0.copy(), requires_grad=True)
    opt = SGDScheduleFree([w], lr=0.2)
    assert opt.training and isinstance(opt, ModeSwitching)
    assert not isinstance(GD([ds.tensor(np.zeros(2), requires_grad=True)]), ModeSwitching)
    opt.eval()  # before any step x = y = z: nothing moves
    np.testing.assert_array_equal(w.data, problem.w0)
    opt.train()
    for step in range(5):
        opt.step(problem.closure(w, step))
    z = opt.averages.z[0].copy()
    opt.eval()
    assert not opt.training
    with pytest.raises(ConfigError, match="evaluation mode"):
        opt.step(problem.closure(w, 5))
    loaded = w.data + 1.0  # a model loaded while evaluating: y is recomputed from it
    w.data = loaded.copy()
    opt.train()
    np.testing.assert_allclose(w.data, loaded + (1 - 0.9) * (z - loaded), rtol=1e-15)


def test_the_wrapped_rule_sets_z_s_step():
    # Armijo searches along -g(y) from y; z moves by the step it accepted
    problem = LeastSquares()
    w = ds.tensor(problem.w0.copy(), requires_grad=True)
    opt = ScheduleFree(GD([w], lr=Armijo(c1=0.1)))
    losses = []
    for step in range(STEPS):
        y = w.data.copy()
        z = y if opt.averages.z is None else opt.averages.z[0].copy()
        _, g = problem.value_and_grad(y, step)
        losses.append(float(opt.step(problem.closure(w, step)).item()))
        np.testing.assert_allclose(opt.averages.z[0], z - opt.last.lr * g, rtol=1e-12,
                                   atol=1e-14)
        assert opt.last.evaluations >= 2  # the search's trials on the same batch
    assert np.mean(losses[-4:]) < np.mean(losses[:4])


@pytest.mark.parametrize("make", [
    lambda p: ScheduleFree(Adam(p, lr=0.05, betas=(0.0, 0.999))),
    lambda p: ScheduleFree(Momo(p, beta=0.0, lr=0.5)),
    lambda p: ScheduleFree(GD(p, lr=0.1, momentum=0.5), beta=0.5, warmup_steps=5),
], ids=["adam", "momo", "momentum"])
def test_it_wraps_other_directions_and_rules(make):
    problem = LeastSquares()
    w = ds.tensor(problem.w0.copy(), requires_grad=True)
    opt = make([w])
    losses = [float(opt.step(problem.closure(w, step)).item()) for step in range(40)]
    assert np.mean(losses[-4:]) < np.mean(losses[:4])


def test_learning_directions_and_double_wrapping_are_refused():
    w = [ds.tensor(np.zeros(3), requires_grad=True)]
    with pytest.raises(ConfigError, match="curvature pairs"):
        ScheduleFree(LBFGS(w))
    with pytest.raises(TypeError, match="wraps a descend optimizer"):
        ScheduleFree(SGDScheduleFree(w))
    with pytest.raises(ConfigError, match="Schedule-Free already"):
        make_optimizer("sf-sgd", w, schedule_free=0.9)


def test_undo_takes_back_the_step_and_its_averages():
    problem = LeastSquares()
    w = ds.tensor(problem.w0.copy(), requires_grad=True)
    opt = AdamWScheduleFree([w], lr=0.05)
    for step in range(3):
        opt.step(problem.closure(w, step))
    before = (w.data.copy(), opt.averages.z[0].copy(), opt.averages.k, opt.averages.weight_sum)
    opt.step(problem.closure(w, 3))
    assert opt.undo()
    assert np.array_equal(w.data, before[0]) and np.array_equal(opt.averages.z[0], before[1])
    assert (opt.averages.k, opt.averages.weight_sum) == before[2:]
    assert not opt.undo()


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("make", [
    lambda p: AdamWScheduleFree(p, lr=0.05, warmup_steps=3, weight_decay=0.01),
    lambda p: ScheduleFreePlus(p, sf_beta1_anneal_steps=8, polyak_beta=0.5),
], ids=["adamw", "plus"])
def test_a_loaded_state_continues_bit_for_bit(make, training):
    problem = LeastSquares()
    w = ds.tensor(problem.w0.copy(), requires_grad=True)
    opt = make([w])
    for step in range(12):
        if step == 5:
            if not training:
                opt.eval()
            saved = (opt.state_dict(), w.data.copy())
            opt.train()
        opt.step(problem.closure(w, step))
    w2 = ds.tensor(saved[1], requires_grad=True)
    opt2 = make([w2])
    opt2.load_state_dict(saved[0])
    assert opt2.training is training
    opt2.train()
    for step in range(5, 12):
        opt2.step(problem.closure(w2, step))
    if training:  # y saved as it was: the same bits
        np.testing.assert_array_equal(w2.data, w.data)
    else:  # x saved, y recomputed from it and z: the same up to that rounding
        np.testing.assert_allclose(w2.data, w.data, rtol=1e-12)


def _data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 6)).astype(np.float32)
    y = rng.integers(0, 3, 64)
    return X, y, X[:24] + 0.1, y[:24]


def _fit(make, epochs: int, *, validation: bool = True, **kw):
    X, y, Xv, yv = _data()
    model = ds.nn.Sequential(ds.nn.Linear(6, 16, rng=1), ds.nn.ReLU(), ds.nn.Dropout(0.2),
                             ds.nn.Linear(16, 3, rng=2))
    opt = make(model.parameters())
    history = fit(model, ds.nn.CrossEntropyLoss(), opt, (X, y), epochs=epochs, batch_size=16,
                  seed=3, validation=(Xv, yv) if validation else None, progress=False, **kw)
    return model, opt, history


def test_fit_validates_at_the_average_and_ends_there():
    _, _, Xv, yv = _data()
    model, opt, history = _fit(lambda p: AdamWScheduleFree(p, lr=0.01), 3, keep_best=True)
    assert not opt.training  # fit returns with the model at x
    at_x = evaluate(model, ds.nn.CrossEntropyLoss(), Xv, yv)["loss"]
    assert history.epochs[-1].val_loss == at_x
    opt.train()
    at_y = evaluate(model, ds.nn.CrossEntropyLoss(), Xv, yv)["loss"]
    assert at_y != at_x
    best = history.best
    assert best.state is not None and best.epoch == int(np.argmin(
        [e.val_loss for e in history.epochs]))
    # evaluating does not perturb training: the same run without validation, the same bits
    plain, _, plain_history = _fit(lambda p: AdamWScheduleFree(p, lr=0.01), 3, validation=False)
    opt.eval()
    for a, b in zip(model.parameters(), plain.parameters()):
        assert np.array_equal(a.data, b.data)
    assert plain_history.loss == history.loss


@pytest.mark.parametrize("name", ["sf-sgd", "sf-adamw", "sf-plus", "sf-over-momo"])
def test_fit_resumed_from_a_checkpoint_is_bit_identical(tmp_path, name):
    def make(p):
        if name == "sf-over-momo":
            return make_optimizer("momo", p, schedule_free=0.9)
        return make_optimizer(name, p, "0.05" if name == "sf-sgd" else None,
                              weight_decay=0.01)

    full, _, full_history = _fit(make, 4)
    ckpt = tmp_path / "run.npz"
    _fit(make, 2, checkpoint=ckpt)
    resumed, _, history = _fit(make, 4, resume=ckpt)
    for (key, a), (_, b) in zip(full.state_dict().items(), resumed.state_dict().items()):
        assert np.array_equal(a, b), key
    assert history.loss == full_history.loss


def test_by_name_with_the_authors_defaults():
    w = [ds.tensor(np.zeros(3), requires_grad=True)]
    sgd = make_optimizer("sf-sgd", w)
    assert type(sgd) is SGDScheduleFree and sgd.beta == 0.9 and sgd.rule.value == 1.0
    adamw = make_optimizer("sf-adamw", w, warmup_steps=100, betas=(0.95, 0.99))
    assert type(adamw) is AdamWScheduleFree and adamw.rule.value == 0.0025
    assert adamw.beta == 0.95 and adamw.warmup_steps == 100
    assert (adamw.direction.b1, adamw.direction.b2) == (0.0, 0.99)
    plus = make_optimizer("sf-plus", w)
    assert type(plus) is ScheduleFreePlus and (plus.direction.b1, plus.direction.b2) == (0.9, 0.95)
    wrapped = make_optimizer("gd", w, "armijo", schedule_free=0.8)
    assert type(wrapped) is ScheduleFree and wrapped.beta == 0.8
    assert type(wrapped.rule) is Armijo


BAD = [
    (lambda w: SGDScheduleFree(w, momentum=0.0), ConfigError, "beta"),
    (lambda w: SGDScheduleFree(w, momentum=1.0), ConfigError, "beta"),
    (lambda w: SGDScheduleFree(w, warmup_steps=-1), ConfigError, "warmup_steps"),
    (lambda w: SGDScheduleFree(w, r=-1.0), ConfigError, "r"),
    (lambda w: SGDScheduleFree(w, weight_lr_power=math.nan), ConfigError, "weight_lr_power"),
    (lambda w: AdamWScheduleFree(w, weight_decay=-1.0), ConfigError, "weight_decay"),
    (lambda w: AdamWScheduleFree(w, betas=0.9), ConfigError, "betas"),
    (lambda w: ScheduleFreePlus(w, polyak_beta=1.0), ConfigError, "polyak_beta"),
    (lambda w: ScheduleFreePlus(w, c_warmup=1.5), ConfigError, "c_warmup"),
    (lambda w: ScheduleFreePlus(w, sf_beta1_max=1.0), ConfigError, "sf_beta1_max"),
    (lambda w: ScheduleFree(w), TypeError, "wraps a descend optimizer"),
]


@pytest.mark.parametrize(("make", "error", "needle"), BAD)
def test_bad_arguments_are_refused_by_name(make, error, needle):
    w = [ds.tensor(np.zeros(3), requires_grad=True)]
    with pytest.raises(error, match=needle):
        make(w)


def test_state_without_the_averages_is_refused():
    w = [ds.tensor(np.zeros(3), requires_grad=True)]
    state = GD(w).state_dict()
    with pytest.raises(ConfigError, match="schedule_free"):
        SGDScheduleFree(w).load_state_dict(state)
