"""The parts of the experiment engine, each on its own: records, one epoch, one round,
pruning, the files of a round, single-process synchronisation."""

import json

import pytest
import torch

from pypaddle.errors import StructureWarning
from pypaddle.experiments import prepare, run_experiment
from pypaddle.experiments.distributed import Sync
from pypaddle.experiments.engine import (
    Rounds,
    active_weights,
    mask_digest,
    steps_per_epoch,
    write_final,
    write_round,
)
from pypaddle.experiments.records import Recorder, epoch_record, round_record
from pypaddle.graph import read
from pypaddle.sparse import maskable_layers

STEPS = 22  # 1347 digits in the training split, batches of 64: 21 full ones and 3 left


@pytest.fixture
def prepared(tiny_config):
    return prepare(tiny_config)


class TestRecords:
    def test_epoch_of_a_classifier(self):
        record = epoch_record(
            round=2,
            epoch=1,
            epoch_total=7,
            step=90,
            density=0.25,
            train_loss=0.5,
            metrics={"loss": 0.75, "accuracy": 0.875},
            classification=True,
        )
        assert record == {
            "event": "epoch",
            "round": 2,
            "epoch": 1,
            "epoch_total": 7,
            "step": 90,
            "density": 0.25,
            "train_loss": 0.5,
            "test_loss": 0.75,
            "accuracy": 0.875,
        }
        assert list(record)[:3] == ["event", "round", "epoch"]

    def test_untested_epoch_of_a_regression(self):
        record = epoch_record(
            round=0,
            epoch=1,
            epoch_total=1,
            step=3,
            density=1.0,
            train_loss=2.0,
            metrics=None,
            classification=False,
        )
        assert record["test_loss"] is None
        assert "accuracy" not in record

    def test_round_after_pruning(self):
        record = round_record(
            round=1,
            epochs=2,
            density=0.5,
            active=40,
            edges=30,
            before={"loss": 1.5, "accuracy": 0.5},
            after={"loss": 0.25, "accuracy": 0.75},
            train_loss=0.125,
            classification=True,
        )
        assert list(record.items()) == [
            ("event", "round"),
            ("round", 1),
            ("epochs", 2),
            ("density", 0.5),
            ("active_weights", 40),
            ("edges", 30),
            ("accuracy_before_retraining", 0.5),
            ("accuracy", 0.75),
            ("loss_before_retraining", 1.5),
            ("test_loss", 0.25),
            ("train_loss", 0.125),
        ]

    def test_first_round_has_nothing_before(self):
        record = round_record(
            round=0,
            epochs=1,
            density=1.0,
            active=10,
            edges=None,
            before=None,
            after={"loss": 1.0, "accuracy": 0.5},
            train_loss=None,
            classification=True,
        )
        assert record["accuracy_before_retraining"] is None
        assert record["loss_before_retraining"] is None
        assert "edges" not in record

    def test_recorder_writes_one_flushed_line_per_record(self, tmp_path):
        recorder = Recorder(tmp_path / "metrics.jsonl")
        recorder.write({"event": "epoch", "round": 0})
        assert (tmp_path / "metrics.jsonl").read_text() == '{"event": "epoch", "round": 0}\n'
        recorder.write({"event": "round", "round": 0})
        recorder.close()
        assert recorder.of("round") == [{"event": "round", "round": 0}]
        assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 2


class TestSteps:
    def test_steps_per_epoch(self, prepared):
        assert prepared.split.y_train.shape[0] == 1347
        assert steps_per_epoch(prepared.split, 64, 1) == STEPS
        assert steps_per_epoch(prepared.split, 64, 4) == 21  # 3 samples left for 4 processes
        assert steps_per_epoch(prepared.split, 1347, 1) == 1


class TestOneEpoch:
    def test_trains_counts_and_records(self, prepared):
        rounds = Rounds(prepared)
        weights = [p.detach().clone() for p in prepared.model.module.parameters()]
        optimizer = torch.optim.Adam(prepared.model.module.parameters(), lr=0.01)
        loss, metrics = rounds.train_one_epoch(0, 1, 2, optimizer)
        assert (rounds.step, rounds.epoch_total) == (STEPS, 1)
        assert loss > 0
        assert set(metrics) == {"loss", "accuracy"}
        (record,) = rounds.recorder.records
        assert record["step"] == STEPS
        assert record["train_loss"] == loss
        assert record["test_loss"] == metrics["loss"]
        assert record["accuracy"] == metrics["accuracy"] == rounds.test()["accuracy"]
        changed = [
            not torch.equal(before, after.detach())
            for before, after in zip(weights, prepared.model.module.parameters())
        ]
        assert all(changed)

    @pytest.mark.slow
    def test_only_the_last_epoch_is_tested_unless_every_epoch(self, tiny_config):
        tiny_config["evaluation"] = {"plots": False, "every_epoch": False}
        rounds = Rounds(prepare(tiny_config))
        optimizer = torch.optim.Adam(rounds.model.parameters())
        _, first = rounds.train_one_epoch(0, 1, 2, optimizer)
        _, last = rounds.train_one_epoch(0, 2, 2, optimizer)
        assert first is None
        assert last is not None
        assert [r["test_loss"] is None for r in rounds.recorder.records] == [True, False]
        assert [r["epoch_total"] for r in rounds.recorder.records] == [1, 2]


class TestOneRound:
    @pytest.mark.slow
    def test_round_zero_trains_the_configured_epochs(self, prepared, monkeypatch):
        calls = []
        sparsifier = prepared.sparsifier
        begin = sparsifier.begin_round

        def spy(layers, optimizer, round_, steps):
            calls.append((round_, steps, type(optimizer).__name__))
            begin(layers, optimizer, round_, steps)

        monkeypatch.setattr(sparsifier, "begin_round", spy)
        rounds = Rounds(prepared)
        record = rounds.train_round(0, None)
        assert calls == [(0, 2 * STEPS, "Adam")]
        assert (record["round"], record["epochs"], record["density"]) == (0, 2, 1.0)
        assert record["active_weights"] == active_weights(maskable_layers(rounds.model))
        assert record["mask_digest"] == mask_digest(maskable_layers(rounds.model))
        assert [r["event"] for r in rounds.recorder.records] == ["epoch", "epoch", "round"]

    def test_later_rounds_retrain_the_method_epochs(self, prepared):
        rounds = Rounds(prepared)
        assert [rounds.epochs_of(round_) for round_ in range(3)] == [2, 1, 1]

    def test_prune_halves_the_weights_and_tests(self, prepared):
        rounds = Rounds(prepared)
        prepared.sparsifier.start(prepared.layers, None)
        before = active_weights(prepared.layers)
        metrics = rounds.prune(1)
        assert active_weights(prepared.layers) == before - round(before / 2)
        assert rounds.density == pytest.approx(0.5, abs=1e-3)
        assert metrics == rounds.test()

    def test_the_parts_make_the_run(self, tiny_config, tmp_path):
        expected = run_experiment(tiny_config, tmp_path, quiet=True)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # as run_experiment trains
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(tiny_config["seed"])
                assert Rounds(prepare(tiny_config)).run() == expected
        finally:
            torch.set_num_threads(threads)


class TestRoundFiles:
    def dan(self, tiny_config, structures):
        tiny_config["model"] = {
            "name": "dan",
            "structure": {"generator": "watts_strogatz", "n": 12, "k": 4, "p": 0.2},
        }
        tiny_config["evaluation"] = {"plots": False, "structures": structures}
        tiny_config["sparsify"]["layers"] = "structure"
        # 12 vertices oriented by label have one source for 64 features: degenerate on purpose
        with pytest.warns(StructureWarning, match="bottleneck"):
            return prepare(tiny_config)

    @pytest.mark.parametrize(
        ("structures", "written"), [("rounds", [0, 1, 2]), ("final", [2]), ("none", [])]
    )
    def test_structures(self, tiny_config, tmp_path, structures, written):
        prepared = self.dan(tiny_config, structures)
        for round_ in range(3):
            write_round(tmp_path, prepared, {"round": round_, "density": 1.0 / (round_ + 1)})
        files = sorted((tmp_path / "structures").glob("*.graphml"))
        assert [path.name for path in files] == [f"round-{r}.graphml" for r in written]
        if written:
            graph = read(files[-1])
            assert graph.graph == {"seed": 3, "round": written[-1], "density": 1 / 3}
            assert set(graph.edges) == set(prepared.model.structure.edges)

    def test_checkpoint_holds_round_config_and_state(self, tiny_config, tmp_path):
        prepared = self.dan(tiny_config, "none")
        write_round(tmp_path, prepared, {"round": 1, "density": 0.5})
        checkpoint = torch.load(tmp_path / "checkpoints" / "round-1.pt", weights_only=True)
        assert checkpoint["round"] == 1
        assert checkpoint["config"] == prepared.config.to_dict()
        state = prepared.model.module.state_dict()
        assert all(torch.equal(checkpoint["model"][key], state[key]) for key in state)

    def test_no_checkpoints_when_switched_off(self, tiny_config, tmp_path):
        tiny_config["evaluation"] = {"plots": False, "checkpoints": False}
        write_round(tmp_path, prepare(tiny_config), {"round": 0, "density": 1.0})
        assert list(tmp_path.iterdir()) == []

    def test_final_files_end_with_the_result(self, prepared, tmp_path):
        rounds = [{"event": "round", "round": 0, "density": 1.0, "mask_digests_per_rank": []}]
        written = write_final(tmp_path, prepared, [], rounds, 1.5)
        assert [path.name for path in written] == ["prior.graphml", "summary.csv", "result.json"]
        result = json.loads((tmp_path / "result.json").read_text())
        assert result["final"] == {"event": "round", "round": 0, "density": 1.0}
        assert (result["name"], result["seconds"]) == ("tiny", 1.5)
        assert not (tmp_path / "summary.json").exists()


class TestSyncAlone:
    def test_a_single_process_changes_nothing(self, prepared):
        sync = Sync()
        model = prepared.model.module
        digest = mask_digest(maskable_layers(model))
        assert sync.wrap(model) is model
        sync.broadcast_masks(model)
        assert mask_digest(maskable_layers(model)) == digest
        assert (sync.lead, sync.mean(1.5), sync.gather("x")) == (True, 1.5, ["x"])
        assert not Sync(1, 2).lead
