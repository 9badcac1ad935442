"""graph_measures() on graphs with known values, in agreement with average_clustering() and
average_path_length() (You et al.) where those are defined."""

from __future__ import annotations

import math
from typing import Any

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bad_values import NOT_SEEDS, assert_unchanged, snapshot, value_id
from pypaddle.errors import ConfigError, InputTypeError, PaddleError, StructureError
from pypaddle.graph import analysis as analysis_module
from pypaddle.graph import (
    average_clustering,
    average_path_length,
    erdos_renyi,
    graph_measures,
    random_layered,
    summary,
    watts_strogatz,
)
from pypaddle.graph import measures as measures_module
from pypaddle.graph.analysis import NULL_MODELS
from pypaddle.graph.measures import MEASURES

NOT_GRAPHS: list[Any] = [None, 3, "graph", [(0, 1)], {0: [1]}, object(), math.nan]


def transitive_tournament(n: int) -> nx.DiGraph:
    """The complete DAG: i -> j for every i < j."""
    return nx.DiGraph((i, j) for i in range(n) for j in range(i + 1, n))


def assert_no_infinity(values: dict[str, float]) -> None:
    assert list(values) == list(MEASURES)
    assert not [name for name, value in values.items() if math.isinf(value)]


class TestMeasures:
    def test_complete_dag(self):
        values = graph_measures(transitive_tournament(5))
        assert_no_infinity(values)
        assert (values["vertices"], values["edges"], values["depth"], values["width"]) == (
            5,
            10,
            5,
            1,
        )
        assert (values["sources"], values["sinks"], values["isolated"]) == (1, 1, 0)
        assert values["components"] == 1
        assert values["density"] == 0.5
        assert (values["clustering"], values["path_length"]) == (1.0, 1.0)
        assert values["in_degree_mean"] == values["out_degree_mean"] == 2.0
        assert values["in_degree_max"] == values["out_degree_max"] == 4
        assert values["in_degree_std"] == pytest.approx(math.sqrt(2.0))

    def test_directed_path(self):
        values = graph_measures(nx.path_graph(4, create_using=nx.DiGraph))
        assert (values["depth"], values["width"], values["sources"], values["sinks"]) == (
            4,
            1,
            1,
            1,
        )
        assert values["density"] == pytest.approx(3 / 12)
        assert values["path_length"] == pytest.approx(10 / 6)
        assert values["clustering"] == 0.0
        # mean degree 1.5 < 2: the ring lattice has no clustering to compare with
        assert math.isnan(values["small_world_omega"])

    def test_undirected_ring(self):
        values = graph_measures(nx.cycle_graph(6))
        assert math.isnan(values["depth"])
        assert math.isnan(values["sources"])
        assert values["density"] == pytest.approx(6 / 15)
        assert values["path_length"] == pytest.approx(9 / 5)
        assert values["in_degree_mean"] == values["out_degree_mean"] == 2.0
        assert values["in_degree_std"] == 0.0
        assert values["clustering"] == 0.0
        assert values["small_world_sigma"] >= 0  # C = 0: 0 against any null model
        assert math.isnan(values["small_world_omega"])  # mean degree 2: no lattice clustering
        assert_no_infinity(values)

    def test_disconnected(self):
        graph = nx.DiGraph([(0, 1), (1, 2), (0, 2), (3, 4)])
        graph.add_node(5)
        values = graph_measures(graph)
        assert (values["components"], values["isolated"], values["sources"]) == (3, 1, 3)
        assert values["path_length"] == pytest.approx(1.0)
        assert values["clustering"] == pytest.approx(3 / 6)
        assert_no_infinity(values)

    def test_empty_graph_is_nan_not_inf(self):
        values = graph_measures(nx.DiGraph())
        assert_no_infinity(values)
        counts = ("vertices", "edges", "depth", "width", "sources", "sinks", "components")
        assert [values[name] for name in counts] == [0] * len(counts)
        undefined = [name for name in MEASURES if name not in counts and name != "isolated"]
        assert all(math.isnan(values[name]) for name in undefined)

    def test_edgeless_graph(self):
        graph = nx.DiGraph()
        graph.add_nodes_from(range(4))
        values = graph_measures(graph)
        assert_no_infinity(values)
        assert (values["density"], values["clustering"], values["depth"]) == (0.0, 0.0, 1)
        assert (values["sources"], values["isolated"], values["components"]) == (4, 4, 4)
        for name in ("path_length", "small_world_sigma", "small_world_omega"):
            assert math.isnan(values[name])

    @pytest.mark.parametrize(
        "graph",
        [
            nx.complete_graph(7),
            nx.cycle_graph(9),
            nx.path_graph(5, create_using=nx.DiGraph),
            nx.watts_strogatz_graph(30, 4, 0.3, seed=1),
        ],
        ids=["complete", "ring", "path", "watts-strogatz"],
    )
    def test_the_measures_of_you_et_al_on_connected_graphs(self, graph):
        values = graph_measures(graph)
        assert values["clustering"] == pytest.approx(average_clustering(graph))
        assert values["path_length"] == pytest.approx(average_path_length(graph))

    def test_path_length_stays_defined_on_disconnected_graphs(self):
        graph = nx.disjoint_union(nx.path_graph(3), nx.complete_graph(3))
        graph.add_node("alone")
        assert math.isnan(average_path_length(graph))
        # path: 2 pairs at 1, 1 at 2; triangle: 3 pairs at 1
        assert graph_measures(graph)["path_length"] == pytest.approx((2 + 2 + 3) / 6)

    def test_against_networkx(self):
        graph = random_layered([8, 12, 12, 5], density=0.35, skip_density=0.1, seed=2)
        values = graph_measures(graph)
        undirected = graph.to_undirected()
        assert values["density"] == pytest.approx(nx.density(graph))
        assert values["depth"] == nx.dag_longest_path_length(graph) + 1
        assert values["clustering"] == pytest.approx(nx.average_clustering(undirected))
        assert values["path_length"] == pytest.approx(nx.average_shortest_path_length(undirected))
        assert values["components"] == nx.number_weakly_connected_components(graph)

    def test_small_world_coefficients(self):
        small_world = graph_measures(watts_strogatz(400, 10, 0.1, seed=0))
        assert small_world["small_world_sigma"] > 3
        assert abs(small_world["small_world_omega"]) < 0.35
        random = graph_measures(erdos_renyi(400, 0.025, seed=0))
        assert random["small_world_sigma"] == pytest.approx(1, abs=0.35)
        assert random["small_world_omega"] > 0.5

    def test_deterministic(self):
        graph = watts_strogatz(80, 6, 0.2, seed=0)
        assert graph_measures(graph) == pytest.approx(graph_measures(graph), nan_ok=True)
        assert graph_measures(graph, seed=3) == pytest.approx(
            graph_measures(graph, seed=3), nan_ok=True
        )

    def test_large_graphs_skip_the_references_and_sample_paths(self, monkeypatch):
        graph = random_layered([20, 30, 30, 10], density=0.2, skip_density=0.05, seed=1)
        exact = graph_measures(graph)
        monkeypatch.setattr(measures_module, "SMALL_WORLD_LIMIT", 50)
        # The path rule is summary()'s, so it lives (and is patched) in graph.analysis.
        monkeypatch.setattr(analysis_module, "EXACT_PATH_LIMIT", 50)
        monkeypatch.setattr(analysis_module, "_PATH_SOURCES", 30)
        large = graph_measures(graph)
        assert math.isnan(large["small_world_sigma"])
        assert math.isnan(large["small_world_omega"])
        assert not math.isnan(exact["small_world_sigma"])
        assert large["path_length"] != exact["path_length"]  # sampled, not the exact mean
        assert large["path_length"] == pytest.approx(exact["path_length"], rel=0.1)
        assert large["clustering"] == exact["clustering"]

    @settings(max_examples=25, deadline=None)
    @given(
        widths=st.lists(st.integers(1, 6), min_size=1, max_size=5),
        density=st.floats(0, 1),
        seed=st.integers(0, 1000),
    )
    def test_never_infinite_on_random_dags(self, widths, density, seed):
        graph = random_layered(widths, density=density, seed=seed)
        values = graph_measures(graph)
        assert_no_infinity(values)
        assert values["vertices"] == sum(widths)
        assert values["edges"] == graph.number_of_edges()
        assert 0 <= values["clustering"] <= 1


def flat_summary(graph, seed=0):
    """summary()'s values under graph_measures()' names."""
    stats = summary(graph, seed=seed)
    widths = stats["layer_widths"]
    return {
        **{name: stats[name] for name in MEASURES if name in stats},
        "depth": stats["layers"],
        "width": max(widths, default=0),
        **{
            f"{direction}_degree_{statistic}": stats[f"{direction}_degree"][statistic]
            for direction in ("in", "out")
            for statistic in ("mean", "std", "max")
        },
    }


def assert_same(values, expected):
    """Equal keys and values, NaN where the other has NaN (no tolerance)."""
    assert set(values) == set(expected)
    differ = {
        name: (values[name], expected[name])
        for name in values
        if values[name] != expected[name]
        and not (math.isnan(values[name]) and math.isnan(expected[name]))
    }
    assert differ == {}


def single_vertex():
    graph = nx.DiGraph()
    graph.add_node("alone")
    return graph


def pruned():
    graph = random_layered([10, 20, 20, 5], density=0.3, skip_density=0.1, seed=4)
    graph.remove_edges_from(list(graph.edges)[::3])
    return graph


class TestOneComputationWithSummary:
    """graph_measures() is summary() laid out flat: equal values, the same empty graph and
    the same null models."""

    @pytest.mark.parametrize(
        "make",
        [
            nx.DiGraph,
            single_vertex,
            lambda: nx.empty_graph(4, create_using=nx.DiGraph),
            lambda: transitive_tournament(6),
            pruned,
            lambda: watts_strogatz(300, 6, 0.2, seed=1),
        ],
        ids=["empty", "one-vertex", "edgeless", "tournament", "pruned", "small-world-300"],
    )
    @pytest.mark.parametrize("seed", [0, 7])
    def test_same_values(self, make, seed):
        graph = make()
        flat = graph_measures(graph, seed=seed)
        assert_same(flat, flat_summary(graph, seed=seed))

    def test_same_values_where_sampled(self, monkeypatch):
        graph = pruned()
        monkeypatch.setattr(analysis_module, "EXACT_PATH_LIMIT", 20)
        monkeypatch.setattr(analysis_module, "_EXACT_TRIANGLE_WORK", 0)
        monkeypatch.setattr(analysis_module, "_PATH_SOURCES", 10)
        stats = summary(graph, seed=3)
        assert {"clustering", "path_length"} <= set(stats["estimates"])
        assert_same(graph_measures(graph, seed=3), flat_summary(graph, seed=3))

    def test_the_empty_graph_is_counts_of_zero_and_nan_elsewhere(self):
        stats = summary(nx.DiGraph())
        assert math.isnan(stats["density"])
        assert all(math.isnan(value) for value in stats["in_degree"].values())
        assert all(math.isnan(value) for value in stats["out_degree"].values())
        assert math.isnan(stats["small_world_sigma"])
        assert stats["estimates"] == []

    def test_no_edge_is_possible_on_one_vertex(self):
        assert math.isnan(summary(single_vertex())["density"])
        assert math.isnan(graph_measures(single_vertex())["density"])
        assert summary(single_vertex())["in_degree"] == {
            "mean": 0.0,
            "std": 0.0,
            "min": 0,
            "max": 0,
        }

    @pytest.mark.parametrize("function", [summary, graph_measures], ids=["summary", "measures"])
    def test_both_draw_the_same_null_models(self, function, monkeypatch):
        drawn = []
        real = analysis_module._configuration_model

        def counted(degrees, rng):
            drawn.append(degrees.sum())
            return real(degrees, rng)

        monkeypatch.setattr(analysis_module, "_configuration_model", counted)
        graph = watts_strogatz(60, 4, 0.2, seed=0)
        function(graph)
        assert NULL_MODELS == 3
        assert drawn == [2 * graph.number_of_edges()] * NULL_MODELS

    def test_public_limits_are_the_shared_ones(self):
        assert measures_module.EXACT_PATH_LIMIT == analysis_module.EXACT_PATH_LIMIT == 1000
        assert measures_module.SMALL_WORLD_LIMIT == 1000

    def test_no_null_models_above_the_limit(self, monkeypatch):
        monkeypatch.setattr(measures_module, "SMALL_WORLD_LIMIT", 10)
        monkeypatch.setattr(
            analysis_module, "_configuration_model", lambda *args: pytest.fail("drawn")
        )
        values = graph_measures(watts_strogatz(60, 4, 0.2, seed=0))
        assert math.isnan(values["small_world_sigma"])
        assert math.isnan(values["small_world_omega"])


FUNCTIONS = [
    pytest.param(graph_measures, id="graph_measures"),
    pytest.param(average_clustering, id="average_clustering"),
    pytest.param(average_path_length, id="average_path_length"),
]


class TestBadInput:
    @pytest.mark.parametrize("function", FUNCTIONS)
    @pytest.mark.parametrize("value", NOT_GRAPHS, ids=value_id)
    def test_not_a_graph(self, function, value):
        with pytest.raises(InputTypeError, match="networkx"):
            function(value)

    def test_multigraph(self):
        graph = nx.MultiDiGraph([(0, 1), (0, 1)])
        before = snapshot(graph)
        with pytest.raises(StructureError, match="parallel"):
            graph_measures(graph)
        assert_unchanged(before, graph)

    def test_cycle(self):
        graph = nx.DiGraph([(0, 1), (1, 2), (2, 0)])
        before = snapshot(graph)
        with pytest.raises(StructureError, match="cycle"):
            graph_measures(graph)
        assert_unchanged(before, graph)

    @pytest.mark.parametrize("value", NOT_SEEDS, ids=value_id)
    def test_seed(self, value):
        graph = nx.DiGraph([(0, 1), (1, 2)])
        before = snapshot(graph)
        with pytest.raises(PaddleError):
            graph_measures(graph, seed=value)
        assert_unchanged(before, graph)

    def test_seed_error_class(self):
        with pytest.raises(ConfigError, match="seed"):
            graph_measures(nx.DiGraph([(0, 1)]), seed="zero")
