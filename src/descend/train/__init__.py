"""Training: fit(), stopping criteria, and the History it returns."""

from .callbacks import Callback
from .capture import captured_step, explain_capture
from .history import Best, EpochRecord, History, StopReason
from .loop import fit, minimize, train_steps
from .metrics import evaluate
from .stopping import STOP_REASONS, Divergence, StopWhen
from .tensorboard import TensorBoardLogger  # imports tensorboardX only when one is made

__all__ = [
    "STOP_REASONS",
    "Best",
    "Callback",
    "Divergence",
    "EpochRecord",
    "History",
    "StopReason",
    "StopWhen",
    "TensorBoardLogger",
    "captured_step",
    "evaluate",
    "explain_capture",
    "fit",
    "minimize",
    "train_steps",
]
