"""Training: fit(), stopping criteria, and the History it returns."""

from ..autodiff.capture import captured_step
from .history import Best, EpochRecord, History, StopReason
from .loop import Callback, evaluate, fit
from .stopping import StopWhen
from .tensorboard import TensorBoardLogger  # imports tensorboardX only when one is made

__all__ = [
    "Best",
    "Callback",
    "EpochRecord",
    "History",
    "StopReason",
    "StopWhen",
    "TensorBoardLogger",
    "captured_step",
    "evaluate",
    "fit",
]
