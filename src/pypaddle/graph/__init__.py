"""Structures: networkx directed acyclic graphs with layers. Knows nothing of torch."""

from pypaddle.graph.analysis import GraphSummary, layer_graph, summary
from pypaddle.graph.drawing import draw
from pypaddle.graph.generators import (
    barabasi_albert,
    complete_layered,
    erdos_renyi,
    random_layered,
    small_world_layered,
    watts_strogatz,
)
from pypaddle.graph.io import read, write
from pypaddle.graph.layered import CachedLayeredGraph, LayeredGraph
from pypaddle.graph.layering import layer_index
from pypaddle.graph.measures import graph_measures
from pypaddle.graph.relational import average_clustering, average_path_length, ws_flex
from pypaddle.graph.transforms import scale, to_dag

__all__ = [
    "CachedLayeredGraph",
    "GraphSummary",
    "LayeredGraph",
    "average_clustering",
    "average_path_length",
    "barabasi_albert",
    "complete_layered",
    "draw",
    "erdos_renyi",
    "graph_measures",
    "layer_graph",
    "layer_index",
    "random_layered",
    "read",
    "scale",
    "small_world_layered",
    "summary",
    "to_dag",
    "watts_strogatz",
    "write",
    "ws_flex",
]
