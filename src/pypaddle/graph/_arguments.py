"""Argument checks and small pieces shared by the generators, transforms and analysis."""

from __future__ import annotations

import numbers
import operator
from collections.abc import Sequence
from typing import Any

import networkx as nx
import numpy as np

from pypaddle.errors import ConfigError
from pypaddle.graph.layering import layer_array

__all__ = [
    "Seed",
    "check_count",
    "check_probability",
    "check_widths",
    "random_generator",
    "set_layer_attribute",
]

Seed = int | np.random.Generator | np.random.SeedSequence | None
_SEED_TYPES = (int, np.integer, np.random.Generator, np.random.SeedSequence, type(None))


def check_count(value: Any, name: str, minimum: int) -> int:
    """``value`` as an int, if it is an integer (not a bool) of at least ``minimum``."""
    if isinstance(value, bool):
        raise ConfigError(f"{name} must be an int >= {minimum}, got {value!r}")
    try:
        number = operator.index(value)
    except TypeError:
        raise ConfigError(f"{name} must be an int >= {minimum}, got {value!r}") from None
    if number < minimum:
        raise ConfigError(f"{name} must be an int >= {minimum}, got {number}")
    return number


def check_probability(value: Any, name: str) -> float:
    """``value`` as a float, if it is a real number in [0, 1]."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not 0 <= value <= 1:
        raise ConfigError(f"{name} must be a probability in [0, 1], got {value!r}")
    return float(value)


def check_widths(widths: Any) -> list[int]:
    """Layer widths as a list of ints, if they form a non-empty sequence of counts >= 1."""
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence) or not widths:
        raise ConfigError(f"widths must be a non-empty sequence of ints >= 1, got {widths!r}")
    return [check_count(width, f"widths[{i}]", 1) for i, width in enumerate(widths)]


def set_layer_attribute(graph: nx.DiGraph) -> None:
    """Set node attribute ``layer`` of every vertex to its layer."""
    vertices, layers = layer_array(graph)
    nx.set_node_attributes(graph, dict(zip(vertices, layers.tolist())), "layer")


def random_generator(seed: Seed) -> np.random.Generator:
    """The numpy Generator for ``seed`` (an int, a SeedSequence, a Generator or None)."""
    if isinstance(seed, bool) or not isinstance(seed, _SEED_TYPES):
        raise ConfigError(
            f"seed must be an int, a numpy Generator or SeedSequence, or None; got {seed!r}"
        )
    return np.random.default_rng(seed)
