"""One recommendation, made in one place: the registry's ``"recommended"`` entry, reached by
``ds.optim.recommended``, ``descend.torch.recommended``, ``--optimizer recommended`` (both
engines) and the estimators' defaults."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import descend as ds
from descend.cli import main
from descend.errors import ConfigError
from descend.optim import spec
from descend.optim.rules import SmoothedArmijo
from descend.optim.rules.polyak import MomoStep


def params():
    return [ds.tensor(np.ones((3, 2)), requires_grad=True), ds.tensor(np.zeros(2),
                                                                      requires_grad=True)]


def test_recommended_is_the_registry_entry():
    entry = spec.optimizer_entry("recommended")
    opt = ds.optim.recommended(params())
    assert type(opt) is getattr(spec.NUMPY, entry.cls)
    assert repr(opt.rule) == repr(ds.optim.parse_step_rule(entry.default_lr))
    # now: MoMo, the Polyak step of its model over averaged momentum
    assert type(opt) is ds.optim.Momo and isinstance(opt.rule, MomoStep)


def test_recommended_takes_overrides_and_refuses_what_does_not_apply():
    opt = ds.optim.recommended(params(), lr="momo:0.5", weight_decay=1e-3,
                               max_grad_norm=1.0)
    assert isinstance(opt.rule, MomoStep) and opt.rule.lr == 0.5
    # MoMo takes the decay in its update, x <- (x - tau d) / (1 + alpha lambda)
    assert opt.direction.decay == 1e-3 and opt.max_grad_norm == 1.0
    with pytest.raises(ConfigError, match="caps its step"):
        ds.optim.recommended(params(), lr="salsa")
    with pytest.raises(ConfigError, match="takes no momentum"):
        ds.optim.recommended(params(), momentum=0.9)
    with pytest.raises(ConfigError, match="takes no betas"):
        ds.optim.recommended(params(), betas=(0.8, 0.99))


def test_recommended_trains_in_a_plain_loop():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((128, 4)).astype(np.float32)
    y = (X @ np.array([1.0, -1.0, 0.5, 0.0]) > 0).astype(np.int64)
    model = ds.nn.mlp([4, 16, 2], activation="relu", rng=0)
    opt = ds.optim.recommended(model.parameters())
    loss = ds.nn.CrossEntropyLoss()
    first = None
    for step in range(150):
        i = (step % 8) * 16
        xb, yb = ds.tensor(X[i:i + 16]), y[i:i + 16]
        opt.step(lambda xb=xb, yb=yb: loss(model(xb), yb))
        first = opt.last.loss if first is None else first
    with ds.no_grad():
        final = loss(model(ds.tensor(X)), y).item()
    assert final < 0.5 * first


@pytest.mark.parametrize("engine", ["descend", "torch"])
def test_optimizer_recommended_on_the_command_line(engine, capsys):
    code = main(["train", "--data", "spirals", "--samples", "60", "--hidden", "4",
                 "--batch-size", "16", "--max-steps", "3", "--quiet", "--engine", engine,
                 "--optimizer", "recommended"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "MomoStep" in out


def test_the_estimators_default_is_adam_with_the_smoothed_search():
    # measured on tabular data: Adam + SaLSA's search beats MoMo there (bench/lr_free.py)
    from sklearn.exceptions import ConvergenceWarning

    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    for est in (ds.MLPClassifier(max_iter=2, random_state=0),
                ds.MLPRegressor(max_iter=2, random_state=0)):
        assert est.optimizer == "adam" and est.lr is None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X, y.astype(np.float32) if isinstance(est, ds.MLPRegressor) else y)
        assert type(est.optimizer_) is ds.optim.Adam
        assert isinstance(est.optimizer_.rule, SmoothedArmijo)
    est = ds.MLPClassifier(optimizer="recommended", max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    assert type(est.optimizer_) is ds.optim.Momo


def test_a_rule_of_the_gradient_only_asks_for_optimizer_gd_in_the_estimators():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    with pytest.raises(ConfigError, match="negative gradient only: use it with GD"):
        ds.MLPClassifier(lr="sps", max_iter=1).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.MLPClassifier(optimizer="gd", lr="sps", max_iter=1).fit(X, y)


def _digits_run(epochs: int, checkpoint=None, resume=None, name="recommended"):
    digits = ds.data.load_digits()
    X, y = (digits.X[:300] / 16.0).astype(np.float32), digits.y[:300]
    model = ds.nn.mlp([64, 16, 10], activation="relu", dropout=0.1, rng=0)
    if name == "recommended":
        opt = ds.optim.recommended(model.parameters())
    else:  # the estimators' default
        opt = ds.optim.make_optimizer("adam", model.parameters(), "salsa")
    history = ds.train.fit(model, ds.nn.CrossEntropyLoss(), opt, (X, y), epochs=epochs,
                           batch_size=32, seed=3, progress=False, checkpoint=checkpoint,
                           resume=resume)
    return model, history


@pytest.mark.parametrize("name", ["recommended", "adam+salsa"])
def test_fit_resumes_the_recommendation_from_a_checkpoint_bit_identical(tmp_path, name):
    # 10 steps an epoch: with "salsa" the resumed run crosses the end of the search's
    # warm-up (step 100)
    full, full_history = _digits_run(14, name=name)
    ckpt = tmp_path / "run.npz"
    _digits_run(7, checkpoint=ckpt, name=name)
    resumed, history = _digits_run(14, resume=ckpt, name=name)
    for (key, a), (_, b) in zip(full.state_dict().items(), resumed.state_dict().items()):
        assert np.array_equal(a, b), key
    assert history.loss == full_history.loss and history.lr == full_history.lr
    assert min(history.evaluations) == 1  # steps between checks: one forward pass
