"""Step-size schedules: each formula at several t against its documented definition, the
convergence conditions stated in the docstrings checked on partial sums, a plain callable as
a schedule, and the short string form."""

from __future__ import annotations

import math

import numpy as np
import pytest

import descend as ds
from descend.errors import ConfigError
from descend.optim import (
    GD,
    Armijo,
    Constant,
    ConstantLength,
    Cosine,
    Exact,
    ExponentialDecay,
    InverseSqrt,
    InverseTime,
    Polyak,
    StepDecay,
    StrongWolfe,
    parse_step_rule,
)
from descend.optim.extend import FunctionSchedule, as_step_rule

TIMES = [0, 1, 2, 7, 50, 999]

# (schedule, the documented formula written out independently)
FORMULAS = [
    ("Constant(0.3)", Constant(0.3), lambda t: 0.3),
    ("InverseTime(2,3)", InverseTime(2.0, 3.0), lambda t: 2.0 / (3.0 + t)),
    ("InverseTime(1)", InverseTime(1.0), lambda t: 1.0 / (1.0 + t)),
    ("InverseSqrt(0.5,4)", InverseSqrt(0.5, 4.0), lambda t: 0.5 / math.sqrt(4.0 + t)),
    ("InverseSqrt(2)", InverseSqrt(2.0), lambda t: 2.0 / math.sqrt(1.0 + t)),
    ("ExponentialDecay(0.5,0.9)", ExponentialDecay(0.5, 0.9), lambda t: 0.5 * 0.9**t),
    ("StepDecay(1,10,0.5)", StepDecay(1.0, 10, 0.5), lambda t: 1.0 * 0.5 ** (t // 10)),
]


@pytest.mark.parametrize("name,schedule,formula", FORMULAS, ids=[f[0] for f in FORMULAS])
@pytest.mark.parametrize("t", TIMES)
def test_schedule_matches_its_formula(name, schedule, formula, t):
    assert schedule.lr(t) == pytest.approx(formula(t), rel=1e-14)


def test_step_decay_is_piecewise_constant_by_hand():
    s = StepDecay(0.8, 3, 0.5)
    assert [s.lr(t) for t in range(8)] == [0.8, 0.8, 0.8, 0.4, 0.4, 0.4, 0.2, 0.2]


def test_cosine_with_warmup_key_points():
    # lr = 1, min_lr = 0.1, warm-up 10 steps, then a cosine over S = 100 steps
    s = Cosine(1.0, total_steps=110, warmup=10, min_lr=0.1)
    assert s.lr(0) == pytest.approx(1.0 / 10, rel=1e-14)  # warm-up starts at lr / warmup
    assert s.lr(4) == pytest.approx(5.0 / 10, rel=1e-14)  # linear in between
    assert s.lr(9) == pytest.approx(1.0, rel=1e-14)  # the end of the warm-up reaches lr
    assert s.lr(10) == pytest.approx(1.0, rel=1e-14)  # the cosine starts at lr
    assert s.lr(60) == pytest.approx(0.1 + 0.9 * 0.5, rel=1e-14)  # half-way down
    assert s.lr(35) == pytest.approx(0.1 + 0.9 * (1 + math.cos(math.pi / 4)) / 2, rel=1e-14)
    assert s.lr(110) == pytest.approx(0.1, rel=1e-14)  # the end is min_lr
    assert s.lr(10_000) == pytest.approx(0.1, rel=1e-14)  # and stays there


def test_cosine_without_warmup_and_shape():
    s = Cosine(2.0, total_steps=40)
    values = np.array([s.lr(t) for t in range(60)])
    assert values[0] == pytest.approx(2.0, rel=1e-14)
    assert values[20] == pytest.approx(1.0, rel=1e-14)
    assert values[40] == pytest.approx(0.0, abs=1e-15)
    assert np.all(np.diff(values) <= 1e-15)  # non-increasing
    warm = Cosine(1.0, total_steps=30, warmup=5)
    w = np.array([warm.lr(t) for t in range(30)])
    assert np.all(np.diff(w[:6]) >= 0) and np.all(np.diff(w[5:]) <= 1e-15)


@pytest.mark.parametrize("schedule", [InverseTime(1.0, 2.0), ExponentialDecay(0.7, 0.5)],
                         ids=repr)
def test_optimizer_uses_schedule_value_at_each_step(schedule):
    x = ds.tensor(np.array([3.0, -1.0]), requires_grad=True)
    opt = GD([x], lr=schedule)
    closure = lambda: 0.5 * (x * x).sum()  # noqa: E731  (g = x)
    want = np.array([3.0, -1.0])
    for t in range(5):
        want = want - schedule.lr(t) * want
        opt.step(closure)
        assert opt.last.lr == pytest.approx(schedule.lr(t), rel=1e-15)
        np.testing.assert_allclose(x.data, want, rtol=1e-14)


def test_plain_callable_is_a_schedule():
    x = ds.tensor(np.array([4.0]), requires_grad=True)
    seen: list[int] = []

    def halving(t: int) -> float:
        seen.append(t)
        return 0.5 ** (t + 1)

    opt = GD([x], lr=halving)
    closure = lambda: (x * x).sum() * 0.5  # noqa: E731  (g = x)
    # x_{t+1} = x_t (1 - 0.5^(t+1)): 4 -> 2 -> 1.5 -> 1.3125 -> 1.23046875
    for want in (2.0, 1.5, 1.3125, 1.23046875):
        opt.step(closure)
        assert x.data[0] == pytest.approx(want, abs=1e-15)
    assert seen == [0, 1, 2, 3]
    assert isinstance(opt.rule, FunctionSchedule)


def test_as_step_rule_coerces_floats_and_callables_and_keeps_rules():
    assert isinstance(as_step_rule(0.25), Constant) and as_step_rule(0.25).lr(9) == 0.25
    assert isinstance(as_step_rule(3), Constant) and as_step_rule(3).lr(0) == 3.0
    fn = as_step_rule(lambda t: 1.0 / (t + 1))
    assert isinstance(fn, FunctionSchedule) and fn.lr(3) == 0.25
    rule = Armijo()
    assert as_step_rule(rule) is rule
    with pytest.raises(ConfigError, match="None"):
        as_step_rule(None)


# --------------------------------------------------------------------------- convergence sums
def _partial_sums(schedule, n: int) -> tuple[np.ndarray, np.ndarray]:
    values = np.array([schedule.lr(t) for t in range(n)])
    return np.cumsum(values), np.cumsum(values**2)


def test_inverse_time_is_square_summable_but_not_summable():
    # a/(b+t) with a = b = 1 gives the harmonic numbers: H_N = ln N + gamma + O(1/N), and the
    # squares sum to pi^2/6 - O(1/N)
    n = 100_000
    sums, squares = _partial_sums(InverseTime(1.0, 1.0), n)
    euler_gamma = 0.5772156649015329
    for m in (1_000, 10_000, n):
        assert sums[m - 1] - math.log(m) == pytest.approx(euler_gamma, abs=1.0 / m)
        assert math.pi**2 / 6 - squares[m - 1] == pytest.approx(1.0 / m, rel=0.01)
    # the sum keeps growing like log: every factor 10 of steps adds ln 10
    assert sums[n - 1] - sums[n // 10 - 1] == pytest.approx(math.log(10), rel=1e-3)


def test_inverse_time_sums_with_other_constants():
    a, b = 3.0, 5.0
    sums, squares = _partial_sums(InverseTime(a, b), 50_000)
    # squares are bounded by a^2 (1/b^2 + 1/b) (integral test), the sum grows like a ln t
    assert squares[-1] < a * a * (1 / b**2 + 1 / b)
    assert sums[-1] - sums[4_999] == pytest.approx(a * math.log(50_000 / 5_000), rel=1e-3)


def test_inverse_sqrt_is_nonsummable_and_not_square_summable():
    a = 0.5
    sums, squares = _partial_sums(InverseSqrt(a, 1.0), 40_000)
    # sum ~ 2 a sqrt(N), sum of squares ~ a^2 ln N: both unbounded
    assert sums[-1] / (2 * a * math.sqrt(40_000)) == pytest.approx(1.0, rel=0.01)
    assert squares[-1] - squares[3_999] == pytest.approx(a * a * math.log(10), rel=1e-3)


def test_exponential_and_step_decay_are_summable():
    sums, _ = _partial_sums(ExponentialDecay(0.7, 0.9), 2_000)
    assert sums[-1] == pytest.approx(0.7 / (1 - 0.9), rel=1e-12)
    sums, _ = _partial_sums(StepDecay(1.0, 4, 0.5), 2_000)
    assert sums[-1] == pytest.approx(4 * 1.0 / (1 - 0.5), rel=1e-12)


# --------------------------------------------------------------------------- the string form
# (spec, type, attributes that must hold)
PARSED = [
    ("0.1", Constant, {"value": 0.1}),
    ("constant:0.25", Constant, {"value": 0.25}),
    ("invtime:2:3", InverseTime, {"a": 2.0, "b": 3.0}),
    ("invtime:2", InverseTime, {"a": 2.0, "b": 1.0}),
    ("invsqrt:0.5:4", InverseSqrt, {"a": 0.5, "b": 4.0}),
    ("exp:0.5:0.9", ExponentialDecay, {"initial": 0.5, "gamma": 0.9}),
    ("step:1:10:0.5", StepDecay, {"initial": 1.0, "step_size": 10, "gamma": 0.5}),
    ("cosine:1:100:10", Cosine, {"initial": 1.0, "total_steps": 100, "warmup": 10}),
    ("cosine:0.3:50", Cosine, {"initial": 0.3, "total_steps": 50, "warmup": 0}),
    ("armijo", Armijo, {"c1": 1e-4, "shrink": 0.5}),
    ("armijo:0.3", Armijo, {"c1": 0.3}),
    ("sls", Armijo, {"c1": 0.1, "shrink": 0.5}),
    ("wolfe", StrongWolfe, {"c1": 1e-4, "c2": 0.9}),
    ("wolfe:0.001:0.5", StrongWolfe, {"c1": 0.001, "c2": 0.5}),
    ("exact", Exact, {"quadratic": False}),
    ("exact-quadratic", Exact, {"quadratic": True}),
    ("polyak", Polyak, {"f_star": 0.0, "c": 1.0, "max_lr": math.inf}),
    ("polyak:1.5", Polyak, {"f_star": 1.5, "c": 1.0}),
    ("polyak-est:2", Polyak, {"f_star": None, "gamma": 2.0}),
    ("sps:2", Polyak, {"f_star": 0.0, "c": 0.5, "max_lr": 2.0}),
    ("length:0.1", ConstantLength, {"gamma": 0.1}),
    ("  ARMIJO  ", Armijo, {"c1": 1e-4}),
]


@pytest.mark.parametrize("spec,kind,attrs", PARSED, ids=[p[0].strip() for p in PARSED])
def test_parse_step_rule_builds_the_right_rule(spec, kind, attrs):
    rule = parse_step_rule(spec)
    assert type(rule) is kind
    for name, value in attrs.items():
        assert getattr(rule, name) == value, name


def test_parsed_schedules_give_their_formula_values():
    assert parse_step_rule("invtime:2:3").lr(5) == pytest.approx(2 / 8, rel=1e-15)
    assert parse_step_rule("invsqrt:1:0.5").lr(3.5) == pytest.approx(0.5, rel=1e-15)
    assert parse_step_rule("exp:2:0.5").lr(3) == pytest.approx(0.25, rel=1e-15)
    assert parse_step_rule("step:1:2:0.1").lr(5) == pytest.approx(0.01, rel=1e-12)
