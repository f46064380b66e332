"""Every registered step rule through every door, and a rule registered here reaching them all.

The doors: ``descend train --lr SPEC`` (a short run, and the rule listed in ``--help``),
``descend compare --steps SPEC`` (one run on a small problem, and ``--help``), an estimator
(``MLPClassifier(lr=SPEC)`` fit on tiny data) and ``descend.torch`` (a step on a tiny torch
model). Each entry is tried with its registry example. None of the doors names a rule: a
rule registered in this file (one class, one registry call) must reach all of them, and be
gone again afterwards.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator

import numpy as np
import pytest

from descend.cli import main
from descend.optim import parse_step_rule
from descend.optim.rules import StatelessRule, StepChoice, StepContext
from descend.optim.spec import RULES, RuleEntry, register_rule, unregister_rule

ENTRIES = RULES.entries()
IDS = [e.name for e in ENTRIES]


def through_cli_help(entry: RuleEntry, command: str, capsys: pytest.CaptureFixture) -> None:
    assert main([command, "--help"]) == 0
    lines = capsys.readouterr().out.splitlines()
    at = [i for i, line in enumerate(lines) if line.strip().startswith(entry.usage)]
    assert at and entry.help in " ".join(lines[at[0]:at[0] + 2]), (
        f"{entry.name} is not listed in descend {command} --help")


def through_cli(spec: str, capsys: pytest.CaptureFixture) -> None:
    code = main(["train", "--data", "spirals", "--samples", "60", "--hidden", "4",
                 "--batch-size", "16", "--max-steps", "2", "--quiet", "--lr", spec])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"lr={parse_step_rule(spec)!r}" in out


def through_compare(spec: str, capsys: pytest.CaptureFixture) -> None:
    code = main(["compare", "--problem", "leastsq", "--steps", spec, "--max-steps", "3",
                 "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert any(line.startswith(f"{spec} ") for line in out.splitlines()), out


def through_estimator(spec: str) -> None:
    from sklearn.exceptions import ConvergenceWarning

    from descend import MLPClassifier

    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    # over the gradient: every rule takes it (the default, "recommended", is Adam's
    # direction, which Polyak-type and distance rules refuse)
    est = MLPClassifier(hidden_layer_sizes=4, optimizer="gd", lr=spec, max_iter=2,
                        batch_size=16, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    assert type(est.optimizer_.param_groups[0]["rule"]) is type(parse_step_rule(spec))
    assert est.n_iter_ >= 1 and all(math.isfinite(v) for v in est.loss_curve_)


def through_torch(spec: str) -> None:
    torch = pytest.importorskip("torch")
    import descend.torch as dt

    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    x, y = torch.randn(8, 3), torch.tensor([0, 1] * 4)
    opt = dt.make_optimizer("gd", model.parameters(), spec)
    assert type(opt.param_groups[0]["rule"]) is type(parse_step_rule(spec))
    opt.step(lambda: torch.nn.functional.cross_entropy(model(x), y))
    assert math.isfinite(opt.last.lr) and opt.last.lr >= 0


# --------------------------------------------------------------------------- each entry
@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_each_rule_is_in_both_commands_help(entry, capsys):
    through_cli_help(entry, "train", capsys)
    through_cli_help(entry, "compare", capsys)


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_each_rule_trains_from_the_command_line(entry, capsys):
    through_cli(entry.example, capsys)


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_each_rule_runs_in_compare(entry, capsys):
    through_compare(entry.example, capsys)


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_each_rule_fits_an_estimator(entry):
    pytest.importorskip("sklearn")
    through_estimator(entry.example)


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_each_rule_steps_a_torch_model(entry):
    through_torch(entry.example)


# --------------------------------------------------------------------------- a new rule
class Halving(StatelessRule):
    """alpha_t = lr / 2^t: a rule that only this file knows."""

    def __init__(self, lr: float):
        self.lr = lr

    def __call__(self, ctx: StepContext) -> StepChoice:
        return StepChoice(self.lr * 0.5**ctx.t)


@pytest.fixture
def halving() -> Iterator[RuleEntry]:
    register_rule("halving", "lr", help="lr / 2^t, registered by a test",
                  example="halving:lr=0.2")(Halving)
    try:
        yield RULES["halving"]
    finally:
        unregister_rule("halving")
    assert "halving" not in RULES


def test_a_rule_registered_here_reaches_every_door(halving, capsys):
    through_cli_help(halving, "train", capsys)
    through_cli_help(halving, "compare", capsys)
    through_cli(halving.example, capsys)
    through_compare(halving.example, capsys)
    through_cli("halving:0.3", capsys)
    pytest.importorskip("sklearn")
    through_estimator(halving.example)
    through_torch(halving.example)
