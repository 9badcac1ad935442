"""Graphs made from other graphs: any graph oriented into a DAG, a small DAG scaled up.

Both return a :class:`~pypaddle.graph.CachedLayeredGraph` with the layer of each vertex as
node attribute ``layer``, like the generators in :mod:`pypaddle.graph.generators`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any

import networkx as nx
import numpy as np

from pypaddle._core.checks import check_count
from pypaddle._core.seeds import Seed, numpy_generator
from pypaddle.errors import ConfigError, InputTypeError
from pypaddle.graph.build import add_edges_from_arrays
from pypaddle.graph.layered import CachedLayeredGraph
from pypaddle.graph.layering import edge_index, layer_array, set_layer_attribute, vertex_array

__all__ = ["scale", "to_dag"]

_ORDERS = ("label", "random", "degree")
"""The named vertex orders of :func:`to_dag` and of the undirected generators."""

# What ``order=`` takes: a named order or an explicit sequence of every vertex.
Order = str | Sequence[Hashable]


def to_dag(
    graph: nx.Graph,
    *,
    order: Order = "label",
    seed: Seed = None,
) -> CachedLayeredGraph:
    """Orient any networkx graph into a DAG along a vertex order.

    Every edge ``u - v`` (or ``u -> v``) becomes ``u -> v`` when ``u`` comes before ``v``
    in the order, else ``v -> u``, so the result is acyclic. What is kept: every vertex
    (labels, attributes and insertion order), the graph attributes, and every adjacent
    pair exactly once (the undirected skeleton). What is lost: self-loops; the direction
    of edges that point backwards (they are reversed); parallel edges of a multigraph and
    antiparallel pairs ``u -> v``, ``v -> u`` collapse into one edge, which keeps the
    attributes of the first edge in ``graph.edges`` order that already pointed forward
    (or of the first edge, when none did). The vertex attribute ``layer`` is set to the
    vertex's layer in the result, replacing any value it had. The input is not changed.

    Parameters
    ----------
    graph : networkx.Graph
        Any graph: undirected, directed with cycles, multigraph.
    order : "label", "random", "degree" or a sequence of all vertices
        ``"label"`` sorts the labels (they must be comparable); ``"random"`` is a seeded
        random permutation; ``"degree"`` puts high-degree vertices first (so hubs become
        sources), ties in insertion order; a sequence gives the order explicitly.
    seed : int, numpy Generator or None
        Seed of ``order="random"``.

    Examples
    --------
    >>> cycle = nx.DiGraph([(0, 1), (1, 2), (2, 0)])
    >>> sorted(to_dag(cycle).edges)
    [(0, 1), (0, 2), (1, 2)]
    >>> star = nx.star_graph(3)  # centre 0
    >>> sorted(to_dag(star, order=[3, 2, 1, 0]).edges)
    [(1, 0), (2, 0), (3, 0)]
    """
    if not isinstance(graph, nx.Graph):
        raise InputTypeError(f"to_dag needs a networkx graph, got {type(graph).__name__}")
    vertices = list(graph)
    count = len(vertices)
    position = dict(zip(vertices, range(count)))
    checked = _check_order(order, vertices)
    rank = _order_rank(
        checked,
        count,
        seed=seed,
        degrees=lambda: np.fromiter((d for _, d in graph.degree), np.int64, count),
    )

    edge_list = list(graph.edges(data=True))
    first = np.fromiter((position[u] for u, _, _ in edge_list), np.int64, len(edge_list))
    second = np.fromiter((position[v] for _, v, _ in edge_list), np.int64, len(edge_list))
    keep = first != second
    forward = rank[first] < rank[second]
    sources = np.where(forward, first, second)
    targets = np.where(forward, second, first)
    codes = sources * max(count, 1) + targets
    # Per pair, the first forward edge wins, else the first edge.
    index = np.arange(codes.size)
    chosen = np.lexsort((index, ~forward, codes))
    chosen = chosen[keep[chosen]]
    unique = np.ones(chosen.size, dtype=bool)
    unique[1:] = codes[chosen[1:]] != codes[chosen[:-1]]
    chosen = np.sort(chosen[unique])

    result = CachedLayeredGraph()
    result.graph.update(graph.graph)
    result.add_nodes_from(graph.nodes(data=True))
    if any(data for _, _, data in edge_list):
        labels = vertex_array(vertices)
        result.add_edges_from(
            (labels[s], labels[t], dict(edge_list[e][2]))
            for s, t, e in zip(sources[chosen].tolist(), targets[chosen].tolist(), chosen.tolist())
        )
    else:
        add_edges_from_arrays(result, vertices, sources[chosen], targets[chosen])
    set_layer_attribute(result)
    return result


def _check_order(order: Any, vertices: Sequence[Hashable]) -> str | np.ndarray:
    """``order`` checked against ``vertices``: a named order, or the positions in its order.

    Named orders are returned as they are (their ranks may need a draw or the degrees);
    an explicit order must list every vertex exactly once. Nothing is drawn, so a caller
    can check the order before it changes or draws anything.
    """
    if isinstance(order, str):
        if order not in _ORDERS:
            raise ConfigError(
                f"order must be 'label', 'random', 'degree' or a list of vertices, got {order!r}"
            )
        if order == "label":
            try:
                sequence = sorted(vertices)  # type: ignore[type-var]  # TypeError caught below
            except TypeError:
                raise InputTypeError(
                    "order='label' needs labels that compare with each other (all ints or all "
                    "strs); use order='random', order='degree' or an explicit list"
                ) from None
            return _positions(sequence, vertices)
        return order
    if not isinstance(order, Iterable):
        raise InputTypeError(
            f"order must be 'label', 'random', 'degree' or a list of vertices, got {order!r}"
        )
    sequence = list(order)
    try:
        complete = len(sequence) == len(vertices) and set(sequence) == set(vertices)
    except TypeError:  # unhashable entries
        complete = False
    if not complete:
        raise ConfigError(
            "order must list every vertex of the graph exactly once "
            f"({len(vertices)} vertices, got {len(sequence)} entries)"
        )
    return _positions(sequence, vertices)


def _positions(sequence: Sequence[Hashable], vertices: Sequence[Hashable]) -> np.ndarray:
    position = dict(zip(vertices, range(len(vertices))))
    return np.fromiter(map(position.__getitem__, sequence), np.int64, len(vertices))


def _order_rank(
    checked: str | np.ndarray, count: int, *, seed: Seed, degrees: Callable[[], np.ndarray]
) -> np.ndarray:
    """Rank of every vertex position in an order that :func:`_check_order` accepted.

    ``"random"`` draws a permutation from ``seed``; ``"degree"`` puts high-degree
    vertices first (``degrees()`` gives them by position), ties in position order.
    """
    if isinstance(checked, str):
        if checked == "random":
            permutation = numpy_generator(seed).permutation(count)
        else:
            permutation = np.argsort(-degrees(), kind="stable")
    else:
        permutation = checked
    rank = np.empty(count, dtype=np.int64)
    rank[permutation] = np.arange(count)
    return rank


def scale(structure: nx.DiGraph, sizes: int | Mapping[Hashable, int]) -> CachedLayeredGraph:
    """Blow a small DAG up into groups of neurons: a theme shaping a wide network.

    Vertex ``v`` becomes ``sizes[v]`` vertices and every edge ``u -> v`` a complete
    bipartite block from the group of ``u`` to the group of ``v``. The new vertices are
    labelled ``0 .. N - 1`` group by group (in the structure's vertex order) and carry the
    attributes ``group`` (the structure's vertex), ``member`` (position in the group) and
    ``layer`` (the group's layer, which is also the new vertex's layer). Other attributes
    of the structure are not copied.

    Parameters
    ----------
    structure : networkx.DiGraph
        A DAG, the theme.
    sizes : int or mapping
        The size of every group, or vertex -> size for each vertex; sizes >= 1.

    Examples
    --------
    >>> theme = nx.DiGraph([("a", "b"), ("b", "c"), ("a", "c")])
    >>> wide = scale(theme, {"a": 2, "b": 3, "c": 1})
    >>> wide.number_of_edges(), wide.nodes[2]
    (11, {'group': 'b', 'member': 0, 'layer': 1})
    """
    vertices, layers = layer_array(structure)
    if isinstance(sizes, Mapping):
        missing = [v for v in vertices if v not in sizes]
        if missing:
            raise ConfigError(f"sizes has no entry for vertices {missing[:5]!r}; give every vertex")
        group_sizes = np.array(
            [check_count(sizes[v], f"sizes[{v!r}]", 1) for v in vertices], np.int64
        )
    else:
        group_sizes = np.full(len(vertices), check_count(sizes, "sizes", 1), dtype=np.int64)
    position = dict(zip(vertices, range(len(vertices))))
    first, second = edge_index(structure, position)
    offsets = np.concatenate(([0], np.cumsum(group_sizes)))
    block = group_sizes[first] * group_sizes[second]
    within = np.arange(int(block.sum())) - np.repeat(np.cumsum(block) - block, block)
    target_size = np.repeat(group_sizes[second], block)
    sources = np.repeat(offsets[first], block) + within // target_size
    targets = np.repeat(offsets[second], block) + within % target_size

    total = int(offsets[-1])
    group = np.repeat(np.arange(len(vertices)), group_sizes)
    member = np.arange(total) - offsets[group]
    labels = vertex_array(vertices)
    graph = CachedLayeredGraph()
    graph.add_nodes_from(
        (label, {"group": g, "member": i, "layer": layer})
        for label, g, i, layer in zip(
            range(total), labels[group].tolist(), member.tolist(), layers[group].tolist()
        )
    )
    add_edges_from_arrays(graph, range(total), sources, targets)
    return graph
