"""The command line, run in a subprocess as a user would."""

from __future__ import annotations

import csv
import io
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from descend import cli
from descend.cli import build_parser, main
from descend.train import Callback
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


# ------------------------------------------------------------------ data on standard output
def run_bytes(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "descend", *args], capture_output=True,
                          timeout=120, cwd=cwd)


FAST = ["--data", "spirals", "--samples", "200", "--hidden", "8", "--epochs", "2"]


def test_history_to_stdout_is_a_csv_and_nothing_else():
    # `descend train --history - > run.csv`: the report goes to stderr
    out = run_bytes("train", *FAST, "--history", "-")
    assert out.returncode == 0, out.stderr
    rows = list(csv.reader(io.StringIO(out.stdout.decode())))
    assert rows[0][:3] == ["step", "loss", "lr"]
    assert len(rows) > 3 and all(len(r) == len(rows[0]) for r in rows)
    for row in rows[1:]:
        float(row[1])  # every row is data
    err = out.stderr.decode()
    assert "stopped: completed 2 epochs" in err and "validation:" in err


def test_plot_to_stdout_is_a_png_and_nothing_else(tmp_path):
    out = run_bytes("train", *FAST, "--plot", "-")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(b"\x89PNG\r\n\x1a\n")
    assert out.stdout.endswith(b"IEND\xaeB`\x82")  # the whole PNG, nothing after it
    assert b"stopped:" in out.stderr and b"stopped:" not in out.stdout
    # descend compare too: the table goes to stderr
    out = run_bytes("compare", "--problem", "logreg", "--steps", "armijo", "--plot", "-",
                    cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(b"\x89PNG") and b"loss_below" in out.stderr
    assert list(tmp_path.iterdir()) == []  # no file named "-"


def test_history_to_dev_stdout_is_standard_output_too(tmp_path):
    target = tmp_path / "run.csv"
    with target.open("wb") as fh:
        done = subprocess.run([sys.executable, "-m", "descend", "train", *FAST, "--history",
                               "/dev/stdout"], stdout=fh, stderr=subprocess.PIPE, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = list(csv.reader(target.open()))
    assert rows[0][:2] == ["step", "loss"] and all(len(r) == len(rows[0]) for r in rows)
    assert b"stopped:" in done.stderr


def test_history_and_plot_both_to_stdout_is_refused():
    out = run("train", *FAST, "--history", "-", "--plot", "-")
    assert out.returncode == 2 and out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "--history - and --plot -" in lines[0]


# ------------------------------------------------------------------ Ctrl-C
class _InterruptAt(Callback):
    """Raises KeyboardInterrupt after step ``at``, as a Ctrl-C between steps does."""

    def __init__(self, at: int):
        self.at = at

    def on_step_end(self, history, optimizer):
        if history.steps == self.at + 1:
            raise KeyboardInterrupt


def _interrupting_fit(monkeypatch, at: int) -> None:
    real = cli.fit
    monkeypatch.setattr(cli, "fit", lambda *a, **k: real(*a, callbacks=[_InterruptAt(at)], **k))


def test_ctrl_c_writes_history_plot_metrics_and_checkpoint_and_exits_130(
        monkeypatch, capsys, tmp_path):
    _interrupting_fit(monkeypatch, at=4)
    h, png, ckpt = tmp_path / "h.csv", tmp_path / "p.png", tmp_path / "c.npz"
    code = main(["train", *FAST, "--quiet", "--history", str(h), "--plot", str(png),
                 "--checkpoint", str(ckpt)])
    out, err = capsys.readouterr()
    assert code == 130
    said = [line for line in (out + err).splitlines() if "interrupted" in line]
    assert said == [f"stopped: interrupted at step 4 (epoch 1); checkpoint {ckpt}: resume with "
                    f"descend train --resume {ckpt} --checkpoint {ckpt}"]
    assert said[0] in err
    assert "train: loss" in out and "validation: loss" in out
    assert len(h.read_text().splitlines()) == 1 + 5  # the five steps made
    assert png.read_bytes().startswith(b"\x89PNG")
    state = load_checkpoint(ckpt)
    assert (state["epoch"], state["steps_in_epoch"]) == (1, 2)  # 3 steps an epoch
    # and the run resumes from there to the same end as a run never interrupted
    monkeypatch.undo()
    assert main(["train", "--resume", str(ckpt), "--checkpoint", str(ckpt), "--quiet"]) == 0
    resumed = capsys.readouterr().out
    assert main(["train", *FAST, "--quiet"]) == 0
    straight = capsys.readouterr().out

    def metrics(text):
        return [line for line in text.splitlines() if line.startswith(("train:", "valid"))]

    assert metrics(resumed) == metrics(straight)


def test_ctrl_c_inside_a_step_keeps_the_finished_steps(monkeypatch, capsys, tmp_path):
    real = cli._train_optimizer

    def optimizer(*args):
        opt = real(*args)
        step, calls = opt.step, []

        def interrupted_third(*a, **k):
            calls.append(1)
            if len(calls) == 3:
                raise KeyboardInterrupt
            return step(*a, **k)

        opt.step = interrupted_third
        return opt

    monkeypatch.setattr(cli, "_train_optimizer", optimizer)
    h = tmp_path / "h.csv"
    code = main(["train", *FAST, "--quiet", "--history", str(h), "--checkpoint",
                 str(tmp_path / "c.npz")])
    out, err = capsys.readouterr()
    assert code == 130
    said = [line for line in (out + err).splitlines() if "interrupted" in line]
    assert len(said) == 1 and "during step 2 (epoch 0), which did not finish" in said[0]
    assert "no checkpoint was written yet" in said[0]
    assert len(h.read_text().splitlines()) == 1 + 2
    assert not (tmp_path / "c.npz").exists()


# ------------------------------------------------------------------ messages
def test_stop_messages_show_the_digits_that_differ():
    # f* + tol and the final loss agree to 6 digits on this problem
    out = run("compare", "--problem", "logreg", "--steps", "constant:3/L")
    assert out.returncode == 0, out.stderr
    detail = re.search(r"loss ([\d.e+-]+) < ([\d.e+-]+) at step", out.stdout)
    assert detail, out.stdout
    value, threshold = detail.groups()
    assert value != threshold and float(value) < float(threshold)


def test_diverging_run_hints_in_command_line_syntax_and_names_the_kept_step():
    out = run("train", "--lr", "1e4", "--epochs", "3", "--hidden", "16", "--batch-size",
              "full", "--quiet")
    assert out.returncode == 1
    stopped = next(line for line in out.stdout.splitlines() if line.startswith("stopped:"))
    assert "try a line search (--lr armijo)" in stopped
    assert "ds.optim" not in stopped and "lr=" not in stopped
    assert re.search(r"diverged at step (\d+).*restored to those at the start of step \d+",
                     stopped)
    out = run("compare", "--problem", "leastsq", "--steps", "constant:3/L", "--quiet")
    assert "(--steps armijo)" in out.stdout and "ds.optim" not in out.stdout


# ------------------------------------------------------------------ labels and tasks
def _write_csv(path: Path, labels, n: int = 120) -> Path:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, 2))
    ys = labels(X)
    path.write_text("a,b,target\n" + "".join(f"{r[0]},{r[1]},{t}\n" for r, t in zip(X, ys)))
    return path


def test_text_labels_are_classes_kept_in_the_checkpoint(tmp_path):
    names = np.array(["virginica", "setosa"])
    data = _write_csv(tmp_path / "flowers.csv", lambda X: names[(X[:, 0] > 0).astype(int)])
    ckpt = tmp_path / "c.npz"
    out = run("train", "--data", str(data), "--epochs", "3", "--hidden", "8", "--quiet",
              "--checkpoint", str(ckpt))
    assert out.returncode == 0, out.stderr
    assert "2 classes: setosa, virginica" in out.stdout  # sorted, as LabelEncoder numbers them
    assert out.stderr.strip().splitlines() == [
        "descend train: the labels are text: classification into 2 classes (inferred; "
        "--task regression refuses text labels)"]
    assert load_checkpoint(ckpt)["config"]["classes"] == ["setosa", "virginica"]
    # resuming on data whose labels name other classes is refused
    other = _write_csv(tmp_path / "flowers.csv",
                       lambda X: np.array(["iris", "rose"])[(X[:, 0] > 0).astype(int)])
    out = run("train", "--data", str(other), "--resume", str(ckpt), "--epochs", "4")
    assert out.returncode == 2
    assert "trained on classes setosa, virginica" in out.stderr.strip().splitlines()[-1]


def test_many_distinct_integer_targets_are_a_regression(tmp_path):
    data = _write_csv(tmp_path / "prices.csv",
                      lambda X: np.round(1000 + 300 * X[:, 0] + 50 * X[:, 1]).astype(int))
    out = run("train", "--data", str(data), "--epochs", "5", "--hidden", "8", "--quiet")
    assert out.returncode == 0, out.stderr
    assert "regression (inferred; --task classification" in out.stderr
    assert "features, regression)" in out.stdout and "MLP 2-8-1" in out.stdout
    r2 = float(re.search(r"validation: loss \S+ \(mean squared error\), R\^2 (\S+)",
                         out.stdout).group(1))
    assert r2 > 0.5
    # --task says it: no inference, nothing on stderr
    out = run("train", "--data", str(data), "--epochs", "1", "--hidden", "8", "--quiet",
              "--task", "regression")
    assert out.returncode == 0 and out.stderr == ""
    # few distinct whole numbers are classes; --task regression overrides
    few = _write_csv(tmp_path / "grades.csv", lambda X: (X[:, 0] > 0).astype(int) * 3)
    out = run("train", "--data", str(few), "--epochs", "1", "--hidden", "8", "--quiet")
    assert "4 classes" in out.stdout and "classification (inferred" in out.stderr
    out = run("train", "--data", str(few), "--epochs", "1", "--hidden", "8", "--quiet",
              "--task", "regression")
    assert out.returncode == 0 and "regression)" in out.stdout


def test_task_regression_on_a_builtin_set_is_refused():
    out = run("train", "--task", "regression")
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "descend train: --task regression: --data digits is a classification set; a "
        "regression needs a CSV file"]


# ------------------------------------------------------------------ version and help
def test_version_from_the_package_metadata():
    from importlib.metadata import version

    out = run("--version")
    assert out.returncode == 0
    assert out.stdout.strip() == f"descend {version('descend')}"


def test_every_flag_has_help_and_train_help_describes_the_csv_format():
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    missing = [f"{name} {a.option_strings[-1]}"
               for name, p in [("descend", parser), *commands.items()]
               for a in p._actions
               if a.option_strings and not (a.help and a.help.strip())]
    assert not missing, f"flags without help: {missing}"
    text = run("train", "--help").stdout
    assert "CSV files (--data PATH.csv)" in text
    assert "header" in text and "LabelEncoder" in text and "--task" in text
