"""The relational models in the experiment registry: config keys, width matching, a run."""

from __future__ import annotations

import json

import networkx as nx
import pytest

from pypaddle.errors import ConfigError
from pypaddle.experiments import examples, parse_config, run_experiment
from pypaddle.experiments.models import relational_graph
from pypaddle.experiments.run import prepare
from pypaddle.experiments.sweep import load_sweep
from pypaddle.graph import average_clustering, average_path_length, read, ws_flex
from pypaddle.sparse import RelationalCNN, RelationalMLP, matched_width


def config(model: dict, **training) -> dict:
    return {
        "name": "relational",
        "seed": 4,
        "model": model,
        "training": {"epochs": 1, "batch_size": 128, **training},
        "sparsify": {"method": "none"},
        "evaluation": {"plots": False, "checkpoints": False},
    }


def test_relational_mlp_from_a_config_uses_the_graph_and_the_experiment_seed():
    graph = {"generator": "ws_flex", "n": 8, "k": 3.5, "p": 0.5}
    built = prepare(config({"name": "relational_mlp", "graph": graph, "width": 32})).model
    assert isinstance(built.module, RelationalMLP)
    expected = ws_flex(8, 3.5, 0.5, seed=4)
    assert set(map(frozenset, built.module.graph.edges)) == set(map(frozenset, expected.edges))
    assert built.module.width == 32
    assert built.structure_layers == built.module.relational_layers
    # the structure is the relational graph, oriented so that it is a DAG
    assert nx.is_directed_acyclic_graph(built.structure)
    assert average_clustering(built.structure) == average_clustering(expected)
    assert average_path_length(built.structure) == average_path_length(expected)
    assert set(built.current_structure().edges) == set(built.structure.edges)


def test_match_width_picks_the_width_of_the_dense_parameter_count():
    graph = {"generator": "ws_flex", "n": 8, "k": 2, "p": 0.0, "seed": 1}
    model = {"name": "relational_mlp", "graph": graph, "width": 32, "match_width": True}
    built = prepare(config(model)).model
    assert built.module.width == matched_width(
        ws_flex(8, 2, 0.0), 32, inputs=64, outputs=10, layers=3
    )
    assert built.module.width > 32


def test_any_generator_gives_its_undirected_skeleton():
    table = {"generator": "erdos_renyi", "n": 6, "p": 1.0}
    graph = relational_graph(table, seed=0)
    assert not graph.is_directed()
    assert graph.number_of_edges() == 15


def test_relational_cnn_from_a_config():
    model = {
        "name": "relational_cnn",
        "graph": {"generator": "networkx.cycle_graph", "n": 4},
        "width": 8,
        "layers": 2,
        "pool_after": [0],
        "batch_norm": True,
    }
    built = prepare({**config(model), "data": {"name": "digits", "image": True}}).model
    assert isinstance(built.module, RelationalCNN)
    assert built.module.pool_after == (0,)
    assert len(built.structure_layers) == 2


def test_width_that_the_nodes_do_not_divide_is_refused_with_the_split():
    graph = {"generator": "ws_flex", "n": 16, "k": 4, "p": 0.0}
    with pytest.raises(ConfigError, match=r"100 = 16 x 6 \+ 4.*96 or 112"):
        prepare(config({"name": "relational_mlp", "graph": graph, "width": 100}))
    model = {"name": "relational_mlp", "graph": graph, "width": 100, "uneven": True}
    assert prepare(config(model)).model.module.width == 100


def test_bad_graph_tables_name_the_key():
    with pytest.raises(ConfigError, match=r"model\.graph\.q is not a parameter of ws_flex"):
        parse_config(config({"name": "relational_mlp", "graph": {"generator": "ws_flex", "q": 1}}))
    bad_k = {"generator": "ws_flex", "n": 8, "k": 9.5, "p": 0.0}
    with pytest.raises(ConfigError, match=r"model\.graph"):
        prepare(config({"name": "relational_mlp", "graph": bad_k}))


@pytest.mark.slow
def test_a_run_stores_the_relational_graph(tmp_path):
    graph = {"generator": "ws_flex", "n": 8, "k": 2.5, "p": 0.2}
    model = {"name": "relational_mlp", "graph": graph, "width": 32}
    run_experiment(config(model, epochs=3, learning_rate=0.01), tmp_path)
    stored = read(tmp_path / "structures" / "prior.graphml")
    expected = ws_flex(8, 2.5, 0.2, seed=4)
    assert set(map(frozenset, stored.edges)) == set(map(frozenset, expected.edges))
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["final"]["accuracy"] > 0.5


def test_the_sweet_spot_example_spans_the_grid():
    spec = load_sweep(examples.folder() / "sweep_sweet_spot.toml")
    assert len(spec.trials) == 70
    ks = {trial.overrides["model.graph.k"] for trial in spec.trials}
    assert min(ks) == 2.0
    assert max(ks) == 15.0  # 16 nodes: the complete graph, the dense baseline
    base = examples.table("relational_mlp")
    assert base["model"]["match_width"] is True
