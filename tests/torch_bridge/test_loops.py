"""descend.torch in the loops people write: closures that call backward themselves,
``step(loss=...)``, gradient accumulation, mixed precision (bf16 autocast, fp16 with a
GradScaler) and torch.compile'd models."""

from __future__ import annotations

import copy
from contextlib import contextmanager

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


# ---------------------------------------------------------------- mixed precision
#: unit roundoff of the low-precision formats (8 and 11 significant bits)
UNIT = {torch.bfloat16: 2.0**-8, torch.float16: 2.0**-11}


def _positive_problem(device: str, scale: float = 1.0):
    """z = X w with X, w > 0 and target 0: f(w) = scale * mean(z^2) (no cancellation
    anywhere, so each rounding's relative error carries through undiminished)."""
    g = torch.Generator().manual_seed(2)
    X = torch.rand(32, 8, generator=g).to(device)
    model = nn.Linear(8, 1, bias=False).to(device)
    with torch.no_grad():
        model.weight.copy_(0.5 + torch.rand(1, 8, generator=g))
    return model, X, lambda out: scale * out.float().square().mean()


def _polyak_step_in_float64(model: nn.Module, X: torch.Tensor, scale: float) -> float:
    """The independent computation: alpha = f / ||g||^2 in float64 at the model's weights."""
    w = model.weight.detach().double().reshape(-1)
    z = X.double() @ w
    f = scale * z.square().mean()
    g = scale * 2.0 * X.double().T @ z / len(z)
    return float(f / g.dot(g))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("placement", ["inside", "around"])
def test_low_precision_polyak_steps_equal_float64_within_the_roundoff_bound(
        dtype, placement, device):
    """The tolerance, to first order in the unit roundoff u: the forward pass rounds x and w
    (u each) and z (u): 3u on z, 6u on f = mean(z^2). The backward pass rounds dF/dz (4u
    with z's error) and x (u) and the product (u): 6u on each component of g, all of one
    sign, so 6u on ||g||. alpha = f / ||g||^2: 6u + 2 * 6u = 18u. Float16 runs with a
    GradScaler and a loss scaled by 2^-24, whose gradient underflows without it."""
    u = UNIT[dtype]
    scale = 2.0**-24 if dtype is torch.float16 else 1.0
    model, X, loss_fn = _positive_problem(device, scale)
    scaler = torch.amp.GradScaler(device) if dtype is torch.float16 else None
    opt = dt.GD(model.parameters(), lr=Polyak())

    def closure():
        if placement == "inside":
            with torch.autocast(device, dtype=dtype):
                return loss_fn(model(X))
        return loss_fn(model(X))

    for _ in range(4):
        want = _polyak_step_in_float64(model, X, scale)
        if placement == "around":
            with torch.autocast(device, dtype=dtype):
                opt.step(closure, scaler=scaler)
        else:
            opt.step(closure, scaler=scaler)
        if scaler is not None:
            scaler.update()
        assert abs(opt.last.lr / want - 1) <= 18 * u, (opt.last.lr, want)
    if dtype is torch.float16:  # the scaler is what made it work
        unscaled = dt.GD(model.parameters(), lr=Polyak())
        with torch.autocast(device, dtype=dtype):
            unscaled.step(closure)
        assert abs(unscaled.last.lr / _polyak_step_in_float64(model, X, scale) - 1) > 18 * u


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("rule", list(RULES))
@pytest.mark.parametrize("placement", ["inside", "around"])
def test_every_rule_trains_under_bf16_autocast(rule, placement, device):
    # around: trials inside the caller's autocast region must not reuse the casts of the
    # step's start point (they did: every trial gave the start's loss, status FLAT)
    x, y = _data(device)
    x = x.float()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3)).to(device)
    opt = dt.Adam(model.parameters(), lr=RULES[rule]()) if rule == "salsa" else \
        dt.GD(model.parameters(), lr=RULES[rule]())

    def closure():
        if placement == "inside":
            with torch.autocast(device, dtype=torch.bfloat16):
                return nn.functional.cross_entropy(model(x), y)
        return nn.functional.cross_entropy(model(x), y)

    losses = []
    for _ in range(4):
        if placement == "around":
            with torch.autocast(device, dtype=torch.bfloat16):
                losses.append(opt.step(closure).item())
        else:
            losses.append(opt.step(closure).item())
        assert opt.last.lr > 0, opt.last
        assert opt.last.new_loss is None or opt.last.new_loss < opt.last.loss
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("device", DEVICES)
def test_a_non_finite_scaled_gradient_makes_no_update_and_the_scale_backs_off(device):
    model, X, loss_fn = _positive_problem(device)
    scaler = torch.amp.GradScaler(device, init_scale=2.0**60)  # float16 overflows
    opt = dt.GD(model.parameters(), lr=Armijo())
    before = _params(model)
    with torch.autocast(device, dtype=torch.float16):
        opt.step(lambda: loss_fn(model(X)), scaler=scaler)
    scaler.update()
    assert not opt.last.finite and not opt.last.updated
    assert all(torch.equal(a, b) for a, b in zip(_params(model), before))
    assert scaler.get_scale() == 2.0**59
    with pytest.raises(ConfigError, match="needs a closure"):
        opt.step(scaler=scaler)
    with pytest.raises(TypeError, match="GradScaler"):
        opt.step(lambda: loss_fn(model(X)), scaler=2.0)


# ---------------------------------------------------------------- torch.compile
def _bn_model(device: str) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.Tanh(), nn.Dropout(0.2),
                         nn.Linear(16, 3)).to(device)


@pytest.mark.slow  # torch._dynamo's import and tracing: about 4 s
@pytest.mark.parametrize("device", DEVICES)
def test_a_compiled_model_is_traced_once_per_grad_mode_and_steps_as_eager(device):
    from torch._dynamo.testing import CompileCounter

    torch._dynamo.reset()
    x, y = _data(device)
    x = x.float()
    runs = []
    for compiled in (False, True):
        model = _bn_model(device)
        counter = CompileCounter()
        forward = torch.compile(model, backend=counter) if compiled else model
        opt = dt.GD(model.parameters(), lr=Armijo(c1=0.1))
        torch.manual_seed(4)
        lrs = []
        for _ in range(10):
            opt.step(lambda forward=forward: nn.functional.cross_entropy(forward(x), y))
            lrs.append(opt.last.lr)
        runs.append((_params(model), lrs, [b.clone() for b in model.buffers()]))
    (want, eager_lrs, eager_buffers), (got, lrs, buffers) = runs
    # with grad and without (trials), with the first step's module hook and without: 4;
    # a hook registered anew at every step made torch recompile until its limit (8)
    assert counter.frame_count <= 4, counter.frame_count
    assert lrs == pytest.approx(eager_lrs, rel=1e-6)
    for a, b in zip(got + buffers, want + eager_buffers):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    torch._dynamo.reset()


class _Wrapper(nn.Module):
    """What torch.compile(model) returns, as far as the optimizer sees it: a module holding
    the model as ``_orig_mod``, whose submodules run out of the hooks' sight."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.__dict__["_orig_mod"] = model  # not a submodule, as in OptimizedModule

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with _no_global_hooks():
            return self._orig_mod(x)


@contextmanager
def _no_global_hooks():
    hooks = nn.modules.module._global_forward_pre_hooks
    saved = dict(hooks)
    hooks.clear()
    try:
        yield
    finally:
        hooks.update(saved)


def test_after_a_compiled_module_runs_no_global_hook_is_registered_and_buffers_are_kept():
    x, y = _data("cpu")
    x = x.float()
    model = _bn_model("cpu")
    wrapped = _Wrapper(model)
    opt = dt.GD(model.parameters(), lr=Armijo(alpha0=50.0))  # several trials
    hooks_seen = []

    def closure():
        hooks_seen.append(len(nn.modules.module._global_forward_pre_hooks))
        return nn.functional.cross_entropy(wrapped(x), y)

    for step in range(3):
        reference = copy.deepcopy(model)
        with torch.no_grad():
            reference(x)  # one forward pass from the step's start
        hooks_seen.clear()
        opt.step(closure)
        assert opt.last.evaluations >= 2
        for got, want in zip(model.buffers(), reference.buffers()):
            assert torch.equal(got, want)
        # the first step finds the modules with a global hook; later steps register none
        assert set(hooks_seen) == ({1} if step == 0 else {0}), hooks_seen
