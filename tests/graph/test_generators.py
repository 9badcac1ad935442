"""Structural priors: seeded, acyclic, layered, with clear errors; and scale()."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pypaddle.errors import ConfigError, InputTypeError, StructureError, StructureWarning
from pypaddle.graph import (
    CachedLayeredGraph,
    barabasi_albert,
    complete_layered,
    erdos_renyi,
    layer_index,
    random_layered,
    scale,
    small_world_layered,
    to_dag,
    watts_strogatz,
)
from pypaddle.sparse import MaskedDeepDAN

SEEDED = {
    "erdos_renyi": lambda seed: erdos_renyi(60, 0.1, seed=seed),
    "watts_strogatz": lambda seed: watts_strogatz(60, 4, 0.3, seed=seed),
    "barabasi_albert": lambda seed: barabasi_albert(60, 3, seed=seed),
    "to_dag": lambda seed: to_dag(nx.gnm_random_graph(40, 120, seed=1), order="random", seed=seed),
    "random_layered": lambda seed: random_layered(
        [8, 10, 10, 4], density=0.3, skip_density=0.2, skip_decay=0.5, seed=seed
    ),
    "small_world_layered": lambda seed: small_world_layered(4, 16, 4, 0.3, seed=seed),
}


def assert_layered_dag(graph):
    """A CachedLayeredGraph, acyclic, whose ``layer`` attributes are its layers."""
    assert type(graph) is CachedLayeredGraph
    assert nx.is_directed_acyclic_graph(graph)
    assert nx.number_of_selfloops(graph) == 0
    layer_of_vertex, _ = layer_index(graph)
    assert dict(graph.nodes(data="layer")) == layer_of_vertex


class TestAllGenerators:
    @pytest.mark.parametrize("name", sorted(SEEDED))
    def test_same_seed_same_graph(self, name):
        first, second = SEEDED[name](7), SEEDED[name](7)
        assert list(first.nodes(data=True)) == list(second.nodes(data=True))
        assert list(first.edges) == list(second.edges)

    @pytest.mark.parametrize("name", sorted(SEEDED))
    def test_other_seed_other_graph(self, name):
        assert set(SEEDED[name](7).edges) != set(SEEDED[name](8).edges)

    @pytest.mark.parametrize("name", sorted(SEEDED))
    def test_numpy_generator_as_seed(self, name):
        first = SEEDED[name](np.random.default_rng(3))
        second = SEEDED[name](np.random.default_rng(3))
        assert list(first.edges) == list(second.edges)

    @pytest.mark.parametrize("name", sorted(SEEDED))
    @pytest.mark.parametrize("seed", ["zero", 1.5, True])
    def test_bad_seed(self, name, seed):
        with pytest.raises(ConfigError, match=r"^seed must"):
            SEEDED[name](seed)

    @pytest.mark.parametrize("name", sorted(SEEDED))
    def test_layered_dag(self, name):
        assert_layered_dag(SEEDED[name](0))

    @pytest.mark.parametrize("name", sorted(SEEDED))
    def test_a_dan_built_from_it_trains(self, name):
        structure = SEEDED[name](0)
        if name == "watts_strogatz":  # oriented by label: 47 layers of 1.3 vertices
            with pytest.warns(StructureWarning, match="layers deep"):
                model = MaskedDeepDAN(5, 3, structure)
        else:
            model = MaskedDeepDAN(5, 3, structure)
        inputs = torch.randn(4, 5, generator=torch.Generator().manual_seed(0))
        output = model(inputs)
        assert output.shape == (4, 3)
        assert torch.isfinite(output).all()
        output.sum().backward()
        assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
        assert set(model.generate_structure().edges) == set(structure.edges)


class TestSmallWorldLayered:
    def test_without_rewiring_it_is_a_ring_lattice_between_layers(self):
        graph = small_world_layered(3, 4, 2, 0.0, seed=0)
        expected = {
            (layer * 4 + i, (layer + 1) * 4 + (i + offset) % 4)
            for layer in range(2)
            for i in range(4)
            for offset in (-1, 0)
        }
        assert set(graph.edges) == expected
        assert len(expected) == 16
        assert list(graph.nodes) == list(range(12))
        assert graph.nodes[6] == {"layer": 1, "lattice_layer": 1, "lattice_index": 2}

    def test_rewired_edges_only_skip_forward(self):
        graph = small_world_layered(4, 16, 4, 1.0, seed=0)
        lattice_layer = nx.get_node_attributes(graph, "lattice_layer")
        assert all(lattice_layer[v] > lattice_layer[u] for u, v in graph.edges)
        assert any(lattice_layer[v] > lattice_layer[u] + 1 for u, v in graph.edges)
        # From the last-but-one layer the only later layer is the last one.
        assert {lattice_layer[v] for u, v in graph.edges if lattice_layer[u] == 2} == {3}

    def test_the_demo_structure_keeps_its_four_layers(self):
        graph = small_world_layered(seed=0)  # the defaults are the demo's prior
        lattice_layer = nx.get_node_attributes(graph, "lattice_layer")
        skips = sum(lattice_layer[v] > lattice_layer[u] + 1 for u, v in graph.edges)
        assert [graph.get_layer_size(layer) for layer in graph.layers] == [64, 64, 64, 64]
        assert 0 < skips < 0.1 * graph.number_of_edges()
        assert graph.number_of_edges() == 1527
        assert graph.number_of_edges() <= 3 * 64 * 8

    def test_one_layer_has_no_edges(self):
        graph = small_world_layered(1, 5, 2, 0.5, seed=0)
        assert (graph.number_of_nodes(), graph.number_of_edges()) == (5, 0)

    @pytest.mark.parametrize(
        ("arguments", "message"),
        [
            ((0, 4, 2, 0.1), "layers must be an int >= 1"),
            ((2, 0, 0, 0.1), "width must be an int >= 1"),
            ((2, 4, -1, 0.1), "neighbours must be an int >= 1"),
            ((2, 4, 5, 0.1), "neighbours must be at most width=4"),
            ((2, 4, 2, 1.5), "p must be a probability"),
            ((2, 4, 2, float("nan")), "p must be a probability"),
            ((2.0, 4, 2, 0.1), "layers must be an int"),
        ],
    )
    def test_bad_arguments(self, arguments, message):
        with pytest.raises(ConfigError, match=message):
            small_world_layered(*arguments, seed=0)


class TestErdosRenyi:
    def test_extremes(self):
        assert erdos_renyi(6, 0.0, seed=0).number_of_edges() == 0
        complete = erdos_renyi(6, 1.0, seed=0)
        assert sorted(complete.edges) == [(i, j) for i in range(6) for j in range(i + 1, 6)]
        assert complete.num_layers == 6

    def test_single_vertex(self):
        graph = erdos_renyi(1, 0.5, seed=0)
        assert list(graph.nodes(data=True)) == [(0, {"layer": 0})]

    def test_edge_count_is_binomial(self):
        counts = [erdos_renyi(100, 0.1, seed=seed).number_of_edges() for seed in range(20)]
        # mean 495, standard deviation of the mean of 20 draws ~4.7
        assert abs(np.mean(counts) - 495) < 25

    def test_edges_point_up(self):
        assert all(u < v for u, v in erdos_renyi(50, 0.2, seed=1).edges)

    @pytest.mark.parametrize(
        ("arguments", "name"),
        [((0, 0.5), "n"), ((-3, 0.5), "n"), ((5, 1.5), "p"), ((5, -0.1), "p"), ((5, "x"), "p")],
    )
    def test_bad_parameters_are_named(self, arguments, name):
        with pytest.raises(ConfigError, match=rf"^{name} must"):
            erdos_renyi(*arguments, seed=0)

    def test_bool_is_not_a_count(self):
        with pytest.raises(ConfigError, match=r"^n must"):
            erdos_renyi(True, 0.5)


class TestWattsStrogatz:
    def test_ring_without_rewiring(self):
        ring = watts_strogatz(8, 4, 0.0, seed=0)
        expected = {tuple(sorted((i, (i + d) % 8))) for i in range(8) for d in (1, 2)}
        assert set(ring.edges) == expected

    def test_odd_k_rounds_down_as_in_networkx(self):
        ring = watts_strogatz(8, 3, 0.0, seed=0)
        expected = nx.watts_strogatz_graph(8, 3, 0.0)
        assert {tuple(sorted(edge)) for edge in ring.edges} == {
            tuple(sorted(edge)) for edge in expected.edges
        }
        assert watts_strogatz(200, 3, 0.8, seed=0).number_of_edges() == 200

    @pytest.mark.parametrize(("n", "k"), [(5, 2), (6, 4), (7, 4), (9, 6), (40, 6), (9, 5)])
    def test_full_rewiring_keeps_the_edge_count(self, n, k):
        # small graphs hit vertices that are joined to everyone: they keep ring edges
        for seed in range(30):
            graph = watts_strogatz(n, k, 1.0, seed=seed)
            assert graph.number_of_edges() == n * (k // 2)
            assert nx.number_of_selfloops(graph) == 0

    def test_small_world_clustering(self):
        # rewiring 10% keeps most of the lattice's clustering (3/4 * (k-2)/(k-1) = 0.67)
        graph = watts_strogatz(1000, 10, 0.1, seed=1).to_undirected()
        assert 0.4 < nx.average_clustering(graph) < 0.6
        assert nx.average_clustering(watts_strogatz(1000, 10, 1.0, seed=1).to_undirected()) < 0.05

    @pytest.mark.parametrize(
        ("arguments", "name"),
        [
            ((0, 0, 0.1), "n"),
            ((5, 6, 0.1), "k"),
            ((5, 5, 0.1), "k"),
            ((6, -2, 0.1), "k"),
            ((6, 2, 2.0), "p"),
        ],
    )
    def test_bad_parameters_are_named(self, arguments, name):
        with pytest.raises(ConfigError, match=rf"^{name} must"):
            watts_strogatz(*arguments, seed=0)


class TestBarabasiAlbert:
    def test_every_new_vertex_joins_m_older_ones(self):
        graph = barabasi_albert(50, 3, seed=4)
        assert graph.number_of_edges() == 3 * 47
        assert sorted(graph.successors(0))[:3] == [1, 2, 3]  # the initial star
        for vertex in range(4, 50):
            predecessors = list(graph.predecessors(vertex))
            assert len(predecessors) == 3
            assert all(u < vertex for u in predecessors)

    def test_hubs_are_old(self):
        graph = barabasi_albert(3000, 2, seed=0)
        degrees = np.array([graph.degree(v) for v in range(3000)])
        assert degrees[:30].mean() > 5 * degrees[-1000:].mean()
        assert degrees.max() > 40  # a heavy tail, not a lattice

    @pytest.mark.parametrize(
        ("arguments", "name"), [((0, 1), "n"), ((5, 0), "m"), ((5, 5), "m"), ((3, 7), "m")]
    )
    def test_bad_parameters_are_named(self, arguments, name):
        with pytest.raises(ConfigError, match=rf"^{name} must"):
            barabasi_albert(*arguments, seed=0)


class TestToDag:
    def test_cycle_is_broken_by_label(self):
        cycle = nx.DiGraph([(0, 1), (1, 2), (2, 0)])
        dag = to_dag(cycle)
        assert sorted(dag.edges) == [(0, 1), (0, 2), (1, 2)]
        assert list(cycle.edges) == [(0, 1), (1, 2), (2, 0)]  # the input is untouched

    def test_keeps_vertices_attributes_and_forward_edge_data(self):
        graph = nx.DiGraph(name="g")
        graph.add_node("b", colour="red")
        graph.add_node("a")
        graph.add_edge("a", "b", weight=1.0)
        graph.add_edge("b", "a", weight=2.0)
        graph.add_edge("b", "b")
        dag = to_dag(graph)
        assert list(dag) == ["b", "a"]
        assert dag.graph == {"name": "g"}
        assert dag.nodes["b"] == {"colour": "red", "layer": 1}
        assert list(dag.edges(data=True)) == [("a", "b", {"weight": 1.0})]

    def test_degree_order_makes_hubs_sources(self):
        dag = to_dag(nx.star_graph(4), order="degree")
        assert sorted(dag.edges) == [(0, 1), (0, 2), (0, 3), (0, 4)]

    def test_explicit_order(self):
        dag = to_dag(nx.path_graph(3), order=[2, 1, 0])
        assert sorted(dag.edges) == [(1, 0), (2, 1)]

    def test_multigraph_collapses(self):
        graph = nx.MultiGraph([(0, 1), (0, 1), (1, 2)])
        assert sorted(to_dag(graph).edges) == [(0, 1), (1, 2)]

    def test_skeleton_is_kept(self):
        graph = nx.gnm_random_graph(30, 80, seed=2, directed=True)
        dag = to_dag(graph, order="random", seed=0)
        assert {frozenset(e) for e in dag.edges} == {frozenset(e) for e in graph.edges}

    def test_mixed_labels_need_another_order(self):
        with pytest.raises(InputTypeError, match="order='random'"):
            to_dag(nx.Graph([(1, "a")]))
        assert sorted(map(str, to_dag(nx.Graph([(1, "a")]), order="degree"))) == ["1", "a"]

    @pytest.mark.parametrize("order", ["size", [0, 1], [0, 1, 1]])
    def test_bad_order(self, order):
        with pytest.raises(ConfigError, match="order must"):
            to_dag(nx.path_graph(3), order=order)

    def test_not_a_graph(self):
        with pytest.raises(InputTypeError, match="networkx graph"):
            to_dag([(0, 1)])

    @settings(max_examples=40, deadline=None)
    @given(
        edges=st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9)), max_size=40),
        order=st.sampled_from(["label", "random", "degree"]),
    )
    def test_any_digraph_becomes_a_dag(self, edges, order):
        graph = nx.DiGraph(edges)
        dag = to_dag(graph, order=order, seed=0)
        assert_layered_dag(dag)
        skeleton = {frozenset(e) for e in graph.edges if e[0] != e[1]}
        assert {frozenset(e) for e in dag.edges} == skeleton


class TestLayered:
    def test_widths_and_labels(self):
        graph = random_layered([3, 4, 2], density=0.5, seed=0)
        assert [graph.get_vertices(layer) for layer in graph.layers] == [
            [0, 1, 2],
            [3, 4, 5, 6],
            [7, 8],
        ]

    def test_no_skips_by_default(self):
        graph = random_layered([5, 5, 5, 5], density=0.4, seed=3)
        assert all(graph.get_layer(v) == graph.get_layer(u) + 1 for u, v in graph.edges)

    def test_skip_decay_favours_short_skips(self):
        graph = random_layered([30] * 6, density=0.1, skip_density=0.5, skip_decay=0.2, seed=0)
        distances = np.array([graph.get_layer(v) - graph.get_layer(u) for u, v in graph.edges])
        counts = np.bincount(distances)
        assert counts[2] > 3 * counts[3] > 0

    def test_skip_decay_zero_keeps_only_distance_two(self):
        graph = random_layered([6] * 5, density=0.3, skip_density=1.0, skip_decay=0.0, seed=0)
        distances = {graph.get_layer(v) - graph.get_layer(u) for u, v in graph.edges}
        assert distances == {1, 2}

    def test_skips_do_not_change_the_main_edges(self):
        plain = random_layered([6, 6, 6], density=0.5, seed=9)
        skipped = random_layered([6, 6, 6], density=0.5, skip_density=0.5, seed=9)
        assert set(plain.edges) < set(skipped.edges)

    def test_complete_layered_is_a_dense_ffn(self):
        graph = complete_layered([3, 4, 2])
        assert graph.number_of_edges() == 3 * 4 + 4 * 2
        assert set(graph.successors(0)) == {3, 4, 5, 6}
        assert list(graph.nodes(data="layer")) == [
            (v, 0 if v < 3 else 1 if v < 7 else 2) for v in range(9)
        ]

    @pytest.mark.parametrize(
        ("keywords", "name"),
        [
            ({"widths": []}, "widths"),
            ({"widths": [3, 0]}, r"widths\[1\]"),
            ({"widths": "abc"}, "widths"),
            ({"widths": [3], "density": 1.5}, "density"),
            ({"widths": [3], "skip_density": -1}, "skip_density"),
            ({"widths": [3], "skip_decay": 2}, "skip_decay"),
        ],
    )
    def test_bad_parameters_are_named(self, keywords, name):
        keywords = {"density": 0.5, **keywords}
        with pytest.raises(ConfigError, match=rf"^{name} must"):
            random_layered(**keywords, seed=0)
        if "density" not in name and "skip" not in name:
            with pytest.raises(ConfigError, match=rf"^{name} must"):
                complete_layered(keywords["widths"])


class TestScale:
    def test_groups_and_blocks(self):
        theme = nx.DiGraph([("a", "b"), ("b", "c"), ("a", "c")])
        wide = scale(theme, {"a": 2, "b": 3, "c": 1})
        assert wide.number_of_nodes() == 6
        assert wide.number_of_edges() == 2 * 3 + 3 * 1 + 2 * 1
        groups = {v: data["group"] for v, data in wide.nodes(data=True)}
        assert groups == {0: "a", 1: "a", 2: "b", 3: "b", 4: "b", 5: "c"}
        expected = {(u, v) for u in wide for v in wide if (groups[u], groups[v]) in theme.edges}
        assert set(wide.edges) == expected
        assert_layered_dag(wide)
        assert [wide.nodes[v]["member"] for v in wide] == [0, 1, 0, 1, 2, 0]

    def test_one_size_for_all(self):
        wide = scale(nx.DiGraph([(0, 1), (1, 2)]), 4)
        assert wide.number_of_edges() == 2 * 16
        assert [wide.get_layer_size(layer) for layer in wide.layers] == [4, 4, 4]

    def test_a_dan_built_from_a_scaled_theme_works(self):
        theme = watts_strogatz(12, 4, 0.2, seed=0)
        wide = scale(theme, 8)
        model = MaskedDeepDAN(10, 2, wide)
        output = model(torch.randn(3, 10))
        assert output.shape == (3, 2)
        assert model.generate_structure().number_of_edges() == theme.number_of_edges() * 64

    def test_bad_sizes(self):
        theme = nx.DiGraph([(0, 1)])
        with pytest.raises(ConfigError, match="no entry for vertices"):
            scale(theme, {0: 2})
        with pytest.raises(ConfigError, match=r"^sizes\[1\] must"):
            scale(theme, {0: 2, 1: 0})
        with pytest.raises(ConfigError, match=r"^sizes must"):
            scale(theme, 0)

    def test_cyclic_theme(self):
        with pytest.raises(StructureError, match="cycle"):
            scale(nx.DiGraph([(0, 1), (1, 0)]), 2)
