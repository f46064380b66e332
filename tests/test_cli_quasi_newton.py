"""``descend compare`` and ``descend train`` with ``--optimizer lbfgs|cg``."""

from __future__ import annotations

import subprocess
import sys

import pytest

from descend import compare as C
from descend.errors import ConfigError
from descend.problems import MGH_PROBLEMS, make_problem


def run(*args: str, timeout: float = 180):
    return subprocess.run([sys.executable, "-m", "descend", *args], capture_output=True,
                          text=True, timeout=timeout)


def test_run_rule_with_lbfgs_and_cg_reaches_the_optimum():
    p = make_problem("wood")
    r = C.run_rule(p, "wolfe", optimizer="lbfgs", max_steps=500, tol=1e-10)
    assert r.optimizer == "lbfgs(10)" and r.stop_reason == "loss_below" and r.gap <= 1e-10
    r = C.run_rule(p, "wolfe:0.0001:0.1", optimizer="cg", beta="FR", max_steps=500, tol=1e-10)
    assert r.optimizer == "cg(FR)" and r.stop_reason == "loss_below"
    r = C.run_rule(p, "wolfe", optimizer="lbfgs", history_size=3, max_steps=5)
    assert r.optimizer == "lbfgs(3)" and r.steps == 5


def test_default_specs_pair_each_direction_with_its_search():
    p = MGH_PROBLEMS["beale"]()
    assert C.default_specs(p, "lbfgs") == ["wolfe", "armijo"]
    assert C.default_specs(p, "cg")[0] == "wolfe:0.0001:0.1"
    assert "wolfe" in C.default_specs(p)


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"optimizer": "lbfgs", "momentum": 0.5}, "takes no momentum"),
    ({"optimizer": "newton"}, "'newton'"),
    ({"optimizer": "cg", "beta": "XX"}, "unknown beta 'XX'"),
    ({"optimizer": "lbfgs", "history_size": 0}, "history_size"),
])
def test_run_rule_rejects(kwargs, needle):
    with pytest.raises(ConfigError, match=needle):
        C.run_rule(make_problem("beale"), "wolfe", **kwargs)


def test_compare_cli_offers_the_mgh_problems_with_lbfgs_and_cg(tmp_path):
    out = run("compare", "--problem", "powell-singular", "--optimizer", "lbfgs", "--tol",
              "1e-12", "--quiet")
    assert out.returncode == 0, out.stderr
    assert "MGH 13" in out.stdout and "lbfgs(10)" in out.stdout and "loss_below" in out.stdout
    out = run("compare", "--problem", "vardim", "--optimizer", "cg", "--beta", "DY",
              "--steps", "wolfe:0.0001:0.1", "--quiet")
    assert out.returncode == 0, out.stderr
    assert "cg(DY)" in out.stdout


def test_train_cli_with_lbfgs_and_cg(tmp_path):
    ckpt = tmp_path / "run.npz"
    out = run("train", "--optimizer", "lbfgs", "--batch-size", "full", "--epochs", "2",
              "--hidden", "8", "--history-size", "4", "--quiet", "--checkpoint", str(ckpt))
    assert out.returncode == 0, out.stderr
    assert "optimizer: LBFGS, lr=StrongWolfe(c1=0.0001, c2=0.9)" in out.stdout
    out = run("train", "--resume", str(ckpt), "--epochs", "3", "--quiet")
    assert out.returncode == 0, out.stderr
    assert "completed 3 epochs" in out.stdout
    out = run("train", "--optimizer", "cg", "--beta", "HS", "--batch-size", "full",
              "--epochs", "2", "--hidden", "8", "--quiet")
    assert out.returncode == 0, out.stderr
    assert "optimizer: CG, lr=StrongWolfe(c1=0.0001, c2=0.1)" in out.stdout


@pytest.mark.parametrize(("args", "needle"), [
    (["train", "--optimizer", "gd", "--beta", "FR"], "--beta is for --optimizer cg"),
    (["train", "--optimizer", "cg", "--history-size", "5"], "--history-size is for"),
    (["train", "--optimizer", "lbfgs", "--history-size", "0"], "--history-size"),
    (["train", "--optimizer", "cg", "--beta", "PR"], "'PR'"),
    (["train", "--optimizer", "cg", "--momentum", "0.5"], "takes no --momentum"),
    (["compare", "--problem", "wood", "--optimizer", "lbfgs", "--momentum", "0.9"],
     "--momentum needs"),
])
def test_bad_flags_one_line_exit_2(args, needle):
    out = run(*args)
    assert out.returncode == 2
    assert needle in out.stderr and len(out.stderr.strip().splitlines()) == 1
