"""The records of an experiment: one per epoch and one per round, as ``metrics.jsonl`` holds them.

Pure functions of the numbers a run measured; :class:`Recorder` keeps them and writes
``metrics.jsonl`` line by line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any

__all__ = ["Recorder", "epoch_record", "round_record"]


def epoch_record(
    *,
    round: int,
    epoch: int,
    epoch_total: int,
    step: int,
    density: float,
    train_loss: float,
    metrics: dict[str, float] | None,
    classification: bool,
) -> dict[str, Any]:
    """The ``metrics.jsonl`` line of one epoch; ``metrics`` is None when it was not tested.

    Examples
    --------
    >>> epoch_record(round=1, epoch=2, epoch_total=5, step=40, density=0.5, train_loss=0.3,
    ...              metrics={"loss": 0.4, "accuracy": 0.9}, classification=True)
    ... # doctest: +NORMALIZE_WHITESPACE
    {'event': 'epoch', 'round': 1, 'epoch': 2, 'epoch_total': 5, 'step': 40,
     'density': 0.5, 'train_loss': 0.3, 'test_loss': 0.4, 'accuracy': 0.9}
    """
    record: dict[str, Any] = {
        "event": "epoch",
        "round": round,
        "epoch": epoch,
        "epoch_total": epoch_total,
        "step": step,
        "density": density,
        "train_loss": train_loss,
        "test_loss": None if metrics is None else metrics["loss"],
    }
    if classification:
        record["accuracy"] = None if metrics is None else metrics["accuracy"]
    return record


def round_record(
    *,
    round: int,
    epochs: int,
    density: float,
    active: int,
    edges: int | None,
    before: dict[str, float] | None,
    after: dict[str, float],
    train_loss: float | None,
    classification: bool,
) -> dict[str, Any]:
    """The ``metrics.jsonl`` line (and ``summary.csv`` row) of one round, without digests.

    ``before`` and ``after`` are the test metrics right after pruning (None in round 0)
    and after (re)training; ``edges`` is None for a model without structure layers.

    Examples
    --------
    >>> round_record(round=0, epochs=3, density=1.0, active=120, edges=None, before=None,
    ...              after={"loss": 0.5}, train_loss=0.6, classification=False)
    ... # doctest: +NORMALIZE_WHITESPACE
    {'event': 'round', 'round': 0, 'epochs': 3, 'density': 1.0, 'active_weights': 120,
     'loss_before_retraining': None, 'test_loss': 0.5, 'train_loss': 0.6}
    """
    record: dict[str, Any] = {
        "event": "round",
        "round": round,
        "epochs": epochs,
        "density": density,
        "active_weights": active,
    }
    if edges is not None:
        record["edges"] = edges
    if classification:
        record["accuracy_before_retraining"] = None if before is None else before["accuracy"]
        record["accuracy"] = after["accuracy"]
    record["loss_before_retraining"] = None if before is None else before["loss"]
    record["test_loss"] = after["loss"]
    record["train_loss"] = train_loss
    return record


class Recorder:
    """The records of a run, and ``metrics.jsonl`` (one flushed line each) if given a path."""

    def __init__(self, path: Path | None = None) -> None:
        self.records: list[dict[str, Any]] = []
        self._handle: IO[str] | None = None if path is None else path.open("w")

    def write(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        if self._handle is not None:
            self._handle.write(json.dumps(record) + "\n")
            self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()

    def of(self, event: str) -> list[dict[str, Any]]:
        """The records of one ``event`` ("epoch" or "round"), in order."""
        return [record for record in self.records if record["event"] == event]
