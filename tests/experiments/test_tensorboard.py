"""TensorBoard event files next to metrics.jsonl, read back with tensorboard's EventAccumulator."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pypaddle.cli import app
from pypaddle.errors import ConfigError, MissingExtraError
from pypaddle.experiments import run_experiment
from pypaddle.experiments._tensorboard import TensorBoardRecorder, make_recorder
from pypaddle.experiments.config import to_toml
from pypaddle.experiments.run import prepare
from pypaddle.sparse import MaskedLinear, maskable_layers

pytest.importorskip("tensorboard")
import torch.utils.tensorboard
from tensorboard.backend.event_processing.event_accumulator import (
    EventAccumulator,
)


def events(folder):
    accumulator = EventAccumulator(str(folder / "tensorboard"), size_guidance={"scalars": 0})
    accumulator.Reload()
    return accumulator


def scalars(accumulator, tag):
    return [(event.step, event.value) for event in accumulator.Scalars(tag)]


def metrics(folder):
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def hide_tensorboard(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name)
    )


DAN_CONFIG = {
    "name": "tb",
    "seed": 2,
    "model": {
        "name": "dan",
        "structure": {"generator": "random_layered", "widths": [8, 8], "density": 0.5},
    },
    "training": {"epochs": 2, "batch_size": 128, "learning_rate": 0.01},
    "sparsify": {
        "method": "iterative",
        "rounds": 1,
        "amount": 0.5,
        "retrain_epochs": 1,
        "layers": "structure",
    },
    "evaluation": {"checkpoints": False, "structures": "none"},
}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tb") / "out"
    rounds = run_experiment(DAN_CONFIG, folder, quiet=True)
    return folder, rounds, events(folder)


class TestEventsOfARun:
    def test_one_event_file_next_to_the_metrics(self, finished):
        folder, _, _ = finished
        assert (folder / "metrics.jsonl").is_file()
        files = list((folder / "tensorboard").iterdir())
        assert len(files) == 1
        assert files[0].name.startswith("events.out.tfevents.")

    def test_epoch_scalars_at_the_epoch_count(self, finished):
        folder, _, accumulator = finished
        epochs = [record for record in metrics(folder) if record["event"] == "epoch"]
        assert [record["epoch_total"] for record in epochs] == [1, 2, 3]
        for tag, key in (
            ("train/loss", "train_loss"),
            ("test/loss", "test_loss"),
            ("test/accuracy", "accuracy"),
            ("density", "density"),
        ):
            logged = scalars(accumulator, tag)
            assert [step for step, _ in logged] == [1, 2, 3], tag
            expected = [record[key] for record in epochs]
            assert [value for _, value in logged] == pytest.approx(expected, rel=1e-6), tag

    def test_round_scalars_at_the_round(self, finished):
        _, rounds, accumulator = finished
        for key in ("accuracy", "test_loss", "density", "active_weights"):
            logged = scalars(accumulator, f"round/{key}")
            assert [step for step, _ in logged] == [0, 1]
            assert [value for _, value in logged] == pytest.approx(
                [record[key] for record in rounds], rel=1e-6
            )
        # Before any retraining there is a number only once something was pruned.
        before = scalars(accumulator, "round/accuracy_before_retraining")
        assert before == [(1, pytest.approx(rounds[1]["accuracy_before_retraining"], rel=1e-6))]

    def test_per_layer_density(self, finished):
        _, _, accumulator = finished
        built = prepare(DAN_CONFIG).model.module  # the same seed: the same model
        layers = {
            name: module
            for name, module in built.named_modules()
            if module in set(maskable_layers(built))
        }
        tags = sorted(tag for tag in accumulator.Tags()["scalars"] if tag.startswith("density/"))
        assert tags == sorted(f"density/{name}" for name in layers)
        pruned = 0
        for name, layer in layers.items():
            values = [value for _, value in scalars(accumulator, f"density/{name}")]
            assert values[:2] == pytest.approx([layer.density] * 2)
            # Round 1 (epoch 3) pruned half of the structure's edges, nothing else.
            if values[2] < values[1]:
                pruned += 1
                assert values[2] == pytest.approx(values[1] / 2, abs=0.02)
        assert pruned >= 1

    def test_structure_image_per_round(self, finished):
        _, _, accumulator = finished
        assert accumulator.Tags()["images"] == ["structure"]
        images = accumulator.Images("structure")
        assert [image.step for image in images] == [0, 1]
        assert all(image.width > 100 and image.height > 100 for image in images)
        assert all(image.encoded_image_string[:4] == b"\x89PNG" for image in images)


def tiny(folder_config):
    return {
        **folder_config,
        "model": {"name": "ffn", "hidden_layers": [8]},
        "training": {"epochs": 1, "batch_size": 256},
        "evaluation": {"plots": False, "checkpoints": False, **folder_config.get("evaluation", {})},
    }


class TestSwitches:
    def test_no_image_without_plots(self, tmp_path):
        run_experiment(tiny({}), tmp_path, quiet=True)
        accumulator = events(tmp_path)
        assert accumulator.Tags()["images"] == []
        assert [step for step, _ in scalars(accumulator, "train/loss")] == [1]

    def test_config_switches_off(self, tmp_path):
        run_experiment(tiny({"evaluation": {"tensorboard": False}}), tmp_path, quiet=True)
        assert (tmp_path / "metrics.jsonl").is_file()
        assert not (tmp_path / "tensorboard").exists()

    def test_argument_switches_off_without_changing_the_experiment(self, tmp_path):
        run_experiment(tiny({}), tmp_path, quiet=True)
        config_text = (tmp_path / "config.toml").read_text()
        # The same folder runs again without event files: it is the same experiment.
        run_experiment(tiny({}), tmp_path, quiet=True, tensorboard=False)
        assert (tmp_path / "config.toml").read_text() == config_text
        # The event files of the first run are gone with its metrics.
        assert not (tmp_path / "tensorboard").exists()

    def test_a_rerun_replaces_the_event_files(self, tmp_path):
        run_experiment(tiny({}), tmp_path, quiet=True)
        first = list((tmp_path / "tensorboard").iterdir())
        run_experiment(tiny({}), tmp_path, quiet=True)
        second = list((tmp_path / "tensorboard").iterdir())
        assert len(first) == len(second) == 1
        assert [step for step, _ in scalars(events(tmp_path), "train/loss")] == [1]

    def test_unset_without_the_extra_writes_none(self, tmp_path, monkeypatch):
        hide_tensorboard(monkeypatch)
        run_experiment(tiny({}), tmp_path, quiet=True)
        assert (tmp_path / "result.json").is_file()
        assert not (tmp_path / "tensorboard").exists()

    def test_asked_for_without_the_extra(self, tmp_path, monkeypatch):
        hide_tensorboard(monkeypatch)
        folder = tmp_path / "out"
        with pytest.raises(MissingExtraError, match=r"pip install 'pypaddle\[tensorboard\]'"):
            run_experiment(tiny({"evaluation": {"tensorboard": True}}), folder, quiet=True)
        assert not folder.exists()
        # --no-tensorboard wins over the config: no extra needed.
        run_experiment(
            tiny({"evaluation": {"tensorboard": True}}), folder, quiet=True, tensorboard=False
        )
        assert not (folder / "tensorboard").exists()

    @pytest.mark.parametrize("bad", ["yes", 1, [True]])
    def test_bad_config_value(self, bad):
        with pytest.raises(ConfigError, match=r"evaluation\.tensorboard"):
            run_experiment(tiny({"evaluation": {"tensorboard": bad}}), "unused", quiet=True)


def earlier_run(folder):
    """The files an earlier run left: metrics.jsonl and one event file."""
    (folder / "tensorboard").mkdir(parents=True)
    (folder / "metrics.jsonl").write_text('{"event": "epoch", "epoch_total": 1}\n')
    old = folder / "tensorboard" / "events.out.tfevents.1.earlier.1.0"
    old.write_bytes(b"earlier events")
    return old


def failing_writer(monkeypatch):
    def refuse(*args, log_dir, **kwargs):
        # As SummaryWriter fails when the disk is full: after making its folder.
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        raise OSError("no space left for the event file")

    monkeypatch.setattr(torch.utils.tensorboard, "SummaryWriter", refuse)


class TestReplacingTheEarlierRun:
    """Files of an earlier run go only once everything that replaces them has started."""

    def test_a_writer_that_fails_to_start_leaves_the_earlier_files(self, tmp_path, monkeypatch):
        old = earlier_run(tmp_path)
        failing_writer(monkeypatch)
        with pytest.raises(OSError, match="no space"):
            make_recorder(tmp_path / "metrics.jsonl", MaskedLinear(3, 2), None, tensorboard=True)
        assert (tmp_path / "metrics.jsonl").read_text() == '{"event": "epoch", "epoch_total": 1}\n'
        assert old.read_bytes() == b"earlier events"
        assert list((tmp_path / "tensorboard").iterdir()) == [old]

    def test_a_writer_that_fails_to_start_leaves_no_new_folder(self, tmp_path, monkeypatch):
        failing_writer(monkeypatch)
        with pytest.raises(OSError, match="no space"):
            make_recorder(tmp_path / "metrics.jsonl", MaskedLinear(3, 2), None, tensorboard=True)
        assert list(tmp_path.iterdir()) == []

    def test_metrics_that_cannot_be_opened_leave_no_new_folder(self, tmp_path):
        unopenable = tmp_path / "missing" / "metrics.jsonl"
        with pytest.raises(FileNotFoundError):
            TensorBoardRecorder(unopenable, tmp_path / "tensorboard", MaskedLinear(3, 2), None)
        assert list(tmp_path.iterdir()) == []

    def test_metrics_that_cannot_be_opened_leave_the_earlier_events(self, tmp_path):
        old = earlier_run(tmp_path)
        unopenable = tmp_path / "missing" / "metrics.jsonl"
        with pytest.raises(FileNotFoundError):
            TensorBoardRecorder(unopenable, tmp_path / "tensorboard", MaskedLinear(3, 2), None)
        assert list((tmp_path / "tensorboard").iterdir()) == [old]
        assert old.read_bytes() == b"earlier events"

    def test_a_started_writer_replaces_the_earlier_files(self, tmp_path):
        old = earlier_run(tmp_path)
        recorder = make_recorder(
            tmp_path / "metrics.jsonl", MaskedLinear(3, 2), None, tensorboard=True
        )
        recorder.close()
        assert (tmp_path / "metrics.jsonl").read_text() == ""
        (new,) = (tmp_path / "tensorboard").iterdir()
        assert new != old
        assert new.name.startswith("events.out.tfevents.")


class TestCli:
    def test_no_tensorboard_flag(self, tmp_path):
        path = tmp_path / "experiment.toml"
        path.write_text(to_toml(tiny({"name": "cli"})))
        runner = CliRunner()
        result = runner.invoke(app, ["run", str(path), "--out", str(tmp_path / "a"), "-q"])
        assert result.exit_code == 0, result.output
        assert len(list((tmp_path / "a" / "tensorboard").iterdir())) == 1
        result = runner.invoke(
            app, ["run", str(path), "--out", str(tmp_path / "b"), "-q", "--no-tensorboard"]
        )
        assert result.exit_code == 0, result.output
        assert (tmp_path / "b" / "result.json").is_file()
        assert not (tmp_path / "b" / "tensorboard").exists()


@pytest.mark.slow
def test_data_parallel_run_writes_one_event_file(tmp_path):
    """With 2 processes only the first writes events, as it alone writes metrics.jsonl."""
    config = {**tiny({}), "sparsify": {"method": "iterative", "rounds": 1, "retrain_epochs": 1}}
    run_experiment(config, tmp_path, quiet=True, nproc=2)
    assert len(list((tmp_path / "tensorboard").iterdir())) == 1
    accumulator = events(tmp_path)
    epochs = [record for record in metrics(tmp_path) if record["event"] == "epoch"]
    logged = scalars(accumulator, "train/loss")
    assert [step for step, _ in logged] == [1, 2]
    assert [value for _, value in logged] == pytest.approx(
        [record["train_loss"] for record in epochs], rel=1e-6
    )
    assert [step for step, _ in scalars(accumulator, "round/density")] == [0, 1]
