import csv
import json

import networkx as nx
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from pypaddle.cli import app
from pypaddle.data import FunctionDataset
from pypaddle.errors import ConfigError, StructureWarning
from pypaddle.experiments import run_experiment
from pypaddle.experiments.run import mask_digest, prepare
from pypaddle.sparse import maskable_layers


def metrics(folder):
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One DAN run with every output switched on."""
    folder = tmp_path_factory.mktemp("run") / "out"
    config = {
        "name": "dan-run",
        "seed": 1,
        "model": {
            "name": "dan",
            "structure": {"generator": "watts_strogatz", "n": 24, "k": 4, "p": 0.2},
        },
        "training": {"epochs": 2, "batch_size": 128, "learning_rate": 0.01},
        "evaluation": {"structures": "rounds"},
        "sparsify": {
            "method": "iterative",
            "rounds": 2,
            "amount": 0.5,
            "retrain_epochs": 1,
            "layers": "structure",
        },
    }
    # 24 vertices oriented by label: one source, 20 layers deep (degenerate on purpose)
    with pytest.warns(StructureWarning, match="bottleneck"):
        rounds = run_experiment(config, folder, quiet=True)
    return config, folder, rounds


class TestOutputFolder:
    def test_files(self, finished):
        _, folder, _ = finished
        names = {str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file()}
        events = {name for name in names if name.startswith("tensorboard/events.out.tfevents.")}
        assert (
            len(events) == 1
        )  # the tensorboard extra is in dev (tests/experiments/test_tensorboard)
        assert names - events == {
            "config.toml",
            "metrics.jsonl",
            "summary.csv",
            "result.json",
            *(f"checkpoints/round-{r}.pt" for r in range(3)),
            "structures/prior.graphml",
            *(f"structures/round-{r}.graphml" for r in range(3)),
            "plots/learning_curves.png",
            "plots/accuracy_vs_density.png",
            "plots/structure.png",
            "plots/degree_distribution.png",
        }
        assert all(
            (folder / "plots" / name).read_bytes()[:4] == b"\x89PNG"
            for name in ("structure.png", "learning_curves.png")
        )

    def test_metrics_per_epoch_and_round(self, finished):
        _, folder, rounds = finished
        records = metrics(folder)
        assert [(r["event"], r["round"]) for r in records] == [
            ("epoch", 0),
            ("epoch", 0),
            ("round", 0),
            ("epoch", 1),
            ("round", 1),
            ("epoch", 2),
            ("round", 2),
        ]
        assert [r["epoch_total"] for r in records if r["event"] == "epoch"] == [1, 2, 3, 4]
        assert [r["density"] for r in rounds] == pytest.approx([1.0, 0.5, 0.25], abs=0.02)
        assert all(0.0 <= r["accuracy"] <= 1.0 for r in rounds)

    def test_summary_csv_one_row_per_round(self, finished):
        _, folder, rounds = finished
        with (folder / "summary.csv").open() as handle:
            rows = list(csv.DictReader(handle))
        assert [int(row["round"]) for row in rows] == [0, 1, 2]
        assert [float(row["accuracy"]) for row in rows] == [r["accuracy"] for r in rounds]

    def test_structures_are_the_pruned_graphs(self, finished):
        _, folder, rounds = finished
        prior = nx.read_graphml(folder / "structures" / "prior.graphml")
        assert prior.number_of_nodes() == 24
        assert nx.is_directed_acyclic_graph(prior)
        for record in rounds:
            graph = nx.read_graphml(folder / "structures" / f"round-{record['round']}.graphml")
            assert graph.number_of_edges() == record["edges"]
            assert set(graph.edges) <= set(prior.edges)

    def test_checkpoint_restores_weights_and_masks(self, finished):
        config, folder, rounds = finished
        checkpoint = torch.load(folder / "checkpoints" / "round-2.pt", weights_only=True)
        with pytest.warns(StructureWarning, match="bottleneck"):  # the run's own structure
            model = prepare(config).model.module
        model.load_state_dict(checkpoint["model"])
        assert mask_digest(maskable_layers(model)) == rounds[-1]["mask_digest"]
        assert checkpoint["round"] == 2
        assert checkpoint["config"]["name"] == "dan-run"

    def test_result_json_is_complete(self, finished):
        _, folder, rounds = finished
        result = json.loads((folder / "result.json").read_text())
        assert result["rounds"] == rounds
        assert result["final"]["round"] == 2


class TestDeterminism:
    def test_same_config_and_seed_same_metrics(self, tmp_path, tiny_config):
        run_experiment(tiny_config, tmp_path / "a", quiet=True)
        run_experiment(tiny_config, tmp_path / "b", quiet=True)
        assert (tmp_path / "a" / "metrics.jsonl").read_text() == (
            tmp_path / "b" / "metrics.jsonl"
        ).read_text()
        first = torch.load(tmp_path / "a" / "checkpoints" / "round-2.pt", weights_only=True)[
            "model"
        ]
        second = torch.load(tmp_path / "b" / "checkpoints" / "round-2.pt", weights_only=True)[
            "model"
        ]
        assert all(torch.equal(first[key], second[key]) for key in first)

    def test_another_seed_other_metrics(self, tmp_path, tiny_config):
        run_experiment(tiny_config, tmp_path / "a", quiet=True)
        run_experiment({**tiny_config, "seed": 4}, tmp_path / "b", quiet=True)
        assert metrics(tmp_path / "a") != metrics(tmp_path / "b")

    def test_global_random_state_untouched(self, tmp_path, tiny_config):
        torch.manual_seed(123)
        expected = torch.rand(3)
        torch.manual_seed(123)
        run_experiment(tiny_config, tmp_path / "a", quiet=True)
        assert torch.equal(torch.rand(3), expected)


class TestRefusals:
    def test_folder_of_a_different_experiment_is_not_touched(self, tmp_path, tiny_config):
        run_experiment(tiny_config, tmp_path, quiet=True)
        before = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
        changed = {**tiny_config, "training": {**tiny_config["training"], "epochs": 3}}
        with pytest.raises(
            ConfigError,
            match=r"holds a different experiment \(training\.epochs is 2 there, 3 here\)",
        ):
            run_experiment(changed, tmp_path, quiet=True)
        assert {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()} == before

    def test_same_experiment_runs_again(self, tmp_path, tiny_config):
        run_experiment(tiny_config, tmp_path, quiet=True)
        first = (tmp_path / "metrics.jsonl").read_text()
        run_experiment(tiny_config, tmp_path, quiet=True)
        assert (tmp_path / "metrics.jsonl").read_text() == first

    def test_foreign_folder(self, tmp_path, tiny_config):
        (tmp_path / "notes.txt").write_text("mine")
        with pytest.raises(ConfigError, match="holds no pypaddle experiment"):
            run_experiment(tiny_config, tmp_path, quiet=True)
        assert [path.name for path in tmp_path.iterdir()] == ["notes.txt"]

    def test_bad_config_fails_before_anything_is_written(self, tmp_path, tiny_config):
        bad = {**tiny_config, "model": {"name": "ffn", "hidden_layer": [3]}}
        with pytest.raises(ConfigError, match=r"model\.hidden_layer is not a known key"):
            run_experiment(bad, tmp_path / "out", quiet=True)
        assert not (tmp_path / "out").exists()

    def test_missing_data_file(self, tmp_path):
        config = {"data": {"name": "npz", "path": str(tmp_path / "missing.npz")}}
        with pytest.raises(ConfigError, match=r"^data: npz file .*missing\.npz' does not exist"):
            run_experiment(config, tmp_path / "out", quiet=True)
        assert not (tmp_path / "out").exists()


class TestData:
    def test_function_regression(self, tmp_path):
        config = {
            "data": {
                "name": "function",
                "function": ["sphere", "sine"],
                "dimension": 3,
                "samples": 400,
            },
            "model": {"name": "ffn", "hidden_layers": [32]},
            "training": {"epochs": 3, "learning_rate": 0.01},
            "sparsify": {"method": "one_shot", "amount": 0.8, "retrain_epochs": 1},
        }
        rounds = run_experiment(config, tmp_path, quiet=True)
        assert "accuracy" not in rounds[0]
        assert rounds[0]["test_loss"] > 0
        assert rounds[1]["density"] == pytest.approx(0.2, abs=0.01)
        assert (tmp_path / "plots" / "loss_vs_density.png").is_file()

    def test_saved_function_dataset(self, tmp_path):
        FunctionDataset("rastrigin", samples=100, seed=9).save(tmp_path / "r.npz")
        (tmp_path / "e.toml").write_text(
            '[data]\nname = "function"\npath = "r.npz"\n'
            '[model]\nname = "ffn"\nhidden_layers = [4]\n'
            "[training]\nepochs = 1\n[evaluation]\nplots = false\n"
        )
        rounds = run_experiment(tmp_path / "e.toml", tmp_path / "out", quiet=True)
        assert len(rounds) == 1

    def test_idx_files(self, tmp_path):
        rng = np.random.default_rng(0)
        for stem, count in (("train", 60), ("test", 20)):
            images = rng.integers(0, 256, (count, 6, 6)).astype(np.uint8)
            labels = rng.integers(0, 3, count).astype(np.uint8)
            for name, array, code in ((f"{stem}-images", images, 3), (f"{stem}-labels", labels, 1)):
                header = bytes([0, 0, 8, code]) + np.array(array.shape, ">i4").tobytes()
                (tmp_path / name).write_bytes(header + array.tobytes())
        config = {
            "data": {
                "name": "idx",
                "train_images": str(tmp_path / "train-images"),
                "train_labels": str(tmp_path / "train-labels"),
                "test_images": str(tmp_path / "test-images"),
                "test_labels": str(tmp_path / "test-labels"),
            },
            "model": {"name": "ffn", "hidden_layers": [8]},
            "training": {"epochs": 1},
            "evaluation": {"plots": False},
        }
        prepared = prepare(config)
        assert prepared.split.input_shape == (1, 6, 6)
        assert prepared.split.num_outputs == 3
        assert float(prepared.split.x_train.max()) <= 1.0
        assert len(run_experiment(config, tmp_path / "out", quiet=True)) == 1


class TestCommand:
    def test_run_writes_the_folder_and_a_table(self, tmp_path):
        (tmp_path / "e.toml").write_text(
            'name = "cli"\n[model]\nname = "ffn"\nhidden_layers = [8]\n[training]\nepochs = 1\n'
            '[sparsify]\nmethod = "one_shot"\n[evaluation]\nplots = false\n'
        )
        result = CliRunner().invoke(
            app, ["run", str(tmp_path / "e.toml"), "--out", str(tmp_path / "o")]
        )
        assert result.exit_code == 0, result.output
        assert "cli (seed 0)" in result.output
        assert (tmp_path / "o" / "result.json").is_file()

    def test_default_folder_is_runs_name(self, tmp_path):
        (tmp_path / "e.toml").write_text(
            'name = "x"\n[model]\nname = "ffn"\nhidden_layers = [4]\n'
            "[training]\nepochs = 1\n[evaluation]\nplots = false\n"
        )
        result = CliRunner().invoke(app, ["run", str(tmp_path / "e.toml"), "--quiet"])
        assert result.exit_code == 0, result.output
        assert (tmp_path / "runs" / "x" / "summary.csv").is_file()

    def test_config_error_is_one_line_and_status_2(self, tmp_path):
        (tmp_path / "e.toml").write_text("[training]\nepochs = -1\n")
        result = CliRunner().invoke(app, ["run", str(tmp_path / "e.toml")])
        assert result.exit_code == 2
        assert "error: training.epochs = -1 is out of range; allowed: >= 1" in result.output
