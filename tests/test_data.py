"""Tests of descend.data: built-in sets, CSV loading, splitting, standardising, batching."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from descend.data import (
    Dataset,
    Standardizer,
    check_arrays,
    iterate_batches,
    load_csv,
    load_digits,
    num_batches,
    spirals,
    teacher,
    train_val_split,
)
from descend.errors import ConfigError, DataError, DTypeError

# ---------------------------------------------------------------------------------------------
# Dataset
# ---------------------------------------------------------------------------------------------


def _ok_dataset(**changes: object) -> Dataset:
    fields = {
        "X": np.zeros((4, 2), dtype=np.float32),
        "y": np.array([0, 1, 2, 1]),
        "name": "tiny",
        "n_classes": 3,
        "feature_names": ("a", "b"),
    }
    fields.update(changes)
    return Dataset(**fields)


def test_dataset_valid_and_len() -> None:
    d = _ok_dataset()
    assert len(d) == 4
    assert d.n_features == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.name = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("changes", "error", "match"),
    [
        ({"X": np.zeros(4, dtype=np.float32)}, DataError, r"2-D .* shape \(4,\)"),
        ({"X": np.zeros((4, 2), dtype=np.int64)}, DTypeError, "int64"),
        ({"X": np.zeros((0, 2)), "y": np.zeros(0, dtype=np.int64)}, DataError, "no samples"),
        ({"X": np.zeros((4, 0))}, DataError, "no features"),
        ({"y": np.array([0, 1, 2])}, DataError, "X has 4 rows but y has 3"),
        ({"y": np.zeros((4, 1), dtype=np.int64)}, DataError, r"1-D"),
        ({"y": np.array([0, 1, 3, 1])}, DataError, r"label 3 is outside 0..2"),
        ({"y": np.array([0, -1, 2, 1])}, DataError, r"label -1 is outside"),
        ({"y": np.array([0.0, 1.0, 2.0, 1.0])}, DTypeError, "float64"),
        ({"n_classes": 0}, DataError, "n_classes"),
        ({"n_classes": None}, DTypeError, "regression targets"),
        ({"feature_names": ("a",)}, DataError, "1 feature_names given for 2 features"),
        ({"X": np.array([[0, 1], [2, np.nan], [0, 0], [0, 0]])}, DataError, "row 1, column 1"),
        ({"X": [[0.0, 1.0]] * 4}, DataError, "ndarrays"),
    ],
)
def test_dataset_rejects(changes: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        _ok_dataset(**changes)


# ---------------------------------------------------------------------------------------------
# Built-in data sets
# ---------------------------------------------------------------------------------------------


def test_load_digits_shape_and_values() -> None:
    d = load_digits()
    assert d.X.shape == (1797, 64)
    assert d.X.dtype == np.float32
    assert d.y.shape == (1797,)
    assert d.y.dtype == np.int64
    assert d.n_classes == 10
    assert d.X.min() == 0.0
    assert d.X.max() == 1.0
    assert set(np.unique(d.y)) == set(range(10))
    assert d.feature_names is not None and len(d.feature_names) == 64
    # Every value is k / 16 for a whole k in 0..16.
    k = d.X * 16
    assert np.array_equal(k, np.round(k))


def test_load_digits_matches_scikit_learn() -> None:
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    ref = sklearn_datasets.load_digits()
    d = load_digits(dtype=np.float64)
    assert np.array_equal(d.X, ref.data / 16.0)
    assert np.array_equal(d.y, ref.target)
    assert np.array_equal(np.bincount(d.y), np.bincount(ref.target))
    # float32 is also exact: k / 16 is representable.
    assert np.array_equal(load_digits().X, (ref.data / 16.0).astype(np.float32))


def test_load_digits_rejects_integer_dtype() -> None:
    with pytest.raises(DTypeError, match="int32"):
        load_digits(dtype=np.int32)


@pytest.mark.parametrize(("n", "classes"), [(1000, 2), (301, 3), (7, 7), (10, 4)])
def test_spirals_shape_and_balance(n: int, classes: int) -> None:
    d = spirals(n, classes=classes)
    assert d.X.shape == (n, 2)
    assert d.y.shape == (n,)
    assert d.n_classes == classes
    counts = np.bincount(d.y, minlength=classes)
    assert counts.sum() == n
    assert counts.max() - counts.min() <= 1
    # With radius t in [0, 1] and angular jitter only, every point lies in the unit disc.
    assert np.all(np.linalg.norm(d.X, axis=1) <= 1.0 + 1e-6)


def test_spirals_deterministic_per_seed() -> None:
    a, b, c = spirals(200, seed=3), spirals(200, seed=3), spirals(200, seed=4)
    assert np.array_equal(a.X, b.X) and np.array_equal(a.y, b.y)
    assert not np.array_equal(a.X, c.X)


def test_spirals_noise_free_points_lie_on_their_arm() -> None:
    d = spirals(400, classes=2, noise=0.0, turns=1.0, dtype=np.float64)
    r = np.linalg.norm(d.X, axis=1)
    theta = np.arctan2(d.X[:, 1], d.X[:, 0])
    expected = 2 * np.pi * (r + d.y / 2)
    diff = np.angle(np.exp(1j * (theta - expected)))
    keep = r > 1e-9  # the angle of the origin is undefined
    assert np.allclose(diff[keep], 0.0, atol=1e-9)


def test_spirals_not_linearly_separable() -> None:
    d = spirals(1000, noise=0.0, dtype=np.float64)
    A = np.hstack([d.X, np.ones((len(d), 1))])
    w, *_ = np.linalg.lstsq(A, 2.0 * d.y - 1.0, rcond=None)
    accuracy = np.mean((A @ w > 0) == (d.y == 1))
    assert accuracy < 0.75


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": 0}, "n must be an int >= 1"),
        ({"n": 2.5}, "n must be an int"),
        ({"classes": 1}, "classes must be an int >= 2"),
        ({"n": 3, "classes": 4}, "n=3 < classes=4"),
        ({"noise": -0.1}, "noise"),
        ({"turns": 0.0}, "turns must be > 0"),
        ({"seed": -1}, "seed"),
    ],
)
def test_spirals_rejects(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        spirals(**kwargs)


def test_teacher_shape_deterministic_and_seeded() -> None:
    a = teacher(500, features=7, classes=4, hidden=5, seed=1)
    b = teacher(500, features=7, classes=4, hidden=5, seed=1)
    c = teacher(500, features=7, classes=4, hidden=5, seed=2)
    assert a.X.shape == (500, 7)
    assert a.y.shape == (500,)
    assert a.n_classes == 4
    assert np.array_equal(a.X, b.X) and np.array_equal(a.y, b.y)
    assert not np.array_equal(a.X, c.X)
    assert not np.array_equal(a.y, c.y)


def test_teacher_classes_roughly_balanced() -> None:
    d = teacher(5000, seed=0)
    counts = np.bincount(d.y, minlength=10)
    # Equal shares would be 500 each; the output biases are tuned towards that.
    assert counts.min() > 350
    assert counts.max() < 650


def test_teacher_labels_do_not_depend_on_n_or_dtype() -> None:
    small = teacher(50, seed=5)
    large = teacher(300, seed=5, dtype=np.float64)
    assert np.allclose(small.X, large.X[:50], atol=1e-6)
    assert np.array_equal(small.y, large.y[:50])


def test_teacher_label_noise_flips_exact_fraction() -> None:
    clean = teacher(1000, seed=3)
    noisy = teacher(1000, seed=3, noise=0.1)
    assert np.array_equal(clean.X, noisy.X)
    assert np.sum(clean.y != noisy.y) == 100
    every = teacher(200, seed=3, noise=1.0)
    assert np.all(every.y != teacher(200, seed=3).y)


def test_teacher_is_realisable_by_its_architecture() -> None:
    # Labels are argmax of a tanh network: a linear classifier on the teacher's own
    # random features should beat chance by a wide margin, a check that labels are not noise.
    d = teacher(2000, features=5, classes=3, hidden=8, seed=0, dtype=np.float64)
    onehot = np.eye(3)[d.y]
    A = np.hstack([d.X, np.ones((len(d), 1))])
    w, *_ = np.linalg.lstsq(A, onehot, rcond=None)
    accuracy = np.mean(np.argmax(A @ w, axis=1) == d.y)
    assert accuracy > 0.6


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": 0}, "n must be an int >= 1"),
        ({"features": 0}, "features must be an int >= 1"),
        ({"classes": 1}, "classes must be an int >= 2"),
        ({"hidden": 0}, "hidden must be an int >= 1"),
        ({"noise": 1.5}, "noise must lie in"),
        ({"noise": float("nan")}, "noise must be finite"),
        ({"seed": True}, "seed must be an int"),
    ],
)
def test_teacher_rejects(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        teacher(**kwargs)


# ---------------------------------------------------------------------------------------------
# CSV
# ---------------------------------------------------------------------------------------------


def _write(tmp_path: Path, text: str, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_load_csv_with_header_label_by_name(tmp_path: Path) -> None:
    path = _write(tmp_path, "a,label,b\n1.5,0,2\n3,2,4e1\n-1,1,0\n")
    d = load_csv(path, label="label")
    assert d.name == "data"
    assert d.feature_names == ("a", "b")
    assert d.X.dtype == np.float32
    assert np.array_equal(d.X, np.array([[1.5, 2], [3, 40], [-1, 0]], dtype=np.float32))
    assert np.array_equal(d.y, [0, 2, 1])
    assert d.y.dtype == np.int64
    assert d.n_classes == 3


def test_load_csv_without_header_by_index(tmp_path: Path) -> None:
    path = _write(tmp_path, "1,2,3\n4,5,6\n")
    d = load_csv(path, label=0)
    assert d.feature_names is None
    assert np.array_equal(d.X, [[2, 3], [5, 6]])
    assert np.array_equal(d.y, [1, 4])
    assert d.n_classes == 5  # labels kept as given, not re-coded


def test_load_csv_default_label_is_last_column(tmp_path: Path) -> None:
    path = _write(tmp_path, "x1,x2,y\n0.5,1,1\n2,3,0\n")
    d = load_csv(path)
    assert d.feature_names == ("x1", "x2")
    assert np.array_equal(d.y, [1, 0])
    d2 = load_csv(path, label=-2, task="regression", dtype=np.float64)
    assert d2.n_classes is None
    assert d2.y.dtype == np.float64
    assert np.array_equal(d2.y, [1.0, 3.0])
    assert d2.feature_names == ("x1", "y")


def test_load_csv_round_trip_written_array(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 4))
    y = rng.integers(0, 3, size=50)
    rows = [",".join(repr(float(v)) for v in row) + f",{label}" for row, label in zip(X, y)]
    path = _write(tmp_path, "f0,f1,f2,f3,target\n" + "\n".join(rows) + "\n")
    d = load_csv(path, label="target", dtype=np.float64)
    assert np.array_equal(d.X, X)
    assert np.array_equal(d.y, y)
    path2 = _write(tmp_path, "\n".join(rows), "noheader.csv")
    d2 = load_csv(path2, header=False, dtype=np.float64)
    assert np.array_equal(d2.X, X)
    assert d2.feature_names is None


def test_load_csv_quoting_blank_lines_bom_whitespace_and_delimiter(tmp_path: Path) -> None:
    path = tmp_path / "semi.csv"
    path.write_text('\ufeff"a";"b";y\n\n 1 ; "2";0\n   \n3;4;1\n', encoding="utf-8")
    d = load_csv(path, delimiter=";")
    assert d.feature_names == ("a", "b")
    assert np.array_equal(d.X, [[1, 2], [3, 4]])
    assert np.array_equal(d.y, [0, 1])


def test_load_csv_whole_float_labels_accepted(tmp_path: Path) -> None:
    d = load_csv(_write(tmp_path, "1,2.0\n3,0.0\n"))
    assert np.array_equal(d.y, [2, 0])


def test_load_csv_header_true_with_numeric_names(tmp_path: Path) -> None:
    d = load_csv(_write(tmp_path, "1,2,3\n4,5,6\n"), header=True)
    assert d.feature_names == ("1", "2")
    assert len(d) == 1


def test_load_csv_accepts_pathlike_and_str(tmp_path: Path) -> None:
    path = _write(tmp_path, "1,0\n2,1\n")
    assert np.array_equal(load_csv(str(path)).X, load_csv(path).X)


BAD_CSV = [
    # (name, content or None for special cases, kwargs, expected message fragment)
    ("empty", "", {}, "is empty"),
    ("only blank lines", "\n\n  \n", {}, "is empty"),
    ("header only", "a,b,y\n", {}, "has a header row (line 1) but no data rows"),
    ("one column", "1\n2\n", {}, "has 1 column"),
    ("ragged short", "a,b,y\n1,2,0\n1,2,0\n1,2,0\n1,2,0\n1,2,0\n1,2\n", {}, "row 7 has 2 columns"),
    ("ragged long", "1,2,0\n1,2,3,0\n", {}, "row 2 has 4 columns, expected 3"),
    ("ragged counts blank line", "a,b,y\n\n1,2\n", {}, "row 3 has 2 columns, expected 3"),
    ("not a number", "age,x,y\n1,2,0\nabc,3,1\n", {}, "row 3, column 'age': 'abc' is not a number"),
    ("not a number no header", "1,2,0\n1,x,1\n", {"header": False}, "row 2, column 1: 'x'"),
    ("empty cell", "a,b,y\n1,,0\n", {}, "row 2, column 'b': empty cell is not a number"),
    ("nan feature", "x1,x2,y\n1,nan,0\n", {}, "row 2, column 'x2' is NaN"),
    ("inf feature", "x1,x2,y\n1,2,0\n1,2,0\n-inf,2,0\n", {}, "row 4, column 'x1' is -inf"),
    ("unknown label name", "a,b,y\n1,2,0\n", {"label": "target"}, "no column named 'target'"),
    ("label name without header", "1,2,0\n", {"label": "y"}, "no header row"),
    (
        "label name with header=False",
        "a,b,y\n1,2,0\n",
        {"label": "y", "header": False},
        "header=False",
    ),
    ("duplicate label name", "y,a,y\n1,2,0\n", {"label": "y"}, "appears 2 times"),
    ("label index too big", "1,2,0\n", {"label": 3}, "label column 3 is out of range"),
    ("label index too small", "1,2,0\n", {"label": -4}, "valid indices -3..2"),
    ("fractional label", "a,y\n1,0\n1,1\n1,0\n1,2.5\n", {}, "row 5: label 2.5 is not an integer"),
    ("negative label", "a,y\n1,-1\n", {}, "row 2: label -1 is negative"),
    ("nan label", "a,y\n1,nan\n", {}, "row 2: label 'nan' is not a finite number"),
    ("inf regression label", "a,y\n1,inf\n", {"task": "regression"}, "label 'inf' is not a"),
    ("huge label", "a,y\n1,1e300\n", {}, "too large for a class index"),
    ("malformed quoting", 'a,y\n"1"x,0\n', {}, "malformed CSV at line 2"),
]


@pytest.mark.parametrize(
    ("content", "kwargs", "match"),
    [case[1:] for case in BAD_CSV],
    ids=[case[0] for case in BAD_CSV],
)
def test_load_csv_bad_files(tmp_path: Path, content: str, kwargs: dict, match: str) -> None:
    path = _write(tmp_path, content)
    with pytest.raises(DataError) as info:
        load_csv(path, **kwargs)
    assert match in str(info.value)


def test_load_csv_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    with pytest.raises(DataError, match=r"no such file: .*nope\.csv"):
        load_csv(path)


def test_load_csv_directory(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is a directory"):
        load_csv(tmp_path)


def test_load_csv_undecodable(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("a,y\n1,0\ncaf\xe9,1\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8 text: byte 0xe9"):
        load_csv(path)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"label": 1.0}, "label must be a column index"),
        ({"label": True}, "label must be a column index"),
        ({"header": "yes"}, "header must be True, False or 'infer'"),
        ({"delimiter": ",,"}, "delimiter must be one character"),
        ({"delimiter": '"'}, "delimiter must be one character"),
        ({"task": "clustering"}, "task must be"),
    ],
)
def test_load_csv_bad_arguments(tmp_path: Path, kwargs: dict, match: str) -> None:
    path = _write(tmp_path, "1,0\n")
    with pytest.raises(ConfigError, match=match):
        load_csv(path, **kwargs)


def test_load_csv_float_dtype_required(tmp_path: Path) -> None:
    with pytest.raises(DTypeError, match="int64"):
        load_csv(_write(tmp_path, "1,0\n"), dtype=np.int64)


# Cells that are mostly valid, so that generated files get past the first checks and reach
# the label and number handling; a few awkward tokens keep every branch in reach.
_CELL = st.one_of(
    st.integers(-3, 12).map(str),
    st.floats(allow_nan=False, allow_infinity=False, width=32).map(repr),
    st.sampled_from(["", " ", "nan", "-inf", "1e999", "2.0", "2.5", "x", "y", '"3"', '"', "a b"]),
)
_CSV_ALPHABET = st.sampled_from([*'0123456789.,-+e \n\r"nafiy;\t', "nan", "inf", "1e999"])


@st.composite
def _csv_text(draw: st.DrawFn) -> str:
    width = draw(st.integers(1, 4))
    lines = []
    if draw(st.booleans()):
        lines.append(
            ",".join(draw(st.sampled_from(["a", "b", "y", "", "1"])) for _ in range(width))
        )
    for _ in range(draw(st.integers(0, 6))):
        # Mostly rectangular, sometimes ragged.
        n = width if draw(st.integers(0, 9)) else draw(st.integers(0, 5))
        lines.append(",".join(draw(_CELL) for _ in range(n)))
    if draw(st.integers(0, 4)) == 0:
        lines.append("".join(draw(st.lists(_CSV_ALPHABET, max_size=10))))
    return "\n".join(lines)


def _fuzz_load(tmp_path: Path, data: bytes, **kwargs: object) -> None:
    path = tmp_path / "fuzz.csv"
    path.write_bytes(data)
    try:
        d = load_csv(path, **kwargs)
    except DataError:
        return
    assert isinstance(d, Dataset)
    assert np.isfinite(d.X).all()
    assert d.X.shape[0] == d.y.shape[0] >= 1


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text())
def test_load_csv_fuzz_arbitrary_text(tmp_path: Path, text: str) -> None:
    # surrogatepass lets lone surrogates through as invalid UTF-8 bytes, also a DataError.
    _fuzz_load(tmp_path, text.encode("utf-8", "surrogatepass"))


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    text=st.one_of(_csv_text(), st.lists(_CSV_ALPHABET, max_size=60).map("".join)),
    label=st.one_of(st.integers(-4, 4), st.sampled_from(["y", "a", ""])),
    header=st.sampled_from(["infer", True, False]),
    task=st.sampled_from(["classification", "regression"]),
)
def test_load_csv_fuzz_csv_like_text(
    tmp_path: Path, text: str, label: int | str, header: object, task: str
) -> None:
    _fuzz_load(tmp_path, text.encode(), label=label, header=header, task=task)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=200))
def test_load_csv_fuzz_bytes(tmp_path: Path, data: bytes) -> None:
    _fuzz_load(tmp_path, data)


# ---------------------------------------------------------------------------------------------
# Splitting
# ---------------------------------------------------------------------------------------------


def _row_keys(d: Dataset) -> set[bytes]:
    return {row.tobytes() for row in d.X}


def test_split_sizes_disjoint_union() -> None:
    d = load_digits(dtype=np.float64)
    # Tag every row with its index so that duplicates cannot hide overlap.
    tagged = dataclasses.replace(
        d, X=np.hstack([d.X, np.arange(len(d))[:, None]]), feature_names=None
    )
    train, val = train_val_split(tagged, 0.2, seed=1)
    assert len(val) == round(0.2 * 1797)
    assert len(train) + len(val) == 1797
    ids_train = train.X[:, -1].astype(int)
    ids_val = val.X[:, -1].astype(int)
    assert not set(ids_train) & set(ids_val)
    assert sorted(np.concatenate([ids_train, ids_val])) == list(range(1797))
    assert np.array_equal(train.y, d.y[ids_train])
    assert train.name == "digits[train]" and val.name == "digits[val]"
    assert train.n_classes == val.n_classes == 10
    assert train.feature_names is None
    assert load_digits().feature_names == train_val_split(d)[0].feature_names


@pytest.mark.parametrize("fraction", [0.1, 0.2, 0.33, 0.5, 0.9])
def test_split_is_stratified(fraction: float) -> None:
    d = teacher(997, classes=7, seed=2)
    train, val = train_val_split(d, fraction, seed=0)
    counts = np.bincount(d.y, minlength=7)
    val_counts = np.bincount(val.y, minlength=7)
    assert np.all(np.abs(val_counts - fraction * counts) < 1.0)
    assert np.array_equal(val_counts + np.bincount(train.y, minlength=7), counts)


def test_split_seeded() -> None:
    d = spirals(300)
    a, _ = train_val_split(d, seed=4)
    b, _ = train_val_split(d, seed=4)
    c, _ = train_val_split(d, seed=5)
    assert np.array_equal(a.X, b.X)
    assert _row_keys(a) != _row_keys(c)


def test_split_unstratified_and_regression() -> None:
    d = teacher(200, seed=0)
    train, val = train_val_split(d, 0.25, stratify=False)
    assert (len(train), len(val)) == (150, 50)
    reg = Dataset(d.X, d.y.astype(np.float64), "reg", None)
    train, val = train_val_split(reg, 0.25)
    assert (len(train), len(val)) == (150, 50)
    assert val.n_classes is None


@pytest.mark.parametrize(
    ("n", "fraction", "match"),
    [
        (10, 0.0, "strictly between 0 and 1"),
        (10, 1.0, "strictly between 0 and 1"),
        (10, -0.5, "val_fraction must lie in"),
        (10, 0.01, "of 10 samples leaves the validation set empty"),
        (10, 0.99, "of 10 samples leaves the training set empty"),
        (1, 0.5, "of 1 samples leaves the"),
    ],
)
def test_split_rejects(n: int, fraction: float, match: str) -> None:
    d = teacher(n, seed=0)
    with pytest.raises(ConfigError, match=match):
        train_val_split(d, fraction)


# ---------------------------------------------------------------------------------------------
# Standardizer
# ---------------------------------------------------------------------------------------------


def test_standardizer_mean_zero_std_one() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(loc=[3.0, -7.0, 100.0], scale=[0.5, 4.0, 20.0], size=(500, 3))
    Z = Standardizer().fit_transform(X)
    assert Z.dtype == np.float64
    assert np.allclose(Z.mean(axis=0), 0.0, atol=1e-12)
    assert np.allclose(Z.std(axis=0), 1.0)


def test_standardizer_constant_column() -> None:
    X = np.column_stack([np.full(10, 0.1, dtype=np.float32), np.arange(10, dtype=np.float32)])
    s = Standardizer().fit(X)
    assert s.scale_ is not None and s.scale_[0] == 1.0
    Z = s.transform(X)
    assert Z.dtype == np.float32
    assert np.all(np.isfinite(Z))
    assert np.allclose(Z[:, 0], 0.0)


def test_standardizer_uses_training_statistics_only() -> None:
    train = np.array([[0.0], [2.0]])
    test = np.array([[4.0], [6.0]])
    s = Standardizer().fit(train)
    assert np.allclose(s.transform(test), [[3.0], [5.0]])
    assert s.mean_ is not None and s.mean_[0] == 1.0


def test_standardizer_state_dict_round_trip() -> None:
    X = np.random.default_rng(1).standard_normal((20, 4))
    s = Standardizer().fit(X)
    state = s.state_dict()
    assert set(state) == {"mean", "scale"}
    assert all(isinstance(v, np.ndarray) for v in state.values())
    state["mean"][0] = 99.0  # a copy: the fitted standardiser must not change
    assert s.mean_ is not None and s.mean_[0] != 99.0
    t = Standardizer()
    t.load_state_dict(s.state_dict())
    assert np.array_equal(t.transform(X), s.transform(X))


@pytest.mark.parametrize(
    ("state", "match"),
    [
        ({"mean": np.zeros(2)}, "keys"),
        ({"mean": np.zeros(2), "scale": np.ones(3)}, "shape"),
        ({"mean": np.zeros(2), "scale": np.array([1.0, 0.0])}, "scale must be > 0"),
        ({"mean": np.array([np.nan, 0.0]), "scale": np.ones(2)}, "NaN"),
    ],
)
def test_standardizer_load_rejects(state: dict, match: str) -> None:
    with pytest.raises(DataError, match=match):
        Standardizer().load_state_dict(state)


def test_standardizer_errors() -> None:
    with pytest.raises(ConfigError, match="not fitted"):
        Standardizer().transform(np.zeros((2, 2)))
    s = Standardizer().fit(np.zeros((3, 2)))
    with pytest.raises(DataError, match=r"fitted on features of shape \(2,\)"):
        s.transform(np.zeros((3, 5)))
    with pytest.raises(DataError, match="NaN at row 1, column 0"):
        Standardizer().fit(np.array([[1.0], [np.nan]]))


# ---------------------------------------------------------------------------------------------
# Batching
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "batch_size"), [(10, 3), (10, 5), (10, 10), (7, 1), (1437, 64)])
@pytest.mark.parametrize("shuffle", [False, True])
def test_batches_cover_each_sample_once(n: int, batch_size: int, shuffle: bool) -> None:
    X = np.arange(n, dtype=np.float64)[:, None] * np.ones((1, 3))
    y = np.arange(n)
    batches = list(iterate_batches(X, y, batch_size, shuffle=shuffle, rng=np.random.default_rng(0)))
    assert len(batches) == num_batches(n, batch_size) == -(-n // batch_size)
    seen = np.concatenate([yb for _, yb in batches])
    assert sorted(seen) == list(range(n))
    sizes = [len(yb) for _, yb in batches]
    assert all(s == batch_size for s in sizes[:-1])
    assert sizes[-1] == (n % batch_size or batch_size)
    for xb, yb in batches:
        assert np.array_equal(xb[:, 0], yb)  # rows and labels stay paired
    if not shuffle:
        assert np.array_equal(seen, np.arange(n))


def test_batches_shuffle_deterministic_and_different_epochs() -> None:
    X = np.arange(100.0)[:, None]
    y = np.arange(100)

    def order(rng: np.random.Generator) -> np.ndarray:
        return np.concatenate([b for _, b in iterate_batches(X, y, 16, shuffle=True, rng=rng)])

    a, b = order(np.random.default_rng(7)), order(np.random.default_rng(7))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, np.arange(100))
    rng = np.random.default_rng(7)
    first, second = order(rng), order(rng)
    assert not np.array_equal(first, second)


def test_full_batch() -> None:
    X = np.arange(12.0).reshape(6, 2)
    y = np.arange(6)
    rng = np.random.default_rng(0)
    before = rng.bit_generator.state
    batches = list(iterate_batches(X, y, None, shuffle=True, rng=rng))
    assert len(batches) == 1 == num_batches(6, None)
    assert np.array_equal(batches[0][0], X) and np.array_equal(batches[0][1], y)
    assert rng.bit_generator.state == before  # a full batch draws nothing


@pytest.mark.parametrize(
    ("batch_size", "error", "match"),
    [
        (5000, ConfigError, "batch_size 5000 is larger than the 1437 training samples"),
        (0, ConfigError, "batch_size must be >= 1, got 0"),
        (-3, ConfigError, "batch_size must be >= 1, got -3"),
        (2.0, ConfigError, "batch_size must be an int or None"),
        (True, ConfigError, "batch_size must be an int or None"),
    ],
)
def test_batches_reject_batch_size(batch_size: object, error: type, match: str) -> None:
    X, y = np.zeros((1437, 2)), np.zeros(1437)
    rng = np.random.default_rng(0)
    # Raised at the call, not at the first next().
    with pytest.raises(error, match=match):
        iterate_batches(X, y, batch_size, shuffle=True, rng=rng)  # type: ignore[arg-type]
    with pytest.raises(error, match=match):
        num_batches(1437, batch_size)  # type: ignore[arg-type]


def test_batches_reject_other_arguments() -> None:
    with pytest.raises(DataError, match="X has 4 rows but y has 3"):
        iterate_batches(
            np.zeros((4, 1)), np.zeros(3), 2, shuffle=False, rng=np.random.default_rng()
        )
    with pytest.raises(TypeError, match=r"rng must be a numpy\.random\.Generator"):
        iterate_batches(np.zeros((4, 1)), np.zeros(4), 2, shuffle=True, rng=0)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="n must be an int >= 1"):
        num_batches(0, 1)


# ---------------------------------------------------------------------------------------------
# check_arrays
# ---------------------------------------------------------------------------------------------


def test_check_arrays_accepts_and_converts() -> None:
    X, y = check_arrays([[1, 2], [3, 4]], [1.0, 0.0], task="classification")
    assert X.dtype == np.float32
    assert y is not None and y.dtype == np.int64
    assert np.array_equal(y, [1, 0])
    X64 = np.ones((3, 2))
    out, none = check_arrays(X64)
    assert out is X64 and none is None
    _, y_reg = check_arrays(X64, np.array([1, 2, 3]), task="regression")
    assert y_reg is not None and y_reg.dtype == np.float32
    images, _ = check_arrays(np.zeros((5, 1, 8, 8)), np.arange(5), task="classification")
    assert images.shape == (5, 1, 8, 8)
    vec, _ = check_arrays(np.arange(4.0))
    assert vec.shape == (4,)


def _nan_at(shape: tuple[int, ...], index: tuple[int, ...], value: float = np.nan) -> np.ndarray:
    a = np.zeros(shape)
    a[index] = value
    return a


@pytest.mark.parametrize(
    ("X", "y", "task", "error", "match"),
    [
        (_nan_at((20, 5), (12, 3)), None, None, DataError, "X has NaN at row 12, column 3"),
        (_nan_at((20, 5), (4, 0), np.inf), None, None, DataError, "X has inf at row 4, column 0"),
        (_nan_at((6,), (2,), -np.inf), None, None, DataError, "X has -inf at row 2"),
        (_nan_at((3, 2, 2), (1, 0, 1)), None, None, DataError, r"row 1, position \(0, 1\)"),
        (np.zeros((0, 3)), None, None, DataError, r"X is empty \(shape \(0, 3\)\)"),
        (np.zeros((3, 0)), None, None, DataError, "X is empty"),
        (np.float64(1.0), None, None, DataError, "at least 1-D"),
        (np.zeros((2, 2), dtype=bool), None, None, DTypeError, "X has dtype bool"),
        (np.array([[1, "a"]], dtype=object), None, None, DTypeError, "X has dtype object"),
        (np.array(["1", "2"]), None, None, DTypeError, "X has dtype <U1"),
        (np.zeros(2, dtype=complex), None, None, DTypeError, "complex128"),
        ([[1.0, 2.0], [3.0]], None, None, DataError, "cannot be made into an array"),
        (np.zeros((100, 2)), np.zeros(99), None, DataError, "X has 100 rows but y has 99"),
        (np.zeros((3, 2)), np.array([True, False, True]), None, DTypeError, "y has dtype bool"),
        (np.zeros((3, 2)), np.array([0, 1, None]), None, DTypeError, "y has dtype object"),
        (np.zeros((3, 2)), _nan_at((3,), (2,)), "regression", DataError, "y has NaN at row 2"),
        (np.zeros((3, 2)), [0, 1.5, 2], "classification", DataError, "1.5 at row 1"),
        (np.zeros((3, 2)), [0, -1, 2], "classification", DataError, "negative label -1 at row 1"),
        (np.zeros((3, 2)), np.eye(3), "classification", DataError, "one-hot"),
        (np.zeros((3, 2)), [0, 1, 2], "ranking", ConfigError, "task must be"),
    ],
)
def test_check_arrays_rejects(X: object, y: object, task: object, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        check_arrays(X, y, task=task)  # type: ignore[arg-type]


def test_load_csv_text_labels_are_classes_as_label_encoder_numbers_them(tmp_path: Path) -> None:
    from sklearn.preprocessing import LabelEncoder

    labels = ["dog", "cat", " bird", "cat", "Zebra", "dog"]
    path = _write(tmp_path, "x,y\n" + "".join(f"{i},{c}\n" for i, c in enumerate(labels)))
    for task in ("classification", "infer"):
        d = load_csv(path, task=task)
        encoder = LabelEncoder().fit([c.strip() for c in labels])
        assert d.classes == tuple(encoder.classes_) == ("Zebra", "bird", "cat", "dog")
        assert d.y.tolist() == encoder.transform([c.strip() for c in labels]).tolist()
        assert d.n_classes == 4 and d.y.dtype == np.int64
    train, val = train_val_split(d, 0.5, seed=0)
    assert train.classes == val.classes == d.classes


@pytest.mark.parametrize(
    ("text", "needle"),
    [("x,y\n1,cat\n2,3\n", "mixes text (row 2: 'cat') and numbers (row 3: '3')"),
     ("x,y\n1,cat\n2, \n", "row 3: the label is empty")],
    ids=["text-and-numbers", "empty-label"],
)
def test_load_csv_text_labels_refused(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(DataError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        load_csv(_write(tmp_path, text))


@pytest.mark.parametrize(
    ("labels", "task"),
    [(["a", "b"], "classification"), ([0.0, 1.0, 2.0, 1.0], "classification"),
     ([float(v) for v in range(20)], "classification"),
     ([float(v) for v in range(21)], "regression"), ([0.5, 1.0], "regression"),
     ([100.0, 250.0, 999.0] * 3, "classification")],
    ids=["text", "few-integers", "twenty-integers", "twenty-one-integers", "fractions",
         "three-large-integers"],
)
def test_infer_task(labels: list, task: str) -> None:
    from descend.data import infer_task

    values = [None if isinstance(v, str) else v for v in labels]
    assert infer_task(values) == task


def test_load_csv_infers_a_regression_from_many_distinct_integers(tmp_path: Path) -> None:
    path = _write(tmp_path, "x,price\n" + "".join(f"{i},{1000 + 37 * i}\n" for i in range(50)))
    d = load_csv(path, task="infer")
    assert d.n_classes is None and d.y.dtype == np.float32 and d.y[1] == 1037
