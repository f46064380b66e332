"""scikit-learn-style estimators over descend: ``MLPClassifier`` and ``MLPRegressor``.

Hyper-parameters are stored verbatim by ``__init__`` (so ``get_params``/``set_params`` and
scikit-learn's ``clone`` work); everything learned ends in ``_``. Inputs are not scaled:
put a scaler in front as with scikit-learn's own MLPs.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from .data import check_arrays
from .errors import ConfigError, DataError


class _MLPBase:
    _loss = "cross_entropy"

    def __init__(
        self,
        hidden_layer_sizes: tuple[int, ...] = (100,),
        activation: str = "relu",
        optimizer: str = "gd",
        lr: Any = "sls",
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        batch_size: int | None = 64,
        epochs: int = 50,
        stop: Any = None,
        validation_fraction: float | None = None,
        random_state: int = 0,
        verbose: bool = False,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.optimizer = optimizer
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.epochs = epochs
        self.stop = stop
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.verbose = verbose

    # -- scikit-learn's parameter protocol
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        names = [p for p in inspect.signature(_MLPBase.__init__).parameters if p != "self"]
        return {name: getattr(self, name) for name in names}

    def set_params(self, **params: Any) -> _MLPBase:
        valid = self.get_params()
        for key, value in params.items():
            if key not in valid:
                raise ConfigError(f"{type(self).__name__} has no parameter {key!r}")
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        defaults = _MLPBase().get_params()
        changed = {k: v for k, v in self.get_params().items() if _differs(v, defaults[k])}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in changed.items())})"

    # -- fitting
    def _build(self, n_in: int, n_out: int) -> tuple[Any, Any]:
        import descend as ds

        from .optim import as_step_rule, parse_step_rule

        sizes = tuple(self.hidden_layer_sizes)
        if any(isinstance(s, bool) or not isinstance(s, int | np.integer) or s < 1 for s in sizes):
            raise ConfigError(f"hidden_layer_sizes must be ints >= 1, got {sizes!r}")
        model = ds.nn.mlp([n_in, *sizes, n_out], activation=self.activation,
                          rng=self.random_state)
        rule = parse_step_rule(self.lr) if isinstance(self.lr, str) else as_step_rule(self.lr)
        params = list(model.parameters())
        if self.optimizer == "gd":
            opt = ds.optim.GD(params, lr=rule, momentum=self.momentum,
                              weight_decay=self.weight_decay)
        elif self.optimizer == "adam":
            opt = ds.optim.Adam(params, lr=rule, weight_decay=self.weight_decay)
        else:
            raise ConfigError(f"optimizer must be 'gd' or 'adam', got {self.optimizer!r}")
        return model, opt

    def _fit(self, X: np.ndarray, targets: np.ndarray, n_out: int, loss_fn: Any) -> None:
        from .train import fit

        validation = None
        if self.validation_fraction:
            if not 0 < self.validation_fraction < 1:
                raise ConfigError("validation_fraction must lie in (0, 1), got "
                                  f"{self.validation_fraction!r}")
            order = np.random.default_rng(self.random_state).permutation(len(X))
            n_val = max(1, round(self.validation_fraction * len(X)))
            val, tr = order[:n_val], order[n_val:]
            validation = (X[val], targets[val])
            X, targets = X[tr], targets[tr]
        batch = self.batch_size
        if batch is not None and batch > len(X):
            batch = len(X)
        self.model_, self.optimizer_ = self._build(X.shape[1], n_out)
        self.history_ = fit(self.model_, loss_fn, self.optimizer_, (X, targets),
                            epochs=self.epochs, batch_size=batch, seed=self.random_state,
                            validation=validation, stop=self.stop, progress=self.verbose)
        self.n_features_in_ = X.shape[1]
        self.n_iter_ = len(self.history_.epochs)
        self.loss_ = self.history_.epochs[-1].train_loss
        self.stop_reason_ = self.history_.stop_reason

    def _forward(self, X: Any) -> np.ndarray:
        import descend as ds

        if not hasattr(self, "model_"):
            raise ConfigError(f"this {type(self).__name__} is not fitted yet: call fit first")
        X, _ = check_arrays(X)
        X = np.asarray(X, dtype=np.float32).reshape(len(X), -1)
        if X.shape[1] != self.n_features_in_:
            raise DataError(f"X has {X.shape[1]} features, but the model was fitted with "
                            f"{self.n_features_in_}")
        self.model_.eval()
        with ds.no_grad():
            return self.model_(ds.tensor(X)).data


class MLPClassifier(_MLPBase):
    """A multi-layer perceptron classifier trained by descend (cross-entropy loss).

    Learned attributes: ``classes_``, ``model_``, ``optimizer_``, ``history_``, ``loss_``,
    ``n_iter_``, ``n_features_in_``, ``stop_reason_``.
    """

    def fit(self, X: Any, y: Any) -> MLPClassifier:
        import descend as ds

        X, _ = check_arrays(X)
        y = np.asarray(y)
        if y.ndim != 1:
            raise DataError(f"y must be 1-D class labels, got shape {y.shape}")
        if len(y) != len(X):
            raise DataError(f"X has {len(X)} rows but y has {len(y)}")
        if y.dtype.kind == "f" and not np.isfinite(y).all():
            raise DataError(f"y has a non-finite label at row {int(np.argmin(np.isfinite(y)))}")
        self.classes_, codes = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise DataError(f"y has a single class ({self.classes_[0]!r}); need at least 2")
        X = np.asarray(X, dtype=np.float32).reshape(len(X), -1)
        self._fit(X, codes.astype(np.int64), len(self.classes_), ds.nn.CrossEntropyLoss())
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape (n, n_classes), columns in the order of classes_."""
        logits = self._forward(X).astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each row."""
        logits = self._forward(X)
        return self.classes_[logits.argmax(axis=1)]

    def score(self, X: Any, y: Any) -> float:
        """Mean accuracy."""
        return float(np.mean(self.predict(X) == np.asarray(y)))


class MLPRegressor(_MLPBase):
    """A multi-layer perceptron regressor trained by descend (mean squared error)."""

    def fit(self, X: Any, y: Any) -> MLPRegressor:
        import descend as ds

        X, y = check_arrays(X, y, task="regression")
        y = np.asarray(y, dtype=np.float32)
        self._y_1d = y.ndim == 1
        targets = y.reshape(len(y), -1)
        X = np.asarray(X, dtype=np.float32).reshape(len(X), -1)
        self._fit(X, targets, targets.shape[1], ds.nn.MSELoss())
        return self

    def predict(self, X: Any) -> np.ndarray:
        out = self._forward(X)
        return out[:, 0] if self._y_1d else out

    def score(self, X: Any, y: Any) -> float:
        """Coefficient of determination R^2."""
        y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
        pred = np.asarray(self.predict(X), dtype=np.float64).reshape(len(y), -1)
        ss_res = ((y - pred) ** 2).sum()
        ss_tot = ((y - y.mean(axis=0)) ** 2).sum()
        return float(1 - ss_res / ss_tot) if ss_tot > 0 else float("nan")


def _differs(a: Any, b: Any) -> bool:
    try:
        return bool(a != b)
    except Exception:
        return a is not b
