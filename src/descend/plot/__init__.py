"""Pictures of the method: what a step's line search tried, where the iterates went.

Each function returns a matplotlib ``Figure`` (made without pyplot) and writes it when
given a path. matplotlib is imported only when a picture is drawn: ``import descend``
stays free of it.
"""

from .paths import Plane, path_plane, paths
from .search import line_search

__all__ = ["Plane", "line_search", "path_plane", "paths"]
