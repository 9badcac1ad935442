"""WS-flex graphs and the relational-graph measures of You et al. (2020)."""

from __future__ import annotations

import math
from typing import Any

import networkx as nx
import numpy as np
import pytest

from bad_values import NOT_COUNTS, NOT_FINITE_REALS, NOT_FRACTIONS, NOT_SEEDS, value_id
from pypaddle import graph as pg
from pypaddle.errors import ConfigError, InputTypeError, PaddleError


def ring_distance(graph: nx.Graph) -> np.ndarray:
    n = graph.number_of_nodes()
    edges = np.array(list(graph.edges), dtype=np.int64).reshape(-1, 2)
    gap = np.abs(edges[:, 0] - edges[:, 1])
    return np.minimum(gap, n - gap)


def degrees(graph: nx.Graph) -> np.ndarray:
    return np.array([d for _, d in graph.degree])


class TestWsFlex:
    @pytest.mark.parametrize("n", [1, 2, 3, 6, 7, 10, 16, 33, 64])
    def test_edge_count_is_n_k_over_2_rounded_and_degrees_differ_by_at_most_1(self, n):
        for k in np.linspace(0, n - 1, 23):
            graph = pg.ws_flex(n, k, 0.0)
            assert graph.number_of_nodes() == n
            assert graph.number_of_edges() == math.floor(n * k / 2 + 0.5)
            assert nx.number_of_selfloops(graph) == 0
            spread = degrees(graph)
            assert spread.max() - spread.min() <= 1, (n, k)

    def test_every_edge_count_of_small_rings_gives_a_near_regular_lattice(self):
        for n in range(2, 25):
            for edges in range(n * (n - 1) // 2 + 1):
                graph = pg.ws_flex(n, 2 * edges / n, 0.0)
                assert graph.number_of_edges() == edges
                spread = degrees(graph)
                assert spread.max() - spread.min() <= 1, (n, edges)

    def test_half_degrees_round_up(self):
        assert pg.ws_flex(5, 1.0, 0.0).number_of_edges() == 3  # 2.5 -> 3
        assert pg.ws_flex(8, 2.5, 0.0).number_of_edges() == 10

    @pytest.mark.parametrize(("n", "k"), [(6, 2), (10, 4), (64, 8), (33, 6)])
    def test_p_zero_with_even_integer_k_is_the_watts_strogatz_ring(self, n, k):
        graph = pg.ws_flex(n, k, 0.0, seed=3)
        assert set(map(frozenset, graph.edges)) == set(
            map(frozenset, nx.watts_strogatz_graph(n, k, 0.0).edges)
        )

    def test_p_zero_spreads_extra_edges_over_the_nearest_free_distance(self):
        # 64 vertices, k = 5.5: the ring at distances 1, 2 (128 edges) plus 48 at distance 3
        graph = pg.ws_flex(64, 5.5, 0.0)
        distance = ring_distance(graph)
        assert np.bincount(distance).tolist() == [0, 64, 64, 48]
        assert sorted(np.bincount(degrees(graph)).nonzero()[0]) == [5, 6]

    def test_odd_degree_on_short_cycles_uses_the_diameters(self):
        # 6 vertices, degree 3: distance 2 makes two triangles, which cannot give every
        # vertex exactly one more edge; the 3 diameters do.
        graph = pg.ws_flex(6, 3, 0.0)
        assert np.bincount(ring_distance(graph)).tolist() == [0, 6, 0, 3]
        assert set(degrees(graph).tolist()) == {3}

    def test_k_n_minus_1_is_complete_and_stays_complete_when_rewired(self):
        for n in (5, 8):
            for p in (0.0, 1.0):
                graph = pg.ws_flex(n, n - 1, p, seed=0)
                assert graph.number_of_edges() == n * (n - 1) // 2

    def test_rewiring_keeps_the_edge_count_and_a_simple_graph(self):
        for seed in range(5):
            graph = pg.ws_flex(40, 7.3, 1.0, seed=seed)
            assert graph.number_of_edges() == 146
            assert nx.number_of_selfloops(graph) == 0
            assert type(graph) is nx.Graph

    def test_rewiring_moves_about_p_of_the_edges(self):
        lattice = set(map(frozenset, pg.ws_flex(200, 6.5, 0.0).edges))
        moved = [
            len(set(map(frozenset, pg.ws_flex(200, 6.5, 0.3, seed=s).edges)) - lattice)
            for s in range(5)
        ]
        # 650 edges, 30 % rewired (a rewired edge may land back on the lattice, rarely)
        assert 0.25 * 650 < np.mean(moved) < 0.32 * 650

    def test_seeds_reproduce_and_differ(self):
        first = pg.ws_flex(32, 4.7, 0.4, seed=11)
        again = pg.ws_flex(32, 4.7, 0.4, seed=np.random.default_rng(11))
        other = pg.ws_flex(32, 4.7, 0.4, seed=12)
        assert list(first.edges) == list(again.edges)
        assert set(first.edges) != set(other.edges)

    def test_order_gives_a_dag_on_the_same_skeleton(self):
        undirected = pg.ws_flex(20, 4.5, 0.5, seed=2)
        for order in ("label", "degree", "random", list(range(19, -1, -1))):
            dag = pg.ws_flex(20, 4.5, 0.5, seed=2, order=order)
            assert isinstance(dag, pg.CachedLayeredGraph)
            assert nx.is_directed_acyclic_graph(dag)
            assert set(map(frozenset, dag.edges)) == set(map(frozenset, undirected.edges))
        assert sorted(pg.ws_flex(20, 4.5, 0.5, seed=2, order="label").edges) == sorted(
            (min(e), max(e)) for e in undirected.edges
        )

    def test_random_order_is_seeded(self):
        first = pg.ws_flex(20, 4.5, 0.5, seed=2, order="random")
        again = pg.ws_flex(20, 4.5, 0.5, seed=2, order="random")
        assert list(first.edges) == list(again.edges)


GRAPHS = [
    ("ws_flex", lambda: pg.ws_flex(64, 5.3, 0.2, seed=1)),
    ("lattice", lambda: pg.ws_flex(30, 6, 0.0)),
    ("complete", lambda: nx.complete_graph(7)),
    ("star", lambda: nx.star_graph(6)),
    ("er", lambda: nx.gnp_random_graph(40, 0.2, seed=4)),
    ("karate", nx.karate_club_graph),
    ("string labels", lambda: nx.relabel_nodes(nx.petersen_graph(), str)),
]


class TestMeasures:
    @pytest.mark.parametrize(("name", "make"), GRAPHS, ids=[name for name, _ in GRAPHS])
    def test_equal_to_networkx(self, name, make):
        graph = make()
        assert pg.average_clustering(graph) == pytest.approx(nx.average_clustering(graph))
        assert pg.average_path_length(graph) == pytest.approx(
            nx.average_shortest_path_length(graph)
        )

    def test_hand_checked_values(self):
        # A triangle with a pendant vertex: clustering (1 + 1 + 1/3 + 0) / 4.
        graph = nx.Graph([(0, 1), (1, 2), (0, 2), (2, 3)])
        assert pg.average_clustering(graph) == pytest.approx((1 + 1 + 1 / 3) / 4)
        # distances: 1,1,2 / 1,1,2 / 1,1,1 / 2,2,1 -> 16 / 12
        assert pg.average_path_length(graph) == pytest.approx(16 / 12)

    def test_directed_graphs_are_measured_undirected(self):
        dag = pg.ws_flex(30, 5, 0.3, seed=0, order="random")
        skeleton = nx.Graph(dag.edges)
        assert pg.average_clustering(dag) == pytest.approx(nx.average_clustering(skeleton))
        assert pg.average_path_length(dag) == pytest.approx(
            nx.average_shortest_path_length(skeleton)
        )

    def test_self_loops_and_isolated_vertices(self):
        graph = nx.Graph([(0, 1), (1, 2), (2, 0), (0, 0)])
        assert pg.average_clustering(graph) == pytest.approx(1.0)
        graph.add_node(3)
        assert pg.average_clustering(graph) == pytest.approx(0.75)

    def test_undefined_path_lengths_are_nan_not_inf(self):
        assert math.isnan(pg.average_path_length(nx.Graph([(0, 1), (2, 3)])))
        assert math.isnan(pg.average_path_length(nx.empty_graph(1)))
        assert math.isnan(pg.average_path_length(nx.empty_graph(0)))
        assert math.isnan(pg.average_clustering(nx.empty_graph(0)))

    def test_the_lattice_has_the_textbook_clustering(self):
        k = 8
        lattice = pg.ws_flex(64, k, 0.0)
        assert pg.average_clustering(lattice) == pytest.approx(3 * (k - 2) / (4 * (k - 1)))
        # ring of 64 with 4 neighbours a side: distances ceil(d / 4) over d = 1..63
        expected = np.mean(np.ceil(np.minimum(np.arange(1, 64), 64 - np.arange(1, 64)) / 4))
        assert pg.average_path_length(lattice) == pytest.approx(expected)


NOT_GRAPHS: list[Any] = [None, 3, "graph", [(0, 1)], {0: [1]}, object()]
BAD_K: list[Any] = [-0.5, 8.0, 100, *NOT_FINITE_REALS]

CASES = [
    ("n", lambda v: pg.ws_flex(v, 2, 0.1, seed=0), [0, *NOT_COUNTS], ConfigError),
    ("k", lambda v: pg.ws_flex(8, v, 0.1, seed=0), BAD_K, ConfigError),
    ("p", lambda v: pg.ws_flex(8, 2.5, v, seed=0), NOT_FRACTIONS, ConfigError),
    ("seed", lambda v: pg.ws_flex(8, 2.5, 0.1, seed=v), NOT_SEEDS, PaddleError),
    ("order", lambda v: pg.ws_flex(8, 2.5, 0.1, order=v), ["sideways", 3, [0, 1]], PaddleError),
    ("clustering", pg.average_clustering, NOT_GRAPHS, InputTypeError),
    ("path_length", pg.average_path_length, NOT_GRAPHS, InputTypeError),
]


@pytest.mark.parametrize(
    ("call", "value", "error"),
    [
        pytest.param(call, value, error, id=f"{name}-{value_id(value)}")
        for name, call, values, error in CASES
        for value in values
    ],
)
def test_bad_values_are_refused(call, value, error):
    with pytest.raises(error):
        call(value)


def test_k_error_names_the_range():
    with pytest.raises(ConfigError, match=r"k \(the average degree of 8 vertices\).*\[0.0, 7.0\]"):
        pg.ws_flex(8, 7.5, 0.0)
