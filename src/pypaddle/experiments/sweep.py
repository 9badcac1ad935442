"""Many experiments: grid and random spaces over any config key, run crash-safe and resumable.

A sweep file names a base experiment and the keys to vary, by their dotted path::

    [sweep]
    name = "priors"
    base = "experiment.toml"       # or an inline [experiment] table
    samples = 2                    # random draws per grid point (with [sweep.random])
    seed = 0                       # seed of the random draws

    [sweep.grid]
    "model.structure.generator" = ["watts_strogatz", "erdos_renyi"]
    seed = [0, 1]

    [sweep.random]
    "training.learning_rate" = { log_uniform = [1e-4, 1e-2] }

Every trial's config is validated before the first one starts. A trial is identified by a
hash of its resolved config and runs in a hidden ``trials/.ID.partial-*`` folder that is
renamed to ``trials/ID`` only when it finished, so ``trials/ID`` exists if and only if the
trial is complete: re-running the sweep skips it, and a killed sweep (or worker) loses no
finished trial and leaves no half-written file in one. :mod:`pypaddle.experiments.backends`
runs the trials on a local process pool or as Ray tasks.
"""

from __future__ import annotations

import copy
import itertools
import json
import logging
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pypaddle._core.checks import check_real
from pypaddle._core.files import atomic_write_text
from pypaddle._core.seeds import check_seed
from pypaddle.errors import ConfigError, ExperimentError
from pypaddle.experiments._files import check_output_folder, lock_folder
from pypaddle.experiments.config import parse_config, read_toml, to_toml
from pypaddle.experiments.options import option, parse_options
from pypaddle.experiments.trials import SWEEP_NAME, SweepSpec, Trial

if TYPE_CHECKING:
    from pypaddle.experiments.sweep_report import SweepResults

__all__ = ["SweepSpec", "Trial", "load_sweep", "parse_sweep", "run_sweep"]

LOG = logging.getLogger("pypaddle.experiments")
DISTRIBUTIONS = ("choice", "uniform", "log_uniform", "int_uniform")
# Every trial's config is built and checked up front; more than this is a mistake.
MAX_TRIALS = 100_000


@dataclass(frozen=True)
class _SweepOptions:
    name: str = option(
        "sweep",
        help="the sweep's name, in its progress and sweep.toml (a folder of a sweep with "
        "another name or other trials is refused)",
    )
    base: str | None = option(None, path=True, help="the base experiment's TOML file")
    samples: int = option(1, minimum=1, help="draws of [sweep.random] per grid point")
    seed: int = option(0, minimum=0, check=check_seed, help="seed of the [sweep.random] draws")
    workers: int = option(
        2,
        minimum=1,
        help="trials run at once (the local pool; a local Ray gets this many CPUs); "
        "--workers overrides it",
    )
    cpus_per_trial: float = option(1.0, above=0.0, help="CPUs a Ray task asks for per trial")
    gpus_per_trial: float = option(
        0.0,
        minimum=0.0,
        help="GPUs a Ray task asks for per trial; a fraction (0.5) shares a GPU between trials",
    )
    grid: dict = option(
        {}, help="dotted config key -> list of values; every combination is a grid point"
    )
    random: dict = option(
        {}, help="dotted config key -> one distribution, drawn samples times per grid point"
    )


def _set_dotted(table: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    for part in parts[:-1]:
        table = table.setdefault(part, {})
        if not isinstance(table, dict):
            raise ConfigError(f"sweep key {key!r}: {part!r} is not a table in the base config")
    table[parts[-1]] = value


def _bounds(values: Any, key: str, kind: str) -> tuple[float, float]:
    """The [low, high] of a random distribution, checked: numbers, finite, low < high."""
    where = f"sweep.random.{key}.{kind}"
    if not isinstance(values, list) or len(values) != 2:
        raise ConfigError(f"{where} = {values!r} must be [low, high], low < high")
    low: float
    high: float
    if kind == "int_uniform":
        low, high = (_integer(value, f"{where}[{i}]") for i, value in enumerate(values))
    else:
        low, high = (check_real(value, f"{where}[{i}]") for i, value in enumerate(values))
    if not low < high:
        raise ConfigError(f"{where} = {values!r} must be [low, high], low < high")
    if kind == "log_uniform" and low <= 0:
        raise ConfigError(f"{where} needs low > 0, got {low}")
    return low, high


def _integer(value: Any, name: str) -> int:
    """A TOML integer: an int (not a bool) in the 64-bit range."""
    if isinstance(value, bool) or not isinstance(value, int) or not -(2**63) <= value < 2**63:
        raise ConfigError(f"{name} must be an int in [-2**63, 2**63), got {value!r}")
    return value


def _check_distribution(spec: Any, key: str) -> None:
    """Refuse a random distribution before anything is drawn from it."""
    if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in DISTRIBUTIONS:
        raise ConfigError(
            f"sweep.random.{key} = {spec!r} must be one of "
            + ", ".join(f"{{ {name} = [...] }}" for name in DISTRIBUTIONS)
        )
    ((kind, values),) = spec.items()
    if kind == "choice":
        if not isinstance(values, list) or not values:
            raise ConfigError(f"sweep.random.{key}.choice must be a non-empty list")
    else:
        _bounds(values, key, kind)


def _draw(spec: dict[str, Any], key: str, rng: np.random.Generator) -> Any:
    ((kind, values),) = spec.items()
    if kind == "choice":
        return values[int(rng.integers(len(values)))]
    low, high = _bounds(values, key, kind)
    if kind == "uniform":
        return float(rng.uniform(low, high))
    if kind == "int_uniform":
        return int(rng.integers(int(low), int(high), endpoint=True))
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def parse_sweep(table: dict[str, Any], *, base: Path | None = None) -> SweepSpec:
    """Validate a sweep (as read from TOML) and expand it into trials; nothing runs.

    Examples
    --------
    >>> spec = parse_sweep({
    ...     "sweep": {"grid": {"seed": [0, 1], "training.epochs": [1, 2]}},
    ...     "experiment": {"model": {"name": "ffn", "hidden_layers": [8]}}})
    >>> [trial.overrides for trial in spec.trials][:2]
    [{'seed': 0, 'training.epochs': 1}, {'seed': 0, 'training.epochs': 2}]
    >>> parse_sweep({"sweep": {"grid": {"training.epoch": [1]}}, "experiment": {}})
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pypaddle.errors.ConfigError: trial 0 (training.epoch = 1): training.epoch is not a known key; allowed keys: batch_size, device, epochs, ...
    """  # noqa: E501
    unknown = set(table) - {"sweep", "experiment"}
    if unknown:
        raise ConfigError(
            f"{sorted(unknown)[0]} is not a known sweep table; allowed: [sweep], [experiment]"
        )
    options = parse_options(_SweepOptions, table.get("sweep", {}), "sweep", base=base)
    if (options.base is None) == ("experiment" not in table):
        raise ConfigError(
            "a sweep needs its base experiment: sweep.base = 'file.toml' or an [experiment] "
            "table (exactly one of them)"
        )
    experiment_base: Path | None
    if options.base is not None:
        experiment, experiment_base = read_toml(options.base), Path(options.base).parent
    else:
        experiment, experiment_base = table["experiment"], base
    for key, values in options.grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"sweep.grid.{key} = {values!r} must be a non-empty list of values")
    for key, spec in options.random.items():
        _check_distribution(spec, key)
    rng = np.random.default_rng(options.seed)
    samples = options.samples if options.random else 1
    count = math.prod(len(values) for values in options.grid.values()) * samples
    if count > MAX_TRIALS:
        raise ConfigError(
            f"this sweep has {count} trials (grid points x samples); at most {MAX_TRIALS} "
            "are allowed in one sweep: split it or sample the space with [sweep.random]"
        )
    trials: list[Trial] = []
    for point in itertools.product(*options.grid.values()):
        for _ in range(samples):
            overrides = dict(zip(options.grid, point))
            overrides.update({key: _draw(spec, key, rng) for key, spec in options.random.items()})
            config = copy.deepcopy(experiment)
            for key, value in overrides.items():
                # a copy: a later key may edit inside it ("model.structure", then
                # "model.structure.order"), which must not change the grid's values
                _set_dotted(config, key, copy.deepcopy(value))
            try:
                resolved = parse_config(config, base=experiment_base).to_dict()
            except ConfigError as error:
                where = ", ".join(f"{key} = {value!r}" for key, value in overrides.items())
                raise ConfigError(f"trial {len(trials)} ({where}): {error}") from None
            trials.append(Trial(len(trials), overrides, resolved))
    identity = to_toml(
        {
            "name": options.name,
            "trials": {trial.id: json.dumps(trial.overrides) for trial in trials},
        }
    )
    return SweepSpec(
        options.name,
        options.workers,
        trials,
        [*options.grid, *options.random],
        identity,
        cpus_per_trial=options.cpus_per_trial,
        gpus_per_trial=options.gpus_per_trial,
    )


def load_sweep(path: str | Path) -> SweepSpec:
    """Read and validate a sweep TOML file (relative file names: from its folder)."""
    path = Path(path)
    return parse_sweep(read_toml(path), base=path.resolve().parent)


def prepare_folder(spec: SweepSpec, out_dir: Path) -> list[Trial]:
    """Check and claim the sweep folder; return the trials that still have to run.

    Leftover partial folders of killed trials are removed, so the caller must hold the
    folder's lock (:func:`~pypaddle.experiments._files.lock_folder`): a partial folder
    of a sweep that is still running is not a leftover.
    """
    check_output_folder(
        out_dir,
        SWEEP_NAME,
        spec.identity,
        what="sweep",
        differs=lambda old: "its trials or name differ",
    )
    trials_dir = out_dir / "trials"
    trials_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / SWEEP_NAME, spec.identity)
    for partial in trials_dir.glob(".*.partial-*"):
        shutil.rmtree(partial, ignore_errors=True)
    return [trial for trial in spec.trials if not (trials_dir / trial.id).is_dir()]


def sweep_trials(
    spec: SweepSpec,
    out_dir: Path,
    run: Callable[[list[Trial], Path], None],
) -> list[dict[str, Any]]:
    """Run the unfinished trials of ``spec`` with ``run`` and return every trial's result.

    The caller holds the folder's lock (see :func:`prepare_folder`).
    """
    pending = prepare_folder(spec, out_dir)
    if pending:
        run(pending, out_dir / "trials")
    return collect(spec, out_dir)


def collect(spec: SweepSpec, out_dir: Path) -> list[dict[str, Any]]:
    """The finished trials' results (``result.json``), each with its overrides and id."""
    results = []
    for trial in spec.trials:
        path = out_dir / "trials" / trial.id / "result.json"
        if path.is_file():
            result = json.loads(path.read_text())
            results.append({"trial": trial.index, "id": trial.id, **trial.overrides, **result})
    return results


def run_sweep(
    sweep: SweepSpec | str | Path,
    out_dir: str | Path,
    *,
    backend: str = "local",
    address: str | None = None,
    workers: int | None = None,
    quiet: bool = False,
    device: str | None = None,
) -> SweepResults:
    """Run every unfinished trial of a sweep, then write its report; return the results
    (:class:`~pypaddle.experiments.sweep_report.SweepResults`: a list of the finished
    trials' results that prints, and shows in Jupyter, as a table with the analysis).

    ``backend`` is ``"local"`` (a pool of ``workers`` processes, the sweep's
    ``sweep.workers`` by default) or ``"ray"`` (Ray tasks; ``address`` of an existing
    cluster, or a local Ray with ``workers`` CPUs). Writes ``trials.csv`` (one row per
    trial, with the graph measures of its structures), ``rounds.csv`` (one row per trial
    and round), ``report.png`` and ``analysis/`` (accuracy against the measures: see
    :mod:`pypaddle.experiments.analysis`) into ``out_dir``. A failed trial is reported
    (``status`` in ``trials.csv``) and run again when the sweep is re-run; the others go on.
    The folder is locked while the sweep runs: a second sweep (or run) into it is refused.
    On Ctrl-C the running trials stop, no new one starts, and ``KeyboardInterrupt`` is
    raised again with a message saying how many trials finished (they are kept;
    re-running the sweep runs the others).

    ``device`` (``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"``) replaces every trial's
    ``training.device``. The local pool spreads trials that ask for a GPU over the visible
    ones; Ray tasks ask for ``sweep.cpus_per_trial`` CPUs and ``sweep.gpus_per_trial``
    GPUs. Devices are checked (this machine's, for the local pool) before any trial starts.
    """
    from pypaddle.experiments import backends
    from pypaddle.experiments._progress import rich_console, rich_table
    from pypaddle.experiments.analysis import ANALYSIS_FOLDER
    from pypaddle.experiments.sweep_report import write_sweep_report

    spec = sweep if isinstance(sweep, SweepSpec) else load_sweep(sweep)
    if backend not in backends.BACKENDS:
        raise ConfigError(f"backend = {backend!r} is not allowed; allowed values: local, ray")
    if address is not None and backend != "ray":
        raise ConfigError(f"address = {address!r} is for a Ray cluster; add --backend ray")
    workers = spec.workers if workers is None else workers
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers = {workers!r} must be an int >= 1")
    if device is not None:
        from pypaddle.experiments.devices import check_device_name

        check_device_name(device, "device")
    if backend == "ray":
        backends.ray_devices(spec.trials, spec.gpus_per_trial, device, address=address)
    else:
        backends.check_trials(spec.trials, device)
    out_dir = Path(out_dir)
    console = rich_console(quiet)
    failures: dict[str, str] = {}

    def run(pending: list[Trial], trials_dir: Path) -> None:
        skipped = len(spec.trials) - len(pending)
        if console is not None and skipped:
            console.print(f"{skipped} of {len(spec.trials)} trials already finished: skipped")
        bar = None
        if console is not None:
            from rich.progress import Progress

            bar = Progress(console=console)
            bar.start()
            task = bar.add_task(f"sweep {spec.name}", total=len(pending))

        def done(trial: Trial, error: str | None) -> None:
            if error is not None:
                failures[trial.id] = error
                LOG.warning("trial %d (%s) failed: %s", trial.index, trial.id, error)
            if bar is not None:
                bar.advance(task)

        try:
            if backend == "ray":
                backends.run_ray(
                    pending,
                    trials_dir,
                    workers=workers,
                    done=done,
                    address=address,
                    cpus_per_trial=spec.cpus_per_trial,
                    gpus_per_trial=spec.gpus_per_trial,
                    device=device,
                )
            else:
                backends.run_local(pending, trials_dir, workers=workers, done=done, device=device)
        finally:
            if bar is not None:
                bar.stop()

    with lock_folder(out_dir, what="sweep"):
        try:
            results = sweep_trials(spec, out_dir, run)
        except KeyboardInterrupt:
            finished = sum((out_dir / "trials" / trial.id).is_dir() for trial in spec.trials)
            raise KeyboardInterrupt(
                f"sweep {spec.name} stopped: {finished} of {len(spec.trials)} trials finished "
                f"and kept in {out_dir}; run the sweep again to run the others"
            ) from None
        report = write_sweep_report(spec, results, failures, out_dir)
    if console is not None:
        console.print(rich_table(report))
        if report.analysis is not None:
            console.print(report.analysis.text(), markup=False, highlight=False)
        console.print(
            f"wrote trials.csv, rounds.csv, report.png and {ANALYSIS_FOLDER}/ into {out_dir}"
        )
    if failures:
        first = next(iter(failures.items()))
        raise ExperimentError(
            f"{len(failures)} of {len(spec.trials)} trials failed (trial {first[0]}: "
            f"{first[1]}); the finished ones are kept, re-run the sweep to retry the others"
        )
    return report
