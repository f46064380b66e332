"""MoMo and MoMo-Adam in the NumPy engine: each step against a NumPy transcription of the
paper's updates (Schaipp et al., ICML 2024, Algorithms 1 and 3, the proximal weight decay and
MoMo*'s online lower bound), the rule along -g, refusals, state round trips and resuming
``fit`` bit for bit. The authors' implementation (``momo``) is run beside descend.torch's in
tests/torch_bridge/test_momo.py."""

from __future__ import annotations

import math

import numpy as np
import pytest

import descend as ds
from descend.errors import ConfigError
from descend.linesearch import LineSearchStatus
from descend.optim import GD, Adam, Armijo, Cosine, Momo, MomoAdam, MomoStep, make_optimizer
from descend.optim.spec import parse_step_rule
from descend.train import fit

STEPS = 30


class LeastSquares:
    """f_b(w) = 1/2 mean((A_b w - t_b)^2) over four mini-batches of 10 rows, cycled."""

    def __init__(self, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.A = rng.standard_normal((40, 5))
        self.t = self.A @ rng.standard_normal(5) + 0.3 * rng.standard_normal(40)
        self.w0 = rng.standard_normal(5)

    def batch(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        i = step % 4
        return self.A[10 * i:10 * i + 10], self.t[10 * i:10 * i + 10]

    def value_and_grad(self, w: np.ndarray, step: int) -> tuple[float, np.ndarray]:
        A, t = self.batch(step)
        r = A @ w - t
        return 0.5 * float(np.mean(r * r)), A.T @ r / len(t)

    def closure(self, w: ds.Tensor, step: int):
        A, t = self.batch(step)
        return lambda: ((ds.tensor(A) @ w - t) ** 2).mean() * 0.5


def reference(problem: LeastSquares, steps: int, *, lr: float, beta: float, adam=None,
              bias: bool = False, decay: float = 0.0, divide: bool = True, lb: float = 0.0,
              estimate: bool = False) -> tuple[list[np.ndarray], list[float]]:
    """The paper's updates on flat vectors: the iterates and the step sizes tau_k."""
    x, lb0 = problem.w0.copy(), lb
    d = v = None
    f_bar = gamma = 0.0
    xs, taus = [], []
    for k in range(1, steps + 1):
        f, g = problem.value_and_grad(x, k - 1)
        if d is None:
            d = np.zeros_like(g) if bias else g.copy()
            f_bar, gamma = (0.0, 0.0) if bias else (f, float(g @ x))
            v = np.zeros_like(g)
        d = beta * d + (1 - beta) * g
        f_bar = beta * f_bar + (1 - beta) * f
        gamma = beta * gamma + (1 - beta) * float(g @ x)
        rho = 1 - beta**k if bias else 1.0
        if adam is not None:
            beta2, eps = adam
            v = beta2 * v + (1 - beta2) * g * g
            u = d / (np.sqrt(v / (1 - beta2**k)) + eps)
        else:
            u = d
        norm, dot, s = float(d @ u), float(d @ x), 1 + lr * decay
        if estimate and s * f_bar + dot - s * gamma < s * rho * lb:
            lb = max((s * f_bar + dot - s * gamma) / (2 * s * rho), lb0)
        tau = min(lr / rho, max(s * (f_bar - rho * lb) + dot - s * gamma, 0.0) / norm)
        if estimate:
            lb = max((f_bar + dot - gamma - 0.5 * tau * norm) / rho, lb0)
        new = x - tau * u
        if decay:
            new = new / s if divide else new - lr * decay * x
        x = new
        xs.append(x.copy())
        taus.append(tau)
    return xs, taus


def run(problem: LeastSquares, make, steps: int = STEPS) -> tuple[list[np.ndarray], list[float]]:
    w = ds.tensor(problem.w0.copy(), requires_grad=True)
    opt = make([w])
    xs, taus = [], []
    for step in range(steps):
        opt.step(problem.closure(w, step))
        xs.append(w.data.copy())
        taus.append(opt.last.lr)
    return xs, taus


CASES = {
    "momo": (lambda p: Momo(p, lr=0.05), {"lr": 0.05, "beta": 0.9}),
    "momo-bias-decay": (lambda p: Momo(p, lr=0.3, beta=0.8, weight_decay=0.05,
                                       bias_correction=True),
                        {"lr": 0.3, "beta": 0.8, "bias": True, "decay": 0.05}),
    "momo-star": (lambda p: Momo(p, lr=0.02, estimate_lb=True, lb=-1.0),
                  {"lr": 0.02, "beta": 0.9, "estimate": True, "lb": -1.0}),
    "momo-lb": (lambda p: Momo(p, lr=0.1, lb=0.05), {"lr": 0.1, "beta": 0.9, "lb": 0.05}),
    "momo-adam": (lambda p: MomoAdam(p, lr=0.5), {"lr": 0.5, "beta": 0.9,
                                                  "adam": (0.999, 1e-8), "bias": True}),
    "momo-adam-adamw-star": (
        lambda p: MomoAdam(p, lr=0.5, betas=(0.8, 0.99), weight_decay=0.1, divide=False,
                           estimate_lb=True),
        {"lr": 0.5, "beta": 0.8, "adam": (0.99, 1e-8), "bias": True, "decay": 0.1,
         "divide": False, "estimate": True}),
    "momo-adam-prox": (lambda p: MomoAdam(p, lr=0.5, weight_decay=0.1),
                       {"lr": 0.5, "beta": 0.9, "adam": (0.999, 1e-8), "bias": True,
                        "decay": 0.1}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_step_is_the_papers_update(case):
    make, settings = CASES[case]
    problem = LeastSquares()
    xs, taus = run(problem, make)
    ref_xs, ref_taus = reference(problem, STEPS, **settings)
    for k, (a, b) in enumerate(zip(xs, ref_xs)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13, err_msg=f"step {k}")
    np.testing.assert_allclose(taus, ref_taus, rtol=1e-11)
    # both regimes occur: steps at the cap alpha / rho and steps set by the model
    rho = [1 - settings["beta"] ** k if settings.get("bias") else 1.0
           for k in range(1, STEPS + 1)]
    capped = [math.isclose(t, settings["lr"] / r, rel_tol=1e-12) for t, r in zip(taus, rho)]
    assert any(capped) and not all(capped), (case, taus)


def test_the_online_bound_never_falls_below_the_given_one():
    problem = LeastSquares()
    w = ds.tensor(problem.w0.copy(), requires_grad=True)
    opt = Momo([w], lr=5.0, estimate_lb=True, lb=0.01)
    seen = []
    for step in range(STEPS):
        opt.step(problem.closure(w, step))
        seen.append(opt.rule.lb)
    assert min(seen) >= 0.01 and max(seen) > 0.01


def test_the_rule_along_minus_g_is_the_capped_polyak_step():
    # GD without momentum: MoMo with beta = 0, tau = min(lr, (f - lb)_+ / ||g||^2)
    problem = LeastSquares()
    w = ds.tensor(problem.w0.copy(), requires_grad=True)
    opt = GD([w], lr=MomoStep(lr=0.3, lb=0.01))
    for step in range(10):
        f, g = problem.value_and_grad(w.data.copy(), step)
        opt.step(problem.closure(w, step))
        assert opt.last.lr == pytest.approx(min(0.3, (f - 0.01) / float(g @ g)), rel=1e-12)


@pytest.mark.parametrize("make", [lambda p: GD(p, lr=MomoStep(), momentum=0.9),
                                  lambda p: Adam(p, lr=MomoStep())])
def test_the_rule_unbound_refuses_other_directions(make):
    problem = LeastSquares()
    w = ds.tensor(problem.w0.copy(), requires_grad=True)
    opt = make([w])
    with pytest.raises(ConfigError, match="MoMo's own direction"):  # (momentum's first
        for step in range(3):                                         # direction is -g)
            opt.step(problem.closure(w, step))


def test_the_step_needs_the_loss():
    problem = LeastSquares()
    w = ds.tensor(problem.w0.copy(), requires_grad=True)
    opt = Momo([w])
    problem.closure(w, 0)().backward()
    with pytest.raises(ConfigError, match="needs the loss"):
        opt.step()


def test_a_zero_gradient_makes_no_step():
    w = ds.tensor(np.zeros(3), requires_grad=True)
    opt = Momo([w])
    opt.step(lambda: (w * w).sum() + 1.0)
    assert opt.last.lr == 0.0 and opt.last.status is LineSearchStatus.FLAT
    np.testing.assert_array_equal(w.data, np.zeros(3))


def test_a_schedule_caps_the_step():
    problem = LeastSquares()
    w = ds.tensor(problem.w0.copy(), requires_grad=True)
    opt = Momo([w], lr=Cosine(1e-3, total_steps=20))
    for step in range(5):
        opt.step(problem.closure(w, step))
        assert opt.last.lr <= Cosine(1e-3, total_steps=20).lr(step) * (1 + 1e-12)
        assert opt.rule.last_cap == Cosine(1e-3, total_steps=20).lr(step)


def _continued(make, state_at: int, steps: int = 12):
    """Parameters after ``steps`` steps, uninterrupted, and rebuilt from the state saved at
    ``state_at`` (a new optimizer loading it)."""
    problem = LeastSquares()
    w = ds.tensor(problem.w0.copy(), requires_grad=True)
    opt = make([w])
    saved = None
    for step in range(steps):
        if step == state_at:
            saved = (opt.state_dict(), w.data.copy())
        opt.step(problem.closure(w, step))
    assert saved is not None
    w2 = ds.tensor(saved[1], requires_grad=True)
    opt2 = make([w2])
    opt2.load_state_dict(saved[0])
    for step in range(state_at, steps):
        opt2.step(problem.closure(w2, step))
    return w.data, w2.data


@pytest.mark.parametrize("make", [
    lambda p: Momo(p, lr=5.0, estimate_lb=True, weight_decay=0.01),
    lambda p: Momo(p, bias_correction=True, lr=Cosine(2.0, total_steps=20)),
    lambda p: MomoAdam(p, lr=0.5, estimate_lb=True, weight_decay=0.1),
], ids=["momo-star", "momo-schedule", "momo-adam-star"])
def test_a_loaded_state_continues_bit_for_bit(make):
    a, b = _continued(make, state_at=5)
    np.testing.assert_array_equal(a, b)


def _data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 6)).astype(np.float32)
    y = rng.integers(0, 3, 64)
    return X, y, X[:24] + 0.1, y[:24]


def _fit(make, epochs: int, **kw):
    X, y, Xv, yv = _data()
    model = ds.nn.Sequential(ds.nn.Linear(6, 16, rng=1), ds.nn.ReLU(), ds.nn.Dropout(0.2),
                             ds.nn.Linear(16, 3, rng=2))
    opt = make(model.parameters())
    history = fit(model, ds.nn.CrossEntropyLoss(), opt, (X, y), epochs=epochs, batch_size=16,
                  seed=3, validation=(Xv, yv), progress=False, **kw)
    return model, history


@pytest.mark.parametrize("name", ["momo", "momo-adam", "momo-est"])
def test_fit_resumed_from_a_checkpoint_is_bit_identical(tmp_path, name):
    def make(p):
        if name == "momo-est":
            return Momo(p, lr=parse_step_rule("momo-est:2"), weight_decay=0.01)
        return make_optimizer(name, p, weight_decay=0.01)

    full, full_history = _fit(make, 4)
    ckpt = tmp_path / "run.npz"
    _fit(make, 2, checkpoint=ckpt)
    resumed, history = _fit(make, 4, resume=ckpt)
    for (key, a), (_, b) in zip(full.state_dict().items(), resumed.state_dict().items()):
        assert np.array_equal(a, b), key
    assert history.loss == full_history.loss


def test_by_name_with_the_authors_defaults():
    w = [ds.tensor(np.zeros(3), requires_grad=True)]
    momo = make_optimizer("momo", w)
    assert type(momo) is Momo and momo.beta == 0.9
    assert repr(momo.rule) == "MomoStep(lr=1.0, lb=0.0, estimate_lb=False)"
    adam = make_optimizer("momo-adam", w, betas=(0.8, 0.99))
    assert type(adam) is MomoAdam and adam.betas == (0.8, 0.99) and adam.rule.lr == 0.01
    star = make_optimizer("momo", w, "momo-est:0.5:lb=-2")
    assert star.rule.estimate_lb and star.rule.lr == 0.5 and star.rule.lb0 == -2.0
    assert make_optimizer("momo", w, "0.25").rule.lr.value == 0.25  # a constant cap
    with pytest.raises(ConfigError, match="evaluates trial points"):
        make_optimizer("momo", w, "armijo")


BAD = [
    (lambda w: Momo(w, beta=1.0), "beta"),
    (lambda w: Momo(w, lr=-1.0), "lr"),
    (lambda w: Momo(w, lb=math.nan), "lb"),
    (lambda w: Momo(w, estimate_lb="yes"), "estimate_lb"),
    (lambda w: Momo(w, bias_correction=1), "bias_correction"),
    (lambda w: Momo(w, weight_decay=-0.1), "weight_decay"),
    (lambda w: Momo(w, lr=Armijo()), "trial points"),
    (lambda w: Momo(w, lr=MomoStep(), lb=1.0), "lb and estimate_lb"),
    (lambda w: Momo([{"params": w, "lr": 0.1}]), "its own lr"),
    (lambda w: Momo([{"params": w, "weight_decay": 0.1}]), "its own lr or weight_decay"),
    (lambda w: MomoAdam(w, betas=(0.9,)), "betas"),
    (lambda w: MomoAdam(w, betas=(0.9, 1.5)), "betas"),
    (lambda w: MomoAdam(w, divide="no"), "divide"),
    (lambda w: MomoAdam(w, eps=-1.0), "eps"),
]


@pytest.mark.parametrize(("make", "needle"), BAD)
def test_bad_arguments_are_refused_by_name(make, needle):
    w = [ds.tensor(np.zeros(3), requires_grad=True)]
    with pytest.raises(ConfigError, match=needle):
        make(w)
