"""The command line, run in a subprocess as a user would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from descend.train.checkpoint import load_checkpoint


def run(*args: str, timeout: float = 120, cwd: Path | None = None):
    return subprocess.run([sys.executable, "-m", "descend", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd)


def test_help_lists_commands():
    out = run("--help")
    assert out.returncode == 0
    assert "train" in out.stdout and "compare" in out.stdout


def test_train_small_run_reports_stop_reason_and_metrics(tmp_path):
    out = run("train", "--epochs", "3", "--hidden", "32", "--quiet",
              "--history", str(tmp_path / "h.csv"), "--plot", str(tmp_path / "p.png"))
    assert out.returncode == 0, out.stderr
    assert "stopped: completed 3 epochs" in out.stdout
    val_line = next(line for line in out.stdout.splitlines() if line.startswith("validation:"))
    accuracy = float(val_line.split("accuracy")[1].strip().rstrip("%"))
    assert accuracy > 80.0
    rows = (tmp_path / "h.csv").read_text().splitlines()
    assert rows[0].startswith("step,loss,lr")
    assert len(rows) > 3
    assert (tmp_path / "p.png").stat().st_size > 5000
    assert out.stderr == ""  # no progress bar when not on a terminal


@pytest.mark.parametrize(
    "flags",
    [
        ["--data", "spirals", "--samples", "400", "--hidden", "32,32", "--lr", "invsqrt:0.5"],
        ["--data", "teacher", "--samples", "500", "--optimizer", "adam", "--lr", "0.01"],
        ["--batch-size", "full", "--lr", "wolfe", "--hidden", "16", "--grad-norm-below", "1e-3"],
        ["--momentum", "0.9", "--nesterov", "--lr", "0.05", "--activation", "tanh"],
        ["--optimizer", "subgradient", "--lr", "length:0.05", "--hidden", "16"],
        ["--max-steps", "7", "--hidden", "8"],
        ["--lr", "polyak", "--dropout", "0.1", "--weight-decay", "1e-4"],
    ],
    ids=["spirals-invsqrt", "teacher-adam", "full-wolfe", "nesterov-tanh", "subgradient",
         "max-steps", "polyak-dropout"],
)
def test_flag_families(flags):
    out = run("train", "--epochs", "2", "--quiet", *flags)
    assert out.returncode == 0, out.stderr
    assert "stopped:" in out.stdout and "validation:" in out.stdout
    if "--max-steps" in flags:
        assert "max_steps = 7" in out.stdout


def test_csv_data_with_label_by_name(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 3))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    lines = ["a,b,c,target"] + [f"{r[0]},{r[1]},{r[2]},{t}" for r, t in zip(X, y)]
    path = tmp_path / "d.csv"
    path.write_text("\n".join(lines))
    out = run("train", "--data", str(path), "--label", "target", "--epochs", "5", "--quiet")
    assert out.returncode == 0, out.stderr
    assert "2 classes" in out.stdout


def _bad_csv(tmp_path: Path) -> str:
    path = tmp_path / "bad.csv"
    path.write_text("a,b,label\n1,2,0\n3,x,1\n")
    return str(path)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["train", "--epochs", "0"], "--epochs"),
        (["train", "--lr", "banana"], "unknown step rule"),
        (["train", "--lr", "-1"], "lr"),
        (["train", "--hidden", "12,x"], "--hidden"),
        (["train", "--batch-size", "0"], "--batch-size"),
        (["train", "--optimizer", "sgdx"], "--optimizer"),
        (["train", "--data", "nowhere.csv"], "no such file"),
        (["train", "--data", "imagenet"], "--data"),
        (["train", "--momentum", "1.5"], "--momentum"),
        (["train", "--nesterov"], "--nesterov"),
        (["train", "--resume", "missing.npz"], "no such checkpoint"),
        (["train", "--unknown-flag"], "unrecognized"),
        (["frobnicate"], "invalid choice"),
        (["train", "--lr", "armijo", "--optimizer", "subgradient"], "not a descent"),
    ],
)
def test_bad_flags_one_line_exit_2(args, needle):
    out = run(*args)
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert needle in lines[0]
    assert "Traceback" not in out.stderr


def test_bad_csv_and_directory(tmp_path):
    out = run("train", "--data", _bad_csv(tmp_path))
    assert out.returncode == 2
    assert "not a number" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    out = run("train", "--plot", str(tmp_path))
    assert out.returncode == 2 and "is a directory" in out.stderr


def test_checkpoint_and_resume_extend_a_run(tmp_path):
    ckpt = tmp_path / "run.npz"
    first = run("train", "--epochs", "2", "--hidden", "16", "--quiet", "--checkpoint", str(ckpt))
    assert first.returncode == 0, first.stderr
    assert load_checkpoint(ckpt)["epoch"] == 2
    more = run("train", "--resume", str(ckpt), "--epochs", "4", "--quiet",
               "--checkpoint", str(ckpt))
    assert more.returncode == 0, more.stderr
    assert "completed 4 epochs" in more.stdout
    straight = run("train", "--epochs", "4", "--hidden", "16", "--quiet")
    pick = [line for line in straight.stdout.splitlines() if line.startswith(("train:", "valid"))]
    assert pick == [line for line in more.stdout.splitlines()
                    if line.startswith(("train:", "valid"))]


def test_diverging_constant_step_stops_with_hint():
    out = run("train", "--lr", "1e4", "--epochs", "3", "--hidden", "16", "--batch-size", "full",
              "--quiet")
    assert "diverged" in out.stdout
    assert "too large" in out.stdout
    assert out.returncode == 1


def test_full_batch_with_a_criterion_is_not_cut_short_by_the_epoch_budget():
    out = run("train", "--batch-size", "full", "--grad-norm-below", "1e-4", "--quiet")
    assert out.returncode == 0, out.stderr
    stopped = next(line for line in out.stdout.splitlines() if line.startswith("stopped:"))
    assert "gradient norm" in stopped and "< 0.0001" in stopped
    steps = int(stopped.rsplit("step", 1)[1])
    assert steps >= 30  # the old default budget of 30 epochs would have ended it


def test_max_steps_sets_the_epoch_budget():
    out = run("train", "--batch-size", "full", "--max-steps", "40", "--hidden", "8", "--quiet")
    assert out.returncode == 0, out.stderr
    assert "reached max_steps = 40" in out.stdout


def test_epoch_budget_says_the_criterion_was_not_reached(tmp_path):
    csv_path = tmp_path / "h.csv"
    out = run("train", "--batch-size", "full", "--grad-norm-below", "1e-9", "--epochs", "5",
              "--hidden", "8", "--quiet", "--history", str(csv_path))
    assert out.returncode == 0, out.stderr
    stopped = next(line for line in out.stdout.splitlines() if line.startswith("stopped:"))
    assert "completed 5 epochs" in stopped
    assert "before the convergence criterion was reached" in stopped
    assert "raise --epochs" in stopped
    # the gradient norm it quotes is the last step's (one step per epoch), from the CSV
    last = (csv_path.read_text().splitlines()[-1]).split(",")
    quoted = float(stopped.split("gradient norm ")[1].split(" ")[0])
    assert quoted == pytest.approx(float(last[3]), rel=1e-2)


def test_batch_size_above_the_samples_means_full_batch(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 2))
    y = (X[:, 0] > 0).astype(int)
    path = tmp_path / "small.csv"
    path.write_text("\n".join(["a,b,y"] + [f"{r[0]},{r[1]},{t}" for r, t in zip(X, y)]))
    out = run("train", "--data", str(path), "--batch-size", "64", "--epochs", "3", "--quiet")
    assert out.returncode == 0, out.stderr
    assert "--batch-size 64 is not below the 16 training samples: using full batches" \
        in out.stdout
    assert "full batch" in out.stdout and "completed 3 epochs (3 steps)" in out.stdout


def test_resume_with_conflicting_flags_says_so(tmp_path):
    ckpt = tmp_path / "run.npz"
    first = run("train", "--epochs", "1", "--hidden", "16", "--quiet", "--checkpoint", str(ckpt))
    assert first.returncode == 0, first.stderr
    out = run("train", "--resume", str(ckpt), "--hid", "32", "--lr=wolfe", "--epochs", "2")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr
    assert "--hidden 32 (the checkpoint has 16)" in lines[0]
    assert "--lr wolfe (the checkpoint has not set" in lines[0]
    # the same values as the checkpoint are no conflict
    same = run("train", "--resume", str(ckpt), "--hidden", "16", "--epochs", "2", "--quiet")
    assert same.returncode == 0, same.stderr
    assert "completed 2 epochs" in same.stdout
