"""Structures: networkx directed acyclic graphs with layers. Knows nothing of torch."""

from pypaddle.graph.layered import CachedLayeredGraph, LayeredGraph
from pypaddle.graph.layering import layer_index

__all__ = ["CachedLayeredGraph", "LayeredGraph", "layer_index"]
