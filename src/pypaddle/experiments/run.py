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
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pypaddle._core.files import atomic_write_text, atomic_write_with
from pypaddle.data import Split
from pypaddle.errors import ConfigError, PaddleError
from pypaddle.experiments._files import check_output_folder
from pypaddle.experiments._progress import _console, _Progress, _progress_bars, _single_thread
from pypaddle.experiments._training import evaluate, loss_function, train_epoch
from pypaddle.experiments.config import (
    ExperimentConfig,
    TrainingOptions,
    load_config,
    parse_config,
    to_toml,
)
from pypaddle.experiments.methods import Context, Sparsifier
from pypaddle.experiments.models import BuiltModel
from pypaddle.experiments.report import results_table, write_results
from pypaddle.graph import write as write_structure
from pypaddle.sparse import MaskableModule, maskable_layers

__all__ = ["Prepared", "claim_folder", "execute", "mask_digest", "prepare", "run_experiment"]

LOG = logging.getLogger("pypaddle.experiments")
CONFIG_NAME = "config.toml"
RESULT_NAME = "result.json"
CRITERION_BATCH = 256


@dataclass
class Prepared:
    """Everything an experiment needs, built and checked before any training."""

    config: ExperimentConfig
    split: Split
    model: BuiltModel
    sparsifier: Sparsifier
    layers: list[MaskableModule]


def _as_config(config: ExperimentConfig | dict[str, Any] | str | Path) -> ExperimentConfig:
    if isinstance(config, ExperimentConfig):
        return config
    if isinstance(config, dict):
        return parse_config(config)
    return load_config(config)


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
    return Prepared(config, split, built, sparsifier, layers)


def _optimizer(parameters: Any, training: TrainingOptions) -> torch.optim.Optimizer:
    if training.optimizer == "sgd":
        return torch.optim.SGD(
            parameters,
            lr=training.learning_rate,
            momentum=training.momentum,
            weight_decay=training.weight_decay,
        )
    kind = torch.optim.AdamW if training.optimizer == "adamw" else torch.optim.Adam
    return kind(parameters, lr=training.learning_rate, weight_decay=training.weight_decay)


def mask_digest(layers: list[MaskableModule]) -> str:
    """A short hash of every mask of ``layers`` (equal digests: equal masks)."""
    digest = hashlib.sha256()
    for layer in layers:
        for _, mask_name in layer.masked_parameters():
            digest.update(getattr(layer, mask_name).detach().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def _active(layers: list[MaskableModule]) -> int:
    return sum(layer.num_active_weights for layer in layers)


class _Distributed:
    """Mask and metric synchronisation across data-parallel processes (no-ops alone)."""

    def __init__(self, rank: int, world: int) -> None:
        self.rank, self.world = rank, world

    def broadcast_masks(self, model: nn.Module) -> None:
        if self.world == 1:
            return
        import torch.distributed as dist

        for layer in maskable_layers(model):
            for _, mask_name in layer.masked_parameters():
                mask = getattr(layer, mask_name)
                values = mask.to(torch.uint8)
                dist.broadcast(values, src=0)
                with torch.no_grad():
                    mask.copy_(values.bool())

    def mean(self, value: float) -> float:
        if self.world == 1:
            return value
        import torch.distributed as dist

        total = torch.tensor([value], dtype=torch.float64)
        dist.all_reduce(total)
        return float(total) / self.world

    def gather(self, value: str) -> list[str]:
        if self.world == 1:
            return [value]
        import torch.distributed as dist

        values: list[Any] = [None] * self.world
        dist.all_gather_object(values, value)
        return values


def _context(prepared: Prepared, loss: Callable[..., torch.Tensor]) -> Context:
    """A seeded batch of training samples for criteria that need data (SNIP, Taylor)."""
    split, seed = prepared.split, prepared.config.seed
    generator = torch.Generator().manual_seed(seed)
    batch = torch.randperm(split.y_train.shape[0], generator=generator)[:CRITERION_BATCH]
    return Context(prepared.model.module, split.x_train[batch], split.y_train[batch], loss, seed)


def _steps_per_epoch(split: Split, batch_size: int, world: int) -> int:
    samples = split.y_train.shape[0]
    full, rest = divmod(samples, batch_size)
    return full + (rest >= world)


def _data_parallel(model: nn.Module) -> nn.Module:
    """DDP without a buffer broadcast in every forward: masks are broadcast when they change."""
    ddp = nn.parallel.DistributedDataParallel
    if "forward_sync_buffers" in inspect.signature(ddp).parameters:  # torch >= 2.13
        return ddp(model, forward_sync_buffers=False)
    return ddp(model, broadcast_buffers=False)


class _Recorder:
    """metrics.jsonl on the first process, one flushed line per record."""

    def __init__(self, path: Path | None) -> None:
        self.records: list[dict[str, Any]] = []
        self._handle = None if path is None else path.open("w")

    def write(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        if self._handle is not None:
            self._handle.write(json.dumps(record) + "\n")
            self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()


def _train(
    prepared: Prepared,
    out_dir: Path | None,
    progress: _Progress,
    *,
    rank: int = 0,
    world: int = 1,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Run the rounds; return (epoch records, round records). Writes only on rank 0."""
    config, split, built = prepared.config, prepared.split, prepared.model
    sparsifier, layers, model = prepared.sparsifier, prepared.layers, prepared.model.module
    sync = _Distributed(rank, world)
    classification = split.is_classification
    writing = out_dir is not None and rank == 0
    recorder = _Recorder(out_dir / "metrics.jsonl" if writing else None)
    trained: nn.Module = model
    if world > 1:
        trained = _data_parallel(model)
    initial_active = max(_active(layers), 1)
    batches = torch.Generator().manual_seed(config.seed)
    loss = loss_function(classification)
    step = 0

    changes_masks_while_training = type(sparsifier).after_step is not Sparsifier.after_step

    def after_step(closure: Callable[[], torch.Tensor]) -> None:
        nonlocal step
        step += 1
        sparsifier.after_step(closure)
        if changes_masks_while_training:
            sync.broadcast_masks(model)

    def test() -> dict[str, float]:
        return evaluate(model, split.x_test, split.y_test, classification=classification)

    rounds: list[dict[str, Any]] = []
    epoch_total = 0
    try:
        sparsifier.start(layers, _context(prepared, loss))
        sync.broadcast_masks(model)
        for round_ in range(sparsifier.rounds + 1):
            before = None
            if round_ > 0:
                sparsifier.prune(layers, round_)
                sync.broadcast_masks(model)
                before = test()
            density = _active(layers) / initial_active
            epochs = sparsifier.retrain_epochs if round_ > 0 else None
            epochs = config.training.epochs if epochs is None else epochs
            optimizer = _optimizer(model.parameters(), config.training)
            steps = epochs * _steps_per_epoch(split, config.training.batch_size, world)
            sparsifier.begin_round(layers, optimizer, round_, steps)
            sync.broadcast_masks(model)
            task = progress.add(f"round {round_}: {100 * density:5.1f}%", epochs)
            train_loss, metrics = None, None
            for epoch in range(1, epochs + 1):
                train_loss = sync.mean(
                    train_epoch(
                        trained,
                        optimizer,
                        split.x_train,
                        split.y_train,
                        batch_size=config.training.batch_size,
                        generator=batches,
                        loss=loss,
                        after_step=after_step,
                        rank=rank,
                        world=world,
                    )
                )
                epoch_total += 1
                metrics = test() if config.evaluation.every_epoch or epoch == epochs else None
                record = {
                    "event": "epoch",
                    "round": round_,
                    "epoch": epoch,
                    "epoch_total": epoch_total,
                    "step": step,
                    "density": _active(layers) / initial_active,
                    "train_loss": train_loss,
                    "test_loss": None if metrics is None else metrics["loss"],
                }
                if classification:
                    record["accuracy"] = None if metrics is None else metrics["accuracy"]
                recorder.write(record)
                progress.advance(task, train_loss)
            final = metrics if metrics is not None else test()
            record = {
                "event": "round",
                "round": round_,
                "epochs": epochs,
                "density": _active(layers) / initial_active,
                "active_weights": _active(maskable_layers(model)),
            }
            if built.structure_layers:
                record["edges"] = _active(built.structure_layers)
            if classification:
                record["accuracy_before_retraining"] = (
                    None if before is None else before["accuracy"]
                )
                record["accuracy"] = final["accuracy"]
            record["loss_before_retraining"] = None if before is None else before["loss"]
            record["test_loss"] = final["loss"]
            record["train_loss"] = train_loss
            digests = sync.gather(mask_digest(maskable_layers(model)))
            record["mask_digest"] = digests[0]
            if world > 1:
                record["mask_digests_per_rank"] = digests
                record["weight_digests_per_rank"] = sync.gather(_weight_digest(model))
            recorder.write(record)
            rounds.append(record)
            LOG.info(
                "round %d: density %.4f, test loss %.4g%s",
                round_,
                record["density"],
                record["test_loss"],
                f", accuracy {record['accuracy']:.4f}" if classification else "",
            )
            if writing:
                _write_round(out_dir, prepared, record)
    finally:
        recorder.close()
    epochs_records = [record for record in recorder.records if record["event"] == "epoch"]
    return epochs_records, rounds


def execute(
    prepared: Prepared,
    out_dir: Path,
    progress: _Progress,
    *,
    rank: int = 0,
    world: int = 1,
) -> list[dict[str, Any]]:
    """Train ``prepared`` and, on the first process, write the folder's files; return rounds.

    The caller seeds torch (``torch.manual_seed(config.seed)``) and, for ``world > 1``,
    has joined the process group.
    """
    started = time.perf_counter()
    epochs, rounds = _train(prepared, out_dir, progress, rank=rank, world=world)
    if rank == 0:
        _final_files(out_dir, prepared, epochs, rounds, time.perf_counter() - started)
    return rounds


def _weight_digest(model: nn.Module) -> str:
    digest = hashlib.sha256()
    for parameter in model.parameters():
        digest.update(parameter.detach().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def _write_round(out_dir: Path, prepared: Prepared, record: dict[str, Any]) -> None:
    round_ = record["round"]
    model = prepared.model.module
    evaluation = prepared.config.evaluation
    if evaluation.checkpoints:
        state = {"round": round_, "config": prepared.config.to_dict(), "model": model.state_dict()}
        atomic_write_with(
            out_dir / "checkpoints" / f"round-{round_}.pt",
            lambda handle: torch.save(state, handle),
        )
    current = prepared.model.current_structure
    last = round_ == prepared.sparsifier.rounds
    if current is not None and (
        evaluation.structures == "rounds" or (evaluation.structures == "final" and last)
    ):
        path = out_dir / "structures" / f"round-{round_}.graphml"
        path.parent.mkdir(parents=True, exist_ok=True)
        structure = current()
        structure.graph.update(
            {"seed": prepared.config.seed, "round": round_, "density": record["density"]}
        )
        write_structure(structure, path)


def _final_files(
    out_dir: Path,
    prepared: Prepared,
    epochs: list[dict[str, Any]],
    rounds: list[dict[str, Any]],
    seconds: float,
) -> list[Path]:
    from pypaddle.experiments import plots

    config, built = prepared.config, prepared.model
    written = []
    if config.evaluation.structures != "none" and built.structure is not None:
        path = out_dir / "structures" / "prior.graphml"
        write_structure(built.structure, path)
        written.append(path)
    rows = [{k: v for k, v in record.items() if not k.endswith("_per_rank")} for record in rounds]
    written += write_results(rows, out_dir, stem="summary")[1:]
    (out_dir / "summary.json").unlink(missing_ok=True)
    if config.evaluation.plots:
        final_structure = built.current_structure
        written += plots.experiment_plots(
            out_dir / "plots",
            epochs,
            rounds,
            title=config.name,
            prior=built.structure,
            final=final_structure() if final_structure is not None else None,
        )
    result = {
        "name": config.name,
        "config": config.to_dict(),
        "rounds": rounds,
        "final": rows[-1],
        "seconds": seconds,
    }
    written.append(atomic_write_text(out_dir / RESULT_NAME, json.dumps(result, indent=2) + "\n"))
    return written


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


def claim_folder(config: ExperimentConfig | dict[str, Any] | str | Path, out_dir: Path) -> Prepared:
    """Validate and prepare ``config``, check that ``out_dir`` may hold it, write config.toml.

    Everything that can fail before training is checked first (the config, the data, the
    model, matplotlib if plots are on), so a refused folder is left untouched.
    """
    config = _as_config(config)
    resolved = to_toml(config.to_dict())
    check_output_folder(
        out_dir, CONFIG_NAME, resolved, what="experiment", differs=_differs(config.to_dict())
    )
    prepared = prepare(config)
    if config.evaluation.plots:
        from pypaddle.experiments import plots

        plots.check_matplotlib()
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / RESULT_NAME).unlink(missing_ok=True)
    atomic_write_text(out_dir / CONFIG_NAME, resolved)
    return prepared


def run_experiment(
    config: ExperimentConfig | dict[str, Any] | str | Path,
    out_dir: str | Path,
    *,
    quiet: bool = False,
    nproc: int = 1,
) -> list[dict[str, Any]]:
    """Run one experiment and write its folder; return one record per round.

    ``config`` is an :class:`ExperimentConfig`, a dict as read from TOML, or the path of
    a TOML file. Everything is validated and built before training starts. The same config
    and seed give identical metrics on CPU (training runs on one torch thread; the caller's
    random state and thread count are restored). ``out_dir`` may be new, empty, or hold
    this same experiment (it is then run again); a folder holding anything else is refused
    with a :class:`~pypaddle.errors.ConfigError` and nothing is written. Unless ``quiet``,
    progress bars and a summary table are shown (rich); when quiet, one line per round is
    logged to the ``pypaddle.experiments`` logger. ``nproc > 1`` trains data-parallel
    in that many processes (DDP, gloo on CPU; see :mod:`pypaddle.experiments.distributed`).

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
    console = _console(quiet)
    prepared = claim_folder(config, out_dir)
    config = prepared.config
    if nproc > 1:
        from pypaddle.experiments.distributed import run_distributed

        rounds = run_distributed(config.to_dict(), out_dir, nproc)
    else:
        with _single_thread(), torch.random.fork_rng(devices=[]), _progress_bars(console) as bars:
            torch.manual_seed(config.seed)
            rounds = execute(prepared, out_dir, bars)
    if console is not None:
        console.print(results_table(rounds, title=f"{config.name} (seed {config.seed})"))
        console.print(f"wrote the results into {out_dir}")
    return rounds
