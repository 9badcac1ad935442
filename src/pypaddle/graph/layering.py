"""Layers of a directed acyclic graph, computed in one vectorised pass.

The layer of a vertex is the length of the longest path from any source to it (networkx's
topological generations): sources are layer 0. Within a layer, vertices keep the graph's
insertion order.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable

import networkx as nx
import numpy as np

from pypaddle.errors import InputTypeError, StructureError

__all__ = [
    "edge_index",
    "layer_array",
    "layer_counts",
    "layer_index",
    "set_layer_attribute",
    "vertex_array",
]


def _check_directed(graph: object) -> None:
    if not isinstance(graph, nx.Graph):
        raise InputTypeError(
            f"a structure must be a networkx.DiGraph, got {type(graph).__name__}; "
            "build one with networkx or pypaddle.graph.CachedLayeredGraph"
        )
    if not graph.is_directed():
        raise StructureError(
            "a structure must be a directed graph, got an undirected "
            f"{type(graph).__name__}; orient its edges first (e.g. from lower to higher label)"
        )
    if graph.is_multigraph():
        raise StructureError(
            f"a structure must be a simple DiGraph, got a {type(graph).__name__}; "
            "collapse parallel edges with networkx.DiGraph(graph)"
        )


def vertex_array(vertices: list[Hashable]) -> np.ndarray:
    """Vertex labels as a 1-d object array (tuple labels stay whole)."""
    return np.fromiter(vertices, dtype=object, count=len(vertices))


def edge_index(graph: nx.DiGraph, position: dict[Hashable, int]) -> tuple[np.ndarray, np.ndarray]:
    """The edges of ``graph`` as two int64 arrays of vertex positions (sources, targets).

    Edges come out grouped by source in the graph's adjacency order; no Python-level loop
    runs per edge (the iteration happens inside ``map`` and ``np.fromiter``).
    """
    adjacency = graph.adj
    out_degree = np.fromiter(map(len, adjacency.values()), dtype=np.int64, count=len(adjacency))
    source_positions = np.fromiter(
        map(position.__getitem__, adjacency), dtype=np.int64, count=len(adjacency)
    )
    sources = np.repeat(source_positions, out_degree)
    targets = np.fromiter(
        map(position.__getitem__, itertools.chain.from_iterable(adjacency.values())),
        dtype=np.int64,
        count=int(out_degree.sum()),
    )
    return sources, targets


def _next_frontier(
    frontier: np.ndarray,
    out_degree: np.ndarray,
    row_start: np.ndarray,
    targets: np.ndarray,
    in_degree: np.ndarray,
) -> np.ndarray:
    """Remove the edges leaving ``frontier`` (in place on ``in_degree``); the next generation.

    Runs once per layer and costs O(len(frontier) + edges leaving it) array work, so a
    whole layering is O(V + E) work in ``num_layers`` steps.
    """
    degrees = out_degree[frontier]
    total = int(degrees.sum())
    if total == 0:
        return frontier[:0]
    # Position of every out-edge of the frontier in the CSR arrays, without a Python loop.
    offsets = np.repeat(row_start[frontier] - np.cumsum(degrees) + degrees, degrees)
    successors = targets[offsets + np.arange(total)]
    reached, times = np.unique(successors, return_counts=True)
    in_degree[reached] -= times
    return reached[in_degree[reached] == 0]


def layer_array(graph: nx.DiGraph) -> tuple[list[Hashable], np.ndarray]:
    """The vertices of ``graph`` in insertion order and their layers as an int64 array.

    Raises :class:`~pypaddle.errors.StructureError` naming a cycle if there is one.
    """
    _check_directed(graph)
    vertices = list(graph)
    count = len(vertices)
    position = dict(zip(vertices, range(count)))
    sources, targets = edge_index(graph, position)
    # Sources are already grouped by vertex position: a CSR row pointer is a cumsum.
    out_degree = np.bincount(sources, minlength=count)
    row_start = np.concatenate(([0], np.cumsum(out_degree)[:-1]))
    in_degree = np.bincount(targets, minlength=count)

    layers = np.full(count, -1, dtype=np.int64)
    frontier = np.flatnonzero(in_degree == 0)
    generation = 0
    # Kahn's algorithm by generations: one vectorised step per layer, never per vertex.
    while frontier.size:
        layers[frontier] = generation
        frontier = _next_frontier(frontier, out_degree, row_start, targets, in_degree)
        generation += 1

    if (layers < 0).any():
        stuck = [vertices[i] for i in np.flatnonzero(layers < 0)]
        cycle = nx.find_cycle(graph.subgraph(stuck))
        path = " -> ".join(repr(u) for u, _ in cycle) + f" -> {cycle[0][0]!r}"
        raise StructureError(
            f"the structure has a cycle: {path}; a structure must be a directed acyclic "
            "graph, so remove one of these edges"
        )
    return vertices, layers


def layer_counts(graph: nx.DiGraph) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Vertices per layer, and the layer pairs joined by edges with their edge counts.

    Returns ``widths`` (vertices of layer ``L`` at ``L``) and three arrays of the same
    length, sorted by pair: ``from_layer``, ``to_layer`` and ``count``.

    Examples
    --------
    >>> widths, low, high, count = layer_counts(nx.DiGraph([(0, 2), (1, 2), (2, 3), (0, 3)]))
    >>> widths.tolist(), low.tolist(), high.tolist(), count.tolist()
    ([2, 1, 1], [0, 0, 1], [1, 2, 2], [2, 1, 1])
    """
    vertices, layers = layer_array(graph)
    sources, targets = edge_index(graph, dict(zip(vertices, range(len(vertices)))))
    widths = np.bincount(layers) if layers.size else np.zeros(0, dtype=np.int64)
    count = max(widths.size, 1)
    pairs, weights = np.unique(layers[sources] * count + layers[targets], return_counts=True)
    return widths, pairs // count, pairs % count, weights


def layer_index(
    graph: nx.DiGraph,
) -> tuple[dict[Hashable, int], dict[int, list[Hashable]]]:
    """Layer of every vertex and vertices of every layer of a directed acyclic graph.

    The layer of a vertex is the length of the longest path from a source to it (its
    topological generation); vertices keep their insertion order within a layer. Runs in
    O(V + E) with one vectorised step per layer.

    Parameters
    ----------
    graph : networkx.DiGraph
        Any directed acyclic graph.

    Returns
    -------
    layer_of_vertex : dict
        Vertex label -> layer number.
    vertices_by_layer : dict
        Layer number -> list of vertex labels, in insertion order.

    Raises
    ------
    StructureError
        If the graph has a cycle (the message names one) or is undirected.

    Examples
    --------
    >>> import networkx as nx
    >>> layer_of_vertex, vertices_by_layer = layer_index(nx.DiGraph([(0, 1), (1, 2), (0, 2)]))
    >>> layer_of_vertex
    {0: 0, 1: 1, 2: 2}
    >>> vertices_by_layer
    {0: [0], 1: [1], 2: [2]}
    """
    vertices, layers = layer_array(graph)
    layer_of_vertex = dict(zip(vertices, layers.tolist()))
    if not vertices:
        return layer_of_vertex, {}
    order = np.argsort(layers, kind="stable")
    widths = np.bincount(layers)
    labels = vertex_array(vertices)[order]
    bounds = np.cumsum(widths)[:-1]
    vertices_by_layer = {
        layer: group.tolist() for layer, group in enumerate(np.split(labels, bounds))
    }
    return layer_of_vertex, vertices_by_layer


def set_layer_attribute(graph: nx.DiGraph) -> None:
    """Set node attribute ``layer`` of every vertex to its layer."""
    vertices, layers = layer_array(graph)
    nx.set_node_attributes(graph, dict(zip(vertices, layers.tolist())), "layer")
