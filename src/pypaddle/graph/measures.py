"""The graph measures an experiment records and a sweep's analysis explains accuracy with.

:func:`graph_measures` gives one flat dict of numbers per structure (what ``result.json``
and a sweep's ``trials.csv`` hold). It is :func:`~pypaddle.graph.summary`'s computation
(:func:`pypaddle.graph.analysis._measure`) with its values laid out flat, so the two agree
on every measure they share; its clustering and path length are those of You, Leskovec,
He & Xie (2020), of the undirected graph: exact (as
:func:`~pypaddle.graph.average_clustering` and :func:`~pypaddle.graph.average_path_length`
give them) up to :data:`EXACT_PATH_LIMIT` vertices for the path length and up to
a sum of squared degrees of 5e6 for the clustering, estimated from samples above.
A measure that is not defined for a graph is NaN, never infinite.
"""

from __future__ import annotations

from typing import Any

import networkx as nx
import numpy as np

from pypaddle._core.seeds import Seed
from pypaddle.graph.analysis import EXACT_PATH_LIMIT, _check_graph, _measure

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
# graph_measures(): the small-world coefficients' null models are drawn up to this many vertices.
SMALL_WORLD_LIMIT = 1000
"""The small-world coefficients' null models are drawn up to this many vertices."""
_COUNTS = frozenset(
    ("vertices", "edges", "depth", "width", "sources", "sinks", "isolated", "components")
) | {"in_degree_max", "out_degree_max"}


def graph_measures(graph: nx.Graph, *, seed: Seed = 0) -> dict[str, float]:
    """The measures of a structure, as one flat dict of numbers (NaN where undefined).

    Keys, in the order of :data:`MEASURES`:

    - ``vertices``, ``edges``; ``density``: edges over the possible ones (networkx's
      ``density``: ``m / (n (n - 1))`` directed, ``2 m / (n (n - 1))`` undirected; NaN
      below two vertices);
    - ``depth``: the number of layers (vertices on a longest path), ``width``: the
      widest layer's vertices; ``sources`` (in-degree 0), ``sinks`` (out-degree 0);
      ``isolated`` (no edge); ``components`` (weakly connected);
    - ``clustering``: :func:`~pypaddle.graph.average_clustering` (exact while the sum
      of squared degrees is at most 5e6, estimated from 20,000 sampled wedges above,
      standard error below 0.004, as :func:`~pypaddle.graph.summary` does);
      ``path_length``: the mean shortest-path length of the undirected graph over the
      pairs a path joins (``path_length`` of :func:`~pypaddle.graph.summary`): on a
      connected graph it is :func:`~pypaddle.graph.average_path_length` (You et al.),
      on a disconnected one (a pruned structure with isolated vertices, say) it stays
      defined where You et al.'s is NaN; NaN without edges;
    - ``in_degree_mean`` / ``_std`` / ``_max`` and the same for ``out_degree``;
    - ``small_world_sigma`` = ``(C / C_random) / (L / L_random)`` and
      ``small_world_omega`` = ``L_random / L - C / C_lattice``, with ``C_random`` and
      ``L_random`` the means over :data:`~pypaddle.graph.analysis.NULL_MODELS` (3)
      seeded null models of the same undirected degree sequence and ``C_lattice`` the
      ring lattice's clustering at the same mean degree.

    Every value is :func:`~pypaddle.graph.summary`'s for the same graph and seed (one
    computation): the same counts, degrees, clustering, path length and, up to
    :data:`SMALL_WORLD_LIMIT` (1,000) vertices, the same small-world coefficients. Above
    that they are NaN here, to keep what every trial records cheap; use
    :func:`~pypaddle.graph.summary` for them. An undirected graph (a relational graph,
    say) has no depth, width, sources or sinks (NaN) and its in- and out-degree are its
    degree. Path lengths are exact up to :data:`EXACT_PATH_LIMIT` (1,000) vertices and
    estimated from 200 seeded start vertices above. A graph without vertices has counts
    of 0 and NaN for everything else (density, degrees, clustering, paths,
    coefficients); a single vertex has density NaN (no edge is possible); a graph
    without edges has clustering 0 and NaN path length and coefficients.

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
    small_world = graph.number_of_nodes() <= SMALL_WORLD_LIMIT
    measured = _measure(graph, seed, small_world=small_world)
    widths = measured["layer_widths"]
    degrees = {
        f"{direction}_degree_{statistic}": measured[f"{direction}_degree"][statistic]
        for direction in ("in", "out")
        for statistic in ("mean", "std", "max")
    }
    values: dict[str, Any] = {
        **{name: measured[name] for name in MEASURES if name in measured},
        "depth": measured["layers"],
        "width": max(widths, default=0) if graph.is_directed() else np.nan,
        **degrees,
    }
    # Counts stay ints where they are defined; everything else (and NaN) is a float.
    return {
        name: int(values[name])
        if name in _COUNTS and np.isfinite(values[name])
        else float(values[name])
        for name in MEASURES
    }
