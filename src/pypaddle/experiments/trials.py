"""The units of a sweep, shared by the sweep, its backends and its report: a trial (one
point of the space) and a validated sweep."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from pypaddle.experiments.config import to_toml

__all__ = ["SWEEP_NAME", "SweepSpec", "Trial"]

# The file that identifies a sweep's folder: its name and trials (see SweepSpec.identity).
SWEEP_NAME = "sweep.toml"
"""The file that identifies a sweep folder: its name and trials."""


@dataclass(frozen=True)
class Trial:
    """One point of the space: the values it sets and the resolved config it runs."""

    index: int
    overrides: dict[str, Any]
    config: dict[str, Any]

    @property
    def id(self) -> str:
        """A short hash of the resolved config: the trial's folder name."""
        return hashlib.sha256(to_toml(self.config).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: its name, options, trials and the text that identifies it."""

    name: str
    workers: int
    trials: list[Trial]
    swept_keys: list[str]
    identity: str
    # What a Ray task asks for per trial (not part of the sweep's identity).
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
