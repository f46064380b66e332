"""Schedule-Free averaging through descend.torch: the same trajectory as the NumPy engine (y
after every step and x at evaluation, 1e-9 relative), the same as the authors' optimizers
(``schedulefree`` 1.4.1: ``SGDScheduleFree``, ``AdamWScheduleFree`` with and without foreach,
``ScheduleFreeWrapper`` around ``torch.optim.SGD``) on a float64 model from the same weights
and batches, BatchNorm statistics recomputed at x, ``train_steps`` validating at x, and
torch's state round trip.

Deliberate differences from the authors' code (none changes a trajectory beyond rounding;
seen: <= 4e-15 relative over 30 steps, asserted: 1e-12):
* descend's optimizer starts in training mode (theirs refuse a step before ``train()``;
  x = y = z before the first step, so nothing else differs);
* ``eval()`` keeps y and ``train()`` puts it back bit for bit (theirs recompute y from x and
  z, rounding);
* the base's step is read as the difference of the parameters it leaves and y (rounded to
  the parameters' precision), since descend wraps any optimizer, rule included.
ScheduleFree+ has no released implementation (its reference, ``AdamCScheduleFreePlusPaper``,
is in the authors' repository only): tests/optim/test_schedule_free.py checks it against its
equations, and here the two engines against each other.
"""

from __future__ import annotations

import inspect
import io

import numpy as np
import pytest
import torch

import descend as ds
import descend.torch as dt
from descend import nn, optim
from descend.train import train_steps

from .conftest import DEVICES
from .test_parity import SIZES, _batches, _data, _relative, _torch_twin

schedulefree = pytest.importorskip("schedulefree")

STEPS = 30

CASES = {
    "sgd": lambda m, p: m.SGDScheduleFree(p, lr=0.5),
    "sgd-warmup-decay": lambda m, p: m.SGDScheduleFree(p, lr=0.5, momentum=0.8,
                                                       weight_decay=0.01, warmup_steps=5, r=1.0),
    "adamw": lambda m, p: m.AdamWScheduleFree(p, lr=0.01),
    "adamw-warmup-decay": lambda m, p: m.AdamWScheduleFree(p, lr=0.01, weight_decay=0.05,
                                                           warmup_steps=10),
    "plus": lambda m, p: m.ScheduleFreePlus(p),
    "plus-every-option": lambda m, p: m.ScheduleFreePlus(
        p, lr=0.5, weight_decay=2.0, r=2.0, polyak_beta=0.9, c_warmup=5,
        sf_beta1_anneal_steps=10),
    "wrapper-armijo": lambda m, p: optim.ScheduleFree(m.GD(p, lr=optim.Armijo(c1=0.1))),
    "wrapper-momo": lambda m, p: optim.ScheduleFree(m.Momo(p, beta=0.0, lr=0.5)),
}


def _twins(device: str = "cpu"):
    model = nn.mlp(SIZES, activation="tanh", rng=3, dtype=np.float64)
    return model, _torch_twin(model, device)


def _close(a_params, b_params, tol: float) -> float:
    worst = 0.0
    for a, b in zip(a_params, b_params):
        a = a.data if isinstance(a, ds.Tensor) else a.detach().cpu().numpy()
        worst = max(worst, _relative(a, b.detach().cpu().numpy()))
    assert worst <= tol, worst
    return worst


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", list(CASES))
def test_same_trajectory_in_both_engines(case, device):
    make = CASES[case]
    X, y = _data()
    model, twin = _twins(device)
    opt_np, opt_t = make(optim, model.parameters()), make(dt, twin.parameters())
    loss_np = nn.CrossEntropyLoss()
    for step in range(STEPS):
        xb, yb = _batches(step, X, y)
        xd, xt = ds.tensor(xb), torch.from_numpy(xb).to(device)
        yt = torch.from_numpy(yb).to(device)
        opt_np.step(lambda xd=xd, yb=yb: loss_np(model(xd), yb))
        opt_t.step(lambda xt=xt, yt=yt: torch.nn.functional.cross_entropy(twin(xt), yt))
        assert opt_t.last.lr == pytest.approx(opt_np.last.lr, rel=1e-9), step
        _close(model.parameters(), twin.parameters(), 1e-9)
        if step % 10 == 9:
            opt_np.eval()
            opt_t.eval()
            _close(model.parameters(), twin.parameters(), 1e-9)
            opt_np.train()
            opt_t.train()


AUTHORS = {
    "sgd": (lambda p: dt.SGDScheduleFree(p, lr=0.5),
            lambda p: schedulefree.SGDScheduleFree(p, lr=0.5)),
    "sgd-every-option": (
        lambda p: dt.SGDScheduleFree(p, lr=0.5, momentum=0.8, weight_decay=0.01,
                                     warmup_steps=5, r=1.0, weight_lr_power=1.0),
        lambda p: schedulefree.SGDScheduleFree(p, lr=0.5, momentum=0.8, weight_decay=0.01,
                                               warmup_steps=5, r=1.0, weight_lr_power=1.0)),
    "adamw": (lambda p: dt.AdamWScheduleFree(p, lr=0.01),
              lambda p: schedulefree.AdamWScheduleFree(p, lr=0.01)),
    "adamw-every-option": (
        lambda p: dt.AdamWScheduleFree(p, lr=0.01, betas=(0.8, 0.99), weight_decay=0.05,
                                       warmup_steps=10, r=0.5),
        lambda p: schedulefree.AdamWScheduleFree(p, lr=0.01, betas=(0.8, 0.99),
                                                 weight_decay=0.05, warmup_steps=10, r=0.5)),
    "adamw-no-foreach": (
        lambda p: dt.AdamWScheduleFree(p, lr=0.01, weight_decay=0.05),
        lambda p: schedulefree.AdamWScheduleFree(p, lr=0.01, weight_decay=0.05,
                                                 foreach=False)),
    "wrapper-sgd": (lambda p: dt.ScheduleFree(dt.GD(p, lr=0.3), beta=0.9),
                    lambda p: schedulefree.ScheduleFreeWrapper(torch.optim.SGD(p, lr=0.3),
                                                               momentum=0.9)),
}


@pytest.mark.parametrize("case", list(AUTHORS))
def test_same_trajectory_as_the_authors(case):
    ours_make, theirs_make = AUTHORS[case]
    X, y = _data()
    _, ours_model = _twins()
    _, their_model = _twins()
    ours, theirs = ours_make(ours_model.parameters()), theirs_make(their_model.parameters())
    theirs.train()
    worst = 0.0
    for step in range(STEPS):
        xb, yb = (torch.from_numpy(a) for a in _batches(step, X, y))
        ours.step(lambda xb=xb, yb=yb: torch.nn.functional.cross_entropy(ours_model(xb), yb))
        theirs.zero_grad()
        torch.nn.functional.cross_entropy(their_model(xb), yb).backward()
        theirs.step()
        worst = max(worst, _close(ours_model.parameters(), their_model.parameters(), 1e-12))
        if step % 7 == 6:  # evaluation at x, then back to y
            ours.eval()
            theirs.eval()
            worst = max(worst, _close(ours_model.parameters(), their_model.parameters(), 1e-12))
            ours.train()
            theirs.train()
    print(f"{case}: worst relative difference from schedulefree over {STEPS} steps "
          f"{worst:.1e}")


def test_batch_norm_statistics_are_recomputed_at_the_average():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8),
                                torch.nn.ReLU(), torch.nn.Linear(8, 2)).double()
    X = torch.randn(64, 4, dtype=torch.float64)
    y = (X[:, 0] > 0).long()
    opt = dt.AdamWScheduleFree(model.parameters(), lr=0.05)
    for step in range(20):
        xb, yb = X[16 * (step % 4):16 * (step % 4) + 16], y[16 * (step % 4):16 * (step % 4) + 16]
        opt.step(lambda xb=xb, yb=yb: torch.nn.functional.cross_entropy(model(xb), yb))
    batches = [X[:32], X[32:]]
    dt.recompute_batch_norm(model, batches, opt)
    assert not opt.training and model.training
    with torch.no_grad():  # at x: each batch's mean of the BatchNorm's inputs, averaged
        means = [model[0](b).mean(0) for b in batches]
    torch.testing.assert_close(model[1].running_mean, sum(means) / 2, rtol=1e-12, atol=1e-14)
    opt.train()


def test_train_steps_validates_at_the_average():
    X, y = _data()
    _, model = _twins()
    opt = dt.SGDScheduleFree(model.parameters(), lr=0.5)
    seen = []

    def batches():
        for step in range(4):
            xb, yb = (torch.from_numpy(a) for a in _batches(step, X, y))
            yield (lambda xb=xb, yb=yb: torch.nn.functional.cross_entropy(model(xb), yb)), 12

    def validate():
        seen.append((opt.training, [p.detach().clone() for p in model.parameters()]))
        return {"loss": 0.0}

    train_steps(opt, batches, epochs=2, validate=validate, model=model)
    assert [training for training, _ in seen] == [False, False]
    assert not opt.training  # the model holds x when training returns
    for a, b in zip(seen[-1][1], model.parameters()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("case", ["adamw-warmup-decay", "plus-every-option"])
def test_state_dict_round_trips_through_torch_save(case):
    X, y = _data()
    make = CASES[case]
    _, model = _twins()
    opt = make(dt, model.parameters())

    def steps(opt, model, start, stop):
        for step in range(start, stop):
            xb, yb = (torch.from_numpy(a) for a in _batches(step, X, y))
            opt.step(lambda xb=xb, yb=yb: torch.nn.functional.cross_entropy(model(xb), yb))

    steps(opt, model, 0, 5)
    buffer = io.BytesIO()
    torch.save({"opt": opt.state_dict(), "model": model.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    assert "exp_avg_sq" in saved["opt"]["state"][0] and len(saved["opt"]["schedule_free"]["z"])
    _, model2 = _twins()
    model2.load_state_dict(saved["model"])
    opt2 = make(dt, model2.parameters())
    opt2.load_state_dict(saved["opt"])
    steps(opt, model, 5, 10)
    steps(opt2, model2, 5, 10)
    for a, b in zip(model.parameters(), model2.parameters()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("name", ["SGDScheduleFree", "AdamWScheduleFree", "ScheduleFreePlus"])
def test_signatures_match_the_numpy_engine(name):
    ours = inspect.signature(getattr(dt, name))
    numpy_side = inspect.signature(getattr(optim, name))
    assert [p for p in ours.parameters.values() if p.name != "process_group"] == \
        [p for p in numpy_side.parameters.values() if p.name != "engine"]


def test_by_name_in_descend_torch():
    params = list(torch.nn.Linear(3, 2).parameters())
    assert type(dt.make_optimizer("sf-adamw", params)) is dt.AdamWScheduleFree
    assert type(dt.make_optimizer("sf-sgd", params)) is dt.SGDScheduleFree
    assert type(dt.make_optimizer("sf-plus", params)) is dt.ScheduleFreePlus
    wrapped = dt.make_optimizer("adam", params, 0.01, schedule_free=0.9)
    assert type(wrapped) is dt.ScheduleFree and type(wrapped.base) is dt.Adam
