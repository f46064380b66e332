"""What a run is given, checked, and where its steps come from: for each step, a closure
that evaluates the loss on one batch, and the batch's number of samples.

:func:`check_settings` and :func:`check_model_parameters` refuse bad settings, and an
optimizer over another model's parameters, before anything runs.

:func:`source_of` makes them from ``fit``'s data: (X, y) arrays (one batch, or seeded
shuffled mini-batches) or an iterable of batches. Its closures are
:class:`~descend.train.capture.Batch` objects, so a capturing engine can replay them, and
with integer targets they count the training accuracy (:class:`~descend.train.metrics.Tally`).
``minimize`` and ``train_steps`` build a :class:`Source` from closures of their own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sized
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..autodiff.tensor import Tensor
from ..checks import check_count
from ..data import check_arrays, iterate_batches, num_batches
from ..errors import ConfigError, DataError
from ..optim.optimizer import Optimizer
from .callbacks import Callbacks, check_callbacks
from .capture import Batch
from .metrics import Tally, as_input
from .stopping import StopWhen

#: a step's closure (the loss, without backward) and its number of samples
Step = tuple[Callable[[], Any], int]


@dataclass
class Source:
    """The steps of a run: ``epoch(shuffle_rng)`` yields each step of an epoch.

    Attributes
    ----------
    epoch : callable
        ``epoch(shuffle_rng) -> iterable of (closure, samples)``, called once per epoch.
    steps_per_epoch : int or None
        Steps in an epoch, when known.
    same_batch : bool
        Every step evaluates the same objective (full-batch training).
    arrays : (X, y) or None
        The checked arrays the steps are drawn from, when there are arrays.
    tally : Tally or None
        The training accuracy the closures count.
    """

    epoch: Callable[[Any], Iterable[Step]]
    steps_per_epoch: int | None
    same_batch: bool = False
    arrays: tuple[np.ndarray, np.ndarray] | None = None
    tally: Tally | None = None


def source_of(model: Any, loss_fn: Callable[..., Tensor], data: Any, batch_size: int | None,
              shuffle: bool) -> Source:
    """The steps of ``fit``'s data: (X, y) arrays, checked (one batch when ``batch_size``
    is None, else mini-batches of ``batch_size``, shuffled with the epoch's generator when
    ``shuffle``), or an iterable of (X_batch, y_batch) taken as it comes.

    Raises
    ------
    DataError
        The arrays are invalid, the sequence of batches is empty, or a batch is empty
        (named by its index).
    ConfigError
        ``batch_size`` given with an iterable of batches.
    """
    tally = Tally()

    def closures(batches: Iterable[tuple[Any, Any]]) -> Iterator[Step]:
        for i, (xb, yb) in enumerate(batches):
            if len(xb) == 0:
                raise DataError(f"batch {i} of the data is empty (0 samples): every batch needs "
                                "at least one sample")
            xt = xb if isinstance(xb, Tensor) else as_input(np.asarray(xb))
            classes = getattr(yb, "dtype", None) is not None and yb.dtype.kind in "iu"
            yield Batch(model, loss_fn, xt, yb, tally if classes else None), len(xb)

    arrays = isinstance(data, tuple | list) and len(data) == 2 and not isinstance(data[0], tuple)
    if not arrays:
        if batch_size is not None:
            raise ConfigError("batch_size applies to (X, y) arrays, not to an iterable of batches")
        steps = len(data) if isinstance(data, Sized) else None
        if steps == 0:
            raise DataError("the data has no batches (an empty sequence of batches)")
        return Source(lambda rng: closures(data), steps, tally=tally)
    X, y = check_arrays(data[0], data[1])
    if batch_size is None:  # one batch: one closure, the same objective every step
        full = list(closures([(X, y)]))
        return Source(lambda rng: full, 1, same_batch=True, arrays=(X, y), tally=tally)
    return Source(
        lambda rng: closures(iterate_batches(X, y, batch_size, shuffle=shuffle, rng=rng)),
        num_batches(len(X), batch_size), arrays=(X, y), tally=tally)


def validation_arrays(validation: Any) -> tuple[np.ndarray, np.ndarray]:
    """``fit``'s ``validation`` pair (X, y), checked as its training data are.

    Raises
    ------
    DataError
        Not a pair, or the arrays are invalid (the message says it is the validation data).
    """
    if not isinstance(validation, tuple | list) or len(validation) != 2:
        raise DataError("validation must be a pair (X, y)")
    try:
        return check_arrays(validation[0], validation[1])
    except DataError as exc:
        raise DataError(f"validation data: {exc}") from None


def check_settings(optimizer: Any, stop: Any, callbacks: Callbacks, **counts: Any) -> None:
    """Refuse a count below 1 among ``counts`` (by name), an optimizer that is not
    descend's, a ``stop`` that is not a :class:`StopWhen`, a callback that is neither a
    :class:`Callback` nor callable."""
    for name, value in counts.items():
        check_count(name, value)
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be a descend optimizer, got {type(optimizer).__name__}")
    if stop is not None and not isinstance(stop, StopWhen):
        raise TypeError(f"stop must be a StopWhen, got {type(stop).__name__}")
    check_callbacks(callbacks)


def check_model_parameters(model: Any, optimizer: Optimizer) -> None:
    """An optimizer built over parameters none of which are the model's would train
    nothing: refuse it (parameters beyond the model's, e.g. a loss's own, are fine)."""
    parameters = getattr(model, "parameters", None)
    if not callable(parameters):
        return
    mine = {id(p) for p in parameters()}
    if mine and not any(id(p) in mine for p in optimizer.params):
        raise ConfigError(
            f"the optimizer's {len(optimizer.params)} parameters are not the model's "
            f"({len(mine)} parameters): build it over model.parameters() of this model"
        )
