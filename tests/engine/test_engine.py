"""The engine seam: one protocol, injected into optimizers at construction.

Every optimizer takes ``engine=`` (a NumPy engine by default) and hands it to its direction
and weight-decay term; ``use_engine`` is the one way to change it; ``evaluate`` and the
random-state comparison are written once; the core options exist on every optimizer.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import pytest

import descend as ds
from descend import backend, optim
from descend.engine import CaptureEngine, Engine, NumpyEngine
from descend.errors import ConfigError

CLASSES = ["GD", "Adam", "Subgradient", "LBFGS", "CG"]
#: the options every optimizer takes, keyword-only where marked
COMMON = {"params": False, "lr": False, "weight_decay": False, "max_grad_norm": True,
          "engine": True}


def _params() -> list[Any]:
    return list(ds.nn.Linear(3, 2, rng=0).parameters())


@pytest.mark.parametrize("name", CLASSES)
def test_every_optimizer_takes_the_core_options(name: str) -> None:
    sig = inspect.signature(getattr(optim, name))
    for option, keyword_only in COMMON.items():
        assert option in sig.parameters, f"{name} lacks {option}"
        kind = sig.parameters[option].kind
        assert (kind is inspect.Parameter.KEYWORD_ONLY) == keyword_only, (name, option)
    assert sig.parameters["engine"].default is None
    assert sig.parameters["max_grad_norm"].default is None


@pytest.mark.parametrize("name", CLASSES)
def test_the_engine_is_injected_and_shared_with_the_direction(name: str) -> None:
    engine = NumpyEngine()
    opt = getattr(optim, name)(_params(), engine=engine)
    assert opt.engine is engine and opt.direction.engine is engine
    default = getattr(optim, name)(_params())
    assert type(default.engine) is NumpyEngine and default.direction.engine is default.engine


@pytest.mark.parametrize("bad", ["numpy", NumpyEngine, object(), 3])
def test_a_bad_engine_is_refused_by_name(bad: Any) -> None:
    with pytest.raises(TypeError, match="engine"):
        optim.GD(_params(), engine=bad)


def test_the_engine_is_not_patched_from_outside() -> None:
    opt = optim.GD(_params())
    with pytest.raises(AttributeError):
        opt.engine = NumpyEngine()  # type: ignore[misc]


def test_use_engine_switches_every_part_and_hands_back_the_previous_one() -> None:
    opt = optim.GD(_params(), momentum=0.9, weight_decay=0.1)
    first = opt.engine
    captured = CaptureEngine()
    assert opt.use_engine(captured) is first
    assert opt.engine is captured and opt.direction.engine is captured
    assert opt._decay.engine is captured
    assert opt.use_engine(first) is captured and opt.engine is first


def test_use_engine_refuses_an_engine_over_other_arrays() -> None:
    class Other(NumpyEngine):
        name = "other"
        arrays = "other"

    opt = optim.GD(_params())
    with pytest.raises(ConfigError, match="other arrays"):
        opt.use_engine(Other())


def test_evaluate_and_the_random_state_comparison_are_written_once() -> None:
    assert NumpyEngine.evaluate is Engine.evaluate
    assert CaptureEngine.evaluate is Engine.evaluate
    assert NumpyEngine.rng_same is backend.rng_same
    assert isinstance(NumpyEngine(), Engine) and isinstance(CaptureEngine(), Engine)
    a = backend.rng_snapshot()
    assert backend.rng_same(a, backend.rng_snapshot())
    backend.global_rng().random()
    assert not backend.rng_same(a, backend.rng_snapshot())
    assert not backend.rng_same(a, None)
    backend.rng_restore(a)  # (leave the global generator as it was)


def test_the_state_of_a_numpy_engine_is_numpy_arrays() -> None:
    opt = optim.LBFGS(_params())
    x = np.arange(3.0)
    saved = opt.engine.to_state([x])
    assert isinstance(saved[0], np.ndarray) and saved[0] is not x
    assert not hasattr(NumpyEngine, "to_numpy")


def test_the_torch_engine_shares_evaluate_and_says_what_its_state_is() -> None:
    torch = pytest.importorskip("torch")
    from descend.torch import TorchEngine

    assert TorchEngine.evaluate is Engine.evaluate
    assert not hasattr(TorchEngine, "to_numpy")  # it returned tensors under that name
    engine = TorchEngine([torch.zeros(2, requires_grad=True)])
    saved = engine.to_state([torch.ones(2)])
    assert isinstance(saved[0], torch.Tensor)
    assert isinstance(engine, Engine) and engine.arrays == "torch"
