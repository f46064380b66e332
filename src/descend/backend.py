"""The array namespace and the dtype policy.

Every array call in descend goes through ``xp`` so that another array library with NumPy's
interface can be slotted in. Floating data defaults to float32; float64 is kept when given.
"""

from __future__ import annotations

import weakref

import numpy as np

from .errors import ConfigError, ShapeError

xp = np

#: dtype given to floating data that arrives without one (Python floats, lists).
DEFAULT_FLOAT = np.dtype(np.float32)

_global_rng: np.random.Generator = np.random.default_rng(0)


def manual_seed(seed: int) -> None:
    """Seed descend's global random generator (initialisation, dropout, shuffling)."""
    global _global_rng
    _global_rng = np.random.default_rng(check_seed(seed))


def check_seed(seed: object, name: str = "seed") -> int:
    """``seed`` as a non-negative int, or a clear error naming it."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"{name} must be an int, got {seed!r} ({type(seed).__name__})")
    if seed < 0:
        raise ConfigError(f"{name} must be a non-negative int, got {seed}")
    return int(seed)


def global_rng() -> np.random.Generator:
    """The global generator used wherever ``rng=None``."""
    return _global_rng


def get_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    """Turn ``rng`` (a Generator, an int seed or None for the global one) into a Generator."""
    if rng is None:
        return _global_rng
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, int | np.integer) and not isinstance(rng, bool):
        return np.random.default_rng(check_seed(rng, "rng"))
    raise TypeError(f"rng must be a numpy.random.Generator, an int or None, got {rng!r}")


def as_array(data: object, dtype: object = None) -> np.ndarray:
    """Convert ``data`` to an ndarray following the dtype policy.

    Floating ndarrays keep their dtype (float64 stays float64); Python floats and lists of
    them become float32; integers and booleans keep their kind; ``dtype`` overrides all.

    Raises
    ------
    DTypeError
        The data or ``dtype`` is complex (gradients of complex functions are not defined by
        this engine), an object array (``None`` would silently become NaN) or not numeric;
        or ``dtype`` is not a NumPy dtype.
    ShapeError
        Ragged nested sequences.
    """
    from .errors import DTypeError

    if dtype is not None:
        try:
            want = np.dtype(dtype)  # type: ignore[call-overload]
        except TypeError:
            raise DTypeError(f"dtype {dtype!r} is not a NumPy dtype") from None
        if want.kind not in "fiub":
            raise DTypeError(f"cannot make a tensor of dtype {want}: descend computes with "
                             "real floating, integer and boolean data")
    if isinstance(data, np.ndarray):
        arr = data
    elif isinstance(data, np.generic):
        arr = np.asarray(data)
    else:
        try:
            arr = np.asarray(data)
        except ValueError as exc:
            raise ShapeError(
                f"cannot make a tensor from ragged nested sequences {data!r:.80}: {exc}"
            ) from None
        if dtype is None and arr.dtype == np.float64:
            arr = arr.astype(DEFAULT_FLOAT)
    # The kind is checked before any cast: casting an object array holding None to float
    # gives NaN without a word, and casting complex data drops the imaginary part.
    if arr.dtype.kind == "c":
        raise DTypeError(f"complex data (dtype {arr.dtype}) is not supported: descend "
                         "differentiates real functions of real tensors; pass the real and "
                         "imaginary parts as separate real tensors")
    if arr.dtype.kind == "O" and dtype is not None:
        arr = _numbers_only(arr)
    if arr.dtype.kind not in "fiub":
        what = "an object array" if arr.dtype.kind == "O" else f"data of dtype {arr.dtype}"
        raise DTypeError(f"cannot make a tensor from {what}; expected real numbers "
                         "(convert with np.asarray(x, dtype=float) after replacing None)")
    if dtype is not None and arr.dtype != want:
        arr = arr.astype(want)
    return arr


def _numbers_only(arr: np.ndarray) -> np.ndarray:
    """An object array cast to float64 when every element is a real number; an error naming
    the first element that is not (``None`` would otherwise become NaN)."""
    import numbers

    from .errors import DTypeError

    for index, v in np.ndenumerate(arr):
        if isinstance(v, bool | np.bool_) or not isinstance(v, numbers.Real):
            raise DTypeError(f"cannot make a tensor from an object array holding {v!r:.40} "
                             f"at index {index}; expected real numbers only")
    return arr.astype(np.float64)


def check_allocation(shape: tuple[int, ...], dtype: object, what: str) -> None:
    """Refuse, before NumPy tries, an array whose size overflows or that cannot fit in
    memory at all (``ds.zeros(10**10, 10**10)``)."""

    size = 1
    for n in shape:
        size *= n
    nbytes = size * np.dtype(dtype).itemsize  # type: ignore[call-overload]
    if nbytes > np.iinfo(np.intp).max:
        raise ShapeError(f"{what}: shape {shape} would need {nbytes:.3g} bytes, more than "
                         "any array can hold")


# Generators that models draw from (dropout layers register theirs), so that an optimizer
# can replay the same randomness at every trial point of a line search, and a checkpoint
# can save and restore every random state. Generators cannot be weakly referenced, so each
# is kept while its owner (a module) lives.
_tracked: dict[int, np.random.Generator] = {}


def track_rng(gen: np.random.Generator, owner: object) -> np.random.Generator:
    """Register ``gen``, drawn from during forward passes by ``owner``; returns it."""
    if gen is not _global_rng and id(gen) not in _tracked:
        _tracked[id(gen)] = gen
        weakref.finalize(owner, _tracked.pop, id(gen), None)
    return gen


def rng_snapshot() -> list[tuple[np.random.Generator, dict]]:
    """The states of the global generator and every tracked one."""
    gens = [_global_rng, *_tracked.values()]
    return [(g, g.bit_generator.state) for g in gens]


def rng_restore(snapshot: list[tuple[np.random.Generator, dict]]) -> None:
    """Put every generator of ``snapshot`` back in the state it had."""
    for gen, state in snapshot:
        gen.bit_generator.state = state


def rng_same(a: list[tuple[np.random.Generator, dict]] | None,
             b: list[tuple[np.random.Generator, dict]] | None) -> bool:
    """Whether two snapshots hold the same generators in the same states (no draw happened
    between them); False when either is None."""
    if a is None or b is None or len(a) != len(b):
        return False
    return all(ga is gb and sa == sb for (ga, sa), (gb, sb) in zip(a, b))
