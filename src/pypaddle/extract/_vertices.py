"""Vertices of neuron- and channel-level graphs: one block per call, labelled, described."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pypaddle.graph import LayeredGraph
from pypaddle.graph.build import add_edges_from_arrays

__all__ = ["Block", "assemble"]


@dataclass
class Block:
    """The vertices one call makes: ``count`` consecutive numbers from ``start``."""

    name: str
    kind: str
    start: int
    count: int
    shape: tuple[int, ...]  # of the output sample
    depth: int
    role: str
    labels: list | None = None  # the vertices' own labels, when the layer has them (DAN)


def _block_vertices(block: Block, roles: list[str], granularity: str):
    index = range(block.count)
    # "module:index" labels: str, so pypaddle.graph.write and GraphML take them as they are.
    labels = [f"{block.name}:{i}" for i in index]
    common = {"module": block.name, "kind": block.kind, "layer": block.depth}
    if block.labels is not None:
        attributes = [
            {**common, "index": i, "label": str(label), "role": r}
            for i, label, r in zip(index, block.labels, roles)
        ]
        return labels, list(zip(labels, attributes))
    shape = block.shape
    has_channels = len(shape) >= 2
    if granularity == "channel" and has_channels:
        units_shape: tuple[int, ...] = (shape[0],)
    elif granularity == "channel" or not shape:
        units_shape = (block.count,)
    else:
        units_shape = shape
    coordinates = np.stack(np.unravel_index(np.arange(block.count), units_shape), axis=1)
    positions = [",".join(map(str, row)) for row in coordinates.tolist()]
    attributes = [
        {**common, "index": i, "position": p, "role": r} for i, p, r in zip(index, positions, roles)
    ]
    if has_channels:
        for attribute, channel in zip(attributes, coordinates[:, 0].tolist()):
            attribute["channel"] = channel
    return labels, list(zip(labels, attributes))


def assemble(
    blocks: list[Block],
    output_vertices: np.ndarray,
    sources: np.ndarray,
    targets: np.ndarray,
    **graph_attributes: Any,
) -> LayeredGraph:
    """The graph of ``blocks`` with edges between vertex numbers; ``output_vertices`` (other
    than inputs) get the role ``"output"``."""
    count = sum(block.count for block in blocks)
    roles = np.empty(count, dtype=object)
    for block in blocks:
        roles[block.start : block.start + block.count] = block.role
    roles[output_vertices[roles[output_vertices] != "input"]] = "output"
    labels: list[Any] = []
    vertices: list[tuple[Any, dict]] = []
    for block in blocks:
        block_roles = roles[block.start : block.start + block.count].tolist()
        block_labels, block_vertices = _block_vertices(
            block, block_roles, graph_attributes["granularity"]
        )
        labels += block_labels
        vertices += block_vertices
    graph = LayeredGraph()
    graph.graph.update(graph_attributes)
    graph.add_nodes_from(vertices)
    add_edges_from_arrays(graph, labels, sources, targets)
    return graph
