"""LayeredGraph / CachedLayeredGraph: accessors, cache invalidation, copies, views, pickling."""

from __future__ import annotations

import copy
import pickle
from types import MappingProxyType

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pypaddle.graph.layered as layered
import pypaddle.sparse
from pypaddle.errors import StructureError
from pypaddle.graph import CachedLayeredGraph, LayeredGraph, layer_index


def diamond():
    """0, 1 -> 2 -> 3 and a skip 0 -> 3.  Layers: [0, 1], [2], [3]."""
    return LayeredGraph([(0, 2), (1, 2), (2, 3), (0, 3)])


def fresh(graph):
    """The layer index of ``graph`` computed from scratch on a plain DiGraph."""
    return layer_index(nx.DiGraph(graph))


def index_of(graph):
    return graph.layer_of_vertex, graph.vertices_by_layer


class TestClasses:
    def test_are_digraphs(self):
        assert issubclass(LayeredGraph, nx.DiGraph)
        assert issubclass(CachedLayeredGraph, LayeredGraph)

    def test_exported_from_sparse(self):
        assert pypaddle.sparse.LayeredGraph is LayeredGraph
        assert pypaddle.sparse.CachedLayeredGraph is CachedLayeredGraph

    def test_built_from_a_digraph_keeps_labels(self):
        graph = CachedLayeredGraph(nx.DiGraph([("x", (1, 2))]))
        assert list(graph) == ["x", (1, 2)]
        assert graph.get_layer((1, 2)) == 1


class TestAccessors:
    def test_layers(self):
        graph = diamond()
        assert graph.num_layers == 3
        assert graph.layers == [0, 1, 2]
        assert (graph.first_layer, graph.last_layer) == (0, 2)
        assert (graph.first_layer_size, graph.last_layer_size) == (2, 1)

    def test_get_layer(self):
        graph = diamond()
        assert [graph.get_layer(v) for v in (0, 1, 2, 3)] == [0, 0, 1, 2]

    def test_get_layer_unknown_vertex(self):
        with pytest.raises(KeyError, match="99"):
            diamond().get_layer(99)

    def test_get_vertices_and_size(self):
        graph = diamond()
        assert [graph.get_vertices(layer) for layer in range(4)] == [[0, 1], [2], [3], []]
        assert [graph.get_layer_size(layer) for layer in range(4)] == [2, 1, 1, 0]

    def test_layer_connections(self):
        graph = diamond()
        assert graph.layer_connection_size(0, 1) == 2
        assert graph.layer_connection_size(0, 2) == 1
        assert graph.layer_connection_size(1, 2) == 1
        assert graph.layer_connection_size(1, 0) == 0
        assert graph.layer_connection_size(2, 5) == 0
        assert graph.layer_connected(0, 2)
        assert not graph.layer_connected(1, 0)
        assert not graph.layer_connected(0, 0)

    def test_mappings_are_copies(self):
        graph = diamond()
        graph.layer_of_vertex[0] = 42
        graph.vertices_by_layer[0].append("junk")
        assert graph.get_layer(0) == 0
        assert graph.get_vertices(0) == [0, 1]
        graph.get_vertices(0).append("junk")
        assert graph.get_vertices(0) == [0, 1]

    def test_mappings(self):
        assert index_of(diamond()) == ({0: 0, 2: 1, 1: 0, 3: 2}, {0: [0, 1], 1: [2], 2: [3]})

    def test_empty_graph(self):
        graph = LayeredGraph()
        assert graph.num_layers == 0
        assert graph.layers == []
        assert graph.first_layer_size == 0
        assert graph.last_layer_size == 0
        assert graph.vertices_by_layer == {}

    def test_complete_layered(self):
        graph = CachedLayeredGraph()
        graph.add_edges_from((u, v) for u in range(3) for v in range(3, 7))
        graph.add_edges_from((u, v) for u in range(3, 7) for v in range(7, 9))
        assert graph.num_layers == 3
        assert [graph.get_layer_size(layer) for layer in graph.layers] == [3, 4, 2]
        assert graph.layer_connection_size(0, 1) == 12
        assert graph.layer_connection_size(1, 2) == 8
        assert not graph.layer_connected(0, 2)

    def test_cycle_raises_on_question(self):
        graph = LayeredGraph([(0, 1), (1, 0)])
        with pytest.raises(StructureError, match="0 -> 1 -> 0"):
            graph.num_layers


# Each mutation is chosen so that the layer index really changes.
MUTATIONS = MappingProxyType(
    {
        "add_node": lambda g: g.add_node("new"),
        "add_nodes_from": lambda g: g.add_nodes_from(["new", "other"]),
        "remove_node": lambda g: g.remove_node(2),
        "remove_nodes_from": lambda g: g.remove_nodes_from([2, 1]),
        "add_edge": lambda g: g.add_edge(3, "new"),
        "add_edges_from": lambda g: g.add_edges_from([(3, 4), (4, 5)]),
        "add_weighted_edges_from": lambda g: g.add_weighted_edges_from([(3, 4, 0.5)]),
        "remove_edge": lambda g: g.remove_edge(2, 3),
        "remove_edges_from": lambda g: g.remove_edges_from([(0, 2), (1, 2)]),
        "update-edges": lambda g: g.update(edges=[(3, 9)]),
        "update-graph": lambda g: g.update(nx.DiGraph([(5, 0)])),
        "clear": lambda g: g.clear(),
        "clear_edges": lambda g: g.clear_edges(),
        "relabel-in-place": lambda g: nx.relabel_nodes(g, {0: "zero", 2: 7}, copy=False),
    }
)


class TestCache:
    def test_computed_once(self, monkeypatch):
        calls = []

        def counting(graph):
            calls.append(graph)
            return layer_index(graph)

        monkeypatch.setattr(layered, "layer_index", counting)
        graph = diamond()
        graph.num_layers, graph.get_layer(3), graph.get_vertices(0)
        graph.layer_connection_size(0, 1), graph.last_layer_size
        assert len(calls) == 1
        graph.add_edge(3, 4)
        assert graph.get_layer(4) == 3
        assert len(calls) == 2

    @pytest.mark.parametrize("mutation", list(MUTATIONS), ids=list(MUTATIONS))
    def test_every_mutation_invalidates(self, mutation):
        graph = diamond()
        before = index_of(graph)
        assert graph.num_layers == 3
        MUTATIONS[mutation](graph)
        after = index_of(graph)
        assert after == fresh(graph)
        assert after != before
        assert graph.num_layers == len(fresh(graph)[1])

    def test_mutation_creating_a_cycle_raises_next_question(self):
        graph = diamond()
        assert graph.num_layers == 3
        graph.add_edge(3, 0)
        with pytest.raises(StructureError, match="cycle"):
            graph.num_layers
        graph.remove_edge(3, 0)
        assert graph.num_layers == 3

    def test_failed_mutation_keeps_a_correct_index(self):
        graph = diamond()
        assert graph.num_layers == 3
        with pytest.raises(nx.NetworkXError):
            graph.remove_node("missing")
        assert index_of(graph) == fresh(graph)

    @settings(max_examples=40, deadline=None)
    @given(
        operations=st.lists(
            st.tuples(
                st.sampled_from(["add", "remove_edge", "remove_node"]),
                st.integers(0, 7),
                st.integers(0, 7),
            ),
            max_size=25,
        )
    )
    def test_random_mutation_sequences(self, operations):
        graph = CachedLayeredGraph()
        graph.add_nodes_from(range(4))
        for operation, u, v in operations:
            low, high = min(u, v), max(u, v)
            if operation == "add" and low != high:
                graph.add_edge(low, high)
            elif operation == "remove_edge" and graph.has_edge(low, high):
                graph.remove_edge(low, high)
            elif operation == "remove_node" and u in graph:
                graph.remove_node(u)
            assert index_of(graph) == fresh(graph)


class TestCopies:
    def test_copy_is_independent(self):
        graph = diamond()
        assert graph.num_layers == 3
        duplicate = graph.copy()
        assert type(duplicate) is LayeredGraph
        assert index_of(duplicate) == index_of(graph)
        duplicate.add_edge(3, 4)
        assert duplicate.num_layers == 4
        assert graph.num_layers == 3

    def test_copy_keeps_class(self):
        assert type(CachedLayeredGraph([(0, 1)]).copy()) is CachedLayeredGraph

    def test_deepcopy(self):
        graph = diamond()
        assert graph.num_layers == 3
        duplicate = copy.deepcopy(graph)
        duplicate.remove_node(2)
        assert duplicate.num_layers == 2
        assert graph.num_layers == 3

    def test_pickle_round_trip(self):
        graph = CachedLayeredGraph([((0, "a"), "b"), ("b", "c")])
        assert graph.num_layers == 3
        restored = pickle.loads(pickle.dumps(graph))
        assert type(restored) is CachedLayeredGraph
        assert index_of(restored) == index_of(graph)
        restored.add_edge("c", "d")
        assert restored.num_layers == 4
        assert restored.get_layer("d") == 3
        assert graph.num_layers == 3

    def test_pickle_without_cache(self):
        graph = diamond()
        restored = pickle.loads(pickle.dumps(graph))
        assert restored.num_layers == 3


class TestViews:
    def test_subgraph(self):
        graph = diamond()
        view = graph.subgraph([0, 2, 3])
        assert isinstance(view, LayeredGraph)
        assert index_of(view) == ({0: 0, 2: 1, 3: 2}, {0: [0], 1: [2], 2: [3]})

    def test_subgraph_follows_its_graph(self):
        graph = LayeredGraph()
        graph.add_nodes_from(range(6))
        view = graph.subgraph([0, 1, 2])
        assert view.num_layers == 1
        graph.add_edges_from([(0, 1), (1, 2)])
        assert view.num_layers == 3
        assert index_of(view) == fresh(view)
        graph.remove_edge(1, 2)
        assert view.get_layer(2) == 0

    def test_copy_as_view_follows_its_graph(self):
        graph = diamond()
        view = graph.copy(as_view=True)
        assert view.num_layers == 3
        graph.add_edge(3, 4)
        assert view.num_layers == 4
        assert view.get_layer(4) == 3

    def test_reverse_view_follows_its_graph(self):
        graph = diamond()
        view = graph.reverse(copy=False)
        # reversed: 3 -> 2 -> {0, 1} and 3 -> 0
        assert view.get_layer(0) == 2
        graph.add_edge(3, 4)
        assert view.get_layer(0) == 3
        assert index_of(view) == fresh(view)

    def test_views_cannot_mutate(self):
        view = diamond().subgraph([0, 2])
        with pytest.raises(nx.NetworkXError):
            view.add_edge(0, 5)

    def test_subgraph_copy(self):
        graph = diamond()
        part = graph.subgraph([0, 2, 3]).copy()
        assert type(part) is LayeredGraph
        graph.remove_node(2)
        assert part.num_layers == 3
