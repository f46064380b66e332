"""Pictures of the method: the backward graph of a pass, what a step's line search tried,
where the iterates went, the report of a run.

Each drawing function returns a matplotlib ``Figure`` (made without pyplot), or a record
holding one, and writes it when given a path. matplotlib is imported only when a picture is
drawn: ``import descend`` stays free of it.
"""

from .graph import GraphNode, GraphRecord, GraphRecording, draw_graph, graph_dot, record_graph
from .paths import Plane, path_plane, paths
from .search import line_search

__all__ = ["GraphNode", "GraphRecord", "GraphRecording", "Plane", "draw_graph", "graph_dot",
           "line_search", "path_plane", "paths", "record_graph"]
