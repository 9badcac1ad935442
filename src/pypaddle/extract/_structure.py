"""Models that know their own graph (MaskedDeepDAN): their structure, read as edge arrays.

A DAN's forward runs one custom autograd kernel over all its layers, which no tracer can
see into; its ``generate_structure`` already says exactly which weights connect which
neurons, so the extraction reads that instead.
"""

from __future__ import annotations

import copy
from collections.abc import Hashable
from typing import Any

import numpy as np

from pypaddle.graph.layering import edge_index

__all__ = ["structure_edges"]


def structure_edges(model: Any, threshold: float | None):
    """``(hidden labels, internal edges, input reads, output count)`` of a DAN.

    Vertices are numbered hidden first (in the structure's order), then the outputs.
    ``internal`` holds ``(sources, targets)`` among them; ``reads`` holds
    ``(targets, input features)``. With a ``threshold``, a copy of the model drops the
    weights with ``|w| <= threshold`` first; the model itself is not touched.
    """
    if threshold is not None:
        model = copy.deepcopy(model)
        model.recompute_mask(threshold)
    structure = model.generate_structure(include_input=True, include_output=True)
    labels: list[Hashable] = list(structure)
    inputs = {("input", i) for i in range(model.in_features)}
    outputs = {("output", j) for j in range(model.num_classes)}
    hidden = [label for label in labels if label not in inputs and label not in outputs]
    local = {label: position for position, label in enumerate(hidden)}
    local.update({("output", j): len(hidden) + j for j in range(model.num_classes)})
    # Input vertices get negative codes -1 - feature, so one array tells them apart.
    local.update({("input", i): -1 - i for i in range(model.in_features)})
    sources, targets = edge_index(structure, dict(zip(labels, range(len(labels)))))
    code = np.fromiter(map(local.__getitem__, labels), dtype=np.int64, count=len(labels))
    sources, targets = code[sources], code[targets]
    reads = sources < 0
    internal = (sources[~reads], targets[~reads])
    return hidden, internal, (targets[reads], -1 - sources[reads]), model.num_classes
