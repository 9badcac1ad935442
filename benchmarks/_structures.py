"""Seeded benchmark structures, built with numpy (no Python loop per edge)."""

from __future__ import annotations

import networkx as nx
import numpy as np

__all__ = ["complete_layered_graph", "layered_random_dag", "oriented_newman_watts_strogatz"]


def _graph(vertex_count: int, sources: np.ndarray, targets: np.ndarray) -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_nodes_from(range(vertex_count))
    graph.add_edges_from(zip(sources.tolist(), targets.tolist()))
    return graph


def layered_random_dag(
    layers: int, width: int, *, density: float, skip_density: float = 0.0, seed: int
) -> nx.DiGraph:
    """A DAG of ``layers`` x ``width`` vertices, labelled ``layer * width + i``.

    Each possible edge from layer ``L - 1`` to layer ``L`` exists with probability
    ``density``; a vertex of layer ``L >= 1`` left without one gets one edge from a random
    vertex of ``L - 1``, so every vertex sits exactly in its intended layer. Skip edges,
    from every layer ``K <= L - 2`` to ``L``, exist with probability ``skip_density``. The
    skip edges come from their own random stream: the same seed gives the same graph
    between consecutive layers whatever ``skip_density`` is.
    """
    main_stream, skip_stream = (
        np.random.default_rng(child) for child in np.random.SeedSequence(seed).spawn(2)
    )
    sources, targets = [], []
    for layer in range(1, layers):
        block = main_stream.random((width, width)) < density  # [source, target]
        orphans = np.flatnonzero(~block.any(axis=0))
        block[main_stream.integers(width, size=orphans.size), orphans] = True
        source, target = np.nonzero(block)
        sources.append(source + (layer - 1) * width)
        targets.append(target + layer * width)
    if skip_density > 0:
        for layer in range(2, layers):
            block = skip_stream.random((width * (layer - 1), width)) < skip_density
            source, target = np.nonzero(block)
            sources.append(source)
            targets.append(target + layer * width)
    return _graph(layers * width, np.concatenate(sources), np.concatenate(targets))


def oriented_newman_watts_strogatz(
    vertices: int, neighbours: int, probability: float, *, seed: int
) -> nx.DiGraph:
    """``networkx.newman_watts_strogatz_graph`` with every edge oriented low -> high label."""
    undirected = nx.newman_watts_strogatz_graph(vertices, neighbours, probability, seed=seed)
    edges = np.array(list(undirected.edges), dtype=np.int64).reshape(-1, 2)
    return _graph(vertices, edges.min(axis=1), edges.max(axis=1))


def complete_layered_graph(layers: int, width: int) -> nx.DiGraph:
    """Every vertex of layer ``L`` feeds every vertex of layer ``L + 1``; integer labels."""
    source, target = np.divmod(np.arange(width * width), width)
    starts = np.arange(layers - 1) * width
    sources = (starts[:, None] + source).ravel()
    targets = (starts[:, None] + width + target).ravel()
    return _graph(layers * width, sources, targets)
