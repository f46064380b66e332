"""The torch shell: updates against torch's own SGD and Adam, the closure contract and
opt.last, param groups, state_dict in torch's layout (through torch.save/torch.load with
weights_only=True, across devices and dtypes), step hooks, and non-finite losses handled as
in the NumPy engine."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from torch import nn

import descend as ds
import descend.torch as dt
from descend import optim
from descend.errors import ConfigError, GradientError, ShapeError

from .conftest import DEVICES


def _net(device: str = "cpu", dtype=torch.float64, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3)).to(device, dtype)


def _batch(step: int, device: str = "cpu", dtype=torch.float64):
    g = torch.Generator().manual_seed(100 + step)
    x = torch.randn(16, 5, generator=g, dtype=torch.float64).to(device, dtype)
    y = torch.randint(0, 3, (16,), generator=g).to(device)
    return x, y


def _loss(model, step, device="cpu", dtype=torch.float64):
    x, y = _batch(step, device, dtype)
    return lambda: nn.functional.cross_entropy(model(x), y)


def _close(a: torch.Tensor, b: torch.Tensor, rel: float = 1e-12) -> bool:
    return bool(torch.max(torch.abs(a - b)) <= rel * torch.max(torch.abs(b)))


# ----------------------------------------------------------------------------- against torch
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("nesterov", [False, True])
def test_gd_with_momentum_matches_torch_sgd(device, nesterov):
    ours, theirs = _net(device), _net(device)
    opt = dt.GD(ours.parameters(), lr=0.1, momentum=0.9, nesterov=nesterov, weight_decay=0.01)
    ref = torch.optim.SGD(theirs.parameters(), lr=0.1, momentum=0.9, nesterov=nesterov,
                          weight_decay=0.01)
    for step in range(6):
        opt.step(_loss(ours, step, device))
        ref.zero_grad()
        _loss(theirs, step, device)().backward()
        ref.step()
    for a, b in zip(ours.parameters(), theirs.parameters()):
        assert _close(a, b)
    ours_state, ref_state = opt.state_dict()["state"], ref.state_dict()["state"]
    for i in ref_state:
        assert _close(ours_state[i]["momentum_buffer"], ref_state[i]["momentum_buffer"])


@pytest.mark.parametrize("device", DEVICES)
def test_adam_matches_torch_adam(device):
    ours, theirs = _net(device), _net(device)
    opt = dt.Adam(ours.parameters(), lr=0.05, betas=(0.8, 0.99), eps=1e-6)
    ref = torch.optim.Adam(theirs.parameters(), lr=0.05, betas=(0.8, 0.99), eps=1e-6)
    for step in range(6):
        opt.step(_loss(ours, step, device))
        ref.zero_grad()
        _loss(theirs, step, device)().backward()
        ref.step()
    for a, b in zip(ours.parameters(), theirs.parameters()):
        assert _close(a, b, 1e-10)
    ours_state, ref_state = opt.state_dict()["state"], ref.state_dict()["state"]
    for i in ref_state:
        assert _close(ours_state[i]["exp_avg"], ref_state[i]["exp_avg"])
        assert _close(ours_state[i]["exp_avg_sq"], ref_state[i]["exp_avg_sq"])


# ----------------------------------------------------------------------------- closure, last
def test_step_returns_the_loss_and_last_describes_the_step():
    model = _net()
    opt = dt.GD(model.parameters(), lr=optim.Armijo(alpha0=100.0))
    closure = _loss(model, 0)
    expected = closure().detach().item()
    loss = opt.step(closure)
    assert isinstance(loss, torch.Tensor) and loss.item() == expected
    last = opt.last
    assert isinstance(last, optim.StepInfo)
    assert last.loss == expected and last.step == 0 and last.finite
    assert last.evaluations >= 3 and last.gradient_evaluations == 1
    assert last.lr < 100.0 and last.status is not None
    assert last.new_loss < expected
    assert opt.param_groups[0]["step_size"] == last.lr and opt.param_groups[0]["lr"] == 1.0


def test_step_without_closure_uses_the_gradients_already_there():
    model = _net()
    before = [p.detach().clone() for p in model.parameters()]
    _loss(model, 0)().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    opt = dt.GD(model.parameters(), lr=0.5)
    assert opt.step() is None
    for p, b, g in zip(model.parameters(), before, grads):
        assert torch.allclose(p, b - 0.5 * g, rtol=0, atol=1e-15)


def test_step_hooks_and_the_torch_base_class():
    model = _net()
    opt = dt.Adam(model.parameters(), lr=0.01)
    assert isinstance(opt, torch.optim.Optimizer)
    calls = []
    opt.register_step_post_hook(lambda o, args, kwargs: calls.append(o.last.step))
    for step in range(3):
        opt.step(_loss(model, step))
    assert calls == [0, 1, 2]


@pytest.mark.parametrize("make", [dt.LBFGS, dt.CG])
def test_max_iter_runs_its_iterations_inside_one_hooked_step(make):
    # as torch.optim.LBFGS: one step(closure) call, one pair of step hooks, many iterations
    model = _net()
    opt = make(model.parameters(), max_iter=6)
    calls = []
    opt.register_step_pre_hook(lambda o, args, kwargs: calls.append(("pre", o.t)))
    opt.register_step_post_hook(lambda o, args, kwargs: calls.append(("post", o.t)))
    loss = opt.step(_loss(model, 0))
    assert calls == [("pre", 0), ("post", 6)]
    assert opt.last.iterations == 6 and opt.last.step == 5
    assert loss.item() > opt.last.loss  # the loss at the start of the call, not the last


@pytest.mark.parametrize("bad", ["inf", "nan"])
def test_a_non_finite_loss_is_handled_as_in_the_numpy_engine(bad):
    value = float(bad)
    model = _net()
    before = [p.detach().clone() for p in model.parameters()]
    x, y = _batch(0)
    opt = dt.GD(model.parameters(), lr=optim.Armijo())
    opt.step(lambda: nn.functional.cross_entropy(model(x), y) * value)
    w = ds.tensor(np.ones(3), requires_grad=True)
    ref = optim.GD([w], lr=optim.Armijo())
    ref.step(lambda: (w * w).sum() * value)
    assert not opt.last.finite and not ref.last.finite
    assert (opt.last.lr, opt.last.evaluations) == (ref.last.lr, ref.last.evaluations)
    assert math.isnan(opt.last.loss) == math.isnan(ref.last.loss)
    for p, b in zip(model.parameters(), before):
        assert torch.equal(p, b)


# ----------------------------------------------------------------------------- param groups
def test_param_groups_as_in_torch():
    ours, theirs = _net(), _net()
    first, second = list(ours[0].parameters()), list(ours[2].parameters())
    opt = dt.GD([{"params": first, "lr": 0.3, "weight_decay": 0.1}, {"params": second}],
                lr=0.05)
    ref = torch.optim.SGD([{"params": theirs[0].parameters(), "lr": 0.3, "weight_decay": 0.1},
                           {"params": theirs[2].parameters()}], lr=0.05)
    for step in range(4):
        opt.step(_loss(ours, step))
        ref.zero_grad()
        _loss(theirs, step)().backward()
        ref.step()
    for a, b in zip(ours.parameters(), theirs.parameters()):
        assert _close(a, b)
    assert [g["lr"] for g in opt.param_groups] == [0.3, 0.05]
    assert [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0]


def test_add_param_group_before_the_first_step_only():
    model = _net()
    opt = dt.GD(model[0].parameters(), lr=0.1)
    opt.add_param_group({"params": model[2].parameters(), "lr": 0.2})
    before = [p.detach().clone() for p in model[2].parameters()]
    opt.step(_loss(model, 0))
    assert all(not torch.equal(p, b) for p, b in zip(model[2].parameters(), before))
    assert opt.param_groups[1]["lr"] == 0.2
    with pytest.raises(ConfigError, match="after the first step"):
        opt.add_param_group({"params": [nn.Parameter(torch.zeros(2))]})


# ----------------------------------------------------------------------------- state_dict
CASES = {
    "armijo-momentum": lambda p: dt.GD(p, lr=optim.Armijo(c1=0.1), momentum=0.5),
    "wolfe-adam": lambda p: dt.Adam(p, lr=optim.StrongWolfe()),
    "subgradient-polyak": lambda p: dt.Subgradient(p, lr=optim.Polyak(f_star=None)),
    "lbfgs": lambda p: dt.LBFGS(p, history_size=3),
    "cg": lambda p: dt.CG(p, beta="HS"),
}


def _save_load(state: dict, device: str) -> dict:
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True, map_location=device)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("src", DEVICES)
@pytest.mark.parametrize("dst", DEVICES)
def test_state_dict_round_trip_continues_the_run(case, src, dst):
    # a run of 6 steps on dst, and one saved after 3 steps on src, loaded on dst, resumed
    whole = _net(dst)
    opt = CASES[case](whole.parameters())
    for step in range(6):
        opt.step(_loss(whole, step, dst))
    first = _net(src)
    opt1 = CASES[case](first.parameters())
    for step in range(3):
        opt1.step(_loss(first, step, src))
    saved = _save_load(opt1.state_dict(), "cpu")  # as a checkpoint file read anywhere
    resumed = _net(dst)
    with torch.no_grad():
        for p, q in zip(resumed.parameters(), first.parameters()):
            p.copy_(q)
    opt2 = CASES[case](resumed.parameters())
    opt2.load_state_dict(saved)
    for tensor in _tensors(opt2.state_dict()):
        assert tensor.device.type == dst
    assert opt2.t == 3
    for step in range(3, 6):
        opt2.step(_loss(resumed, step, dst))
    for a, b in zip(resumed.parameters(), whole.parameters()):
        if src == dst:
            assert torch.equal(a, b)
        else:  # different kernels on the two devices: equal to rounding
            assert _close(a, b, 1e-9)
    assert opt2.last.lr == pytest.approx(opt.last.lr, rel=0 if src == dst else 1e-9)


def _tensors(value):
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _tensors(v)


def test_state_dict_layout_and_dtype_on_load():
    model = _net()
    opt = dt.GD(model.parameters(), lr=optim.Armijo(), momentum=0.9)
    opt.step(_loss(model, 0))
    state = opt.state_dict()
    assert sorted(state) == ["descend", "param_groups", "state"]
    assert state["param_groups"][0]["params"] == [0, 1, 2, 3]
    assert set(state["state"]) == {0, 1, 2, 3}
    assert state["descend"]["t"] == 1
    assert set(state["param_groups"][0]["rule"]) == {"previous", "first_accepted"}
    # loaded into a float32 copy of the model, the buffers take the parameters' dtype
    small = _net(dtype=torch.float32)
    opt32 = dt.GD(small.parameters(), lr=optim.Armijo(), momentum=0.9)
    opt32.load_state_dict(_save_load(state, "cpu"))
    assert all(t.dtype == torch.float32 for t in opt32.state_dict()["state"][0].values())


def test_bad_optimizer_states_are_named():
    model = _net()
    opt = dt.GD(model.parameters(), lr=0.1, momentum=0.9)
    opt.step(_loss(model, 0))
    state = opt.state_dict()
    with pytest.raises(ConfigError, match="missing"):
        opt.load_state_dict({"t": 1})
    other = dt.GD([{"params": model[0].parameters()}, {"params": model[2].parameters()}],
                  lr=0.1, momentum=0.9)
    with pytest.raises(ConfigError, match="1 parameter groups, this optimizer has 2"):
        other.load_state_dict(state)
    narrow = dt.GD(model[0].parameters(), lr=0.1, momentum=0.9)
    with pytest.raises(ConfigError, match="4 parameters"):
        narrow.load_state_dict(state)
    wrong = _save_load(state, "cpu")
    wrong["state"][0]["momentum_buffer"] = torch.zeros(2, 2, dtype=torch.float64)
    with pytest.raises(ShapeError, match=r"shape \(2, 2\)"):
        opt.load_state_dict(wrong)


# ----------------------------------------------------------------------------- the closure
def test_closures_that_break_the_contract_are_named():
    model = _net()
    x, y = _batch(0)
    opt = dt.GD(model.parameters(), lr=0.1)

    def calls_backward():
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return loss

    opt.step(calls_backward)  # torch's convention is accepted (test_loops.py)
    assert opt.last.closure_backward
    with pytest.raises(ShapeError, match=r"scalar loss, got shape \(16,\)"):
        opt.step(lambda: nn.functional.cross_entropy(model(x), y, reduction="none"))
    with pytest.raises(TypeError, match=r"torch\.Tensor, got float"):
        opt.step(lambda: nn.functional.cross_entropy(model(x), y).detach().item())
    with pytest.raises(GradientError, match="does not require grad"):
        opt.step(lambda: nn.functional.cross_entropy(model(x), y).detach())
    search = dt.GD(model.parameters(), lr=optim.Armijo())
    with pytest.raises(ConfigError, match="pass step\\(closure\\)"):
        search.step()
    model.zero_grad(set_to_none=True)
    with pytest.raises(GradientError, match=r"needs \.grad"):
        opt.step()
