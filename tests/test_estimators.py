"""The scikit-learn-style estimators."""

from __future__ import annotations

import numpy as np
import pytest

import descend as ds
from descend.errors import ConfigError, DataError


def _blobs(n=300, seed=0):
    rng = np.random.default_rng(seed)
    centers = np.array([[2.0, 0.0], [-2.0, 0.0], [0.0, 2.5]])
    y = rng.integers(0, 3, n)
    X = centers[y] + 0.5 * rng.standard_normal((n, 2))
    labels = np.array(["cat", "dog", "emu"])[y]
    return X.astype(np.float32), labels


def test_classifier_fit_predict_proba_score_with_string_labels():
    X, y = _blobs()
    clf = ds.MLPClassifier(hidden_layer_sizes=(16,), epochs=30, batch_size=32, random_state=0)
    assert clf.fit(X, y) is clf
    assert list(clf.classes_) == ["cat", "dog", "emu"]
    proba = clf.predict_proba(X)
    assert proba.shape == (300, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    pred = clf.predict(X)
    assert set(pred) <= set(clf.classes_)
    assert np.array_equal(pred, clf.classes_[proba.argmax(axis=1)])
    assert clf.score(X, y) == pytest.approx(np.mean(pred == y))
    assert clf.score(X, y) > 0.95
    assert clf.n_features_in_ == 2 and clf.n_iter_ == len(clf.history_.epochs)
    assert clf.stop_reason_ is not None


def test_hyper_parameters_stored_verbatim_and_cloneable():
    sklearn_base = pytest.importorskip("sklearn.base")
    clf = ds.MLPClassifier(hidden_layer_sizes=(7, 5), lr="invsqrt:0.3", epochs=3)
    params = clf.get_params()
    assert params["hidden_layer_sizes"] == (7, 5) and params["lr"] == "invsqrt:0.3"
    clone = sklearn_base.clone(clf)
    assert clone.get_params() == params and clone is not clf
    assert not hasattr(clone, "model_")
    clf.set_params(epochs=4)
    assert clf.epochs == 4
    with pytest.raises(ConfigError, match="no parameter 'bogus'"):
        clf.set_params(bogus=1)


def test_same_seed_same_model_different_seed_different():
    X, y = _blobs()
    a = ds.MLPClassifier(hidden_layer_sizes=(8,), epochs=3, random_state=1).fit(X, y)
    b = ds.MLPClassifier(hidden_layer_sizes=(8,), epochs=3, random_state=1).fit(X, y)
    c = ds.MLPClassifier(hidden_layer_sizes=(8,), epochs=3, random_state=2).fit(X, y)
    assert np.array_equal(a.predict_proba(X), b.predict_proba(X))
    assert not np.array_equal(a.predict_proba(X), c.predict_proba(X))


def test_regressor_learns_a_smooth_function():
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, (400, 1)).astype(np.float32)
    y = np.sin(X[:, 0]) + 0.05 * rng.standard_normal(400)
    reg = ds.MLPRegressor(hidden_layer_sizes=(32,), activation="tanh", epochs=200,
                          batch_size=None, lr="wolfe", random_state=0).fit(X, y)
    pred = reg.predict(X)
    assert pred.shape == (400,)
    r2 = reg.score(X, y)
    ss_res = ((y - pred) ** 2).sum()
    assert r2 == pytest.approx(1 - ss_res / ((y - y.mean()) ** 2).sum(), rel=1e-6)
    assert r2 > 0.95


def test_validation_fraction_records_validation_metrics():
    X, y = _blobs()
    clf = ds.MLPClassifier(hidden_layer_sizes=(8,), epochs=2, validation_fraction=0.25).fit(X, y)
    assert clf.history_.epochs[-1].val_accuracy is not None


@pytest.mark.parametrize(
    ("make", "error", "needle"),
    [
        (lambda: ds.MLPClassifier().predict(np.ones((2, 2))), ConfigError, "not fitted"),
        (lambda: ds.MLPClassifier(hidden_layer_sizes=(0,)).fit(*_blobs()), ConfigError,
         "hidden_layer_sizes"),
        (lambda: ds.MLPClassifier(optimizer="lbfgs").fit(*_blobs()), ConfigError, "'lbfgs'"),
        (lambda: ds.MLPClassifier(lr="fast").fit(*_blobs()), ConfigError, "unknown step rule"),
        (lambda: ds.MLPClassifier().fit(np.ones((5, 2)), np.zeros(5)), DataError, "single class"),
        (lambda: ds.MLPClassifier().fit(np.ones((5, 2)), np.zeros(4)), DataError, "5"),
        (lambda: ds.MLPClassifier(epochs=1).fit(*_blobs()).predict(np.ones((3, 5))), DataError,
         "3 features|5 features"),
    ],
)
def test_bad_input(make, error, needle):
    with pytest.raises(error, match=needle):
        make()
