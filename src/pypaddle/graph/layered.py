"""Directed acyclic graphs that know their layers."""

from __future__ import annotations

import os
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import networkx as nx

from pypaddle.graph.io import GRAPH_CLASSES, read, write
from pypaddle.graph.layering import layer_index

__all__ = ["CachedLayeredGraph", "LayeredGraph"]


def _invalidating(name: str):
    mutate = getattr(nx.DiGraph, name)

    def method(self: LayeredGraph, *args: Any, **kwargs: Any) -> Any:
        self._layer_cache = None
        return mutate(self, *args, **kwargs)

    method.__name__ = name
    method.__qualname__ = f"LayeredGraph.{name}"
    method.__doc__ = mutate.__doc__
    return method


class LayeredGraph(nx.DiGraph):
    """A ``networkx.DiGraph`` that is a DAG and answers questions about its layers.

    The layer of a vertex is the length of the longest path from a source to it; sources
    are layer 0. The layer index is computed once, on the first question, and forgotten
    by every method that adds or removes vertices or edges (``clear`` included), so it
    never goes stale. Views (``subgraph``, ``reverse(copy=False)``, ``copy(as_view=True)``)
    recompute it on every question, since the graph they show may change under them.

    Examples
    --------
    >>> structure = LayeredGraph()
    >>> structure.add_edges_from([(0, 2), (1, 2), (2, 3), (0, 3)])
    >>> structure.num_layers, structure.layers
    (3, [0, 1, 2])
    >>> structure.get_vertices(0), structure.get_layer(3)
    ([0, 1], 2)
    >>> structure.layer_connection_size(0, 2)
    1
    """

    def __init__(self, incoming_graph_data: Any = None, **attr: Any) -> None:
        self._layer_cache: tuple[dict[Hashable, int], dict[int, list[Hashable]]] | None = None
        super().__init__(incoming_graph_data, **attr)

    # Every method that changes the vertex or edge set forgets the layer index.
    add_node = _invalidating("add_node")
    add_nodes_from = _invalidating("add_nodes_from")
    remove_node = _invalidating("remove_node")
    remove_nodes_from = _invalidating("remove_nodes_from")
    add_edge = _invalidating("add_edge")
    add_edges_from = _invalidating("add_edges_from")
    add_weighted_edges_from = _invalidating("add_weighted_edges_from")
    remove_edge = _invalidating("remove_edge")
    remove_edges_from = _invalidating("remove_edges_from")
    update = _invalidating("update")
    clear = _invalidating("clear")
    clear_edges = _invalidating("clear_edges")

    # -- the layer index ---------------------------------------------------------------
    def _index(self) -> tuple[dict[Hashable, int], dict[int, list[Hashable]]]:
        if self._is_view():
            # A view (subgraph, reverse, copy(as_view=True)) shares its data with a graph
            # that can change without telling it, so it has no cache to keep valid.
            return layer_index(self)
        cache = getattr(self, "_layer_cache", None)
        if cache is None:
            cache = self._layer_cache = layer_index(self)
        return cache

    def _is_view(self) -> bool:
        # networkx marks every view (graphviews.generic_graph_view, subgraph_view) by
        # pointing ``_graph`` at the graph it shows.
        return self.__dict__.get("_graph") is not None

    @property
    def layer_of_vertex(self) -> dict[Hashable, int]:
        """Vertex -> layer (a copy: edit the graph, not this mapping)."""
        return dict(self._index()[0])

    @property
    def vertices_by_layer(self) -> dict[int, list[Hashable]]:
        """Layer -> vertices in insertion order (a copy)."""
        return {layer: list(vs) for layer, vs in self._index()[1].items()}

    @property
    def num_layers(self) -> int:
        """Number of layers (0 for an empty graph)."""
        return len(self._index()[1])

    @property
    def layers(self) -> list[int]:
        """The layer numbers, ``[0, 1, ..., num_layers - 1]``."""
        return list(range(self.num_layers))

    @property
    def first_layer(self) -> int:
        """The first layer number (always 0)."""
        return 0

    @property
    def last_layer(self) -> int:
        """The last layer number (``num_layers - 1``)."""
        return self.num_layers - 1

    @property
    def first_layer_size(self) -> int:
        """Number of vertices in the first layer (the sources)."""
        return self.get_layer_size(self.first_layer)

    @property
    def last_layer_size(self) -> int:
        """Number of vertices in the last layer."""
        return self.get_layer_size(self.last_layer)

    def get_layer(self, vertex: Hashable) -> int:
        """The layer of ``vertex``."""
        try:
            return self._index()[0][vertex]
        except KeyError:
            raise KeyError(f"vertex {vertex!r} is not in the graph") from None

    def get_vertices(self, layer: int) -> list[Hashable]:
        """The vertices of ``layer`` in insertion order (empty for a layer that does not exist)."""
        return list(self._index()[1].get(layer, []))

    def get_layer_size(self, layer: int) -> int:
        """Number of vertices in ``layer``."""
        return len(self._index()[1].get(layer, []))

    def layer_connection_size(self, source_layer: int, target_layer: int) -> int:
        """Number of edges from vertices of ``source_layer`` to vertices of ``target_layer``."""
        layer_of, vertices_by_layer = self._index()
        return sum(
            1
            for vertex in vertices_by_layer.get(source_layer, [])
            for successor in self._succ[vertex]
            if layer_of[successor] == target_layer
        )

    def layer_connected(self, source_layer: int, target_layer: int) -> bool:
        """Whether at least one edge runs from ``source_layer`` to ``target_layer``."""
        layer_of, vertices_by_layer = self._index()
        return any(
            layer_of[successor] == target_layer
            for vertex in vertices_by_layer.get(source_layer, [])
            for successor in self._succ[vertex]
        )

    # -- files (the original API) ------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the graph to ``path`` (``.graphml`` or ``.json``): :func:`pypaddle.graph.write`."""
        return write(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> LayeredGraph:
        """Read a graph written by :meth:`save` as an instance of this class.

        See :func:`pypaddle.graph.read`, which returns the class the file records.

        Examples
        --------
        >>> import pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "structure.graphml"
        >>> _ = CachedLayeredGraph([(1, 3), (2, 3), (3, 4)]).save(path)
        >>> loaded = LayeredGraph.load(path)
        >>> type(loaded).__name__, list(loaded.edges), loaded.num_layers
        ('LayeredGraph', [(1, 3), (3, 4), (2, 3)], 3)
        """
        graph = read(path)
        return graph if type(graph) is cls else cls(graph)

    def _repr_png_(self) -> bytes | None:
        """The structure as a picture in Jupyter (:func:`pypaddle.graph.draw`'s drawing);
        nothing for an empty graph or one that is not a DAG, which show as text."""
        from pypaddle.errors import PaddleError
        from pypaddle.graph.drawing import png

        if self.number_of_nodes() == 0:
            return None
        try:
            return png(self)
        except PaddleError:
            return None


class CachedLayeredGraph(LayeredGraph):
    """The name the original pypaddle API gave its layered graph; same as :class:`LayeredGraph`."""


# Files may name these classes; pypaddle.graph.io reads them back as such.
GRAPH_CLASSES.update({"LayeredGraph": LayeredGraph, "CachedLayeredGraph": CachedLayeredGraph})
