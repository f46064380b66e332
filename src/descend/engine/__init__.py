"""The seam a step runs on: the array, parameter, closure and random-state operations of
one optimizer step (:mod:`~descend.engine.base`), over NumPy and descend's tensors
(:mod:`~descend.engine.numpy`), and replaying recorded programs
(:mod:`~descend.engine.captured`). ``descend.torch`` adds its own over torch tensors.

An optimizer receives its engine at construction (``engine=``, a :class:`NumpyEngine` by
default) and hands it to its direction and weight-decay term; the optimizer's documented
``use_engine`` is the one way to change it afterwards.
"""

from .base import Engine, Vector
from .captured import CaptureEngine, CaptureReport, CaptureState, Fallback, Replayable
from .numpy import NumpyEngine

__all__ = ["CaptureEngine", "CaptureReport", "CaptureState", "Engine", "Fallback",
           "NumpyEngine", "Replayable", "Vector"]
