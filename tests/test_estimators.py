"""The scikit-learn estimators: scikit-learn's own checks, its MLP's attributes, our additions."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils import get_tags  # noqa: E402
from sklearn.utils.estimator_checks import check_estimator  # noqa: E402

import descend as ds  # noqa: E402
from descend.errors import ConfigError, ConfigTypeError, DataError  # noqa: E402


def _blobs(n=300, seed=0):
    rng = np.random.default_rng(seed)
    centers = np.array([[2.0, 0.0], [-2.0, 0.0], [0.0, 2.5]])
    y = rng.integers(0, 3, n)
    X = centers[y] + 0.5 * rng.standard_normal((n, 2))
    labels = np.array(["cat", "dog", "emu"])[y]
    return X.astype(np.float32), labels


@contextlib.contextmanager
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


# ----------------------------------------------------------------------- scikit-learn's checks
@pytest.mark.parametrize("make", [
    lambda: ds.MLPClassifier(hidden_layer_sizes=(16,), max_iter=30),
    lambda: ds.MLPRegressor(hidden_layer_sizes=(16,), max_iter=30),
], ids=["classifier", "regressor"])
def test_check_estimator_passes_with_no_expected_failures(make):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(make(), on_fail=None)
    failed = {r["check_name"]: repr(r["exception"])[:300] for r in results
              if r["status"] == "failed"}
    assert failed == {}
    passed = [r["check_name"] for r in results if r["status"] == "passed"]
    # the checks named above ran and passed
    for name in ("check_methods_subset_invariance", "check_estimators_unfitted",
                 "check_n_features_in", "check_complex_data", "check_fit2d_1sample",
                 "check_fit1d", "check_requires_y_none", "check_estimator_sparse_array",
                 "check_estimators_empty_data_messages", "check_dtype_object"):
        assert name in passed


def test_tags_say_what_the_estimators_take():
    for est in (ds.MLPClassifier(), ds.MLPRegressor()):
        tags = get_tags(est)
        assert tags.target_tags.required and tags.input_tags.sparse
    assert get_tags(ds.MLPRegressor()).target_tags.multi_output
    assert get_tags(ds.MLPClassifier()).estimator_type == "classifier"


def test_pipeline_cross_validation_and_grid_search():
    X, y = _blobs(240)
    pipe = make_pipeline(StandardScaler(), ds.MLPClassifier(hidden_layer_sizes=8, max_iter=30,
                                                            random_state=0))
    with _quiet():
        scores = cross_val_score(pipe, X, y, cv=3)
        grid = GridSearchCV(ds.MLPClassifier(max_iter=20, random_state=0),
                            {"hidden_layer_sizes": [(2,), (16,)]}, cv=3).fit(X, y)
    assert scores.min() > 0.9
    results = grid.cv_results_["mean_test_score"]
    assert np.isfinite(results).all()
    assert grid.best_params_["hidden_layer_sizes"] == [(2,), (16,)][int(np.argmax(results))]


# ----------------------------------------------------------------------- fitting and predicting
def test_classifier_fit_predict_proba_score_with_string_labels():
    X, y = _blobs()
    clf = ds.MLPClassifier(hidden_layer_sizes=(16,), max_iter=30, batch_size=32, random_state=0)
    with _quiet():
        assert clf.fit(X, y) is clf
    assert list(clf.classes_) == ["cat", "dog", "emu"]
    proba = clf.predict_proba(X)
    assert proba.shape == (300, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X)), proba, rtol=1e-10)
    pred = clf.predict(X)
    assert np.array_equal(pred, clf.classes_[proba.argmax(axis=1)])
    assert clf.score(X, y) == pytest.approx(np.mean(pred == y))
    assert clf.score(X, y) > 0.95
    assert clf.n_features_in_ == 2 and clf.n_iter_ == len(clf.history_.epochs)


def test_coefs_and_intercepts_reproduce_the_predictions():
    X, y = _blobs(120)
    clf = ds.MLPClassifier(hidden_layer_sizes=5, activation="tanh", max_iter=5,
                           random_state=0)
    with _quiet():
        clf.fit(X, y)
    assert [c.shape for c in clf.coefs_] == [(2, 5), (5, 3)]
    assert [b.shape for b in clf.intercepts_] == [(5,), (3,)]
    # the forward pass written out by hand from the published weights (float64)
    W0, W1 = (c.astype(np.float64) for c in clf.coefs_)
    b0, b1 = (b.astype(np.float64) for b in clf.intercepts_)
    logits = np.tanh(X @ W0 + b0) @ W1 + b1
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(clf.predict_proba(X), p / p.sum(axis=1, keepdims=True),
                               atol=1e-5)


def test_predictions_do_not_depend_on_the_other_rows():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((700, 40))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    with _quiet():
        clf = ds.MLPClassifier(max_iter=3, random_state=0).fit(X, y)
        reg = ds.MLPRegressor(max_iter=3, random_state=0).fit(X, X[:, :3])
    for method in (clf.predict_proba, reg.predict):
        full = method(X)
        alone = np.concatenate([method(X[i:i + 1]) for i in range(0, 700, 23)])
        assert np.array_equal(alone, full[::23])  # bit for bit
        order = rng.permutation(700)
        assert np.array_equal(method(X[order]), full[order])
        assert np.array_equal(method(X[:13]), full[:13])


def test_sparse_input_gives_the_dense_results():
    sparse = pytest.importorskip("scipy.sparse")
    X, y = _blobs(90)
    X[np.abs(X) < 1] = 0
    with _quiet():
        dense = ds.MLPClassifier(max_iter=5, random_state=0).fit(X, y)
        sp = ds.MLPClassifier(max_iter=5, random_state=0).fit(sparse.csc_matrix(X), y)
    assert np.array_equal(sp.predict_proba(sparse.coo_matrix(X)), dense.predict_proba(X))


def test_regressor_learns_a_smooth_function_and_two_outputs():
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, (400, 1)).astype(np.float32)
    y = np.sin(X[:, 0]) + 0.05 * rng.standard_normal(400)
    with _quiet():
        reg = ds.MLPRegressor(hidden_layer_sizes=(32,), activation="tanh", max_iter=200,
                              batch_size=None, lr="wolfe", random_state=0).fit(X, y)
    pred = reg.predict(X)
    assert pred.shape == (400,) and pred.dtype == np.float64
    r2 = 1 - ((y - pred) ** 2).sum() / ((y - y.mean()) ** 2).sum()
    assert reg.score(X, y) == pytest.approx(r2, rel=1e-9)
    assert r2 > 0.95
    Y = np.column_stack([np.sin(X[:, 0]), np.cos(X[:, 0])])
    with _quiet():
        reg2 = ds.MLPRegressor(hidden_layer_sizes=(32,), activation="tanh", max_iter=200,
                               batch_size=None, lr="wolfe", random_state=0).fit(X, Y)
    assert reg2.predict(X).shape == (400, 2) and reg2.n_outputs_ == 2
    assert reg2.score(X, Y) > 0.95


def test_same_seed_same_model_none_differs():
    X, y = _blobs()
    with _quiet():
        a = ds.MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=1).fit(X, y)
        b = ds.MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=1).fit(X, y)
        c = ds.MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=2).fit(X, y)
        d = ds.MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=None)
        first = d.fit(X, y).predict_proba(X)
        second = d.fit(X, y).predict_proba(X)
    assert np.array_equal(a.predict_proba(X), b.predict_proba(X))
    assert not np.array_equal(a.predict_proba(X), c.predict_proba(X))
    assert not np.array_equal(first, second)


# ----------------------------------------------------------------------- scikit-learn's MLP API
def test_learned_attributes_agree_with_the_history():
    X, y = _blobs(200)
    with _quiet():
        clf = ds.MLPClassifier(hidden_layer_sizes=(8,), max_iter=12, random_state=0).fit(X, y)
    epochs = [e.train_loss for e in clf.history_.epochs]
    assert clf.loss_curve_ == pytest.approx(epochs)
    assert clf.loss_ == clf.loss_curve_[-1] and clf.best_loss_ == min(clf.loss_curve_)
    assert clf.n_iter_ == len(clf.loss_curve_) == 12
    assert clf.t_ == 200 * 12
    assert clf.validation_scores_ is None and clf.best_validation_score_ is None
    assert clf.stop_reason_.criterion == "max_iter"
    assert "max_iter=12" in str(clf.stop_reason_)


def test_max_iter_reached_warns_like_scikit_learn():
    X, y = _blobs(60)
    with pytest.warns(ConvergenceWarning, match="max_iter=2"):
        ds.MLPClassifier(max_iter=2, random_state=0).fit(X, y)


def test_tol_and_n_iter_no_change_stop_as_scikit_learn_does():
    X, y = _blobs(200)
    clf = ds.MLPClassifier(hidden_layer_sizes=(8,), max_iter=500, tol=1e-2, n_iter_no_change=3,
                           random_state=0).fit(X, y)
    curve = clf.loss_curve_
    assert clf.stop_reason_.criterion == "no_improvement" and clf.n_iter_ < 500
    assert clf.history_.stop_reason is clf.stop_reason_
    # recompute scikit-learn's rule from the curve: count epochs without a loss below
    # best - tol; training stops when the count exceeds n_iter_no_change
    best, count, stop_at = np.inf, 0, None
    for i, loss in enumerate(curve):
        count = count + 1 if loss > best - 1e-2 else 0
        best = min(best, loss)
        if count > 3:
            stop_at = i
            break
    assert stop_at == len(curve) - 1


def test_early_stopping_keeps_the_best_validation_score():
    X, y = _blobs(300)
    clf = ds.MLPClassifier(hidden_layer_sizes=(8,), max_iter=300, early_stopping=True,
                           validation_fraction=0.2, n_iter_no_change=4, tol=0.0,
                           random_state=0).fit(X, y)
    scores = clf.validation_scores_
    assert len(scores) == clf.n_iter_ == len(clf.history_.epochs)
    assert clf.best_validation_score_ == max(scores) and clf.best_loss_ is None
    assert clf.stop_reason_.criterion == "no_improvement"
    assert "validation score" in str(clf.stop_reason_)
    # trained on 80% of the data: 240 rows per epoch
    assert clf.t_ == 240 * clf.n_iter_
    # the last 5 epochs did not improve on the best score, which came before them
    assert max(scores[-5:]) <= max(scores[:-5])
    # accuracy is a multiple of 1/60 on a validation set of 60 rows
    assert np.allclose(np.array(scores) * 60, np.round(np.array(scores) * 60))


def test_partial_fit_needs_classes_first_and_continues():
    X, y = _blobs(200)
    clf = ds.MLPClassifier(hidden_layer_sizes=(8,), random_state=0)
    with pytest.raises(DataError, match="classes must be passed on the first call"):
        clf.partial_fit(X[:50], y[:50])
    # the first batch holds no "emu": classes= announces it
    first = y != "emu"
    clf.partial_fit(X[first][:40], y[first][:40], classes=["cat", "dog", "emu"])
    assert list(clf.classes_) == ["cat", "dog", "emu"] and clf.n_iter_ == 1
    for _ in range(15):
        clf.partial_fit(X, y)
    assert clf.n_iter_ == 16 and clf.t_ == 40 + 15 * 200
    assert clf.loss_curve_[-1] < clf.loss_curve_[1]
    assert clf.score(X, y) > 0.9
    with pytest.raises(DataError, match="not in classes"):
        clf.partial_fit(X[:3], np.array(["cat", "dog", "yak"]))


def test_partial_fit_regressor_reduces_the_loss():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 3))
    y = X @ np.array([1.0, -2.0, 0.5])
    reg = ds.MLPRegressor(hidden_layer_sizes=(16,), random_state=0)
    for _ in range(10):
        reg.partial_fit(X, y)
    assert reg.n_iter_ == 10 and reg.loss_curve_[-1] < 0.5 * reg.loss_curve_[0]


def test_warm_start_continues_from_the_fitted_parameters():
    X, y = _blobs(200)
    with _quiet():
        warm = ds.MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, warm_start=True,
                                random_state=0).fit(X, y)
        before = [c.copy() for c in warm.coefs_]
        warm.fit(X, y)
        cold = ds.MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
        cold.fit(X, y)
        refit = [c.copy() for c in cold.coefs_]
        cold.fit(X, y)
    assert warm.n_iter_ == 10 and len(warm.loss_curve_) == 10
    assert warm.loss_curve_[5] < warm.loss_curve_[0]  # did not start from scratch
    assert not np.array_equal(warm.coefs_[0], before[0])
    # without warm_start, a second fit starts again from the same initial weights
    assert np.array_equal(cold.coefs_[0], refit[0]) and cold.n_iter_ == 5


def test_feature_names_in_with_a_data_frame():
    pd = pytest.importorskip("pandas")
    X, y = _blobs(60)
    frame = pd.DataFrame(X, columns=["width", "height"])
    with _quiet():
        clf = ds.MLPClassifier(max_iter=3, random_state=0).fit(frame, y)
    assert list(clf.feature_names_in_) == ["width", "height"]
    with pytest.warns(UserWarning, match="feature names"):
        clf.predict(X)


def test_lr_accepts_a_rule_object_and_fitting_does_not_change_it():
    X, y = _blobs(100)
    rule = ds.optim.Armijo(c1=0.2)
    clf = ds.MLPClassifier(hidden_layer_sizes=(4,), lr=rule, max_iter=3, random_state=0)
    before = dict(vars(rule))
    with _quiet():
        clf.fit(X, y)
    assert vars(rule) == before and clf.lr is rule
    assert clf.optimizer_.rule is not rule and clf.optimizer_.rule.c1 == 0.2
    assert all(np.isfinite(clf.history_.lr))


def test_hyper_parameters_stored_verbatim_and_cloneable():
    clf = ds.MLPClassifier(hidden_layer_sizes=(7, 5), lr="invsqrt:0.3", max_iter=3)
    params = clf.get_params()
    assert params["hidden_layer_sizes"] == (7, 5) and params["lr"] == "invsqrt:0.3"
    twin = clone(clf)
    assert twin.get_params() == params and twin is not clf
    assert not hasattr(twin, "model_")
    clf.set_params(max_iter=4)
    assert clf.max_iter == 4


def test_import_descend_does_not_import_scikit_learn():
    code = "import sys, descend; print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"


# ----------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("make", "error", "needle"),
    [
        (lambda: ds.MLPClassifier().predict(np.ones((2, 2))), sklearn.exceptions.NotFittedError,
         "not fitted"),
        (lambda: ds.MLPClassifier(hidden_layer_sizes=(0,)).fit(*_blobs()), ConfigError,
         "hidden_layer_sizes"),
        (lambda: ds.MLPClassifier(optimizer="lbfgs").fit(*_blobs()), ConfigError, "'lbfgs'"),
        (lambda: ds.MLPClassifier(lr="fast").fit(*_blobs()), ConfigError, "unknown step rule"),
        (lambda: ds.MLPClassifier(max_iter=0).fit(*_blobs()), ConfigError, "max_iter"),
        (lambda: ds.MLPClassifier(validation_fraction=1.0).fit(*_blobs()), ConfigError,
         "validation_fraction"),
        (lambda: ds.MLPClassifier(batch_size=0).fit(*_blobs()), ConfigError, "batch_size"),
        (lambda: ds.MLPClassifier().fit(np.ones((5, 2)), np.zeros(5)), DataError, "1 class"),
        (lambda: ds.MLPClassifier().fit(np.ones((1, 2)), [3]), DataError, "1 class"),
        (lambda: ds.MLPClassifier().fit(np.ones((5, 2)), np.zeros(4)), ValueError, "5"),
        (lambda: ds.MLPClassifier().fit(np.arange(6.0).reshape(3, 2), [0.5, 1.25, 2.0]),
         DataError, "Unknown label type: 'continuous'.*0.5 at index 0.*MLPRegressor"),
        (lambda: ds.MLPClassifier().fit(np.ones(5), np.arange(5)), ValueError,
         "Expected 2D array"),
        (lambda: ds.MLPRegressor().fit(np.ones((5, 2)), None), DataError,
         "requires y to be passed, but the target y is None"),
        (lambda: ds.MLPClassifier(max_iter=1).fit(*_blobs()).predict(np.ones((3, 5))),
         ValueError, "5 features"),
    ],
)
def test_bad_input(make, error, needle):
    with _quiet(), pytest.raises(error, match=needle):
        make()


ESTIMATORS = {"classifier": ds.MLPClassifier, "regressor": ds.MLPRegressor}


def _regression(n=40, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 2)).astype(np.float32)
    return X, X[:, 0] - 0.5 * X[:, 1]


def _data_for(kind):
    return _blobs(40) if kind == "classifier" else _regression()


@pytest.mark.parametrize("kind", ESTIMATORS)
@pytest.mark.parametrize(
    ("value", "error", "shown"),
    [
        (-1, ConfigError, "-1"),
        (np.int64(-5), ConfigError, r"np\.int64\(-5\)"),
        (2**32, ConfigError, "4294967296"),
        (2**40, ConfigError, "1099511627776"),
        ("abc", ConfigTypeError, r"'abc' \(str\)"),
        (1.5, ConfigTypeError, r"1\.5 \(float\)"),
        (1.0, ConfigTypeError, r"1\.0 \(float\)"),
        (True, ConfigTypeError, r"True \(bool\)"),  # refused like every bool in descend
        (np.bool_(False), ConfigTypeError, r"np\.False_ \(bool\)"),
        (np.random, ConfigTypeError, r"<module 'numpy\.random'.*\(module\)"),
        ([1, 2], ConfigTypeError, r"\[1, 2\] \(list\)"),
    ],
    ids=["-1", "np-int-negative", "2**32", "2**40", "str", "float", "whole-float", "bool",
         "np-bool", "np.random-module", "list"],
)
def test_bad_random_state_is_named_before_numpy_sees_it(kind, value, error, shown):
    # scikit-learn's checks would let NumPy raise "Seed must be between 0 and 2**32 - 1"
    # or "'abc' cannot be used to seed a numpy.random.RandomState instance"
    est = ESTIMATORS[kind](hidden_layer_sizes=(4,), max_iter=1, random_state=value)
    needle = rf"random_state must be None, an int in \[0, 2\*\*32\).*got {shown}"
    with _quiet(), pytest.raises(error, match=needle):
        est.fit(*_data_for(kind))
    fresh = ESTIMATORS[kind](hidden_layer_sizes=(4,), random_state=value)
    extra = {"classes": ["cat", "dog", "emu"]} if kind == "classifier" else {}
    with _quiet(), pytest.raises(error, match=needle):
        fresh.partial_fit(*_data_for(kind), **extra)
    assert not hasattr(fresh, "model_")
    assert issubclass(ConfigTypeError, TypeError) and issubclass(ConfigError, ValueError)


@pytest.mark.parametrize("kind", ESTIMATORS)
@pytest.mark.parametrize(
    "make",
    [lambda: None, lambda: 0, lambda: 2**32 - 1, lambda: np.int64(7), lambda: np.uint32(3),
     lambda: np.random.RandomState(0), lambda: np.random.default_rng(0)],
    ids=["None", "0", "2**32-1", "np.int64", "np.uint32", "RandomState", "Generator"],
)
def test_valid_random_states_fit(kind, make):
    with _quiet():
        est = ESTIMATORS[kind](hidden_layer_sizes=(4,), max_iter=2, random_state=make())
        est.fit(*_data_for(kind))
    assert np.all(np.isfinite(est.predict(_data_for(kind)[0][:5]).astype(float)
                              if kind == "regressor" else est.predict_proba(_blobs(5)[0])))


@pytest.mark.parametrize("kind", ESTIMATORS)
def test_a_generator_random_state_is_reproducible_from_its_seed(kind):
    X, y = _data_for(kind)
    with _quiet():
        models = [ESTIMATORS[kind](hidden_layer_sizes=(4,), max_iter=2,
                                   random_state=np.random.default_rng(seed)).fit(X, y)
                  for seed in (3, 3, 4)]
    out = [m.predict(X) if kind == "regressor" else m.predict_proba(X) for m in models]
    assert np.array_equal(out[0], out[1]) and not np.array_equal(out[0], out[2])
