"""Turning masks back into graphs, vectorised: no Python loop per edge."""

from __future__ import annotations

from collections.abc import Hashable, Iterable

import numpy as np
import torch

from pypaddle.graph import CachedLayeredGraph
from pypaddle.graph.build import add_edges_from_arrays

__all__ = ["input_vertex", "mask_edges", "output_vertex", "structure_from_positions"]


def input_vertex(feature: int) -> tuple[str, int]:
    """The label of input feature ``feature`` in a generated structure."""
    return ("input", feature)


def output_vertex(unit: int) -> tuple[str, int]:
    """The label of output unit ``unit`` in a generated structure."""
    return ("output", unit)


def mask_edges(
    mask: torch.Tensor, source_offset: int, target_offset: int
) -> tuple[np.ndarray, np.ndarray]:
    """Positions ``(sources, targets)`` of the active entries of a ``[out, in]`` mask."""
    targets, sources = mask.detach().cpu().nonzero(as_tuple=True)
    return sources.numpy() + source_offset, targets.numpy() + target_offset


def structure_from_positions(
    vertices: Iterable[tuple[Hashable, dict]],
    labels: list[Hashable],
    edges: list[tuple[np.ndarray, np.ndarray]],
) -> CachedLayeredGraph:
    """A graph with ``vertices`` (label, attributes) and edges given by label positions."""
    structure = CachedLayeredGraph()
    structure.add_nodes_from(vertices)
    if edges:
        sources = np.concatenate([source for source, _ in edges])
        targets = np.concatenate([target for _, target in edges])
        add_edges_from_arrays(structure, labels, sources, targets)
    return structure
