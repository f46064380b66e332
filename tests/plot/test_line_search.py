"""A step's recorded trials and its picture, checked against an independent computation:
least squares in float64, its line phi(alpha) = f(x + alpha d) and slope written in NumPy."""

from __future__ import annotations

import math

import numpy as np
import pytest

import descend as ds
from descend.errors import ConfigError
from descend.linesearch import Trial, TrialLog, backtracking

RNG = np.random.default_rng(7)
A = RNG.normal(size=(24, 4))
B = RNG.normal(size=24)
X0 = np.array([0.5, -1.0, 0.25, 2.0])


def f(x: np.ndarray) -> float:
    r = A @ x - B
    return float(r @ r / len(B))


def grad(x: np.ndarray) -> np.ndarray:
    return 2.0 * A.T @ (A @ x - B) / len(B)


def line(x: np.ndarray, d: np.ndarray):
    """phi and phi' along x + alpha d, in NumPy."""
    return (lambda a: f(x + a * d)), (lambda a: float(grad(x + a * d) @ d))


def problem(rule, record=True):
    w = ds.tensor(X0.copy(), requires_grad=True)
    At, Bt = ds.tensor(A), ds.tensor(B)
    opt = ds.optim.GD([w], lr=rule)
    opt.record_trials = record

    def closure():
        r = At @ w - Bt
        return (r * r).mean()

    return opt, closure


def artist(fig, gid):
    found = [a for a in fig.axes[0].get_children() if a.get_gid() == gid]
    assert found, f"no artist {gid!r}"
    return found


def xy(fig, gid):
    (a,) = artist(fig, gid)
    x, y = a.get_data()
    return np.asarray(x, float), np.asarray(y, float)


def test_backtracking_trials_equal_an_independent_run_of_the_search():
    opt, closure = problem(ds.optim.Armijo(alpha0=8.0, c1=0.3))
    opt.step(closure)
    phi, _ = line(X0, -grad(X0))
    log = TrialLog()
    res = backtracking(log.values(phi), f(X0), -float(grad(X0) @ grad(X0)), alpha0=8.0, c1=0.3,
                       shrink=0.5, interpolate=False)
    assert len(log.trials) >= 3
    assert [t.alpha for t in opt.last.trials] == [t.alpha for t in log.trials]
    np.testing.assert_allclose([t.value for t in opt.last.trials],
                               [t.value for t in log.trials], rtol=1e-12)
    assert all(t.slope is None for t in opt.last.trials)
    assert opt.last.lr == res.alpha
    assert math.isclose(opt.last.slope, -float(grad(X0) @ grad(X0)), rel_tol=1e-12)


def test_strong_wolfe_trials_carry_the_slope_at_each_trial():
    opt, closure = problem(ds.optim.StrongWolfe(alpha0=3.0))
    opt.step(closure)
    phi, dphi = line(X0, -grad(X0))
    trials = opt.last.trials
    assert len(trials) == opt.last.evaluations - 1 >= 1
    for t in trials:
        assert isinstance(t, Trial)
        assert math.isclose(t.value, phi(t.alpha), rel_tol=1e-12)
        assert math.isclose(t.slope, dphi(t.alpha), rel_tol=1e-9, abs_tol=1e-12)


def test_recording_off_records_nothing_and_the_trajectory_is_bit_identical():
    """With dropout, so the replayed random state matters, and a rule of each kind."""
    rules = [lambda: ds.optim.Armijo(), lambda: ds.optim.StrongWolfe(),
             lambda: ds.optim.Polyak(f_star=0.0, c=0.5, max_lr=1.0), lambda: 0.05]
    X = RNG.normal(size=(16, 5))
    y = RNG.integers(0, 3, size=16)
    for make in rules:
        runs = []
        for record in (False, True):
            ds.manual_seed(3)
            model = ds.nn.Sequential(ds.nn.Linear(5, 8), ds.nn.ReLU(), ds.nn.Dropout(0.3),
                                     ds.nn.Linear(8, 3))
            opt = ds.optim.GD(model.parameters(), lr=make())
            opt.record_trials = record
            closure = lambda m=model: ds.F.cross_entropy(m(ds.tensor(X)), y)  # noqa: E731
            lrs = []
            for _ in range(4):
                opt.step(closure)
                lrs.append(opt.last.lr)
                assert (opt.last.trials is None) is (not record)
            runs.append(([p.data.copy() for p in model.parameters()], lrs,
                         ds.randn(3).data))  # the random stream continues alike
        (p0, lr0, r0), (p1, lr1, r1) = runs
        assert lr0 == lr1
        for a, b in zip(p0, p1):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(r0, r1)


def test_line_values_replay_the_batch_and_leave_the_optimizer_as_it_was():
    ds.manual_seed(1)
    X = RNG.normal(size=(12, 5))
    y = RNG.integers(0, 2, size=12)
    model = ds.nn.Sequential(ds.nn.Linear(5, 6), ds.nn.Dropout(0.5), ds.nn.Linear(6, 2))
    opt = ds.optim.GD(model.parameters(), lr=ds.optim.Armijo(alpha0=50.0))
    opt.record_trials = True
    closure = lambda: ds.F.cross_entropy(model(ds.tensor(X)), y)  # noqa: E731
    opt.step(closure)
    params = [p.data.copy() for p in model.parameters()]
    grads = [p.grad.copy() for p in model.parameters()]
    trials = opt.last.trials
    assert len(trials) >= 2
    # the same dropout masks as the trials saw: the same values, exactly
    assert opt.line_values([t.alpha for t in trials]) == [t.value for t in trials]
    assert opt.line_values([0.0]) == [opt.last.loss]
    for p, a, g in zip(model.parameters(), params, grads):
        np.testing.assert_array_equal(p.data, a)
        np.testing.assert_array_equal(p.grad, g)
    state = ds.backend.global_rng().bit_generator.state
    opt.line_values([1.0, 2.0])
    assert ds.backend.global_rng().bit_generator.state == state


def test_picture_of_a_backtracking_search():
    opt, closure = problem(ds.optim.Armijo(alpha0=8.0, c1=0.3))
    opt.step(closure)
    fig = ds.plot.line_search(opt, points=40)
    g = grad(X0)
    phi, _ = line(X0, -g)
    tx, ty = xy(fig, "trials")
    assert list(tx) == [t.alpha for t in opt.last.trials]
    assert list(ty) == [t.value for t in opt.last.trials]
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == [str(i) for i in range(1, len(tx) + 1)]
    ax_, ay = xy(fig, "accepted")
    assert ax_[0] == opt.last.lr
    assert math.isclose(ay[0], phi(opt.last.lr), rel_tol=1e-12)
    lx, ly = xy(fig, "armijo")
    assert math.isclose(ly[0], f(X0), rel_tol=1e-12)
    assert math.isclose((ly[1] - ly[0]) / (lx[1] - lx[0]), -0.3 * float(g @ g), rel_tol=1e-9)
    cx, cy = xy(fig, "phi")
    assert len(cx) == 40 and cx[0] == 0 and math.isclose(cx[-1], 1.15 * 8.0)
    np.testing.assert_allclose(cy, [phi(a) for a in cx], rtol=1e-12)


def test_picture_of_strong_wolfe_shades_where_the_curvature_condition_holds():
    opt, closure = problem(ds.optim.StrongWolfe(alpha0=3.0, c2=0.5))
    opt.step(closure)
    fig = ds.plot.line_search(opt, points=61, alpha_max=2.0)
    g = grad(X0)
    _, dphi = line(X0, -g)
    bound = 0.5 * float(g @ g)
    grid = np.linspace(0, 2.0, 61)
    inside = np.array([abs(dphi(a)) <= bound for a in grid])
    spans = artist(fig, "wolfe-band")
    shaded = np.zeros(len(grid), bool)
    for span in spans:
        lo, hi = span.get_x(), span.get_x() + span.get_width()  # a Rectangle in data x
        shaded |= (grid >= lo) & (grid <= hi)
    np.testing.assert_array_equal(shaded, inside)
    assert inside.any() and not inside.all()
    tangents = artist(fig, "tangent")
    assert len(tangents) == len(opt.last.trials)
    for seg, t in zip(tangents, opt.last.trials):
        x, y = (np.asarray(v, float) for v in seg.get_data())
        assert math.isclose((y[1] - y[0]) / (x[1] - x[0]), dphi(t.alpha), rel_tol=1e-6,
                            abs_tol=1e-9 * bound)


def test_picture_of_a_polyak_step_shows_its_model_and_target():
    opt, closure = problem(ds.optim.Polyak(f_star=0.3, c=2.0))
    opt.step(closure)
    assert opt.last.trials == ()
    fig = ds.plot.line_search(opt, points=10)
    g2 = float(grad(X0) @ grad(X0))
    mx, my = xy(fig, "polyak-model")
    assert math.isclose((my[1] - my[0]) / (mx[1] - mx[0]), -2.0 * g2, rel_tol=1e-9)
    (target,) = artist(fig, "polyak-target")
    assert list(target.get_ydata()) == [0.3, 0.3]
    # the step is where the model meets the target
    assert math.isclose(opt.last.lr, (f(X0) - 0.3) / (2.0 * g2), rel_tol=1e-12)
    assert math.isclose(my[0] + (my[1] - my[0]) / mx[1] * opt.last.lr, 0.3, rel_tol=1e-9)


def test_picture_of_exact_search_marks_the_minimiser(tmp_path):
    opt, closure = problem(ds.optim.Exact())
    opt.step(closure)
    g = grad(X0)
    # the minimiser of a quadratic along -g: alpha = g.g / (g' H g), H = 2 A'A / n
    expected = float(g @ g) / float(g @ (2 * A.T @ A / len(B)) @ g)
    fig = ds.plot.line_search(opt, tmp_path / "exact.svg", points=20)
    ax_, _ = xy(fig, "accepted")
    assert math.isclose(ax_[0], expected, rel_tol=1e-6)
    assert "minimiser found" in artist(fig, "accepted")[0].get_label()
    assert (tmp_path / "exact.svg").read_text().lstrip().startswith(("<?xml", "<svg"))
    ds.plot.line_search(opt, tmp_path / "exact.png", points=5)
    assert (tmp_path / "exact.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_requests_name_the_problem(tmp_path):
    opt, closure = problem(ds.optim.Armijo(), record=False)
    with pytest.raises(ConfigError, match="no step"):
        ds.plot.line_search(opt)
    opt.step(closure)
    with pytest.raises(ConfigError, match="record_trials"):
        ds.plot.line_search(opt)
    with pytest.raises(ConfigError, match="record_trials"):
        opt.line_values([1.0])
    with pytest.raises(TypeError, match="record_trials"):
        opt.record_trials = "yes"
    opt.record_trials = True
    opt.step(closure)
    with pytest.raises(ConfigError, match=r"unknown image format '\.txt'"):
        ds.plot.line_search(opt, tmp_path / "a.txt")
    with pytest.raises(ConfigError, match="points"):
        ds.plot.line_search(opt, points=1)
    with pytest.raises(ConfigError, match="alpha_max"):
        ds.plot.line_search(opt, alpha_max=-1.0)
