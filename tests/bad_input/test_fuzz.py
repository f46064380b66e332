"""Fuzzing the two places where users hand descend raw text: the command line and CSV files.

(a) ``descend train`` / ``descend compare`` argument lists built from the real flag names,
    mixed with plausible and implausible values and stray tokens, run in-process through
    ``build_parser()`` and ``main(argv)``: the parser never lets an out-of-range value through,
    and ``main`` always returns 0, 1 or 2 (``--help`` exits 0) and never raises.
(b) CSV files that are structured but wrong (tests/test_data.py fuzzes free text and bytes):
    a soup of numbers, empty cells, quotes, NaN/inf spellings and ragged rows must load or
    raise DataError; and a valid table with exactly one injected fault must raise DataError
    naming the line of the file (blank lines and the header counted) where the fault is.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from descend.cli import UsageError, build_parser, main
from descend.data import Dataset, load_csv
from descend.errors import DataError

# ============================================================================ (a) the CLI
NOISE = st.one_of(
    st.sampled_from(["", " ", "-", "--", "0", "-1", "1e9", "nan", "inf", "-inf", "x", "1,2",
                     "full", "none", "abc:1", ":", "--bogus", "-h", "é", "1_0"]),
    st.integers(-5, 5).map(str),
    st.floats(allow_nan=True, allow_infinity=True, width=32).map(repr),
    st.text(alphabet="abcxyz019.-:,e ", max_size=8),
)


def values(*good: str) -> st.SearchStrategy[str]:
    """Mostly plausible values for a flag, sometimes anything at all."""
    return st.one_of(st.sampled_from(list(good)), NOISE)


TRAIN_FLAGS: dict[str, st.SearchStrategy[str] | None] = {
    "--data": values("teacher", "spirals", "digits", "imagenet", "missing.csv", "bad.csv",
                     "good.csv", "folder"),
    "--label": values("-1", "0", "label", "target", "7"),
    "--samples": values("50", "60", "3", "0", "-5"),
    "--val-fraction": values("0.2", "0.5", "0", "1", "0.999"),
    "--hidden": values("4", "2,2", "none", "0", "3,x"),
    "--activation": values("relu", "tanh", "gelu", "swish"),
    "--dropout": values("0", "0.1", "1", "-0.1"),
    "--optimizer": values("gd", "adam", "subgradient", "sgd"),
    "--lr": values("0.1", "armijo", "sls", "wolfe", "exact", "polyak", "sps:1", "length:0.01",
                   "invsqrt:0.5", "cosine:0.1:10", "step:0.1:5:0.5", "armijo:2", "wolfe:0.9:0.1",
                   "1e4", "-1"),
    "--momentum": values("0", "0.9", "1", "-0.5"),
    "--nesterov": None,
    "--weight-decay": values("0", "1e-4", "-1", "inf"),
    "--batch-size": values("16", "1", "full", "0", "100000"),
    "--epochs": values("1", "2", "0", "-1", "1.5"),
    "--seed": values("0", "3", "-1", "x"),
    "--max-steps": values("1", "2", "3", "0"),
    "--loss-below": values("0", "10", "-1"),
    "--grad-norm-below": values("1e-3", "100", "0"),
    "--rel-change-below": values("1e-3", "0"),
    "--param-change-below": values("1e-3", "0"),
    "--patience": values("1", "0"),
    "--time-limit": values("5", "0", "inf"),
    # Known bug excluded here, kept as an expected failure in test_cli.py: a --plot name
    # with a format matplotlib does not know escapes main() after training.
    "--plot": values("plot.png", "folder", "missing-folder/plot.png"),
    "--history": values("history.csv", "folder", "missing-folder/h.csv"),
    "--quiet": None,
    "--checkpoint": values("run.npz", "folder", "missing-folder/run.npz"),
    "--checkpoint-every": values("1", "0"),
    "--resume": values("missing.npz", "junk.npz", "folder", "good.csv"),
    "--help": None,
}

COMPARE_FLAGS: dict[str, st.SearchStrategy[str] | None] = {
    # svm is left out only because building it takes over a second.
    "--problem": values("leastsq", "ridge", "logreg", "maxaffine", "rosenbrock", "saddle",
                        "mlp", "LEASTSQ", "nope"),
    "--steps": values("constant:1/L", "armijo,wolfe", "exact", "polyak", "invsqrt:0.1",
                      "length:0.01", "constant:x/L", "bogus", ",", "wolfe:0.9:0.1"),
    "--optimizer": values("auto", "gd", "subgradient", "adam"),
    "--momentum": values("0", "0.5", "1"),
    "--max-steps": values("1", "3", "0"),
    "--tol": values("1e-6", "0", "-1"),
    "--time-limit": values("5", "0"),
    "--plot": values("compare.png", "folder"),
    # Known bug excluded here, kept as an expected failure in test_cli.py: a negative
    # --seed escapes main() from NumPy's default_rng.
    "--seed": st.sampled_from(["0", "1", "x", "1.5", ""]),
    "--quiet": None,
}

# Flags appended unless the generated arguments already name them: training stays tiny.
TRAIN_CHEAP = {"--data": ["teacher"], "--samples": ["50"], "--batch-size": ["16"],
               "--epochs": ["1"], "--hidden": ["4"], "--max-steps": ["1"], "--quiet": []}
COMPARE_CHEAP = {"--problem": ["leastsq"], "--max-steps": ["3"], "--quiet": []}


@st.composite
def argv_for(draw: st.DrawFn, command: str) -> list[str]:
    flags = TRAIN_FLAGS if command == "train" else COMPARE_FLAGS
    argv = [command] if draw(st.integers(0, 19)) else [draw(NOISE)]
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.integers(0, 9))
        if kind == 0:  # a stray token
            argv.append(draw(NOISE))
            continue
        flag = draw(st.sampled_from(sorted(flags)))
        strategy = flags[flag]
        if strategy is None:
            argv.append(flag)
        elif kind == 1:  # the --flag=value spelling
            argv.append(f"{flag}={draw(strategy)}")
        elif kind == 2:  # a flag with its value missing
            argv.append(flag)
        else:
            argv += [flag, draw(strategy)]
    cheap = TRAIN_CHEAP if command == "train" else COMPARE_CHEAP
    for flag, rest in cheap.items():
        if not any(a == flag or a.startswith(flag + "=") for a in argv):
            argv += [flag, *rest]
    return argv


def _argparse_turns_double_dash_into_a_list() -> bool:
    """CPython's argparse (3.11 at least) parses ``--flag=--`` as an empty list, skipping the
    flag's type= and choices= checks entirely."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--x", type=float)
    try:
        return parser.parse_args(["--x=--"]).x == []
    except SystemExit:
        return False


ARGPARSE_DOUBLE_DASH = _argparse_turns_double_dash_into_a_list()


def check_parsed(args: Any) -> None:
    """What the parser lets through is in range (or the command would fail later)."""
    if args.command == "train":
        assert args.epochs is None or args.epochs >= 1
        assert args.samples >= 1 and 0 < args.val_fraction < 1
        assert 0 <= args.dropout < 1 and 0 <= args.momentum < 1
        assert math.isfinite(args.weight_decay) and args.weight_decay >= 0
        assert args.batch_size is None or args.batch_size >= 1
        assert all(size >= 1 for size in args.hidden)
        for name in ("max_steps", "patience"):
            assert getattr(args, name) is None or getattr(args, name) >= 1
        for name in ("grad_norm_below", "rel_change_below", "param_change_below", "time_limit"):
            value = getattr(args, name)
            assert value is None or (math.isfinite(value) and value > 0)
    else:
        assert args.max_steps >= 1 and 0 <= args.momentum < 1
        assert math.isfinite(args.tol) and args.tol >= 0


def affordable(args: Any) -> bool:
    """Whether the run is small (a stray number such as 99999999 may land on --hidden,
    --samples or --max-steps): larger ones are skipped, they test nothing more."""
    if args.command == "train":
        return (
            (args.max_steps is None or args.max_steps <= 3)
            and (args.samples <= 100 or args.data not in ("teacher", "spirals"))
            and all(size <= 64 for size in args.hidden)
        )
    return args.max_steps <= 50


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The working directory of the fuzzed commands: the files their arguments name, and
    whatever relative paths they write, live here, never in the repository."""
    folder = tmp_path_factory.mktemp("cli-fuzz")
    (folder / "folder").mkdir()
    (folder / "bad.csv").write_text("a,b,label\n1,2,0\n3,x,1\n")
    (folder / "junk.npz").write_text("not a checkpoint")
    (folder / "good.csv").write_text(
        "a,b,label\n" + "".join(f"{i % 7},{(i * 3) % 5},{i % 2}\n" for i in range(40))
    )
    return folder


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str], workdir: Path) -> None:
    # Known bug, kept as an expected failure below: `--flag=--` reaches the commands as a list.
    assume(not (ARGPARSE_DOUBLE_DASH and any(a.endswith("=--") for a in argv)))
    capsys.readouterr()
    with contextlib.chdir(workdir):
        try:
            args = build_parser().parse_args(argv)
        except UsageError as exc:
            assert "\n" not in str(exc)
        except SystemExit as exc:  # --help
            assert exc.code == 0
            assert "usage:" in capsys.readouterr().out
            return
        else:
            check_parsed(args)
            assume(affordable(args))
        try:
            code = main(argv)
        except SystemExit as exc:
            assert exc.code == 0, argv
            return
    assert isinstance(code, int) and code in (0, 1, 2), (argv, code)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if code == 2:
        assert len(err.strip().splitlines()) == 1, (argv, err)


FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(argv=argv_for("train"))
def test_fuzz_train_command_line(
    argv: list[str], capsys: pytest.CaptureFixture[str], workdir: Path
) -> None:
    run_cli(argv, capsys, workdir)


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(argv=argv_for("compare"))
def test_fuzz_compare_command_line(
    argv: list[str], capsys: pytest.CaptureFixture[str], workdir: Path
) -> None:
    run_cli(argv, capsys, workdir)


@pytest.mark.parametrize("flag", ["--dropout", "--activation", "--data", "--batch-size",
                                  "--checkpoint"])
def test_flag_equals_double_dash_is_a_usage_error(
    flag: str, capsys: pytest.CaptureFixture[str], workdir: Path
) -> None:
    argv = ["train", f"{flag}=--", "--samples", "50", "--epochs", "1", "--hidden", "4",
            "--max-steps", "1", "--quiet"]
    if flag != "--data":
        argv += ["--data", "teacher"]
    if flag != "--batch-size":
        argv += ["--batch-size", "16"]
    with contextlib.chdir(workdir):
        assert main(argv) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


# ============================================================================ (b) CSV files
SOUP_CELLS = st.one_of(
    st.integers(-2, 4).map(str),
    st.floats(-1e6, 1e6, allow_nan=False).map(lambda v: f"{v:.6g}"),
    st.sampled_from(["", " ", "nan", "NaN", "-nan", "inf", "+inf", "-Infinity", "1e999",
                     "-1e999", "0x10", "1_000", "1,5", "3.0", "2.5", "-0", "+1", "one",
                     "\"\"", "'1'", "N/A", "null", "True", "1e-400", "١"]),
)
QUOTINGS = {"minimal": csv.QUOTE_MINIMAL, "all": csv.QUOTE_ALL, "none": csv.QUOTE_NONE,
            "strings": csv.QUOTE_NONNUMERIC}


@st.composite
def soup_csv(draw: st.DrawFn) -> str:
    """Rows of cells written by csv.writer with a random quoting style, sometimes ragged,
    sometimes with a header, blank lines or a BOM."""
    width = draw(st.integers(1, 4))
    rows: list[list[str]] = []
    if draw(st.booleans()):
        rows.append([draw(st.sampled_from(["a", "b", "label", "y", "", "1"]))
                     for _ in range(width)])
    for _ in range(draw(st.integers(0, 6))):
        n = width if draw(st.integers(0, 5)) else draw(st.integers(0, width + 2))
        rows.append([draw(SOUP_CELLS) for _ in range(n)])
    quoting = QUOTINGS[draw(st.sampled_from(sorted(QUOTINGS)))]
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=quoting, escapechar="\\", lineterminator=newline)
    for r in rows:
        try:
            writer.writerow(r)
        except csv.Error:  # e.g. QUOTE_NONE cannot write a lone empty field: write it raw
            buffer.write(",".join(r) + newline)
        if draw(st.integers(0, 7)) == 0:
            buffer.write("\n")
    text = buffer.getvalue()
    return ("\ufeff" if draw(st.integers(0, 5)) == 0 else "") + text


def expect_dataset_or_data_error(path: Path, **kwargs: Any) -> Dataset | None:
    try:
        d = load_csv(path, **kwargs)
    except DataError as exc:
        assert str(exc) and "\n" not in str(exc)
        return None
    assert isinstance(d, Dataset)
    assert d.X.ndim == 2 and d.X.shape[0] == d.y.shape[0] >= 1
    assert np.isfinite(d.X).all()
    if kwargs.get("task", "classification") == "classification":
        assert d.y.dtype == np.int64 and d.y.min() >= 0 and d.n_classes == d.y.max() + 1
    else:
        assert np.isfinite(d.y).all()
    return d


CSV_FUZZ = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@CSV_FUZZ
@given(
    text=soup_csv(),
    label=st.one_of(st.integers(-5, 5), st.sampled_from(["label", "y", "a", "", " label"])),
    header=st.sampled_from(["infer", True, False]),
    task=st.sampled_from(["classification", "regression"]),
)
def test_fuzz_structured_csv_soup(
    tmp_path: Path, text: str, label: Any, header: Any, task: str
) -> None:
    path = tmp_path / "soup.csv"
    path.write_text(text, encoding="utf-8")
    expect_dataset_or_data_error(path, label=label, header=header, task=task)


FEATURE_FAULTS = ["nan", "NaN", "inf", "-inf", "1e999", "abc", "", "1.2.3", "--1", '"1"x']
LABEL_FAULTS = ["-1", "2.5", "nan", "inf", "1e300", "two", "", '"0"x']
RAGGED = ["drop-cell", "extra-cell"]


@st.composite
def table_with_one_fault(draw: st.DrawFn) -> tuple[str, int, str, str, bool, int]:
    """A valid numeric table (features, then an integer label column), one fault injected.

    Returns (text, line of the fault, kind, column name or index, header, label column)."""
    n_rows = draw(st.integers(1, 6))
    n_features = draw(st.integers(1, 3))
    header = draw(st.booleans())
    names = [f"f{j}" for j in range(n_features)] + ["label"]
    rows = [[f"{draw(st.floats(-100, 100)):.4g}" for _ in range(n_features)]
            + [str(draw(st.integers(0, 3)))] for _ in range(n_rows)]
    fault_row = draw(st.integers(0, n_rows - 1))
    # The first record sets the number of columns, so a ragged row is a fault only after it.
    ragged_possible = header or fault_row > 0
    kind = draw(st.sampled_from(["feature", "label", "ragged"] if ragged_possible
                                else ["feature", "label"]))
    column = n_features  # the label column
    if kind == "feature":
        column = draw(st.integers(0, n_features - 1))
        rows[fault_row][column] = draw(st.sampled_from(FEATURE_FAULTS))
    elif kind == "label":
        fault = draw(st.sampled_from(LABEL_FAULTS))
        # a column of text labels is a column of classes: text is a fault only beside numbers
        assume(fault != "two" or n_rows > 1)
        rows[fault_row][column] = fault
    elif draw(st.sampled_from(RAGGED)) == "drop-cell":
        rows[fault_row].pop()
    else:
        rows[fault_row].append("0")
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    lines: list[str] = [",".join(names)] if header else []
    fault_line = 0
    for i, r in enumerate(rows):
        for _ in range(draw(st.integers(0, 2)) if draw(st.integers(0, 3)) == 0 else 0):
            lines.append(draw(st.sampled_from(["", "   "])))  # blank lines still count
        cells = [f" {c}" if c and draw(st.integers(0, 4)) == 0 else c for c in r]
        lines.append(",".join(cells))
        if i == fault_row:
            fault_line = len(lines)  # 1-based line number of the faulty record
    name = names[column] if header else str(column)
    return newline.join(lines) + newline, fault_line, kind, name, header, n_features


@CSV_FUZZ
@given(case=table_with_one_fault())
def test_fuzz_single_fault_is_reported_at_its_line(
    tmp_path: Path, case: tuple[str, int, str, str, bool, int]
) -> None:
    text, line, kind, column, header, label_column = case
    path = tmp_path / "table.csv"
    path.write_bytes(text.encode())
    with pytest.raises(DataError) as info:
        load_csv(path, label=label_column, header=header)
    message = str(info.value)
    assert f"row {line}" in message or f"line {line}" in message, (message, line, text)
    if kind == "feature" and "malformed" not in message:
        shown = repr(column) if header else column
        assert f"column {shown}" in message, (message, column)
