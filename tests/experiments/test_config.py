import tomllib

import networkx as nx
import pytest

from pypaddle.errors import ConfigError, GraphFileError
from pypaddle.experiments import DATA, METHODS, MODELS, load_config, parse_config
from pypaddle.experiments.config import to_toml


class TestParseConfig:
    def test_defaults_fill_every_key(self):
        config = parse_config({})
        resolved = config.to_dict()
        assert resolved["data"] == {"name": "digits", "test_fraction": 0.25, "image": False}
        assert resolved["model"]["name"] == "dan"
        assert resolved["sparsify"] == {"method": "none"}
        assert resolved["training"]["optimizer"] == "adam"
        assert set(resolved) == {
            "name",
            "seed",
            "description",
            "data",
            "model",
            "training",
            "sparsify",
            "evaluation",
        }

    def test_resolved_config_round_trips_through_toml(self):
        config = parse_config(
            {"model": {"name": "ffn", "hidden_layers": [8, 4]}, "sparsify": {"method": "one_shot"}}
        )
        text = to_toml(config.to_dict())
        assert parse_config(tomllib.loads(text)).to_dict() == config.to_dict()

    def test_int_accepted_for_float(self):
        config = parse_config({"training": {"learning_rate": 1}})
        assert config.training.learning_rate == 1.0
        assert isinstance(config.training.learning_rate, float)

    @pytest.mark.parametrize(
        ("table", "message"),
        [
            (
                {"epochs": 3},
                "^epochs is not a known key; allowed keys: data, description, .*training$",
            ),
            (
                {"training": {"lr": 0.1}},
                r"training\.lr is not a known key; allowed keys: batch_size",
            ),
            ({"training": {"epochs": 0}}, r"training\.epochs = 0 is out of range; allowed: >= 1"),
            (
                {"training": {"epochs": 2.5}},
                r"training\.epochs = 2\.5 has the wrong type; give an int",
            ),
            ({"training": {"epochs": True}}, r"training\.epochs = True has the wrong type"),
            (
                {"training": {"optimizer": "lbfgs"}},
                r"training\.optimizer = 'lbfgs' is not allowed; allowed values: 'adam', 'adamw'",
            ),
            (
                {"data": {"name": "imagenet"}},
                r"data\.name = 'imagenet' is not allowed; allowed values: 'digits'",
            ),
            ({"data": {"name": "idx"}}, r"data\.train_images is missing; give a string"),
            (
                {"model": {"name": "ffn", "hidden_layers": [8, 0]}},
                r"hidden_layers = 0 is out of range",
            ),
            (
                {"model": {"name": "ffn", "activation": "swish"}},
                r"activation = 'swish' is not allowed",
            ),
            (
                {"sparsify": {"method": "one_shot", "amount": 1.5}},
                r"sparsify\.amount = 1\.5 is out of range; allowed: > 0\.0 and < 1\.0",
            ),
            (
                {"sparsify": {"method": "prune_all"}},
                r"sparsify\.method = 'prune_all' is not allowed; "
                r"allowed values: 'none', 'one_shot', 'iterative'",
            ),
            ({"sparsify": {"method": "none", "rounds": 2}}, r"sparsify\.rounds is not a known key"),
            (
                {"data": {"name": "function", "function": ["sphere", "cosh"]}},
                r"data\.function = 'cosh' is not allowed",
            ),
            ({"training": []}, r"training must be a table"),
            ({"seed": -1}, r"^seed = -1 is out of range"),
        ],
    )
    def test_errors_name_key_value_and_allowed(self, table, message):
        with pytest.raises(ConfigError, match=message):
            parse_config(table)

    def test_structure_generator_checked_at_load(self):
        with pytest.raises(
            ConfigError, match=r"model\.structure\.generator = 'lattice' is not allowed"
        ):
            parse_config({"model": {"structure": {"generator": "lattice"}}})
        with pytest.raises(
            ConfigError,
            match=r"model\.structure\.q is not a parameter of watts_strogatz; "
            r"allowed keys: n, k, p, order, seed",
        ):
            parse_config(
                {"model": {"structure": {"generator": "watts_strogatz", "n": 5, "k": 2, "q": 1}}}
            )
        with pytest.raises(
            ConfigError, match=r"model\.structure\.p is missing; erdos_renyi needs p"
        ):
            parse_config({"model": {"structure": {"generator": "erdos_renyi", "n": 5}}})

    def test_priors_and_networkx_generators(self):
        from pypaddle.experiments.models import structure

        layered = structure(
            {"generator": "random_layered", "widths": [4, 4, 4], "density": 0.5}, seed=1
        )
        assert [layered.get_layer_size(layer) for layer in layered.layers] == [4, 4, 4]
        assert set(
            structure({"generator": "complete_layered", "widths": [2, 3]}, seed=0).edges
        ) == {(u, v) for u in (0, 1) for v in (2, 3, 4)}
        oriented = structure({"generator": "networkx.cycle_graph", "n": 4}, seed=0)
        assert sorted(oriented.edges) == [(0, 1), (0, 3), (1, 2), (2, 3)]
        with pytest.raises(ConfigError, match=r"generator = 'networkx\.relabel_nodes' is not"):
            structure({"generator": "networkx.relabel_nodes"}, seed=0)

    def test_components_are_registered(self):
        assert {"digits", "function", "idx", "npz"} <= set(DATA.names())
        assert {"ffn", "dan"} <= set(MODELS.names())
        assert {"none", "one_shot", "iterative"} <= set(METHODS.names())


class TestLoadConfig:
    def test_relative_files_resolve_against_the_config_folder(self, tmp_path):
        nx.write_graphml(nx.DiGraph([(0, 1), (1, 2)]), tmp_path / "s.graphml")
        (tmp_path / "e.toml").write_text('[model]\nstructure = { graphml = "s.graphml" }\n')
        config = load_config(tmp_path / "e.toml")
        assert config.model.options.structure == {"graphml": str(tmp_path / "s.graphml")}

    def test_graphml_with_a_cycle(self, tmp_path):
        nx.write_graphml(nx.DiGraph([("a", "b"), ("b", "c"), ("c", "a")]), tmp_path / "c.graphml")
        (tmp_path / "e.toml").write_text('[model]\nstructure = { graphml = "c.graphml" }\n')
        with pytest.raises(
            GraphFileError,
            match=r"model\.structure\.graphml: .* has a cycle: 'a' -> 'b' -> 'c' -> 'a'",
        ):
            load_config(tmp_path / "e.toml")

    def test_missing_graphml(self, tmp_path):
        (tmp_path / "e.toml").write_text('[model]\nstructure = { graphml = "none.graphml" }\n')
        with pytest.raises(ConfigError, match=r"none\.graphml' does not exist"):
            load_config(tmp_path / "e.toml")

    def test_invalid_toml_names_the_file(self, tmp_path):
        (tmp_path / "e.toml").write_text("seed = = 1\n")
        with pytest.raises(ConfigError, match=r"e\.toml' is not valid TOML"):
            load_config(tmp_path / "e.toml")

    def test_missing_file(self, tmp_path):
        with pytest.raises(ConfigError, match="does not exist"):
            load_config(tmp_path / "nope.toml")
