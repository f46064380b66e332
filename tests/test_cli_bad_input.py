"""Bad flags and bad files on the command line, run as a user would (``python -m descend``
in a subprocess): exit code 2, exactly one line on stderr naming the flag or the value, and
never a traceback. Cases already in tests/test_cli.py are not repeated here."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

# Flags that make any training that does start take a fraction of a second.
FAST = ["--data", "teacher", "--samples", "50", "--batch-size", "16", "--hidden", "4",
        "--epochs", "1", "--max-steps", "1", "--quiet"]


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "descend", *args], capture_output=True,
                          text=True, timeout=120, cwd=cwd)


def files(tmp: Path) -> dict[str, str]:
    """Bad inputs on disk, by name."""
    contents = {
        "empty.csv": "",
        "nan.csv": "a,b,label\n1,2,0\n3,nan,1\n4,5,0\n",
        "negative.csv": "a,b,label\n1,2,0\n3,4,-1\n",
        "good.csv": "a,b,label\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(40)),
        "text.csv": "a,b,label\n" + "".join(f"{i},{i % 3},{'ab'[i % 2]}\n" for i in range(40)),
        "mixed.csv": "a,b,label\n1,2,cat\n3,4,1\n",
        "junk.npz": "this is not a checkpoint",
    }
    out = {}
    for name, text in contents.items():
        (tmp / name).write_text(text)
        out[name] = str(tmp / name)
    (tmp / "folder").mkdir()
    out["folder"] = str(tmp / "folder")
    out["missing-folder/run.npz"] = str(tmp / "missing-folder" / "run.npz")
    return out


Args = Callable[[dict[str, str]], list[str]]


def cli(name: str, args: Args, *needles: str, bug: str | None = None) -> object:
    marks: list = []  # every bug this table once pinned is fixed
    return pytest.param(args, needles, id=name, marks=marks)


CASES = [
    # ------------------------------------------------------------------ step sizes
    cli("lr-nan", lambda f: ["train", "--lr", "nan"], "nan"),
    cli("lr-wolfe-c1-above-c2", lambda f: ["train", "--lr", "wolfe:0.9:0.1"], "c1=0.9, c2=0.1"),
    cli("lr-armijo-shrink", lambda f: ["train", "--lr", "armijo:0.1:1.5"], "shrink", "1.5"),
    cli("lr-empty", lambda f: ["train", "--lr", "", *FAST], "--lr", "''",
        bug="cli.py cmd_train(): `args.lr or default` treats --lr '' (e.g. an unset shell "
            "variable) as no flag and silently trains with the default rule, exit 0"),
    cli("lr-step-fractional", lambda f: ["train", "--lr", "step:0.1:2.5", *FAST], "2.5",
        bug="optim/steps.py parse_step_rule(): --lr step:0.1:2.5 is truncated to step_size 2 "
            "and training runs, exit 0"),
    # ------------------------------------------------------------------ numeric flags
    cli("momentum-negative", lambda f: ["train", "--momentum", "-0.1"], "--momentum", "-0.1"),
    cli("dropout-one", lambda f: ["train", "--dropout", "1"], "--dropout", "1"),
    cli("val-fraction-one", lambda f: ["train", "--val-fraction", "1"], "--val-fraction"),
    cli("hidden-zero", lambda f: ["train", "--hidden", "0,4"], "--hidden", "'0,4'"),
    cli("samples-zero", lambda f: ["train", "--data", "spirals", "--samples", "0"],
        "--samples", "0"),
    cli("seed-negative", lambda f: ["train", "--seed", "-1"], "seed", "-1"),
    # ------------------------------------------------------------------ data files
    cli("data-directory", lambda f: ["train", "--data", f["folder"]], "is a directory"),
    cli("data-empty-csv", lambda f: ["train", "--data", f["empty.csv"]], "empty.csv", "empty"),
    cli("data-nan-cell", lambda f: ["train", "--data", f["nan.csv"]],
        "row 3, column 'b' is NaN"),
    cli("data-negative-label", lambda f: ["train", "--data", f["negative.csv"]], "label -1"),
    cli("data-text-labels-as-regression", lambda f: ["train", "--data", f["text.csv"], "--task",
                                                     "regression"], "'a'", "not a number"),
    cli("data-text-and-number-labels", lambda f: ["train", "--data", f["mixed.csv"]],
        "mixes text", "'cat'", "'1'"),
    cli("task-unknown", lambda f: ["train", "--task", "ranking"], "--task", "'ranking'"),
    cli("task-regression-builtin", lambda f: ["train", "--data", "spirals", "--task",
                                              "regression"], "--task regression", "spirals"),
    cli("history-and-plot-both-stdout", lambda f: ["train", *FAST, "--history", "-",
                                                   "--plot", "-"], "--history -", "--plot -"),
    cli("torch-checkpoint-every", lambda f: ["train", "--engine", "torch", *FAST,
                                             "--checkpoint-every", "2"],
        "--checkpoint-every not supported with --engine torch"),
    cli("data-unknown-label-column", lambda f: ["train", "--data", f["good.csv"], "--label",
                                                "target"], "'target'"),
    # ------------------------------------------------------------------ outputs and resume
    cli("checkpoint-directory", lambda f: ["train", "--checkpoint", f["folder"]],
        "--checkpoint", "is a directory"),
    cli("checkpoint-missing-folder", lambda f: ["train", "--checkpoint",
                                                f["missing-folder/run.npz"]],
        "--checkpoint", "does not exist"),
    cli("resume-directory", lambda f: ["train", "--resume", f["folder"]], "is a directory"),
    cli("resume-junk", lambda f: ["train", "--resume", f["junk.npz"]], "junk.npz", "corrupted"),
    cli("plot-unknown-format", lambda f: ["train", *FAST, "--plot", "out.xyz"], "--plot",
        "xyz",
        bug="cli.py cmd_train(): --plot out.xyz is not checked up front; after training, "
            "matplotlib's ValueError 'Format 'xyz' is not supported' escapes main() as a "
            "traceback with exit code 1 (descend compare --plot out.xyz too)"),
    # ------------------------------------------------------------------ compare
    cli("compare-unknown-problem", lambda f: ["compare", "--problem", "quadratic"],
        "'quadratic'"),
    cli("compare-wolfe-c1-above-c2", lambda f: ["compare", "--problem", "leastsq", "--steps",
                                                "armijo,wolfe:0.9:0.1"], "c1=0.9, c2=0.1"),
    cli("compare-seed-negative", lambda f: ["compare", "--problem", "leastsq", "--seed", "-1"],
        "-1",
        bug="problems.py make_problem(seed=-1) -> np.random.default_rng(-1): NumPy's "
            "ValueError 'expected non-negative integer' escapes cmd_compare, a traceback with "
            "exit code 1"),
]


@pytest.mark.parametrize(("args", "needles"), CASES)
def test_bad_flag_gives_one_line_and_exit_2(
    tmp_path: Path, args: Args, needles: tuple[str, ...]
) -> None:
    out = run(args(files(tmp_path)), cwd=tmp_path)
    assert "Traceback" not in out.stderr, out.stderr
    assert out.returncode == 2, (out.returncode, out.stdout[-500:], out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def test_unreadable_data_file(tmp_path: Path) -> None:
    path = tmp_path / "locked.csv"
    path.write_text("a,b,label\n1,2,0\n3,4,1\n")
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("running with privileges that read a file with mode 000")
        out = run(["train", "--data", str(path)], cwd=tmp_path)
        assert out.returncode == 2 and "Traceback" not in out.stderr
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and "locked.csv" in lines[0]
    finally:
        path.chmod(0o600)
