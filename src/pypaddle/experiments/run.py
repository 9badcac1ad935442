"""One experiment from a config: build, train, sparsify in rounds, write everything.

``pypaddle run EXPERIMENT.toml`` calls :func:`run_experiment`. The output folder holds::

    config.toml            the resolved config (every default filled in)
    metrics.jsonl          one JSON line per epoch and per round
    summary.csv            one row per round
    result.json            the rounds and the final metrics, written last: the run finished
    checkpoints/round-R.pt model state (weights and masks) after round R
    structures/*.graphml   the structure the model was built from and after the last round
                           (or after every round: evaluation.structures = "rounds")
    plots/*.png            learning curves, accuracy vs density, the structure, degrees
    tensorboard/           TensorBoard event files of the same records (if the tensorboard
                           extra is installed; evaluation.tensorboard, --no-tensorboard)
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import torch

from pypaddle._core.files import atomic_write_text
from pypaddle.errors import ConfigError, PaddleError
from pypaddle.experiments._files import FolderLock, check_output_folder, lock_folder
from pypaddle.experiments._progress import Progress, progress_bars, rich_console
from pypaddle.experiments._tensorboard import tensorboard_enabled
from pypaddle.experiments.config import ExperimentConfig, load_config, parse_config, to_toml
from pypaddle.experiments.devices import Placement, placement, rank_device
from pypaddle.experiments.distributed import launch
from pypaddle.experiments.engine import RESULT_NAME, Prepared, execute, mask_digest
from pypaddle.experiments.report import results_table
from pypaddle.sparse import maskable_layers

__all__ = [
    "Prepared",
    "claim_folder",
    "execute",
    "mask_digest",
    "prepare",
    "run_experiment",
    "train_rank",
]

CONFIG_NAME = "config.toml"


def _as_config(
    config: ExperimentConfig | dict[str, Any] | str | Path,
    *,
    device: str | None = None,
    precision: str | None = None,
) -> ExperimentConfig:
    if not isinstance(config, ExperimentConfig):
        config = parse_config(config) if isinstance(config, dict) else load_config(config)
    if device is None and precision is None:
        return config
    # Given here (pypaddle run --device / --precision): checked as the config's own keys.
    table = config.to_dict()
    table["training"].update(
        {k: v for k, v in (("device", device), ("precision", precision)) if v is not None}
    )
    return parse_config(table)


def _placement(config: ExperimentConfig, nproc: int = 1) -> Placement:
    """The config's device, precision and threads, checked against this machine."""
    training = config.training
    here = placement(training.device, training.precision, training.threads)
    if nproc > 1 and here.device.type == "cuda":
        if training.device.startswith("cuda:"):
            raise ConfigError(
                f"training.device = {training.device!r} names one GPU, but --nproc {nproc} "
                "trains on one GPU per process; give device = 'cuda' (or 'auto') to use "
                f"cuda:0 .. cuda:{nproc - 1}, or --nproc 1"
            )
        rank_device(here.device, 0, nproc)
    return here


def _build(what: str, build: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return build(*args, **kwargs)
    except PaddleError as error:
        if str(error).startswith(f"{what}"):
            raise
        raise type(error)(f"{what}: {error}") from None


def prepare(config: ExperimentConfig | dict[str, Any] | str | Path) -> Prepared:
    """Validate the config, load the data, build the model and the method; train nothing.

    Errors name the config table they come from. The caller's torch random state is
    left as it was.
    """
    config = _as_config(config)
    here = _placement(config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        split = _build("data", config.data.component.build, config.data.options, seed=config.seed)
        built = _build(
            "model",
            config.model.component.build,
            config.model.options,
            split=split,
            seed=config.seed,
        )
    sparsifier = config.sparsify.component.build(config.sparsify.options)
    if sparsifier.layers == "structure":
        if not built.structure_layers:
            raise ConfigError(
                f"sparsify.layers = 'structure', but model {config.model.name!r} has no layers "
                "holding structure edges; use sparsify.layers = 'all'"
            )
        layers = list(built.structure_layers)
    else:
        layers = maskable_layers(built.module)
    return Prepared(config, split, built, sparsifier, layers, here)


def _differs(expected: dict[str, Any]) -> Any:
    def describe(old_text: str) -> str:
        import tomllib

        try:
            old = tomllib.loads(old_text)
        except tomllib.TOMLDecodeError:
            return f"its {CONFIG_NAME} is not valid TOML"
        for key in sorted(set(old) | set(expected)):
            if isinstance(old.get(key), dict) and isinstance(expected.get(key), dict):
                for sub in sorted(set(old[key]) | set(expected[key])):
                    there, here = old[key].get(sub), expected[key].get(sub)
                    if there != here:
                        return f"{key}.{sub} is {there!r} there, {here!r} here"
            elif old.get(key) != expected.get(key):
                return f"{key} is {old.get(key)!r} there, {expected.get(key)!r} here"
        return "its config.toml is written differently"

    return describe


def _claim(
    config: ExperimentConfig | dict[str, Any] | str | Path, out_dir: Path, nproc: int = 1
) -> tuple[Prepared, FolderLock]:
    config = _as_config(config)
    _placement(config, nproc)  # before anything is written: the device, precision, threads
    resolved = to_toml(config.to_dict())
    differs = _differs(config.to_dict())
    if out_dir.is_dir():  # a folder in use is refused as such, whatever it holds
        lock_folder(out_dir, what="run").release()
    check_output_folder(out_dir, CONFIG_NAME, resolved, what="experiment", differs=differs)
    prepared = prepare(config)
    if config.evaluation.plots:
        from pypaddle.experiments import plots

        plots.check_matplotlib()
    lock = lock_folder(out_dir, what="run")
    try:
        # Again under the lock: the folder may have changed while the model was built.
        check_output_folder(out_dir, CONFIG_NAME, resolved, what="experiment", differs=differs)
        (out_dir / RESULT_NAME).unlink(missing_ok=True)
        atomic_write_text(out_dir / CONFIG_NAME, resolved)
    except BaseException:
        lock.release()
        raise
    return prepared, lock


def claim_folder(config: ExperimentConfig | dict[str, Any] | str | Path, out_dir: Path) -> Prepared:
    """Validate and prepare ``config``, lock ``out_dir`` if it may hold it, write config.toml.

    Everything that can fail before training is checked first (the config, the data, the
    model, matplotlib if plots are on), so a refused folder is left untouched. A folder
    that another process is writing is refused (:class:`~pypaddle.errors.ConfigError`);
    the folder stays locked until this process ends.
    """
    return _claim(config, out_dir)[0]


def run_experiment(
    config: ExperimentConfig | dict[str, Any] | str | Path,
    out_dir: str | Path,
    *,
    quiet: bool = False,
    nproc: int = 1,
    device: str | None = None,
    precision: str | None = None,
    tensorboard: bool = True,
) -> list[dict[str, Any]]:
    """Run one experiment and write its folder; return one record per round.

    ``config`` is an :class:`ExperimentConfig`, a dict as read from TOML, or the path of
    a TOML file. Everything is validated and built before training starts. The same config
    and seed give identical metrics on CPU (training runs on ``training.threads`` torch
    threads, one by default; the caller's random state and thread count are restored).
    ``out_dir`` may be new, empty, or hold this same experiment (it is then run again); a
    folder holding anything else, or that another process is writing (each run locks its
    folder), is refused with a :class:`~pypaddle.errors.ConfigError` and nothing is
    written. Unless ``quiet``, progress bars and a summary table are shown (rich); when
    quiet, one line per round is logged to the ``pypaddle.experiments`` logger.
    ``nproc > 1`` trains data-parallel in that many processes (DDP: gloo on CPUs, NCCL
    and one GPU per process on GPUs; see :mod:`pypaddle.experiments.distributed`).

    The experiment trains on ``training.device`` (``"auto"``: the first CUDA GPU when
    torch sees one, else the CPU) in ``training.precision`` on ``training.threads`` torch
    threads; ``device`` and ``precision`` given here replace the config's (and are written
    into its ``config.toml``). A device this machine does not have, bf16 on a GPU without
    it or more threads than cores is a :class:`~pypaddle.errors.ConfigError` before
    anything is written.

    TensorBoard event files are written into ``out_dir/tensorboard`` as
    ``evaluation.tensorboard`` says (unset: if the tensorboard extra is installed);
    ``tensorboard=False`` (``--no-tensorboard``) writes none without changing the
    experiment (``config.toml`` stays the same).

    Examples
    --------
    >>> import tempfile
    >>> config = {"model": {"name": "ffn", "hidden_layers": [16]}, "training": {"epochs": 1},
    ...           "sparsify": {"method": "iterative", "rounds": 2, "retrain_epochs": 1},
    ...           "evaluation": {"plots": False}}
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     rounds = run_experiment(config, folder, quiet=True)
    >>> [round(record["density"], 3) for record in rounds]
    [1.0, 0.5, 0.25]
    """
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise ConfigError(f"nproc = {nproc!r} must be an int >= 1")
    out_dir = Path(out_dir)
    config = _as_config(config, device=device, precision=precision)
    board = tensorboard_enabled(config.evaluation.tensorboard, allowed=tensorboard)
    console = rich_console(quiet)
    prepared, lock = _claim(config, out_dir, nproc)
    config = prepared.config
    here = prepared.placement
    with lock:
        if nproc > 1:
            launch(
                train_rank,
                (config.to_dict(), out_dir, board),
                nproc,
                preload=__name__,
                device=here.device,
            )
            rounds = json.loads((out_dir / RESULT_NAME).read_text())["rounds"]
        else:
            gpus = [here.device] if here.device.type == "cuda" else []
            with (
                here.threads_scope(),
                torch.random.fork_rng(devices=gpus),
                progress_bars(console) as bars,
            ):
                torch.manual_seed(config.seed)
                rounds = execute(prepared, out_dir, bars, tensorboard=board)
    if console is not None:
        console.print(results_table(rounds, title=f"{config.name} (seed {config.seed})"))
        for problem in prepared.model.prior_problems:  # also in result.json
            console.print(f"structure warning: {problem}", style="yellow", highlight=False)
        console.print(f"wrote the results into {out_dir}")
    return rounds


def train_rank(
    rank: int, world: int, config: dict[str, Any], out_dir: Path, tensorboard: bool = False
) -> None:
    """One process of a data-parallel run, in a joined process group: build, train, and on
    rank 0 write the folder (which :func:`claim_folder` has claimed), with TensorBoard
    event files if ``tensorboard``.

    On GPUs the process trains on ``cuda:LOCAL_RANK`` (under ``torchrun``; ``cuda:rank``
    for the processes of ``pypaddle run --nproc``)."""
    prepared = prepare(config)
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    here = prepared.placement
    here = dataclasses.replace(here, device=rank_device(here.device, local_rank, local_world))
    prepared = dataclasses.replace(prepared, placement=here)
    with here.threads_scope():
        torch.manual_seed(prepared.config.seed)
        execute(prepared, out_dir, Progress(), rank=rank, world=world, tensorboard=tensorboard)
