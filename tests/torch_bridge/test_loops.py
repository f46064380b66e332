"""descend.torch in the loops people write: closures that call backward themselves,
``step(loss=...)``, gradient accumulation, mixed precision (bf16 autocast, fp16 with a
GradScaler) and torch.compile'd models."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import descend.torch as dt
from descend.errors import ConfigError
from descend.optim import Armijo, Exact, Polyak, SmoothedArmijo, StrongWolfe

from .conftest import DEVICES

#: a rule of each kind: searches (values only, slopes), a model step, a schedule, a constant
RULES = {
    "armijo": lambda: Armijo(c1=0.1),
    "strong-wolfe": lambda: StrongWolfe(),
    "exact": lambda: Exact(max_evals=12),
    "salsa": lambda: SmoothedArmijo(),
    "polyak": lambda: Polyak(c=0.5, max_lr=1.0),
    "constant": lambda: 0.1,
}


def _model(device: str, dropout: float = 0.0) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Dropout(dropout),
                         nn.Linear(16, 3)).double().to(device)


def _data(device: str, n: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 6, generator=g, dtype=torch.float64)
    return x.to(device), torch.randint(0, 3, (n,), generator=g).to(device)


def _params(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


# ---------------------------------------------------------------- torch-convention closures
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("rule", list(RULES))
def test_a_closure_that_calls_backward_takes_the_same_steps(rule, device):
    x, y = _data(device)
    runs = {}
    for convention in (False, True):
        model = _model(device, dropout=0.2)
        opt = dt.Adam(model.parameters(), lr=RULES[rule]()) if rule == "salsa" else \
            dt.GD(model.parameters(), lr=RULES[rule]())
        torch.manual_seed(5)

        def closure(model=model, opt=opt, convention=convention):
            loss = nn.functional.cross_entropy(model(x), y)
            if convention:  # torch.optim.LBFGS's closure
                opt.zero_grad()
                loss.backward()
            return loss

        records = []
        for _ in range(4):
            opt.step(closure)
            records.append(opt.last)
        runs[convention] = (_params(model), records, model)
    (want, plain, _), (got, torchlike, model) = runs[False], runs[True]
    for a, b in zip(got, want):
        assert torch.equal(a, b)
    for a, b in zip(torchlike, plain):
        assert a.closure_backward and not b.closure_backward
        assert (a.lr, a.evaluations, a.gradient_evaluations) == \
            (b.lr, b.evaluations, b.gradient_evaluations)  # trials cost no backward
    # .grad ends holding the step's gradient, not a trial's
    assert all(p.grad is not None for p in model.parameters())


def test_trials_of_a_closure_that_calls_backward_make_no_backward_pass():
    x, y = _data("cpu")
    model = _model("cpu")
    opt = dt.GD(model.parameters(), lr=Armijo(alpha0=100.0))  # several trials
    backward_passes = []
    model[0].weight.register_hook(lambda g: backward_passes.append(1))

    def closure():
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return loss

    opt.step(closure)
    assert opt.last.evaluations >= 3 and len(backward_passes) == 1


def test_step_with_loss_after_the_callers_backward_equals_the_closure_run():
    x, y = _data("cpu")
    runs = []
    for given in (False, True):
        model = _model("cpu")
        opt = dt.GD(model.parameters(), lr=Polyak(c=0.5, max_lr=1.0))
        for _ in range(3):
            if given:
                opt.zero_grad()
                loss = nn.functional.cross_entropy(model(x), y)
                loss.backward()
                assert opt.step(loss=loss) is loss
            else:
                opt.step(lambda model=model: nn.functional.cross_entropy(model(x), y))
        runs.append((_params(model), opt.last))
    (want, a), (got, b) = runs
    assert a.loss == b.loss and a.lr == b.lr
    for p, q in zip(got, want):
        assert torch.equal(p, q)


def test_a_search_without_a_closure_names_the_fix():
    x, y = _data("cpu")
    model = _model("cpu")
    opt = dt.GD(model.parameters(), lr=Armijo())
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    with pytest.raises(ConfigError, match="pass step\\(closure\\)"):
        opt.step(loss=loss)
    with pytest.raises(ConfigError, match="not both"):
        opt.step(lambda: loss, loss=loss)


# ---------------------------------------------------------------- gradient accumulation
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("rule", ["armijo", "strong-wolfe", "polyak"])
def test_accumulated_micro_batches_take_the_large_batch_step(rule, device):
    x, y = _data(device, 64)
    runs = []
    for micro in (1, 4):
        model = _model(device)
        opt = dt.GD(model.parameters(), lr=RULES[rule]())
        parts = [(x[i::micro], y[i::micro]) for i in range(micro)]
        for _ in range(3):
            if micro == 1:
                opt.step(lambda model=model: nn.functional.cross_entropy(model(x), y))
            else:
                opt.step(dt.accumulate(
                    [lambda a=a, b=b, model=model: nn.functional.cross_entropy(model(a), b)
                     for a, b in parts]))
        runs.append((_params(model), opt.last))
    (want, big), (got, acc) = runs
    assert acc.closure_backward and acc.gradient_evaluations == big.gradient_evaluations
    assert acc.evaluations == big.evaluations
    assert acc.lr == pytest.approx(big.lr, rel=1e-12)
    for p, q in zip(got, want):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-14)


def test_accumulated_trials_see_the_micro_batches_dropout_masks():
    # the second path: one graph over the weighted sum of the micro-batches' losses draws
    # the same masks in the same order
    x, y = _data("cpu", 64)
    parts = [(x[i::4], y[i::4]) for i in range(4)]
    runs = []
    for helper in (False, True):
        model = _model("cpu", dropout=0.3)
        opt = dt.GD(model.parameters(), lr=Armijo(c1=0.1))
        torch.manual_seed(3)
        losses = [lambda a=a, b=b, model=model: nn.functional.cross_entropy(model(a), b)
                  for a, b in parts]
        for _ in range(3):
            opt.step(dt.accumulate(losses) if helper else
                     (lambda losses=losses: sum(f() for f in losses) / 4))
        runs.append((_params(model), opt.last))
    (want, one), (got, acc) = runs
    assert acc.lr == one.lr and acc.evaluations == one.evaluations
    for p, q in zip(got, want):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("bad, message", [
    (([],), "at least one"),
    (([1],), "not a callable"),
    (([lambda: 0], [1.0, 2.0]), "2 weights for 1"),
    (([lambda: 0], [-1.0]), "finite and >= 0"),
])
def test_accumulate_refuses_bad_input(bad, message):
    with pytest.raises((ConfigError, TypeError), match=message):
        dt.accumulate(*bad)
