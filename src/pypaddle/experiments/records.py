"""The records of an experiment: one per epoch and one per round, as ``metrics.jsonl`` holds them,
and the graph measures of its structures, as ``result.json`` holds them.

Pure functions of the numbers a run measured; :class:`Recorder` keeps them and writes
``metrics.jsonl`` line by line.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import networkx as nx

__all__ = [
    "STRUCTURES",
    "Recorder",
    "epoch_record",
    "measure_columns",
    "measures_record",
    "round_record",
]

# The structures whose measures an experiment records: the one it was built from, and the
# one it ended with (after pruning).
STRUCTURES = ("prior", "final")
"""The structures whose measures an experiment records: the prior and the final (pruned) one."""


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


def measures_record(
    prior: nx.Graph | None, final: nx.Graph | None
) -> dict[str, dict[str, float | int | None]]:
    """The graph measures of the prior and the final structure, as ``result.json`` holds them.

    Each is :func:`pypaddle.graph.graph_measures` with NaN written as None (JSON has no
    NaN); a structure that is None (a model without one, or one that cannot be read back
    after training) is left out.

    Examples
    --------
    >>> import networkx as nx
    >>> record = measures_record(nx.DiGraph([(0, 1), (1, 2), (0, 2)]), None)
    >>> list(record), record["prior"]["clustering"], record["prior"]["small_world_omega"]
    (['prior'], 1.0, None)
    """
    from pypaddle.graph import graph_measures

    record = {}
    for name, structure in zip(STRUCTURES, (prior, final)):
        if structure is not None:
            values = graph_measures(structure)
            record[name] = {
                key: None if isinstance(value, float) and math.isnan(value) else value
                for key, value in values.items()
            }
    return record


def measure_columns(measures: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    """A ``measures_record`` as flat columns ``prior.clustering``, ``final.depth``, ...

    Every measure of both structures gets a column; a missing one is NaN.

    Examples
    --------
    >>> columns = measure_columns({"prior": {"clustering": 0.5, "depth": None}})
    >>> columns["prior.clustering"], columns["prior.depth"], columns["final.clustering"]
    (0.5, nan, nan)
    """
    from pypaddle.graph.measures import MEASURES

    columns = {}
    for structure in STRUCTURES:
        values = measures.get(structure) or {}
        for name in MEASURES:
            value = values.get(name)
            columns[f"{structure}.{name}"] = math.nan if value is None else float(value)
    return columns


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
