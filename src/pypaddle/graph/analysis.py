"""Network-science summaries of structures, computed with scipy.sparse and sampling.

:func:`summary` answers the usual questions about a structure in one call and stays fast
on large graphs (seconds for 10,000 vertices and 100,000 edges): exact counts come from
edge arrays, path lengths from breadth-first searches in ``scipy.sparse.csgraph``, and
what would need all pairs of vertices is estimated from a seeded sample, which the result
says. :func:`layer_graph` is the second-order view: one vertex per layer.

:func:`summary` and :func:`~pypaddle.graph.graph_measures` (the flat numbers an experiment
records) wrap the one computation here, :func:`_measure`: for the same graph and seed they
give the same numbers, with the same rules for what is exact, what is estimated and what
is undefined (NaN).
"""

from __future__ import annotations

from typing import Any

import networkx as nx
import numpy as np
from scipy import sparse
from scipy.sparse import csgraph

from pypaddle._core.reports import Report, TableCells
from pypaddle._core.seeds import Seed, numpy_generator
from pypaddle.errors import InputTypeError, StructureError
from pypaddle.graph.layered import CachedLayeredGraph
from pypaddle.graph.layering import _check_directed, edge_index, layer_array, layer_counts

__all__ = ["EXACT_PATH_LIMIT", "NULL_MODELS", "GraphSummary", "layer_graph", "summary"]

# Beyond these sizes a value is estimated from a sample instead of computed exactly.
_EXACT_TRIANGLE_WORK = 5_000_000  # sum of squared degrees, the size of A @ A
_CLUSTERING_TRIALS = 20_000  # wedges sampled; standard error <= 0.0035
_PATH_SOURCES = 200  # breadth-first searches for a mean path length (sampled)
_SEARCHES_PER_CHUNK = 16
EXACT_PATH_LIMIT = 1000
"""A graph's own path lengths are exact up to this many vertices and estimated above it
(from 200 seeded start vertices)."""
NULL_MODELS = 3
"""The number of seeded null models the small-world coefficients are measured against
(the means of their clustering and path length)."""


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{key}: {_cell(item)}" for key, item in value.items())
    if isinstance(value, list) and len(value) > 12:
        return f"{', '.join(map(str, value[:12]))}, ... ({len(value)} in all)"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


class GraphSummary(dict[str, Any], Report):
    """What :func:`summary` returns: a dict of measures that is also a report.

    As a dict it is what it was: ``stats["clustering"]``, ``json.dumps(stats)`` after
    NaN handling. As a report, ``str(stats)`` is a table of measure and value (estimated
    values marked ``~``) and Jupyter shows the same table in HTML.
    """

    def to_dict(self) -> dict[str, Any]:
        """The measures as a plain dict (a copy)."""
        return dict(self)

    def table_cells(self) -> TableCells:
        """One row per measure; estimated values marked ``~``."""
        estimated = set(self.get("estimates", ()))
        rows = [
            [name.replace("_", " "), ("~ " if name in estimated else "") + _cell(value)]
            for name, value in self.items()
            if name != "estimates"
        ]
        return TableCells(["measure", "value"], rows, align="lr")

    __str__ = Report.__str__
    __repr__ = dict.__repr__


def _degree_statistics(degrees: np.ndarray) -> dict[str, float]:
    if not degrees.size:
        return dict.fromkeys(("mean", "std", "min", "max"), float("nan"))
    return {
        "mean": float(degrees.mean()),
        "std": float(degrees.std()),
        "min": int(degrees.min()),
        "max": int(degrees.max()),
    }


def _undirected(count: int, first: np.ndarray, second: np.ndarray) -> sparse.csr_matrix:
    """The symmetric 0/1 adjacency of the undirected simple graph on these edges."""
    keep = first != second
    rows = np.concatenate((first[keep], second[keep]))
    columns = np.concatenate((second[keep], first[keep]))
    matrix = sparse.csr_matrix(
        (np.ones(rows.size, dtype=np.int64), (rows, columns)), shape=(count, count)
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1
    return matrix


def _clustering(
    adjacency: sparse.csr_matrix, rng: np.random.Generator, *, exact: bool = False
) -> tuple[float, bool]:
    """Average local clustering (vertices of degree < 2 count as 0), and whether estimated.

    Exact from the triangles on ``A @ A`` when asked or when that product is small;
    otherwise the share of closed wedges among wedges drawn at uniformly chosen vertices,
    which has the same expectation (networkx's approximation, vectorised).
    """
    count = adjacency.shape[0]
    if count == 0:
        return float("nan"), False
    degrees = np.diff(adjacency.indptr)
    if exact or float(np.square(degrees, dtype=np.float64).sum()) <= _EXACT_TRIANGLE_WORK:
        triangles = np.asarray((adjacency @ adjacency).multiply(adjacency).sum(axis=1)).ravel()
        pairs = degrees * (degrees - 1.0)
        local = np.divide(triangles, pairs, out=np.zeros(count), where=pairs > 0)
        return float(local.mean()), False
    centre = rng.integers(count, size=_CLUSTERING_TRIALS)
    degree = degrees[centre]
    wedge = degree >= 2
    centre, degree = centre[wedge], degree[wedge]
    first = (rng.random(centre.size) * degree).astype(np.int64)
    second = (rng.random(centre.size) * (degree - 1)).astype(np.int64)
    second += second >= first
    adjacency.sort_indices()
    start = adjacency.indptr[centre]
    ends_a = adjacency.indices[start + first].astype(np.int64)
    ends_b = adjacency.indices[start + second]
    # Every edge as one sorted code row * count + column; a wedge is closed if its ends'
    # code is among them.
    codes = np.repeat(np.arange(count, dtype=np.int64), degrees) * count + adjacency.indices
    wanted = ends_a * count + ends_b
    found = np.minimum(np.searchsorted(codes, wanted), codes.size - 1)
    closed = codes[found] == wanted
    return float(closed.sum() / _CLUSTERING_TRIALS), True


def _mean_distance(
    adjacency: sparse.csr_matrix,
    starts: np.ndarray,
    ends: np.ndarray | None,
    rng: np.random.Generator,
    *,
    directed: bool,
    exact: bool = False,
) -> tuple[float, bool]:
    """Mean shortest-path length from ``starts`` to ``ends`` (all vertices if None).

    Pairs that are not connected and pairs of a vertex with itself are left out. With
    more than ``_PATH_SOURCES`` start vertices, a seeded sample of them is used, unless
    ``exact``.
    """
    estimated = not exact and starts.size > _PATH_SOURCES
    if estimated:
        starts = np.sort(rng.choice(starts, size=_PATH_SOURCES, replace=False))
    if not starts.size:
        return float("nan"), False
    total, pairs = 0.0, 0
    # A few searches at a time: the distance rows are dense, one float per vertex.
    for chunk in np.array_split(starts, -(-starts.size // _SEARCHES_PER_CHUNK)):
        distances = csgraph.shortest_path(
            adjacency, method="D", directed=directed, unweighted=True, indices=chunk
        )
        if ends is not None:
            distances = distances[:, ends]
        reached = distances[np.isfinite(distances) & (distances > 0)]
        total, pairs = total + float(reached.sum()), pairs + reached.size
    return (total / pairs if pairs else float("nan")), estimated


def _configuration_model(degrees: np.ndarray, rng: np.random.Generator) -> sparse.csr_matrix:
    """An erased configuration model: stubs paired at random, loops and doubles dropped."""
    stubs = np.repeat(np.arange(degrees.size), degrees)
    rng.shuffle(stubs)
    stubs = stubs[: stubs.size - stubs.size % 2]
    return _undirected(degrees.size, stubs[0::2], stubs[1::2])


def _small_world(
    undirected: sparse.csr_matrix,
    clustering: float,
    path_length: float,
    rng: np.random.Generator,
    *,
    references: int = NULL_MODELS,
) -> dict[str, float]:
    """Clustering and path length of ``references`` seeded null models (their means), the
    ring lattice's clustering, and the small-world sigma and omega; NaN where undefined.

    The null model keeps the undirected degree sequence (:func:`_configuration_model`);
    its path lengths are sampled as :func:`_mean_distance` does. A coefficient that would
    divide by zero (a null model without triangles, a graph without connected pairs) is
    NaN, never infinite.
    """
    count = undirected.shape[0]
    degrees = np.diff(undirected.indptr)
    every = np.arange(count)
    random_clustering, random_path_length = [], []
    for _ in range(references):
        null_model = _configuration_model(degrees, rng)
        random_clustering.append(_clustering(null_model, rng)[0])
        random_path_length.append(_mean_distance(null_model, every, None, rng, directed=False)[0])
    c_random, l_random = float(np.mean(random_clustering)), float(np.mean(random_path_length))
    mean_degree = undirected.nnz / count if count else 0.0  # nnz counts both directions
    lattice = 3 * (mean_degree - 2) / (4 * (mean_degree - 1)) if mean_degree > 2 else np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma = np.float64(clustering) / c_random / (path_length / l_random)
        omega = l_random / np.float64(path_length) - clustering / lattice
    return {
        "random_clustering": c_random,
        "random_path_length": l_random,
        "lattice_clustering": float(lattice),
        "small_world_sigma": float(sigma) if np.isfinite(sigma) else float("nan"),
        "small_world_omega": float(omega) if np.isfinite(omega) else float("nan"),
    }


def _check_graph(graph: object) -> None:
    if not isinstance(graph, nx.Graph):
        raise InputTypeError(
            f"a graph must be a networkx.Graph or DiGraph, got {type(graph).__name__}; "
            "build one with networkx or pypaddle.graph"
        )
    if graph.is_multigraph():
        raise StructureError(
            f"measures need a simple graph, got a {type(graph).__name__}; collapse parallel "
            "edges with networkx.Graph(graph) or networkx.DiGraph(graph)"
        )


def _edges(graph: nx.Graph) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Layers (None if undirected) and the edges as position arrays (sources, targets);
    an undirected graph gives each edge in both directions (a self-loop once)."""
    if graph.is_directed():
        vertices, layers = layer_array(graph)
    else:
        vertices, layers = list(graph), None
    sources, targets = edge_index(graph, dict(zip(vertices, range(len(vertices)))))
    return layers, sources, targets


def _measure(graph: nx.Graph, seed: Seed, *, small_world: bool = True) -> dict[str, Any]:
    """Every measure of :func:`summary`, of a DAG or of an undirected graph.

    What a DAG has and an undirected graph has not (layers, sources, sinks, the skip
    histogram, source-to-sink paths) is NaN (or empty) for the latter, whose in- and
    out-degree are its degree. ``small_world=False`` leaves the null models and the
    coefficients NaN (and draws none). The seeded generator is used in one order
    (clustering, source-sink paths, path length, null models), and only where a value
    is sampled, so the same graph and seed give the same numbers to every caller.
    """
    rng = numpy_generator(seed)
    layers, sources, targets = _edges(graph)
    count, size = graph.number_of_nodes(), graph.number_of_edges()
    directed = layers is not None
    undirected = _undirected(count, sources, targets)
    if directed:
        in_degree = np.bincount(targets, minlength=count)
        out_degree = np.bincount(sources, minlength=count)
    else:
        # Each edge is listed from both ends, a self-loop once: networkx's degree counts it twice.
        loops = sources[sources == targets]
        in_degree = out_degree = np.bincount(sources, minlength=count) + np.bincount(
            loops, minlength=count
        )
    pairs = count * (count - 1) if directed else count * (count - 1) / 2
    components, membership = csgraph.connected_components(undirected, directed=False)
    estimates: list[str] = []

    def note(name: str, value: float, estimated: bool) -> float:
        if estimated:
            estimates.append(name)
        return value

    nan = float("nan")
    result: dict[str, Any] = {
        "vertices": count,
        "edges": size,
        "density": size / pairs if pairs else nan,
    }
    if layers is not None:
        widths = np.bincount(layers) if count else np.zeros(0, dtype=np.int64)
        distance = layers[targets] - layers[sources]
        histogram = np.bincount(distance) if size else np.zeros(0, dtype=np.int64)
        result.update(
            layers=int(widths.size),
            layer_widths=widths.tolist(),
            longest_path=max(int(widths.size) - 1, 0),
            skip_histogram={d: int(c) for d, c in enumerate(histogram.tolist()) if c},
        )
    else:
        result.update(layers=nan, layer_widths=[], longest_path=nan, skip_histogram={})
    result.update(
        in_degree=_degree_statistics(in_degree),
        out_degree=_degree_statistics(out_degree),
        sources=int((in_degree == 0).sum()) if directed else nan,
        sinks=int((out_degree == 0).sum()) if directed else nan,
        isolated=int(((in_degree == 0) & (out_degree == 0)).sum()),
        components=int(components) if count else 0,
        largest_component=int(np.bincount(membership).max()) if count else 0,
    )
    clustering = note("clustering", *_clustering(undirected, rng))
    result["clustering"] = clustering
    exact = count <= EXACT_PATH_LIMIT
    result["mean_source_sink_path"] = nan
    if directed:
        forward = sparse.csr_matrix(
            (np.ones(size, dtype=np.int64), (sources, targets)), shape=(count, count)
        )
        result["mean_source_sink_path"] = note(
            "mean_source_sink_path",
            *_mean_distance(
                forward,
                np.flatnonzero(in_degree == 0),
                out_degree == 0,
                rng,
                directed=True,
                exact=exact,
            ),
        )
    every = np.arange(count)
    path_length = note(
        "path_length",
        *_mean_distance(undirected, every, None, rng, directed=False, exact=exact),
    )
    result["path_length"] = path_length
    coefficients = (
        "random_clustering",
        "random_path_length",
        "lattice_clustering",
        "small_world_sigma",
        "small_world_omega",
    )
    if small_world and count:
        result.update(_small_world(undirected, clustering, path_length, rng))
        estimates += ["random_clustering", "random_path_length"]
        estimates += ["small_world_sigma", "small_world_omega"]
    else:
        result.update(dict.fromkeys(coefficients, nan))
    result["estimates"] = estimates
    return result


def summary(graph: nx.DiGraph, *, seed: Seed = 0) -> GraphSummary:
    """Structure, degrees, paths, clustering and small-world coefficients of a DAG.

    Returns a :class:`GraphSummary` (a dict; printed, and in Jupyter, a table) with:

    - ``vertices``, ``edges``, ``density`` (edges / (n (n - 1)), as networkx; NaN below
      two vertices, where no edge is possible);
    - ``layers``, ``layer_widths`` (vertices per layer), ``longest_path`` (edges on the
      longest path, ``layers - 1``), ``skip_histogram`` (layer distance -> edge count;
      distance 1 joins consecutive layers, larger distances are skip connections);
    - ``in_degree`` and ``out_degree`` (``mean``, ``std``, ``min``, ``max``; NaN without
      vertices);
    - ``sources`` (in-degree 0), ``sinks`` (out-degree 0), ``isolated`` (both; counted
      among the sources and the sinks too), ``components`` (weakly connected) and
      ``largest_component`` (its vertex count);
    - ``clustering``: average local clustering of the undirected graph (degree < 2
      counts as 0, as networkx's ``average_clustering``);
    - ``mean_source_sink_path``: mean length of the shortest directed path over all
      (source, sink) pairs with a path between them;
    - ``path_length``: mean shortest-path length of the undirected graph over connected
      pairs;
    - ``random_clustering``, ``random_path_length``: the same, averaged over
      :data:`NULL_MODELS` (3) seeded random null models with the graph's (undirected)
      degree sequence: erased configuration models, which drop the few self-loops and
      double edges their random pairing makes;
    - ``lattice_clustering``: ``3 (k - 2) / (4 (k - 1))``, the clustering of a ring
      lattice of the same mean degree ``k``;
    - ``small_world_sigma`` = ``(C / C_random) / (L / L_random)`` (> 1 for a small world)
      and ``small_world_omega`` = ``L_random / L - C / C_lattice`` (near 0 for a small
      world, towards -1 for a lattice and +1 for a random graph); NaN, never infinite,
      where they divide by zero;
    - ``estimates``: the names of the values above that were estimated rather than
      computed exactly.

    What is estimated: clustering from 20,000 sampled wedges when the sum of squared
    degrees exceeds 5e6 (standard error below 0.004); the path means from 200 seeded start
    vertices when the graph has more than :data:`EXACT_PATH_LIMIT` (1,000) vertices; the
    null models are random by nature, so their values and the small-world coefficients
    are always listed as estimates (their own path lengths are sampled from 200 start
    vertices). Everything else is exact. A value that is not defined for the graph is
    NaN, never infinite: a graph without vertices has counts of 0 and NaN for everything
    else, and one without connected pairs NaN path lengths.

    Three null models, not one: a single configuration model's clustering is noisy on the
    small graphs experiments use (a few triangles), and sigma divides by it; three cost
    about twice the time of one on large graphs (seconds at 10,000 vertices). The flat
    :func:`~pypaddle.graph.graph_measures` that experiments record is this same
    computation: for the same graph and seed the shared measures are equal.

    Parameters
    ----------
    graph : networkx.DiGraph
        A directed acyclic graph.
    seed : int, numpy Generator or None
        Seed of the samples and of the null models.

    Raises
    ------
    InputTypeError
        ``graph`` is not a networkx graph.
    StructureError
        The graph has a cycle, is undirected or is a multigraph.
    ConfigError
        ``seed`` is not a seed.

    Examples
    --------
    >>> from pypaddle.graph import complete_layered
    >>> stats = summary(complete_layered([2, 3, 1]))
    >>> stats["vertices"], stats["edges"], stats["layer_widths"], stats["skip_histogram"]
    (6, 9, [2, 3, 1], {1: 9})
    >>> stats["sources"], stats["sinks"], stats["longest_path"], stats["mean_source_sink_path"]
    (2, 1, 2, 2.0)
    >>> "clustering" in stats["estimates"]
    False
    """
    _check_directed(graph)
    return GraphSummary(_measure(graph, seed))


def layer_graph(graph: nx.DiGraph) -> CachedLayeredGraph:
    """The second-order view: one vertex per layer, edges weighted by connection counts.

    Vertex ``L`` stands for layer ``L`` and carries ``size`` (its vertex count); the edge
    ``K -> L`` carries ``weight``, the number of edges from layer ``K`` to layer ``L``
    (skip connections give edges between non-consecutive layers).

    Examples
    --------
    >>> structure = nx.DiGraph([(0, 2), (1, 2), (2, 3), (0, 3)])
    >>> layers = layer_graph(structure)
    >>> list(layers.nodes(data="size")), list(layers.edges(data="weight"))
    ([(0, 2), (1, 1), (2, 1)], [(0, 1, 2), (0, 2, 1), (1, 2, 1)])
    """
    widths, low, high, weights = layer_counts(graph)
    result = CachedLayeredGraph()
    result.add_nodes_from((layer, {"size": int(w)}) for layer, w in enumerate(widths.tolist()))
    result.add_edges_from(
        (k, t, {"weight": w}) for k, t, w in zip(low.tolist(), high.tolist(), weights.tolist())
    )
    return result
