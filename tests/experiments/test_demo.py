import itertools
import json
import subprocess
import sys
import tomllib

import networkx as nx
import pytest
import torch
from typer.testing import CliRunner

from pypaddle.cli import app
from pypaddle.errors import ConfigError, StructureWarning
from pypaddle.experiments import prepare, run_demo, run_experiment
from pypaddle.experiments.config import to_toml
from pypaddle.experiments.demo import builtin_config, demo_config
from pypaddle.experiments.methods import Context
from pypaddle.graph import read, small_world_layered, write
from pypaddle.sparse import MaskedDeepDAN

FEW_EPOCHS = {"epochs": 3, "rounds": 3, "retrain_epochs": 1}
PLOT = "plots/accuracy_vs_density.png"


def pruned_graphml(out_dir, rounds):
    return out_dir / "structures" / f"round-{rounds}.graphml"


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("demo")
    return out_dir, run_demo(out_dir, seed=0, quiet=True, **FEW_EPOCHS)


class TestBuiltinConfig:
    def test_the_shipped_toml_is_the_demo(self):
        table = builtin_config("demo")
        assert table["model"]["structure"] == {
            "generator": "small_world_layered",
            "layers": 4,
            "width": 64,
            "neighbours": 8,
            "p": 0.1,
        }
        assert table["training"]["epochs"] == 30
        assert (table["training"]["learning_rate"], table["training"]["batch_size"]) == (3e-3, 32)
        sparsify = table["sparsify"]
        assert (sparsify["method"], sparsify["rounds"], sparsify["amount"]) == ("iterative", 5, 0.5)
        assert (sparsify["retrain_epochs"], sparsify["layers"]) == (10, "structure")
        assert (sparsify["criterion"], sparsify["scope"]) == ("magnitude", "global")

    def test_it_is_a_fresh_copy(self):
        builtin_config("demo")["training"]["epochs"] = 1
        assert builtin_config("demo")["training"]["epochs"] == 30

    def test_is_listed_as_package_data(self):
        from pathlib import Path

        pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
        package_data = tomllib.loads(pyproject.read_text())["tool"]["setuptools"]["package-data"]
        assert "experiments/examples/*.toml" in package_data["pypaddle"]

    def test_unknown_name(self):
        with pytest.raises(ConfigError, match=r"no example named 'tour'; the examples are: .*demo"):
            builtin_config("tour")

    def test_options_map_onto_config_keys(self):
        config = demo_config(
            seed=4,
            epochs=2,
            rounds=3,
            retrain_epochs=0,
            prune_fraction=0.25,
            batch_size=16,
            learning_rate=0.01,
        )
        resolved = config.to_dict()
        assert resolved["seed"] == 4
        assert {key: resolved["training"][key] for key in ("epochs", "batch_size")} == {
            "epochs": 2,
            "batch_size": 16,
        }
        assert resolved["training"]["learning_rate"] == 0.01
        sparsify = resolved["sparsify"]
        assert (sparsify["rounds"], sparsify["retrain_epochs"], sparsify["amount"]) == (3, 0, 0.25)

    def test_no_option_is_the_builtin_config(self):
        assert demo_config().to_dict() == demo_config(seed=0, epochs=30, rounds=5).to_dict()
        assert to_toml(demo_config().to_dict()).startswith('name = "demo"\nseed = 0\n')

    def test_zero_rounds_trains_densely(self):
        assert demo_config(rounds=0).to_dict()["sparsify"] == {"method": "none"}


class TestPruningTheStructure:
    """The demo prunes with the engine's iterative method over the structure's edge layers."""

    def test_one_global_threshold_over_the_edge_layers(self, tmp_path):
        # 0, 1 -> 2 -> 3 plus the skip 0 -> 3: layer 2 reads layers 0 and 1.
        write(nx.DiGraph([(0, 2), (1, 2), (2, 3), (0, 3)]), tmp_path / "s.graphml")
        config = builtin_config("demo")
        config["model"]["structure"] = {"graphml": str(tmp_path / "s.graphml")}
        with pytest.warns(StructureWarning, match="bottleneck"):  # 2 sources: tiny on purpose
            prepared = prepare(config)
        model = prepared.model.module
        assert isinstance(model, MaskedDeepDAN)
        first, second = prepared.layers
        assert prepared.layers == list(model.layers_main_hidden[1:])
        assert second.mask.tolist() == [[True, False, True]]
        packed = (model.hidden_weight, model.hidden_mask)
        storage = [tensor.data_ptr() for tensor in packed]
        with torch.no_grad():
            first.weight.copy_(torch.tensor([[0.5, -0.1]]))
            second.weight.copy_(torch.tensor([[0.2, 9.0, -0.3]]))
        inputs = prepared.split.x_train[:4]
        context = Context(
            model, inputs, prepared.split.y_train[:4], torch.nn.functional.mse_loss, 0
        )
        prepared.sparsifier.start(prepared.layers, context)

        prepared.sparsifier.prune(prepared.layers, 1)

        assert first.mask.tolist() == [[True, False]]
        assert second.mask.tolist() == [[False, False, True]]  # the masked 9.0 stays masked
        assert first.weight.tolist() == [[0.5, 0.0]]
        # Masks edited in place: the same packed parameter and mask, in the same storage.
        assert model.hidden_weight is packed[0]
        assert model.hidden_mask is packed[1]
        assert [tensor.data_ptr() for tensor in packed] == storage
        assert bool(model.layers_main_hidden[0].mask.all())
        assert bool(model.layer_out.mask.all())
        assert set(model.generate_structure().edges) == {(0, 2), (2, 3)}


@pytest.mark.slow
class TestRunDemo:
    def test_density_halves_every_round(self, short_run):
        _, results = short_run
        assert [result["round"] for result in results] == [0, 1, 2, 3]
        edges = [result["edges"] for result in results]
        assert edges[0] == small_world_layered(seed=0).number_of_edges() == 1527
        assert all(b == a - round(a / 2) for a, b in itertools.pairwise(edges))
        densities = [result["density"] for result in results]
        assert densities == [edge / edges[0] for edge in edges]
        assert densities[0] == 1.0
        assert all(b < a for a, b in itertools.pairwise(densities))
        assert results[0]["accuracy_before_retraining"] is None
        assert all(0.0 <= result["accuracy"] <= 1.0 for result in results)
        # The dense input (64 x 64 sources) and output layers are never pruned.
        assert [r["active_weights"] - r["edges"] for r in results] == [6263 - 1527] * 4

    def test_retraining_respects_the_masks(self, short_run):
        out_dir, results = short_run
        model = prepare(demo_config(seed=0, **FEW_EPOCHS)).model.module
        checkpoint = torch.load(out_dir / "checkpoints" / "round-3.pt", weights_only=True)
        model.load_state_dict(checkpoint["model"])
        for layer in model.layers_main_hidden[1:]:
            assert float(layer.weight.detach()[~layer.mask].abs().sum()) == 0.0
        assert bool(model.layers_main_hidden[0].mask.all())
        pruned = model.generate_structure()
        assert set(pruned.edges) <= set(small_world_layered(seed=0).edges)
        assert pruned.number_of_edges() == results[-1]["edges"]

    def test_graphml_holds_the_pruned_structure(self, short_run):
        out_dir, results = short_run
        graph = read(pruned_graphml(out_dir, 3))
        structure = small_world_layered(seed=0)
        assert graph.is_directed()
        assert graph.number_of_edges() == results[-1]["edges"]
        assert set(graph.edges) <= set(structure.edges)
        assert sorted(graph.nodes) == list(range(4 * 64))
        assert graph.nodes[70]["lattice_layer"] == 1
        assert graph.nodes[70]["lattice_index"] == 6
        assert graph.graph["seed"] == 0
        assert graph.graph["round"] == 3
        assert graph.graph["density"] == pytest.approx(results[-1]["density"])
        prior = read(out_dir / "structures" / "prior.graphml")
        assert list(prior.edges) == list(structure.edges)

    def test_writes_a_png_plot(self, short_run):
        from matplotlib.image import imread

        out_dir, _ = short_run
        path = out_dir / PLOT
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert imread(path).shape[:2] == (576, 900)

    def test_writes_the_results_as_json_and_csv(self, short_run):
        out_dir, results = short_run
        assert json.loads((out_dir / "result.json").read_text())["rounds"] == results
        lines = (out_dir / "summary.csv").read_text().splitlines()
        assert lines[0].split(",")[:6] == [
            "event",
            "round",
            "epochs",
            "density",
            "active_weights",
            "edges",
        ]
        assert len(lines) == len(results) + 1

    def test_is_the_run_of_its_config(self, short_run, tmp_path):
        out_dir, results = short_run
        config = demo_config(seed=0, **FEW_EPOCHS)
        assert (out_dir / "config.toml").read_text() == to_toml(config.to_dict())
        assert run_experiment(config.to_dict(), tmp_path, quiet=True) == results

    def test_same_seed_same_numbers(self, short_run, tmp_path):
        out_dir, results = short_run
        again = run_demo(tmp_path / "again", seed=0, quiet=True, **FEW_EPOCHS)
        assert again == results
        again_graphml = pruned_graphml(tmp_path / "again", 3).read_bytes()
        assert again_graphml == pruned_graphml(out_dir, 3).read_bytes()

    def test_other_seed_other_numbers(self, short_run, tmp_path):
        _, results = short_run
        other = run_demo(tmp_path, seed=1, quiet=True, **FEW_EPOCHS)
        assert [r["accuracy"] for r in other] != [r["accuracy"] for r in results]

    def test_leaves_global_torch_state_alone(self, tmp_path):
        torch.manual_seed(1234)
        state = torch.get_rng_state()
        threads = torch.get_num_threads()
        results = run_demo(tmp_path, quiet=True, epochs=1, rounds=0)
        assert torch.equal(torch.get_rng_state(), state)
        assert torch.get_num_threads() == threads
        assert [(result["round"], result["density"]) for result in results] == [(0, 1.0)]

    @pytest.mark.parametrize(
        ("option", "value"),
        [
            ("epochs", 0),
            ("rounds", -1),
            ("seed", -1),
            ("seed", 1.5),
            ("prune_fraction", 1.0),
            ("prune_fraction", "half"),
            ("learning_rate", 0.0),
            ("batch_size", 0),
            ("retrain_epochs", -1),
        ],
    )
    def test_bad_options_write_nothing(self, tmp_path, option, value):
        out_dir = tmp_path / "out"
        with pytest.raises(ConfigError, match=option):
            run_demo(out_dir, quiet=True, **{option: value})
        assert not out_dir.exists()

    @pytest.mark.parametrize(
        ("module", "extra"), [("matplotlib", "plot"), ("sklearn.datasets", "data")]
    )
    def test_missing_dependency_writes_nothing(self, monkeypatch, tmp_path, module, extra):
        monkeypatch.setitem(sys.modules, module, None)
        out_dir = tmp_path / "out"
        with pytest.raises(ConfigError, match=rf"pypaddle\[{extra}\]"):
            run_demo(out_dir, quiet=True, epochs=1, rounds=0)
        assert not out_dir.exists()

    def test_out_dir_that_is_a_file(self, tmp_path):
        path = tmp_path / "file"
        path.write_text("")
        with pytest.raises(ConfigError, match="is a file"):
            run_demo(path, quiet=True)

    def test_folder_of_another_seed_is_refused(self, short_run):
        out_dir, _ = short_run
        before = (out_dir / "result.json").read_bytes()
        with pytest.raises(ConfigError, match=r"holds a different experiment \(seed is 0 there"):
            run_demo(out_dir, seed=1, quiet=True, **FEW_EPOCHS)
        assert (out_dir / "result.json").read_bytes() == before

    @pytest.mark.slow
    def test_default_demo_reaches_90_percent_dense(self, tmp_path):
        results = run_demo(tmp_path, quiet=True)
        assert len(results) == 6
        assert results[0]["accuracy"] >= 0.90
        assert results[-1]["density"] < 0.04
        assert results[-1]["accuracy"] >= 0.85


class TestCommandLine:
    def test_demo_help(self):
        result = CliRunner().invoke(app, ["demo", "--help"])
        assert result.exit_code == 0
        for option in ("--out", "--seed", "--epochs", "--rounds"):
            assert option in result.output

    def test_defaults_are_the_builtin_config(self):
        from pypaddle.cli import demo

        defaults = demo.__defaults__
        assert defaults[1:5] == (0, 30, 5, 10)

    def test_version(self):
        from pypaddle import __version__

        result = CliRunner().invoke(app, ["--version"])
        assert result.exit_code == 0
        assert result.output.strip() == f"pypaddle {__version__}"

    def test_demo_prints_the_table_and_writes_the_files(self, tmp_path):
        arguments = ["demo", "--out", str(tmp_path), "--epochs", "1", "--rounds", "1"]
        result = CliRunner().invoke(app, [*arguments, "--retrain-epochs", "1", "--seed", "2"])
        assert result.exit_code == 0, result.output
        assert "held-out accuracy" in result.output
        assert "50.0%" in result.output
        assert "demo (seed 2)" in result.output
        assert pruned_graphml(tmp_path, 1).is_file()
        assert (tmp_path / PLOT).is_file()
        assert json.loads((tmp_path / "result.json").read_text())["rounds"][1]["round"] == 1
        assert tomllib.loads((tmp_path / "config.toml").read_text())["seed"] == 2

    def test_demo_error_is_one_line_and_status_2(self, tmp_path):
        path = tmp_path / "file"
        path.write_text("")
        result = CliRunner().invoke(app, ["demo", "--out", str(path)])
        assert result.exit_code == 2
        assert "error: out_dir" in result.output
        assert "Traceback" not in result.output

    def test_rejects_a_negative_seed(self):
        result = CliRunner().invoke(app, ["demo", "--seed", "-1"])
        assert result.exit_code == 2


@pytest.mark.slow
def test_optional_dependencies_are_imported_lazily():
    code = (
        "import sys, pypaddle, pypaddle.data, pypaddle.experiments\n"
        "loaded = {'sklearn', 'matplotlib', 'rich', 'typer'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
