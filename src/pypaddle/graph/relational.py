"""Relational graphs (You, Leskovec, He & Xie 2020): WS-flex graphs and their two measures.

A relational graph is an undirected graph whose vertices each own a block of neurons or
channels; a relational network exchanges messages along its edges in every layer (see
:mod:`pypaddle.sparse.relational`). You et al. sample such graphs with *WS-flex*, a
Watts–Strogatz generator whose average degree ``k`` may be any real number, and describe
each by its average clustering coefficient ``C`` and average shortest-path length ``L``.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence

import networkx as nx
import numpy as np
from scipy import sparse
from scipy.sparse import csgraph

from pypaddle._core.checks import check_count, check_probability, check_real
from pypaddle._core.seeds import Seed, numpy_generator
from pypaddle.errors import InputTypeError
from pypaddle.graph.analysis import _clustering, _mean_distance, _undirected
from pypaddle.graph.generators import _rewire_far_ends
from pypaddle.graph.layering import edge_index
from pypaddle.graph.transforms import to_dag

__all__ = ["average_clustering", "average_path_length", "ws_flex"]


def ws_flex(
    n: int,
    k: float,
    p: float,
    *,
    seed: Seed = None,
    order: str | Sequence[Hashable] | None = None,
) -> nx.Graph:
    """A WS-flex graph: a ring lattice of any real average degree ``k``, randomly rewired.

    The graph has ``E = n k / 2`` edges, rounded to the nearest integer (halves up), and
    so average degree ``2 E / n``, the nearest to ``k`` that ``n`` vertices allow. They are
    spread over the ring as evenly as possible, then rewired:

    1. Degrees: ``2 E = n d + s`` with ``0 <= s < n``; ``s`` vertices get degree ``d + 1``,
       the others ``d``, so degrees differ by at most 1.
    2. Ring lattice: every vertex ``i`` is joined to ``i + 1 .. i + d // 2`` (mod ``n``),
       the Watts–Strogatz ring. The degree still missing (``s`` vertices one more for even
       ``d``; every vertex one more and ``s`` of them two more for odd ``d``) comes from the
       nearest free ring distance ``m``: a matching of ``(i, i + m)`` edges spaced evenly
       round the ring (for odd ``d`` every ``(i, i + m)`` but such a matching). Where the
       edges at distance ``m`` cannot give exactly those degrees (their cycles are too
       short), the next distance that can is used; for an even ``n`` and odd ``d`` that
       may be the diameters ``(i, i + n / 2)``.
    3. Rewiring: every edge moves its far end, with probability ``p``, to a vertex drawn
       uniformly among those not yet joined to its near end, as in
       :func:`~pypaddle.graph.watts_strogatz` (the rewiring of You et al.'s generator).

    For an even integer ``k`` this is the Watts–Strogatz graph; ``p = 0`` gives the
    lattice itself; ``k = n - 1`` the complete graph. You et al. use 64 vertices, ``k``
    from 2 to 63 and ``p`` from 0 to 1.

    Parameters
    ----------
    n : int
        Number of vertices, >= 1.
    k : float
        Average degree, a real number in ``[0, n - 1]``.
    p : float
        Rewiring probability in [0, 1].
    seed : int, numpy Generator or None
        The random seed.
    order : None, "label", "random", "degree" or a sequence of all vertices
        None (the default) returns the undirected graph, as relational networks use it;
        anything else orients it into a DAG with :func:`~pypaddle.graph.to_dag` (a
        ``"random"`` order is drawn from the same seed).

    Returns
    -------
    networkx.Graph or CachedLayeredGraph
        An undirected simple graph on ``0 .. n - 1`` (a DAG when ``order`` is given).

    Examples
    --------
    >>> graph = ws_flex(8, 2.5, 0.0, seed=0)
    >>> graph.number_of_edges(), sorted(d for _, d in graph.degree)
    (10, [2, 2, 2, 2, 3, 3, 3, 3])
    >>> sorted(ws_flex(6, 2, 0.0).edges) == sorted(nx.cycle_graph(6).edges)
    True
    >>> ws_flex(64, 5.3, 0.2, seed=1).number_of_edges()
    170
    >>> sorted(ws_flex(4, 2, 0.0, order="label").edges)
    [(0, 1), (0, 3), (1, 2), (2, 3)]
    """
    n = check_count(n, "n", 1)
    k = check_real(k, f"k (the average degree of {n} vertices)", minimum=0.0, maximum=n - 1.0)
    p = check_probability(p, "p")
    rng = numpy_generator(seed)
    edges = min(math.floor(n * k / 2 + 0.5), n * (n - 1) // 2)
    near, ring_far = _lattice(n, edges)
    far = _rewire_far_ends(n, near, ring_far, p, rng) if edges else ring_far
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    graph.add_edges_from(zip(near.tolist(), far.tolist()))
    if order is None:
        return graph
    return to_dag(graph, order=order, seed=rng)


def _lattice(n: int, edges: int) -> tuple[np.ndarray, np.ndarray]:
    """The ring lattice of ``edges`` edges on ``n`` vertices with degrees within 1.

    Returns the edges as arrays ``(i, (i + distance) % n)``; see :func:`ws_flex`, step 2.
    """
    degree, surplus = divmod(2 * edges, n)
    half = degree // 2
    starts = [np.repeat(np.arange(n), half)]
    distances = [np.tile(np.arange(1, half + 1), n)]

    def add(chosen: np.ndarray, distance: int) -> None:
        starts.append(chosen)
        distances.append(np.full(chosen.size, distance))

    if degree % 2 == 0:  # `surplus` vertices need one more edge: a matching
        add(*_nearest_matching(n, half + 1, surplus // 2))
    else:  # every vertex one more, `surplus` of them two more
        for distance in range(half + 1, (n + 1) // 2):
            # The whole 2-regular level but a matching of (n - surplus) / 2 edges.
            matched = _matching(n, distance, (n - surplus) // 2)
            if matched is not None:
                add(np.setdiff1d(np.arange(n), matched), distance)
                break
        else:  # even n: the diameters give every vertex one more, a matching the rest
            add(np.arange(n // 2), n // 2)
            add(*_nearest_matching(n, half + 1, surplus // 2))
    start = np.concatenate(starts).astype(np.int64)
    return start, (start + np.concatenate(distances)) % n


def _nearest_matching(n: int, distance: int, size: int) -> tuple[np.ndarray, int]:
    """``size`` disjoint edges ``(i, i + m)`` at the nearest distance ``m >= distance``."""
    if size == 0:
        return np.empty(0, dtype=np.int64), distance
    for nearest in range(distance, n // 2 + 1):
        matched = _matching(n, nearest, size)
        if matched is not None:
            return matched, nearest
    raise AssertionError(f"no matching of {size} edges on a ring of {n}")  # pragma: no cover


def _matching(n: int, distance: int, size: int) -> np.ndarray | None:
    """Starts ``i`` of ``size`` vertex-disjoint edges ``(i, i + distance)``, spaced evenly.

    The edges at one distance form ``g = gcd(n, distance)`` cycles of ``n / g`` vertices
    (or, at ``distance = n / 2``, ``n / 2`` separate diameters); every other edge of a
    cycle at most. None if ``size`` disjoint edges do not fit.
    """
    if 2 * distance == n:
        if size > n // 2:
            return None
        return np.arange(size) * (n // 2) // max(size, 1)
    cycles = math.gcd(n, distance)
    length = n // cycles
    if size > cycles * (length // 2):
        return None
    # Cycle c holds the vertices c, c + distance, c + 2 distance, ...; its edge t joins
    # positions t and t + 1. Edges at positions floor(j length / count) never touch.
    count = size // cycles + (np.arange(cycles) < size % cycles)
    cycle = np.repeat(np.arange(cycles), count)
    within = np.arange(size) - np.repeat(np.cumsum(count) - count, count)
    position = within * length // np.maximum(count[cycle], 1)
    return (cycle + position * distance) % n


def _undirected_adjacency(graph: nx.Graph) -> tuple[int, sparse.csr_matrix]:
    """The vertex count and symmetric 0/1 adjacency (no self-loops) of any networkx graph."""
    if not isinstance(graph, nx.Graph):
        raise InputTypeError(
            f"expected a networkx graph, got {type(graph).__name__}; build one with networkx "
            "or a pypaddle.graph generator"
        )
    vertices = list(graph)
    first, second = edge_index(graph, dict(zip(vertices, range(len(vertices)))))
    return len(vertices), _undirected(len(vertices), first, second)


def average_clustering(graph: nx.Graph) -> float:
    """The average clustering coefficient ``C`` of the undirected graph, as You et al. define it.

    The clustering of a vertex is the share of pairs of its neighbours that are joined
    (0 for fewer than two neighbours); ``C`` is its mean over all vertices. Edge
    directions, self-loops and parallel edges are ignored. Always exact (triangles
    counted on the sparse adjacency), the same number as ``networkx.average_clustering``
    of the undirected graph; NaN for a graph without vertices.

    Examples
    --------
    >>> average_clustering(nx.complete_graph(5)), average_clustering(nx.cycle_graph(5))
    (1.0, 0.0)
    >>> round(average_clustering(ws_flex(64, 8, 0.0)), 4)
    0.6429
    """
    _, adjacency = _undirected_adjacency(graph)
    return _clustering(adjacency, numpy_generator(0), exact=True)[0]


def average_path_length(graph: nx.Graph) -> float:
    """The average shortest-path length ``L`` of the undirected graph, as You et al. define it.

    The mean number of edges on a shortest path, over all ordered pairs of distinct
    vertices. Edge directions are ignored. Exact (a breadth-first search from every
    vertex, in scipy), the same number as ``networkx.average_shortest_path_length`` of the
    undirected graph. Where it is not defined it is NaN, never inf: a graph that is not
    connected, or has fewer than two vertices.

    Examples
    --------
    >>> average_path_length(nx.complete_graph(5)), average_path_length(nx.path_graph(3))
    (1.0, 1.3333333333333333)
    >>> average_path_length(nx.empty_graph(3))
    nan
    """
    count, adjacency = _undirected_adjacency(graph)
    if count < 2 or csgraph.connected_components(adjacency, directed=False)[0] > 1:
        return float("nan")
    everyone = np.arange(count)
    return _mean_distance(
        adjacency, everyone, None, numpy_generator(0), directed=False, exact=True
    )[0]
