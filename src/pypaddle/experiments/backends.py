"""Where sweep trials run: a local process pool (default) or Ray tasks.

Both finish a trial the same way: its files are complete in a hidden partial folder, which
is then renamed to ``trials/ID`` in one step. The local pool writes the files itself; a
Ray task runs in a scratch folder on whichever node it lands, returns the files' bytes,
and the driver writes them, so a cluster needs no shared file system.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pypaddle.errors import ConfigError

if TYPE_CHECKING:  # only a type here: sweep imports this module to run its trials
    from pypaddle.experiments.sweep import Trial

    Done = Callable[[Trial, str | None], None]

__all__ = ["BACKENDS", "run_local", "run_ray"]

LOG = logging.getLogger("pypaddle.experiments")
BACKENDS = ("local", "ray")
# A pool breaks when any worker dies (killed, out of memory); every trial running then is
# lost and retried in a new pool, at most this many times each.
MAX_ATTEMPTS = 3


def _partial(trials_dir: Path, trial_id: str) -> Path:
    return trials_dir / f".{trial_id}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _finish(partial: Path, trials_dir: Path, trial_id: str) -> None:
    try:
        os.replace(partial, trials_dir / trial_id)
    except OSError:  # another run of the sweep finished this trial first
        shutil.rmtree(partial, ignore_errors=True)


def run_trial(config: dict[str, Any], trials_dir: str, trial_id: str) -> str:
    """Run one trial into a partial folder and rename it to ``trials_dir/trial_id``."""
    from pypaddle.experiments.run import run_experiment

    folder = Path(trials_dir)
    partial = _partial(folder, trial_id)
    try:
        run_experiment(config, partial, quiet=True)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    _finish(partial, folder, trial_id)
    return trial_id


def trial_files(config: dict[str, Any]) -> dict[str, bytes]:
    """Run one trial in a scratch folder; return its files as ``{relative path: bytes}``."""
    from pypaddle.experiments.run import run_experiment

    with tempfile.TemporaryDirectory(prefix="pypaddle-trial-") as scratch:
        run_experiment(config, scratch, quiet=True)
        root = Path(scratch)
        return {
            str(path.relative_to(root)): path.read_bytes()
            for path in sorted(root.rglob("*"))
            if path.is_file()
        }


def _write_files(files: dict[str, bytes], trials_dir: Path, trial_id: str) -> None:
    partial = _partial(trials_dir, trial_id)
    for name, content in files.items():
        path = partial / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    _finish(partial, trials_dir, trial_id)


def _pool_context() -> Any:
    # Workers start from a clean process, never a fork of this one (its threads and locks
    # would come along). A fork server that has imported torch and pypaddle once starts
    # them fastest; where there is none (Windows, macOS default), spawn.
    if "forkserver" in get_all_start_methods():
        context = get_context("forkserver")
        context.set_forkserver_preload(["pypaddle.experiments.run"])
        return context
    return get_context("spawn")


def run_local(trials: list[Trial], trials_dir: Path, *, workers: int, done: Done) -> None:
    """Run ``trials`` on ``workers`` fresh processes (nothing inherited from this one).

    A trial that raises is reported to ``done`` with the error and not retried; if a
    worker dies, the pool is rebuilt and the unfinished trials run again.
    """
    pending = {trial.id: trial for trial in trials}
    attempts = dict.fromkeys(pending, 0)
    context = _pool_context()
    while pending:
        with ProcessPoolExecutor(min(workers, len(pending)), mp_context=context) as pool:
            futures = {
                pool.submit(run_trial, trial.config, str(trials_dir), trial.id): trial
                for trial in pending.values()
            }
            for trial in futures.values():
                attempts[trial.id] += 1
            for future in as_completed(futures):
                trial = futures[future]
                try:
                    future.result()
                except BrokenProcessPool:
                    if attempts[trial.id] >= MAX_ATTEMPTS:
                        pending.pop(trial.id)
                        done(trial, f"a worker died {MAX_ATTEMPTS} times running it")
                    continue
                except Exception as error:
                    pending.pop(trial.id)
                    done(trial, f"{type(error).__name__}: {error}")
                    continue
                pending.pop(trial.id)
                done(trial, None)
        if pending:
            LOG.warning("a worker died; running %d unfinished trials again", len(pending))


def run_ray(
    trials: list[Trial],
    trials_dir: Path,
    *,
    workers: int,
    done: Done,
    address: str | None = None,
) -> None:
    """Run ``trials`` as Ray tasks of one CPU each (Ray retries a task whose worker died).

    Connects to the cluster at ``address`` (e.g. ``"ray://head:10001"`` or ``"auto"``);
    without one, starts a local Ray with ``workers`` CPUs and stops it afterwards. The
    workers need pypaddle installed (or a Ray ``runtime_env`` that installs it).
    """
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "--backend ray needs Ray, which is not installed; install it with: "
            "pip install 'pypaddle[ray]'"
        ) from None
    started = not ray.is_initialized()
    if started:
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if address is None:
            options["num_cpus"] = workers
        ray.init(address=address, **options)
    try:
        task = ray.remote(num_cpus=1, max_retries=2)(trial_files)
        running = {task.remote(trial.config): trial for trial in trials}
        while running:
            finished, _ = ray.wait(list(running), num_returns=1)
            for reference in finished:
                trial = running.pop(reference)
                try:
                    files = ray.get(reference)
                except Exception as error:
                    cause = getattr(error, "cause", None) or error
                    done(trial, f"{type(cause).__name__}: {cause}")
                    continue
                _write_files(files, trials_dir, trial.id)
                done(trial, None)
    finally:
        if started:
            ray.shutdown()
