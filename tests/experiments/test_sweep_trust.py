"""Issue 16's findings for experiments and sweeps: dying trials, one writer per folder,
names that stay inside their folder, Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pypaddle.cli import app
from pypaddle.errors import ConfigError, ExperimentError
from pypaddle.experiments import backends, run_experiment
from pypaddle.experiments._files import lock_folder, named_folder
from pypaddle.experiments.sweep import load_sweep, parse_sweep, run_sweep

EXPERIMENT = {
    "name": "tiny",
    "model": {"name": "ffn", "hidden_layers": [8]},
    "training": {"epochs": 1, "batch_size": 128, "learning_rate": 0.01},
    "sparsify": {"method": "iterative", "rounds": 1, "retrain_epochs": 1},
    "evaluation": {"plots": False, "checkpoints": False},
}
TRIAL = re.compile(r"^[0-9a-f]{12}$")
SRC = str(Path(__file__).resolve().parents[2] / "src")


def finished_trials(out: Path) -> list[str]:
    trials = out / "trials"
    if not trials.is_dir():
        return []
    return sorted(path.name for path in trials.iterdir() if TRIAL.match(path.name))


def files_of(folder: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _dies_on_seed_0(config, trials_dir, trial_id, device=None):
    """A trial function whose process is killed whenever it runs the trial of seed 0."""
    if config["seed"] == 0:
        os.kill(os.getpid(), signal.SIGKILL)
    return backends.run_trial(config, trials_dir, trial_id, device)


def _python(script: str, *args: str) -> subprocess.Popen:
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, *sys.path])}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        env=environment,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


def _wait_for(condition, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


@pytest.mark.slow
class TestDyingTrial:
    def test_only_the_dying_trial_fails(self, tmp_path, monkeypatch):
        """Finding 2: a worker killed each time it runs trial 0 fails trial 0 alone."""
        monkeypatch.setattr(backends, "run_trial", _dies_on_seed_0)
        spec = parse_sweep(
            {"sweep": {"grid": {"seed": [0, 1, 2, 3, 4, 5]}}, "experiment": EXPERIMENT}
        )
        with pytest.raises(ExperimentError, match=r"^1 of 6 trials failed") as error:
            run_sweep(spec, tmp_path, workers=2, quiet=True)
        first = spec.trials[0]
        assert f"trial {first.id}: its process died 3 times (killed by SIGKILL)" in str(error.value)
        assert finished_trials(tmp_path) == sorted(trial.id for trial in spec.trials[1:])
        assert not list((tmp_path / "trials").glob(".*"))
        rows = (tmp_path / "trials.csv").read_text().splitlines()
        assert sum(",done," in row or row.endswith(",done") for row in rows) == 5


class TestNames:
    @pytest.mark.parametrize(
        "name",
        [
            "../../x",
            "..",
            "../x",
            "a/../../b",
            "/tmp/x",
            "/",
            "",
            " ",
            ".",
            "..\\x",
            "C:\\x",
            "C:x",
            "\\\\server\\share",
            "a\x00b",
        ],
    )
    def test_names_that_leave_the_folder_are_refused(self, tmp_path, name):
        with pytest.raises(
            ConfigError, match=r"give a plain name .* or choose the folder with --out"
        ):
            named_folder(tmp_path, name, what="experiment")

    @pytest.mark.parametrize("name", ["x", "tiny-1", "a_b", "v1.2", "group/x", "..x", "x.."])
    def test_names_inside_the_folder(self, tmp_path, name):
        assert named_folder(tmp_path, name, what="sweep") == tmp_path / name

    @pytest.mark.parametrize("name", ["../../outside", "/tmp/pypaddle-absolute-name"])
    def test_run_without_out_writes_nothing_outside(self, tmp_path, name):
        """Finding 4, for run and sweep alike."""
        home = tmp_path / "a" / "b"
        home.mkdir(parents=True)
        (home / "e.toml").write_text(
            f'name = "{name}"\n[model]\nname = "ffn"\nhidden_layers = [4]\n'
            "[training]\nepochs = 1\n[evaluation]\nplots = false\n"
        )
        (home / "s.toml").write_text(
            f'[sweep]\nname = "{name}"\nbase = "e.toml"\n[sweep.grid]\nseed = [0]\n'
        )
        for command, file in (("run", "e.toml"), ("sweep", "s.toml")):
            result = CliRunner().invoke(app, [command, str(home / file)])
            assert result.exit_code == 2, result.output
            assert f"name {name!r} would write outside" in result.output
            assert "Traceback" not in result.output
        assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "b", "e.toml", "s.toml"]
        assert not Path("/tmp/pypaddle-absolute-name").exists()


HOLD = """
    import sys, time
    from pypaddle.experiments._files import lock_folder
    lock = lock_folder(sys.argv[1])
    print("locked", flush=True)
    time.sleep(600)
"""


class TestOneWriter:
    def test_a_second_writer_is_refused_and_a_killed_one_frees_the_folder(self, tmp_path):
        """Finding 3: a folder in use is refused and left as it is; kill -9 frees it."""
        out = tmp_path / "out"
        run_experiment(EXPERIMENT, out, quiet=True)
        before = files_of(out)
        holder = _python(HOLD, str(out))
        try:
            assert holder.stdout.readline() == "locked\n"
            other = {**EXPERIMENT, "seed": 7}
            for config in (EXPERIMENT, other):
                with pytest.raises(ConfigError, match=rf"in use .*\(process {holder.pid}\)"):
                    run_experiment(config, out, quiet=True)
            spec = parse_sweep({"sweep": {"grid": {"seed": [0]}}, "experiment": EXPERIMENT})
            with pytest.raises(ConfigError, match="is in use by another pypaddle"):
                run_sweep(spec, out, quiet=True)
            assert files_of(out) == before
        finally:
            os.killpg(holder.pid, signal.SIGKILL)
            holder.wait()
            holder.stdout.close()
            holder.stderr.close()
        rounds = run_experiment(EXPERIMENT, out, quiet=True)
        assert files_of(out)["metrics.jsonl"] == before["metrics.jsonl"]
        assert len(rounds) == 2

    def test_the_lock_is_released_and_can_be_taken_again(self, tmp_path):
        with lock_folder(tmp_path / "x") as lock:
            assert lock.held
            with pytest.raises(ConfigError, match="in use"):
                lock_folder(tmp_path / "x")
        assert not lock.held
        lock_folder(tmp_path / "x").release()
        assert list(tmp_path.iterdir()) == [tmp_path / "x"]
        assert list((tmp_path / "x").iterdir()) == []

    def test_run_releases_its_folder(self, tmp_path):
        run_experiment(EXPERIMENT, tmp_path, quiet=True)
        lock_folder(tmp_path).release()
        with pytest.raises(ConfigError, match="different experiment"):
            run_experiment({**EXPERIMENT, "seed": 3}, tmp_path, quiet=True)
        lock_folder(tmp_path).release()


SWEEP_TOML = """
[sweep]
name = "busy"
workers = 1
[sweep.grid]
seed = [0, 1, 2, 3]
[experiment]
name = "tiny"
[experiment.model]
name = "ffn"
hidden_layers = [8]
[experiment.training]
epochs = 2
batch_size = 64
[experiment.sparsify]
method = "iterative"
rounds = 2
retrain_epochs = 1
[experiment.evaluation]
plots = false
"""

SWEEP = """
    import sys
    from pypaddle.experiments.sweep import run_sweep
    run_sweep(sys.argv[1], sys.argv[2], workers=1, quiet=True)
"""


@pytest.mark.slow
def test_a_second_sweep_keeps_the_running_sweeps_trials(tmp_path):
    """Finding 3: a second sweep into a running sweep's folder deletes nothing; after the
    first is killed (its trial process dies with it), the folder resumes cleanly."""
    (tmp_path / "s.toml").write_text(SWEEP_TOML)
    out = tmp_path / "out"
    first = _python(SWEEP, str(tmp_path / "s.toml"), str(out))
    try:
        _wait_for(lambda: list((out / "trials").glob(".*.partial-*")) if out.is_dir() else [])
        partial = next((out / "trials").glob(".*.partial-*"))
        worker = int(partial.name.split(".partial-")[1].split("-")[0])
        with pytest.raises(
            ConfigError, match=rf"in use by another pypaddle sweep \(process {first.pid}\)"
        ):
            run_sweep(load_sweep(tmp_path / "s.toml"), out, workers=1, quiet=True)
        # The partial trial was not deleted: it is still running or has finished.
        trial_id = partial.name[1:13]
        assert partial.is_dir() or (out / "trials" / trial_id).is_dir()
        os.kill(first.pid, signal.SIGKILL)  # the sweep alone, not its trial process
        first.wait()
        _wait_for(lambda: _gone(worker), 30)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
        first.stdout.close()
        first.stderr.close()
    results = run_sweep(load_sweep(tmp_path / "s.toml"), out, workers=2, quiet=True)
    assert len(results) == 4
    assert all(result["final"]["round"] == 2 for result in results)
    assert not list((out / "trials").glob(".*"))


class TestInterrupt:
    def test_ctrl_c_stops_at_once_and_keeps_finished_trials(self, tmp_path, monkeypatch):
        """Ctrl-C while the second of three trials runs: it stops, nothing new starts."""
        real_wait, calls = backends.wait, []

        def interrupted_wait(objects):
            calls.append(len(objects))
            if len(calls) == 2:
                raise KeyboardInterrupt
            return real_wait(objects)

        monkeypatch.setattr(backends, "wait", interrupted_wait)
        spec = parse_sweep({"sweep": {"grid": {"seed": [0, 1, 2]}}, "experiment": EXPERIMENT})
        with pytest.raises(KeyboardInterrupt, match=r"1 of 3 trials finished and kept"):
            run_sweep(spec, tmp_path, workers=1, quiet=True)
        assert len(calls) == 2
        assert finished_trials(tmp_path) == [spec.trials[0].id]
        assert not list((tmp_path / "trials").glob(".*"))
        assert not (tmp_path / "trials.csv").exists()
        lock_folder(tmp_path).release()  # the interrupted sweep let go of its folder

    @pytest.mark.slow
    def test_sigint_to_the_command(self, tmp_path):
        """Ctrl-C in a terminal: SIGINT to the sweep's whole process group."""
        (tmp_path / "s.toml").write_text(SWEEP_TOML)
        out = tmp_path / "out"
        command = [sys.executable, "-m", "pypaddle.cli", "sweep", str(tmp_path / "s.toml")]
        environment = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, *sys.path])}
        process = subprocess.Popen(
            [*command, "--out", str(out), "--quiet"],
            env=environment,
            start_new_session=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            _wait_for(lambda: finished_trials(out))
            os.killpg(process.pid, signal.SIGINT)
            _, stderr = process.communicate(timeout=120)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.communicate()
        assert process.returncode == 130, stderr
        assert "Traceback" not in stderr
        finished = finished_trials(out)
        assert 1 <= len(finished) < 4
        assert (
            f"interrupted: sweep busy stopped: {len(finished)} of 4 trials finished and kept"
            in stderr
        )
        assert not list((out / "trials").glob(".*"))
        for name in finished:
            assert (out / "trials" / name / "result.json").is_file()
