"""A config's structure table chooses the orientation (order) and refuses edgeless priors."""

from __future__ import annotations

import json
import warnings

import networkx as nx
import pytest

from pypaddle.errors import ConfigError, StructureWarning
from pypaddle.experiments import parse_config, run_experiment
from pypaddle.experiments.models import check_generator, structure
from pypaddle.experiments.run import prepare
from pypaddle.graph import barabasi_albert, to_dag, watts_strogatz


class TestOrderKey:
    @pytest.mark.parametrize("order", ["label", "random", "degree"])
    def test_a_prior_of_pypaddle_graph_takes_order(self, order):
        table = {"generator": "watts_strogatz", "n": 40, "k": 4, "p": 0.2, "order": order}
        built = structure(table, seed=3)
        expected = watts_strogatz(40, 4, 0.2, order=order, seed=3)
        assert list(built.edges) == list(expected.edges)

    def test_the_default_is_label(self):
        table = {"generator": "barabasi_albert", "n": 30, "m": 2}
        assert list(structure(table, seed=1).edges) == list(barabasi_albert(30, 2, seed=1).edges)

    def test_an_explicit_order(self):
        table = {"generator": "barabasi_albert", "n": 5, "m": 2, "order": [4, 3, 2, 1, 0]}
        assert all(u > v for u, v in structure(table, seed=0).edges)

    @pytest.mark.parametrize("order", ["label", "random", "degree"])
    def test_a_networkx_generator_is_oriented_as_to_dag_orients_it(self, order):
        table = {"generator": "networkx.watts_strogatz_graph", "n": 20, "k": 4, "p": 0.3}
        built = structure({**table, "order": order}, seed=2)
        graph = nx.watts_strogatz_graph(20, 4, 0.3, seed=2)
        assert set(built.edges) == set(to_dag(graph, order=order, seed=2).edges)
        assert nx.is_directed_acyclic_graph(built)

    def test_the_label_oriented_ring_and_the_random_one(self):
        table = {"generator": "watts_strogatz", "n": 128, "k": 8, "p": 0.1}
        assert structure(table, seed=0).num_layers == 116
        assert structure({**table, "order": "random"}, seed=0).num_layers < 40

    def test_layered_priors_take_no_order(self):
        with pytest.raises(ConfigError, match=r"model\.structure\.order is not a parameter"):
            check_generator(
                {"generator": "small_world_layered", "order": "random"}, "model.structure"
            )

    @pytest.mark.parametrize(
        "table",
        [
            {"generator": "erdos_renyi", "n": 5, "p": 0.5},
            {"generator": "watts_strogatz", "n": 5, "k": 2, "p": 0.5},
            {"generator": "barabasi_albert", "n": 5, "m": 2},
            {"generator": "networkx.path_graph", "n": 5},
        ],
    )
    def test_order_is_a_known_key(self, table):
        name, parameters = check_generator({**table, "order": "random"}, "m.s")
        assert name == table["generator"]
        assert parameters["order"] == "random"

    @pytest.mark.parametrize("order", ["sideways", 3, [0, 1]])
    def test_a_bad_order_names_the_key(self, order):
        for table in (
            {"generator": "erdos_renyi", "n": 6, "p": 0.5},
            {"generator": "networkx.path_graph", "n": 6},
        ):
            with pytest.raises(ConfigError, match=r"model\.structure.*order"):
                structure({**table, "order": order}, seed=0)


class TestNoConnectedDag:
    @pytest.mark.parametrize(
        ("table", "message"),
        [
            ({"generator": "erdos_renyi", "n": 10, "p": 0.0}, r"structure\.p = 0\.0 cannot"),
            ({"generator": "watts_strogatz", "n": 10, "k": 1, "p": 0.5}, r"structure\.k = 1 "),
            ({"generator": "watts_strogatz", "n": 10, "k": 0, "p": 0.5}, r"use k >= 2"),
            ({"generator": "small_world_layered", "layers": 1}, r"structure\.layers = 1 cannot"),
            ({"generator": "networkx.empty_graph", "n": 4}, r"4 vertices without a single edge"),
            ({"generator": "erdos_renyi", "n": 3, "p": 1e-9}, r"seed 0\), so no connected DAG"),
        ],
    )
    def test_an_edgeless_prior_is_refused(self, table, message):
        with pytest.raises(ConfigError, match=message):
            structure(table, seed=0)

    def test_a_single_vertex_is_connected(self):
        assert structure({"generator": "erdos_renyi", "n": 1, "p": 0.0}, seed=0).order() == 1

    def test_a_sparse_but_not_empty_prior_is_kept(self):
        built = structure({"generator": "erdos_renyi", "n": 30, "p": 0.01}, seed=0)
        assert built.number_of_edges() > 0


class TestTheRunSaysWhy:
    def test_result_json_records_the_structure_problems(self, tmp_path):
        config = {
            "model": {
                "name": "dan",
                "structure": {"generator": "watts_strogatz", "n": 128, "k": 8, "p": 0.1},
            },
            "training": {"epochs": 1},
            "sparsify": {"method": "iterative", "rounds": 1, "amount": 0.5, "retrain_epochs": 1},
            "evaluation": {"plots": False},
        }
        with pytest.warns(StructureWarning, match="1 source vertex"):
            run_experiment(config, tmp_path / "label", quiet=True)
        problems = json.loads((tmp_path / "label" / "result.json").read_text())
        prior = problems["structure_problems"]["prior"]
        assert len(prior) == 2
        assert prior[0].startswith("64 input features and 10 outputs pass through 1 source")
        assert prior[1].startswith("the structure is 116 layers deep")
        assert isinstance(problems["structure_problems"]["final"], list)

        config["model"]["structure"]["order"] = "random"
        with warnings.catch_warnings():
            warnings.simplefilter("error", StructureWarning)
            run_experiment(config, tmp_path / "random", quiet=True)
        result = json.loads((tmp_path / "random" / "result.json").read_text())
        assert result["structure_problems"]["prior"] == []


class TestDanKeys:
    @pytest.mark.parametrize(
        ("keys", "expected"),
        [
            ({}, ("fan_in", None)),
            ({"init": "legacy", "normalization": "batch"}, ("legacy", "batch")),
            ({"normalization": "layer"}, ("fan_in", "layer")),
        ],
    )
    def test_init_and_normalization_reach_the_model(self, keys, expected):
        config = {
            "model": {
                "name": "dan",
                "structure": {"generator": "small_world_layered", "layers": 3, "width": 8},
                **keys,
            }
        }
        model = prepare(config).model.module
        assert (model.init, model.normalization) == expected

    @pytest.mark.parametrize(("key", "value"), [("init", "he"), ("normalization", "group")])
    def test_unknown_values_are_refused_at_load(self, key, value):
        with pytest.raises(ConfigError, match=rf"model\.{key}"):
            parse_config({"model": {"name": "dan", key: value}})
