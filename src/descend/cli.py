"""The ``descend`` command: thin over the library.

``descend train`` trains an MLP on built-in data or a CSV file; ``descend compare`` runs
several step rules on one optimisation problem. Bad flags and bad files get one line on
stderr and exit code 2; Ctrl-C exits with 130.
"""

from __future__ import annotations

import argparse
import errno
import math
import os
import stat
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

import numpy as np

from ._argtypes import (
    fraction,
    nonneg_float,
    nonneg_int,
    positive_float,
    positive_int,
    unit_interval,
)
from ._flags import optimizer_options, stop_when
from ._output import PLOT_FORMATS
from .backend import manual_seed
from .compare import (
    OPTIMIZERS,
    default_specs,
    format_table,
    plot,
    resolve_rule,
    run_rule,
    split_specs,
)
from .data import (
    MAX_INFERRED_CLASSES,
    Standardizer,
    load_csv,
    load_digits,
    spirals,
    teacher,
    train_val_split,
)
from .errors import ConfigError, DescendError
from .nn import CrossEntropyLoss, MSELoss, mlp
from .optim import spec
from .optim.quasi_newton import BETAS
from .optim.rules import Needs
from .problems import PROBLEMS, make_problem
from .train import evaluate, fit
from .train.checkpoint import check_checkpoint_target, load_checkpoint
from .train.stopping import compared, for_command_line

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
#: 128 + SIGPIPE: what a shell reports for a command whose reader went away (``| head``).
EXIT_BROKEN_PIPE = 141


def _broken_pipe() -> int:
    """The reader of standard output went away (``descend ... | head -1``): say so on one
    line and stop, without the interpreter's traceback when it flushes at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the buffered rest goes nowhere
        os.close(devnull)
    except (OSError, ValueError):  # pragma: no cover - stdout without a descriptor
        pass
    try:
        print("descend: standard output was closed (broken pipe); stopped", file=sys.stderr)
    except OSError:  # pragma: no cover - stderr closed too
        pass
    return EXIT_BROKEN_PIPE


class UsageError(Exception):
    """A bad command line: reported on one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not argparse's usage block
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def _hidden(text: str) -> tuple[int, ...]:
    if text.strip().lower() in ("", "none", "0"):
        return ()
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated layer sizes like 128,64, got {text!r}"
        ) from None
    if any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"layer sizes must be >= 1, got {text!r}")
    return sizes


def _batch_size(text: str) -> int | None:
    if text.strip().lower() in ("full", "none", "all"):
        return None
    return positive_int(text)


DEFAULT_EPOCHS = 30
#: The epoch budget of a full-batch run (one step per epoch) that was given a convergence
#: criterion but no --epochs: the criterion, not the budget, should end it.
DEFAULT_FULL_BATCH_EPOCHS = 10_000
#: Flags that say when training has converged (the epoch budget must not hide them).
_CONVERGENCE_FLAGS = ("loss_below", "grad_norm_below", "rel_change_below",
                      "param_change_below")
ACTIVATIONS = ("relu", "leaky_relu", "tanh", "sigmoid", "gelu")
#: ``descend train``'s step rule for each optimizer when --lr is not given (the registry's).
DEFAULT_LR = {name: entry.default_lr for name, entry in spec.OPTIMIZERS.items()}


def version() -> str:
    """The installed package's version (its metadata), or the source tree's."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("descend")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree
        from . import __version__

        return __version__


def rules_help(flag: str) -> str:
    """``--help``'s list of the step rules ``flag`` takes: one line per registered rule."""
    return "\n".join([f"Step rules ({flag} SPEC; KEY=NUMBER names an argument, as in "
                      "armijo:c1=0.1):", *spec.RULES.help_lines()])


#: ``descend train --help``: the CSV files --data takes.
CSV_FORMAT = f"""\
CSV files (--data PATH.csv):
  One sample per row, comma-separated, UTF-8. A first row with any cell that is not a
  number is a header (column names). Every column but the label column is a feature and
  must be a finite number; blank lines are skipped, quoted cells are allowed.
  The label column is the last one, or --label NAME|INDEX (0-based; negative counts from
  the end).
  Labels that are text (cat, dog, ...) are classes, numbered in sorted order as
  scikit-learn's LabelEncoder does (the names are kept in the checkpoint and printed).
  Whole-number labels (>= 0) are class indices as given. --task chooses between
  classification and regression; without it, text or at most {MAX_INFERRED_CLASSES} distinct
  whole numbers mean classification, other numbers (fractions, more distinct values) a
  regression, and the choice is said on standard error. A regression trains the same MLP
  with one output and the mean squared error.

Output:
  The report (data, model, stop reason, metrics) goes to standard output, or to standard
  error when --history - or --plot - writes data there. Exit codes: 0 done, 1 diverged,
  2 bad flags or files, 130 interrupted (Ctrl-C: the history, plot and checkpoint up to
  that step are still written)."""


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="descend",
        description="Train neural networks by backpropagation and gradient descent, "
        "with first-class step-size control.",
        epilog="Run 'descend COMMAND --help' for the flags of a command.",
    )
    parser.add_argument("--version", action="version", version=f"descend {version()}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    _add_train_parser(sub)
    _add_explain_parser(sub)
    _add_compare_parser(sub)
    return parser


def _add_train_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``descend train`` on the CLI's subparsers."""
    t = sub.add_parser("train", help="train an MLP on built-in data or a CSV file",
                       description="Train an MLP (a classifier, or a regression on a CSV "
                       "file) and report the stop reason and the final metrics.",
                       epilog=f"{rules_help('--lr')}\n\n{CSV_FORMAT}",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_train_flags(t)
    t.set_defaults(func=cmd_train)
    return t


def _add_explain_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``descend explain``: ``descend train``'s flags, small defaults, and the
    report as its output."""
    e = sub.add_parser("explain", help="train a small model and write one HTML page that "
                       "explains the method on it",
                       description="Train as 'descend train' does (the same flags; by "
                       "default a small MLP on the digits) and write one self-contained "
                       "HTML report: the data, the model, the first step walked through "
                       "(backward graph with gradients, direction, line search, update), "
                       "the whole run and why it stopped. Its defaults differ from "
                       "'descend train's: --hidden 16 --epochs 3 --report "
                       "descend-explain.html.",
                       epilog=rules_help("--lr"),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_train_flags(e)
    e.set_defaults(func=cmd_explain, hidden=(16,), epochs=3,
                   report=Path("descend-explain.html"))
    return e


def _add_train_flags(t: argparse.ArgumentParser) -> None:
    """The flags of ``descend train`` (and ``descend explain``)."""
    g = t.add_argument_group("data")
    g.add_argument("--data", default="digits",
                   help="digits, spirals, teacher, or a path to a CSV file (default: digits)")
    g.add_argument("--label", default="-1",
                   help="CSV label column: a name or an index (default: -1, the last)")
    g.add_argument("--task", choices=("classification", "regression"), default=None,
                   help="what the CSV labels are (default: inferred: text or at most "
                   f"{MAX_INFERRED_CLASSES} distinct whole numbers are classes, other numbers "
                   "a regression target; see below)")
    g.add_argument("--samples", type=positive_int, default=2000,
                   help="samples for spirals/teacher (default: 2000)")
    g.add_argument("--val-fraction", type=fraction, default=0.2,
                   help="fraction held out for validation (default: 0.2)")
    g = t.add_argument_group("model")
    g.add_argument("--hidden", type=_hidden, default=(128, 64),
                   help="hidden layer sizes, comma-separated (default: 128,64)")
    g.add_argument("--activation", choices=ACTIVATIONS, default="relu",
                   help="activation after each hidden layer (default: relu)")
    g.add_argument("--dropout", type=unit_interval, default=0.0,
                   help="dropout probability after each hidden layer (default: 0)")
    _add_optimisation_flags(t.add_argument_group("optimisation"))
    g = t.add_argument_group("stopping (any that holds stops training)")
    g.add_argument("--max-steps", type=positive_int,
                   help="optimizer steps in all (the epoch budget is raised to fit them)")
    g.add_argument("--loss-below", type=nonneg_float,
                   help="the epoch's mean training loss is below this")
    g.add_argument("--grad-norm-below", type=positive_float,
                   help="the mean gradient norm of the epoch's steps is below this")
    g.add_argument("--rel-change-below", type=positive_float,
                   help="the relative change of the epoch loss, |L_e - L_e-1| / |L_e-1|, is "
                   "below this")
    g.add_argument("--param-change-below", type=positive_float,
                   help="the parameters moved less than this during an epoch (sum of the "
                   "step lengths)")
    g.add_argument("--patience", type=positive_int,
                   help="epochs without a lower validation loss")
    g.add_argument("--time-limit", type=positive_float, help="seconds of training")
    g = t.add_argument_group("output")
    g.add_argument("--plot", type=Path, help="save loss, accuracy and step size (PNG/SVG/PDF; "
                   "'-' writes PNG to standard output, and the report to standard error)")
    g.add_argument("--history", type=Path,
                   help="save the per-step history as CSV ('-' for standard output, and the "
                   "report to standard error)")
    g.add_argument("--report", type=Path,
                   help="write one HTML page explaining the run: the data, the model, the "
                   "first step walked through, the whole run, why it stopped")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    g = t.add_argument_group("checkpoints")
    g.add_argument("--checkpoint", type=Path,
                   help="write a checkpoint here (every --checkpoint-every epochs, at the end, "
                   "and on Ctrl-C)")
    g.add_argument("--checkpoint-every", type=positive_int, default=1, metavar="N",
                   help="epochs between checkpoints (default: 1)")
    g.add_argument("--resume", type=Path,
                   help="continue the run saved in this checkpoint (its settings are reused; "
                   "--epochs may extend it)")
    g.add_argument("--overwrite", action="store_true",
                   help="let a new run replace an existing --checkpoint file (without it, a "
                   "run that does not --resume that file refuses to start)")


def _add_optimisation_flags(g: Any) -> None:
    """``descend train``'s optimisation flags: the optimizer and the step rule (from the
    registry), their options, batches, epochs, seed, engine and threads."""
    g.add_argument("--optimizer", choices=tuple(spec.OPTIMIZERS), default="gd",
                   help="; ".join(f"{e.name}: {e.help}" for e in spec.OPTIMIZERS.values())
                   + " (default: gd)")
    g.add_argument("--lr", default=None, metavar="SPEC",
                   help="step size: a number (0.1), a schedule (invsqrt:0.5, cosine:0.1:5000) "
                   "or a rule (armijo, sls, wolfe:0.0001:0.1, polyak, ...; every rule is "
                   "listed below). Default: " + ", ".join(
                       f"{lr} for {name}" for name, lr in DEFAULT_LR.items()))
    g.add_argument("--history-size", type=positive_int, default=None,
                   help="L-BFGS: curvature pairs kept (default: 10)")
    g.add_argument("--beta", choices=tuple(BETAS), default=None,
                   help="CG: the beta formula (default: PR+)")
    g.add_argument("--momentum", type=unit_interval, default=0.0,
                   help="heavy-ball momentum in [0, 1) for --optimizer gd (default: 0)")
    g.add_argument("--nesterov", action="store_true",
                   help="Nesterov's momentum (needs --momentum > 0)")
    g.add_argument("--weight-decay", type=nonneg_float, default=0.0,
                   help="L2 penalty added to the gradient, decay * parameters (default: 0)")
    g.add_argument("--batch-size", type=_batch_size, default=64,
                   help="mini-batch size, or 'full' for full-batch gradient descent "
                   "(default: 64; a size above the training samples means full batch, "
                   "as in descend.MLPClassifier)")
    g.add_argument("--epochs", type=positive_int, default=None,
                   help=f"passes over the data (default: {DEFAULT_EPOCHS}; with --max-steps, "
                   "enough epochs for those steps; full batch with a convergence criterion: "
                   f"{DEFAULT_FULL_BATCH_EPOCHS:,})")
    g.add_argument("--seed", type=nonneg_int, default=0,
                   help="seed of the initial weights, the split, the shuffles and dropout "
                   "(default: 0)")
    g.add_argument("--engine", choices=("descend", "torch"), default="descend",
                   help="descend (default: its own NumPy engine) or torch (the same optimizer "
                   "and step rule on a PyTorch model; needs pip install 'descend[torch]'; "
                   "takes every flag but the checkpoint ones)")
    g.add_argument("--amp", choices=("bf16",), default=None,
                   help="--engine torch: the forward passes under bf16 autocast (fp16 needs "
                   "loss scaling: descend.torch's step(closure, scaler=...) in your own loop)")
    g.add_argument("--accumulate", type=positive_int, default=1, metavar="N",
                   help="--engine torch: each batch's gradient accumulated over N "
                   "micro-batches (the same step, one micro-batch's graph at a time)")
    g.add_argument("--compile", action="store_true",
                   help="--engine torch: run the model through torch.compile")
    g.add_argument("--threads", type=positive_int, default=1,
                   help="BLAS threads (default: 1; the small matrices of these models gain "
                   "nothing from more, and lose much when cores are shared)")




def _check_output(path: Path | None, flag: str) -> None:
    """Refuse an output path before training: a directory or other non-regular target, a
    missing folder, a name too long, an unknown image format."""
    from ._output import target_kind

    if path is None:
        return
    try:
        target_kind(path, what=flag, error=UsageError)
    except UsageError as exc:
        raise UsageError(f"descend train: {exc}") from None
    if flag == "--report" and path.suffix.lower() not in (".html", ".htm"):
        raise UsageError(f"{flag} {path}: the report is an HTML file; use a .html name")
    if (flag in ("--plot", "--path-plot") and str(path) != "-"
            and path.suffix.lower() not in PLOT_FORMATS):
        raise UsageError(f"{flag} {path}: unknown image format {path.suffix or '(none)'!r}; "
                         f"use one of {', '.join(PLOT_FORMATS[:6])}")


def _load_data(args: argparse.Namespace) -> Any:
    """The data set --data names; a CSV file's task as --task says, or inferred (and said
    on standard error)."""
    name = args.data
    builtin = {"digits": load_digits, "spirals": lambda: spirals(args.samples, seed=args.seed),
               "teacher": lambda: teacher(args.samples, seed=args.seed)}
    if name in builtin:
        if args.task == "regression":
            raise UsageError(f"descend train: --task regression: --data {name} is a "
                             "classification set; a regression needs a CSV file")
        return builtin[name]()
    path = Path(name)
    if path.suffix.lower() != ".csv" and not path.exists():
        raise UsageError(
            f"--data {name!r}: expected digits, spirals, teacher or a path to a .csv file"
        )
    label: int | str = args.label
    try:
        label = int(args.label)
    except ValueError:
        pass
    dataset = load_csv(path, label=label, task=args.task or "infer")
    if args.task is None:
        print(f"descend train: {_inferred_task(dataset)}", file=sys.stderr)
    return dataset


def _inferred_task(dataset: Any) -> str:
    """One line: the task inferred from a CSV file's labels, why, and how to choose."""
    if dataset.classes is not None:
        return (f"the labels are text: classification into {dataset.n_classes} classes "
                "(inferred; --task regression refuses text labels)")
    values = np.unique(dataset.y)
    if dataset.n_classes is not None:
        return (f"the labels are {values.size} distinct whole numbers: classification "
                "(inferred; --task regression to predict them as numbers)")
    whole = bool(np.all(values == np.round(values)))
    why = (f"{values.size} distinct whole numbers (more than {MAX_INFERRED_CLASSES})" if whole
           else "numbers with fractions")
    return (f"the labels are {why}: regression (inferred; --task classification to treat "
            "them as classes)")


def _is_stdout(path: Path | None) -> bool:
    """Whether an output path is standard output: ``-``, or a name for the same open file
    (``/dev/stdout``, ``/dev/fd/1``) when that is a file or a pipe (a terminal or /dev/null
    loses nothing when messages go there too)."""
    if path is None:
        return False
    if str(path) == "-":
        return True
    try:
        mine, theirs = os.fstat(sys.stdout.fileno()), os.stat(path)
    except (OSError, ValueError, AttributeError):  # no such file, or stdout without a descriptor
        return False
    same = (mine.st_dev, mine.st_ino) == (theirs.st_dev, theirs.st_ino)
    return same and not stat.S_ISCHR(mine.st_mode)


def _report_stream(args: argparse.Namespace) -> TextIO:
    """Where ``descend train``'s messages go: standard output, unless --history or --plot
    writes its data there (then standard error, so the data stays valid)."""
    if _is_stdout(args.history) or _is_stdout(args.plot):
        return sys.stderr
    return sys.stdout


class _Task:
    """What the targets are: classes (cross-entropy, accuracy) or numbers (mean squared
    error against targets of shape (n, 1), R^2)."""

    def __init__(self, dataset: Any):
        self.regression = dataset.n_classes is None
        self.outputs = 1 if self.regression else int(dataset.n_classes)
        self.classes = dataset.classes

    def targets(self, y: np.ndarray) -> np.ndarray:
        return y.astype(np.float32).reshape(-1, 1) if self.regression else y

    def loss(self) -> Any:
        return MSELoss() if self.regression else CrossEntropyLoss()

    def describe(self) -> str:
        if self.regression:
            return "regression"
        names = ""
        if self.classes is not None:
            shown = ", ".join(self.classes[:10]) + (", ..." if len(self.classes) > 10 else "")
            names = f": {shown}"
        return f"{self.outputs} classes{names}"


def cmd_train(args: argparse.Namespace) -> int:
    """``descend train``: check the flags, load the data, build the model and optimizer,
    train, report."""
    args = _checked_train_args(args)
    out = _report_stream(args)
    torch_train = _torch_engine(args) if args.engine == "torch" else None
    dataset, train, val, X_train, X_val = _train_data(args, out)
    task = _Task(dataset)
    _check_classes(args, task)
    y_train, y_val = task.targets(train.y), task.targets(val.y)
    manual_seed(args.seed)
    sizes = [X_train.shape[1], *args.hidden, task.outputs]
    model = mlp(sizes, activation=args.activation, dropout=args.dropout, rng=args.seed)
    if args.lr is not None and not args.lr.strip():
        raise UsageError(f"descend train: --lr got {args.lr!r}; give a number or a rule name")
    rule = spec.parse_step_rule(args.lr if args.lr is not None else DEFAULT_LR[args.optimizer])
    print(f"data: {dataset.name} ({len(train)} train / {len(val)} validation, "
          f"{X_train.shape[1]} features, {task.describe()})", file=out)
    if torch_train is not None:
        history, train_m, val_m, seconds = torch_train(args, rule, sizes, X_train, y_train,
                                                       X_val, y_val, out=out)
        return _train_report(args, history, _scored(train_m, y_train, task),
                             _scored(val_m, y_val, task), seconds, out)
    params = list(model.parameters())
    opt = _train_optimizer(args, params, rule)
    stop = stop_when(args)
    loss_fn = task.loss()
    batch = "full batch" if args.batch_size is None else f"batch {args.batch_size}"
    print(f"model: MLP {'-'.join(map(str, sizes))} ({args.activation}), "
          f"{sum(p.size for p in params):,} parameters", file=out)
    print(f"optimizer: {type(opt).__name__}, lr={rule!r}, {batch}, seed {args.seed}",
          file=out, flush=True)
    config: dict[str, Any] = {"train_args": _saved_args(args)}
    if task.classes is not None:
        config["classes"] = list(task.classes)
    started = time.perf_counter()
    try:
        history = fit(model, loss_fn, opt, (X_train, y_train), epochs=args.epochs,
                      batch_size=args.batch_size, seed=args.seed, validation=(X_val, y_val),
                      stop=stop, progress=not args.quiet, checkpoint=args.checkpoint,
                      checkpoint_every=args.checkpoint_every, resume=args.resume,
                      config=config, overwrite=args.overwrite, report=args.report)
    except KeyboardInterrupt as exc:  # reported like any other stop; exit code 130
        history = getattr(exc, "history", None)
        if history is None:
            raise
    seconds = time.perf_counter() - started
    return _train_report(args, history,
                         _scored(evaluate(model, loss_fn, X_train, y_train), y_train, task),
                         _scored(evaluate(model, loss_fn, X_val, y_val), y_val, task),
                         seconds, out)


def cmd_explain(args: argparse.Namespace) -> int:
    """``descend explain``: ``descend train`` with its report, and where the report went."""
    code = cmd_train(args)
    if Path(args.report).exists():
        print(f"report: {args.report}", file=_report_stream(args))
    return code


def _check_classes(args: argparse.Namespace, task: _Task) -> None:
    """A resumed run's labels must name the classes its checkpoint was trained on."""
    if args.resume is None:
        return
    saved = load_checkpoint(args.resume).get("config", {}).get("classes")
    mine = None if task.classes is None else list(task.classes)
    if saved is not None and not isinstance(saved, list):
        raise UsageError(f"--resume {args.resume}: the saved class names are not a list; "
                         "the checkpoint was damaged or edited")
    if saved != mine:
        def shown(names: list[str] | None) -> str:
            return "class indices" if names is None else ", ".join(map(str, names[:10]))

        raise UsageError(f"--resume {args.resume}: the checkpoint was trained on classes "
                         f"{shown(saved)}, but --data {args.data} has {shown(mine)}")


def _scored(metrics: dict[str, float], y: np.ndarray, task: _Task) -> dict[str, float]:
    """The metrics with, for a regression, R^2 = 1 - MSE / variance of the targets."""
    if task.regression:
        variance = float(np.var(y))
        metrics = {**metrics, "r2": 1 - metrics["loss"] / variance if variance > 0 else math.nan}
    return metrics


def _checked_train_args(args: argparse.Namespace) -> argparse.Namespace:
    """The flags of ``descend train`` checked together (and merged with a checkpoint's
    settings when resuming)."""
    _check_output(args.plot, "--plot")
    _check_output(args.history, "--history")
    _check_output(args.report, "--report")
    if args.report is not None and args.resume is not None:
        raise UsageError("descend train: --report explains a run from its first step; it "
                         "cannot be combined with --resume")
    if _is_stdout(args.plot) and _is_stdout(args.history):
        raise UsageError(f"descend train: --history {args.history} and --plot {args.plot} "
                         "would both write to standard output, mixing a CSV and a PNG; send "
                         "one of them to a file")
    if args.checkpoint is not None:
        try:
            check_checkpoint_target(args.checkpoint, resume=args.resume,
                                    overwrite=args.overwrite)
        except DescendError as exc:
            raise UsageError(f"descend train: --checkpoint: {exc}") from None
    if args.resume is not None:
        args = _resumed_args(args)
    if args.nesterov and args.momentum == 0:
        raise UsageError("--nesterov needs --momentum > 0")
    torch_only = [flag for flag, given in (("--amp", args.amp is not None),
                                           ("--accumulate", args.accumulate != 1),
                                           ("--compile", args.compile)) if given]
    if torch_only and args.engine != "torch":
        raise UsageError(f"descend train: {', '.join(torch_only)} needs --engine torch")
    if args.batch_size is not None and args.accumulate > args.batch_size:
        raise UsageError(f"descend train: --accumulate {args.accumulate} splits batches of "
                         f"{args.batch_size} into more micro-batches than samples")
    takes = spec.optimizer_entry(args.optimizer).options
    if args.momentum and "momentum" not in takes:
        raise UsageError(f"--optimizer {args.optimizer} takes no --momentum (its direction "
                         "is its own); use --optimizer gd")
    for option in ("history_size", "beta"):
        if getattr(args, option) is not None and option not in takes:
            users = [e.name for e in spec.OPTIMIZERS.values() if option in e.options]
            raise UsageError(f"--{option.replace('_', '-')} is for --optimizer "
                             f"{' or '.join(users)}")
    return args


def _train_data(args: argparse.Namespace,
                out: TextIO) -> tuple[Any, Any, Any, np.ndarray, np.ndarray]:
    """The data set, its train/validation split, and the standardised inputs (float32);
    settles the batch size and the epoch budget."""
    dataset = _load_data(args)
    if dataset.n_classes is not None and dataset.n_classes < 2:
        raise UsageError(f"--data {args.data}: training needs at least 2 classes")
    train, val = train_val_split(dataset, args.val_fraction, seed=args.seed)
    scaler = Standardizer().fit(train.X)
    X_train = scaler.transform(train.X).astype(np.float32)
    X_val = scaler.transform(val.X).astype(np.float32)
    if args.batch_size is not None and args.batch_size >= len(X_train):
        # as the estimators do (and scikit-learn's MLPs): one batch of all the samples
        print(f"note: --batch-size {args.batch_size} is not below the {len(X_train)} "
              "training samples: using full batches", file=out)
        args.batch_size = None
    if args.epochs is None:
        args.epochs = _default_epochs(args, len(X_train))
    return dataset, train, val, X_train, X_val


def _train_optimizer(args: argparse.Namespace, params: list[Any], rule: Any) -> Any:
    """The optimizer ``--optimizer`` names, with its flags (NumPy engine)."""
    return spec.make_optimizer(args.optimizer, params, rule, **optimizer_options(args))


def _interruption(args: argparse.Namespace, history: Any) -> str:
    """The one line a Ctrl-C gets: where the run stopped and how to go on from there."""
    line = f"stopped: {history.stop_reason}"
    if args.checkpoint is None:
        return (f"{line}; no checkpoint was asked for (--checkpoint PATH keeps one to resume "
                "from)")
    if not Path(args.checkpoint).exists():
        return f"{line}; no checkpoint was written yet"
    return (f"{line}; checkpoint {args.checkpoint}: resume with descend train --resume "
            f"{args.checkpoint} --checkpoint {args.checkpoint}")


def _train_report(args: argparse.Namespace, history: Any, train_m: dict[str, float],
                  val_m: dict[str, float], seconds: float, out: TextIO) -> int:
    """Print why training stopped and the final metrics to ``out``, write the history and
    plot; the exit code (130 interrupted, 1 diverged, else 0). Both engines report through
    it. An interruption is said on one line on standard error, whatever ``out`` is."""
    reason = history.stop_reason
    interrupted = reason is not None and reason.criterion == "interrupted"
    if interrupted:
        print(_interruption(args, history), file=sys.stderr, flush=True)
    else:
        print(f"stopped: {_stop_message(history, args)}", file=out)
    for name, m in (("train", train_m), ("validation", val_m)):
        if "accuracy" in m:
            print(f"{name}: loss {m['loss']:.4f}, accuracy {100 * m['accuracy']:.2f}%", file=out)
        else:
            print(f"{name}: loss {m['loss']:.4g} (mean squared error), R^2 {m['r2']:.4f}",
                  file=out)
    if history.steps:
        evals = np.asarray(history.evaluations, dtype=float)
        print(f"time: {seconds:.1f} s for {history.steps} steps "
              f"({evals.mean():.2f} forward passes per step)", file=out)
    if args.history:
        history.to_csv(args.history)
        print(f"history: {args.history}", file=out)
    if args.plot:
        history.plot(args.plot, title=f"descend train --data {args.data}: "
                     f"{for_command_line(str(reason))}")
        print(f"plot: {args.plot}", file=out)
    out.flush()
    if interrupted:
        return EXIT_INTERRUPTED
    return 1 if reason is not None and reason.criterion == "diverged" else 0


def _torch_engine(args: argparse.Namespace) -> Any:
    """``--engine torch``: the PyTorch training function, after checking the flags."""
    try:
        from .torch import cli as torch_cli
    except ImportError:
        raise UsageError("descend train: --engine torch needs PyTorch: "
                         "pip install 'descend[torch]'") from None
    unsupported = torch_cli.unsupported_flags(args)
    if unsupported:
        raise UsageError(f"descend train: {', '.join(unsupported)} not supported with "
                         "--engine torch (use the default engine)")
    return torch_cli.train


def _default_epochs(args: argparse.Namespace, n_train: int) -> int:
    """The epoch budget when --epochs is not given: enough for --max-steps when that is
    given; DEFAULT_FULL_BATCH_EPOCHS for a full-batch run with a convergence criterion (an
    epoch is one step there, and 30 steps rarely converge); else DEFAULT_EPOCHS."""
    steps_per_epoch = 1 if args.batch_size is None else math.ceil(n_train / args.batch_size)
    if args.max_steps is not None:
        return max(1, math.ceil(args.max_steps / steps_per_epoch))
    if args.batch_size is None and any(getattr(args, f) is not None
                                       for f in _CONVERGENCE_FLAGS):
        return DEFAULT_FULL_BATCH_EPOCHS
    return DEFAULT_EPOCHS


def _stop_message(history: Any, args: argparse.Namespace) -> str:
    """The stop reason, its hints in command-line syntax; when the epoch budget ended a run
    that had a convergence criterion, say that the criterion was not reached and how far it
    was."""
    reason = history.stop_reason
    given = [f for f in _CONVERGENCE_FLAGS if getattr(args, f) is not None]
    if reason is None or reason.criterion != "epochs" or not given or not history.epochs:
        return for_command_line(str(reason))
    last = history.epochs[-1]
    # the steps of the last epoch, which the epoch-level criteria read
    steps = last.step - (history.epochs[-2].step if len(history.epochs) > 1 else -1)
    values = {
        "loss_below": ("loss", last.train_loss),
        "grad_norm_below": ("gradient norm", sum(history.grad_norm[-steps:]) / steps),
        "rel_change_below": ("relative loss change",
                             abs(last.train_loss - history.epochs[-2].train_loss)
                             / max(abs(history.epochs[-2].train_loss), 1e-12)
                             if len(history.epochs) > 1 else math.nan),
        "param_change_below": ("parameter change", sum(history.step_norm[-steps:])),
    }
    missed = ", ".join("{} {} (wanted < {})".format(values[f][0],
                                                     *compared(values[f][1], getattr(args, f), 3))
                       for f in given)
    return (f"{reason}, before the convergence criterion was reached: {missed}; raise "
            "--epochs to train longer")


#: Flags a checkpoint keeps, so that ``--resume PATH`` rebuilds the same run.
_RUN_FLAGS = ("data", "label", "task", "samples", "val_fraction", "hidden", "activation", "dropout",
              "optimizer", "lr", "momentum", "nesterov", "weight_decay", "batch_size", "seed",
              "history_size", "beta",
              "max_steps", "loss_below", "grad_norm_below", "rel_change_below",
              "param_change_below", "patience", "time_limit")


def _saved_args(args: argparse.Namespace) -> dict[str, Any]:
    out = {}
    for name in (*_RUN_FLAGS, "epochs"):
        value = getattr(args, name)
        out[name] = list(value) if isinstance(value, tuple) else value
    return out


def _resumed_args(args: argparse.Namespace) -> argparse.Namespace:
    """The run's settings from the checkpoint; --epochs and the output flags may change."""
    saved = load_checkpoint(args.resume).get("config", {}).get("train_args")
    if not isinstance(saved, dict):
        raise UsageError(f"--resume {args.resume}: the checkpoint was not written by "
                         "descend train (no saved settings)")
    given = _given_flags(getattr(args, "argv", []))
    conflicts = []
    for name in _RUN_FLAGS:
        if name in given and _plain(getattr(args, name)) != _plain(saved.get(name)):
            conflicts.append(f"--{name.replace('_', '-')} {_shown(getattr(args, name))} "
                             f"(the checkpoint has {_shown(saved.get(name))})")
    if conflicts:
        raise UsageError(f"--resume {args.resume}: {'; '.join(conflicts)}: a resumed run keeps "
                         "the settings it was started with (only --epochs and the output "
                         "flags may change); drop the conflicting flags, or start a new run "
                         "without --resume")
    merged = argparse.Namespace(**vars(args))
    for name in _RUN_FLAGS:
        value = _saved_flag(args.resume, name, saved.get(name))
        setattr(merged, name, tuple(value) if name == "hidden" and value is not None else value)
    if merged.epochs is None:
        merged.epochs = _saved_flag(args.resume, "epochs", saved.get("epochs"))
    return merged


#: What each saved flag may hold: (types, check of the value or None, may it be None).
_SAVED_FLAGS: dict[str, tuple[tuple[type, ...], Any, bool]] = {
    "data": ((str,), None, False),
    "label": ((str,), None, False),
    "task": ((str,), ("classification", "regression"), True),
    "samples": ((int,), positive_int, False),
    "val_fraction": ((float, int), fraction, False),
    "hidden": ((list,), None, False),
    "activation": ((str,), ACTIVATIONS, False),
    "dropout": ((float, int), unit_interval, False),
    "optimizer": ((str,), tuple(spec.OPTIMIZERS), False),
    "history_size": ((int,), positive_int, True),
    "beta": ((str,), tuple(BETAS), True),
    "lr": ((str,), None, True),
    "momentum": ((float, int), unit_interval, False),
    "nesterov": ((bool,), None, False),
    "weight_decay": ((float, int), nonneg_float, False),
    "batch_size": ((int,), positive_int, True),
    "seed": ((int,), nonneg_int, False),
    "max_steps": ((int,), positive_int, True),
    "loss_below": ((float, int), nonneg_float, True),
    "grad_norm_below": ((float, int), positive_float, True),
    "rel_change_below": ((float, int), positive_float, True),
    "param_change_below": ((float, int), positive_float, True),
    "patience": ((int,), positive_int, True),
    "time_limit": ((float, int), positive_float, True),
    "epochs": ((int,), positive_int, True),
}


def _saved_flag(path: Path, name: str, value: Any) -> Any:
    """A setting read back from a checkpoint, checked like the flag it came from."""
    types, check, optional = _SAVED_FLAGS[name]

    def bad(expected: str) -> NoReturn:
        raise UsageError(f"--resume {path}: the saved setting {name}={value!r:.40} is not "
                         f"{expected}; the checkpoint was damaged or edited")

    if value is None:
        if optional:
            return None
        bad("set")
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        bad(" or ".join(t.__name__ for t in types))
    if isinstance(check, tuple):
        if value not in check:
            bad(f"one of {', '.join(check)}")
    elif check is not None:
        try:
            check(str(value))
        except argparse.ArgumentTypeError as exc:
            bad(f"valid ({exc})")
    if name == "hidden" and not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1
                                    for v in value):
        bad("a list of layer sizes >= 1")
    return value


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple | list) else value


def _shown(value: Any) -> str:
    if value is None:
        return "not set (the default)"
    if isinstance(value, tuple | list):
        return ",".join(map(str, value)) or "none"
    return str(value)


def _given_flags(argv: Sequence[str]) -> set[str]:
    """The destinations of the ``descend train`` options written on the command line
    (exact option strings, ``--flag=value``, and argparse's unique prefixes)."""
    train = build_parser()._subparsers._group_actions[0].choices["train"]  # type: ignore[union-attr]
    options = {o: a.dest for a in train._actions for o in a.option_strings}
    given = set()
    for token in argv:
        if token == "--":
            break
        if not token.startswith("--"):
            continue
        name = token.split("=", 1)[0]
        if name in options:
            given.add(options[name])
            continue
        matches = {dest for option, dest in options.items() if option.startswith(name)}
        if len(matches) == 1:
            given |= matches
    return given


# ------------------------------------------------------------------------------ descend compare
class _RulesEpilog(argparse.HelpFormatter):
    """Wrapped description and flags, the epilog's list of rules line by line."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith("Step rules"):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def _add_compare_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``descend compare`` on the CLI's subparsers."""
    p = sub.add_parser(
        "compare",
        help="run several step-size rules on one test problem: a table and a plot",
        description="Run step-size rules on a test problem with a known optimum and report "
        "the final loss, the gap to f*, the steps and evaluations used, and why each run "
        "stopped (a step that is too large shows up as 'diverged').",
        epilog=rules_help("--steps"), formatter_class=_RulesEpilog,
    )
    p.add_argument("--problem", required=True, metavar="NAME",
                   help=f"one of: {', '.join(PROBLEMS)}")
    p.add_argument("--steps", metavar="RULES",
                   help="comma-separated step rules, e.g. constant:0.1,invsqrt:0.5,armijo,"
                   "wolfe,exact,polyak (every rule is listed below); 'k/L' means k over the "
                   "problem's gradient Lipschitz constant (constant:1/L); a bare 'polyak' "
                   "uses the problem's f*. Default: a set suited to the problem")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="auto",
                   help="auto (default): the subgradient method on convex non-smooth "
                   "problems for non-search rules, gradient descent otherwise; lbfgs "
                   "(L-BFGS) and cg (nonlinear conjugate gradients) run with each rule, by "
                   "default strong Wolfe (c2 = 0.9 for lbfgs, 0.1 for cg) and Armijo")
    p.add_argument("--history-size", type=positive_int, default=10,
                   help="L-BFGS: curvature pairs kept (default: 10)")
    p.add_argument("--beta", choices=tuple(BETAS), default="PR+",
                   help="CG: the beta formula (default: PR+)")
    p.add_argument("--momentum", type=unit_interval, default=0.0,
                   help="heavy-ball momentum for gradient descent (default: 0)")
    p.add_argument("--max-steps", type=positive_int, default=500,
                   help="steps per rule (default: 500)")
    p.add_argument("--tol", type=nonneg_float, default=1e-6,
                   help="stop when f - f* <= tol (default: 1e-6)")
    p.add_argument("--time-limit", type=positive_float, help="seconds per rule")
    p.add_argument("--plot", type=Path, help="save f - f*, cost and step sizes (PNG/SVG/PDF; "
                   "'-' writes PNG to standard output, and the table to standard error)")
    p.add_argument("--path-plot", type=Path, metavar="FILE",
                   help="save every rule's iterates over the contours of f (PNG/SVG/PDF): "
                   "the problem's plane in 2-D, else the plane through the start, x* (or "
                   "the best iterate) and a run's end, named in the title")
    p.add_argument("--seed", type=nonneg_int, default=0, help="the problem's data (default: 0)")
    p.add_argument("--quiet", action="store_true", help="only the table and warnings")
    p.set_defaults(func=cmd_compare)
    return p


def cmd_compare(args: argparse.Namespace) -> int:
    """``descend compare``: print the table and one line per diverged rule."""
    _check_output(args.plot, "--plot")
    _check_output(args.path_plot, "--path-plot")
    if _is_stdout(args.plot) and _is_stdout(args.path_plot):
        raise UsageError("descend compare: --plot and --path-plot cannot both write to "
                         "standard output")
    if args.problem.strip().lower() not in PROBLEMS:
        raise UsageError(f"descend compare: unknown problem {args.problem!r}; "
                         f"known: {', '.join(PROBLEMS)}")
    if args.optimizer in ("subgradient", "lbfgs", "cg") and args.momentum:
        raise UsageError("descend compare: --momentum needs --optimizer gd or auto")
    if args.steps is not None and not split_specs(args.steps):
        raise UsageError("descend compare: --steps is empty")
    problem = make_problem(args.problem, seed=args.seed)
    specs = (split_specs(args.steps) if args.steps is not None
             else default_specs(problem, args.optimizer))
    rules = []
    for text in specs:
        try:
            rule, _ = resolve_rule(problem, text)
        except ConfigError as exc:
            raise UsageError(f"descend compare: --steps: {exc}") from None
        if args.optimizer == "subgradient" and rule.needs != Needs.NOTHING:
            raise UsageError(f"descend compare: {text!r} is a line search; the subgradient "
                             "method takes constant, invtime, invsqrt, length or polyak steps")
        rules.append(text)

    # the PNG of --plot - owns standard output: the table goes to standard error then
    out = sys.stderr if _is_stdout(args.plot) or _is_stdout(args.path_plot) else sys.stdout
    f_star = "unknown" if problem.f_star is None else f"{problem.f_star:.10g}"
    L = "" if problem.lipschitz is None else f", L = {problem.lipschitz:.4g}"
    print(f"problem: {problem.name}: {problem.description}; f* = {f_star}{L}", file=out,
          flush=True)
    results = []
    for text in rules:
        r = run_rule(problem, text, optimizer=args.optimizer, momentum=args.momentum,
                     max_steps=args.max_steps, tol=args.tol, time_limit=args.time_limit,
                     progress=not args.quiet, history_size=args.history_size,
                     beta=args.beta, record_path=args.path_plot is not None)
        results.append(r)
        if not args.quiet:
            print(f"  {r.rule}: {r.stop_reason} ({for_command_line(r.detail, '--steps')}), "
                  f"{r.seconds:.2f} s", file=out, flush=True)
    print(format_table(results), file=out)
    for r in results:
        if r.diverged:
            hint = ""
            if problem.lipschitz is not None:
                hint = f"; steps above 2/L = {2 / problem.lipschitz:.4g} overshoot"
            print(f"{r.rule}: {for_command_line(r.detail, '--steps')}{hint}", file=out)
    if args.plot:
        plot(results, args.plot, problem)
        print(f"plot: {args.plot}", file=out)
    if args.path_plot:
        from .plot import paths

        paths(problem, results, args.path_plot)
        print(f"path plot: {args.path_plot}", file=out)
    out.flush()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    try:
        argv = list(sys.argv[1:] if argv is None else argv)
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help and --version print, then argparse exits
            sys.stdout.flush()
            return exc.code if isinstance(exc.code, int) else 0
        for name, value in vars(args).items():  # argparse turns "--flag=--" into []
            if isinstance(value, list):
                raise UsageError(f"descend: --{name.replace('_', '-')} needs a value")
        args.argv = argv  # --resume tells the flags given from the defaults
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=getattr(args, "threads", 1), user_api="blas"):
            code = int(args.func(args))
        sys.stdout.flush()  # a closed pipe is reported here, not by the interpreter at exit
        return code
    except BrokenPipeError:
        return _broken_pipe()
    except UsageError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    except DescendError as exc:
        print(f"descend: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # a file the OS refuses: name too long, permission, full disk
        if exc.errno == errno.EPIPE:
            return _broken_pipe()
        where = f" {exc.filename}" if exc.filename else ""
        print(f"descend: error:{where} {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("descend: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
