"""summary() against hand counts and networkx; layer_graph()."""

from __future__ import annotations

import itertools
import math

import networkx as nx
import numpy as np
import pytest

import pypaddle.graph.analysis as analysis
from pypaddle.errors import ConfigError, StructureError
from pypaddle.graph import (
    CachedLayeredGraph,
    erdos_renyi,
    layer_graph,
    random_layered,
    summary,
    watts_strogatz,
)


@pytest.fixture
def diamond():
    """0, 1 -> 2 -> 3 with a skip 0 -> 3, and an isolated vertex 4."""
    graph = nx.DiGraph([(0, 2), (1, 2), (2, 3), (0, 3)])
    graph.add_node(4)
    return graph


def brute_source_sink_mean(graph):
    sources = [v for v in graph if graph.in_degree(v) == 0]
    sinks = {v for v in graph if graph.out_degree(v) == 0}
    lengths = [
        length
        for source in sources
        for target, length in nx.single_source_shortest_path_length(graph, source).items()
        if target in sinks and target != source
    ]
    return sum(lengths) / len(lengths)


class TestSummaryByHand:
    def test_counts(self, diamond):
        stats = summary(diamond)
        assert stats["vertices"] == 5
        assert stats["edges"] == 4
        assert stats["density"] == pytest.approx(4 / 20)
        assert stats["layers"] == 3
        assert stats["layer_widths"] == [3, 1, 1]
        assert stats["longest_path"] == 2
        assert stats["skip_histogram"] == {1: 3, 2: 1}
        assert stats["in_degree"] == {
            "mean": 0.8,
            "std": pytest.approx(0.96**0.5),
            "min": 0,
            "max": 2,
        }
        assert stats["out_degree"]["max"] == 2
        assert (stats["sources"], stats["sinks"], stats["isolated"]) == (3, 2, 1)
        assert (stats["components"], stats["largest_component"]) == (2, 4)

    def test_paths_and_clustering(self, diamond):
        stats = summary(diamond)
        # source -> sink pairs: 0->3 (1), 1->3 (2); the isolated 4 pairs with nothing
        assert stats["mean_source_sink_path"] == pytest.approx(1.5)
        # triangle 0-2-3; vertex 1 hangs on 2: clustering (1 + 1/3 + 1 + 0 + 0) / 5
        assert stats["clustering"] == pytest.approx((1 + 1 / 3 + 1) / 5)
        undirected = diamond.to_undirected().subgraph(range(4))
        assert stats["path_length"] == pytest.approx(nx.average_shortest_path_length(undirected))
        assert "clustering" not in stats["estimates"]
        assert "path_length" not in stats["estimates"]

    def test_lattice_clustering_formula(self):
        ring = watts_strogatz(40, 6, 0.0, seed=0)
        stats = summary(ring)
        assert stats["lattice_clustering"] == pytest.approx(3 * 4 / (4 * 5))
        assert stats["clustering"] == pytest.approx(stats["lattice_clustering"])

    def test_empty_graph(self):
        stats = summary(nx.DiGraph())
        assert (stats["vertices"], stats["edges"], stats["layers"], stats["components"]) == (
            0,
            0,
            0,
            0,
        )
        assert stats["layer_widths"] == []
        assert math.isnan(stats["clustering"])

    def test_edgeless_graph(self):
        graph = nx.DiGraph()
        graph.add_nodes_from(range(3))
        stats = summary(graph)
        assert (stats["isolated"], stats["components"], stats["skip_histogram"]) == (3, 3, {})
        assert math.isnan(stats["mean_source_sink_path"])

    def test_cycle(self):
        with pytest.raises(StructureError, match="cycle"):
            summary(nx.DiGraph([(0, 1), (1, 0)]))

    def test_bad_seed(self, diamond):
        with pytest.raises(ConfigError, match="seed"):
            summary(diamond, seed="zero")


class TestSummaryAgainstNetworkx:
    @pytest.fixture
    def graph(self):
        return random_layered([20, 30, 30, 10], density=0.15, skip_density=0.05, seed=2)

    def test_exact_values(self, graph):
        stats = summary(graph)
        undirected = graph.to_undirected()
        assert stats["clustering"] == pytest.approx(nx.average_clustering(undirected))
        assert stats["mean_source_sink_path"] == pytest.approx(brute_source_sink_mean(graph))
        assert stats["components"] == nx.number_weakly_connected_components(graph)
        assert stats["longest_path"] == nx.dag_longest_path_length(graph)
        assert stats["density"] == pytest.approx(nx.density(graph))
        connected = undirected.subgraph(max(nx.connected_components(undirected), key=len))
        if connected.number_of_nodes() == graph.number_of_nodes():
            expected = nx.average_shortest_path_length(connected)
            assert stats["path_length"] == pytest.approx(expected)

    def test_sampled_clustering_is_close_and_flagged(self, graph, monkeypatch):
        monkeypatch.setattr(analysis, "_EXACT_TRIANGLE_WORK", 0)
        stats = summary(graph, seed=0)
        assert "clustering" in stats["estimates"]
        exact = nx.average_clustering(graph.to_undirected())
        assert stats["clustering"] == pytest.approx(exact, abs=0.02)

    def test_sampled_paths_are_flagged(self, graph, monkeypatch):
        # Paths are exact up to EXACT_PATH_LIMIT vertices (90 here), sampled above.
        monkeypatch.setattr(analysis, "EXACT_PATH_LIMIT", 50)
        monkeypatch.setattr(analysis, "_PATH_SOURCES", 10)
        stats = summary(graph, seed=0)
        assert {"path_length", "mean_source_sink_path"} <= set(stats["estimates"])
        assert stats["mean_source_sink_path"] == pytest.approx(
            brute_source_sink_mean(graph), rel=0.2
        )

    def test_same_seed_same_summary(self, graph):
        assert summary(graph, seed=4) == summary(graph, seed=4)

    def test_null_model_keeps_most_of_the_degree_sequence(self):
        degrees = np.array([d for _, d in watts_strogatz(500, 8, 0.2, seed=0).degree])
        null = analysis._configuration_model(degrees, np.random.default_rng(0))
        assert abs(null.nnz - degrees.sum()) < 0.02 * degrees.sum()
        assert (abs(null.diagonal()) == 0).all()


class TestSmallWorld:
    def test_watts_strogatz_is_a_small_world(self):
        stats = summary(watts_strogatz(1000, 10, 0.1, seed=0))
        assert stats["small_world_sigma"] > 5
        assert abs(stats["small_world_omega"]) < 0.35

    def test_random_graph_is_not(self):
        stats = summary(erdos_renyi(1000, 0.01, seed=0))
        assert stats["small_world_sigma"] == pytest.approx(1, abs=0.3)
        assert stats["small_world_omega"] > 0.6

    def test_lattice_is_not(self):
        stats = summary(watts_strogatz(1000, 10, 0.0, seed=0))
        assert stats["small_world_omega"] < -0.5

    def test_estimates_are_listed(self):
        stats = summary(watts_strogatz(100, 4, 0.1, seed=0))
        assert {"small_world_sigma", "small_world_omega", "random_clustering"} <= set(
            stats["estimates"]
        )
        assert set(stats["estimates"]) <= set(stats)


class TestLargeGraph:
    @pytest.mark.slow
    def test_ten_thousand_vertices_hundred_thousand_edges(self):
        # about 2 s here; the budget is 30 s (measured by hand, not asserted)
        graph = erdos_renyi(10_000, 0.002, seed=0)
        stats = summary(graph, seed=0)
        assert stats["vertices"] == 10_000
        assert 95_000 < stats["edges"] < 105_000
        assert sum(stats["skip_histogram"].values()) == stats["edges"]
        assert sum(stats["layer_widths"]) == 10_000
        assert stats["clustering"] == pytest.approx(0.002, abs=0.001)


class TestLayerGraph:
    def test_diamond(self, diamond):
        layers = layer_graph(diamond)
        assert type(layers) is CachedLayeredGraph
        assert list(layers.nodes(data="size")) == [(0, 3), (1, 1), (2, 1)]
        assert list(layers.edges(data="weight")) == [(0, 1, 2), (0, 2, 1), (1, 2, 1)]

    def test_weights_count_every_edge(self):
        graph = random_layered([5, 8, 8, 3], density=0.3, skip_density=0.2, seed=1)
        layers = layer_graph(graph)
        assert [size for _, size in layers.nodes(data="size")] == [5, 8, 8, 3]
        assert sum(w for _, _, w in layers.edges(data="weight")) == graph.number_of_edges()
        for source, target in itertools.combinations(range(4), 2):
            expected = graph.layer_connection_size(source, target)
            assert layers.get_edge_data(source, target, {}).get("weight", 0) == expected

    def test_empty(self):
        assert layer_graph(nx.DiGraph()).number_of_nodes() == 0
