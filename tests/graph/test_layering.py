"""layer_index: topological generations of any DiGraph, errors, and its cost."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pypaddle.graph.layering as layering
from pypaddle.errors import InputTypeError, PaddleError, StructureError
from pypaddle.graph import layer_index
from pypaddle.graph.layering import edge_index, layer_array, vertex_array
from pypaddle.util import build_layer_index


@st.composite
def random_dags(draw, max_vertices=14):
    """A DAG with int, str or tuple labels, inserted in a random order."""
    count = draw(st.integers(0, max_vertices))
    kind = draw(st.sampled_from(["int", "str", "tuple"]))
    labels = {
        "int": lambda i: i * 7 % 31,
        "str": lambda i: f"v{i}",
        "tuple": lambda i: (i % 3, f"n{i}"),
    }[kind]
    # edges run from lower to higher rank, so the graph is acyclic whatever the labels
    pairs = [(i, j) for i in range(count) for j in range(i + 1, count)]
    chosen = draw(st.lists(st.sampled_from(pairs), unique=True) if pairs else st.just([]))
    order = draw(st.permutations(range(count)))
    graph = nx.DiGraph()
    graph.add_nodes_from(labels(i) for i in order)
    edge_order = draw(st.permutations(chosen))
    graph.add_edges_from((labels(i), labels(j)) for i, j in edge_order)
    return graph


class TestLayerIndex:
    def test_diamond_with_skip(self):
        graph = nx.DiGraph([(0, 2), (1, 2), (2, 3), (0, 3)])
        assert layer_index(graph) == ({0: 0, 1: 0, 2: 1, 3: 2}, {0: [0, 1], 1: [2], 2: [3]})

    def test_longest_path_decides(self):
        # 0 -> 4 directly and through 1 -> 2 -> 3: 4 sits after the long path
        graph = nx.DiGraph([(0, 4), (0, 1), (1, 2), (2, 3), (3, 4)])
        layer_of_vertex, vertices_by_layer = layer_index(graph)
        assert layer_of_vertex == {0: 0, 4: 4, 1: 1, 2: 2, 3: 3}
        assert vertices_by_layer == {0: [0], 1: [1], 2: [2], 3: [3], 4: [4]}

    def test_isolated_vertices_are_sources(self):
        graph = nx.DiGraph([("a", "b")])
        graph.add_node("z")
        assert layer_index(graph) == ({"a": 0, "b": 1, "z": 0}, {0: ["a", "z"], 1: ["b"]})

    def test_insertion_order_within_layer(self):
        graph = nx.DiGraph()
        graph.add_nodes_from([9, 3, 7, 1])
        graph.add_edges_from([(7, 5), (3, 5), (9, 2)])
        _, vertices_by_layer = layer_index(graph)
        assert vertices_by_layer == {0: [9, 3, 7, 1], 1: [5, 2]}

    def test_tuple_and_mixed_labels_come_back_whole(self):
        graph = nx.DiGraph([((0, 1), "x"), ("x", (2, (3, 4))), (5, "x")])
        layer_of_vertex, vertices_by_layer = layer_index(graph)
        assert layer_of_vertex == {(0, 1): 0, "x": 1, (2, (3, 4)): 2, 5: 0}
        assert vertices_by_layer == {0: [(0, 1), 5], 1: ["x"], 2: [(2, (3, 4))]}
        assert all(type(v) is tuple for v in (vertices_by_layer[0][0], vertices_by_layer[2][0]))

    def test_empty_graph_has_no_layers(self):
        assert layer_index(nx.DiGraph()) == ({}, {})

    def test_single_vertex(self):
        graph = nx.DiGraph()
        graph.add_node("only")
        assert layer_index(graph) == ({"only": 0}, {0: ["only"]})

    def test_layers_are_python_ints(self):
        layer_of_vertex, vertices_by_layer = layer_index(nx.DiGraph([(0, 1)]))
        assert all(type(layer) is int for layer in layer_of_vertex.values())
        assert all(type(layer) is int for layer in vertices_by_layer)

    def test_works_on_views(self):
        graph = nx.DiGraph([(0, 1), (1, 2), (2, 3)])
        assert layer_index(graph.subgraph([1, 2, 3]))[0] == {1: 0, 2: 1, 3: 2}
        assert layer_index(graph.reverse(copy=False))[0] == {0: 3, 1: 2, 2: 1, 3: 0}

    def test_build_layer_index_is_the_same(self):
        graph = nx.DiGraph([(0, 2), (1, 2), (2, 3)])
        assert build_layer_index(graph) == layer_index(graph)

    def test_build_layer_index_fills_old_style_dict(self):
        filled = {"stale": 9}
        build_layer_index(nx.DiGraph([(0, 1)]), filled)
        assert filled == {"stale": 9, 0: 0, 1: 1}

    @settings(max_examples=150, deadline=None)
    @given(graph=random_dags())
    def test_matches_topological_generations(self, graph):
        layer_of_vertex, vertices_by_layer = layer_index(graph)
        generations = [set(generation) for generation in nx.topological_generations(graph)]
        assert [set(vertices_by_layer[layer]) for layer in range(len(vertices_by_layer))] == (
            generations
        )
        assert sorted(vertices_by_layer) == list(range(len(generations)))
        assert layer_of_vertex == {
            vertex: layer for layer, vs in vertices_by_layer.items() for vertex in vs
        }
        insertion = {vertex: position for position, vertex in enumerate(graph)}
        for vertices in vertices_by_layer.values():
            assert [insertion[v] for v in vertices] == sorted(insertion[v] for v in vertices)

    @settings(max_examples=60, deadline=None)
    @given(graph=random_dags())
    def test_every_edge_goes_forward_and_every_vertex_is_tight(self, graph):
        layer_of_vertex, _ = layer_index(graph)
        for source, target in graph.edges:
            assert layer_of_vertex[source] < layer_of_vertex[target]
        for vertex in graph:
            predecessors = [layer_of_vertex[p] for p in graph.predecessors(vertex)]
            assert layer_of_vertex[vertex] == (max(predecessors) + 1 if predecessors else 0)

    @settings(max_examples=40, deadline=None)
    @given(graph=random_dags(), data=st.data())
    def test_any_back_edge_is_reported_as_a_cycle(self, graph, data):
        edges = list(graph.edges)
        if not edges:
            return
        source, target = data.draw(st.sampled_from(edges))
        cyclic = graph.copy()
        cyclic.add_edge(target, source)
        with pytest.raises(StructureError, match="cycle"):
            layer_index(cyclic)


class TestCycles:
    def test_self_loop_named(self):
        graph = nx.DiGraph([(0, 1), (1, 1)])
        with pytest.raises(StructureError) as info:
            layer_index(graph)
        assert "1 -> 1" in str(info.value)

    def test_cycle_names_its_vertices(self):
        graph = nx.DiGraph([("in", "a"), ("a", "b"), ("b", "c"), ("c", "a"), ("c", "out")])
        with pytest.raises(StructureError) as info:
            layer_index(graph)
        message = str(info.value)
        assert "'a' -> 'b' -> 'c' -> 'a'" in message
        assert "'in'" not in message
        assert "'out'" not in message

    def test_cycle_downstream_of_a_long_path(self):
        graph = nx.path_graph(50, create_using=nx.DiGraph)
        graph.add_edges_from([(49, 50), (50, 49)])
        with pytest.raises(StructureError) as info:
            layer_index(graph)
        assert "49 -> 50 -> 49" in str(info.value) or "50 -> 49 -> 50" in str(info.value)

    def test_is_value_error_and_paddle_error(self):
        with pytest.raises(ValueError, match="cycle") as info:
            layer_index(nx.DiGraph([(0, 1), (1, 0)]))
        assert isinstance(info.value, PaddleError)


class TestNotAStructure:
    @pytest.mark.parametrize("graph", [nx.Graph([(0, 1)]), nx.MultiGraph([(0, 1)])])
    def test_undirected(self, graph):
        with pytest.raises(StructureError, match="directed"):
            layer_index(graph)

    def test_multigraph(self):
        with pytest.raises(StructureError, match="MultiDiGraph"):
            layer_index(nx.MultiDiGraph([(0, 1), (0, 1)]))

    @pytest.mark.parametrize("value", [[(0, 1)], {0: [1]}, None, np.eye(2)])
    def test_non_graph_is_type_error(self, value):
        with pytest.raises(InputTypeError) as info:
            layer_index(value)
        assert isinstance(info.value, TypeError)
        assert isinstance(info.value, PaddleError)
        assert "DiGraph" in str(info.value)


class TestHelpers:
    def test_vertex_array_keeps_tuples(self):
        array = vertex_array([(0, 1), "a", 3])
        assert array.dtype == object
        assert array.shape == (3,)
        assert array.tolist() == [(0, 1), "a", 3]

    def test_edge_index_grouped_by_source(self):
        graph = nx.DiGraph([("b", "c"), ("a", "c"), ("b", "a")])
        position = {vertex: i for i, vertex in enumerate(graph)}
        sources, targets = edge_index(graph, position)
        assert sources.dtype == np.int64
        assert targets.dtype == np.int64
        assert sources.tolist() == [0, 0, 2]
        assert targets.tolist() == [1, 2, 1]

    def test_layer_array(self):
        vertices, layers = layer_array(nx.DiGraph([(2, 1), (1, 0)]))
        assert vertices == [2, 1, 0]
        assert layers.tolist() == [0, 1, 2]


def complete_layered(widths):
    graph = nx.DiGraph()
    offsets = np.cumsum([0, *widths])
    for layer in range(len(widths) - 1):
        graph.add_edges_from(
            (u, v)
            for u in range(offsets[layer], offsets[layer + 1])
            for v in range(offsets[layer + 1], offsets[layer + 2])
        )
    return graph


class TestCost:
    """Operation counts instead of clocks: one array step per layer, O(V + E) work in all."""

    @pytest.fixture
    def steps(self, monkeypatch):
        calls = []
        original = layering._next_frontier

        def counting(frontier, out_degree, row_start, targets, in_degree):
            calls.append((frontier.size, int(out_degree[frontier].sum())))
            return original(frontier, out_degree, row_start, targets, in_degree)

        monkeypatch.setattr(layering, "_next_frontier", counting)
        return calls

    @pytest.fixture
    def no_per_vertex_queries(self, monkeypatch):
        def forbidden(*args, **kwargs):
            raise AssertionError("per-vertex networkx query in the layering")

        for name in (
            "ancestors",
            "descendants",
            "has_path",
            "shortest_path_length",
            "topological_sort",
            "topological_generations",
            "dag_longest_path",
        ):
            monkeypatch.setattr(nx, name, forbidden)
        for name in ("has_edge", "predecessors", "successors", "in_degree", "out_degree"):
            monkeypatch.setattr(nx.DiGraph, name, forbidden)

    def test_long_chain_one_step_per_layer(self, steps, no_per_vertex_queries):
        length = 20_000
        graph = nx.DiGraph()
        graph.add_edges_from(zip(range(length - 1), range(1, length)))
        layer_of_vertex, vertices_by_layer = layer_index(graph)
        assert len(vertices_by_layer) == length
        assert layer_of_vertex[length - 1] == length - 1
        assert len(steps) == length
        assert sum(size for size, _ in steps) == length
        assert sum(edges for _, edges in steps) == length - 1

    def test_complete_layered_graph_four_steps(self, steps, no_per_vertex_queries):
        graph = complete_layered([300, 300, 300, 300])
        _, vertices_by_layer = layer_index(graph)
        assert [len(vertices_by_layer[layer]) for layer in range(4)] == [300] * 4
        assert steps == [(300, 90_000), (300, 90_000), (300, 90_000), (300, 0)]

    @settings(max_examples=30, deadline=None)
    @given(graph=random_dags())
    def test_every_vertex_and_edge_visited_once(self, graph):
        calls = []
        original = layering._next_frontier

        def counting(frontier, out_degree, row_start, targets, in_degree):
            calls.append((frontier.size, int(out_degree[frontier].sum())))
            return original(frontier, out_degree, row_start, targets, in_degree)

        layering._next_frontier = counting
        try:
            _, vertices_by_layer = layer_index(graph)
        finally:
            layering._next_frontier = original
        assert len(calls) == len(vertices_by_layer)
        assert sum(size for size, _ in calls) == graph.number_of_nodes()
        assert sum(edges for _, edges in calls) == graph.number_of_edges()
