"""TensorBoard event files of a run, written next to ``metrics.jsonl`` (the tensorboard extra).

:class:`TensorBoardRecorder` is a :class:`~pypaddle.experiments.records.Recorder` that
also writes every record it is given into ``OUT/tensorboard/`` (``tensorboard --logdir
OUT``). Tags and steps:

- per epoch, at step ``epoch_total`` (1, 2, ... across rounds): ``train/loss``,
  ``test/loss`` and ``test/accuracy`` (when tested), ``density`` (the run's) and
  ``density/LAYER`` for every masked layer of the model (its unmasked weights over all);
- per round, at step ``round`` (0 = training before any pruning): ``round/accuracy``,
  ``round/accuracy_before_retraining``, ``round/test_loss``, ``round/density``,
  ``round/active_weights``, and the structure after the round drawn as the image
  ``structure`` (models with a structure, when ``evaluation.plots`` is on).

Whether a run writes them: ``evaluation.tensorboard`` (unset: when the extra is
installed), and ``pypaddle run --no-tensorboard`` turns them off whatever the config says.
"""

from __future__ import annotations

import importlib.util
import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import networkx as nx
from torch import nn

from pypaddle._core import extras
from pypaddle.experiments.records import Recorder
from pypaddle.sparse import maskable_layers

__all__ = ["EVENTS_FOLDER", "TensorBoardRecorder", "make_recorder", "tensorboard_enabled"]

EVENTS_FOLDER = "tensorboard"
_EVENT_FILES = "events.out.tfevents.*"


def tensorboard_enabled(choice: bool | None, *, allowed: bool = True) -> bool:
    """Whether a run writes event files: ``choice`` is ``evaluation.tensorboard`` (None:
    when the tensorboard extra is installed); ``allowed=False`` (``--no-tensorboard``)
    turns them off.

    Raises
    ------
    MissingExtraError
        If ``choice`` is True, ``allowed``, and tensorboard is not installed.
    """
    if not allowed or choice is False:
        return False
    if choice is None:
        return importlib.util.find_spec("tensorboard") is not None
    extras.require("tensorboard", what="evaluation.tensorboard = true")
    return True


Structure = Callable[[], nx.DiGraph]


class TensorBoardRecorder(Recorder):
    """A :class:`Recorder` that also writes each record as TensorBoard scalars into
    ``folder``, with the density of every masked layer of ``model`` and, per round, the
    graph ``structure()`` returns drawn as an image (None: no image). The event files of
    an earlier run of the same experiment there are removed, as ``metrics.jsonl`` is
    rewritten, but only once the new writer has started and ``metrics.jsonl`` is open:
    a writer that fails to start leaves the earlier run's files as they were."""

    def __init__(
        self, path: Path | None, folder: Path, model: nn.Module, structure: Structure | None
    ) -> None:
        from torch.utils.tensorboard import SummaryWriter

        masked = {id(layer) for layer in maskable_layers(model)}
        self.layers = [
            (name, module) for name, module in model.named_modules() if id(module) in masked
        ]
        self.structure = structure
        # Start first, replace after: the writer creates its own (new) event file, then
        # metrics.jsonl is truncated, and only then do the earlier run's events go.
        existed, earlier = folder.is_dir(), _event_files(folder)

        def undo() -> None:
            # What this recorder made goes again: its event files, and the folder if new.
            for own in _event_files(folder) - earlier:
                own.unlink()
            if not existed and folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()

        try:
            self.writer = SummaryWriter(log_dir=str(folder))
        except BaseException:
            undo()
            raise
        try:
            super().__init__(path)
        except BaseException:
            self.writer.close()
            undo()
            raise
        try:
            remove_events(folder, only=earlier)
        except BaseException:
            self.close()
            raise

    def write(self, record: dict[str, Any]) -> None:
        super().write(record)
        if record["event"] == "epoch":
            self._epoch(record)
        elif record["event"] == "round":
            self._round(record)

    def _scalar(self, tag: str, value: Any, step: int) -> None:
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if number and math.isfinite(value):
            self.writer.add_scalar(tag, value, step)

    def _epoch(self, record: dict[str, Any]) -> None:
        step = record["epoch_total"]
        self._scalar("train/loss", record["train_loss"], step)
        self._scalar("test/loss", record["test_loss"], step)
        self._scalar("test/accuracy", record.get("accuracy"), step)
        self._scalar("density", record["density"], step)
        for name, layer in self.layers:
            self._scalar(f"density/{name}", layer.density, step)

    def _round(self, record: dict[str, Any]) -> None:
        step = record["round"]
        for key in (
            "accuracy",
            "accuracy_before_retraining",
            "test_loss",
            "density",
            "active_weights",
        ):
            self._scalar(f"round/{key}", record.get(key), step)
        if self.structure is not None:
            picture = _picture(self.structure())
            self.writer.add_image("structure", picture, step, dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        super().close()
        self.writer.close()


def _picture(structure: Any) -> Any:
    """The structure as plots/structure.png draws it, as an RGB array [height, width, 3]."""
    from matplotlib.image import imread

    from pypaddle.experiments.plots import _draw_surviving

    with tempfile.TemporaryDirectory() as folder:
        path = _draw_surviving(structure, Path(folder) / "structure.png")
        return imread(path)[..., :3]


def _event_files(folder: Path) -> set[Path]:
    return set(folder.glob(_EVENT_FILES)) if folder.is_dir() else set()


def remove_events(folder: Path, *, only: set[Path] | None = None) -> None:
    """Remove the event files of an earlier run from ``folder`` (and it, if then empty):
    all of them, or ``only`` these (those listed before a new writer started there)."""
    if folder.is_dir():
        for old in _event_files(folder) if only is None else only:
            old.unlink(missing_ok=True)
        if not any(folder.iterdir()):
            folder.rmdir()


def make_recorder(
    path: Path | None,
    model: nn.Module,
    structure: Structure | None,
    *,
    tensorboard: bool,
) -> Recorder:
    """The recorder of a run: writing ``path`` (``metrics.jsonl``; None: nothing) and, if
    ``tensorboard``, event files into the folder ``tensorboard`` next to it (see
    :class:`TensorBoardRecorder`); without, the event files of an earlier run there are
    removed, as ``metrics.jsonl`` is rewritten."""
    if path is None:
        return Recorder(path)
    folder = path.parent / EVENTS_FOLDER
    if not tensorboard:
        recorder = Recorder(path)  # metrics.jsonl open (and rewritten) before events go
        remove_events(folder)
        return recorder
    return TensorBoardRecorder(path, folder, model, structure)
