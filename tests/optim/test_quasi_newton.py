"""L-BFGS and nonlinear CG: the two-loop recursion against a dense BFGS inverse-Hessian
update, the beta formulas against the textbook, restarts, skipped pairs and resets seen in
``opt.last.direction``, convergence on convex problems, undo, and bit-identical resume."""

from __future__ import annotations

import math

import numpy as np
import pytest

import descend as ds
from descend import optim
from descend.optim import CG, LBFGS
from descend.optim.extend import CGDirection, DirectionStatus, Feedback, LBFGSDirection
from descend.problems import PROBLEMS, least_squares, linear_full_rank, ridge, saddle
from descend.train import fit

SHAPES = [(3,), (2, 2)]  # two parameters: the vectors are lists of arrays


def _vec(rng: np.random.Generator) -> list[np.ndarray]:
    return [rng.standard_normal(s) for s in SHAPES]


def _flat(v: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([a.ravel() for a in v])


def _dense_bfgs_inverse(pairs: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """H from H0 = gamma I (gamma = s'y/y'y of the newest pair), updated by
    H <- (I - rho s y') H (I - rho y s') + rho s s' for each pair, oldest first (N&W 6.17)."""
    s_new, y_new = pairs[-1]
    n = len(s_new)
    H = (s_new @ y_new) / (y_new @ y_new) * np.eye(n)
    for s, y in pairs:
        rho = 1.0 / (s @ y)
        V = np.eye(n) - rho * np.outer(y, s)
        H = V.T @ H @ V + rho * np.outer(s, s)
    return H


def _positive_pair(rng: np.random.Generator) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A pair with s'y > 0: y = A s for a random symmetric positive-definite A."""
    n = sum(math.prod(s) for s in SHAPES)
    B = rng.standard_normal((n, n))
    A = B @ B.T + n * np.eye(n)
    s = _vec(rng)
    y_flat = A @ _flat(s)
    y, start = [], 0
    for shape in SHAPES:
        size = math.prod(shape)
        y.append(y_flat[start:start + size].reshape(shape))
        start += size
    return s, y


# --------------------------------------------------------------------------- two-loop
@pytest.mark.parametrize(("history", "pairs"), [(1, 1), (3, 3), (5, 3), (3, 7), (10, 10)])
def test_two_loop_recursion_matches_dense_bfgs_inverse(history, pairs):
    rng = np.random.default_rng(history * 100 + pairs)
    direction = LBFGSDirection(history_size=history)
    seen = []
    for _ in range(pairs):
        s, y = _positive_pair(rng)
        direction.learn(Feedback(s, y))
        seen.append((_flat(s), _flat(y)))
    g = _vec(rng)
    r = direction.compute(g)
    H = _dense_bfgs_inverse(seen[-history:])  # only the last m pairs are kept
    np.testing.assert_allclose(_flat(r), H @ _flat(g), rtol=1e-10, atol=1e-12)
    assert direction.sign == -1.0  # d = -H g
    assert [a.shape for a in r] == [a.shape for a in g]
    assert direction.status is DirectionStatus.STORED
    assert direction.state.stored == pairs and len(direction.state.s) == min(history, pairs)
    assert direction.initial == 1.0  # quasi-Newton: the unit step first


def test_two_loop_leaves_the_gradient_untouched():
    rng = np.random.default_rng(1)
    direction = LBFGSDirection(3)
    direction.learn(Feedback(*_positive_pair(rng)))
    g = _vec(rng)
    copy = [a.copy() for a in g]
    direction.compute(g)
    for a, b in zip(g, copy):
        assert np.array_equal(a, b)


def test_first_direction_is_the_gradient_with_scaled_first_trial():
    direction = LBFGSDirection()
    g = [np.array([3.0, -4.0]), np.array([[1.0]])]
    r = direction.compute(g)
    assert r is g and direction.sign == -1.0  # d = -g, no copy
    assert direction.initial == pytest.approx(1.0 / 8.0)  # min(1, 1/||g||_1)
    small = [np.array([1e-3, -1e-3])]
    direction.compute(small)
    assert direction.initial == 1.0


def test_lbfgs_on_a_quadratic_matches_bfgs_with_full_memory():
    """With m >= steps and exact line searches, L-BFGS's iterates on a convex quadratic
    are those of CG: the minimiser of an n-dimensional quadratic in n steps (N&W §7.2)."""
    p = least_squares(n=40, d=6, seed=3)
    opt = LBFGS(p.params, lr=optim.Exact(quadratic=True), history_size=10)
    for _ in range(6):
        opt.step(p.loss, same_batch=True)
    assert p.distance() < 1e-8 * max(1.0, float(np.linalg.norm(p.x_star[0])))


# --------------------------------------------------------------------------- pairs skipped
def test_pair_without_curvature_is_skipped_and_reported():
    direction = LBFGSDirection()
    s = [np.array([1.0, 0.0])]
    direction.learn(Feedback(s, [np.array([-1.0, 0.5])]))  # s'y = -1 < 0
    direction.compute([np.array([1.0, 1.0])])
    assert direction.status is DirectionStatus.SKIPPED
    assert direction.state.skipped == 1 and not direction.state.s
    # s'y = 1e-12 ||s|| ||y||: below the threshold 1e-10 too
    direction.learn(Feedback(s, [np.array([1e-12, 1.0])]))
    direction.compute([np.array([1.0, 1.0])])
    assert direction.status is DirectionStatus.SKIPPED and direction.state.skipped == 2


def test_lbfgs_with_a_schedule_reports_skipped_pairs_on_negative_curvature():
    """Along x the saddle x^4/4 - x^2/2 + y^2/2 curves downwards for |x| < 1/sqrt(3): a
    constant step there gives s'y < 0, and the status says the pair was skipped."""
    p = saddle(start=(0.3, 0.0))
    opt = LBFGS(p.params, lr=0.1)
    statuses = []
    for _ in range(3):
        opt.step(p.loss)
        statuses.append(opt.last.direction)
    assert statuses[0] is None  # nothing learned before the first step
    assert statuses[1] is DirectionStatus.SKIPPED
    assert opt.direction.state.skipped >= 1
    assert opt.direction.state.stored == 0


def test_strong_wolfe_never_skips_a_pair_on_rosenbrock():
    p = PROBLEMS["rosenbrock"]()
    opt = LBFGS(p.params)
    for _ in range(30):
        opt.step(p.loss, same_batch=True)
        assert opt.last.direction in (None, DirectionStatus.STORED)
    assert opt.direction.state.skipped == 0 and opt.direction.state.stored == 30 - 1


# --------------------------------------------------------------------------- resets
def test_non_descent_direction_resets_the_memory():
    """A memory whose pair has negative curvature (only reachable by loading such a state)
    gives g'd > 0: the memory is cleared and the step is taken along -g."""
    direction = LBFGSDirection()
    direction.load_state_dict({"s": [[np.array([1.0, 0.0])]], "y": [[np.array([-1.0, 0.0])]],
                               "rho": [-1.0], "gamma": -1.0, "stored": 1, "skipped": 0,
                               "resets": 0, "fresh": False})
    g = [np.array([2.0, 1.0])]
    r = direction.compute(g)
    assert r is g  # d = -g
    assert direction.status is DirectionStatus.RESET
    assert direction.state.resets == 1 and not direction.state.s


def test_a_rule_that_takes_no_step_resets_the_memory():
    p = PROBLEMS["rosenbrock"]()
    steps = iter([None, None, None, 0.0, None])

    def schedule(t):
        value = next(steps)
        return 1e-3 if value is None else value

    opt = LBFGS(p.params, lr=schedule)
    for _ in range(3):
        opt.step(p.loss)
    assert len(opt.direction.state.s) == 2
    opt.step(p.loss)  # alpha = 0: nothing moved
    assert opt.last.lr == 0 and opt.last.direction is DirectionStatus.RESET
    assert not opt.direction.state.s and opt.direction.state.resets == 1
    assert opt.state_dict()["feedback"] is None
    opt.step(p.loss)
    assert opt.last.direction is None  # nothing to learn from the step that was not taken


def test_non_finite_gradient_is_a_named_status_and_leaves_the_memory_alone():
    x = ds.tensor(np.array([1.0, 2.0]), requires_grad=True)
    poison = {"on": False}

    def loss():
        value = (x * x).sum()
        return value * math.nan if poison["on"] else value

    opt = LBFGS([x])
    opt.step(loss)
    opt.step(loss)
    before = opt.state_dict()
    kept = x.data.copy()
    poison["on"] = True
    opt.step(loss)
    assert opt.last.finite is False and opt.last.lr == 0.0
    assert np.array_equal(x.data, kept)
    after = opt.state_dict()
    assert after["direction"]["stored"] == before["direction"]["stored"]
    assert len(after["direction"]["s"]) == len(before["direction"]["s"])


# --------------------------------------------------------------------------- CG betas
def _cg_second_direction(beta, g0, g1, restart=None):
    """d_1 from CG after d_0 = -g_0 and a step with y = g_1 - g_0."""
    direction = CGDirection(beta, restart=restart)
    d0 = direction.compute([g0])
    assert np.array_equal(d0[0], -g0)
    direction.learn(Feedback([0.1 * d0[0]], [g1 - g0]))
    return direction, direction.compute([g1])[0]


G0 = np.array([1.0, 0.5, -0.3])
G1 = np.array([-0.2, 0.9, 0.4])  # |g1'g0| = 0.07 < 0.2 ||g1||^2: no Powell restart


@pytest.mark.parametrize(("beta", "formula"), [
    ("FR", lambda g0, g1, d0: (g1 @ g1) / (g0 @ g0)),
    ("PR+", lambda g0, g1, d0: max(0.0, g1 @ (g1 - g0) / (g0 @ g0))),
    ("HS", lambda g0, g1, d0: g1 @ (g1 - g0) / (d0 @ (g1 - g0))),
    ("DY", lambda g0, g1, d0: (g1 @ g1) / (d0 @ (g1 - g0))),
])
def test_cg_beta_formulas_match_the_textbook(beta, formula):
    direction, d1 = _cg_second_direction(beta, G0, G1)
    expected_beta = formula(G0, G1, -G0)
    assert expected_beta > 0
    np.testing.assert_allclose(d1, -G1 + expected_beta * (-G0), rtol=1e-14)
    assert direction.status is None
    assert float(G1 @ d1) < 0


def test_pr_plus_clips_a_negative_beta_at_zero():
    """beta_PR < 0 needs g_k'g_{k-1} > ||g_k||^2, which Powell's test (>= 0.2 ||g_k||^2)
    turns into a restart first; the clip itself is checked on the formula."""
    from descend.optim.quasi_newton import BETAS

    # (g'g, g'y, d'y, g_prev'g_prev)
    assert BETAS["PR+"](1.0, -0.5, 1.0, 2.0) == 0.0
    assert BETAS["PR+"](1.0, 0.5, 1.0, 2.0) == 0.25
    g = np.array([1.2, 0.1, 0.0])  # g'g0 = 1.25 > ||g||^2 = 1.45 * 0.2: Powell restarts
    direction, d = _cg_second_direction("PR+", G0, g)
    assert g @ (g - G0) / (G0 @ G0) > 0 or direction.status is DirectionStatus.POWELL
    assert direction.status is DirectionStatus.POWELL
    np.testing.assert_array_equal(d, -g)


def test_powell_restart_when_conjugacy_is_lost():
    direction, d1 = _cg_second_direction("FR", G0, 2.0 * G0)  # g1'g0 = ||g1||^2 / 2
    np.testing.assert_array_equal(d1, -2.0 * G0)
    assert direction.status is DirectionStatus.POWELL and direction.state.powell == 1


def test_fletcher_reeves_non_descent_direction_restarts():
    """g1 = (-2, b) with g1'g0 = -0.19 ||g1||^2 passes Powell's test, but beta_FR = ||g1||^2
    makes g1'd1 = ||g1||^2 (2 - 1) > 0: the direction restarts along -g1."""
    g0 = np.array([1.0, 0.0])
    b = math.sqrt(2.0 / 0.19 - 4.0)
    g1 = np.array([-2.0, b])
    direction, d1 = _cg_second_direction("FR", g0, g1)
    np.testing.assert_array_equal(d1, -g1)
    assert direction.status is DirectionStatus.RESET and direction.state.resets == 1


def _statuses(direction: CGDirection, gradients: list[np.ndarray]) -> list:
    """Feed CG orthogonal gradients (Powell's test never fires, FR stays a descent
    direction) and collect its status at each step."""
    seen = []
    previous = None
    for g in gradients:
        if previous is not None:
            direction.learn(Feedback([np.full_like(g, 0.1)], [g - previous]))
        direction.compute([g])
        seen.append(direction.status)
        previous = g
    return seen


def test_periodic_restart_every_n_steps():
    eye = np.eye(6)
    seen = _statuses(CGDirection("FR", restart=2), [eye[k] for k in range(6)])
    assert seen == [None, None, DirectionStatus.RESTART, None, DirectionStatus.RESTART, None]
    # by default n = the number of variables (4 here): the fifth step restarts
    eye4 = np.eye(4)
    direction = CGDirection("FR")
    seen = _statuses(direction, [eye4[0], eye4[1], eye4[2], eye4[3], eye4[0]])
    assert seen == [None, None, None, None, DirectionStatus.RESTART]
    assert direction.state.restarts == 1


def test_cg_with_exact_steps_ends_in_n_steps_on_a_quadratic():
    """N&W Theorem 5.3 (linear CG), which FR/PR+/HS/DY all reduce to with exact steps."""
    for beta in ("FR", "PR+", "HS", "DY"):
        p = ridge(n=50, d=3, seed=1)
        opt = CG(p.params, lr=optim.Exact(quadratic=True), beta=beta)
        for _ in range(3):
            opt.step(p.loss, same_batch=True)
        assert p.gap() < 1e-12, beta


def test_unknown_beta_names_the_choices():
    with pytest.raises(ds.errors.ConfigError, match=r"'PR'.*FR, PR\+, HS, DY"):
        CGDirection("PR")
    assert CGDirection("pr+").beta == "PR+"


# --------------------------------------------------------------------------- convex problems
CONVEX = ["leastsq", "ridge", "logreg", "linear-full-rank"]
MAKERS = {
    "lbfgs": lambda p: LBFGS(p),
    "lbfgs-m3": lambda p: LBFGS(p, history_size=3),
    "lbfgs-armijo": lambda p: LBFGS(p, lr=optim.Armijo()),
    **{f"cg-{b}": (lambda p, b=b: CG(p, beta=b)) for b in ("FR", "PR+", "HS", "DY")},
}


@pytest.mark.parametrize("problem", CONVEX)
@pytest.mark.parametrize("method", sorted(MAKERS))
def test_convex_problems_reach_the_optimum(problem, method):
    p = PROBLEMS[problem]()
    opt = MAKERS[method](p.params)
    gap0 = p.gap()
    for _ in range(400):
        opt.step(p.loss, same_batch=True)
        if p.gap() <= 1e-12 * max(gap0, 1.0):
            break
    assert p.gap() <= 1e-10 * max(gap0, 1.0), (method, problem, p.gap())


def test_lbfgs_beats_gradient_descent_on_logistic_regression():
    p = PROBLEMS["logreg"]()
    counts = {}
    for name, make in [("lbfgs", lambda ps: LBFGS(ps)),
                       ("gd", lambda ps: optim.GD(ps, lr=optim.StrongWolfe()))]:
        p.reset()
        opt = make(p.params)
        evals = 0
        while p.gap() > 1e-10 and evals < 2000:
            opt.step(p.loss, same_batch=True)
            evals += opt.last.evaluations
        counts[name] = evals
    assert counts["lbfgs"] < counts["gd"] / 2


def test_weight_decay_enters_the_curvature_pairs():
    """With weight decay lambda the objective is f + lambda/2 ||x||^2, so y includes
    lambda s: on f = 0 (a constant loss), every pair has y = lambda s exactly."""
    x = ds.tensor(np.array([1.0, -2.0, 0.5]), requires_grad=True)
    opt = LBFGS([x], lr=0.1, weight_decay=0.5)
    opt.step(lambda: (x * 0.0).sum())
    opt.step(lambda: (x * 0.0).sum())
    s, y = opt.direction.state.s[0], opt.direction.state.y[0]
    np.testing.assert_allclose(y[0], 0.5 * s[0], rtol=1e-12)
    assert opt.direction.state.gamma == pytest.approx(2.0)


# --------------------------------------------------------------------------- undo, state
def test_undo_then_step_is_the_step_itself():
    """undo() drops the feedback of the undone step: stepping again from the same point
    gives bit for bit the step that was undone (L-BFGS suggests alpha0 = 1, so the rule's
    own warm start does not enter)."""
    def run(undo: bool):
        p = PROBLEMS["ext-rosenbrock"]()
        opt = LBFGS(p.params)
        for _ in range(5):
            opt.step(p.loss, same_batch=True)
        if undo:
            assert opt.undo()
            assert opt.state_dict()["feedback"] is None
            opt.step(p.loss)
        return p.point()[0], opt.state_dict()

    x_a, state_a = run(False)
    x_b, state_b = run(True)
    assert np.array_equal(x_a, x_b)
    for a, b in zip(state_a["direction"]["s"], state_b["direction"]["s"]):
        assert all(np.array_equal(u, v) for u, v in zip(a, b))
    assert state_a["direction"]["rho"] == state_b["direction"]["rho"]


def test_cg_undo_forgets_the_direction_of_the_undone_step():
    def run(undo: bool):
        p = least_squares(n=60, d=8, seed=2)
        opt = CG(p.params, lr=optim.Exact(quadratic=True), beta="FR")
        for _ in range(3):
            opt.step(p.loss, same_batch=True)
        if undo:
            assert opt.undo()
            opt.step(p.loss)
        return p.point()[0]

    assert np.array_equal(run(False), run(True))


@pytest.mark.parametrize("make", [lambda p: LBFGS(p, history_size=3),
                                  lambda p: CG(p, beta="HS")])
def test_state_dict_round_trip_continues_bit_identically(make):
    p = PROBLEMS["wood"]()
    opt = make(p.params)
    for _ in range(6):
        opt.step(p.loss, same_batch=True)
    state = opt.state_dict()
    point = p.point()
    for _ in range(4):
        opt.step(p.loss, same_batch=True)
    expected = p.point()[0]

    q = PROBLEMS["wood"]()
    q.set_point(point)
    other = make(q.params)
    other.load_state_dict(state)
    for _ in range(4):
        other.step(q.loss, same_batch=True)
    assert np.array_equal(q.point()[0], expected)


def _mlp_data():
    data = ds.data.spirals(80, noise=0.1, seed=3)
    return data.X, data.y


@pytest.mark.parametrize(("name", "make", "batch"), [
    ("lbfgs", lambda p: LBFGS(p), None),
    ("cg", lambda p: CG(p, beta="DY"), None),
    ("lbfgs-minibatch-schedule", lambda p: LBFGS(p, lr=0.05, history_size=4), 20),
])
def test_fit_resume_is_bit_identical(tmp_path, name, make, batch):
    X, y = _mlp_data()

    def run(epochs, **kw):
        model = ds.nn.mlp([2, 12, 2], activation="tanh", rng=5)
        opt = make(model.parameters())
        history = fit(model, ds.nn.CrossEntropyLoss(), opt, (X, y), epochs=epochs,
                      batch_size=batch, seed=1, progress=False, **kw)
        return model, opt, history

    full, full_opt, full_history = run(8)
    ckpt = tmp_path / f"{name}.npz"
    run(4, checkpoint=ckpt)
    resumed, resumed_opt, history = run(8, resume=ckpt, checkpoint=ckpt)
    for a, b in zip(full.parameters(), resumed.parameters()):
        assert np.array_equal(a.data, b.data)
    assert history.loss == full_history.loss and history.lr == full_history.lr
    assert full_opt.direction.state_dict().keys() == resumed_opt.direction.state_dict().keys()
    if name.startswith("lbfgs"):
        a, b = full_opt.direction.state, resumed_opt.direction.state
        assert (a.stored, a.skipped, a.resets) == (b.stored, b.skipped, b.resets)
        if batch is not None:
            assert a.skipped > 0  # mini-batch pairs without curvature happen, and are skipped


def test_learning_directions_keep_other_optimizers_state_unchanged():
    """GD and Adam keep their state dicts exactly (no feedback entry): the hook costs the
    directions that do not learn nothing, not even a key."""
    x = ds.tensor(np.ones(2), requires_grad=True)
    for opt in (optim.GD([x], lr=0.1), optim.Adam([x])):
        opt.step(lambda: (x * x).sum())
        assert "feedback" not in opt.state_dict()
        assert opt.last.direction is None
        assert opt.direction.learns is False


def test_linear_full_rank_cg_reaches_the_known_optimum():
    p = linear_full_rank(n=6, m=9)
    opt = CG(p.params)
    for _ in range(50):
        opt.step(p.loss, same_batch=True)
    assert p.value() == pytest.approx(3.0, abs=1e-12)  # f* = m - n
    np.testing.assert_allclose(p.point()[0], -np.ones(6), atol=1e-7)


# --------------------------------------------------------------------------- max_iter
ITERATING = {
    "lbfgs": lambda p, **kw: LBFGS(p, **kw),
    "lbfgs-m3-armijo": lambda p, **kw: LBFGS(p, lr=optim.Armijo(), history_size=3, **kw),
    "cg": lambda p, **kw: CG(p, **kw),
    "cg-fr-restart": lambda p, **kw: CG(p, beta="FR", restart=4, **kw),
}


class _Counted:
    """A problem's closure that counts its forward passes."""

    def __init__(self, problem):
        self.problem = problem
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return self.problem.loss()


def _same_record(a, b):
    """The fields of two StepInfo records that describe an iteration (not the call)."""
    skip = {"iterations", "call_evaluations", "call_gradient_evaluations"}
    return all(getattr(a, f) == getattr(b, f) for f in a.__dataclass_fields__ if f not in skip)


@pytest.mark.parametrize("problem", ["rosenbrock", "wood", "box3d", "penalty1"])
@pytest.mark.parametrize("method", sorted(ITERATING))
@pytest.mark.parametrize("k", [1, 2, 7])
def test_max_iter_k_is_k_calls_with_same_batch(problem, method, k):
    p, q = PROBLEMS[problem](), PROBLEMS[problem]()
    one = ITERATING[method](p.params, max_iter=k)
    many = ITERATING[method](q.params)
    closure_one, closure_many = _Counted(p), _Counted(q)
    full = 0
    for call in range(3):  # calls after the first continue the direction's memory too
        loss = one.step(closure_one, same_batch=call > 0)  # a full-batch loop of calls
        n = one.last.iterations
        # k iterations, or fewer when the last of them took no step
        assert n == k or (n < k and one.last.step_norm == 0.0)
        full += n == k
        first = None
        for i in range(n):
            out = many.step(closure_many, same_batch=i > 0 or call > 0)
            first = out if i == 0 else first
        assert float(loss.data) == float(first.data)  # the loss at the start of the call
        assert np.array_equal(p.point()[0], q.point()[0])  # bit for bit
        assert closure_one.calls == closure_many.calls  # the same evaluations
        assert one.t == many.t
        assert many.last.iterations == 1
        assert _same_record(one.last, many.last)
    assert full >= 2  # most calls ran all k iterations


@pytest.mark.parametrize("method", sorted(ITERATING))
def test_max_iter_records_the_calls_evaluations(method):
    p = PROBLEMS["rosenbrock"]()
    opt = ITERATING[method](p.params, max_iter=10)
    closure = _Counted(p)
    opt.step(closure)
    info = opt.last
    assert info.iterations == 10 and info.step == 9
    assert info.call_evaluations == closure.calls > info.evaluations
    assert info.call_gradient_evaluations >= info.gradient_evaluations
    # a call of one iteration: the call's counts are the iteration's
    q = PROBLEMS["rosenbrock"]()
    single = ITERATING[method](q.params)
    single.step(q.loss)
    assert single.last.iterations == 1
    assert single.last.call_evaluations == single.last.evaluations
    assert single.last.call_gradient_evaluations == single.last.gradient_evaluations


@pytest.mark.parametrize("method", ["lbfgs", "cg"])
def test_max_iter_saves_the_evaluations_plain_calls_spend(method):
    # the same trajectory, without evaluating each accepted point a second time
    k = 25
    p, q = PROBLEMS["wood"](), PROBLEMS["wood"]()
    looped = ITERATING[method](p.params, max_iter=k)
    plain = ITERATING[method](q.params)
    counted_looped, counted_plain = _Counted(p), _Counted(q)
    looped.step(counted_looped)
    assert looped.last.iterations == k
    for _ in range(k):
        plain.step(counted_plain)  # no same_batch: every step evaluates its start again
    assert np.array_equal(p.point()[0], q.point()[0])
    # the strong-Wolfe search ends at an evaluated point, whose gradient the next
    # iteration reuses: one forward and backward pass saved per iteration
    assert counted_looped.calls == counted_plain.calls - (k - 1)
    assert counted_looped.calls < 0.75 * counted_plain.calls


@pytest.mark.parametrize("method", sorted(ITERATING))
def test_max_iter_stops_after_an_iteration_that_does_not_move(method):
    # at the minimiser the gradient is exactly zero: the first iteration takes no step
    x = ds.tensor(np.zeros(3), requires_grad=True)
    opt = ITERATING[method]([x], max_iter=50)
    closure = _Counted(type("Q", (), {"loss": lambda self: ((x - 0.0) * x).sum()})())
    opt.step(closure)
    assert opt.last.iterations == 1 and opt.last.step_norm == 0.0 and opt.t == 1
    assert opt.last.status is ds.linesearch.LineSearchStatus.FLAT
    assert closure.calls == 1
    # a quadratic L-BFGS or CG solves, then stops moving long before max_iter
    p = linear_full_rank(n=4, m=6)
    opt = ITERATING[method](p.params, max_iter=200)
    opt.step(p.loss)
    assert opt.last.iterations < 200 and opt.last.step_norm == 0.0
    assert p.value() == pytest.approx(2.0, abs=1e-10)  # f* = m - n


@pytest.mark.parametrize("make", [LBFGS, CG])
def test_max_iter_stops_at_a_non_finite_loss(make):
    x = ds.tensor(np.array([2.0, -1.0]), requires_grad=True)
    calls = []

    def closure():
        calls.append(1)
        # finite for two evaluations, then NaN wherever the search goes
        return (x * x).sum() * (1.0 if len(calls) <= 2 else math.nan)

    opt = make([x], lr=0.1, max_iter=10)  # a schedule: one evaluation per iteration
    before = x.data.copy()
    opt.step(closure)
    assert opt.last.iterations == 3 and not opt.last.finite and opt.last.lr == 0.0
    assert opt.last.call_evaluations == 3 == len(calls)
    assert not np.array_equal(x.data, before) and np.all(np.isfinite(x.data))


@pytest.mark.parametrize("make", [LBFGS, CG])
def test_max_iter_default_is_one_iteration_per_call(make):
    p = PROBLEMS["rosenbrock"]()
    opt = make(p.params)
    assert opt.max_iter == 1
    opt.step(p.loss)
    assert opt.t == 1 and opt.last.iterations == 1
