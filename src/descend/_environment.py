"""The environment that decides floating-point bits: CPU, instruction sets, library versions.

Two runs of the same seeded code give the same bits only where every operation rounds the
same way: the same CPU features picked by NumPy's SIMD dispatch and by OpenBLAS's kernel
choice, and the same releases of NumPy, SciPy, OpenBLAS and torch. :func:`fingerprint` records
exactly those, so that a test comparing bits can say which environment wrote them and fall
back to stated tolerances anywhere else (``python -m descend._environment`` prints it).
"""

from __future__ import annotations

import json
import platform
from importlib import metadata

__all__ = ["differences", "fingerprint"]

#: the libraries whose releases change how descend's arithmetic rounds
LIBRARIES = ("numpy", "scipy", "torch")


def _cpu() -> tuple[str, str]:
    """The CPU's vendor and model name, from /proc/cpuinfo where there is one."""
    vendor, model = "", ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "vendor_id" and not vendor:
                    vendor = value.strip()
                elif key in ("model name", "Model", "cpu model") and not model:
                    model = value.strip()
    except OSError:
        pass
    return vendor or platform.machine(), model or platform.processor() or platform.machine()


def _simd() -> str:
    """The instruction-set extensions NumPy's dispatch found on this CPU (its own detection)."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:  # NumPy < 2
        from numpy.core._multiarray_umath import __cpu_features__
    return ",".join(sorted(name for name, found in __cpu_features__.items() if found))


def _blas() -> list[str]:
    """Each BLAS library loaded by NumPy and SciPy: implementation, version, kernel family."""
    import numpy  # noqa: F401  (load the libraries threadpoolctl reports on)
    import scipy.linalg  # noqa: F401
    from threadpoolctl import threadpool_info

    return sorted({f"{pool.get('internal_api')} {pool.get('version')} "
                   f"{pool.get('architecture')}" for pool in threadpool_info()
                   if pool.get("user_api") == "blas"})


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def fingerprint() -> dict[str, str]:
    """What decides the bits of a seeded run here, as flat strings (JSON-friendly).

    Returns
    -------
    dict
        ``machine``, ``cpu_vendor``, ``cpu_model``, ``simd`` (the features NumPy dispatches
        on), ``blas`` (OpenBLAS version and the kernel family it chose), ``python`` and the
        releases of NumPy, SciPy and torch.
    """
    vendor, model = _cpu()
    return {
        "machine": platform.machine(),
        "cpu_vendor": vendor,
        "cpu_model": model,
        "simd": _simd(),
        "blas": "; ".join(_blas()),
        "python": platform.python_version(),
        **{name: _version(name) for name in LIBRARIES},
    }


def differences(recorded: dict[str, str], here: dict[str, str] | None = None) -> list[str]:
    """The entries where ``recorded`` and this environment differ, as readable lines."""
    here = fingerprint() if here is None else here
    return [f"{key}: {recorded.get(key, '(absent)')!r} there, {here.get(key, '(absent)')!r} here"
            for key in sorted(set(recorded) | set(here)) if recorded.get(key) != here.get(key)]


if __name__ == "__main__":  # pragma: no cover
    print(json.dumps(fingerprint(), indent=2))
