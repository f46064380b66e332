"""Pictures of the method: what a step's line search tried, where the iterates went.

Each function returns a matplotlib ``Figure`` (made without pyplot) and writes it when
given a path. matplotlib is imported only when a picture is drawn: ``import descend``
stays free of it.
"""

from .search import line_search

__all__ = ["line_search"]
