"""scikit-learn estimators over descend: ``MLPClassifier`` and ``MLPRegressor``.

They are real scikit-learn estimators (``BaseEstimator`` with ``ClassifierMixin`` or
``RegressorMixin``): they pass ``sklearn.utils.estimator_checks.check_estimator`` and work in
pipelines, ``cross_val_score`` and ``GridSearchCV``. Hyper-parameters are stored verbatim by
``__init__``; everything learned ends in ``_``. Inputs are not scaled: put a ``StandardScaler``
in front, as with scikit-learn's own MLPs.

Training goes through the public :func:`descend.train.fit` with a descend optimizer: by
default Adam's direction with SaLSA's smoothed Armijo search (``optimizer="adam"`` with
``lr=None``, which means ``"salsa"``: :class:`descend.optim.SmoothedArmijo`), so there is
no learning rate to tune. That default was chosen on tabular data sets (bench/lr_free.py's
``mlp-*`` workloads), where it beats descend's recommendation for networks on mini-batches
(MoMo, ``optimizer="recommended"``): docs/learning-rate-free.md has the numbers. The
objective is the mean loss over a mini-batch plus ``(weight_decay / 2) ||w||^2`` over every
parameter.

Stopping follows scikit-learn's MLP: after each epoch (a pass over the data) the training
loss L_e, or with ``early_stopping=True`` the validation score s_e (accuracy, or R^2), is
compared with the best so far; when it has not improved by more than ``tol`` for more than
``n_iter_no_change`` consecutive epochs, training stops (``stop_reason_`` says so), else it
stops after ``max_iter`` epochs. With early stopping the parameters of the best validation
score are put back at the end.

A row's prediction does not depend on the rows predicted with it, bit for bit: the float32
BLAS product ``X @ W.T`` rounds a row's sums differently depending on where the row falls
in the kernel's tile of rows (about 1e-7 relative), so predictions are computed with
``numpy.einsum``, which sums each output over the inputs in one fixed order (about 4x the
time of the BLAS product; prediction is a small part of the work).

scikit-learn is needed for this module (``pip install 'descend[sklearn]'``); ``import
descend`` loads it only when ``ds.MLPClassifier`` or ``ds.MLPRegressor`` is first used.
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

import numpy as np

from .autodiff.graph import no_grad
from .autodiff.tensor import tensor
from .checks import check_random_state
from .nn import CrossEntropyLoss, Linear, MSELoss, mlp
from .optim import spec
from .train import fit

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.exceptions import ConvergenceWarning, DataConversionWarning
    from sklearn.model_selection import train_test_split
    from sklearn.utils import check_random_state as sklearn_random_state
    from sklearn.utils.multiclass import type_of_target
    from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "descend's MLPClassifier and MLPRegressor are scikit-learn estimators and need "
        "scikit-learn >= 1.6: pip install 'descend[sklearn]'"
    ) from exc

from .errors import ConfigError, DataError
from .train import Callback, History, StopReason

__all__ = ["PREDICT_BLOCK", "MLPClassifier", "MLPRegressor"]

#: Rows per block when predicting (bounds the memory of the hidden activations).
PREDICT_BLOCK = 4096

_OPTIMIZERS = ("adam", "gd", "recommended")
#: the step rule of ``lr=None`` where it differs from the registry's (Adam's is 0.001)
_DEFAULT_LR = {"adam": "salsa"}
_ACTIVATIONS = ("relu", "leaky_relu", "tanh", "sigmoid", "gelu", "softplus", "identity")


class _NoImprovement(Callback):
    """scikit-learn's MLP convergence test, read from the History after every epoch.

    Without validation: the epoch's training loss L_e counts as an improvement when
    L_e < best - tol (best: the lowest loss so far). With validation: the score s_e (higher
    is better) counts when s_e > best + tol; the parameters of the best score are copied.
    Training stops once more than ``n_iter_no_change`` epochs in a row did not improve.
    The counters persist across calls of ``fit`` (``partial_fit``, ``warm_start``).
    """

    def __init__(self, estimator: _MLPBase, validation: tuple[np.ndarray, np.ndarray] | None):
        self.est = estimator
        self.validation = validation
        self.stopped = False

    def on_epoch_end(self, history: History, model: Any) -> bool | None:
        est = self.est
        record = history.epochs[-1]
        est.loss_curve_.append(float(record.train_loss))
        est.n_iter_ += 1
        if self.validation is None:
            value = float(record.train_loss)
            improved = est.best_loss_ is None or value < est.best_loss_ - est.tol
            if est.best_loss_ is None or value < est.best_loss_:
                est.best_loss_ = value
        else:
            score = est._validation_score(*self.validation)
            est.validation_scores_.append(score)
            best = est.best_validation_score_
            improved = best is None or score > best + est.tol
            if best is None or score > best:
                est.best_validation_score_ = score
                est._best_state = {k: np.array(v, copy=True)
                                   for k, v in model.state_dict().items()}
        est._no_improvement_count = 0 if improved else est._no_improvement_count + 1
        if est._no_improvement_count > est.n_iter_no_change:
            self.stopped = True
            return True
        return None


class _MLPBase(BaseEstimator):
    """What the classifier and the regressor share: parameters, training, prediction."""

    def __init__(
        self,
        hidden_layer_sizes: int | tuple[int, ...] = (100,),
        activation: str = "relu",
        *,
        optimizer: str = "adam",
        lr: Any = None,
        momentum: float = 0.0,
        weight_decay: float = 3e-4,
        batch_size: int | str | None = "auto",
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: Any = None,
        tol: float = 1e-4,
        verbose: bool = False,
        warm_start: bool = False,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.optimizer = optimizer
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change

    # ------------------------------------------------------------------ tags and checks
    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # densified block by block
        tags.target_tags.required = True  # fit(X, None) is refused with a clear message
        return tags

    def _hidden_sizes(self) -> tuple[int, ...]:
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, numbers.Integral) and not isinstance(sizes, bool):
            sizes = (sizes,)  # scikit-learn's convention: 5 means one layer of 5
        try:
            sizes = tuple(sizes)
        except TypeError:
            raise ConfigError(f"hidden_layer_sizes must be an int or a tuple of ints, got "
                              f"{self.hidden_layer_sizes!r}") from None
        if any(isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1
               for s in sizes):
            raise ConfigError(f"hidden_layer_sizes must be ints >= 1, got "
                              f"{self.hidden_layer_sizes!r}")
        return tuple(int(s) for s in sizes)

    def _check_params(self) -> None:
        self._hidden_sizes()
        if self.activation not in _ACTIVATIONS:
            raise ConfigError(f"activation must be one of {', '.join(_ACTIVATIONS)}, got "
                              f"{self.activation!r}")
        if self.optimizer not in _OPTIMIZERS:
            raise ConfigError("optimizer must be 'adam', 'gd' or 'recommended', got "
                              f"{self.optimizer!r}")
        for name, low in (("max_iter", 1), ("n_iter_no_change", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
                raise ConfigError(f"{name} must be an int >= {low}, got {value!r}")
        for name in ("tol", "weight_decay", "momentum"):
            value = getattr(self, name)
            if (isinstance(value, bool) or not isinstance(value, numbers.Real)
                    or not math.isfinite(value) or value < 0):
                raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
        if not 0 <= self.momentum < 1:
            raise ConfigError(f"momentum must lie in [0, 1), got {self.momentum!r}")
        vf = self.validation_fraction
        if (isinstance(vf, bool) or not isinstance(vf, numbers.Real)
                or not 0 < vf < 1):
            raise ConfigError(f"validation_fraction must lie in (0, 1), got {vf!r}")
        b = self.batch_size
        if not (b is None or b == "auto" or (isinstance(b, numbers.Integral)
                                             and not isinstance(b, bool) and b >= 1)):
            raise ConfigError(f"batch_size must be an int >= 1, 'auto' or None, got {b!r}")
        check_random_state("random_state", self.random_state)

    def _batch_size(self, n: int) -> int | None:
        """Rows per mini-batch: 'auto' is min(200, n) as in scikit-learn; a size larger than
        the data, and None, mean full-batch steps (one step per epoch)."""
        b = self.batch_size
        size = min(200, n) if b == "auto" else (n if b is None else min(int(b), n))
        return None if size >= n else size

    def _validate_X(self, X: Any, y: Any, reset: bool,
                    y_numeric: bool = False) -> tuple[np.ndarray, Any]:
        """X (and y) through scikit-learn's validation: 2-D, finite, numeric, non-empty,
        ``n_features_in_`` / ``feature_names_in_`` set (reset) or checked; sparse input is
        densified. Returns float32 X (float64 is kept only to be cast, see _as_float32)."""
        name = type(self).__name__
        if y is None:
            raise DataError(f"{name} requires y to be passed, but the target y is None: "
                            "call fit(X, y) with one target per row of X")
        X, y = validate_data(self, X, y, reset=reset, accept_sparse="csr",
                             dtype=(np.float64, np.float32), multi_output=True,
                             y_numeric=y_numeric, ensure_min_samples=1)
        return X, y

    # ------------------------------------------------------------------ training
    def _seed(self) -> int:
        """The seed of this fit's random draws, from ``random_state`` (drawn once per fresh
        fit, so random_state=None gives a different model each time)."""
        if getattr(self, "_seed_value", None) is None:
            state = check_random_state("random_state", self.random_state)
            limit = np.iinfo(np.int32).max
            if isinstance(state, np.random.Generator):  # scikit-learn's helper refuses these
                self._seed_value = int(state.integers(limit))
            else:
                self._seed_value = int(sklearn_random_state(state).randint(limit))
        return self._seed_value

    def _build(self, n_in: int, n_out: int) -> None:
        sizes = self._hidden_sizes()
        self.model_ = mlp([n_in, *sizes, n_out], activation=self.activation,
                                rng=self._seed())
        # A rule object carries state (its last step size): the registry copies it, so
        # that fitting does not change the estimator's parameters and clones do not share
        # it. As in scikit-learn's MLPs, momentum is ignored where it does not apply (Adam).
        lr = _DEFAULT_LR.get(self.optimizer) if self.lr is None else self.lr
        rule = None if lr is None else spec.resolve_rule(lr).rule
        self.optimizer_ = spec.make_optimizer(
            self.optimizer, list(self.model_.parameters()), rule, strict=False,
            momentum=self.momentum, weight_decay=self.weight_decay)
        self.n_iter_ = 0
        self.t_ = 0
        self.loss_curve_: list[float] = []
        self.best_loss_: float | None = None
        self.validation_scores_: list[float] | None = [] if self.early_stopping else None
        self.best_validation_score_: float | None = None
        self._no_improvement_count = 0
        self._best_state: dict[str, np.ndarray] | None = None
        self.history_ = History()

    def _train(self, X: np.ndarray, targets: np.ndarray, n_out: int, epochs: int,
               incremental: bool, stratify: np.ndarray | None) -> None:
        """Build (or keep) the model and run ``fit`` for at most ``epochs`` epochs."""
        fresh = not hasattr(self, "model_") or not (self.warm_start or incremental)
        if fresh:
            self._seed_value = None
            self._build(X.shape[1], n_out)
        elif self.early_stopping and self.validation_scores_ is None:
            self.validation_scores_ = []
        validation = None
        if self.early_stopping and not incremental:
            X, Xv, targets, yv = self._split(X, targets, stratify)
            validation = (Xv, yv)
        loss_fn = self._loss_fn()
        # shuffling differs from one call to the next (partial_fit), reproducibly
        seed = (self._seed() + self.n_iter_) % (2**31 - 1)
        monitor = _NoImprovement(self, validation)
        history = fit(self.model_, loss_fn, self.optimizer_, (X, targets), epochs=epochs,
                      batch_size=self._batch_size(len(X)), shuffle=bool(self.shuffle),
                      seed=seed, validation=validation,
                      callbacks=() if incremental else (monitor,), progress=bool(self.verbose))
        if incremental:  # one pass, no convergence test (as scikit-learn's partial_fit)
            self.loss_curve_.append(float(history.epochs[-1].train_loss))
            self.n_iter_ += 1
            loss = self.loss_curve_[-1]
            self.best_loss_ = loss if self.best_loss_ is None else min(self.best_loss_, loss)
        self.t_ += len(X) * len(history.epochs)
        self._merge_history(history)
        reason = history.stop_reason
        if monitor.stopped:
            what = ("validation score" if validation is not None else "training loss")
            reason = StopReason(
                "no_improvement", f"the {what} did not improve by more than tol={self.tol:g} "
                f"for {self.n_iter_no_change} consecutive epochs (epoch {self.n_iter_})",
                history.steps - 1, self.n_iter_ - 1, float(self.n_iter_no_change),
                float(self.n_iter_no_change))
        elif reason is not None and reason.criterion == "epochs" and not incremental:
            reason = StopReason(
                "max_iter", f"reached max_iter={self.max_iter} epochs without converging "
                f"(tol={self.tol:g}, n_iter_no_change={self.n_iter_no_change}); raise "
                "max_iter or tol", reason.step, reason.epoch, float(self.max_iter),
                float(self.max_iter))
            warnings.warn(f"{type(self).__name__}: {reason.message}", ConvergenceWarning,
                          stacklevel=3)
        self.stop_reason_ = reason
        self.history_.stop_reason = reason
        if validation is not None and self._best_state is not None:
            self.model_.load_state_dict(self._best_state)
        self.loss_ = self.loss_curve_[-1]
        if self.early_stopping and not incremental:
            self.best_loss_ = None  # as in scikit-learn: the best score is the criterion

    def _merge_history(self, history: History) -> None:
        """Append one call's history to ``history_`` (steps and epochs continue)."""
        merged = self.history_
        offset, epoch0 = merged.steps, len(merged.epochs)
        for name in History.STEP_COLUMNS:
            getattr(merged, name).extend(getattr(history, name))
        for record in history.epochs:
            record.step += offset
            record.epoch += epoch0
            merged.epochs.append(record)
        merged.stop_reason = history.stop_reason
        merged.best = history.best
        merged.seconds += history.seconds

    def _split(self, X: np.ndarray, targets: np.ndarray, stratify: np.ndarray | None):
        n_val = math.ceil(self.validation_fraction * len(X))
        if n_val < 1 or len(X) - n_val < 1:
            raise DataError(f"early_stopping: validation_fraction={self.validation_fraction}"
                            f" of {len(X)} samples leaves no training or validation data")
        try:
            return train_test_split(X, targets, test_size=self.validation_fraction,
                                    random_state=self._seed(), stratify=stratify)
        except ValueError:  # a class too small to stratify: split without it
            return train_test_split(X, targets, test_size=self.validation_fraction,
                                    random_state=self._seed())

    # ------------------------------------------------------------------ prediction
    def _forward(self, X: Any) -> np.ndarray:
        """Network outputs for X, shape (n, outputs), float32, each row computed alone.

        The Linear layers are evaluated by :func:`numpy.einsum` (no BLAS), which sums every
        output element over the inputs in one fixed order; the activations act elementwise.
        A BLAS product does not give that guarantee: OpenBLAS's float32 kernel rounds a
        row's sums differently depending on the row's position within its tile of rows
        (positions 0-5 and 6-11 of a 12-row tile differ by about 1e-7 relative), so with
        ``x @ W.T`` a prediction changed with the rows predicted alongside it.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, accept_sparse="csr",
                          dtype=(np.float64, np.float32))
        n = X.shape[0]
        out: np.ndarray | None = None
        self.model_.eval()
        with no_grad():
            for start in range(0, n, PREDICT_BLOCK):  # blocks bound the memory used
                h = self._dense32(X[start:start + PREDICT_BLOCK])
                for module in self.model_:
                    if isinstance(module, Linear):
                        h = np.einsum("ij,kj->ik", h, module.weight.data, optimize=False)
                        if module.bias is not None:
                            h += module.bias.data
                    else:
                        h = module(tensor(h)).data
                if out is None:
                    out = np.empty((n, h.shape[1]), dtype=h.dtype)
                out[start:start + len(h)] = h
        assert out is not None
        return out

    @staticmethod
    def _dense32(X: Any) -> np.ndarray:
        X = X.toarray() if hasattr(X, "toarray") else X
        return np.ascontiguousarray(X, dtype=np.float32)

    @property
    def coefs_(self) -> list[np.ndarray]:
        """Weight matrices, ``coefs_[i]`` of shape (fan_in, fan_out) as in scikit-learn
        (views of the model's parameters: writing into them changes the model)."""
        check_is_fitted(self)
        return [m.weight.data.T for m in self._linears()]

    @property
    def intercepts_(self) -> list[np.ndarray]:
        """Bias vectors, ``intercepts_[i]`` of shape (fan_out,)."""
        check_is_fitted(self)
        return [m.bias.data for m in self._linears()]

    def _linears(self) -> list[Any]:
        return [m for m in self.model_ if isinstance(m, Linear)]


class MLPClassifier(ClassifierMixin, _MLPBase):
    """A multi-layer perceptron classifier (softmax outputs, cross-entropy loss).

    Parameters
    ----------
    hidden_layer_sizes : int or tuple of int, default (100,)
        Units per hidden layer; an int ``k`` means ``(k,)``.
    activation : {"relu", "leaky_relu", "tanh", "sigmoid", "gelu", "softplus", "identity"}
    optimizer : {"adam", "gd", "recommended"}, default "adam"
        The direction: Adam's scaled one, the (momentum) gradient, or descend's
        recommendation for networks on mini-batches (:func:`descend.optim.recommended`: now
        MoMo, which takes its own step: leave ``lr=None`` for it).
    lr : str, float, schedule, StepRule or None, default None
        The step size: None is the optimizer's untuned default here (``"salsa"``, SaLSA's
        smoothed Armijo search, for "adam": on tabular data the best untuned choice measured;
        ``"sls"`` for "gd"; MoMo's own step for "recommended"); else a spec of the rule
        registry (``"sls"``, ``"armijo:c1=0.1"``, ``"wolfe"``, ``"0.01"``,
        ``"invsqrt:0.5"``, ...; :data:`descend.optim.spec.RULES`), a number, or a rule
        object (copied at fit).
    momentum, weight_decay : float
        Heavy-ball momentum (``optimizer="gd"``; Adam and the recommendation ignore it);
        L2 coefficient lambda (objective + lambda/2 ||x||^2, every parameter). The default
        3e-4 is one setting for all data (see bench/sklearn_datasets.py): the line search
        fits the training data fast, and this light penalty keeps the fitted network
        smooth.
    batch_size : int, "auto" or None
        Rows per step; "auto" is min(200, n); None or a size >= n means full batch.
    max_iter : int
        Most epochs per ``fit``.
    shuffle, random_state : reshuffle each epoch; the seed of the initial weights, the
        shuffling and the early-stopping split: None (fresh randomness at each fit), an int
        in [0, 2**32), or a ``numpy.random.RandomState`` or ``Generator`` (one seed is drawn
        from it at each fresh fit). Bools are refused.
    tol, n_iter_no_change : the convergence test (see the module docstring).
    verbose : bool
        Show a progress bar.
    warm_start : bool
        ``fit`` continues from the current parameters and optimizer state.
    early_stopping, validation_fraction : hold out this fraction (stratified) and stop on
        its accuracy; the best parameters are kept.

    Attributes
    ----------
    classes_, n_features_in_, feature_names_in_ (when X has column names),
    loss_, loss_curve_, best_loss_, validation_scores_, best_validation_score_,
    coefs_, intercepts_, n_iter_, t_, n_outputs_, out_activation_,
    model_ (the descend Module), optimizer_, history_ (the History of every epoch),
    stop_reason_ (why training stopped).
    """

    def _loss_fn(self) -> Any:
        return CrossEntropyLoss()

    def _validation_score(self, Xv: np.ndarray, yv: np.ndarray) -> float:
        logits = self._forward_dense(Xv)
        return float(np.mean(logits.argmax(axis=1) == yv))

    def _forward_dense(self, X: np.ndarray) -> np.ndarray:
        was = self.model_.training
        self.model_.eval()
        with no_grad():
            out = self.model_(tensor(X)).data
        if was:
            self.model_.train()
        return out

    def _encode(self, X: Any, y: Any, reset: bool) -> tuple[np.ndarray, np.ndarray]:
        X, y = self._validate_X(X, y, reset)
        if np.ndim(y) == 2 and y.shape[1] == 1:
            warnings.warn("A column-vector y was passed when a 1d array was expected. Please "
                          "change the shape of y to (n_samples,), for example using ravel().",
                          DataConversionWarning, stacklevel=3)
            y = y[:, 0]
        kind = type_of_target(y, input_name="y")
        if kind not in ("binary", "multiclass"):
            if kind in ("continuous", "continuous-multioutput"):
                raise DataError(
                    f"Unknown label type: {kind!r}: y holds non-integer numbers (such as "
                    f"{_first_fraction(y)}), not class labels; MLPClassifier needs classes, "
                    "use MLPRegressor for a continuous target")
            raise DataError(f"Unknown label type: {kind!r}: MLPClassifier needs y of shape "
                            f"(n_samples,) with one class label per row, got shape "
                            f"{np.shape(y)}")
        y = column_or_1d(y)
        return self._dense32(X), y

    def fit(self, X: Any, y: Any) -> MLPClassifier:
        """Train on X (n, d) and class labels y (n,), for at most ``max_iter`` epochs."""
        self._check_params()
        X, y = self._encode(X, y, reset=True)
        classes, codes = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise DataError(
                f"y has 1 class only ({classes[0]!r}) in {len(y)} sample(s); a classifier "
                "needs at least 2 classes")
        if self.warm_start and hasattr(self, "classes_") and not np.array_equal(
                classes, self.classes_):
            raise DataError(f"warm_start: y has classes {classes.tolist()}, the fitted "
                            f"model has {self.classes_.tolist()}")
        self.classes_ = classes
        self.n_outputs_ = 1
        self.out_activation_ = "softmax"
        codes = codes.astype(np.int64)
        self._train(X, codes, len(classes), self.max_iter, incremental=False, stratify=codes)
        return self

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> MLPClassifier:
        """One epoch over (X, y), continuing from the current state.

        ``classes`` (every label that may appear) is required on the first call, as in
        scikit-learn, since a batch may not hold them all.
        """
        first = not hasattr(self, "classes_")
        if first:
            self._check_params()
            if classes is None:
                raise DataError("classes must be passed on the first call to partial_fit "
                                "(every label that any batch may hold)")
            self.classes_ = np.unique(np.asarray(classes))
            if len(self.classes_) < 2:
                raise DataError(f"classes holds 1 class only ({self.classes_.tolist()}); a "
                                "classifier needs at least 2 classes")
            self.n_outputs_ = 1
            self.out_activation_ = "softmax"
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise DataError(f"classes {np.unique(classes).tolist()} differ from those of the "
                            f"first partial_fit call, {self.classes_.tolist()}")
        X, y = self._encode(X, y, reset=first)
        unknown = np.setdiff1d(y, self.classes_)
        if unknown.size:
            raise DataError(f"y has label(s) {unknown.tolist()[:5]} that are not in classes "
                            f"{self.classes_.tolist()}")
        codes = np.searchsorted(self.classes_, y).astype(np.int64)
        self._train(X, codes, len(self.classes_), 1, incremental=True, stratify=None)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape (n, n_classes), columns in the order of ``classes_``:
        softmax of the outputs, computed in float64."""
        logits = self._forward(X).astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Log of :meth:`predict_proba` (log-softmax, computed in float64)."""
        logits = self._forward(X).astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        return logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each row."""
        codes = self._forward(X).argmax(axis=1)
        return self.classes_[codes]


class MLPRegressor(RegressorMixin, _MLPBase):
    """A multi-layer perceptron regressor (identity outputs, mean squared error).

    Same parameters as :class:`MLPClassifier`; ``y`` may be (n,) or (n, k) (k outputs;
    the loss is the mean over samples and outputs). ``early_stopping`` stops on the R^2 of
    the held-out fraction. ``predict`` returns (n,) for one output, else (n, k), float64.
    The loss (``loss_curve_``, and so the scale ``tol`` is compared on) is the mean squared
    error, twice scikit-learn's ``squared_error`` (half of it): the same ``tol`` asks half
    as much of descend's relative progress, so it stops later, never earlier.
    """

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _loss_fn(self) -> Any:
        return MSELoss()

    def _validation_score(self, Xv: np.ndarray, yv: np.ndarray) -> float:
        self.model_.eval()
        with no_grad():
            pred = self.model_(tensor(Xv)).data.astype(np.float64)
        self.model_.train()
        return _r2(yv.astype(np.float64), pred)

    def _targets(self, X: Any, y: Any, reset: bool) -> tuple[np.ndarray, np.ndarray]:
        X, y = self._validate_X(X, y, reset, y_numeric=True)
        y = np.asarray(y)
        if y.dtype.kind not in "iuf":
            raise DataError(f"MLPRegressor needs numeric targets, got y of dtype {y.dtype}")
        if y.ndim > 2:
            raise DataError(f"y must be (n,) or (n, outputs), got shape {y.shape}")
        targets = y.reshape(len(y), -1).astype(np.float32)
        return self._dense32(X), targets

    def fit(self, X: Any, y: Any) -> MLPRegressor:
        """Train on X (n, d) and targets y (n,) or (n, k), for at most ``max_iter`` epochs."""
        self._check_params()
        X, targets = self._targets(X, y, reset=True)
        if (self.warm_start and hasattr(self, "n_outputs_")
                and targets.shape[1] != self.n_outputs_):
            raise DataError(f"warm_start: y has {targets.shape[1]} outputs, the fitted model "
                            f"has {self.n_outputs_}")
        self.n_outputs_ = targets.shape[1]
        self.out_activation_ = "identity"
        self._train(X, targets, targets.shape[1], self.max_iter, incremental=False,
                    stratify=None)
        return self

    def partial_fit(self, X: Any, y: Any) -> MLPRegressor:
        """One epoch over (X, y), continuing from the current state."""
        first = not hasattr(self, "model_")
        if first:
            self._check_params()
        X, targets = self._targets(X, y, reset=first)
        if not first and targets.shape[1] != self.n_outputs_:
            raise DataError(f"y has {targets.shape[1]} outputs, the model has "
                            f"{self.n_outputs_}")
        self.n_outputs_ = targets.shape[1]
        self.out_activation_ = "identity"
        self._train(X, targets, targets.shape[1], 1, incremental=True, stratify=None)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predictions, float64: (n,) for a single output, else (n, outputs)."""
        out = self._forward(X).astype(np.float64)
        return out[:, 0] if self.n_outputs_ == 1 else out


def _r2(y: np.ndarray, pred: np.ndarray) -> float:
    """Coefficient of determination, averaged over outputs (scikit-learn's default)."""
    y = y.reshape(len(y), -1)
    pred = pred.reshape(len(pred), -1)
    ss_res = ((y - pred) ** 2).sum(axis=0)
    ss_tot = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
    scores = np.where(ss_tot > 0, 1 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0),
                      np.where(ss_res == 0, 1.0, 0.0))
    return float(scores.mean())


def _first_fraction(y: np.ndarray) -> str:
    flat = np.asarray(y, dtype=np.float64).ravel()
    bad = np.flatnonzero(flat != np.round(flat))
    return f"{flat[bad[0]]:g} at index {bad[0]}" if bad.size else "non-integer values"
