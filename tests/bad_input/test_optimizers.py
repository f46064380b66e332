"""Bad input to ``ds.optim``: one table of invalid arguments per optimizer and step-rule
constructor, the ``--lr`` mini-language (``parse_step_rule``), and bad closures and schedules
at ``step()`` time, which must fail before any parameter moves."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import descend as ds
from descend import nn, optim
from descend.errors import ConfigError, GradientError

from . import case, raises_naming, user_error

NAN, INF = math.nan, math.inf


def params() -> list[nn.Parameter]:
    return [nn.Parameter(np.ones(3))]


OPTIMIZERS = [
    # ------------------------------------------------------------------ learning rates
    *(
        case(f"gd-lr-{name}", lambda lr=lr: optim.GD(params(), lr=lr), ConfigError, needle)
        for name, lr, needle in [
            ("negative", -0.1, "-0.1"), ("zero", 0, "got 0"), ("nan", NAN, "nan"),
            ("inf", INF, "inf"), ("minus-inf", -INF, "-inf"), ("string", "0.1", "'0.1'"),
            ("None", None, "None"), ("bool", True, "True"), ("list", [0.1], "[0.1]"),
            ("rule-class", optim.Armijo, "Armijo"), ("rule-name", "armijo", "'armijo'"),
        ]
    ),
    case("adam-lr-negative", lambda: optim.Adam(params(), lr=-1e-3), ConfigError, "-0.001"),
    case("subgradient-lr-zero", lambda: optim.Subgradient(params(), lr=0.0), ConfigError,
         "0.0"),
    case("group-lr-negative", lambda: optim.GD([{"params": params(), "lr": -1}]), ConfigError,
         "-1"),
    # ------------------------------------------------------------------ momentum
    case("momentum-negative", lambda: optim.GD(params(), momentum=-0.1), ConfigError, "-0.1"),
    case("momentum-one", lambda: optim.GD(params(), momentum=1.0), ConfigError, "1.0"),
    case("momentum-above-one", lambda: optim.GD(params(), momentum=1.5), ConfigError, "1.5"),
    case("momentum-nan", lambda: optim.GD(params(), momentum=NAN), ConfigError, "nan"),
    case("momentum-string", lambda: optim.GD(params(), momentum="0.9"), ConfigError, "'0.9'"),
    case("nesterov-without-momentum", lambda: optim.GD(params(), nesterov=True), ConfigError,
         "momentum > 0"),
    # ------------------------------------------------------------------ weight decay, Adam
    case("weight-decay-negative", lambda: optim.GD(params(), weight_decay=-1), ConfigError,
         "-1"),
    case("weight-decay-inf", lambda: optim.GD(params(), weight_decay=INF), ConfigError, "inf"),
    case("weight-decay-nan", lambda: optim.Adam(params(), weight_decay=NAN), ConfigError,
         "nan"),
    case("adam-one-beta", lambda: optim.Adam(params(), betas=(0.9,)), ConfigError, "(0.9,)"),
    case("adam-beta1-one", lambda: optim.Adam(params(), betas=(1.0, 0.999)), ConfigError,
         "betas[0]"),
    case("adam-beta2-one", lambda: optim.Adam(params(), betas=(0.9, 1.0)), ConfigError,
         "betas[1]"),
    case("adam-beta-nan", lambda: optim.Adam(params(), betas=(NAN, 0.9)), ConfigError, "nan"),
    case("adam-betas-scalar", lambda: optim.Adam(params(), betas=0.9), ConfigError, "0.9"),
    case("adam-eps-zero", lambda: optim.Adam(params(), eps=0), ConfigError, "eps"),
    case("adam-eps-negative", lambda: optim.Adam(params(), eps=-1e-8), ConfigError, "-1e-08"),
    # ------------------------------------------------------------------ parameters
    case("no-parameters", lambda: optim.GD([], lr=0.1), ConfigError, "empty parameter list"),
    case("arrays-not-tensors", lambda: optim.GD([np.ones(3)]), TypeError, "ndarray"),
    case("no-requires-grad", lambda: optim.GD([ds.tensor(np.ones(3))]), ConfigError,
         "does not require grad"),
    case("non-leaf", lambda: optim.GD([nn.Parameter(np.ones(3)) * 2]), ConfigError, "leaf"),
    case("group-without-params", lambda: optim.GD([{"lr": 0.1}]), ConfigError, "group 0"),
    case("subgradient-line-search", lambda: optim.Subgradient(params(), lr=optim.Armijo()),
         ConfigError, "Armijo"),
]


@pytest.mark.parametrize(("fn", "error", "needle"), OPTIMIZERS)
def test_optimizer_constructors_reject(fn: Callable[[], Any], error: type, needle: str) -> None:
    assert user_error(error)
    raises_naming(error, needle, fn)


def test_parameter_listed_twice() -> None:
    p = nn.Parameter(np.ones(3))
    raises_naming(ConfigError, "twice", lambda: optim.GD([p, p]))


STEP_RULES = [
    *(
        case(f"armijo-{k}={v!r}", lambda k=k, v=v: optim.Armijo(**{k: v}), ConfigError, needle)
        for k, v, needle in [
            ("c1", 0, "c1"), ("c1", 1, "got 1"), ("c1", -0.1, "-0.1"), ("c1", NAN, "nan"),
            ("c1", "0.1", "'0.1'"), ("shrink", 0, "shrink"), ("shrink", 1, "got 1"),
            ("shrink", 1.5, "1.5"), ("alpha0", 0, "alpha0"), ("alpha0", -1, "-1"),
            ("alpha0", INF, "inf"), ("grow", 0.5, "0.5"), ("max_evals", 0, "max_evals"),
            ("max_evals", 2.5, "2.5"), ("max_lr", 0, "max_lr"),
        ]
    ),
    case("wolfe-c1-above-c2", lambda: optim.StrongWolfe(c1=0.9, c2=0.1), ConfigError,
         "c1=0.9, c2=0.1"),
    case("wolfe-c1-equals-c2", lambda: optim.StrongWolfe(c1=0.5, c2=0.5), ConfigError,
         "c1=0.5, c2=0.5"),
    case("wolfe-c2-one", lambda: optim.StrongWolfe(c2=1.0), ConfigError, "c2"),
    case("wolfe-c2-zero", lambda: optim.StrongWolfe(c2=0), ConfigError, "c2"),
    case("wolfe-alpha0-zero", lambda: optim.StrongWolfe(alpha0=0), ConfigError, "alpha0"),
    case("exact-tol-zero", lambda: optim.Exact(tol=0), ConfigError, "tol"),
    case("exact-max-evals", lambda: optim.Exact(max_evals=0), ConfigError, "max_evals"),
    case("constant-zero", lambda: optim.Constant(0), ConfigError, "got 0"),
    case("constant-nan", lambda: optim.Constant(NAN), ConfigError, "nan"),
    case("inverse-time-a", lambda: optim.InverseTime(0), ConfigError, "a must"),
    case("inverse-time-b", lambda: optim.InverseTime(1, -1), ConfigError, "-1"),
    case("inverse-sqrt-a", lambda: optim.InverseSqrt(-1), ConfigError, "-1"),
    case("exp-gamma-one", lambda: optim.ExponentialDecay(0.1, 1.0), ConfigError, "gamma"),
    case("exp-gamma-zero", lambda: optim.ExponentialDecay(0.1, 0), ConfigError, "gamma"),
    case("step-size-zero", lambda: optim.StepDecay(0.1, 0), ConfigError, "step_size"),
    case("step-size-float", lambda: optim.StepDecay(0.1, 2.5), ConfigError, "2.5"),
    case("cosine-total-zero", lambda: optim.Cosine(0.1, 0), ConfigError, "total_steps"),
    case("cosine-warmup-too-long", lambda: optim.Cosine(0.1, 10, warmup=10), ConfigError,
         "warmup"),
    case("cosine-min-above-lr", lambda: optim.Cosine(0.1, 10, min_lr=1.0), ConfigError, "1.0"),
    case("polyak-c-zero", lambda: optim.Polyak(c=0), ConfigError, "c must"),
    case("polyak-f-star-nan", lambda: optim.Polyak(f_star=NAN), ConfigError, "nan"),
    case("polyak-max-lr-zero", lambda: optim.Polyak(max_lr=0), ConfigError, "max_lr"),
    case("polyak-f-star-string", lambda: optim.Polyak(f_star="0"), ConfigError, "'0'",
         bug="optim/steps.py Polyak(f_star='0'): math.isfinite's raw TypeError 'must be real "
             "number, not str' escapes; it names neither f_star nor '0'"),
    case("constant-length-zero", lambda: optim.ConstantLength(0), ConfigError, "gamma"),
]


@pytest.mark.parametrize(("fn", "error", "needle"), STEP_RULES)
def test_step_rule_constructors_reject(fn: Callable[[], Any], error: type, needle: str) -> None:
    assert user_error(error)
    raises_naming(error, needle, fn)


PARSE = [
    ("banana", "'banana'"), ("", "''"), (":", "':'"), ("armijo:x", "'armijo:x'"),
    ("armijo:2", "2.0"), ("armijo:0.1:1.5", "1.5"), ("armijo:nan", "nan"),
    ("wolfe:0.9:0.1", "c1=0.9, c2=0.1"), ("constant", "'constant'"), ("constant:1:2", "1:2"),
    ("constant:-1", "-1.0"), ("nan", "nan"), ("inf", "inf"), ("-0.1", "-0.1"), ("0", "0.0"),
    ("1e400", "inf"), ("step:0.1", "'step:0.1'"), ("cosine:0.1:10:20", "20"),
    ("exact:1", "'exact:1'"), ("invsqrt:-1", "-1.0"), ("length:0", "0.0"), ("sps:0", "0.0"),
    ("polyak:nan", "nan"),
]


@pytest.mark.parametrize(("spec", "needle"), PARSE, ids=[p[0] or "empty" for p in PARSE])
def test_parse_step_rule_rejects(spec: str, needle: str) -> None:
    raises_naming(ConfigError, needle, lambda: optim.parse_step_rule(spec))


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        pytest.param("step:0.1:2.5", "2.5", id="step-size-2.5"),
        pytest.param("cosine:0.1:10.5", "10.5", id="cosine-total-10.5"),
        pytest.param("cosine:0.1:10:2.5", "2.5", id="cosine-warmup-2.5"),
    ],
)
def test_parse_step_rule_rejects_fractional_counts(spec: str, needle: str) -> None:
    raises_naming(ConfigError, needle, lambda: optim.parse_step_rule(spec))


def test_parse_step_rule_rejects_a_non_string() -> None:
    raises_naming(TypeError, "1", lambda: optim.parse_step_rule(1))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: optim.GD(params(), lr=np.float32(0.1)), id="gd-lr-float32"),
        pytest.param(lambda: optim.GD(params(), lr=0.1, momentum=np.float32(0.5)),
                     id="gd-momentum-float32"),
        pytest.param(lambda: optim.Armijo(c1=np.float32(0.1)), id="armijo-c1-float32"),
    ],
)
def test_numpy_scalars_are_numbers(make: Callable[[], Any]) -> None:
    make()


# ------------------------------------------------------------------------------ step time
def _quadratic() -> tuple[nn.Parameter, Callable[[], ds.Tensor]]:
    w = nn.Parameter(np.array([1.0, -2.0, 3.0]))
    return w, lambda: (w * w).sum()


def _step_with(lr: Any, closure: Callable[[nn.Parameter], Any] | None) -> Callable[[], Any]:
    w, _ = _quadratic()
    opt = optim.GD([w], lr=lr)

    def run() -> Any:
        before = w.data.copy()
        try:
            return opt.step(None if closure is None else lambda: closure(w))
        finally:
            # The step failed before moving anything.
            assert np.array_equal(w.data, before)
            assert opt.t == 0

    return run


STEP_TIME = [
    case("closure-returns-float", _step_with(0.1, lambda w: 1.0), TypeError, "float"),
    case("closure-returns-vector", _step_with(0.1, lambda w: w * 2), GradientError, "(3,)"),
    case("closure-returns-array", _step_with(0.1, lambda w: np.float64(1.0)), TypeError,
         "float64"),
    case("loss-without-grad", _step_with(0.1, lambda w: ds.tensor(1.0)), GradientError,
         "does not require grad"),
    case("schedule-negative", _step_with(lambda t: -1.0, lambda w: (w * w).sum()), ConfigError,
         "-1.0"),
    case("schedule-nan", _step_with(lambda t: NAN, lambda w: (w * w).sum()), ConfigError,
         "nan"),
    case("schedule-string", _step_with(lambda t: "0.1", lambda w: (w * w).sum()), ConfigError,
         "'0.1'"),
    case("line-search-without-closure", _step_with(optim.Armijo(), None), ConfigError,
         "closure"),
    case("no-closure-no-grad", _step_with(0.1, None), GradientError, "backward"),
]


@pytest.mark.parametrize(("fn", "error", "needle"), STEP_TIME)
def test_bad_steps_fail_before_moving(fn: Callable[[], Any], error: type, needle: str) -> None:
    assert user_error(error)
    raises_naming(error, needle, fn)


@pytest.mark.parametrize("bad", [NAN, INF], ids=["nan", "inf"])
@pytest.mark.parametrize("lr", [0.1, optim.Armijo(), optim.StrongWolfe()], ids=repr)
def test_non_finite_loss_makes_no_update(bad: float, lr: Any) -> None:
    w, _ = _quadratic()
    opt = optim.GD([w], lr=lr)
    before = w.data.copy()
    opt.step(lambda: (w * w).sum() * bad)
    assert np.array_equal(w.data, before)
    assert opt.last is not None and not opt.last.finite and opt.last.lr == 0.0


@pytest.mark.parametrize(
    ("state", "error", "needle"),
    [
        pytest.param({"t": 0, "direction": {}, "rules": [{}, {}]}, ConfigError, "2 parameter",
                     id="two-groups"),
        pytest.param({}, ConfigError, "rules", id="empty"),
    ],
)
def test_optimizer_load_state_dict_rejects(state: dict, error: type, needle: str) -> None:
    opt = optim.GD(params(), lr=0.1)
    raises_naming(error, needle, lambda: opt.load_state_dict(state))
