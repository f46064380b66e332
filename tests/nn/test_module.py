"""Module and Parameter: registration, walking, modes, state dicts and their errors."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import descend as ds
from descend import nn
from descend.errors import CheckpointError, DTypeError, ShapeError


class Block(nn.Module):
    """A module with parameters, a child, a buffer and a None parameter."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(np.ones(3))
        self.inner = nn.Linear(3, 2, rng=0)
        self.register_buffer("steps", np.zeros(1))
        self.register_parameter("unused", None)
        self.note = "plain attribute"

    def forward(self, x):
        return self.inner(x * self.scale)


def make_model():
    return nn.Sequential(nn.Linear(4, 3, rng=1), nn.ReLU(), Block(), nn.Dropout(0.5, rng=2))


# ------------------------------------------------------------------ Parameter
def test_parameter_requires_grad_and_is_floating():
    p = nn.Parameter(np.arange(3))
    assert p.requires_grad and p.dtype == np.float32
    assert nn.Parameter(np.zeros(2)).dtype == np.float64
    assert isinstance(p, ds.Tensor)
    assert repr(nn.Parameter([1.0, 2.0])).startswith("Parameter containing:\ntensor([1., 2.]")
    with pytest.raises(DTypeError):
        nn.Parameter([1, 2], dtype=np.int32)


def test_parameter_shares_the_array_it_is_given():
    arr = np.zeros(3, dtype=np.float32)
    p = nn.Parameter(arr)
    p.data += 1
    assert_array_equal(arr, [1.0, 1.0, 1.0])


# ------------------------------------------------------------------ registration and walking
def test_parameters_are_listed_in_registration_order_with_dotted_names():
    model = make_model()
    names = [name for name, _ in model.named_parameters()]
    assert names == ["0.weight", "0.bias", "2.scale", "2.inner.weight", "2.inner.bias"]
    assert [p.shape for p in model.parameters()] == [(3, 4), (3,), (3,), (2, 3), (2,)]
    assert all(isinstance(p, nn.Parameter) for p in model.parameters())
    assert model.num_parameters() == 12 + 3 + 3 + 6 + 2


def test_children_and_modules_walk_the_tree_depth_first():
    model = make_model()
    assert [type(m).__name__ for m in model.children()] == ["Linear", "ReLU", "Block", "Dropout"]
    assert [name for name, _ in model.named_modules()] == ["", "0", "1", "2", "2.inner", "3"]
    assert next(iter(model.modules())) is model


def test_shared_parameters_are_listed_once():
    layer = nn.Linear(2, 2, rng=0)
    model = nn.Sequential(layer, nn.ReLU(), layer)
    assert [name for name, _ in model.named_parameters()] == ["0.weight", "0.bias"]


def test_reassigning_and_deleting_attributes_keeps_the_registries_in_step():
    block = Block()
    block.scale = nn.Parameter(np.full(3, 2.0))
    assert_array_equal(dict(block.named_parameters())["scale"].data, [2.0, 2.0, 2.0])
    block.inner = nn.Linear(3, 2, bias=False, rng=0)
    assert "inner.bias" not in dict(block.named_parameters())
    del block.scale
    assert "scale" not in dict(block.named_parameters())
    block.steps = np.ones(1)
    assert_array_equal(dict(block.named_buffers())["steps"], [1.0])
    assert block.note == "plain attribute"
    with pytest.raises(TypeError, match="Parameter or None"):
        block.unused = np.ones(3)


def test_assigning_before_init_is_a_clear_error():
    class Forgetful(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(np.ones(1))

    with pytest.raises(AttributeError, match="super"):
        Forgetful()


def test_module_without_forward_says_so():
    with pytest.raises(NotImplementedError, match="forward"):
        nn.Module()(1)


def test_zero_grad_sets_every_grad_to_none():
    model = make_model()
    model.eval()
    model(ds.tensor(np.ones((2, 4), dtype=np.float32))).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


# ------------------------------------------------------------------ train / eval
def test_train_and_eval_toggle_every_module_and_dropout_follows():
    model = make_model()
    assert all(m.training for m in model.modules())
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    x = ds.tensor(np.ones((8, 4), dtype=np.float32))
    assert_array_equal(model(x).data, model(x).data)  # eval: deterministic
    model.train()
    assert all(m.training for m in model.modules())
    dropped = model[3](ds.tensor(np.ones((100,), dtype=np.float32))).data
    assert set(np.unique(dropped)) == {0.0, 2.0}
    with pytest.raises(TypeError):
        model.train("yes")


# ------------------------------------------------------------------ state dicts
def test_state_dict_copies_parameters_and_buffers_in_order():
    model = make_model()
    state = model.state_dict()
    assert list(state) == [
        "0.weight",
        "0.bias",
        "2.scale",
        "2.steps",
        "2.inner.weight",
        "2.inner.bias",
    ]
    state["0.weight"][...] = 7.0  # a copy: the model is untouched
    assert not np.any(model[0].weight.data == 7.0)


def test_state_dict_round_trip_restores_values_in_place():
    source, target = (
        make_model(),
        nn.Sequential(nn.Linear(4, 3, rng=10), nn.ReLU(), Block(), nn.Dropout(0.5)),
    )
    weight_before = target[0].weight
    array_before = target[0].weight.data
    held_by_an_optimizer = list(target.parameters())
    result = target.load_state_dict(source.state_dict())
    assert result == nn.LoadResult([], [])
    for (name, a), (_, b) in zip(source.state_dict().items(), target.state_dict().items()):
        assert_array_equal(a, b, err_msg=name)
    assert target[0].weight is weight_before and target[0].weight.data is array_before
    assert_array_equal(held_by_an_optimizer[0].data, source[0].weight.data)


def test_load_state_dict_casts_to_the_model_dtype():
    model = nn.Linear(2, 2, rng=0)
    state = {"weight": np.ones((2, 2), dtype=np.float64), "bias": [1, 2]}
    model.load_state_dict(state)
    assert model.weight.dtype == np.float32
    assert_array_equal(model.bias.data, [1.0, 2.0])


def test_load_state_dict_names_missing_and_unexpected_keys():
    model = make_model()
    state = model.state_dict()
    del state["2.inner.bias"]
    state["9.weight"] = np.zeros(1)
    with pytest.raises(CheckpointError) as info:
        model.load_state_dict(state)
    message = str(info.value)
    assert "missing keys '2.inner.bias'" in message
    assert "unexpected keys '9.weight'" in message
    assert isinstance(info.value, ValueError)
    result = model.load_state_dict(state, strict=False)
    assert result.missing_keys == ["2.inner.bias"]
    assert result.unexpected_keys == ["9.weight"]


def test_load_state_dict_names_shape_mismatches_and_changes_nothing():
    small = nn.Sequential(nn.Linear(64, 10, rng=0))
    big = nn.Sequential(nn.Linear(64, 32, rng=1))
    before = big.state_dict()
    with pytest.raises(ShapeError) as info:
        big.load_state_dict(small.state_dict())
    assert "0.weight: checkpoint has shape (10, 64), model has (32, 64)" in str(info.value)
    assert "0.bias: checkpoint has shape (10,), model has (32,)" in str(info.value)
    for name, array in big.state_dict().items():
        assert_array_equal(array, before[name])


def test_load_state_dict_rejects_a_non_mapping():
    with pytest.raises(TypeError, match="mapping"):
        nn.Linear(2, 2).load_state_dict([np.ones((2, 2))])


# ------------------------------------------------------------------ printing
def test_repr_looks_like_pytorch():
    model = nn.Sequential(nn.Linear(2, 3, rng=0), nn.ReLU(), nn.Sequential(nn.Tanh()))
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Linear(in_features=2, out_features=3, bias=True)\n"
        "  (1): ReLU()\n"
        "  (2): Sequential(\n"
        "    (0): Tanh()\n"
        "  )\n"
        ")"
    )
