"""DeepCellDAN on a Watts-Strogatz(200, 3, 0.8) structure, 3 x 50 x 50 images.

The structure is oriented from lower to higher label. The same conv-BN-ReLU cells run in
pypaddle's ``DeepCellDAN`` (schedule compiled once) and, where it can run, in deepstruct's
(a topological sort and dict look-ups per forward), so the ratio is the cost of the
scheduling around identical cells. Run alone with ``python benchmarks/bench_cells.py``.
"""

from __future__ import annotations

import sys

import networkx as nx
import torch

import _deepstruct as deepstruct
from _table import Goal, Row, Table
from _timing import compare, time_once, train_step
from pypaddle.sparse import DeepCellDAN, conv_bn_relu_cell

NODES, NEIGHBOURS, REWIRING, CLASSES = 200, 3, 0.8, 10


def oriented_watts_strogatz(seed: int = 0) -> nx.DiGraph:
    graph = nx.watts_strogatz_graph(NODES, NEIGHBOURS, REWIRING, seed=seed)
    structure = nx.DiGraph()
    structure.add_nodes_from(sorted(graph))
    structure.add_edges_from((min(u, v), max(u, v)) for u, v in graph.edges)
    return structure


def run(table: Table, *, quick: bool) -> None:
    batch = 20 if quick else 100
    table.section(
        f"DeepCellDAN, Watts-Strogatz({NODES}, {NEIGHBOURS}, {REWIRING}) oriented low -> high, "
        f"conv-BN-ReLU cells, 3x50x50, batch {batch}, forward+backward"
    )
    structure = oriented_watts_strogatz()
    inputs = torch.randn(batch, 3, 50, 50, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    ours = DeepCellDAN(CLASSES, 3, conv_bn_relu_cell, structure)
    label = "DeepCellDAN / deepstruct DeepCellDAN"
    try:
        sparse = deepstruct._module("deepstruct.sparse")
        graph = deepstruct.layered_graph(structure)
        theirs = deepstruct._run(
            "DeepCellDAN", sparse.DeepCellDAN, CLASSES, 3, conv_bn_relu_cell, graph
        )
        theirs_step = deepstruct.checked("DeepCellDAN forward", train_step(theirs, inputs))
    except deepstruct.Unavailable as error:
        seconds = time_once(train_step(ours, inputs))
        table.add(Row(label, seconds, note=f"deepstruct: {error}"))
        return
    result = compare(train_step(ours, inputs), theirs_step, rounds=3 if quick else 7, number=1)
    table.add(Row(label, result.subject, result.reference, result.ratio, Goal(1.0, at_most=True)))


if __name__ == "__main__":
    torch.set_num_threads(1)
    table = Table()
    run(table, quick="--quick" in sys.argv)
    table.summary()
