"""``ds.functional`` (also ``ds.F``): stateless functions on tensors.

Activations, softmax family, dropout, convolution and pooling, the fused linear map, the
losses (each with ``reduction='mean' | 'sum' | 'none'``, matching PyTorch's definitions)
and the L1 / L2 parameter penalties. Everything here is defined elsewhere (the primitives
in ``descend.autodiff.ops``, composites in ``descend.autodiff.functional``, losses in
``descend.nn.losses``); this module only gathers the public names in one place.
"""

from .autodiff.functional import (
    dropout,
    gelu,
    leaky_relu,
    log_softmax,
    logsumexp,
    relu,
    sigmoid,
    softmax,
    softplus,
    tanh,
)
from .autodiff.ops import conv2d, linear, max_pool2d
from .nn.losses import (
    binary_cross_entropy_with_logits,
    cross_entropy,
    hinge_loss,
    huber_loss,
    l1_loss,
    l1_penalty,
    l2_penalty,
    mse_loss,
)

__all__ = [
    "binary_cross_entropy_with_logits",
    "conv2d",
    "cross_entropy",
    "dropout",
    "gelu",
    "hinge_loss",
    "huber_loss",
    "l1_loss",
    "l1_penalty",
    "l2_penalty",
    "leaky_relu",
    "linear",
    "log_softmax",
    "logsumexp",
    "max_pool2d",
    "mse_loss",
    "relu",
    "sigmoid",
    "softmax",
    "softplus",
    "tanh",
]
