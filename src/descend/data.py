"""Data for training: built-in data sets, CSV loading, splitting, standardisation, batching.

Everything here works on host NumPy arrays: data sets are loaded and split once, before
training, and the training loop moves each mini-batch into the backend's namespace.

Built-in data sets
------------------
- :func:`load_digits`: the 1,797 8x8 handwritten digits (UCI optical recognition, as bundled
  by scikit-learn), shipped with descend as ``datasets/digits.npz``.
- :func:`spirals`: interleaved spiral arms in the plane, one class per arm.
- :func:`teacher`: Gaussian inputs labelled by a random one-hidden-layer tanh network.

Conventions
-----------
Axis 0 is always the sample axis. Classification labels are ``int64`` class indices
``0 .. n_classes - 1``; regression targets are floating. Bad input raises
:class:`~descend.errors.DataError` (content), :class:`~descend.errors.DTypeError` (dtype) or
:class:`~descend.errors.ConfigError` (an argument out of range), each naming the bad value.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib.resources
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from descend.checks import check_count, check_finite, check_number, is_real
from descend.errors import ConfigError, ConfigTypeError, DataError, DTypeError

__all__ = [
    "Dataset",
    "Standardizer",
    "check_arrays",
    "infer_task",
    "iterate_batches",
    "load_csv",
    "load_digits",
    "num_batches",
    "spirals",
    "teacher",
    "train_val_split",
]

Task = Literal["classification", "regression"]
_TASKS = ("classification", "regression")
#: What ``load_csv(task=...)`` takes: a task, or "infer" (see :func:`infer_task`).
_TASK_CHOICES = (*_TASKS, "infer")

#: Most distinct whole-number labels that :func:`infer_task` reads as classes; more make a
#: regression target (counts, years, prices in whole units).
MAX_INFERRED_CLASSES = 20

# Floats represent every integer exactly only up to 2**53; a class label above that could
# not be told apart from its neighbours, so it is rejected rather than silently rounded.
_MAX_CLASS_LABEL = 2**53

#: Most classes a CSV file's labels may imply. Labels are class indices, so a label L makes
#: a model with L + 1 outputs: a stray 1e12 would ask for terabytes before training starts.
MAX_CLASSES = 65_536

# Long cells are cut in error messages so that a binary file does not flood the terminal.
_MAX_CELL_REPR = 40


# --------------------------------------------------------------------------------------------
# The record
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Dataset:
    """A labelled data set: features, targets and what they mean.

    Equality is identity (``eq=False``): comparing arrays element by element is the caller's
    choice, made explicitly with ``numpy.array_equal``.

    Attributes
    ----------
    X : ndarray, shape (n, d)
        Floating features, finite, one row per sample; ``n >= 1`` and ``d >= 1``.
    y : ndarray, shape (n,)
        Integer class labels in ``0 .. n_classes - 1`` for classification, floating targets
        for regression.
    name : str
        A short name for messages and reports (``"digits"``, ``"spirals[train]"``).
    n_classes : int or None
        Number of classes, or None for regression.
    feature_names : tuple of str or None
        One name per column of ``X``, or None when the columns are unnamed.
    classes : tuple of str or None
        The original label of each class when the labels were text: class ``k`` is
        ``classes[k]`` (sorted, as scikit-learn's ``LabelEncoder`` numbers them). None when
        the labels were class indices already, and for regression.
    """

    X: np.ndarray
    y: np.ndarray
    name: str
    n_classes: int | None
    feature_names: tuple[str, ...] | None = None
    classes: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        X, y = self.X, self.y
        if not isinstance(X, np.ndarray) or not isinstance(y, np.ndarray):
            raise DataError(
                f"Dataset needs ndarrays for X and y, got {type(X).__name__} and {type(y).__name__}"
            )
        if not isinstance(self.name, str):
            raise DataError(f"Dataset name must be a str, got {self.name!r}")
        if X.ndim != 2:
            raise DataError(f"Dataset X must be 2-D (n, d), got shape {X.shape}")
        if X.dtype.kind != "f":
            raise DTypeError(f"Dataset X must be floating, got dtype {X.dtype}")
        n, d = X.shape
        if n < 1:
            raise DataError(f"Dataset {self.name!r} has no samples (X has shape {X.shape})")
        if d < 1:
            raise DataError(f"Dataset {self.name!r} has no features (X has shape {X.shape})")
        if y.ndim != 1:
            raise DataError(f"Dataset y must be 1-D (n,), got shape {y.shape}")
        if len(y) != n:
            raise DataError(f"Dataset X has {n} rows but y has {len(y)}")
        if not np.isfinite(X).all():
            raise DataError(f"Dataset {self.name!r}: X {_first_nonfinite(X)}")
        if self.n_classes is None:
            if y.dtype.kind != "f":
                raise DTypeError(
                    f"regression targets (n_classes=None) must be floating, got dtype {y.dtype}"
                )
            if not np.isfinite(y).all():
                raise DataError(f"Dataset {self.name!r}: y {_first_nonfinite(y)}")
        else:
            k = self.n_classes
            if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
                raise DataError(f"n_classes must be an int >= 1 or None, got {k!r}")
            if y.dtype.kind not in "iu":
                raise DTypeError(f"class labels must be integers, got dtype {y.dtype}")
            low, high = int(y.min()), int(y.max())
            if low < 0 or high >= k:
                bad = low if low < 0 else high
                raise DataError(
                    f"Dataset {self.name!r}: label {bad} is outside 0..{k - 1} (n_classes={k})"
                )
        if self.feature_names is not None:
            names = self.feature_names
            if not isinstance(names, tuple) or not all(isinstance(s, str) for s in names):
                raise DataError(f"feature_names must be a tuple of str or None, got {names!r}")
            if len(names) != d:
                raise DataError(f"{len(names)} feature_names given for {d} features")
        if self.classes is not None:
            classes = self.classes
            if not isinstance(classes, tuple) or not all(isinstance(c, str) for c in classes):
                raise DataError(f"classes must be a tuple of str or None, got {classes!r}")
            if self.n_classes != len(classes):
                raise DataError(f"{len(classes)} class names given for n_classes="
                                f"{self.n_classes}")

    def __len__(self) -> int:
        """Number of samples ``n``."""
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        """Number of features ``d``."""
        return int(self.X.shape[1])


# --------------------------------------------------------------------------------------------
# Argument checks shared by the loaders
# --------------------------------------------------------------------------------------------


def _float_dtype(dtype: DTypeLike) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise DTypeError(f"dtype {dtype!r} is not a NumPy dtype") from exc
    if dt.kind != "f":
        raise DTypeError(f"dtype must be a floating type, got {dt}")
    return dt


#: Largest count a generated data set takes (samples, features, classes, hidden units): past
#: it the arrays cannot be allocated, and NumPy would say so in its own words.
_MAX_SIZE = 10**8


def _check_size(name: str, value: object, minimum: int) -> int:
    return check_count(name, value, minimum, maximum=_MAX_SIZE)


def _check_float(name: str, value: object, low: float, high: float = math.inf) -> float:
    return check_number(name, check_finite(name, value), low, high, hi_open=False)


def _all_finite(a: np.ndarray, block: int = 1 << 18) -> bool:
    """``np.isfinite(a).all()`` in blocks of rows, so that checking a large data set needs
    no boolean copy of it (60,000 x 784 floats would need a 47 MB temporary)."""
    if a.ndim == 0 or a.size <= block:
        return bool(np.isfinite(a).all())
    rows = max(1, block // max(1, a.size // len(a)))
    return all(bool(np.isfinite(a[i : i + rows]).all()) for i in range(0, len(a), rows))


def _first_nonfinite(a: np.ndarray) -> str:
    """Describe the first NaN or inf of ``a``: 'has NaN at row 12, column 3'."""
    index = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
    value = a[index]
    kind = "NaN" if np.isnan(value) else ("inf" if value > 0 else "-inf")
    if a.ndim == 1:
        where = f"row {index[0]}"
    elif a.ndim == 2:
        where = f"row {index[0]}, column {index[1]}"
    else:
        where = f"row {index[0]}, position {index[1:]}"
    return f"has {kind} at {where}"


# --------------------------------------------------------------------------------------------
# Built-in data sets
# --------------------------------------------------------------------------------------------


def load_digits(dtype: DTypeLike = np.float32) -> Dataset:
    """The 8x8 handwritten digits: 1,797 images, 64 pixel features, 10 classes.

    The copy shipped with descend was made from scikit-learn's bundled data by
    ``bench/make_digits_npz.py``; it is the test set of the UCI "Optical Recognition of
    Handwritten Digits" data (Alpaydin & Kaynak, 1998).

    Parameters
    ----------
    dtype : floating dtype, default float32
        dtype of ``X``.

    Returns
    -------
    Dataset
        ``X`` of shape (1797, 64): pixel intensities 0..16 divided by 16, so in [0, 1], each
        row an image in row-major order; ``y`` of shape (1797,): int64 digits 0..9;
        ``feature_names`` ``pixel_<row>_<column>``.
    """
    dt = _float_dtype(dtype)
    resource = importlib.resources.files("descend") / "datasets" / "digits.npz"
    with resource.open("rb") as fh, np.load(fh, allow_pickle=False) as archive:
        pixels = archive["X"]
        labels = archive["y"]
    # Intensities are whole numbers 0..16, so k / 16 is exact in every floating dtype.
    X = pixels.astype(dt) / dt.type(16)
    names = tuple(f"pixel_{r}_{c}" for r in range(8) for c in range(8))
    return Dataset(X, labels.astype(np.int64), "digits", 10, names)


def spirals(
    n: int = 1000,
    *,
    classes: int = 2,
    noise: float = 0.2,
    turns: float = 1.5,
    seed: int = 0,
    dtype: DTypeLike = np.float32,
) -> Dataset:
    """Interleaved spiral arms in the plane, one class per arm.

    Arm ``k`` of ``K = classes`` arms is the curve, for ``t`` evenly spaced in [0, 1],

    .. math::

        r = t, \\qquad \\theta = 2\\pi\\,\\mathrm{turns}\\,t + 2\\pi k / K + \\varepsilon,
        \\qquad x = (r\\cos\\theta,\\ r\\sin\\theta),

    with angular jitter ``epsilon ~ N(0, noise^2)`` (radians), as in the two-spirals problem
    of Lang & Witbrock (1988). The jitter moves a point by about ``noise * r``, so arms stay
    apart near the centre and blur towards the rim. No linear model separates the arms.

    Parameters
    ----------
    n : int, default 1000
        Number of points, split as evenly as possible among the arms (the first
        ``n % classes`` arms get one extra point); ``n >= classes``.
    classes : int, default 2
        Number of arms (classes), ``>= 2``.
    noise : float, default 0.2
        Standard deviation of the angular jitter in radians, ``>= 0``.
    turns : float, default 1.5
        Number of full turns each arm makes, ``> 0``.
    seed : int, default 0
        Seed of the jitter and of the row order; the same seed gives the same data.
    dtype : floating dtype, default float32
        dtype of ``X``.

    Returns
    -------
    Dataset
        ``X`` of shape (n, 2) in roughly [-1, 1]^2, ``y`` of shape (n,) with labels
        ``0 .. classes - 1``; rows are in a seeded random order so that classes interleave.
    """
    n = _check_size("n", n, 1)
    classes = _check_size("classes", classes, 2)
    if n < classes:
        raise ConfigError(
            f"spirals needs n >= classes to give each arm a point, got n={n} < classes={classes}"
        )
    noise = _check_float("noise", noise, 0.0)
    turns = _check_float("turns", turns, 0.0)
    if turns == 0.0:
        raise ConfigError("turns must be > 0, got 0")
    seed = check_count("seed", seed, 0)
    dt = _float_dtype(dtype)
    rng = np.random.default_rng(seed)

    counts = np.full(classes, n // classes)
    counts[: n % classes] += 1
    points = []
    labels = []
    for k, m in enumerate(counts):
        t = np.linspace(0.0, 1.0, int(m))
        theta = 2.0 * np.pi * (turns * t + k / classes) + noise * rng.standard_normal(int(m))
        points.append(np.stack([t * np.cos(theta), t * np.sin(theta)], axis=1))
        labels.append(np.full(int(m), k, dtype=np.int64))
    order = rng.permutation(n)
    X = np.concatenate(points)[order].astype(dt)
    y = np.concatenate(labels)[order]
    return Dataset(X, y, "spirals", classes, ("x1", "x2"))


def teacher(
    n: int = 1000,
    *,
    features: int = 20,
    classes: int = 10,
    hidden: int = 32,
    noise: float = 0.0,
    seed: int = 0,
    dtype: DTypeLike = np.float32,
) -> Dataset:
    """A teacher-student classification set: Gaussian inputs labelled by a random network.

    The teacher is a one-hidden-layer tanh network

    .. math::

        f(x) = W_2^\\top \\tanh(W_1^\\top x + b_1) + b_2, \\qquad
        W_1 \\sim N(0, 1/\\mathrm{features}),\\ b_1 \\sim N(0, 0.1^2),\\
        W_2 \\sim N(0, 1/\\mathrm{hidden}),

    and a sample ``x ~ N(0, I)`` gets the label ``argmax_k f(x)_k``. The output biases
    ``b_2`` are tuned on a fixed reference sample of inputs (4,096 points from the teacher's
    own seed) so that every class wins about equally often; without this a random teacher
    often starves some classes. A student network with at least ``hidden`` tanh units can
    reach zero training error when ``noise = 0``.

    The teacher depends only on ``(features, classes, hidden, seed)``, never on ``n``; inputs,
    teacher and label noise come from independent streams of ``SeedSequence(seed)``, so
    the first rows of a larger set equal a smaller set with the same seed (before noise).

    Parameters
    ----------
    n : int, default 1000
        Number of samples, ``>= 1``.
    features : int, default 20
        Input dimension ``d``, ``>= 1``.
    classes : int, default 10
        Number of classes, ``>= 2``.
    hidden : int, default 32
        Hidden units of the teacher, ``>= 1``.
    noise : float, default 0.0
        Fraction of labels flipped, in [0, 1]: ``round(noise * n)`` samples chosen at random
        get a label drawn uniformly from the *other* classes.
    seed : int, default 0
        Seed of teacher, inputs and label noise.
    dtype : floating dtype, default float32
        dtype of ``X``; labels are computed in float64 and do not depend on it.

    Returns
    -------
    Dataset
        ``X`` of shape (n, features), ``y`` of shape (n,) with labels ``0 .. classes - 1``.
    """
    n = _check_size("n", n, 1)
    features = _check_size("features", features, 1)
    classes = _check_size("classes", classes, 2)
    hidden = _check_size("hidden", hidden, 1)
    noise = _check_float("noise", noise, 0.0, 1.0)
    seed = check_count("seed", seed, 0)
    dt = _float_dtype(dtype)
    teacher_rng, input_rng, noise_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3)
    )

    W1 = teacher_rng.standard_normal((features, hidden)) / np.sqrt(features)
    b1 = 0.1 * teacher_rng.standard_normal(hidden)
    W2 = teacher_rng.standard_normal((hidden, classes)) / np.sqrt(hidden)
    reference = teacher_rng.standard_normal((4096, features))
    b2 = _balancing_bias(np.tanh(reference @ W1 + b1) @ W2)

    X = input_rng.standard_normal((n, features))
    y = np.argmax(np.tanh(X @ W1 + b1) @ W2 + b2, axis=1).astype(np.int64)

    flips = round(noise * n)
    if flips > 0:
        rows = noise_rng.choice(n, size=flips, replace=False)
        # Adding 1..classes-1 modulo classes draws uniformly among the other classes.
        shift = noise_rng.integers(1, classes, size=flips)
        y[rows] = (y[rows] + shift) % classes
    names = tuple(f"x{i + 1}" for i in range(features))
    return Dataset(X.astype(dt), y, "teacher", classes, names)


def _balancing_bias(outputs: np.ndarray, iterations: int = 100) -> np.ndarray:
    """Biases ``b`` that make each column of ``outputs + b`` the argmax about equally often.

    A fixed number of steps of ``b <- b - step * (frequency - 1/k)``, starting from the
    negated column means; the step is half the typical output spread, so a class that wins
    too often loses a little ground each step. Deterministic: no randomness inside.
    """
    k = outputs.shape[1]
    bias = -outputs.mean(axis=0)
    step = 0.5 * float(outputs.std(axis=0).mean())
    for _ in range(iterations):
        wins = np.bincount(np.argmax(outputs + bias, axis=1), minlength=k) / len(outputs)
        bias -= step * (wins - 1.0 / k)
    return bias


# --------------------------------------------------------------------------------------------
# CSV
# --------------------------------------------------------------------------------------------


def _cell(text: str) -> str:
    """repr of a cell for messages, cut to a readable length."""
    if len(text) > _MAX_CELL_REPR:
        return repr(text[:_MAX_CELL_REPR]) + "..."
    return repr(text)


def _parse_number(text: str) -> float | None:
    """``float(text)`` after stripping blanks, or None when the text is not a number."""
    try:
        return float(text.strip())
    except ValueError:
        return None


def _read_csv_rows(path: Path, delimiter: str) -> list[tuple[int, list[str]]]:
    """All non-blank records of ``path`` with the file line on which each starts."""
    rows: list[tuple[int, list[str]]] = []
    line = 0
    try:
        # utf-8-sig drops a byte-order mark, which spreadsheet programs like to write.
        with path.open("r", encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh, delimiter=delimiter, skipinitialspace=True, strict=True)
            while True:
                start = reader.line_num + 1
                try:
                    record = next(reader)
                except StopIteration:
                    break
                except csv.Error as exc:
                    raise DataError(f"{path}: malformed CSV at line {start}: {exc}") from exc
                line = reader.line_num
                # A blank line gives [], a line of blanks gives one blank cell: both skipped.
                if not record or (len(record) == 1 and not record[0].strip()):
                    continue
                rows.append((start, record))
    except UnicodeDecodeError as exc:
        byte = exc.object[exc.start]
        raise DataError(
            f"{path} is not UTF-8 text: byte 0x{byte:02x} cannot be decoded (somewhere after "
            f"line {line})"
        ) from exc
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return rows


def infer_task(labels: Sequence[float | None]) -> Task:
    """The task a column of labels implies (``None`` for a cell that is not a number).

    Text labels (any cell not a number) are classes. Numbers are classes when every one is
    a whole number and there are at most ``MAX_INFERRED_CLASSES`` (20) distinct values;
    fractions, or more distinct whole numbers, make a regression target.
    """
    cells = list(labels) if isinstance(labels, Iterable) and not isinstance(labels, str) else None
    if cells is None or not all(v is None or is_real(v) for v in cells):
        raise ConfigTypeError(f"labels must be a sequence of numbers, None for a text cell; "
                              f"got {labels!r:.60}")
    if any(v is None for v in cells):
        return "classification"
    values = np.asarray(cells, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if finite.size < values.size or not np.all(finite == np.round(finite)):
        return "regression"
    return ("classification" if np.unique(finite).size <= MAX_INFERRED_CLASSES
            else "regression")


def _check_csv_options(label: object, header: object, delimiter: object, task: object) -> None:
    """``load_csv``'s options, each refused with a ConfigError that names it."""
    if isinstance(label, bool) or not isinstance(label, int | np.integer | str):
        raise ConfigError(f"label must be a column index (int) or name (str), got {label!r}")
    if not (isinstance(header, bool) or (isinstance(header, str) and header == "infer")):
        raise ConfigError(f"header must be True, False or 'infer', got {header!r}")
    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in '"\r\n':
        raise ConfigError(
            f"delimiter must be one character other than a quote or newline, got {delimiter!r}"
        )
    if not isinstance(task, str) or task not in _TASK_CHOICES:
        raise ConfigError(
            f"task must be 'classification', 'regression' or 'infer', got {task!r}")


def load_csv(
    path: str | os.PathLike[str],
    *,
    label: int | str = -1,
    header: bool | Literal["infer"] = "infer",
    delimiter: str = ",",
    task: Task | Literal["infer"] = "classification",
    dtype: DTypeLike = np.float32,
) -> Dataset:
    """Load a CSV file: one column of labels, every other column a number (a feature).

    The file is read with Python's :mod:`csv` module as UTF-8 (a byte-order mark is
    dropped); quoted fields are allowed, blank lines are skipped, and blanks around numbers
    are ignored (blanks after a delimiter may precede a quoted field: ``1, "2"``). Every
    feature cell must parse as a finite float.

    **Where messages point.** Rows are numbered as lines of the file, 1-based and counting
    the header line, so "row 7" is the line a text editor shows as 7 (a quoted field that
    spans lines is reported at the line where its record starts). Columns are named by their
    header name when there is a header, otherwise by their 0-based index, the same index
    ``label`` takes.

    Parameters
    ----------
    path : str or path-like
        The CSV file.
    label : int or str, default -1
        The label column: a 0-based index (negative counts from the end, so -1 is the last
        column) or, when the file has a header, a column name.
    header : bool or "infer", default "infer"
        Whether the first row holds column names. ``"infer"``: it does if any of its cells
        is not a number (an empty cell counts as not a number).
    delimiter : str, default ","
        The one-character field separator.
    task : {"classification", "regression", "infer"}, default "classification"
        Classification labels are either text, or whole numbers ``>= 0`` (``2`` or ``2.0``).
        Text labels are classes numbered as scikit-learn's ``LabelEncoder`` numbers them
        (the sorted distinct labels are classes ``0 .. k - 1``; ``Dataset.classes`` keeps
        them); a column may not mix text and numbers. Whole numbers are kept as given, not
        re-coded, and ``n_classes = max label + 1`` (at most ``MAX_CLASSES``, 65 536; a
        larger label is refused before anything is allocated). Regression labels are any
        finite numbers. ``"infer"`` chooses by :func:`infer_task`: text or at most 20
        distinct whole numbers make classes, anything else a regression.
    dtype : floating dtype, default float32
        dtype of ``X`` (and of ``y`` for regression).

    Returns
    -------
    Dataset
        Named after the file's stem; ``feature_names`` from the header, or None.

    Raises
    ------
    DataError
        The file is missing, a directory, unreadable or not UTF-8; it is empty or has no
        data rows; a row has the wrong number of columns; a cell is not a number; a feature
        is NaN or infinite; the label column does not exist; a label is not a valid class.
    ConfigError
        An argument is invalid (``header``, ``delimiter``, ``task``, ``label`` type).
    """
    _check_csv_options(label, header, delimiter, task)
    dt = _float_dtype(dtype)
    try:
        path = Path(os.fspath(path))
    except TypeError as exc:
        raise ConfigError(f"path must be a str or path-like, got {path!r}") from exc
    if not path.exists():
        raise DataError(f"no such file: {path}")
    if path.is_dir():
        raise DataError(f"{path} is a directory, not a CSV file")

    rows = _read_csv_rows(path, delimiter)
    if not rows:
        raise DataError(f"{path} is empty (no rows)")

    first_line, first = rows[0]
    has_header = any(_parse_number(c) is None for c in first) if header == "infer" else bool(header)
    n_columns = len(first)
    names: list[str] | None = [c.strip() for c in first] if has_header else None
    data_rows = rows[1:] if has_header else rows
    if not data_rows:
        raise DataError(f"{path} has a header row (line {first_line}) but no data rows")
    if n_columns < 2:
        raise DataError(
            f"{path} has {n_columns} column; need a label column and at least one feature"
        )

    label_col = _resolve_label_column(label, names, n_columns, path, header)

    def column_name(j: int) -> str:
        return repr(names[j]) if names is not None else str(j)

    features = np.empty((len(data_rows), n_columns - 1), dtype=np.float64)
    feature_cols = [j for j in range(n_columns) if j != label_col]
    label_cells: list[str] = []
    label_values: list[float | None] = []
    for i, (line, record) in enumerate(data_rows):
        if len(record) != n_columns:
            raise DataError(f"{path}: row {line} has {len(record)} columns, expected {n_columns}")
        for k, j in enumerate(feature_cols):
            cell = record[j]
            v = _parse_number(cell)
            if v is None:
                what = "empty cell" if not cell.strip() else _cell(cell)
                raise DataError(
                    f"{path}: row {line}, column {column_name(j)}: {what} is not a number"
                )
            if not math.isfinite(v):
                kind = "NaN" if math.isnan(v) else ("inf" if v > 0 else "-inf")
                raise DataError(f"{path}: row {line}, column {column_name(j)} is {kind}")
            features[i, k] = v
        label_cells.append(record[label_col])
        label_values.append(_parse_number(record[label_col]))

    feature_names = tuple(names[j] for j in feature_cols) if names is not None else None
    lines = [line for line, _ in data_rows]
    if task == "infer":
        task = infer_task(label_values)
    classes: tuple[str, ...] | None = None
    if any(v is None for v in label_values):
        y, classes = _text_classes(label_cells, label_values, lines, task, path)
        n_classes: int | None = len(classes)
    else:
        targets = np.array([_check_label(v, cell, task, line, path) for v, cell, line
                            in zip(label_values, label_cells, lines)], dtype=np.float64)
        if task == "classification":
            y = targets.astype(np.int64)
            n_classes = int(y.max()) + 1
        else:
            y = targets.astype(dt)
            n_classes = None
    return Dataset(features.astype(dt), y, path.stem, n_classes, feature_names, classes)


def _text_classes(cells: list[str], values: list[float | None], lines: list[int], task: str,
                  path: Path) -> tuple[np.ndarray, tuple[str, ...]]:
    """Text labels as classes: the sorted distinct labels are classes 0..k-1 (as
    scikit-learn's ``LabelEncoder`` numbers them). A column of text with numbers in it, or
    an empty label, is refused: one of them is likely a mistake."""
    first_text = next(i for i, v in enumerate(values) if v is None)
    if task == "regression":
        raise DataError(f"{path}: row {lines[first_text]}: label {_cell(cells[first_text])} is "
                        "not a number (regression targets are numbers)")
    stripped = [c.strip() for c in cells]
    for i, text in enumerate(stripped):
        if not text:
            raise DataError(f"{path}: row {lines[i]}: the label is empty")
    first_number = next((i for i, v in enumerate(values) if v is not None), None)
    if first_number is not None:
        raise DataError(
            f"{path}: the label column mixes text (row {lines[first_text]}: "
            f"{_cell(cells[first_text])}) and numbers (row {lines[first_number]}: "
            f"{_cell(cells[first_number])}); class labels are all names or all numbers"
        )
    classes, y = np.unique(np.array(stripped, dtype=object).astype(str), return_inverse=True)
    if len(classes) > MAX_CLASSES:
        raise DataError(f"{path}: the labels name {len(classes)} classes (at most {MAX_CLASSES})")
    return y.astype(np.int64).reshape(-1), tuple(str(c) for c in classes)


def _resolve_label_column(
    label: int | str,
    names: list[str] | None,
    n_columns: int,
    path: Path,
    header: bool | str,
) -> int:
    """The 0-based index of the label column, or a DataError saying why there is none."""
    if isinstance(label, str):
        if names is None:
            why = "header=False" if header is False else "its first row is all numbers"
            raise DataError(
                f"label {label!r} names a column, but {path} has no header row ({why}); "
                f"give the label column's index instead"
            )
        matches = [j for j, name in enumerate(names) if name == label.strip()]
        if not matches:
            raise DataError(f"{path}: no column named {label!r}; the columns are {names}")
        if len(matches) > 1:
            raise DataError(
                f"{path}: column name {label!r} appears {len(matches)} times "
                f"(columns {matches}); give the label column's index instead"
            )
        return matches[0]
    index = int(label)
    if not -n_columns <= index < n_columns:
        raise DataError(
            f"label column {index} is out of range: {path} has {n_columns} columns "
            f"(valid indices {-n_columns}..{n_columns - 1})"
        )
    return index % n_columns


def _check_label(value: float, text: str, task: str, line: int, path: Path) -> float:
    """Validate one label cell; returns the label as a float."""
    if not math.isfinite(value):
        raise DataError(f"{path}: row {line}: label {text.strip()!r} is not a finite number")
    if task == "regression":
        return value
    if not value.is_integer():
        raise DataError(f"{path}: row {line}: label {text.strip()} is not an integer class")
    if value < 0:
        raise DataError(
            f"{path}: row {line}: label {text.strip()} is negative; class labels must be >= 0"
        )
    if value >= MAX_CLASSES:
        raise DataError(
            f"{path}: row {line}: label {text.strip()} is too large for a class index: labels "
            f"are classes 0..n_classes-1, so it would make {value + 1:.0f} classes (at most "
            f"{MAX_CLASSES}); re-code the labels as 0, 1, 2, ..."
        )
    return value


# --------------------------------------------------------------------------------------------
# Splitting
# --------------------------------------------------------------------------------------------


def train_val_split(
    data: Dataset,
    val_fraction: float = 0.2,
    *,
    seed: int = 0,
    stratify: bool = True,
) -> tuple[Dataset, Dataset]:
    """Split a data set into a training part and a validation part.

    The validation set has ``round(val_fraction * n)`` samples. With ``stratify`` (and a
    classification set) each class ``c`` of ``n_c`` samples gives ``floor`` or ``ceil`` of
    ``val_fraction * n_c`` of them to validation, the extra samples going to the classes with
    the largest remainders, so every class's share is within one sample of exact. Without
    ``stratify`` (or for regression) the validation rows are a seeded random subset.

    Parameters
    ----------
    data : Dataset
        The set to split.
    val_fraction : float, default 0.2
        Fraction of samples held out, strictly between 0 and 1.
    seed : int, default 0
        Seed of the choice of rows; the same seed gives the same split.
    stratify : bool, default True
        Keep class proportions equal in both parts (ignored for regression).

    Returns
    -------
    (Dataset, Dataset)
        Training and validation sets, named ``"<name>[train]"`` and ``"<name>[val]"``. They
        are disjoint, their union is ``data``, and rows keep their original order.

    Raises
    ------
    ConfigError
        ``val_fraction`` is not in (0, 1), or it would leave either part empty.
    """
    if not isinstance(data, Dataset):
        raise ConfigError(f"train_val_split needs a Dataset, got {type(data).__name__}")
    f = _check_float("val_fraction", val_fraction, 0.0, 1.0)
    if f in (0.0, 1.0):
        raise ConfigError(f"val_fraction must be strictly between 0 and 1, got {val_fraction}")
    seed = check_count("seed", seed, 0)
    n = len(data)
    n_val = round(f * n)
    if n_val == 0 or n_val == n:
        part = "validation" if n_val == 0 else "training"
        raise ConfigError(f"val_fraction {val_fraction} of {n} samples leaves the {part} set empty")
    rng = np.random.default_rng(seed)

    if stratify and data.n_classes is not None:
        classes, counts = np.unique(data.y, return_counts=True)
        quota = f * counts
        take = np.floor(quota).astype(np.int64)
        extra = n_val - int(take.sum())
        # Largest remainders first; a stable sort breaks ties by class order, so the
        # allocation does not depend on the seed.
        order = np.argsort(-(quota - take), kind="stable")
        take[order[:extra]] += 1
        val_parts = []
        for c, m in zip(classes, take):
            members = np.flatnonzero(data.y == c)
            val_parts.append(rng.permutation(members)[:m])
        val_idx = np.concatenate(val_parts)
    else:
        val_idx = rng.permutation(n)[:n_val]

    is_val = np.zeros(n, dtype=bool)
    is_val[val_idx] = True
    train_idx = np.flatnonzero(~is_val)
    val_idx = np.flatnonzero(is_val)
    train = dataclasses.replace(
        data, X=data.X[train_idx], y=data.y[train_idx], name=f"{data.name}[train]"
    )
    val = dataclasses.replace(data, X=data.X[val_idx], y=data.y[val_idx], name=f"{data.name}[val]")
    return train, val


# --------------------------------------------------------------------------------------------
# Standardisation
# --------------------------------------------------------------------------------------------


class Standardizer:
    """Shift and scale each feature to mean 0 and standard deviation 1.

    .. math:: z = (x - \\mu) / \\sigma,

    with ``mu`` and ``sigma`` (population standard deviation) taken per feature over the
    sample axis 0 of the data given to :meth:`fit`. A constant feature gets ``sigma = 1``, so
    it becomes 0 instead of dividing by zero.

    Fit on the training set only, then transform training, validation and test sets with
    those statistics: fitting on data that is later used for evaluation leaks it into
    training. Keeping to this is the caller's job.

    Attributes
    ----------
    mean_ : ndarray, shape X.shape[1:], float64
        Per-feature mean, set by :meth:`fit`.
    scale_ : ndarray, shape X.shape[1:], float64
        Per-feature standard deviation (1 for constant features), set by :meth:`fit`.
    """

    def __init__(self) -> None:
        self.mean_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None

    def fit(self, X: ArrayLike) -> Standardizer:
        """Compute ``mean_`` and ``scale_`` from ``X`` of shape (n, ...); returns self."""
        X, _ = check_arrays(X)
        if X.ndim < 2:
            raise DataError(f"Standardizer needs X of shape (n, features), got {X.shape}")
        values = X.astype(np.float64)
        mean = values.mean(axis=0)
        scale = values.std(axis=0)
        # Test for constancy exactly (max == min): the float std of identical values can
        # come out as 1e-17 instead of 0, and dividing by it would blow the feature up.
        constant = (values.max(axis=0) == values.min(axis=0)) | (scale == 0.0)
        scale[constant] = 1.0
        self.mean_, self.scale_ = mean, scale
        return self

    def transform(self, X: ArrayLike) -> np.ndarray:
        """Return ``(X - mean_) / scale_``; floating input keeps its dtype, other is float32."""
        if self.mean_ is None or self.scale_ is None:
            raise ConfigError("this Standardizer is not fitted yet; call fit(X_train) first")
        X, _ = check_arrays(X)
        if X.shape[1:] != self.mean_.shape:
            raise DataError(
                f"Standardizer was fitted on features of shape {self.mean_.shape}, got X of "
                f"shape {X.shape}"
            )
        out_dtype = X.dtype if X.dtype.kind == "f" else np.dtype(np.float32)
        return ((X - self.mean_) / self.scale_).astype(out_dtype)

    def fit_transform(self, X: ArrayLike) -> np.ndarray:
        """``fit(X)`` then ``transform(X)``."""
        return self.fit(X).transform(X)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of the fitted statistics: ``{"mean": mean_, "scale": scale_}``."""
        if self.mean_ is None or self.scale_ is None:
            raise ConfigError("this Standardizer is not fitted yet; nothing to save")
        return {"mean": self.mean_.copy(), "scale": self.scale_.copy()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore statistics saved by :meth:`state_dict`, checking them first."""
        if not isinstance(state, dict) or set(state) != {"mean", "scale"}:
            keys = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise DataError(f"Standardizer state needs keys ['mean', 'scale'], got {keys}")
        mean = np.asarray(state["mean"], dtype=np.float64)
        scale = np.asarray(state["scale"], dtype=np.float64)
        if mean.shape != scale.shape:
            raise DataError(
                f"Standardizer state: mean has shape {mean.shape} but scale has {scale.shape}"
            )
        if not (np.isfinite(mean).all() and np.isfinite(scale).all()):
            raise DataError("Standardizer state has NaN or inf")
        if (scale <= 0).any():
            raise DataError(f"Standardizer state: scale must be > 0, got min {scale.min()}")
        self.mean_, self.scale_ = mean.copy(), scale.copy()


# --------------------------------------------------------------------------------------------
# Batching
# --------------------------------------------------------------------------------------------


def _check_batch_size(batch_size: int | None, n: int) -> int:
    """The effective batch size (``n`` for None), or a ConfigError naming the problem."""
    if batch_size is None:
        return n
    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer):
        raise ConfigError(f"batch_size must be an int or None, got {batch_size!r}")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    if batch_size > n:
        raise ConfigError(f"batch_size {batch_size} is larger than the {n} training samples")
    return int(batch_size)


def num_batches(n: int, batch_size: int | None) -> int:
    """Number of batches per epoch: ``ceil(n / batch_size)``, 1 for a full batch (None)."""
    n = _check_size("n", n, 1)
    size = _check_batch_size(batch_size, n)
    return -(-n // size)


def iterate_batches(
    X: np.ndarray,
    y: np.ndarray,
    batch_size: int | None,
    *,
    shuffle: bool,
    rng: np.random.Generator,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """One epoch of mini-batches ``(X_batch, y_batch)``, covering every sample once.

    Arguments are checked when this function is called, not at the first batch.

    Parameters
    ----------
    X : ndarray, shape (n, ...)
        Inputs; axis 0 is the sample axis.
    y : ndarray, shape (n, ...)
        Targets.
    batch_size : int or None
        Samples per batch, ``1 <= batch_size <= n``; None gives one full batch. The last
        batch holds the remaining ``n % batch_size`` samples when that is not zero.
    shuffle : bool
        Visit samples in the order of ``rng.permutation(n)`` instead of ``0 .. n-1``. A full
        batch (None) is yielded as given, without drawing from ``rng``: the order of samples
        inside one batch does not change the mean loss.
    rng : numpy.random.Generator
        Source of the permutation; the same generator state gives the same batches.

    Returns
    -------
    iterator of (ndarray, ndarray)
        ``num_batches(n, batch_size)`` pairs; unshuffled batches are views, shuffled ones
        copies.
    """
    if not isinstance(X, np.ndarray) or not isinstance(y, np.ndarray):
        raise DataError(
            f"iterate_batches needs ndarrays, got {type(X).__name__} and {type(y).__name__}"
        )
    if X.ndim < 1 or y.ndim < 1:
        raise DataError(f"X and y need a sample axis, got shapes {X.shape} and {y.shape}")
    n = X.shape[0]
    if len(y) != n:
        raise DataError(f"X has {n} rows but y has {len(y)}")
    if n < 1:
        raise DataError("cannot make batches from 0 samples")
    size = _check_batch_size(batch_size, n)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {rng!r}")
    return _batches(X, y, size, bool(shuffle) and batch_size is not None, rng)


def _batches(
    X: np.ndarray, y: np.ndarray, size: int, shuffle: bool, rng: np.random.Generator
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    n = X.shape[0]
    if not shuffle:
        for start in range(0, n, size):
            yield X[start : start + size], y[start : start + size]
        return
    order = rng.permutation(n)
    for start in range(0, n, size):
        idx = order[start : start + size]
        yield X[idx], y[idx]


# --------------------------------------------------------------------------------------------
# Checking user arrays
# --------------------------------------------------------------------------------------------


def _as_numeric(name: str, value: ArrayLike) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise DataError(f"{name} cannot be made into an array ({exc})") from exc
    if arr.dtype.kind == "b":
        raise DTypeError(f"{name} has dtype bool; convert it to numbers first")
    if arr.dtype.kind not in "iuf":
        raise DTypeError(f"{name} has dtype {arr.dtype}; expected integer or floating numbers")
    return arr


def check_arrays(
    X: ArrayLike,
    y: ArrayLike | None = None,
    *,
    task: Task | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Check user arrays before training and return them in the dtypes training uses.

    Parameters
    ----------
    X : array_like, shape (n, ...)
        Inputs, at least 1-D (axis 0 is the sample axis; images may be N-D), non-empty,
        integer or floating, finite. Integer inputs become float32; floating keep their dtype.
    y : array_like, shape (n, ...), optional
        Targets with as many rows as ``X``, finite.
    task : {"classification", "regression"} or None
        ``"classification"``: ``y`` must be 1-D whole numbers ``>= 0``; floats such as
        ``3.0`` are accepted and ``y`` is returned as int64. ``"regression"``: integer
        targets become float32. None: only the checks common to both.

    Returns
    -------
    (ndarray, ndarray or None)
        ``X`` and ``y`` (None when not given).

    Raises
    ------
    DTypeError
        ``X`` or ``y`` is bool, object, string or complex; the message names the dtype.
    DataError
        Wrong dimensions, empty ``X``, NaN or inf (with the first bad row and column,
        0-based), mismatched lengths, invalid class labels.
    ConfigError
        ``task`` is not one of the above.
    """
    if task is not None and (not isinstance(task, str) or task not in _TASKS):
        raise ConfigError(f"task must be 'classification', 'regression' or None, got {task!r}")
    X_arr = _as_numeric("X", X)
    if X_arr.ndim < 1:
        raise DataError(f"X must be at least 1-D (samples along axis 0), got a scalar {X_arr}")
    if X_arr.shape[0] == 0 or X_arr.size == 0:
        raise DataError(f"X is empty (shape {X_arr.shape})")
    if X_arr.dtype.kind == "f":
        if not _all_finite(X_arr):
            raise DataError(f"X {_first_nonfinite(X_arr)}")
    else:
        X_arr = X_arr.astype(np.float32)
    if y is None:
        return X_arr, None

    y_arr = _as_numeric("y", y)
    if y_arr.ndim < 1:
        raise DataError(f"y must be at least 1-D, got a scalar {y_arr}")
    if len(y_arr) != len(X_arr):
        raise DataError(f"X has {len(X_arr)} rows but y has {len(y_arr)}")
    if y_arr.dtype.kind == "f" and not np.isfinite(y_arr).all():
        raise DataError(f"y {_first_nonfinite(y_arr)}")

    if task == "classification":
        if y_arr.ndim != 1:
            raise DataError(
                f"classification labels must be 1-D class indices, got y of shape "
                f"{y_arr.shape} (one-hot rows? use y.argmax(axis=1))"
            )
        if y_arr.dtype.kind == "f":
            whole = y_arr == np.round(y_arr)
            if not whole.all():
                row = int(np.argmin(whole))
                raise DataError(f"y has {y_arr[row]} at row {row}, which is not an integer class")
        if (y_arr < 0).any():
            row = int(np.argmax(y_arr < 0))
            raise DataError(
                f"y has negative label {y_arr[row]} at row {row}; class labels must be >= 0"
            )
        if (y_arr > _MAX_CLASS_LABEL).any():
            row = int(np.argmax(y_arr > _MAX_CLASS_LABEL))
            raise DataError(f"y has label {y_arr[row]} at row {row}, too large for a class index")
        y_arr = y_arr.astype(np.int64)
    elif task == "regression" and y_arr.dtype.kind != "f":
        y_arr = y_arr.astype(np.float32)
    return X_arr, y_arr
