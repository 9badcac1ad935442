"""The experiment engine: the rounds of a prepared experiment, their records and files.

:func:`execute` trains a :class:`Prepared` experiment. Its parts read on their own:

- :class:`Rounds` holds what the rounds share (the step and epoch counters, the batch
  order, the evaluation) and runs them: :meth:`Rounds.run` calls, per round,
  :meth:`Rounds.prune` (rounds ``1 ..``), :meth:`Rounds.train_round` and, per epoch,
  :meth:`Rounds.train_one_epoch`;
- :mod:`~pypaddle.experiments.records` makes the records ``metrics.jsonl`` holds;
- :func:`write_round` (checkpoints, per-round structures) and :func:`write_final` (the
  prior, ``summary.csv``, plots, ``result.json``) write the folder;
- synchronisation across data-parallel processes is
  :class:`~pypaddle.experiments.distributed.Sync`, a no-op for one process.

The experiment trains on its :class:`~pypaddle.experiments.devices.Placement`: the data,
the model and its masks are moved to its device before the method starts (so the
method's state and the optimizers are made there), forward passes and losses run under
its precision, and checkpoints are written with CPU tensors, which load on any device.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pypaddle._core.files import atomic_write_text, atomic_write_with
from pypaddle.data import Split
from pypaddle.errors import ConfigError
from pypaddle.experiments._progress import Progress
from pypaddle.experiments._tensorboard import make_recorder
from pypaddle.experiments._training import evaluate, loss_function, train_epoch
from pypaddle.experiments.config import ExperimentConfig, TrainingOptions
from pypaddle.experiments.devices import Placement
from pypaddle.experiments.distributed import Sync
from pypaddle.experiments.methods import Context, Sparsifier
from pypaddle.experiments.models import BuiltModel
from pypaddle.experiments.records import Recorder, epoch_record, measures_record, round_record
from pypaddle.experiments.report import write_results
from pypaddle.graph import write as write_structure
from pypaddle.sparse import MaskableModule, maskable_layers

__all__ = [
    "Prepared",
    "Rounds",
    "active_weights",
    "execute",
    "load_checkpoint",
    "make_optimizer",
    "mask_digest",
    "steps_per_epoch",
    "weight_digest",
    "write_final",
    "write_round",
]

LOG = logging.getLogger("pypaddle.experiments")
RESULT_NAME = "result.json"
METRICS_NAME = "metrics.jsonl"
CRITERION_BATCH = 256
Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class Prepared:
    """Everything an experiment needs, built and checked before any training."""

    config: ExperimentConfig
    split: Split
    model: BuiltModel
    sparsifier: Sparsifier
    layers: list[MaskableModule]
    placement: Placement = dataclasses.field(default_factory=lambda: Placement(torch.device("cpu")))

    def to(self, device: torch.device) -> Prepared:
        """This experiment with its model moved to ``device`` (in place: the layers stay
        the same objects) and its data copied there."""
        self.model.module.to(device)
        split = self.split._replace(
            **{
                name: value.to(device)
                for name, value in zip(self.split._fields, self.split)
                if isinstance(value, torch.Tensor)
            }
        )
        return dataclasses.replace(self, split=split)


def make_optimizer(parameters: Iterable[nn.Parameter], training: TrainingOptions) -> Any:
    """The optimizer ``training`` names (Adam, AdamW or SGD) with its options."""
    if training.optimizer == "sgd":
        return torch.optim.SGD(
            parameters,
            lr=training.learning_rate,
            momentum=training.momentum,
            weight_decay=training.weight_decay,
        )
    kind = torch.optim.AdamW if training.optimizer == "adamw" else torch.optim.Adam
    return kind(parameters, lr=training.learning_rate, weight_decay=training.weight_decay)


def mask_digest(layers: Iterable[MaskableModule]) -> str:
    """A short hash of every mask of ``layers`` (equal digests: equal masks)."""
    digest = hashlib.sha256()
    for layer in layers:
        for _, mask_name in layer.masked_parameters():
            digest.update(getattr(layer, mask_name).detach().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def weight_digest(model: nn.Module) -> str:
    """A short hash of every parameter of ``model`` (equal digests: equal weights)."""
    digest = hashlib.sha256()
    for parameter in model.parameters():
        digest.update(parameter.detach().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def active_weights(layers: Iterable[MaskableModule]) -> int:
    """The unmasked weights of ``layers``."""
    return sum(layer.num_active_weights for layer in layers)


def steps_per_epoch(split: Split, batch_size: int, world: int) -> int:
    """Optimizer steps of one epoch: a last batch too small for every process is skipped.

    Examples
    --------
    >>> import torch
    >>> split = Split(torch.zeros(10, 2), torch.zeros(10), torch.zeros(1, 2), torch.zeros(1))
    >>> steps_per_epoch(split, 4, 1), steps_per_epoch(split, 4, 3)
    (3, 2)
    """
    full, rest = divmod(split.y_train.shape[0], batch_size)
    return full + (rest >= world)


def _criterion_context(prepared: Prepared, loss: Loss) -> Context:
    """A seeded batch of training samples for criteria that need data (SNIP, Taylor)."""
    split, seed = prepared.split, prepared.config.seed
    generator = torch.Generator().manual_seed(seed)
    batch = torch.randperm(split.y_train.shape[0], generator=generator)[:CRITERION_BATCH]
    return Context(prepared.model.module, split.x_train[batch], split.y_train[batch], loss, seed)


class Rounds:
    """The rounds of one prepared experiment and the state they share.

    ``out_dir`` (None: write nothing) receives checkpoints and structures after every
    round; ``recorder`` gets every epoch and round record. ``sync`` is this process's
    :class:`~pypaddle.experiments.distributed.Sync` (one process: does nothing).
    """

    def __init__(
        self,
        prepared: Prepared,
        *,
        progress: Progress | None = None,
        recorder: Recorder | None = None,
        sync: Sync | None = None,
        out_dir: Path | None = None,
    ) -> None:
        self.prepared = prepared
        self.precision = prepared.placement.precision
        self.progress = progress if progress is not None else Progress()
        self.recorder = recorder if recorder is not None else Recorder()
        self.sync = sync if sync is not None else Sync()
        self.out_dir = out_dir
        self.model: nn.Module = prepared.model.module
        self.trained = self.sync.wrap(self.model)
        self.classification = prepared.split.is_classification
        self.loss = loss_function(self.classification)
        self.batches = torch.Generator().manual_seed(prepared.config.seed)
        self.initial_active = max(active_weights(prepared.layers), 1)
        self.step = 0
        self.epoch_total = 0
        sparsifier = prepared.sparsifier
        self._masks_move = type(sparsifier).after_step is not Sparsifier.after_step

    @property
    def density(self) -> float:
        """Active weights of the sparsified layers over those active before the first round."""
        return active_weights(self.prepared.layers) / self.initial_active

    def test(self) -> dict[str, float]:
        split = self.prepared.split
        return evaluate(
            self.model,
            split.x_test,
            split.y_test,
            classification=self.classification,
            precision=self.precision,
        )

    def run(self) -> list[dict[str, Any]]:
        """Start the method, then train every round; return the round records."""
        sparsifier, layers = self.prepared.sparsifier, self.prepared.layers
        sparsifier.start(layers, _criterion_context(self.prepared, self.loss))
        self.sync.broadcast_masks(self.model)
        rounds = []
        for round_ in range(sparsifier.rounds + 1):
            before = self.prune(round_) if round_ > 0 else None
            rounds.append(self.train_round(round_, before))
        return rounds

    def prune(self, round_: int) -> dict[str, float]:
        """Prune for ``round_`` (>= 1) on every process alike; return the test metrics then."""
        self.prepared.sparsifier.prune(self.prepared.layers, round_)
        self.sync.broadcast_masks(self.model)
        return self.test()

    def epochs_of(self, round_: int) -> int:
        """Round 0 trains ``training.epochs``; later rounds the method's ``retrain_epochs``
        (``training.epochs`` when it has none)."""
        retrain = self.prepared.sparsifier.retrain_epochs if round_ > 0 else None
        return self.prepared.config.training.epochs if retrain is None else retrain

    def train_round(self, round_: int, before: dict[str, float] | None) -> dict[str, Any]:
        """Train one round with a fresh optimizer; record, log and write it."""
        config, layers = self.prepared.config, self.prepared.layers
        epochs = self.epochs_of(round_)
        label = f"round {round_}: {100 * self.density:5.1f}%"
        optimizer = make_optimizer(self.model.parameters(), config.training)
        steps = epochs * steps_per_epoch(
            self.prepared.split, config.training.batch_size, self.sync.world
        )
        self.prepared.sparsifier.begin_round(layers, optimizer, round_, steps)
        self.sync.broadcast_masks(self.model)
        task = self.progress.add(label, epochs)
        train_loss, metrics = None, None
        for epoch in range(1, epochs + 1):
            train_loss, metrics = self.train_one_epoch(round_, epoch, epochs, optimizer)
            self.progress.advance(task, train_loss)
        structure_layers = self.prepared.model.structure_layers
        record = round_record(
            round=round_,
            epochs=epochs,
            density=self.density,
            active=active_weights(maskable_layers(self.model)),
            edges=active_weights(structure_layers) if structure_layers else None,
            before=before,
            after=metrics if metrics is not None else self.test(),
            train_loss=train_loss,
            classification=self.classification,
        )
        record.update(self.digests())
        self.recorder.write(record)
        LOG.info(
            "round %d: density %.4f, test loss %.4g%s",
            round_,
            record["density"],
            record["test_loss"],
            f", accuracy {record['accuracy']:.4f}" if self.classification else "",
        )
        if self.out_dir is not None:
            write_round(self.out_dir, self.prepared, record)
        return record

    def digests(self) -> dict[str, Any]:
        """The mask digest; with several processes every rank's mask and weight digests."""
        digests = self.sync.gather(mask_digest(maskable_layers(self.model)))
        if self.sync.world == 1:
            return {"mask_digest": digests[0]}
        return {
            "mask_digest": digests[0],
            "mask_digests_per_rank": digests,
            "weight_digests_per_rank": self.sync.gather(weight_digest(self.model)),
        }

    def train_one_epoch(
        self, round_: int, epoch: int, epochs: int, optimizer: Any
    ) -> tuple[float, dict[str, float] | None]:
        """Train epoch ``epoch`` of ``epochs`` and record it; return (train loss, metrics).

        The train loss is the mean over the processes; the test metrics are None unless
        ``evaluation.every_epoch`` or it is the round's last epoch.
        """
        split, config = self.prepared.split, self.prepared.config
        train_loss = self.sync.mean(
            train_epoch(
                self.trained,
                optimizer,
                split.x_train,
                split.y_train,
                batch_size=config.training.batch_size,
                generator=self.batches,
                loss=self.loss,
                after_step=self._after_step,
                rank=self.sync.rank,
                world=self.sync.world,
                precision=self.precision,
            )
        )
        self.epoch_total += 1
        tested = config.evaluation.every_epoch or epoch == epochs
        metrics = self.test() if tested else None
        record = epoch_record(
            round=round_,
            epoch=epoch,
            epoch_total=self.epoch_total,
            step=self.step,
            density=self.density,
            train_loss=train_loss,
            metrics=metrics,
            classification=self.classification,
        )
        self.recorder.write(record)
        return train_loss, metrics

    def _after_step(self, closure: Callable[[], torch.Tensor]) -> None:
        self.step += 1
        self.prepared.sparsifier.after_step(closure)
        if self._masks_move:
            self.sync.broadcast_masks(self.model)


def execute(
    prepared: Prepared,
    out_dir: Path,
    progress: Progress,
    *,
    rank: int = 0,
    world: int = 1,
    tensorboard: bool = False,
) -> list[dict[str, Any]]:
    """Train ``prepared`` on its placement's device and, on the first process, write the
    folder's files; return the rounds.

    The caller seeds torch (``torch.manual_seed(config.seed)``) and, for ``world > 1``,
    has joined the process group. ``tensorboard``: write TensorBoard event files too
    (:mod:`pypaddle.experiments._tensorboard`).
    """
    started = time.perf_counter()
    device = prepared.placement.device
    prepared = prepared.to(device)
    sync = Sync(rank, world, device)
    writing = sync.lead
    drawn = prepared.model.current_structure if prepared.config.evaluation.plots else None
    recorder = make_recorder(
        out_dir / METRICS_NAME if writing else None,
        prepared.model.module,
        drawn,
        tensorboard=tensorboard,
    )
    try:
        rounds = Rounds(
            prepared,
            progress=progress,
            recorder=recorder,
            sync=sync,
            out_dir=out_dir if writing else None,
        ).run()
    finally:
        recorder.close()
    if writing:
        write_final(out_dir, prepared, recorder.of("epoch"), rounds, time.perf_counter() - started)
    return rounds


def write_round(out_dir: Path, prepared: Prepared, record: dict[str, Any]) -> None:
    """A round's files: its checkpoint (weights and masks) and, if asked, its structure.

    The structure (GraphML) records the seed, the round and the density as graph
    attributes.
    """
    round_ = record["round"]
    model = prepared.model.module
    evaluation = prepared.config.evaluation
    if evaluation.checkpoints:
        # CPU tensors: the checkpoint of a GPU run loads on a machine without one.
        weights = {name: value.detach().cpu() for name, value in model.state_dict().items()}
        state = {"round": round_, "config": prepared.config.to_dict(), "model": weights}
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


def write_final(
    out_dir: Path,
    prepared: Prepared,
    epochs: list[dict[str, Any]],
    rounds: list[dict[str, Any]],
    seconds: float,
) -> list[Path]:
    """The files written once the rounds are done; ``result.json`` last. Return the paths.

    ``result.json`` holds the graph measures of the prior and the final structure
    (:func:`~pypaddle.experiments.records.measures_record`) under ``measures``.
    """
    from pypaddle.experiments import plots

    config, built = prepared.config, prepared.model
    read_back = built.current_structure
    final_structure = read_back() if read_back is not None else None
    written = []
    if config.evaluation.structures != "none" and built.structure is not None:
        path = out_dir / "structures" / "prior.graphml"
        write_structure(built.structure, path)
        written.append(path)
    rows = [{k: v for k, v in record.items() if not k.endswith("_per_rank")} for record in rounds]
    written += write_results(rows, out_dir, stem="summary")[1:]
    (out_dir / "summary.json").unlink(missing_ok=True)
    if config.evaluation.plots:
        written += plots.experiment_plots(
            out_dir / "plots",
            epochs,
            rounds,
            title=config.name,
            prior=built.structure,
            final=final_structure,
        )
    result = {
        "name": config.name,
        "config": config.to_dict(),
        "device": str(prepared.placement.device),
        "rounds": rounds,
        "final": rows[-1],
        "measures": measures_record(built.structure, final_structure),
        "seconds": seconds,
    }
    if built.structure_problems is not None:  # why a structure cannot learn, if it cannot
        result["structure_problems"] = {
            "prior": built.prior_problems,
            "final": built.structure_problems(),
        }
    written.append(atomic_write_text(out_dir / RESULT_NAME, json.dumps(result, indent=2) + "\n"))
    return written


def load_checkpoint(path: str | Path, *, map_location: Any = "cpu") -> dict[str, Any]:
    """Read an experiment's checkpoint (``checkpoints/round-R.pt``) onto any device.

    Returns ``{"round": R, "config": {...}, "model": state dict}`` with the tensors on
    ``map_location`` (as in :func:`torch.load`; the CPU by default), read with
    ``weights_only=True``, so no pickled code runs. Load the weights and masks into a
    model built from the same config with ``model.load_state_dict(checkpoint["model"])``.

    Examples
    --------
    >>> import tempfile
    >>> from pypaddle.experiments import run_experiment
    >>> config = {"model": {"name": "ffn", "hidden_layers": [4]}, "training": {"epochs": 1},
    ...           "evaluation": {"plots": False}}
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     _ = run_experiment(config, folder, quiet=True)
    ...     checkpoint = load_checkpoint(Path(folder) / "checkpoints" / "round-0.pt")
    >>> checkpoint["round"], {tensor.device.type for tensor in checkpoint["model"].values()}
    (0, {'cpu'})
    """
    try:
        return torch.load(Path(path), map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise ConfigError(f"checkpoint {str(path)!r} does not exist") from None
