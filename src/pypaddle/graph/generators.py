"""Structural priors: seeded random and regular DAGs to build sparse networks from.

Every generator returns a :class:`~pypaddle.graph.CachedLayeredGraph` with integer labels
``0 .. n - 1`` and the layer of each vertex as node attribute ``layer`` (a snapshot taken
when the graph is made: edit the graph and ask ``graph.get_layer`` instead). Random
generators take ``seed=`` (anything :func:`numpy.random.default_rng` accepts) and give the
same graph for the same seed. The undirected models (:func:`erdos_renyi`,
:func:`watts_strogatz`, :func:`barabasi_albert`) are oriented into DAGs by ``order=``,
the same choice as :func:`~pypaddle.graph.to_dag`'s. Edges are drawn with numpy and
added in one pass with :func:`~pypaddle.graph.build.add_edges_from_arrays`; no Python
loop runs per edge.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import networkx as nx
import numpy as np

from pypaddle._core.checks import check_count, check_probability, check_widths
from pypaddle._core.seeds import Seed, numpy_generator
from pypaddle.errors import ConfigError
from pypaddle.graph.build import add_edges_from_arrays
from pypaddle.graph.layered import CachedLayeredGraph
from pypaddle.graph.layering import set_layer_attribute
from pypaddle.graph.transforms import Order, _check_order, _order_rank

__all__ = [
    "barabasi_albert",
    "complete_layered",
    "erdos_renyi",
    "random_layered",
    "small_world_layered",
    "watts_strogatz",
]

# Redraw rounds before giving up; clashes thin out geometrically, so a few dozen suffice.
_MAX_ROUNDS = 10_000
# From this probability on, testing every possible edge beats drawing distinct indices.
_DENSE = 0.1


# -- building the result -----------------------------------------------------------------
def _dag(
    labels: Sequence[Hashable], sources: np.ndarray, targets: np.ndarray
) -> CachedLayeredGraph:
    """A CachedLayeredGraph on ``labels`` with the given position edges and ``layer`` set."""
    graph = CachedLayeredGraph()
    add_edges_from_arrays(graph, labels, sources, targets)
    set_layer_attribute(graph)
    return graph


def _checked(order: Order, count: int) -> str | np.ndarray:
    """``order`` checked for vertices ``0 .. count - 1`` before anything is drawn."""
    if isinstance(order, str) and order == "label":
        return order  # labels are positions: nothing to sort
    return _check_order(order, range(count))


def _oriented(
    count: int,
    first: np.ndarray,
    second: np.ndarray,
    order: str | np.ndarray,
    rng: np.random.Generator,
) -> CachedLayeredGraph:
    """Undirected position pairs oriented along a checked ``order`` (see ``_check_order``).

    ``order="random"`` draws its permutation from ``rng`` after the graph, so the same
    seed gives the same undirected graph whatever the order.
    """
    if isinstance(order, str) and order == "label":
        return _dag(range(count), np.minimum(first, second), np.maximum(first, second))
    rank = _order_rank(
        order,
        count,
        seed=rng,
        degrees=lambda: np.bincount(np.concatenate((first, second)), minlength=count),
    )
    forward = rank[first] < rank[second]
    return _dag(range(count), np.where(forward, first, second), np.where(forward, second, first))


def _repeats(codes: np.ndarray, demoted: np.ndarray) -> np.ndarray:
    """Mask of the entries whose code already occurs at a preferred entry.

    Among equal codes the entries with ``demoted`` False come first, then by position;
    every entry but the first of its code is marked.
    """
    order = np.lexsort((np.arange(codes.size), demoted, codes))
    repeated = np.zeros(codes.size, dtype=bool)
    repeated[order[1:]] = codes[order[1:]] == codes[order[:-1]]
    return repeated


def _sample_pairs(rng: np.random.Generator, population: int, p: float) -> np.ndarray:
    """Indices in ``range(population)``, each present independently with probability ``p``.

    Dense draws test every index; sparse ones draw the count, then that many distinct
    indices, so the cost is O(population * p) rather than O(population).
    """
    if p >= _DENSE:
        return np.flatnonzero(rng.random(population) < p)
    count = int(rng.binomial(population, p)) if population else 0
    return np.sort(rng.choice(population, size=count, replace=False)) if count else np.empty(0, int)


# -- undirected models, oriented ---------------------------------------------------------
def erdos_renyi(
    n: int, p: float, *, order: Order = "label", seed: Seed = None
) -> CachedLayeredGraph:
    """The Erdős–Rényi graph G(n, p), every edge oriented along ``order`` (default: by label).

    Each of the ``n (n - 1) / 2`` vertex pairs is an edge with probability ``p``,
    independently. The number of edges is drawn once from the binomial distribution and
    the pairs are drawn without replacement, so the cost is O(n + edges), not O(n²).

    Parameters
    ----------
    n : int
        Number of vertices, >= 1.
    p : float
        Edge probability in [0, 1].
    order : "label", "random", "degree" or a sequence of all vertices
        How each undirected edge is oriented, as in :func:`~pypaddle.graph.to_dag`:
        ``"label"`` points it from the lower to the higher label; ``"random"`` along a
        permutation drawn from ``seed`` after the graph (the same seed gives the same
        undirected graph whatever the order); ``"degree"`` from the higher-degree end
        (hubs become sources, ties by label); a sequence of ``0 .. n - 1`` gives the
        order explicitly.
    seed : int, numpy Generator or None
        The random seed.

    Returns
    -------
    CachedLayeredGraph
        A DAG on ``0 .. n - 1`` with node attribute ``layer``.

    Examples
    --------
    >>> graph = erdos_renyi(5, 1.0, seed=0)
    >>> graph.number_of_edges(), graph.num_layers, graph.nodes[4]["layer"]
    (10, 5, 4)
    >>> erdos_renyi(50, 0.1, seed=1).edges == erdos_renyi(50, 0.1, seed=1).edges
    True
    >>> sorted(erdos_renyi(3, 1.0, order=[2, 0, 1], seed=0).edges)
    [(0, 1), (2, 0), (2, 1)]
    """
    n = check_count(n, "n", 1)
    p = check_probability(p, "p")
    checked_order = _checked(order, n)
    rng = numpy_generator(seed)
    chosen = _sample_pairs(rng, n * (n - 1) // 2, p)
    # Pair index k -> (i, j), i < j, in row-major order of the strict upper triangle.
    row_start = np.cumsum(np.arange(n - 1, -1, -1)) - np.arange(n - 1, -1, -1)
    rows = np.searchsorted(row_start, chosen, side="right") - 1
    columns = chosen - row_start[rows] + rows + 1
    return _oriented(n, rows, columns, checked_order, rng)


def watts_strogatz(
    n: int, k: int, p: float, *, order: Order = "label", seed: Seed = None
) -> CachedLayeredGraph:
    """The Watts–Strogatz small-world graph, oriented along ``order`` (default: by label).

    Start from a ring lattice in which every vertex is joined to its ``k // 2`` nearest
    neighbours on each side (an odd ``k`` rounds down, as in networkx), then move the far
    end of each edge, with probability ``p``, to a vertex drawn uniformly among those that
    are not the near end and not already joined to it. All edges are rewired at once: an
    edge that lands on a pair already joined is drawn again (ring edges that stay, then
    earlier edges, keep the pair), and an edge whose near end is already joined to every
    other vertex stays on the ring, as in networkx. The graph keeps exactly ``n (k // 2)`` edges.

    Parameters
    ----------
    n : int
        Number of vertices, >= 1.
    k : int
        Number of ring neighbours, ``0 <= k < n`` (``k // 2`` on each side).
    p : float
        Rewiring probability in [0, 1].
    order : "label", "random", "degree" or a sequence of all vertices
        How each undirected edge is oriented, as in :func:`~pypaddle.graph.to_dag`:
        ``"label"`` points it from the lower to the higher label; ``"random"`` along a
        permutation drawn from ``seed`` after the graph (the same seed gives the same
        undirected graph whatever the order); ``"degree"`` from the higher-degree end
        (hubs become sources, ties by label); a sequence of ``0 .. n - 1`` gives the
        order explicitly.
    seed : int, numpy Generator or None
        The random seed.

    Notes
    -----
    Oriented by label, the ring is one long chain: ``watts_strogatz(128, 8, 0.1)`` is
    116 layers deep with a single source, which a network built on it learns poorly
    through (see the structure warnings of :class:`~pypaddle.sparse.MaskedDeepDAN`);
    ``order="random"`` gives a far shallower DAG with many sources from the same graph.

    Examples
    --------
    >>> ring = watts_strogatz(6, 2, 0.0, seed=0)
    >>> sorted(ring.edges)
    [(0, 1), (0, 5), (1, 2), (2, 3), (3, 4), (4, 5)]
    >>> watts_strogatz(100, 4, 0.3, seed=2).number_of_edges()
    200
    >>> chain = watts_strogatz(128, 8, 0.1, seed=0)
    >>> shuffled = watts_strogatz(128, 8, 0.1, order="random", seed=0)
    >>> chain.num_layers, len(chain.get_vertices(0)), shuffled.num_layers < chain.num_layers // 2
    (116, 1, True)
    """
    n = check_count(n, "n", 1)
    k = check_count(k, "k", 0)
    if k >= n:
        raise ConfigError(f"k must be smaller than n={n}, got k={k}")
    p = check_probability(p, "p")
    checked_order = _checked(order, n)
    rng = numpy_generator(seed)
    near = np.repeat(np.arange(n), k // 2)
    ring_far = (near + np.tile(np.arange(1, k // 2 + 1), n)) % n
    return _oriented(n, near, _rewire_far_ends(n, near, ring_far, p, rng), checked_order, rng)


def _rewire_far_ends(
    n: int, near: np.ndarray, ring_far: np.ndarray, p: float, rng: np.random.Generator
) -> np.ndarray:
    """The far ends of the undirected edges ``near[i] - ring_far[i]`` after rewiring.

    Each edge moves its far end, with probability ``p``, to a vertex drawn uniformly among
    those that are not the near end and not already joined to it (the Watts–Strogatz
    rule). All edges are rewired at once: an edge that lands on a pair already joined is
    drawn again (edges that stay, then earlier edges, keep the pair), and an edge whose
    near end is already joined to every other vertex stays where it was, as in networkx.
    The edges must be distinct pairs of distinct vertices; so are the rewired ones.
    """
    far = ring_far.copy()
    rewired = rng.random(near.size) < p
    pending = np.flatnonzero(rewired)
    for _ in range(_MAX_ROUNDS):
        far[pending] = (near[pending] + rng.integers(1, n, size=pending.size)) % n
        # Ring edges that stay win a clash, then the earliest rewired edge.
        codes = np.minimum(near, far) * n + np.maximum(near, far)
        pending = np.flatnonzero(_repeats(codes, rewired))
        if not pending.size:
            break
        # A near end already joined to every other vertex keeps its ring edge, as in
        # networkx; its ring partner is then taken back from whichever edge moved there.
        settled = np.ones(near.size, dtype=bool)
        settled[pending] = False
        degree = np.bincount(near[settled], minlength=n) + np.bincount(far[settled], minlength=n)
        full = degree[near[pending]] >= n - 1
        stuck = pending[full]
        far[stuck], rewired[stuck] = ring_far[stuck], False
        pending = pending[~full]
    else:  # pragma: no cover - each round settles an edge with probability >= 1 / n
        raise ConfigError(f"could not rewire without doubling edges in {_MAX_ROUNDS} rounds")
    return far


def barabasi_albert(
    n: int, m: int, *, order: Order = "label", seed: Seed = None
) -> CachedLayeredGraph:
    """The Barabási–Albert preferential-attachment graph, oriented along ``order``.

    By label (the default) every edge points from the older to the newer vertex.

    Vertices ``0 .. m`` start as a star around vertex 0; each later vertex joins ``m``
    distinct earlier vertices, each drawn with probability proportional to its degree.
    Oriented from the lower to the higher label, the hubs are the sources. Drawn in the
    way of Batagelj and Brandes (picking uniformly from the list of edge ends) with all
    draws made at once and resolved by pointer jumping; draws that repeat a target of the
    same vertex are drawn again. ``m (n - m)`` edges.

    Parameters
    ----------
    n : int
        Number of vertices, >= 1.
    m : int
        Edges added with each new vertex, ``1 <= m < n``.
    order : "label", "random", "degree" or a sequence of all vertices
        How each undirected edge is oriented, as in :func:`~pypaddle.graph.to_dag`:
        ``"label"`` points it from the lower to the higher label; ``"random"`` along a
        permutation drawn from ``seed`` after the graph (the same seed gives the same
        undirected graph whatever the order); ``"degree"`` from the higher-degree end
        (hubs become sources, ties by label); a sequence of ``0 .. n - 1`` gives the
        order explicitly.
    seed : int, numpy Generator or None
        The random seed.

    Examples
    --------
    >>> graph = barabasi_albert(30, 2, seed=0)
    >>> graph.number_of_edges(), sorted(graph.successors(0))[:3]
    (56, [1, 2, 3])
    """
    n = check_count(n, "n", 1)
    m = check_count(m, "m", 1)
    if m >= n:
        raise ConfigError(f"m must be smaller than n={n}, got m={m}")
    checked_order = _checked(order, n)
    rng = numpy_generator(seed)
    edges = m * (n - m)
    # Edge e has two slots in the list of ends: 2e (its new vertex), 2e + 1 (its target).
    new_vertex = np.concatenate((np.arange(1, m + 1), np.repeat(np.arange(m + 1, n), m)))
    drawn = np.arange(m, edges)  # the star's edges (targets 0) are not drawn
    block_start = 2 * (m + (new_vertex[drawn] - m - 1) * m)
    pointer = np.zeros(2 * edges, dtype=np.int64)
    pending = drawn
    for _ in range(_MAX_ROUNDS):
        pointer[2 * pending + 1] = (rng.random(pending.size) * block_start[pending - m]).astype(
            np.int64
        )
        target = _resolve(pointer, new_vertex, m)
        codes = new_vertex[drawn] * n + target[drawn]
        pending = drawn[_repeats(codes, np.zeros(codes.size, dtype=bool))]
        if not pending.size:
            break
    else:  # pragma: no cover - needs an astronomically unlikely draw
        raise ConfigError("could not draw distinct targets; lower m")
    return _oriented(n, target, new_vertex, checked_order, rng)


def _resolve(pointer: np.ndarray, new_vertex: np.ndarray, m: int) -> np.ndarray:
    """The target vertex of every edge, following pointers until they reach a known end."""
    slot = 2 * np.arange(new_vertex.size) + 1
    slot[:m] = -1  # star edges: target 0
    active = np.flatnonzero(slot >= 0)
    while active.size:
        slot[active] = pointer[slot[active]]
        # Odd slots of drawn edges point on; even slots and star targets are resolved.
        active = active[(slot[active] % 2 == 1) & (slot[active] // 2 >= m)]
    target = np.where(slot % 2 == 0, new_vertex[slot // 2], 0)
    target[:m] = 0
    return target


# -- layered graphs --------------------------------------------------------------------------
def random_layered(
    widths: Sequence[int],
    *,
    density: float,
    skip_density: float = 0.0,
    skip_decay: float = 1.0,
    seed: Seed = None,
) -> CachedLayeredGraph:
    """A random layered DAG with controllable skip connections.

    Layer ``L`` has ``widths[L]`` vertices, labelled in layer order (layer 0 is
    ``0 .. widths[0] - 1`` and so on). Each possible edge from layer ``L - 1`` to layer
    ``L`` exists with probability ``density``; a vertex of layer ``L >= 1`` left without
    one gets one edge from a uniformly drawn vertex of layer ``L - 1``, so every vertex
    lies exactly in its layer. Each possible skip edge from layer ``K`` to layer
    ``L >= K + 2`` exists with probability ``skip_density * skip_decay ** (L - K - 2)``:
    ``skip_decay=1`` makes every distance equally likely, smaller values favour short
    skips. Skip edges come from their own random stream, so the same seed gives the
    same consecutive-layer edges whatever the skip parameters are.

    Parameters
    ----------
    widths : sequence of int
        Vertices per layer, each >= 1.
    density : float
        Probability of an edge between consecutive layers, in [0, 1].
    skip_density : float
        Probability of a skip edge over one skipped layer, in [0, 1].
    skip_decay : float
        Factor per further skipped layer, in [0, 1].
    seed : int, numpy Generator or None
        The random seed.

    Examples
    --------
    >>> graph = random_layered([3, 4, 2], density=0.0, seed=0)
    >>> graph.number_of_edges(), [graph.get_layer_size(layer) for layer in graph.layers]
    (6, [3, 4, 2])
    >>> dense = random_layered([2, 2, 2], density=1.0, skip_density=1.0, seed=0)
    >>> sorted(dense.successors(0))
    [2, 3, 4, 5]
    """
    widths = check_widths(widths)
    density = check_probability(density, "density")
    skip_density = check_probability(skip_density, "skip_density")
    skip_decay = check_probability(skip_decay, "skip_decay")
    # Two independent streams, so that the skip parameters never change the main edges.
    root = np.random.SeedSequence(int(numpy_generator(seed).integers(2**63)))
    main_stream, skip_stream = (np.random.default_rng(child) for child in root.spawn(2))
    starts = np.concatenate(([0], np.cumsum(widths)))
    sources, targets = [], []
    for layer in range(1, len(widths)):
        above, below = widths[layer - 1], widths[layer]
        chosen = _sample_pairs(main_stream, above * below, density)
        source, target = np.divmod(chosen, below)
        orphans = np.setdiff1d(np.arange(below), target)
        parents = main_stream.integers(above, size=orphans.size)
        sources += [source + starts[layer - 1], parents + starts[layer - 1]]
        targets += [target + starts[layer], orphans + starts[layer]]
    for layer in range(2, len(widths)):
        for earlier in range(layer - 1):
            probability = skip_density * skip_decay ** (layer - earlier - 2)
            if probability == 0:
                continue
            chosen = _sample_pairs(skip_stream, widths[earlier] * widths[layer], probability)
            source, target = np.divmod(chosen, widths[layer])
            sources.append(source + starts[earlier])
            targets.append(target + starts[layer])
    empty = np.empty(0, dtype=np.int64)
    return _dag(
        range(int(starts[-1])),
        np.concatenate([empty, *sources]).astype(np.int64),
        np.concatenate([empty, *targets]).astype(np.int64),
    )


def complete_layered(widths: Sequence[int]) -> CachedLayeredGraph:
    """The structure of a dense feed-forward network: consecutive layers fully connected.

    Examples
    --------
    >>> graph = complete_layered([2, 3, 1])
    >>> graph.number_of_edges(), graph.get_vertices(1), sorted(graph.predecessors(5))
    (9, [2, 3, 4], [2, 3, 4])
    """
    widths = check_widths(widths)
    starts = np.concatenate(([0], np.cumsum(widths)))
    sources, targets = [np.empty(0, np.int64)], [np.empty(0, np.int64)]
    for layer in range(1, len(widths)):
        source, target = np.divmod(np.arange(widths[layer - 1] * widths[layer]), widths[layer])
        sources.append(source + starts[layer - 1])
        targets.append(target + starts[layer])
    return _dag(range(int(starts[-1])), np.concatenate(sources), np.concatenate(targets))


def small_world_layered(
    layers: int = 4, width: int = 64, neighbours: int = 8, p: float = 0.1, *, seed: Seed = None
) -> CachedLayeredGraph:
    """A layered Watts–Strogatz graph: ring lattices between layers, rewired to skip ahead.

    The lattice has ``layers`` layers of ``width`` vertices; vertex ``(l, i)`` is labelled
    ``l * width + i`` and joined to ``(l + 1, (i + j) mod width)`` for the ``neighbours``
    offsets ``j`` centred on 0 (``-neighbours // 2 .. (neighbours - 1) // 2``). Each edge
    is rewired with probability ``p`` to a vertex drawn uniformly from all later layers,
    which turns it into a long-range skip connection (or a random edge into the next
    layer, from the last-but-one layer). Vertices carry their lattice coordinates as
    ``lattice_layer`` and ``lattice_index`` besides ``layer`` (the layer in the graph: a
    vertex whose incoming edges were all rewired away becomes a source). With the
    defaults it is the prior of ``pypaddle demo``: 4 x 64 vertices, 8 neighbours, 10 %
    rewired.

    Parameters
    ----------
    layers : int
        Lattice layers, >= 1.
    width : int
        Vertices per lattice layer, >= 1.
    neighbours : int
        Edges from each vertex into the next lattice layer, ``1 <= neighbours <= width``.
    p : float
        Rewiring probability in [0, 1].
    seed : int, numpy Generator or None
        The random seed.

    Returns
    -------
    CachedLayeredGraph
        A DAG on ``0 .. layers * width - 1`` with node attributes ``layer``,
        ``lattice_layer`` and ``lattice_index``.

    Examples
    --------
    >>> graph = small_world_layered(3, 4, 2, 0.0, seed=0)
    >>> sorted(graph.successors(0)), graph.nodes[5]
    ([4, 7], {'layer': 1, 'lattice_layer': 1, 'lattice_index': 1})
    >>> skips = small_world_layered(4, 16, 4, 1.0, seed=0)
    >>> max(skips.nodes[v]["lattice_layer"] - skips.nodes[u]["lattice_layer"]
    ...     for u, v in skips.edges)
    3
    """
    layers = check_count(layers, "layers", 1)
    width = check_count(width, "width", 1)
    neighbours = check_count(neighbours, "neighbours", 1)
    if neighbours > width:
        raise ConfigError(
            f"neighbours must be at most width={width} (a vertex has that many in the next "
            f"layer), got neighbours={neighbours}"
        )
    p = check_probability(p, "p")
    rng = numpy_generator(seed)
    source_layer = np.repeat(np.arange(layers - 1), width * neighbours)
    source_index = np.tile(np.repeat(np.arange(width), neighbours), layers - 1)
    offsets = np.tile(np.arange(neighbours) - neighbours // 2, (layers - 1) * width)
    sources = source_layer * width + source_index
    targets = (source_layer + 1) * width + (source_index + offsets) % width
    rewired = rng.random(sources.size) < p
    later_vertices = (layers - 1 - source_layer[rewired]) * width
    targets[rewired] = (source_layer[rewired] + 1) * width + rng.integers(0, later_vertices)
    graph = _dag(range(layers * width), sources, targets)
    labels = np.arange(layers * width)
    nx.set_node_attributes(
        graph, dict(zip(labels.tolist(), (labels // width).tolist())), "lattice_layer"
    )
    nx.set_node_attributes(
        graph, dict(zip(labels.tolist(), (labels % width).tolist())), "lattice_index"
    )
    return graph
