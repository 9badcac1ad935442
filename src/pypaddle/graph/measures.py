"""The graph measures an experiment records and a sweep's analysis explains accuracy with.

:func:`graph_measures` gives one flat dict of numbers per structure (what ``result.json``
and a sweep's ``trials.csv`` hold). Its clustering and path length are those of You,
Leskovec, He & Xie (2020) (:func:`~pypaddle.graph.average_clustering`,
:func:`~pypaddle.graph.average_path_length`: of the undirected graph) and of
:func:`~pypaddle.graph.summary`; all share the arithmetic of
:mod:`pypaddle.graph.analysis`. A measure that is not defined for a graph is NaN, never
infinite.
"""

from __future__ import annotations

from typing import Any

import networkx as nx
import numpy as np
from scipy.sparse import csgraph

from pypaddle._core.seeds import Seed, numpy_generator
from pypaddle.errors import InputTypeError, StructureError
from pypaddle.graph.analysis import _clustering, _mean_distance, _small_world
from pypaddle.graph.layering import edge_index, layer_array
from pypaddle.graph.relational import _undirected_adjacency

__all__ = [
    "EXACT_PATH_LIMIT",
    "MEASURES",
    "SMALL_WORLD_LIMIT",
    "graph_measures",
]

# The names :func:`graph_measures` returns, in its order.
MEASURES = (
    "vertices",
    "edges",
    "density",
    "depth",
    "width",
    "sources",
    "sinks",
    "isolated",
    "components",
    "clustering",
    "path_length",
    "in_degree_mean",
    "in_degree_std",
    "in_degree_max",
    "out_degree_mean",
    "out_degree_std",
    "out_degree_max",
    "small_world_sigma",
    "small_world_omega",
)
"""The names :func:`graph_measures` returns, in its order."""
# graph_measures(): path lengths are exact up to this many vertices, estimated above.
EXACT_PATH_LIMIT = 1000
"""Path lengths are exact up to this many vertices and estimated above it."""
# graph_measures(): the small-world coefficients' null models are drawn up to this many vertices.
SMALL_WORLD_LIMIT = 1000
"""The small-world coefficients null models are drawn up to this many vertices."""
_COUNTS = frozenset(
    ("vertices", "edges", "depth", "width", "sources", "sinks", "isolated", "components")
) | {"in_degree_max", "out_degree_max"}
_SMALL_WORLD_REFERENCES = 3


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


def _degree_statistics(prefix: str, degrees: np.ndarray) -> dict[str, float]:
    if not degrees.size:
        return {f"{prefix}_mean": np.nan, f"{prefix}_std": np.nan, f"{prefix}_max": np.nan}
    return {
        f"{prefix}_mean": float(degrees.mean()),
        f"{prefix}_std": float(degrees.std()),
        f"{prefix}_max": float(degrees.max()),
    }


def _directed_measures(graph: nx.Graph, count: int) -> dict[str, float]:
    """Depth, width, sources, sinks and degrees: of the DAG, or NaN / the degree if undirected."""
    if not graph.is_directed():
        degrees = np.fromiter((d for _, d in graph.degree), dtype=np.int64, count=count)
        undefined = dict.fromkeys(("depth", "width", "sources", "sinks"), np.nan)
        return {
            **undefined,
            "isolated": float((degrees == 0).sum()),
            **_degree_statistics("in_degree", degrees),
            **_degree_statistics("out_degree", degrees),
        }
    vertices, layers = layer_array(graph)
    sources, targets = edge_index(graph, dict(zip(vertices, range(count))))
    in_degree = np.bincount(targets, minlength=count)
    out_degree = np.bincount(sources, minlength=count)
    widths = np.bincount(layers) if count else np.zeros(0, dtype=np.int64)
    return {
        "depth": float(widths.size),
        "width": float(widths.max()) if widths.size else 0.0,
        "sources": float((in_degree == 0).sum()),
        "sinks": float((out_degree == 0).sum()),
        "isolated": float(((in_degree == 0) & (out_degree == 0)).sum()),
        **_degree_statistics("in_degree", in_degree),
        **_degree_statistics("out_degree", out_degree),
    }


def graph_measures(graph: nx.Graph, *, seed: Seed = 0) -> dict[str, float]:
    """The measures of a structure, as one flat dict of numbers (NaN where undefined).

    Keys, in the order of :data:`MEASURES`:

    - ``vertices``, ``edges``; ``density``: edges over the possible ones (networkx's
      ``density``: ``m / (n (n - 1))`` directed, ``2 m / (n (n - 1))`` undirected; NaN
      below two vertices);
    - ``depth``: the number of layers (vertices on a longest path), ``width``: the
      widest layer's vertices; ``sources`` (in-degree 0), ``sinks`` (out-degree 0);
      ``isolated`` (no edge); ``components`` (weakly connected);
    - ``clustering``: :func:`~pypaddle.graph.average_clustering` (exact);
      ``path_length``: the mean shortest-path length of the undirected graph over the
      pairs a path joins (``path_length`` of :func:`~pypaddle.graph.summary`): on a
      connected graph it is :func:`~pypaddle.graph.average_path_length` (You et al.),
      on a disconnected one (a pruned structure with isolated vertices, say) it stays
      defined where You et al.'s is NaN; NaN without edges;
    - ``in_degree_mean`` / ``_std`` / ``_max`` and the same for ``out_degree``;
    - ``small_world_sigma`` = ``(C / C_random) / (L / L_random)`` and
      ``small_world_omega`` = ``L_random / L - C / C_lattice``, with ``C_random`` and
      ``L_random`` the means over 3 seeded null models of the same undirected degree
      sequence and ``C_lattice`` the ring lattice's clustering at the same mean degree
      (as :func:`~pypaddle.graph.summary`, which draws one null model).

    An undirected graph (a relational graph, say) has no depth, width, sources or sinks
    (NaN) and its in- and out-degree are its degree. The cost stays small on the sizes of
    experiments: path lengths are exact up to :data:`EXACT_PATH_LIMIT` (1,000) vertices
    and estimated from 200 seeded start vertices above, as
    :func:`~pypaddle.graph.summary` does; the small-world coefficients need three more
    searches and are NaN above :data:`SMALL_WORLD_LIMIT` (1,000) vertices (use
    :func:`~pypaddle.graph.summary` for those, which draws one null model). A graph
    without vertices gives NaN for everything but the counts; one without edges gives
    clustering 0 and NaN path length and coefficients.

    Parameters
    ----------
    graph : networkx.DiGraph or networkx.Graph
        A directed acyclic graph (a structure), or an undirected graph.
    seed : int, numpy Generator or None
        Seed of the null models (and of the sampled path lengths on large graphs); the
        default 0 makes the measures a function of the graph alone.

    Returns
    -------
    dict of str to int or float
        Counts (vertices, edges, depth, width, sources, sinks, isolated, components,
        maximum degrees) are ints where defined; the rest are floats.

    Raises
    ------
    InputTypeError
        ``graph`` is not a networkx graph.
    StructureError
        ``graph`` is a multigraph, or directed with a cycle.
    ConfigError
        ``seed`` is not a seed.

    Examples
    --------
    >>> from pypaddle.graph import complete_layered
    >>> values = graph_measures(complete_layered([2, 3, 1]))
    >>> values["vertices"], values["edges"], values["depth"], values["width"]
    (6, 9, 3, 3)
    >>> values["sources"], values["sinks"], values["clustering"], values["path_length"]
    (2, 1, 0.0, 1.4)
    """
    _check_graph(graph)
    rng = numpy_generator(seed)
    count, size = graph.number_of_nodes(), graph.number_of_edges()
    directed = _directed_measures(graph, count)
    adjacency = _undirected_adjacency(graph)[1]
    pairs = count * (count - 1) if graph.is_directed() else count * (count - 1) / 2
    components = csgraph.connected_components(adjacency, directed=False)[0] if count else 0
    clustering = _clustering(adjacency, rng, exact=True)[0]
    every = np.arange(count)
    exact = count <= EXACT_PATH_LIMIT
    path_length = _mean_distance(adjacency, every, None, rng, directed=False, exact=exact)[0]
    sigma = omega = np.nan
    if 0 < count <= SMALL_WORLD_LIMIT:
        small = _small_world(
            adjacency, clustering, path_length, rng, references=_SMALL_WORLD_REFERENCES
        )
        sigma, omega = small["small_world_sigma"], small["small_world_omega"]
    values: dict[str, Any] = {
        "vertices": float(count),
        "edges": float(size),
        "density": size / pairs if pairs else np.nan,
        "components": float(components),
        "clustering": clustering,
        "path_length": path_length,
        "small_world_sigma": sigma,
        "small_world_omega": omega,
        **directed,
    }
    # Counts stay ints where they are defined; everything else (and NaN) is a float.
    return {
        name: int(values[name])
        if name in _COUNTS and np.isfinite(values[name])
        else float(values[name])
        for name in MEASURES
    }
