"""What every picture of ``descend.plot`` shares: a bare figure, its checked target, saving.

Figures are matplotlib ``Figure`` objects made without pyplot, so that drawing changes no
global state (no backend is chosen, no figure is left open); files are rendered with Agg
and written atomically (:func:`descend._output.write_output`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .._output import PLOT_FORMATS, target_kind, write_output
from ..errors import ConfigError


def new_figure(**kwargs: Any) -> Any:
    """A matplotlib ``Figure`` (no pyplot); a clear ImportError without matplotlib."""
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - matplotlib is an optional dependency
        raise ImportError("descend.plot needs matplotlib: pip install 'descend[plot]'") from exc
    return Figure(**kwargs)


def check_target(path: str | Path | None, what: str) -> Path | None:
    """``path`` as a Path after checking it can take an image: a known image suffix (or
    ``"-"``, PNG on standard output) and no directory in the way; a ConfigError naming
    the problem otherwise. None stays None."""
    if path is None:
        return None
    if not isinstance(path, str | Path):
        raise TypeError(f"{what}: path must be a str or a Path, got {type(path).__name__}")
    path = Path(path)
    if str(path) != "-" and path.suffix.lower() not in PLOT_FORMATS:
        raise ConfigError(f"{what} {path}: unknown image format {path.suffix or '(none)'!r}; "
                          f"use one of {', '.join(PLOT_FORMATS[:6])}")
    target_kind(path, what=what, error=ConfigError)
    return path


def save(fig: Any, path: Path, what: str, dpi: int = 100) -> None:
    """Write ``fig`` to ``path`` in the format its suffix names (PNG for ``"-"``)."""
    fmt = path.suffix.lower().lstrip(".") or "png"
    write_output(path, lambda fh: fig.savefig(fh, dpi=dpi, format=fmt), what=what)
