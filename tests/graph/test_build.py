"""add_edges_from_arrays: the same graph as add_edges_from, faster."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from pypaddle.graph import CachedLayeredGraph
from pypaddle.graph.build import add_edges_from_arrays

LABELS = [0, "a", ("t", 1), 3.5, "b", 7]


@pytest.mark.parametrize("graph_class", [nx.DiGraph, CachedLayeredGraph])
@pytest.mark.parametrize("seed", range(4))
def test_same_graph_as_add_edges_from(graph_class, seed):
    rng = np.random.default_rng(seed)
    sources = rng.integers(0, len(LABELS), 30)
    targets = rng.integers(0, len(LABELS), 30)
    fast, slow = graph_class(), graph_class()
    fast.add_nodes_from(LABELS)
    slow.add_nodes_from(LABELS)
    add_edges_from_arrays(fast, LABELS, sources, targets)
    slow.add_edges_from((LABELS[s], LABELS[t]) for s, t in zip(sources, targets))
    assert list(fast.nodes) == list(slow.nodes)
    assert sorted(map(repr, fast.edges)) == sorted(map(repr, slow.edges))
    for u, v in slow.edges:
        assert fast.pred[v][u] is fast.succ[u][v]  # one attribute dict per edge, shared


def test_edge_attributes_are_independent():
    graph = nx.DiGraph()
    add_edges_from_arrays(graph, ["x", "y", "z"], np.array([0, 0]), np.array([1, 2]))
    graph.edges["x", "y"]["weight"] = 2.0
    assert graph.edges["x", "z"] == {}
    assert graph.pred["y"]["x"] == {"weight": 2.0}


def test_missing_vertices_are_added_and_layers_refreshed():
    graph = CachedLayeredGraph()
    graph.add_node("x")
    assert graph.num_layers == 1
    add_edges_from_arrays(graph, ["x", "y"], np.array([0]), np.array([1]))
    assert list(graph.nodes) == ["x", "y"]
    assert graph.num_layers == 2


def test_other_graph_classes_use_their_own_add_edges_from():
    calls = []

    class Logged(nx.DiGraph):
        def add_edges_from(self, ebunch_to_add, **attr):
            edges = list(ebunch_to_add)
            calls.append(edges)
            super().add_edges_from(edges, **attr)

    graph = Logged()
    add_edges_from_arrays(graph, [1, 2], np.array([0]), np.array([1]))
    assert calls == [[(1, 2)]]
