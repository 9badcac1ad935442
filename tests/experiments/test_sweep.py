import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pypaddle.cli import app
from pypaddle.errors import ConfigError
from pypaddle.experiments import run_experiment
from pypaddle.experiments.sweep import load_sweep, parse_sweep, prepare_folder, run_sweep

EXPERIMENT = {
    "name": "tiny",
    "model": {"name": "ffn", "hidden_layers": [8]},
    "training": {"epochs": 1, "batch_size": 128, "learning_rate": 0.01},
    "sparsify": {"method": "iterative", "rounds": 1, "retrain_epochs": 1},
    "evaluation": {"plots": False, "checkpoints": False},
}

SWEEP_TOML = """
[sweep]
name = "killed"
workers = 1
[sweep.grid]
seed = [0, 1, 2, 3]
[experiment]
name = "tiny"
[experiment.model]
name = "ffn"
hidden_layers = [8]
[experiment.training]
epochs = 1
batch_size = 64
[experiment.sparsify]
method = "iterative"
rounds = 2
retrain_epochs = 1
[experiment.evaluation]
plots = false
"""

TRIAL = re.compile(r"^[0-9a-f]{12}$")


def finished_trials(out):
    trials = out / "trials"
    return (
        sorted(p.name for p in trials.iterdir() if TRIAL.match(p.name)) if trials.is_dir() else []
    )


class TestSpaces:
    def test_grid_is_the_product(self):
        spec = parse_sweep(
            {
                "sweep": {"grid": {"seed": [0, 1], "model.hidden_layers": [[4], [8, 4], [2]]}},
                "experiment": EXPERIMENT,
            }
        )
        assert len(spec.trials) == 6
        assert spec.trials[4].overrides == {"seed": 1, "model.hidden_layers": [8, 4]}
        assert spec.trials[4].config["model"]["hidden_layers"] == [8, 4]
        assert spec.trials[4].config["seed"] == 1
        assert len({trial.id for trial in spec.trials}) == 6

    def test_random_draws_are_seeded_and_in_range(self):
        table = {
            "sweep": {
                "samples": 5,
                "seed": 7,
                "grid": {"seed": [0, 1]},
                "random": {
                    "training.learning_rate": {"log_uniform": [1e-4, 1e-2]},
                    "training.batch_size": {"int_uniform": [16, 32]},
                    "model.activation": {"choice": ["relu", "tanh"]},
                },
            },
            "experiment": EXPERIMENT,
        }
        first, second = parse_sweep(table), parse_sweep(table)
        assert len(first.trials) == 10
        assert [t.overrides for t in first.trials] == [t.overrides for t in second.trials]
        rates = [t.overrides["training.learning_rate"] for t in first.trials]
        assert all(1e-4 <= rate <= 1e-2 for rate in rates)
        assert len(set(rates)) == 10
        assert {t.overrides["model.activation"] for t in first.trials} <= {"relu", "tanh"}
        assert all(16 <= t.overrides["training.batch_size"] <= 32 for t in first.trials)

    def test_new_table_keys_can_be_swept(self):
        spec = parse_sweep(
            {"sweep": {"grid": {"sparsify.amount": [0.3, 0.6]}}, "experiment": EXPERIMENT}
        )
        assert [t.config["sparsify"]["amount"] for t in spec.trials] == [0.3, 0.6]

    @pytest.mark.parametrize(
        ("sweep", "message"),
        [
            (
                {"grid": {"training.epochs": [1, 0]}},
                r"^trial 1 \(training\.epochs = 0\): training\.epochs = 0 is out of range",
            ),
            ({"grid": {"seed": 3}}, r"sweep\.grid\.seed = 3 must be a non-empty list"),
            ({"random": {"seed": {"normal": [0, 1]}}}, r"sweep\.random\.seed = .* must be one of"),
            ({"random": {"seed": {"uniform": [2, 1]}}}, r"low < high"),
            ({"workers": 0}, r"sweep\.workers = 0 is out of range"),
            ({"grids": {}}, r"sweep\.grids is not a known key"),
        ],
    )
    def test_bad_sweeps(self, sweep, message):
        with pytest.raises(ConfigError, match=message):
            parse_sweep({"sweep": sweep, "experiment": EXPERIMENT})

    def test_base_file(self, tmp_path):
        (tmp_path / "e.toml").write_text('[model]\nname = "ffn"\nhidden_layers = [3]\n')
        (tmp_path / "s.toml").write_text('[sweep]\nbase = "e.toml"\n[sweep.grid]\nseed = [5]\n')
        (trial,) = load_sweep(tmp_path / "s.toml").trials
        assert trial.config["model"]["hidden_layers"] == [3]
        assert trial.config["seed"] == 5

    def test_needs_exactly_one_base(self):
        with pytest.raises(ConfigError, match="needs its base experiment"):
            parse_sweep({"sweep": {}})


class TestRunSweep:
    @pytest.mark.slow
    def test_report_and_resume(self, tmp_path):
        table = {
            "sweep": {"name": "s", "grid": {"seed": [0, 1], "sparsify.amount": [0.5, 0.75]}},
            "experiment": EXPERIMENT,
        }
        results = run_sweep(parse_sweep(table), tmp_path, workers=2, quiet=True)
        assert sorted(r["trial"] for r in results) == [0, 1, 2, 3]
        with (tmp_path / "trials.csv").open() as handle:
            rows = list(csv.DictReader(handle))
        assert [row["status"] for row in rows] == ["done"] * 4
        assert [float(row["density"]) for row in rows] == pytest.approx(
            [0.5, 0.25, 0.5, 0.25], abs=0.02
        )
        with (tmp_path / "rounds.csv").open() as handle:
            assert len(list(csv.DictReader(handle))) == 8
        assert (tmp_path / "report.png").read_bytes()[:4] == b"\x89PNG"
        stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "trials").rglob("result.json")}
        assert len(stamps) == 4
        again = run_sweep(parse_sweep(table), tmp_path, workers=2, quiet=True)
        assert [r["final"] for r in again] == [r["final"] for r in results]
        assert {p: p.stat().st_mtime_ns for p in stamps} == stamps

    def test_folder_of_another_sweep_is_refused(self, tmp_path):
        first = {"sweep": {"grid": {"seed": [0]}}, "experiment": EXPERIMENT}
        prepare_folder(parse_sweep(first), tmp_path)
        (tmp_path / "trials" / "finished").mkdir()
        before = sorted(str(p) for p in tmp_path.rglob("*"))
        other = {"sweep": {"grid": {"seed": [1]}}, "experiment": EXPERIMENT}
        with pytest.raises(ConfigError, match="holds a different sweep"):
            run_sweep(parse_sweep(other), tmp_path, workers=1, quiet=True)
        assert sorted(str(p) for p in tmp_path.rglob("*")) == before

    @pytest.mark.slow
    def test_command(self, tmp_path):
        (tmp_path / "s.toml").write_text(
            '[sweep]\nname = "c"\n[sweep.grid]\nseed = [0]\n[experiment.model]\nname = "ffn"\n'
            "hidden_layers = [4]\n[experiment.training]\nepochs = 1\n[experiment.evaluation]\n"
            "plots = false\n"
        )
        result = CliRunner().invoke(app, ["sweep", str(tmp_path / "s.toml"), "--workers", "1"])
        assert result.exit_code == 0, result.output
        assert "sweep c: 1 of 1 trials done" in result.output
        assert (tmp_path / "sweeps" / "c" / "trials.csv").is_file()
        result = CliRunner().invoke(app, ["sweep", str(tmp_path / "s.toml"), "--backend", "slurm"])
        assert result.exit_code == 2
        assert "backend = 'slurm' is not allowed; allowed values: local, ray" in result.output
        result = CliRunner().invoke(
            app, ["sweep", str(tmp_path / "s.toml"), "--address", "ray://head:10001"]
        )
        assert result.exit_code == 2
        assert "is for a Ray cluster; add --backend ray" in result.output


def _check_complete_files(trial_dir: Path) -> None:
    names = {p.name for p in trial_dir.rglob("*") if p.is_file()}
    assert not any(".tmp" in name for name in names), names
    assert {"config.toml", "metrics.jsonl", "summary.csv", "result.json"} <= names


def _check_complete(trial_dir: Path) -> None:
    _check_complete_files(trial_dir)
    result = json.loads((trial_dir / "result.json").read_text())
    lines = (trial_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines if '"round"' in line][-1]["round"] == 2
    assert result["final"]["round"] == 2


@pytest.mark.slow
def test_killing_a_worker_and_the_sweep_loses_no_finished_trial(tmp_path):
    """SIGKILL a worker mid-trial, then the whole sweep; finished trials survive intact."""
    (tmp_path / "s.toml").write_text(SWEEP_TOML)
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "pypaddle.cli",
        "sweep",
        str(tmp_path / "s.toml"),
        "--out",
        str(out),
        "--quiet",
    ]
    process = subprocess.Popen(command, start_new_session=True, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 180
        partial = []
        while not partial and time.monotonic() < deadline:
            time.sleep(0.05)
            partial = list((out / "trials").glob(".*.partial-*")) if out.is_dir() else []
        assert partial, "no trial started"
        worker = int(partial[0].name.split(".partial-")[1].split("-")[0])
        os.kill(worker, signal.SIGKILL)
        while len(finished_trials(out)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.stderr.close()
    survivors = finished_trials(out)
    assert 2 <= len(survivors) < 4
    for name in survivors:
        _check_complete(out / "trials" / name)
    stamps = {
        name: (out / "trials" / name / "result.json").stat().st_mtime_ns for name in survivors
    }

    results = run_sweep(load_sweep(tmp_path / "s.toml"), out, workers=2, quiet=True)
    assert len(results) == 4
    assert len(finished_trials(out)) == 4
    assert not list((out / "trials").glob(".*"))
    for name, stamp in stamps.items():
        assert (out / "trials" / name / "result.json").stat().st_mtime_ns == stamp
    for name in finished_trials(out):
        _check_complete(out / "trials" / name)


@pytest.mark.slow
def test_ray_backend_runs_the_same_trials(tmp_path):
    pytest.importorskip("ray")
    spec = parse_sweep({"sweep": {"grid": {"seed": [0, 1]}}, "experiment": EXPERIMENT})
    results = run_sweep(spec, tmp_path / "ray", backend="ray", workers=2, quiet=True)
    assert [r["id"] for r in results] == [trial.id for trial in spec.trials]
    # The files Ray's workers made are those of the same trial run here.
    run_experiment(spec.trials[1].config, tmp_path / "here", quiet=True)
    trial_dir = tmp_path / "ray" / "trials" / spec.trials[1].id
    assert (trial_dir / "metrics.jsonl").read_text() == (
        tmp_path / "here" / "metrics.jsonl"
    ).read_text()
    _check_complete_files(trial_dir)
