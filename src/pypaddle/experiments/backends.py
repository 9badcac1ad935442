"""Where sweep trials run: a local process pool (default) or Ray tasks.

Both finish a trial the same way: its files are complete in a hidden partial folder, which
is then renamed to ``trials/ID`` in one step. The local pool writes the files itself; a
Ray task runs in a scratch folder on whichever node it lands, returns the files' bytes,
and the driver writes them, so a cluster needs no shared file system.

GPUs: the local pool spreads the trials that ask for a GPU without naming one
(``training.device = "auto"`` or ``"cuda"``) over the visible GPUs, trial ``i`` on
``cuda:(i mod n)`` (see :func:`~pypaddle.experiments.devices.spread_device`). A Ray task
asks for ``cpus_per_trial`` CPUs and ``gpus_per_trial`` GPUs (fractions share a GPU;
Ray then shows the task only its GPUs); with no GPU asked for, an ``auto`` trial runs
on the CPU rather than on a GPU Ray did not give it.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import signal
import tempfile
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing import get_all_start_methods, get_context
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from pypaddle._core import extras
from pypaddle.errors import ConfigError
from pypaddle.experiments.devices import placement, spread_device, visible_gpus
from pypaddle.experiments.trials import Trial

Done = Callable[[Trial, str | None], None]

__all__ = ["BACKENDS", "check_trials", "local_devices", "ray_devices", "run_local", "run_ray"]

LOG = logging.getLogger("pypaddle.experiments")
BACKENDS = ("local", "ray")
"""Where a sweep's trials can run: a local process pool or Ray tasks."""
# A trial whose process dies (killed, out of memory) is run again, at most this many
# times in all; the other trials are not affected.
MAX_ATTEMPTS = 3

_DIED: Any = object()
_BUSY: Any = object()


def _partial(trials_dir: Path, trial_id: str) -> Path:
    return trials_dir / f".{trial_id}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _finish(partial: Path, trials_dir: Path, trial_id: str) -> None:
    try:
        os.replace(partial, trials_dir / trial_id)
    except OSError:  # another run of the sweep finished this trial first
        shutil.rmtree(partial, ignore_errors=True)


def _device_of(trial: Trial, device: str | None) -> str:
    """The device a trial asks for: ``device`` (given for the whole sweep) or its own."""
    return device if device is not None else str(trial.config["training"]["device"])


def local_devices(trials: list[Trial], device: str | None = None) -> dict[str, str | None]:
    """The device each trial of the local pool runs on (None: its config's own), by id:
    those asking for an unnamed GPU spread over the visible ones by their index."""
    gpus = visible_gpus()
    chosen: dict[str, str | None] = {}
    for trial in trials:
        wanted = _device_of(trial, device)
        chosen[trial.id] = spread_device(wanted, trial.index, gpus) or device
    return chosen


def ray_devices(
    trials: list[Trial],
    gpus_per_trial: float,
    device: str | None = None,
    *,
    address: str | None = None,
) -> dict[str, str | None]:
    """The device each Ray trial runs on (None: its config's own), by id. Without GPUs
    asked for, an ``auto`` trial runs on the CPU, and a trial that names a GPU is refused
    (a ConfigError before any starts): Ray would not give it one. GPUs asked for from a
    local Ray (no ``address``) on a machine without any are refused too: no task could
    ever start."""
    if gpus_per_trial > 0 and address is None and visible_gpus() == 0:
        raise ConfigError(
            f"sweep.gpus_per_trial = {gpus_per_trial}, but this machine has no GPU for a "
            "local Ray (torch sees none); give the --address of a Ray cluster with GPUs, or "
            "set sweep.gpus_per_trial = 0"
        )
    chosen: dict[str, str | None] = {}
    for trial in trials:
        wanted = _device_of(trial, device)
        if gpus_per_trial == 0 and wanted.startswith("cuda"):
            raise ConfigError(
                f"trial {trial.index} trains on device {wanted!r}, but sweep.gpus_per_trial "
                "= 0 asks Ray for no GPU per trial; set sweep.gpus_per_trial (e.g. 1, or "
                "0.5 for two trials per GPU), or use device 'auto' or 'cpu'"
            )
        if gpus_per_trial > 0 and wanted.startswith("cuda:") and wanted != "cuda:0":
            raise ConfigError(
                f"trial {trial.index} trains on device {wanted!r}, but a Ray task sees only "
                "the GPUs Ray gives it, numbered from cuda:0; use device 'cuda' or 'auto' "
                "(Ray chooses the GPU)"
            )
        chosen[trial.id] = "cpu" if gpus_per_trial == 0 and wanted == "auto" else device
    return chosen


def check_trials(trials: list[Trial], device: str | None = None) -> None:
    """Check every trial's device, precision and threads against this machine, as the
    local pool will run them (a ConfigError before any trial starts)."""
    devices = local_devices(trials, device)
    seen = set()
    for trial in trials:
        training = trial.config["training"]
        wanted = devices[trial.id] or training["device"]
        key = (wanted, training["precision"], training["threads"])
        if key not in seen:
            seen.add(key)
            try:
                placement(*key)
            except ConfigError as error:
                raise ConfigError(f"trial {trial.index}: {error}") from None


def run_trial(
    config: dict[str, Any], trials_dir: str, trial_id: str, device: str | None = None
) -> str:
    """Run one trial into a partial folder and rename it to ``trials_dir/trial_id``; on
    ``device`` if given (instead of its config's)."""
    from pypaddle.experiments.run import run_experiment

    folder = Path(trials_dir)
    partial = _partial(folder, trial_id)
    try:
        run_experiment(config, partial, quiet=True, device=device)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    _finish(partial, folder, trial_id)
    return trial_id


def trial_files(config: dict[str, Any], device: str | None = None) -> dict[str, bytes]:
    """Run one trial in a scratch folder (on ``device`` if given); return its files as
    ``{relative path: bytes}``."""
    from pypaddle.experiments.run import run_experiment

    with tempfile.TemporaryDirectory(prefix="pypaddle-trial-") as scratch:
        run_experiment(config, scratch, quiet=True, device=device)
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


def _exit_with_parent(lifeline: Connection) -> None:
    # The parent never writes to the lifeline; it ends (EOF) when the parent dies, killed
    # or not. A trial must not outlive its sweep: the next run of the sweep would take the
    # folder's lock while this trial still writes into it.
    with contextlib.suppress(EOFError, OSError):
        lifeline.recv_bytes()
    os._exit(1)


def _worker(
    run: Callable[..., str],
    tasks: Connection,
    results: Connection,
    lifeline: Connection,
) -> None:
    """A worker process: run the trials it is sent, one at a time, and answer each with
    None (finished) or the error's text, until its task pipe closes."""
    # Ctrl-C reaches every process of the terminal's group; the sweep decides what stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(lifeline,), daemon=True).start()
    while True:
        try:
            config, trials_dir, trial_id, device = tasks.recv()
        except EOFError:
            return
        try:
            run(config, trials_dir, trial_id, device)
        except Exception as error:
            results.send(f"{type(error).__name__}: {error}")
        else:
            results.send(None)


@dataclass
class _Worker:
    """A worker process, its pipes, and the trial it runs (None while idle)."""

    process: Any
    tasks: Connection
    results: Connection
    lifeline: Connection
    trial: Trial | None = None

    def give(self, trial: Trial, trials_dir: Path, device: str | None = None) -> None:
        self.trial = trial
        self.tasks.send((trial.config, str(trials_dir), trial.id, device))

    def outcome(self) -> Any:
        """The answer of a busy worker (None or an error's text), _DIED or _BUSY."""
        if self.results.poll():
            try:
                return self.results.recv()
            except (EOFError, OSError):
                return _DIED
        return _BUSY if self.process.is_alive() else _DIED

    def close(self) -> None:
        for connection in (self.tasks, self.results, self.lifeline):
            connection.close()


def _start_worker(context: Any, run: Callable[..., str]) -> _Worker:
    task_reader, task_writer = context.Pipe(duplex=False)
    result_reader, result_writer = context.Pipe(duplex=False)
    lifeline_reader, lifeline_writer = context.Pipe(duplex=False)
    process = context.Process(
        target=_worker,
        args=(run, task_reader, result_writer, lifeline_reader),
        name="pypaddle-trial-worker",
    )
    process.start()
    for child_end in (task_reader, result_writer, lifeline_reader):
        child_end.close()
    return _Worker(process, task_writer, result_reader, lifeline_writer)


def _death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit status {exitcode}"


def _remove_partials(trials_dir: Path, trial: Trial, pid: int | None) -> None:
    for partial in trials_dir.glob(f".{trial.id}.partial-{pid}-*"):
        shutil.rmtree(partial, ignore_errors=True)


def run_local(
    trials: list[Trial],
    trials_dir: Path,
    *,
    workers: int,
    done: Done,
    device: str | None = None,
) -> None:
    """Run ``trials`` on ``workers`` fresh processes (nothing inherited from this one).

    Each trial runs on ``device`` if given, else on its config's; trials that ask for a
    GPU without naming one are spread over the visible GPUs (:func:`local_devices`).

    A trial that raises is reported to ``done`` with the error and not retried. A trial
    whose process dies (killed, out of memory) is run again, on its own, in a new process,
    up to :data:`MAX_ATTEMPTS` times, then reported as failed; the other trials go on. On
    ``KeyboardInterrupt`` (Ctrl-C) the processes are stopped at once, the running trials'
    partial folders removed, no new trial starts, and the interrupt is raised again.
    """
    waiting = deque(trials)
    devices = local_devices(trials, device)
    attempts = dict.fromkeys((trial.id for trial in trials), 0)
    pool: list[_Worker] = []
    context = _pool_context()
    # Looked up here, not in the worker: the function is sent to it by its name.
    run = run_trial
    try:
        while True:
            idle = [worker for worker in pool if worker.trial is None]
            while waiting and len(pool) < workers:
                pool.append(_start_worker(context, run))
                idle.append(pool[-1])
            for worker in idle[: len(waiting)]:
                given = waiting.popleft()
                attempts[given.id] += 1
                worker.give(given, trials_dir, devices[given.id])
            busy = [worker for worker in pool if worker.trial is not None]
            if not busy:
                break
            wait([w.results for w in busy] + [w.process.sentinel for w in busy])
            for worker in busy:
                trial, outcome = worker.trial, worker.outcome()
                if trial is None or outcome is _BUSY:
                    continue
                worker.trial = None
                if outcome is not _DIED:
                    done(trial, outcome)
                    continue
                worker.process.join()
                worker.close()
                pool.remove(worker)
                _remove_partials(trials_dir, trial, worker.process.pid)
                how = _death(worker.process.exitcode)
                if (trials_dir / trial.id).is_dir():  # it died after finishing the trial
                    done(trial, None)
                elif attempts[trial.id] >= MAX_ATTEMPTS:
                    done(trial, f"its process died {MAX_ATTEMPTS} times ({how}) running it")
                else:
                    LOG.warning(
                        "trial %d (%s): its process died (%s); running it again",
                        trial.index,
                        trial.id,
                        how,
                    )
                    waiting.appendleft(trial)
    except BaseException:
        # An error or Ctrl-C: stop every process now and remove what they left.
        for worker in pool:
            worker.process.kill()
        for worker in pool:
            worker.process.join()
            if worker.trial is not None:
                _remove_partials(trials_dir, worker.trial, worker.process.pid)
        raise
    finally:
        for worker in pool:
            worker.close()  # an idle worker exits when its task pipe closes
        for worker in pool:
            worker.process.join()


def run_ray(
    trials: list[Trial],
    trials_dir: Path,
    *,
    workers: int,
    done: Done,
    address: str | None = None,
    cpus_per_trial: float = 1.0,
    gpus_per_trial: float = 0.0,
    device: str | None = None,
) -> None:
    """Run ``trials`` as Ray tasks (Ray retries a task whose worker died), each asking for
    ``cpus_per_trial`` CPUs and ``gpus_per_trial`` GPUs (fractions allowed).

    Connects to the cluster at ``address`` (e.g. ``"ray://head:10001"`` or ``"auto"``);
    without one, starts a local Ray with ``workers`` CPUs and stops it afterwards. The
    workers need pypaddle installed (or a Ray ``runtime_env`` that installs it). Each
    trial runs on ``device`` if given, else on its config's (see :func:`ray_devices`).
    """
    devices = ray_devices(trials, gpus_per_trial, device, address=address)
    extras.require("ray", what="--backend ray")
    import ray

    started = not ray.is_initialized()
    if started:
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if address is None:
            # Room for ``workers`` trials at once, and at least for one.
            options["num_cpus"] = max(math.ceil(workers * cpus_per_trial), 1)
        ray.init(address=address, **options)
    try:
        task = ray.remote(num_cpus=cpus_per_trial, num_gpus=gpus_per_trial, max_retries=2)(
            trial_files
        )
        running = {task.remote(trial.config, devices[trial.id]): trial for trial in trials}
        while running:
            try:
                finished, _ = ray.wait(list(running), num_returns=1)
            except KeyboardInterrupt:
                for reference in running:
                    ray.cancel(reference, force=True)
                raise
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
