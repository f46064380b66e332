"""Pictures of the method: the backward graph, the report of a run.

Drawing needs matplotlib, imported inside the functions that draw: ``import descend``
imports no plotting library.
"""

from .graph import GraphNode, GraphRecord, GraphRecording, draw_graph, graph_dot, record_graph

__all__ = ["GraphNode", "GraphRecord", "GraphRecording", "draw_graph", "graph_dot",
           "record_graph"]
