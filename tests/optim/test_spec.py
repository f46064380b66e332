"""The one registry (descend.optim.spec): specs with KEY=NUMBER arguments, specs read
against an objective (k/L, the problem's f*), its errors, registering and removing a rule,
optimizers by name, and the deprecated descend.optim.steps alias. Each rule through every
door (CLI, compare, estimators, descend.torch) is tests/test_registry_doors.py."""

from __future__ import annotations

import argparse
import importlib
import math
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from descend import nn, optim
from descend.cli import build_parser, stop_when
from descend.errors import ConfigError
from descend.optim import extend, spec
from descend.optim.rules import (
    Armijo,
    Constant,
    Cosine,
    Polyak,
    ReduceOnPlateau,
    StatelessRule,
    StepChoice,
    StepDecay,
    StepRule,
    StrongWolfe,
)
from descend.train import StopWhen


def params() -> list[nn.Parameter]:
    return [nn.Parameter(np.ones(3))]


# --------------------------------------------------------------------------- KEY=NUMBER
KEYWORDS = [
    ("armijo:c1=0.1", Armijo, {"c1": 0.1, "shrink": 0.5}),
    ("armijo:0.2:shrink=0.3", Armijo, {"c1": 0.2, "shrink": 0.3}),
    ("armijo:grow=1.5:max_lr=10", Armijo, {"grow": 1.5, "max_lr": 10.0}),
    ("sls:shrink=0.7", Armijo, {"c1": 0.1, "shrink": 0.7}),
    ("wolfe:c2=0.5", StrongWolfe, {"c1": 1e-4, "c2": 0.5}),
    ("cosine:0.1:100:min_lr=0.01", Cosine, {"initial": 0.1, "total_steps": 100,
                                            "min_lr": 0.01}),
    ("STEP:0.1:Step_Size=10", StepDecay, {"initial": 0.1, "step_size": 10}),
    ("plateau:0.1:patience=3", ReduceOnPlateau, {"initial": 0.1, "patience": 3}),
    ("polyak:c=0.5", Polyak, {"f_star": 0.0, "c": 0.5}),
    ("constant:lr=0.25", Constant, {"value": 0.25}),
]


@pytest.mark.parametrize("text,kind,attrs", KEYWORDS, ids=[k[0] for k in KEYWORDS])
def test_keywords_name_a_rule_s_parameters(text, kind, attrs):
    rule = optim.parse_step_rule(text)
    assert type(rule) is kind
    for name, value in attrs.items():
        assert getattr(rule, name) == value, name
    if "step_size" in attrs:
        assert type(rule.step_size) is int


def test_positional_and_keyword_forms_build_the_same_rule():
    for a, b in [("wolfe:0.001:0.5", "wolfe:c1=0.001:c2=0.5"),
                 ("step:0.1:1000:0.5", "step:lr=0.1:step_size=1000:gamma=0.5"),
                 ("plateau:0.5:0.2:3", "plateau:0.5:factor=0.2:patience=3")]:
        assert vars(optim.parse_step_rule(a)) == vars(optim.parse_step_rule(b))


BAD = [
    ("armijo:c9=1", "no parameter 'c9'"),
    ("exact:c=1", "no parameter 'c'"),
    ("armijo:c1=0.1:c1=0.2", "c1 is given twice"),
    ("armijo:0.1:c1=0.2", "c1 is given twice"),
    ("armijo:c1=0.1:0.5", "by position come before"),
    ("invtime:b=2", "needs a"),
    ("step:0.1:step_size=2.5", "2.5 must be a whole number"),
    ("armijo:c1=x", "must be numbers"),
    ("armijo:c1=2", "c1 must lie in (0, 1), got 2.0"),
    ("constant:1/L", "must be numbers"),  # k/L needs an objective
]


@pytest.mark.parametrize("text,needle", BAD, ids=[b[0] for b in BAD])
def test_a_bad_keyword_spec_is_one_error_naming_the_spec(text, needle):
    with pytest.raises(ConfigError) as info:
        optim.parse_step_rule(text)
    assert str(info.value).startswith(f"step rule {text!r}: ")
    assert needle in str(info.value)


# --------------------------------------------------------------------------- an objective
def toy(lipschitz: float | None = 4.0, f_star: float | None = 1.0) -> SimpleNamespace:
    return SimpleNamespace(name="toy", lipschitz=lipschitz, f_star=f_star)


def test_k_over_L_and_the_objective_s_f_star():
    parsed = spec.resolve_rule("constant:1/L", toy())
    assert parsed.rule.value == 0.25 and parsed.label == "constant:1/L (=0.25)"
    parsed = spec.resolve_rule("armijo:alpha0=2/L", toy())
    assert parsed.rule.alpha0 == 0.5 and parsed.label == "armijo:alpha0=2/L (=alpha0=0.5)"
    parsed = spec.resolve_rule("polyak", toy())
    assert parsed.rule.f_star == 1.0 and parsed.label == "polyak"
    parsed = spec.resolve_rule("polyak:c=0.5", toy(f_star=None))
    assert parsed.rule.f_star is None and parsed.label == "polyak:c=0.5 (f* estimated)"
    assert spec.resolve_rule("polyak:2", toy()).rule.f_star == 2.0
    assert spec.resolve_rule("polyak").rule.f_star == 0.0  # no objective: f* = 0
    with pytest.raises(ConfigError, match="'toy' has no known gradient Lipschitz"):
        spec.resolve_rule("constant:1/L", toy(lipschitz=None))
    with pytest.raises(ConfigError, match="expected k/L"):
        spec.resolve_rule("constant:x/L", toy())


def test_a_rule_object_is_copied_and_labelled_by_its_repr():
    rule = Armijo(c1=0.2)
    rule.previous = 0.5
    parsed = spec.resolve_rule(rule)
    assert parsed.rule is not rule and parsed.rule.previous == 0.5
    assert parsed.label == repr(rule)
    assert isinstance(spec.resolve_rule(0.1).rule, Constant)


# --------------------------------------------------------------------------- the registry
def test_usage_lines_come_from_the_parameters():
    assert spec.RULES["invtime"].usage == "invtime:a[:b]"
    assert spec.RULES["step"].usage == "step:lr:step_size[:gamma]"
    assert spec.RULES["armijo"].usage == "armijo[:c1[:shrink[:alpha0]]] [grow= max_lr=]"
    assert spec.RULES["exact-quadratic"].usage == "exact-quadratic"
    lines = spec.RULES.help_lines()
    for e in spec.RULES.entries():
        at = next(i for i, line in enumerate(lines) if line.strip().startswith(e.usage))
        assert " ".join(lines[at:at + 2]).count(e.help) == 1, e.name
    assert max(len(line) for line in lines) <= 100


def test_every_example_builds_a_step_rule():
    for entry in spec.RULES.entries():
        rule = optim.parse_step_rule(entry.example)
        assert isinstance(rule, StepRule), entry.name
        assert rule.needs in set(extend.Needs), entry.name


class Tenth(StatelessRule):
    """alpha = lr / 10 (a rule only this file knows)."""

    def __init__(self, lr: float):
        self.lr = lr

    def __call__(self, ctx):
        return StepChoice(self.lr / 10)


def test_register_and_remove_a_rule():
    spec.register_rule("tenth", "lr", help="lr / 10")(Tenth)
    try:
        assert "tenth" in spec.RULES and spec.RULES.entries()[-1].name == "tenth"
        rule = optim.parse_step_rule("tenth:lr=2")
        assert type(rule) is Tenth and rule.lr == 2.0
        with pytest.raises(ConfigError, match="the name is taken"):
            spec.register_rule("TENTH", help="again")(Tenth)
    finally:
        spec.unregister_rule("tenth")
    assert "tenth" not in spec.RULES
    with pytest.raises(ConfigError, match="unknown step rule 'tenth'"):
        optim.parse_step_rule("tenth:1")
    with pytest.raises(ConfigError, match="unknown step rule 'tenth'"):
        spec.unregister_rule("tenth")
    with pytest.raises(ConfigError, match="hold no ':'"):
        spec.RULES.add("a:b", Tenth, help="bad name")


# --------------------------------------------------------------------------- optimizers
@pytest.mark.parametrize("name", list(spec.OPTIMIZERS))
def test_each_optimizer_by_name_with_its_default_rule(name):
    entry = spec.optimizer_entry(name)
    opt = optim.make_optimizer(name, params())
    assert type(opt) is getattr(spec.NUMPY, entry.cls)
    assert repr(opt.param_groups[0]["rule"]) == repr(optim.parse_step_rule(entry.default_lr))


def test_optimizer_options_apply_where_they_mean_something():
    opt = optim.make_optimizer("gd", params(), "armijo:c1=0.1", momentum=0.9, nesterov=True,
                               weight_decay=1e-3, history_size=None, beta=None)
    assert type(opt) is optim.GD and opt.param_groups[0]["rule"].c1 == 0.1
    assert optim.make_optimizer("lbfgs", params(), history_size=3).history_size == 3
    assert optim.make_optimizer("cg", params(), beta="FR").beta == "FR"
    assert type(optim.make_optimizer("adam", params(), 0.01, momentum=0.0)) is optim.Adam
    with pytest.raises(ConfigError, match="optimizer 'adam' takes no momentum"):
        optim.make_optimizer("adam", params(), momentum=0.9)
    assert type(optim.make_optimizer("adam", params(), momentum=0.9, strict=False)) is optim.Adam
    with pytest.raises(ConfigError, match="unknown optimizer option"):
        optim.make_optimizer("gd", params(), momentun=0.9)
    with pytest.raises(ConfigError, match="unknown optimizer 'sgd'; known: gd, adam"):
        optim.make_optimizer("sgd", params())


def test_the_cli_s_choices_and_defaults_are_the_registry_s():
    train = build_parser()._subparsers._group_actions[0].choices["train"]  # type: ignore[union-attr]
    action = next(a for a in train._actions if a.dest == "optimizer")
    assert tuple(action.choices) == tuple(spec.OPTIMIZERS)


def test_stop_when_reads_the_cli_s_flags():
    args = argparse.Namespace(max_steps=5, loss_below=0.1, grad_norm_below=1e-3,
                              rel_change_below=1e-4, param_change_below=1e-6, patience=2,
                              time_limit=9.0)
    assert stop_when(args) == StopWhen(max_steps=5, loss_below=0.1, grad_norm_below=1e-3,
                                       rel_loss_change_below=1e-4, param_change_below=1e-6,
                                       patience=2, time_limit=9.0)
    defaults = build_parser().parse_args(["train"])
    assert stop_when(defaults) == StopWhen()


# --------------------------------------------------------------------------- the old module
def test_optim_steps_is_a_deprecated_alias(monkeypatch):
    monkeypatch.delitem(sys.modules, "descend.optim.steps", raising=False)
    with pytest.warns(DeprecationWarning, match="descend.optim.steps is deprecated"):
        steps = importlib.import_module("descend.optim.steps")
    assert steps.Armijo is optim.Armijo and steps.ReduceOnPlateau is optim.ReduceOnPlateau
    assert steps.parse_step_rule is optim.parse_step_rule
    assert steps.gradient_is_noise is optim.rules.gradient_is_noise
    assert all(getattr(steps, name) is not None for name in steps.__all__)
    assert optim.steps is steps  # ds.optim.steps, as the API names it, without an import
    assert math.isinf(steps.Polyak().max_lr)


def test_the_cli_refuses_momentum_where_the_registry_says_it_does_not_apply(capsys):
    from descend.cli import main

    for name in ("adam", "subgradient", "lbfgs", "cg"):
        assert main(["train", "--optimizer", name, "--momentum", "0.9"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [f"--optimizer {name} takes no --momentum (its direction is its own); "
                       "use --optimizer gd"]


def test_users_names_apart_from_extenders_names():
    # ds.optim holds what users call; the protocols and types for rule and direction
    # authors are in descend.optim.extend; the old spellings still work, with a warning
    for name in optim.__all__:
        assert name not in extend.__all__, name
    for name in optim.MOVED_TO_EXTEND:
        assert name in extend.__all__, name
        with pytest.warns(DeprecationWarning, match=f"descend.optim.extend.{name}"):
            assert getattr(optim, name) is getattr(extend, name)
    with pytest.raises(AttributeError):
        optim.NoSuchName  # noqa: B018
