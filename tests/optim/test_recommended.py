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


def params():
    return [ds.tensor(np.ones((3, 2)), requires_grad=True), ds.tensor(np.zeros(2),
                                                                      requires_grad=True)]


def test_recommended_is_the_registry_entry():
    entry = spec.optimizer_entry("recommended")
    opt = ds.optim.recommended(params())
    assert type(opt) is getattr(spec.NUMPY, entry.cls)
    assert repr(opt.rule) == repr(ds.optim.parse_step_rule(entry.default_lr))
    # now: Adam's direction with SaLSA's search
    assert type(opt) is ds.optim.Adam and isinstance(opt.rule, SmoothedArmijo)


def test_recommended_takes_overrides_and_refuses_what_does_not_apply():
    opt = ds.optim.recommended(params(), lr="armijo:c1=0.1", weight_decay=1e-3,
                               betas=(0.8, 0.99), max_grad_norm=1.0)
    assert isinstance(opt.rule, ds.optim.Armijo) and opt.rule.c1 == 0.1
    assert opt.param_groups[0]["weight_decay"] == 1e-3 and opt.max_grad_norm == 1.0
    assert opt.direction.b1 == 0.8  # read through the search's direction
    with pytest.raises(ConfigError, match="takes no momentum"):
        ds.optim.recommended(params(), momentum=0.9)


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
    assert "SmoothedArmijo" in out


def test_the_estimators_default_is_the_recommendation():
    from sklearn.exceptions import ConvergenceWarning

    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    for est in (ds.MLPClassifier(max_iter=2, random_state=0),
                ds.MLPRegressor(max_iter=2, random_state=0)):
        assert est.optimizer == "recommended" and est.lr is None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X, y.astype(np.float32) if isinstance(est, ds.MLPRegressor) else y)
        assert type(est.optimizer_) is ds.optim.Adam
        assert isinstance(est.optimizer_.rule, SmoothedArmijo)


def test_a_rule_of_the_gradient_only_asks_for_optimizer_gd_in_the_estimators():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    with pytest.raises(ConfigError, match="negative gradient only: use it with GD"):
        ds.MLPClassifier(lr="sps", max_iter=1).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.MLPClassifier(optimizer="gd", lr="sps", max_iter=1).fit(X, y)


def _digits_run(epochs: int, checkpoint=None, resume=None):
    digits = ds.data.load_digits()
    X, y = (digits.X[:300] / 16.0).astype(np.float32), digits.y[:300]
    model = ds.nn.mlp([64, 16, 10], activation="relu", dropout=0.1, rng=0)
    opt = ds.optim.recommended(model.parameters())
    history = ds.train.fit(model, ds.nn.CrossEntropyLoss(), opt, (X, y), epochs=epochs,
                           batch_size=32, seed=3, progress=False, checkpoint=checkpoint,
                           resume=resume)
    return model, history


def test_fit_resumes_the_recommendation_from_a_checkpoint_bit_identical(tmp_path):
    # 10 steps an epoch: the resumed run crosses the end of the search's warm-up (step 100)
    full, full_history = _digits_run(14)
    ckpt = tmp_path / "run.npz"
    _digits_run(7, checkpoint=ckpt)
    resumed, history = _digits_run(14, resume=ckpt)
    for (key, a), (_, b) in zip(full.state_dict().items(), resumed.state_dict().items()):
        assert np.array_equal(a, b), key
    assert history.loss == full_history.loss and history.lr == full_history.lr
    assert min(history.evaluations) == 1  # steps between checks: one forward pass
