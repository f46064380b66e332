"""Bad input to ``ds.optim.LBFGS`` and ``ds.optim.CG``: one table of invalid constructor
arguments (each error names the bad value), and the named outcomes of inputs that are
allowed but unhelpful (a schedule, a non-finite loss)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import descend as ds
from descend import nn, optim
from descend.errors import ConfigError
from descend.optim import extend

from . import case, raises_naming, user_error

NAN, INF = math.nan, math.inf


def params() -> list[nn.Parameter]:
    return [nn.Parameter(np.ones(3))]


CONSTRUCTORS = [
    *(
        case(f"lbfgs-history-{name}", lambda v=v: optim.LBFGS(params(), history_size=v),
             ConfigError, needle)
        for name, v, needle in [
            ("zero", 0, "history_size must be an int >= 1, got 0"), ("negative", -3, "-3"),
            ("float", 2.5, "2.5"), ("string", "10", "'10'"), ("bool", True, "True"),
            ("None", None, "None"),
        ]
    ),
    *(
        case(f"lbfgs-curvature-eps-{name}", lambda v=v: optim.LBFGS(params(), curvature_eps=v),
             ConfigError, needle)
        for name, v, needle in [
            ("negative", -1e-3, "-0.001"), ("one", 1.0, "curvature_eps"), ("nan", NAN, "nan"),
            ("inf", INF, "inf"), ("string", "1e-10", "'1e-10'"),
        ]
    ),
    case("lbfgs-lr-negative", lambda: optim.LBFGS(params(), lr=-1.0), ConfigError, "-1.0"),
    case("lbfgs-weight-decay", lambda: optim.LBFGS(params(), weight_decay=-1), ConfigError,
         "-1"),
    *(
        case(f"cg-beta-{name}", lambda v=v: optim.CG(params(), beta=v), ConfigError, needle)
        for name, v, needle in [
            ("unknown", "PR", "unknown beta 'PR'"), ("names-the-choices", "XX", "FR, PR+, HS, DY"),
            ("empty", "", "''"), ("None", None, "None"), ("number", 1, "1"),
        ]
    ),
    case("cg-restart-zero", lambda: optim.CG(params(), restart=0), ConfigError,
         "restart must be an int >= 1, got 0"),
    case("cg-restart-float", lambda: optim.CG(params(), restart=2.5), ConfigError, "2.5"),
    case("cg-lr-string", lambda: optim.CG(params(), lr="wolfe"), ConfigError, "'wolfe'"),
    case("cg-no-parameters", lambda: optim.CG([]), ConfigError, "empty parameter list"),
    case("lbfgs-arrays", lambda: optim.LBFGS([np.ones(2)]), TypeError, "ndarray"),
    *(
        case(f"{kind}-max-iter-{name}", lambda make=make, v=v: make(params(), max_iter=v),
             ConfigError, needle)
        for kind, make in [("lbfgs", optim.LBFGS), ("cg", optim.CG)]
        for name, v, needle in [
            ("zero", 0, "max_iter must be an int >= 1, got 0"),
            ("negative", -2, "max_iter must be an int >= 1, got -2"),
            ("float", 20.0, "max_iter must be an int >= 1, got 20.0"),
            ("string", "20", "max_iter must be an int >= 1, got '20'"),
            ("bool", True, "max_iter must be an int >= 1, got True"),
            ("None", None, "max_iter must be an int >= 1, got None"),
        ]
    ),
]


@pytest.mark.parametrize(("fn", "error", "needle"), CONSTRUCTORS)
def test_constructors_reject(fn: Callable[[], Any], error: type, needle: str) -> None:
    assert user_error(error)
    raises_naming(error, needle, fn)


@pytest.mark.parametrize("make", [optim.LBFGS, optim.CG])
def test_line_search_default_needs_a_closure(make) -> None:
    x = nn.Parameter(np.ones(2))
    opt = make([x])
    (x * x).sum().backward()
    raises_naming(ConfigError, "pass step(closure)", opt.step)


@pytest.mark.parametrize("make", [optim.LBFGS, optim.CG])
@pytest.mark.parametrize("rule", [None, 0.1], ids=["wolfe", "constant"])
def test_max_iter_needs_a_closure(make, rule) -> None:
    # iterations after the first must evaluate the loss: even a schedule needs the closure
    x = nn.Parameter(np.ones(2))
    opt = make([x], lr=rule, max_iter=3)
    (x * x).sum().backward()
    raises_naming(ConfigError, "max_iter=3 evaluates the loss after each iteration: pass "
                  "step(closure)", opt.step)


@pytest.mark.parametrize("make", [optim.LBFGS, optim.CG])
@pytest.mark.parametrize("bad", [NAN, INF])
def test_non_finite_loss_is_a_named_status_not_a_crash(make, bad) -> None:
    x = nn.Parameter(np.array([1.0, -1.0]))
    opt = make([x])
    opt.step(lambda: (x * x).sum())
    kept = x.data.copy()
    opt.step(lambda: (x * x).sum() * bad)
    assert opt.last.finite is False and opt.last.lr == 0.0
    assert np.array_equal(x.data, kept)
    opt.step(lambda: (x * x).sum())  # and training can go on
    assert opt.last.finite is True


def test_non_finite_gradient_with_a_finite_loss_is_rejected() -> None:
    x = nn.Parameter(np.array([0.0, 1.0]))
    opt = optim.LBFGS([x], lr=0.1)
    with np.errstate(divide="ignore", invalid="ignore"):
        opt.step(lambda: ds.tensor(np.array([1.0, 1.0])).sum() + x.abs().sqrt().sum())
    assert opt.last.finite is False  # d sqrt|x| / dx is infinite at 0
    assert np.array_equal(x.data, [0.0, 1.0])


def test_lbfgs_with_a_schedule_is_allowed_and_reports_skipped_pairs() -> None:
    """A schedule cannot guarantee s'y > 0: on a concave stretch the pair is skipped and
    ``opt.last.direction`` says so (``"skipped"``)."""
    p = ds.problems.saddle(start=(0.2, 0.0))
    opt = optim.LBFGS(p.params, lr=0.05)
    seen = set()
    for _ in range(4):
        opt.step(p.loss)
        seen.add(opt.last.direction)
    assert extend.DirectionStatus.SKIPPED in seen
    assert str(extend.DirectionStatus.SKIPPED) == "skipped"


def test_loading_a_state_with_more_pairs_than_the_memory_fails_clearly() -> None:
    opt = optim.LBFGS(params(), history_size=2)
    state = opt.state_dict()
    pair = [np.ones(3)]
    state["direction"].update(s=[pair] * 3, y=[pair] * 3, rho=[1.0] * 3)
    raises_naming(ConfigError, "history_size=2", lambda: opt.load_state_dict(state))
