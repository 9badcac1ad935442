"""Channel connectivity of convs from bipartite and relational graphs, and back."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import torch

from pypaddle.errors import ConfigError, InputTypeError, MaskError, StructureError
from pypaddle.sparse import (
    MaskedConv1d,
    MaskedConv2d,
    bipartite_connectivity,
    channel_groups,
    relational_connectivity,
    relational_structure,
)


def random_dag(nodes, probability, seed):
    graph = nx.gnp_random_graph(nodes, probability, seed=seed)
    dag = nx.DiGraph()
    dag.add_nodes_from(range(nodes))
    dag.add_edges_from((min(u, v), max(u, v)) for u, v in graph.edges)
    return dag


class TestBipartite:
    def test_directed_graph(self):
        graph = nx.DiGraph([("x", "a"), ("y", "a"), ("y", "b"), ("z", "b")])
        connectivity = bipartite_connectivity(graph, ["x", "y", "z"], ["a", "b"])
        assert connectivity.tolist() == [[True, True, False], [False, True, True]]
        assert connectivity.dtype == torch.bool

    def test_undirected_graph_either_way(self):
        graph = nx.Graph([("a", "x"), ("y", "b")])
        assert bipartite_connectivity(graph, ["x", "y"], ["a", "b"]).tolist() == [
            [True, False],
            [False, True],
        ]

    def test_round_trip_through_a_conv(self):
        source = MaskedConv2d(4, 3, 3)
        source.prune_kernels([0, 0, 2, 1], [1, 3, 0, 2])
        target = MaskedConv2d(4, 3, 5)
        target.set_channel_connectivity(bipartite_connectivity(source.generate_structure(), 4, 3))
        assert torch.equal(target.kernel_mask, source.kernel_mask)
        assert torch.equal(target.channel_connectivity(), source.channel_connectivity())

    def test_grouped_conv_round_trip(self):
        source = MaskedConv1d(4, 4, 3, groups=2)
        source.prune_kernels([1], [0])
        target = MaskedConv1d(4, 4, 3, groups=2)
        target.set_channel_connectivity(bipartite_connectivity(source.generate_structure(), 4, 4))
        assert torch.equal(target.mask, source.mask)

    def test_graph_across_groups_is_refused(self):
        conv = MaskedConv2d(4, 4, 1, groups=2)
        graph = nx.DiGraph([(("input", 0), ("output", 3))])
        with pytest.raises(MaskError, match="crosses groups"):
            conv.set_channel_connectivity(bipartite_connectivity(graph, 4, 4))

    @pytest.mark.parametrize(
        ("edges", "message"),
        [
            ([("x", "y")], "joins two input channels"),
            ([("a", "b")], "joins two output channels"),
            ([("a", "x")], "runs from an output channel to an input channel"),
        ],
    )
    def test_edges_that_are_not_input_to_output(self, edges, message):
        graph = nx.DiGraph([("x", "a"), *edges])
        with pytest.raises(StructureError, match=message):
            bipartite_connectivity(graph, ["x", "y"], ["a", "b"])

    def test_missing_vertices_and_bad_graphs(self):
        graph = nx.DiGraph([("x", "a")])
        # a channel missing from the graph has no edges; no channel at all is an error
        assert bipartite_connectivity(graph, ["x"], ["a", "b"]).tolist() == [[True], [False]]
        with pytest.raises(StructureError, match="no vertex 'u'"):
            bipartite_connectivity(graph, ["u"], ["v"])
        with pytest.raises(StructureError, match="two channels"):
            bipartite_connectivity(graph, ["x", "x"], ["a"])
        with pytest.raises(InputTypeError, match="networkx graph"):
            bipartite_connectivity([("x", "a")], ["x"], ["a"])


class TestChannelGroups:
    def test_even_blocks(self):
        assert channel_groups(7, 3).tolist() == [0, 0, 0, 1, 1, 2, 2]
        assert channel_groups(4, 4).tolist() == [0, 1, 2, 3]

    def test_more_vertices_than_channels(self):
        with pytest.raises(ConfigError, match="at least one channel"):
            channel_groups(3, 4)


class TestRelational:
    def test_dag_prior_with_self_loops(self):
        prior = nx.DiGraph([("p", "q")])
        prior.add_node("r")
        connectivity = relational_connectivity(prior, 3, 6)
        expected = np.array(
            [
                [1, 0, 0],  # outputs 0, 1 belong to p: read p only
                [1, 0, 0],
                [1, 1, 0],  # outputs 2, 3 belong to q: read q and p
                [1, 1, 0],
                [0, 0, 1],  # outputs 4, 5 belong to r: read r
                [0, 0, 1],
            ],
            dtype=bool,
        )
        assert np.array_equal(connectivity.numpy(), expected)

    def test_without_self_loops_and_with_node_order(self):
        prior = nx.DiGraph([(0, 1)])
        connectivity = relational_connectivity(prior, 2, 2, nodes=[1, 0], self_loops=False)
        # channel 0 belongs to vertex 1, channel 1 to vertex 0: output 0 reads input 1
        assert connectivity.tolist() == [[False, True], [False, False]]

    def test_undirected_graph_reads_both_ways(self):
        ring = nx.cycle_graph(4)
        connectivity = relational_connectivity(ring, 4, 4, self_loops=False)
        assert torch.equal(connectivity, connectivity.T)
        assert connectivity.sum(1).tolist() == [2, 2, 2, 2]

    @pytest.mark.parametrize("seed", [0, 1, 2])
    def test_round_trip_through_a_conv(self, seed):
        prior = random_dag(6, 0.4, seed)
        conv = MaskedConv2d(12, 18, 3)
        conv.set_channel_connectivity(relational_connectivity(prior, 12, 18))
        back = relational_structure(conv, list(prior))
        assert set(back.nodes) == set(prior.nodes)
        assert set(back.edges) == set(prior.edges)

    def test_pruning_shows_in_the_relational_graph(self):
        prior = nx.DiGraph([(0, 1), (0, 2), (1, 2)])
        conv = MaskedConv2d(6, 6, 1)
        conv.set_channel_connectivity(relational_connectivity(prior, 6, 6))
        # every kernel from vertex 0's inputs (0, 1) to vertex 2's outputs (4, 5)
        conv.prune_kernels([4, 4, 5, 5], [0, 1, 0, 1])
        assert set(relational_structure(conv, 3).edges) == {(0, 1), (1, 2)}

    def test_tuple_labels(self):
        prior = nx.DiGraph([(("a", 1), ("b", 2))])
        back = relational_structure(relational_connectivity(prior, 2, 2), list(prior))
        assert list(back.edges) == [(("a", 1), ("b", 2))]

    def test_grouped_conv_with_block_diagonal_prior(self):
        prior = nx.empty_graph(2, create_using=nx.DiGraph)
        conv = MaskedConv2d(4, 6, 3, groups=2)
        conv.set_channel_connectivity(relational_connectivity(prior, 4, 6))
        assert conv.density == 1.0
        with pytest.raises(MaskError, match="groups=2"):
            conv.set_channel_connectivity(relational_connectivity(nx.DiGraph([(0, 1)]), 4, 6))

    def test_bad_input(self):
        with pytest.raises(StructureError, match="no vertices"):
            relational_connectivity(nx.DiGraph(), 2, 2)
        with pytest.raises(StructureError, match="no vertex 5"):
            relational_connectivity(nx.path_graph(2), 2, 2, nodes=[0, 5])
        with pytest.raises(ConfigError, match="2-d"):
            relational_structure(torch.ones(3, dtype=torch.bool), 1)
        with pytest.raises(ConfigError, match="at least one channel"):
            relational_connectivity(nx.path_graph(5), 4, 8)
