import itertools
import json
import subprocess
import sys

import networkx as nx
import pytest
import torch
from typer.testing import CliRunner

from pypaddle.cli import app
from pypaddle.data import digits
from pypaddle.errors import ConfigError
from pypaddle.experiments import run_demo
from pypaddle.experiments.demo import (
    _LAYERS,
    _NEIGHBOURS,
    _REWIRE_PROBABILITY,
    _WIDTH,
    GRAPHML_NAME,
    PLOT_NAME,
    _active_edges,
    _edge_layers,
    _Progress,
    _prune_edges_by_magnitude,
    _small_world_layered,
    _train_and_prune,
)
from pypaddle.sparse import MaskedDeepDAN

FEW_EPOCHS = {"epochs": 3, "rounds": 3, "retrain_epochs": 1}


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("demo")
    return out_dir, run_demo(out_dir, seed=0, quiet=True, **FEW_EPOCHS)


class TestSmallWorldLayered:
    def test_without_rewiring_it_is_a_ring_lattice_between_layers(self):
        graph = _small_world_layered(3, 4, 2, 0.0, seed=0)
        expected = {
            (layer * 4 + i, (layer + 1) * 4 + (i + offset) % 4)
            for layer in range(2)
            for i in range(4)
            for offset in (-1, 0)
        }
        assert set(graph.edges) == expected
        assert len(expected) == 16
        assert list(graph.nodes) == list(range(12))
        assert graph.nodes[6] == {"lattice_layer": 1, "lattice_index": 2}

    def test_rewired_edges_only_skip_forward(self):
        graph = _small_world_layered(4, 16, 4, 1.0, seed=0)
        lattice_layer = nx.get_node_attributes(graph, "lattice_layer")
        assert all(lattice_layer[v] > lattice_layer[u] for u, v in graph.edges)
        assert any(lattice_layer[v] > lattice_layer[u] + 1 for u, v in graph.edges)
        # From the last-but-one layer the only later layer is the last one.
        assert {lattice_layer[v] for u, v in graph.edges if lattice_layer[u] == 2} == {3}

    def test_same_seed_same_graph(self):
        first = _small_world_layered(4, 16, 4, 0.3, seed=5)
        second = _small_world_layered(4, 16, 4, 0.3, seed=5)
        other = _small_world_layered(4, 16, 4, 0.3, seed=6)
        assert list(first.edges) == list(second.edges)
        assert set(first.edges) != set(other.edges)

    def test_demo_structure_keeps_its_four_layers(self):
        graph = _small_world_layered(_LAYERS, _WIDTH, _NEIGHBOURS, _REWIRE_PROBABILITY, seed=0)
        lattice_layer = nx.get_node_attributes(graph, "lattice_layer")
        skips = sum(lattice_layer[v] > lattice_layer[u] + 1 for u, v in graph.edges)
        assert [graph.get_layer_size(layer) for layer in graph.layers] == [64, 64, 64, 64]
        assert 0 < skips < 0.1 * graph.number_of_edges()
        assert graph.number_of_edges() <= 3 * 64 * 8


class TestPruneEdgesByMagnitude:
    def test_one_global_threshold_over_the_edge_layers(self):
        # 0, 1 -> 2 -> 3 plus the skip 0 -> 3: layer 2 reads layers 0 and 1.
        structure = nx.DiGraph([(0, 2), (1, 2), (2, 3), (0, 3)])
        model = MaskedDeepDAN(2, 1, structure)
        first, second = _edge_layers(model)
        assert second.mask.tolist() == [[True, False, True]]
        packed = (model.hidden_weight, model.hidden_mask)
        storage = [tensor.data_ptr() for tensor in packed]
        with torch.no_grad():
            first.weight.copy_(torch.tensor([[0.5, -0.1]]))
            second.weight.copy_(torch.tensor([[0.2, 9.0, -0.3]]))

        _prune_edges_by_magnitude(model, 0.5)

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

    def test_fraction_too_small_to_remove_anything(self):
        model = MaskedDeepDAN(2, 1, nx.DiGraph([(0, 1)]))
        _prune_edges_by_magnitude(model, 0.4)
        assert _active_edges(model) == 1


class TestTrainAndPrune:
    def test_retraining_respects_the_masks(self):
        split = digits(seed=0)
        structure = _small_world_layered(3, 16, 4, 0.2, seed=0)
        model, results = _train_and_prune(
            split,
            structure,
            seed=0,
            epochs=1,
            rounds=2,
            retrain_epochs=2,
            prune_fraction=0.5,
            batch_size=64,
            learning_rate=1e-2,
            progress=_Progress(),
        )
        for layer in _edge_layers(model):
            assert float(layer.weight.detach()[~layer.mask].abs().sum()) == 0.0
        assert bool(model.layers_main_hidden[0].mask.all())
        pruned = model.generate_structure()
        assert set(pruned.edges) <= set(structure.edges)
        assert pruned.number_of_edges() == _active_edges(model) == results[-1]["edges"]
        expected = [structure.number_of_edges()]
        for _ in range(2):
            expected.append(expected[-1] - round(expected[-1] / 2))  # prune rounds as round()
        assert [result["edges"] for result in results] == expected


class TestRunDemo:
    def test_density_halves_every_round(self, short_run):
        _, results = short_run
        assert [result["round"] for result in results] == [0, 1, 2, 3]
        edges = [result["edges"] for result in results]
        assert all(b == a - round(a / 2) for a, b in itertools.pairwise(edges))
        densities = [result["density"] for result in results]
        assert densities[0] == 1.0
        assert all(b < a for a, b in itertools.pairwise(densities))
        assert results[0]["accuracy_before_retraining"] is None
        assert all(0.0 <= result["accuracy"] <= 1.0 for result in results)

    def test_graphml_holds_the_pruned_structure(self, short_run):
        out_dir, results = short_run
        graph = nx.read_graphml(out_dir / GRAPHML_NAME, node_type=int)
        structure = _small_world_layered(_LAYERS, _WIDTH, _NEIGHBOURS, _REWIRE_PROBABILITY, seed=0)
        assert graph.is_directed()
        assert graph.number_of_edges() == results[-1]["edges"]
        assert set(graph.edges) <= set(structure.edges)
        assert sorted(graph.nodes) == list(range(_LAYERS * _WIDTH))
        assert graph.nodes[70] == {"lattice_layer": 1, "lattice_index": 6}
        assert graph.graph["seed"] == 0
        assert graph.graph["density"] == pytest.approx(results[-1]["density"])

    def test_writes_a_png_plot(self, short_run):
        from matplotlib.image import imread

        out_dir, _ = short_run
        path = out_dir / PLOT_NAME
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert imread(path).shape[:2] == (576, 900)

    def test_writes_the_results_as_json_and_csv(self, short_run):
        out_dir, results = short_run
        assert json.loads((out_dir / "results.json").read_text()) == results
        lines = (out_dir / "results.csv").read_text().splitlines()
        assert lines[0].split(",")[:3] == ["round", "edges", "density"]
        assert len(lines) == len(results) + 1

    def test_same_seed_same_numbers(self, short_run, tmp_path):
        out_dir, results = short_run
        again = run_demo(tmp_path / "again", seed=0, quiet=True, **FEW_EPOCHS)
        assert again == results
        again_graphml = (tmp_path / "again" / GRAPHML_NAME).read_bytes()
        assert again_graphml == (out_dir / GRAPHML_NAME).read_bytes()

    def test_other_seed_other_numbers(self, short_run, tmp_path):
        _, results = short_run
        other = run_demo(tmp_path, seed=1, quiet=True, **FEW_EPOCHS)
        assert [r["accuracy"] for r in other] != [r["accuracy"] for r in results]

    def test_leaves_global_torch_state_alone(self, tmp_path):
        torch.manual_seed(1234)
        state = torch.get_rng_state()
        threads = torch.get_num_threads()
        run_demo(tmp_path, quiet=True, epochs=1, rounds=0)
        assert torch.equal(torch.get_rng_state(), state)
        assert torch.get_num_threads() == threads

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
        assert (tmp_path / GRAPHML_NAME).is_file()
        assert (tmp_path / PLOT_NAME).is_file()
        assert json.loads((tmp_path / "results.json").read_text())[1]["round"] == 1

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


def test_optional_dependencies_are_imported_lazily():
    code = (
        "import sys, pypaddle, pypaddle.data, pypaddle.experiments\n"
        "loaded = {'sklearn', 'matplotlib', 'rich', 'typer'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
