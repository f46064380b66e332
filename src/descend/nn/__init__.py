"""Neural-network building blocks: ``Module``, ``Parameter``, layers, activations, losses.

>>> import descend as ds
>>> from descend import nn
>>> model = nn.Sequential(nn.Linear(4, 8, rng=0), nn.ReLU(), nn.Linear(8, 3, rng=1))
>>> [name for name, _ in model.named_parameters()]
['0.weight', '0.bias', '2.weight', '2.bias']
"""

from . import init
from .activations import GELU, Identity, LeakyReLU, ReLU, Sigmoid, Softplus, Tanh
from .layers import Conv2d, Dropout, Flatten, Linear, MaxPool2d, Sequential, mlp
from .losses import (
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    HingeLoss,
    HuberLoss,
    L1Loss,
    MSELoss,
    binary_cross_entropy_with_logits,
    cross_entropy,
    hinge_loss,
    huber_loss,
    l1_loss,
    l1_penalty,
    l2_penalty,
    mse_loss,
)
from .module import LoadResult, Module, Parameter
from .utils import clip_grad_norm_

__all__ = [
    "GELU",
    "BCEWithLogitsLoss",
    "Conv2d",
    "CrossEntropyLoss",
    "Dropout",
    "Flatten",
    "HingeLoss",
    "HuberLoss",
    "Identity",
    "L1Loss",
    "LeakyReLU",
    "Linear",
    "LoadResult",
    "MSELoss",
    "MaxPool2d",
    "Module",
    "Parameter",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Softplus",
    "Tanh",
    "binary_cross_entropy_with_logits",
    "clip_grad_norm_",
    "cross_entropy",
    "hinge_loss",
    "huber_loss",
    "init",
    "l1_loss",
    "l1_penalty",
    "l2_penalty",
    "mlp",
    "mse_loss",
]
