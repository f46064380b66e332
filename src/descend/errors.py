"""The errors descend raises on bad input, each a subclass of the built-in it refines.

Catch ``DescendError`` for any of them, or the built-in (``ValueError``, ``TypeError``,
``RuntimeError``) as usual.
"""

from __future__ import annotations


class DescendError(Exception):
    """Base class of every error descend raises on purpose."""


class ShapeError(DescendError, ValueError):
    """Shapes that cannot be combined (broadcasting, matmul, loading a state)."""


class DTypeError(DescendError, TypeError):
    """A dtype that the operation does not accept (e.g. gradients of integer tensors)."""


class GradientError(DescendError, RuntimeError):
    """A backward pass that cannot run (no gradient required, freed graph, missing grad)."""


class ConfigError(DescendError, ValueError):
    """A hyper-parameter or setting outside its valid range."""


class ConfigTypeError(DescendError, TypeError):
    """A hyper-parameter or setting of the wrong type (a string or a float where a seed
    goes); :class:`ConfigError` is for a value of the right type outside its range."""


class DataError(DescendError, ValueError):
    """Input data that cannot be used: missing file, ragged rows, NaN, bad labels."""


class CheckpointError(DescendError, ValueError):
    """A checkpoint that is missing, truncated, corrupted or does not match the model."""


class OutputError(DescendError, OSError):
    """An output file (history CSV, plot) that cannot be written: a directory or other
    non-regular target, a missing folder, no permission, a full disk, a name too long."""
