"""DoG, L-DoG, Prodigy, D-Adaptation (SGD and Adam forms) in descend's NumPy engine.

Each rule is checked against a reference written here in plain NumPy from the formulas of
its paper and its authors' code (Adam's moments weighted by d as the authors keep them, not
divided by it as ``RescaledAdam`` does), on a least-squares objective of two parameter
tensors: the same trajectory and step sizes to 1e-10 relative. Then what the protocol
promises: the direction a rule brings, which optimizers each rule refuses, parameter
groups, layer-wise step sizes, zero gradients, state_dict and ``fit`` checkpoint round trips
that end bit-identical to an uninterrupted run, and one table of invalid arguments.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

import descend as ds
from descend.errors import ConfigError
from descend.linesearch import LineSearchStatus
from descend.optim import (
    GD,
    LBFGS,
    Adam,
    DAdaptAdam,
    DAdaptSGD,
    DoG,
    LDoG,
    Prodigy,
    Subgradient,
    make_optimizer,
    parse_step_rule,
)
from descend.optim.directions import RescaledAdam
from descend.optim.extend import StepContext
from descend.train import fit

RTOL = 1e-10


# --------------------------------------------------------------------------- the objective
class LeastSquares:
    """f(w, c) = 1/2 mean((X w + Z c - t)^2): convex, two parameter tensors."""

    def __init__(self, seed: int = 0, n: int = 40):
        rng = np.random.default_rng(seed)
        self.X = rng.standard_normal((n, 5))
        self.Z = rng.standard_normal((n, 3))
        self.t = rng.standard_normal(n) + self.X @ rng.standard_normal(5)
        self.start = [rng.standard_normal(5), rng.standard_normal(3)]

    def grad(self, xs: list[np.ndarray]) -> list[np.ndarray]:
        r = (self.X @ xs[0] + self.Z @ xs[1] - self.t) / len(self.t)
        return [self.X.T @ r, self.Z.T @ r]

    def params(self) -> list[ds.Tensor]:
        return [ds.tensor(a.copy(), requires_grad=True) for a in self.start]

    def closure(self, ps: list[ds.Tensor]):
        X, Z, t = ds.tensor(self.X), ds.tensor(self.Z), ds.tensor(self.t)
        return lambda: ((X @ ps[0] + Z @ ps[1] - t) ** 2).mean() * 0.5

    def optimum(self) -> list[np.ndarray]:
        A = np.hstack([self.X, self.Z])
        sol = np.linalg.lstsq(A, self.t, rcond=None)[0]
        return [sol[:5], sol[5:]]


def _norm(xs: list[np.ndarray]) -> float:
    return math.sqrt(sum(float(a @ a) for a in xs))


# --------------------------------------------------------------------------- references
def dog_reference(problem, steps, layerwise=False, lr=1.0, reps_rel=1e-6, eps=1e-8):
    """DoG / L-DoG (Ivgi et al. 2023): eta = lr rbar / sqrt(eps + sum ||g||^2)."""
    x0 = [a.copy() for a in problem.start]
    xs = [a.copy() for a in problem.start]
    blocks = [[i] for i in range(len(xs))] if layerwise else [list(range(len(xs)))]
    rbar = [reps_rel * (1 + _norm([x0[i] for i in b])) for b in blocks]
    G = [eps] * len(blocks)
    out = []
    for _ in range(steps):
        g = problem.grad(xs)
        for j, b in enumerate(blocks):
            rbar[j] = max(rbar[j], _norm([xs[i] - x0[i] for i in b]))
            G[j] += _norm([g[i] for i in b]) ** 2
        etas = [lr * r / math.sqrt(s) for r, s in zip(rbar, G)]
        for j, b in enumerate(blocks):
            for i in b:
                xs[i] = xs[i] - etas[j] * g[i]
        out.append(([a.copy() for a in xs], etas))
    return out


def dadapt_sgd_reference(problem, steps, lr=1.0, d0=1e-6, growth=math.inf):
    """D-Adaptation SGD (the authors' DAdaptSGD, momentum 0): z = x0 - s, x = z."""
    x0 = [a.copy() for a in problem.start]
    s = [np.zeros_like(a) for a in x0]
    d, numerator, g0 = d0, 0.0, None
    out = []
    for _ in range(steps):
        g = problem.grad([a - b for a, b in zip(x0, s)])
        g0 = _norm(g) if g0 is None else g0
        lam = d * lr / g0
        numerator += lam * sum(float(a @ b) for a, b in zip(g, s))
        s = [a + lam * b for a, b in zip(s, g)]
        d = max(d, min(2 * numerator / _norm(s), d * growth))
        out.append(([a - b for a, b in zip(x0, s)], [lam]))
    return out


def dadapt_adam_reference(problem, steps, lr=1.0, d0=1e-6, betas=(0.9, 0.999), eps=1e-8):
    """D-Adaptation Adam as the authors' DAdaptAdam: m holds lambda-weighted gradients."""
    b1, b2 = betas
    b3 = math.sqrt(b2)
    xs = [a.copy() for a in problem.start]
    m = [np.zeros_like(a) for a in xs]
    v = [np.zeros_like(a) for a in xs]
    s = [np.zeros_like(a) for a in xs]
    d, numerator = d0, 0.0
    out = []
    for _ in range(steps):
        g = problem.grad(xs)
        lam = d * lr
        acc = lam * sum(float(gi @ (si / (np.sqrt(vi) + eps))) for gi, si, vi in zip(g, s, v))
        m = [b1 * a + (1 - b1) * lam * gi for a, gi in zip(m, g)]
        v = [b2 * a + (1 - b2) * gi * gi for a, gi in zip(v, g)]
        s = [b3 * a + (1 - b3) * lam * gi for a, gi in zip(s, g)]
        numerator = b3 * numerator + (1 - b3) * acc
        l1 = sum(float(np.abs(a).sum()) for a in s)
        d = max(d, numerator / ((1 - b3) * l1))
        xs = [x - mi / (np.sqrt(vi) + eps) for x, mi, vi in zip(xs, m, v)]
        out.append(([a.copy() for a in xs], [lam]))
    return out


def prodigy_reference(problem, steps, lr=1.0, d0=1e-6, betas=(0.9, 0.999), eps=1e-8,
                      d_coef=1.0):
    """Prodigy (Mishchenko & Defazio 2024, Algorithm 4; prodigyopt 1.1.2)."""
    b1, b2 = betas
    b3 = math.sqrt(b2)
    x0 = [a.copy() for a in problem.start]
    xs = [a.copy() for a in problem.start]
    m = [np.zeros_like(a) for a in xs]
    v = [np.zeros_like(a) for a in xs]
    s = [np.zeros_like(a) for a in xs]
    d, d_max, r = d0, d0, 0.0
    out = []
    for _ in range(steps):
        g = problem.grad(xs)
        lam = d * lr
        r = b3 * r + (d / d0) * lam * sum(float(gi @ (a - x)) for gi, a, x in zip(g, x0, xs))
        m = [b1 * a + (1 - b1) * d * gi for a, gi in zip(m, g)]
        v = [b2 * a + (1 - b2) * d * d * gi * gi for a, gi in zip(v, g)]
        s = [b3 * a + (d / d0) * lam * gi for a, gi in zip(s, g)]
        d_hat = d_coef * r / sum(float(np.abs(a).sum()) for a in s)
        new = max(d, d_hat) if d == d0 else d
        d_max = max(d_max, d_hat)
        new = min(d_max, new * math.inf)  # growth_rate = inf: d follows d_max
        xs = [x - lam * mi / (np.sqrt(vi) + new * eps) for x, mi, vi in zip(xs, m, v)]
        d = new
        out.append(([a.copy() for a in xs], [lam]))
    return out


CASES = {
    # name: (optimizer over descend's parameters, the reference's trajectory)
    "dog": (lambda ps: GD(ps, lr=DoG(reps_rel=1e-3)),
            lambda p, n: dog_reference(p, n, reps_rel=1e-3)),
    "ldog": (lambda ps: GD(ps, lr=LDoG(reps_rel=1e-3)),
             lambda p, n: dog_reference(p, n, layerwise=True, reps_rel=1e-3)),
    "dog-subgradient": (lambda ps: Subgradient(ps, lr=DoG(lr=0.5, reps_rel=1e-3)),
                        lambda p, n: dog_reference(p, n, lr=0.5, reps_rel=1e-3)),
    "dadapt-sgd": (lambda ps: GD(ps, lr=DAdaptSGD()), dadapt_sgd_reference),
    "dadapt-sgd-growth": (lambda ps: GD(ps, lr=DAdaptSGD(lr=0.5, growth_rate=1.2)),
                          lambda p, n: dadapt_sgd_reference(p, n, lr=0.5, growth=1.2)),
    "dadapt-adam": (lambda ps: GD(ps, lr=DAdaptAdam()), dadapt_adam_reference),
    "dadapt-adam-over-adam": (
        lambda ps: Adam(ps, lr=DAdaptAdam(d0=1e-3), betas=(0.8, 0.99), eps=1e-6),
        lambda p, n: dadapt_adam_reference(p, n, d0=1e-3, betas=(0.8, 0.99), eps=1e-6)),
    "prodigy": (lambda ps: GD(ps, lr=Prodigy()), prodigy_reference),
    "prodigy-over-adam": (
        lambda ps: Adam(ps, lr=Prodigy(d_coef=0.5), betas=(0.8, 0.99), eps=1e-6),
        lambda p, n: prodigy_reference(p, n, d_coef=0.5, betas=(0.8, 0.99), eps=1e-6)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_each_rule_follows_its_reference(name):
    make, reference = CASES[name]
    problem = LeastSquares()
    ps = problem.params()
    opt = make(ps)
    closure = problem.closure(ps)
    steps = 60
    expected = reference(problem, steps)
    lrs = set()
    for k, (xs, etas) in enumerate(expected):
        opt.step(closure)
        for p, x in zip(ps, xs):
            np.testing.assert_allclose(p.data, x, rtol=RTOL, atol=1e-14, err_msg=f"step {k}")
        ours = opt.rule.eta if name == "ldog" else [opt.last.lr]
        np.testing.assert_allclose(ours, etas, rtol=RTOL, err_msg=f"step {k}")
        lrs.add(opt.last.lr)
    assert len(lrs) >= 5  # the step size adapted
    assert _norm([p.data - a for p, a in zip(ps, problem.start)]) > 1e-2  # and it moved


def test_dog_first_step_is_r_eps_over_the_gradient():
    problem = LeastSquares()
    ps = problem.params()
    opt = GD(ps, lr=DoG())
    opt.step(problem.closure(ps))
    g = problem.grad(problem.start)
    r_eps = 1e-6 * (1 + _norm(problem.start))  # the paper's r_eps = 1e-6 (1 + ||x_0||)
    assert opt.last.lr == pytest.approx(r_eps / math.sqrt(_norm(g) ** 2 + 1e-8), rel=1e-12)


def test_ldog_moves_each_tensor_by_its_own_step_and_reports_the_whole_move():
    problem = LeastSquares()
    ps = problem.params()
    opt = GD(ps, lr=LDoG(reps_rel=1e-3))
    closure = problem.closure(ps)
    for _ in range(5):
        before = [p.data.copy() for p in ps]
        g = problem.grad(before)
        opt.step(closure)
        etas = opt.rule.eta
        assert len(etas) == 2 and etas[0] != etas[1]
        for p, x, gi, eta in zip(ps, before, g, etas):
            np.testing.assert_allclose(p.data, x - eta * gi, rtol=1e-12)
        moved = _norm([p.data - x for p, x in zip(ps, before)])
        assert opt.last.step_norm == pytest.approx(moved, rel=1e-12)


def test_dadapt_sgd_never_overestimates_the_distance_on_a_convex_problem():
    # the paper's Lemma: d_hat <= D = ||x_0 - x*|| for convex f, so d_k <= D throughout
    problem = LeastSquares()
    D = _norm([a - b for a, b in zip(problem.start, problem.optimum())])
    ps = problem.params()
    opt = GD(ps, lr=DAdaptSGD())
    closure = problem.closure(ps)
    for _ in range(300):
        opt.step(closure)
        assert opt.rule.d <= D * (1 + 1e-12)
    assert opt.rule.d > 0.1 * D  # and it rose from 1e-6 to the scale of D


# --------------------------------------------------------------------------- the protocol
def _params():
    return LeastSquares().params()


def test_rules_that_bring_adam_moments_put_them_in_place_of_gd_and_adam():
    for rule in (Prodigy, DAdaptAdam):
        opt = GD(_params(), lr=rule())
        assert isinstance(opt.direction, RescaledAdam)
        assert (opt.direction.b1, opt.direction.b2, opt.direction.eps) == (0.9, 0.999, 1e-8)
        opt = make_optimizer("adam", _params(), rule.__name__.lower().replace(
            "dadaptadam", "dadapt-adam"), betas=(0.8, 0.99), eps=1e-6)
        assert isinstance(opt.direction, RescaledAdam)
        assert (opt.direction.b1, opt.direction.b2, opt.direction.eps) == (0.8, 0.99, 1e-6)


@pytest.mark.parametrize("make, match", [
    (lambda r: GD(_params(), lr=r, momentum=0.9), "Adam's moments"),
    (lambda r: LBFGS(_params(), lr=r), "Adam's moments"),
])
@pytest.mark.parametrize("rule", [Prodigy, DAdaptAdam])
def test_directions_the_adam_moment_rules_cannot_replace_are_refused(make, match, rule):
    with pytest.raises(ConfigError, match=match):
        make(rule())


@pytest.mark.parametrize("rule", [DoG, LDoG, DAdaptSGD])
@pytest.mark.parametrize("make", [
    lambda r: GD(_params(), lr=r, momentum=0.9),
    lambda r: Adam(_params(), lr=r),
    lambda r: LBFGS(_params(), lr=r),
])
def test_the_gradient_rules_refuse_other_directions(rule, make):
    with pytest.raises(ConfigError, match="negative gradient only"):
        make(rule())


def test_one_rule_drives_one_optimizer():
    rule = Prodigy()
    GD(_params(), lr=rule)
    with pytest.raises(ConfigError, match="already drives another optimizer"):
        GD(_params(), lr=rule)


def test_a_rule_outside_an_optimizer_says_what_it_needs():
    ctx = StepContext(0, 1.0, 1.0, 1.0, -1.0)
    for rule in (DoG(), LDoG(), DAdaptSGD(), Prodigy(), DAdaptAdam()):
        with pytest.raises(ConfigError, match="lr of a descend optimizer"):
            rule(ctx)


def test_parameter_groups_each_with_their_own_rule():
    problem = LeastSquares()
    ps = problem.params()
    opt = GD([{"params": [ps[0]], "lr": LDoG(reps_rel=1e-3)},
              {"params": [ps[1]], "lr": 0.05}])
    closure = problem.closure(ps)
    expected = dog_reference(problem, 1, layerwise=True, reps_rel=1e-3)[0][1][0]
    before = [p.data.copy() for p in ps]
    g = problem.grad(before)
    opt.step(closure)
    np.testing.assert_allclose(ps[0].data, before[0] - expected * g[0], rtol=1e-12)
    np.testing.assert_allclose(ps[1].data, before[1] - 0.05 * g[1], rtol=1e-12)
    assert [grp["step_size"] for grp in opt.param_groups] == [pytest.approx(expected), 0.05]
    assert [grp["lr"] for grp in opt.param_groups] == [1.0, 0.05]  # a factor; the lr
    shared = DoG()
    with pytest.raises(ConfigError, match="give each group that uses it its own"):
        GD([{"params": [ps[0]], "lr": shared}, {"params": [ps[1]], "lr": shared},
            {"params": [ds.tensor(np.ones(2), requires_grad=True)], "lr": 0.1}])


def test_zero_gradients_make_no_step():
    for rule in (DoG(), LDoG(), DAdaptSGD(), Prodigy(), DAdaptAdam()):
        x = ds.tensor(np.zeros(3), requires_grad=True)
        opt = GD([x], lr=rule)
        for _ in range(3):
            opt.step(lambda x=x: (x * x).sum())
            np.testing.assert_array_equal(x.data, 0.0)
        if not isinstance(rule, DoG):
            assert opt.last.lr == 0.0 and opt.last.status is LineSearchStatus.FLAT
    # D-Adaptation SGD scales by the first nonzero gradient: it waits for one
    x = ds.tensor(np.zeros(3), requires_grad=True)
    opt = GD([x], lr=DAdaptSGD())
    opt.step(lambda: (x * x).sum())
    opt.step(lambda: ((x - 1.0) ** 2).sum())
    assert opt.rule.g0_norm == pytest.approx(2 * math.sqrt(3)) and opt.last.lr > 0


# --------------------------------------------------------------------------- the registry
@pytest.mark.parametrize("spec, rule", [
    ("dog", DoG()), ("dog:0.5:1e-4", DoG(lr=0.5, reps_rel=1e-4)),
    ("dog:init_eta=0.01", DoG(init_eta=0.01)), ("ldog", LDoG()),
    ("prodigy", Prodigy()), ("prodigy:1:0.5:growth_rate=1.02",
                             Prodigy(d_coef=0.5, growth_rate=1.02)),
    ("prodigy:beta3=0.99:d0=1e-7", Prodigy(beta3=0.99, d0=1e-7)),
    ("dadapt-adam", DAdaptAdam()), ("dadapt-adam:0.5:d0=1e-5", DAdaptAdam(lr=0.5, d0=1e-5)),
    ("dadapt-sgd", DAdaptSGD()), ("dadapt-sgd:growth_rate=1.5", DAdaptSGD(growth_rate=1.5)),
])
def test_specs(spec, rule):
    assert repr(parse_step_rule(spec)) == repr(rule)


# --------------------------------------------------------------------------- state
MAKERS = {
    "dog": lambda ps: GD(ps, lr=DoG(reps_rel=1e-3)),
    "ldog": lambda ps: GD(ps, lr=LDoG(reps_rel=1e-3), weight_decay=0.01),
    "dadapt-sgd": lambda ps: GD(ps, lr=DAdaptSGD()),
    "dadapt-adam": lambda ps: Adam(ps, lr=DAdaptAdam(bias_correction=True)),
    "prodigy": lambda ps: GD(ps, lr=Prodigy(growth_rate=1.1)),
}


@pytest.mark.parametrize("name", list(MAKERS))
def test_state_dict_round_trip_continues_bit_for_bit(name):
    problem = LeastSquares()
    ps, qs = problem.params(), problem.params()
    opt = MAKERS[name](ps)
    closure = problem.closure(ps)
    for _ in range(10):
        opt.step(closure)
    state = copy.deepcopy(opt.state_dict())
    for q, p in zip(qs, ps):
        q.data = p.data.copy()
    resumed = MAKERS[name](qs)
    resumed.load_state_dict(state)
    resumed_closure = problem.closure(qs)
    for _ in range(10):
        opt.step(closure)
        resumed.step(resumed_closure)
        assert resumed.last.lr == opt.last.lr
    for p, q in zip(ps, qs):
        np.testing.assert_array_equal(p.data, q.data)


def _digits_run(name, epochs, checkpoint=None, resume=None):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((96, 6)).astype(np.float32)
    y = (X @ rng.standard_normal((6, 3))).argmax(axis=1)
    model = ds.nn.Sequential(ds.nn.Linear(6, 16, rng=1), ds.nn.ReLU(), ds.nn.Linear(16, 3, rng=2))
    opt = MAKERS[name](model.parameters())
    history = fit(model, ds.nn.CrossEntropyLoss(), opt, (X, y), epochs=epochs, batch_size=16,
                  seed=3, progress=False, checkpoint=checkpoint, resume=resume)
    return model, history


@pytest.mark.parametrize("name", list(MAKERS))
def test_fit_resumes_from_a_checkpoint_bit_identical(tmp_path, name):
    full, full_history = _digits_run(name, 4)
    ckpt = tmp_path / "run.npz"
    _digits_run(name, 2, checkpoint=ckpt)
    resumed, history = _digits_run(name, 4, resume=ckpt)
    for (key, a), (_, b) in zip(full.state_dict().items(), resumed.state_dict().items()):
        assert np.array_equal(a, b), key
    assert history.loss == full_history.loss
    assert history.lr == full_history.lr


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("make, error", [
    (lambda: DoG(lr=0), ConfigError),
    (lambda: DoG(reps_rel=-1e-6), ConfigError),
    (lambda: DoG(eps=math.nan), ConfigError),
    (lambda: LDoG(init_eta=0.0), ConfigError),
    (lambda: DAdaptSGD(d0=0), ConfigError),
    (lambda: DAdaptSGD(growth_rate=0.5), ConfigError),
    (lambda: DAdaptAdam(lr=-1), ConfigError),
    (lambda: DAdaptAdam(bias_correction=1), TypeError),
    (lambda: Prodigy(d_coef=0), ConfigError),
    (lambda: Prodigy(beta3=1.0), ConfigError),
    (lambda: Prodigy(growth_rate=math.nan), ConfigError),
    (lambda: Prodigy(safeguard_warmup="yes"), TypeError),
    (lambda: parse_step_rule("prodigy:d0=0"), ConfigError),
    (lambda: parse_step_rule("dog:reps=1"), ConfigError),
])
def test_invalid_arguments(make, error):
    with pytest.raises(error):
        make()
