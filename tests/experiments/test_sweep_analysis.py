"""The graph measures every experiment records, and the analysis of a sweep's accuracy
against them (correlations, regression, plots, ``pypaddle analyse``)."""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pytest
from typer.testing import CliRunner

from bad_values import NOT_SEEDS, value_id
from pypaddle.cli import app
from pypaddle.errors import ConfigError, PaddleError
from pypaddle.experiments import run_experiment
from pypaddle.experiments.analysis import (
    FinishedTrial,
    analyse_sweep,
    analyse_trials,
    finished_trials,
    spearman_interval,
    write_analysis,
)
from pypaddle.experiments.config import to_toml
from pypaddle.experiments.records import measure_columns, measures_record
from pypaddle.experiments.sweep import parse_sweep, run_sweep
from pypaddle.experiments.sweep_report import SweepResults
from pypaddle.graph import graph_measures, read, write
from pypaddle.graph.measures import MEASURES


def spearman_of_normal(correlation: float) -> float:
    """Spearman's rho of a bivariate normal with this Pearson correlation."""
    return 6 / math.pi * math.asin(correlation / 2)


def linear_trials(
    settings: int = 15, seeds: int = 3, noise: float = 0.005, seed: int = 0
) -> list[FinishedTrial]:
    """Accuracy = 0.5 + 0.4 C - 0.1 L + noise; ``edges`` is unrelated to it."""
    rng = np.random.default_rng(seed)
    trials = []
    for setting in range(settings):
        clustering, length = rng.uniform(0, 0.6), rng.uniform(1.5, 4.0)
        for run in range(seeds):
            c = clustering + rng.normal(0, 0.01)
            path = length + rng.normal(0, 0.02)
            measures = {"clustering": c, "path_length": path, "edges": int(rng.integers(50, 99))}
            result = {
                "final": {"accuracy": 0.5 + 0.4 * c - 0.1 * path + rng.normal(0, noise)},
                "measures": {"prior": measures, "final": measures},
            }
            trials.append(FinishedTrial(f"{setting}-{run}", {"k": setting, "seed": run}, result))
    return trials


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def fabricate_sweep(folder: Path, trials: list[FinishedTrial], unfinished: int = 0) -> Path:
    """A sweep folder as pypaddle writes it: sweep.toml and trials/ID/result.json."""
    listed = {trial.id: json.dumps(trial.overrides) for trial in trials}
    listed |= {f"missing-{i}": json.dumps({"seed": i}) for i in range(unfinished)}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sweep.toml").write_text(to_toml({"name": "fabricated", "trials": listed}))
    for trial in trials:
        (folder / "trials" / trial.id).mkdir(parents=True)
        (folder / "trials" / trial.id / "result.json").write_text(json.dumps(trial.result))
    return folder


class TestRecords:
    def test_measures_record_writes_nan_as_none(self):
        prior = nx.DiGraph([(0, 1), (1, 2)])
        record = measures_record(prior, nx.DiGraph([(0, 1)]))
        assert list(record) == ["prior", "final"]
        assert list(record["prior"]) == list(MEASURES)
        assert record["prior"]["edges"] == 2
        assert record["final"]["edges"] == 1
        assert record["prior"]["small_world_omega"] is None
        assert record["prior"]["path_length"] == pytest.approx(4 / 3)
        json.dumps(record, allow_nan=False)

    def test_measure_columns(self):
        columns = measure_columns(measures_record(nx.DiGraph([(0, 1)]), None))
        assert len(columns) == 2 * len(MEASURES)
        assert columns["prior.edges"] == 1.0
        assert math.isnan(columns["final.edges"])


class TestRecordedByEveryRun:
    def test_result_json_has_the_measures_of_prior_and_final(self, tmp_path, tiny_config):
        config = {
            **tiny_config,
            "model": {
                "name": "dan",
                "structure": {
                    "generator": "small_world_layered",
                    "layers": 3,
                    "width": 8,
                    "neighbours": 3,
                    "p": 0.2,
                },
            },
            "training": {**tiny_config["training"], "epochs": 1},
            "sparsify": {**tiny_config["sparsify"], "rounds": 1, "layers": "structure"},
            "evaluation": {"plots": False, "checkpoints": False, "structures": "final"},
        }
        run_experiment(config, tmp_path, quiet=True)
        result = json.loads((tmp_path / "result.json").read_text())
        prior = read(tmp_path / "structures" / "prior.graphml")
        final = read(tmp_path / "structures" / "round-1.graphml")
        for name, graph in (("prior", prior), ("final", final)):
            expected = graph_measures(graph)
            recorded = result["measures"][name]
            assert list(recorded) == list(MEASURES)
            for measure, value in expected.items():
                if math.isnan(value):
                    assert recorded[measure] is None, measure
                else:
                    assert recorded[measure] == pytest.approx(value), measure
        assert result["measures"]["prior"]["vertices"] == 24
        assert result["measures"]["final"]["edges"] == result["final"]["edges"]
        assert result["measures"]["final"]["edges"] < result["measures"]["prior"]["edges"]


class TestSpearman:
    @pytest.mark.parametrize("correlation", [-0.7, 0.0, 0.5, 0.9])
    def test_rho_and_interval_contain_the_truth(self, correlation):
        rng = np.random.default_rng(1)
        sample = rng.multivariate_normal([0, 0], [[1, correlation], [correlation, 1]], 300)
        rho, low, high = spearman_interval(sample[:, 0], sample[:, 1], rng)
        truth = spearman_of_normal(correlation)
        assert rho == pytest.approx(truth, abs=0.1)
        assert low <= truth <= high
        assert high - low < 0.3

    def test_monotone_is_one_with_ties(self):
        x = np.repeat(np.arange(6.0), 3)
        rho, low, high = spearman_interval(x, np.exp(x), np.random.default_rng(0))
        assert (rho, low, high) == (pytest.approx(1.0), pytest.approx(1.0), pytest.approx(1.0))

    def test_too_few_is_nan(self):
        rho, low, high = spearman_interval(np.arange(3.0), np.arange(3.0), np.random.default_rng(0))
        assert all(math.isnan(v) for v in (rho, low, high))

    def test_seeded(self):
        x, y = np.random.default_rng(0).normal(size=(2, 40))
        first = spearman_interval(x, y, np.random.default_rng(5))
        assert spearman_interval(x, y, np.random.default_rng(5)) == first


@pytest.fixture(scope="module")
def analysis():
    return analyse_trials(linear_trials())


class TestAnalyseTrials:
    def test_correlations(self, analysis):
        by_measure = {entry["measure"]: entry for entry in analysis.correlations}
        assert set(by_measure) == {"clustering", "path_length", "edges"}
        assert by_measure["clustering"]["low"] > 0
        assert by_measure["path_length"]["high"] < 0
        assert by_measure["edges"]["low"] < 0 < by_measure["edges"]["high"]
        assert by_measure["clustering"]["trials"] == 45

    def test_regression_recovers_a_linear_truth(self, analysis):
        regression = analysis.regression
        assert regression["r2"]["ridge"] > 0.95
        assert regression["best"] == "ridge"
        assert regression["split"] == "by setting"
        assert regression["folds"] == 5
        carried = [entry["measure"] for entry in regression["importance"]]
        assert set(carried[:2]) == {"clustering", "path_length"}
        drops = {entry["measure"]: entry["r2_drop"] for entry in regression["importance"]}
        assert drops["edges"] < 0.02 < drops["path_length"]
        coefficients = {e["measure"]: e["ridge_coefficient"] for e in regression["importance"]}
        assert coefficients["clustering"] > 0 > coefficients["path_length"]

    def test_summary_text(self, analysis):
        text = analysis.text()
        assert "45 finished trials in 15 settings" in text
        assert "ridge R² +0.9" in text
        assert "measures that carry it (ridge" in text

    def test_same_seed_same_analysis(self, analysis):
        assert analyse_trials(linear_trials()).to_dict() == analysis.to_dict()

    def test_constant_measures_and_copies_are_left_out_with_a_note(self):
        trials = linear_trials(settings=5, seeds=2)
        for trial in trials:
            prior = trial.result["measures"]["prior"]
            prior["depth"], prior["twin"] = 4, prior["clustering"]
            prior["in_degree_mean"] = prior["out_degree_mean"] = prior["edges"] / 10
        analysis = analyse_trials(trials)
        assert "depth" not in analysis.measures
        assert "out_degree_mean" not in analysis.measures
        assert "out_degree_mean equals in_degree_mean on every trial" in " ".join(analysis.notes)

    def test_nothing_varies(self):
        trials = [
            FinishedTrial(str(i), {"seed": i}, {"final": {"accuracy": 0.1 * i}, "measures": {}})
            for i in range(5)
        ]
        analysis = analyse_trials(trials)
        assert (analysis.measures, analysis.correlations, analysis.regression) == ([], [], {})
        assert "no measure of the prior structures varies" in analysis.notes[0]

    def test_test_loss_when_there_is_no_accuracy(self):
        trials = linear_trials(settings=4, seeds=2)
        for trial in trials:
            trial.result["final"] = {"test_loss": 1 - trial.result["final"]["accuracy"]}
        analysis = analyse_trials(trials)
        assert analysis.target == "test_loss"
        assert analysis.correlations[0]["rho"] < 0

    @pytest.mark.parametrize("structure", ["posterior", "", None, 1])
    def test_bad_structure(self, structure):
        with pytest.raises(ConfigError, match="allowed values: prior, final"):
            analyse_trials(linear_trials(2, 2), structure=structure)

    @pytest.mark.parametrize("seed", NOT_SEEDS, ids=value_id)
    def test_bad_seed(self, seed):
        with pytest.raises(PaddleError):
            analyse_trials(linear_trials(2, 2), seed=seed)


class TestWriteAnalysis:
    def test_files(self, tmp_path):
        trials = linear_trials(settings=8, seeds=2)
        analysis = analyse_trials(trials, resamples=200)
        paths = write_analysis(analysis, tmp_path / "analysis")
        assert [path.name for path in paths] == [
            "analysis.json",
            "correlations.csv",
            "analysis.txt",
            "accuracy_vs_measures.png",
            "clustering_path_length.png",
        ]
        assert sorted(p.name for p in tmp_path.iterdir()) == ["analysis"]
        with (tmp_path / "analysis" / "correlations.csv").open() as handle:
            rows = list(csv.DictReader(handle))
        assert [row["measure"] for row in rows] == analysis.measures
        assert float(rows[0]["rho"]) == pytest.approx(analysis.correlations[0]["rho"], rel=1e-5)
        data = json.loads((tmp_path / "analysis" / "analysis.json").read_text())
        assert data["regression"]["r2"]["ridge"] == pytest.approx(
            analysis.regression["r2"]["ridge"]
        )
        assert (tmp_path / "analysis" / "analysis.txt").read_text() == analysis.text() + "\n"
        for png in paths[3:]:
            assert png.read_bytes()[:4] == b"\x89PNG"


class TestAnalyseSweepFolder:
    def test_writes_and_refuses_to_overwrite(self, tmp_path):
        folder = fabricate_sweep(tmp_path / "sweep", linear_trials(6, 2), unfinished=2)
        analysis = analyse_sweep(folder, resamples=100)
        assert analysis.trials == 12
        written = tree(folder / "analysis")
        assert "analysis.json" in written
        before = tree(folder)
        with pytest.raises(ConfigError, match="already holds an analysis; pass --force"):
            analyse_sweep(folder, structure="final", resamples=100)
        assert tree(folder) == before
        again = analyse_sweep(folder, structure="final", force=True, resamples=100)
        assert again.structure == "final"
        assert json.loads((folder / "analysis" / "analysis.json").read_text())["structure"] == (
            "final"
        )
        assert not [p for p in folder.iterdir() if p.name.startswith(".analysis")]

    @pytest.mark.parametrize("where", ["the sweep", "its parent", "a folder of other files"])
    def test_force_replaces_only_an_analysis(self, tmp_path, where):
        folder = fabricate_sweep(tmp_path / "sweep", linear_trials(5, 2))
        (tmp_path / "notes").mkdir()
        (tmp_path / "notes" / "mine.txt").write_text("keep me")
        out = {
            "the sweep": folder,
            "its parent": tmp_path,
            "a folder of other files": tmp_path / "notes",
        }[where]
        before = tree(tmp_path)
        with pytest.raises(ConfigError, match="holds files that are not an analysis"):
            analyse_sweep(folder, out=out, force=True, resamples=100)
        with pytest.raises(ConfigError, match="holds files that are not an analysis"):
            write_analysis(analyse_trials(linear_trials(5, 2), resamples=100), out)
        assert tree(tmp_path) == before

    def test_a_failed_replace_puts_the_old_analysis_back(self, tmp_path, monkeypatch):
        folder = fabricate_sweep(tmp_path / "sweep", linear_trials(5, 2))
        analyse_sweep(folder, resamples=100)
        before = tree(folder)
        real = os.replace

        def failing(source, target):
            if str(source).endswith(".tmp"):
                raise OSError("disk full")
            real(source, target)

        monkeypatch.setattr(os, "replace", failing)
        with pytest.raises(OSError, match="disk full"):
            analyse_sweep(folder, force=True, structure="final", resamples=100)
        assert tree(folder) == before

    def test_out_elsewhere(self, tmp_path):
        folder = fabricate_sweep(tmp_path / "sweep", linear_trials(5, 2))
        before = tree(folder)
        analyse_sweep(folder, out=tmp_path / "elsewhere", resamples=100)
        assert tree(folder) == before
        assert (tmp_path / "elsewhere" / "analysis.txt").is_file()

    def test_measures_from_saved_structures_of_older_results(self, tmp_path):
        trials = []
        for i, p in enumerate([0.0, 0.1, 0.3, 0.6, 0.9]):
            structure = nx.DiGraph(nx.watts_strogatz_graph(20, 4, p, seed=i).edges)
            result = {"final": {"accuracy": 0.5 + 0.1 * i}}
            trials.append((FinishedTrial(f"t{i}", {"p": p}, result), structure))
        folder = fabricate_sweep(tmp_path / "sweep", [trial for trial, _ in trials])
        for trial, structure in trials:
            write(structure, folder / "trials" / trial.id / "structures" / "prior.graphml")
        (loaded,) = [t for t in finished_trials(folder) if t.id == "t2"]
        assert loaded.result["measures"]["prior"]["clustering"] == pytest.approx(
            graph_measures(trials[2][1])["clustering"]
        )
        assert "final" not in loaded.result["measures"]


class TestBadFolders:
    def check_refused(self, folder: Path, match: str, **options: Any) -> None:
        parent = folder.parent
        before, paths = tree(parent), sorted(parent.rglob("*"))
        with pytest.raises(ConfigError, match=match) as error:
            analyse_sweep(folder, **options)
        named = options.get("out", folder)
        assert options.keys() - {"out"} or str(named) in str(error.value)
        assert tree(parent) == before
        assert sorted(parent.rglob("*")) == paths

    def test_missing(self, tmp_path):
        self.check_refused(tmp_path / "nowhere", "does not exist; give the folder a sweep wrote")
        assert not (tmp_path / "nowhere").exists()

    def test_a_file(self, tmp_path):
        (tmp_path / "file").write_text("x")
        self.check_refused(tmp_path / "file", "is a file")

    def test_an_experiment_folder(self, tmp_path):
        (tmp_path / "run").mkdir()
        (tmp_path / "run" / "result.json").write_text("{}")
        self.check_refused(tmp_path / "run", "is an experiment folder")

    def test_an_empty_folder(self, tmp_path):
        (tmp_path / "empty").mkdir()
        self.check_refused(tmp_path / "empty", "is no pypaddle sweep folder")

    def test_no_finished_trial(self, tmp_path):
        folder = fabricate_sweep(tmp_path / "sweep", [], unfinished=3)
        (folder / "trials").mkdir()
        self.check_refused(folder, r"has no finished trial \(none of its 3 trials.*pypaddle sweep")

    def test_corrupt_result(self, tmp_path):
        folder = fabricate_sweep(tmp_path / "sweep", linear_trials(2, 2))
        (folder / "trials" / "0-0" / "result.json").write_text("{not json")
        self.check_refused(folder, "cannot be read as JSON")

    def test_out_is_a_file(self, tmp_path):
        folder = fabricate_sweep(tmp_path / "sweep", linear_trials(2, 2))
        (tmp_path / "sweep" / "taken").write_text("x")
        self.check_refused(folder, "is a file", out=tmp_path / "sweep" / "taken")

    @pytest.mark.parametrize(
        ("option", "value"),
        [("structure", "posterior"), ("seed", -1), ("resamples", 0), ("resamples", 1.5)],
    )
    def test_bad_options(self, tmp_path, option, value):
        folder = fabricate_sweep(tmp_path / "sweep", linear_trials(2, 2))
        self.check_refused(folder, option, **{option: value})


@pytest.mark.slow
class TestEndToEnd:
    def test_sweep_reports_and_analyse_command(self, tmp_path, tiny_config):
        experiment = {
            **tiny_config,
            "model": {"name": "dan", "structure": {"generator": "random_layered"}},
            "training": {"epochs": 1, "batch_size": 128, "learning_rate": 0.01},
            "sparsify": {"method": "none"},
        }
        sweep = {
            "sweep": {
                "name": "measures",
                "grid": {
                    "model.structure.widths": [[8, 8], [16, 8, 8]],
                    "model.structure.density": [0.3, 0.9],
                    "seed": [0, 1],
                },
            },
            "experiment": experiment,
        }
        results = run_sweep(parse_sweep(sweep), tmp_path, workers=1, quiet=True)
        assert isinstance(results, SweepResults)
        assert len(results) == 8
        assert all(result["measures"]["prior"]["edges"] > 0 for result in results)
        assert results.analysis.to_dict()["trials"] == 8
        assert "<table>" in results._repr_html_()
        assert "Spearman" in results._repr_html_()
        with (tmp_path / "trials.csv").open() as handle:
            rows = list(csv.DictReader(handle))
        assert len(rows) == 8
        edges = [float(row["prior.edges"]) for row in rows]
        assert [float(row["final.edges"]) for row in rows] == edges
        assert [float(row["prior.depth"]) for row in rows] == [2] * 4 + [3] * 4
        analysis = json.loads((tmp_path / "analysis" / "analysis.json").read_text())
        assert analysis["trials"] == 8
        assert {"edges", "depth"} <= set(analysis["measures"])
        before = tree(tmp_path)
        runner = CliRunner()
        result = runner.invoke(app, ["analyse", str(tmp_path)])
        assert result.exit_code == 2
        assert "already holds an analysis; pass --force" in result.output
        assert tree(tmp_path) == before
        result = runner.invoke(app, ["analyse", str(tmp_path), "--force", "--seed", "3"])
        assert result.exit_code == 0, result.output
        assert "8 finished trials in 4 settings" in result.output
        assert "Spearman rank correlation" in result.output
        assert tree(tmp_path / "trials") == {
            k.removeprefix("trials/"): v for k, v in before.items() if k.startswith("trials/")
        }
        result = runner.invoke(app, ["analyse", str(tmp_path / "trials")])
        assert result.exit_code == 2
        assert "has no sweep.toml" in result.output


class TestSweepResults:
    def make(self, analysis):
        rows = [
            {"trial": 0, "seed": 0, "density": 0.5, "accuracy": 0.91234, "status": "done"},
            {"trial": 1, "seed": 1, "status": "failed: " + "x" * 80},
        ]
        results = [{"id": "a", "final": {"accuracy": 0.91234}}]
        return SweepResults(
            results, title="sweep s: 1 of 2", keys=["seed"], rows=rows, analysis=analysis
        )

    def test_is_the_list_of_results(self):
        results = self.make(None)
        assert results == [{"id": "a", "final": {"accuracy": 0.91234}}]
        assert results.analysis is None

    def test_table_has_a_row_per_trial(self, analysis):
        results = self.make(analysis)
        lines = str(results).splitlines()
        assert lines[0].split() == ["trial", "seed", "density", "accuracy", "test_loss", "status"]
        assert lines[2].split() == ["0", "0", "0.5", "0.9123", "done"]
        assert lines[3].endswith("failed: " + "x" * 32)
        html = results._repr_html_()
        assert html.startswith("<p><b>sweep s: 1 of 2</b></p><table>")
        assert html.count("<tr>") == 3
        assert analysis.text().splitlines()[0] in html
        plain = results.to_dict()
        assert plain["trials"][0]["accuracy"] == 0.91234
        assert plain["analysis"] == analysis.to_dict()
        assert json.loads(json.dumps(plain)) == plain


class TestAnalyseCommand:
    def test_on_a_finished_sweep_folder(self, tmp_path):
        folder = fabricate_sweep(tmp_path / "sweep", linear_trials(6, 2))
        result = CliRunner().invoke(app, ["analyse", str(folder), "--structure", "final"])
        assert result.exit_code == 0, result.output
        assert "against the measures of the final structure: 12 finished trials" in result.output
        assert f"wrote {folder / 'analysis'}" in result.output
        data = json.loads((folder / "analysis" / "analysis.json").read_text())
        assert (data["structure"], data["trials"]) == ("final", 12)

    @pytest.mark.parametrize(
        ("arguments", "message"),
        [
            (["nowhere"], "does not exist"),
            (["sweep", "--structure", "posterior"], "structure = 'posterior' is not allowed"),
            (["sweep", "--seed", "-1"], "greater than or equal to 0"),
            (["empty"], "is no pypaddle sweep folder"),
        ],
    )
    def test_bad_input_is_one_line_and_writes_nothing(self, tmp_path, arguments, message):
        fabricate_sweep(tmp_path / "sweep", linear_trials(3, 2))
        (tmp_path / "empty").mkdir()
        before = tree(tmp_path)
        arguments = [str(tmp_path / arguments[0]), *arguments[1:]]
        result = CliRunner().invoke(app, ["analyse", *arguments])
        assert result.exit_code == 2
        assert message in result.output
        assert "Traceback" not in result.output
        assert tree(tmp_path) == before
        assert not (tmp_path / "sweep" / "analysis").exists()
