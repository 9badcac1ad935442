"""Model -> graph: ``pypaddle.extract.to_graph`` against deepstruct's ``GraphTransform``.

1. A CNN Conv(1, 4, 3) - ReLU - Conv(4, 8, 3, stride 2) - ReLU - Linear on 1 x 28 x 28, at
   neuron level (goal: 15x faster than deepstruct).
2. An FFN 784-100-100-10 of ``nn.Linear`` at neuron level.
3. A ResNet-18-shaped model (the one the tests define; random weights, 1 x 3 x 224 x 224)
   at channel and at layer level (goal: under 2 s each). deepstruct cannot read it.

deepstruct needs a threshold for plain linear layers (it keeps ``|w| >= 0.01``), so both
sides get ``threshold=0.01``; its ``GraphTransform`` patches ``forward`` of every module
it sees, so each of its runs gets a fresh model. deepstruct takes seconds per call and is
timed once per model in ``--quick`` mode, three times otherwise.
"""

from __future__ import annotations

import copy
import importlib.util
import statistics
import warnings
from pathlib import Path
from types import ModuleType

import torch
from torch import nn

import _deepstruct as deepstruct
from _table import Goal, Row, Table
from _timing import median_time, time_once
from pypaddle.extract import to_graph

THRESHOLD = 0.01
SEED = 0


def _test_models() -> ModuleType:
    """The models of tests/extract/models.py (one definition for tests and benchmark)."""
    path = Path(__file__).resolve().parents[1] / "tests" / "extract" / "models.py"
    spec = importlib.util.spec_from_file_location("_extract_test_models", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _deepstruct_seconds(model: nn.Module, example: torch.Tensor, repeats: int) -> tuple[float, int]:
    """Median seconds of deepstruct's GraphTransform on fresh copies, and its edge count."""
    transform = deepstruct.graph_transform(example)
    times, graphs = [], []
    for fresh in [copy.deepcopy(model) for _ in range(repeats)]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            times.append(time_once(lambda fresh=fresh: graphs.append(transform(fresh))))
    edges = graphs[-1].number_of_edges()
    return statistics.median(times), edges


def _against_deepstruct(
    table: Table, label: str, model: nn.Module, example: torch.Tensor, goal, *, quick: bool
) -> None:
    ours = median_time(lambda: to_graph(model, example, threshold=THRESHOLD), repeats=5)
    graph = to_graph(model, example, threshold=THRESHOLD)
    size = f"{graph.number_of_nodes()} vertices, {graph.number_of_edges()} edges"
    try:
        theirs, their_edges = _deepstruct_seconds(model, example, 1 if quick else 3)
    except deepstruct.Unavailable as error:
        table.add(Row(label, ours, goal=goal, note=f"deepstruct: not runnable here ({error})"))
        return
    note = f"pypaddle: {size}; deepstruct: {their_edges} edges"
    table.add(Row(label, ours, theirs, theirs / ours, goal, note=note))


def run(table: Table, *, quick: bool) -> None:
    table.section("extract: model -> graph (to_graph vs deepstruct GraphTransform)")
    models = _test_models()
    torch.manual_seed(SEED)
    _against_deepstruct(
        table,
        "CNN 1x28x28, neuron level: deepstruct / pypaddle",
        models.small_cnn(),
        torch.randn(1, 1, 28, 28),
        Goal(15, at_most=False),
        quick=quick,
    )
    torch.manual_seed(SEED)
    ffn = nn.Sequential(
        nn.Linear(784, 100), nn.ReLU(), nn.Linear(100, 100), nn.ReLU(), nn.Linear(100, 10)
    )
    _against_deepstruct(
        table,
        "FFN 784-100-100-10, neuron level: deepstruct / pypaddle",
        ffn,
        torch.randn(1, 784),
        None,
        quick=quick,
    )

    torch.manual_seed(SEED)
    resnet = models.ResNet18()
    example = torch.randn(1, 3, 224, 224)
    for granularity in ("channel", "layer"):
        seconds = median_time(
            lambda granularity=granularity: to_graph(resnet, example, granularity=granularity),
            repeats=3 if quick else 5,
            number=1,
        )
        graph = to_graph(resnet, example, granularity=granularity)
        table.add(
            Row(
                f"ResNet-18 1x3x224x224, {granularity} level: pypaddle time",
                seconds,
                goal=Goal(2, at_most=True, on_seconds=True),
                note=f"{graph.number_of_nodes()} vertices, {graph.number_of_edges()} edges; "
                "deepstruct cannot read a ResNet",
            )
        )
