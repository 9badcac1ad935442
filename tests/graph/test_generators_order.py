"""The undirected generators orient their graph along ``order=``, the choice of to_dag."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from pypaddle.errors import ConfigError, InputTypeError
from pypaddle.graph import barabasi_albert, erdos_renyi, to_dag, watts_strogatz

UNDIRECTED = {
    "erdos_renyi": lambda order, seed=3: erdos_renyi(40, 0.15, order=order, seed=seed),
    "watts_strogatz": lambda order, seed=3: watts_strogatz(40, 6, 0.3, order=order, seed=seed),
    "barabasi_albert": lambda order, seed=3: barabasi_albert(40, 3, order=order, seed=seed),
}
NAMES = sorted(UNDIRECTED)


def skeleton(graph):
    return {frozenset(edge) for edge in graph.edges}


def points_along(graph, sequence):
    rank = {vertex: index for index, vertex in enumerate(sequence)}
    return all(rank[u] < rank[v] for u, v in graph.edges)


class TestOrder:
    @pytest.mark.parametrize("name", NAMES)
    def test_label_is_the_default_and_points_up(self, name):
        default = {
            "erdos_renyi": lambda: erdos_renyi(40, 0.15, seed=3),
            "watts_strogatz": lambda: watts_strogatz(40, 6, 0.3, seed=3),
            "barabasi_albert": lambda: barabasi_albert(40, 3, seed=3),
        }[name]()
        labelled = UNDIRECTED[name]("label")
        assert list(labelled.edges) == list(default.edges)
        assert all(u < v for u, v in labelled.edges)

    @pytest.mark.parametrize("name", NAMES)
    @pytest.mark.parametrize("order", ["random", "degree", list(range(39, -1, -1))])
    def test_every_order_keeps_the_undirected_graph(self, name, order):
        labelled, oriented = UNDIRECTED[name]("label"), UNDIRECTED[name](order)
        assert skeleton(oriented) == skeleton(labelled)
        assert oriented.number_of_edges() == labelled.number_of_edges()
        assert list(oriented.nodes) == list(range(40))
        assert nx.is_directed_acyclic_graph(oriented)
        assert dict(oriented.nodes(data="layer")) == {
            v: layer for layer, vs in enumerate(nx.topological_generations(oriented)) for v in vs
        }

    @pytest.mark.parametrize("name", NAMES)
    def test_explicit_order_is_followed(self, name):
        sequence = np.random.default_rng(0).permutation(40).tolist()
        oriented = UNDIRECTED[name](sequence)
        assert points_along(oriented, sequence)
        reverse = UNDIRECTED[name](list(range(39, -1, -1)))
        assert set(reverse.edges) == {(v, u) for u, v in UNDIRECTED[name]("label").edges}

    @pytest.mark.parametrize("name", NAMES)
    def test_random_order_is_seeded_and_is_to_dag_of_the_graph(self, name):
        first, second = UNDIRECTED[name]("random", 5), UNDIRECTED[name]("random", 5)
        assert list(first.edges) == list(second.edges)
        assert set(first.edges) != set(UNDIRECTED[name]("label", 5).edges)
        assert set(UNDIRECTED[name]("random", 6).edges) != set(first.edges)

    @pytest.mark.parametrize("name", NAMES)
    def test_degree_order_makes_hubs_sources(self, name):
        oriented = UNDIRECTED[name]("degree")
        degree = dict(oriented.degree)
        # edges point from the higher degree, ties from the lower label
        assert all((degree[u], -u) > (degree[v], -v) for u, v in oriented.edges)
        hub = max(degree, key=lambda v: (degree[v], -v))
        assert oriented.in_degree(hub) == 0
        undirected = nx.Graph()
        undirected.add_nodes_from(range(40))  # ties in label order, as in the generators
        undirected.add_edges_from(UNDIRECTED[name]("label").edges)
        expected = to_dag(undirected, order="degree")
        assert set(oriented.edges) == set(expected.edges)

    def test_the_label_oriented_ring_is_a_chain_and_random_is_shallow(self):
        chain = watts_strogatz(128, 8, 0.1, seed=0)
        shuffled = watts_strogatz(128, 8, 0.1, order="random", seed=0)
        assert (chain.num_layers, chain.get_layer_size(0)) == (116, 1)
        assert shuffled.num_layers < 40
        assert shuffled.get_layer_size(0) > 5

    @pytest.mark.parametrize("name", NAMES)
    @pytest.mark.parametrize(
        ("order", "error", "message"),
        [
            ("sorted", ConfigError, "order must be 'label', 'random', 'degree'"),
            ("", ConfigError, "order must be 'label', 'random', 'degree'"),
            (3, InputTypeError, "order must be 'label', 'random', 'degree'"),
            (None, InputTypeError, "order must be 'label', 'random', 'degree'"),
            (list(range(39)), ConfigError, "every vertex of the graph exactly once"),
            (list(range(1, 41)), ConfigError, "every vertex of the graph exactly once"),
            ([0] * 40, ConfigError, "every vertex of the graph exactly once"),
            ([[0]] * 40, ConfigError, "every vertex of the graph exactly once"),
        ],
    )
    def test_bad_order_is_refused(self, name, order, error, message):
        with pytest.raises(error, match=message):
            UNDIRECTED[name](order)

    def test_a_bad_order_is_refused_before_anything_is_drawn(self):
        rng = np.random.default_rng(0)
        state = rng.bit_generator.state
        with pytest.raises(ConfigError):
            watts_strogatz(10, 4, 0.5, order="sideways", seed=rng)
        assert rng.bit_generator.state == state
