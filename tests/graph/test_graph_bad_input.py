"""Bad input to every public function of :mod:`pypaddle.graph` (issue 16): each value of the
catalogue is refused with a pypaddle error, and the graph handed in is left as it was."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import networkx as nx
import pytest

from bad_values import (
    NOT_COUNTS,
    NOT_FRACTIONS,
    NOT_SEEDS,
    assert_unchanged,
    snapshot,
    value_id,
)
from pypaddle import graph as pg
from pypaddle.errors import PaddleError

# A count of zero is allowed by some arguments and not by others; these are never counts.
NOT_POSITIVE_COUNTS = [0, *NOT_COUNTS]
NOT_GRAPHS: list[Any] = [None, 3, "graph", [(0, 1)], {0: [1]}, object(), math.nan]

CASES: list[tuple[str, Callable[[Any], Any], list[Any]]] = [
    ("erdos_renyi-n", lambda v: pg.erdos_renyi(v, 0.5, seed=0), NOT_COUNTS),
    ("erdos_renyi-p", lambda v: pg.erdos_renyi(5, v, seed=0), NOT_FRACTIONS),
    ("erdos_renyi-seed", lambda v: pg.erdos_renyi(5, 0.5, seed=v), NOT_SEEDS),
    ("watts_strogatz-n", lambda v: pg.watts_strogatz(v, 2, 0.1, seed=0), NOT_POSITIVE_COUNTS),
    ("watts_strogatz-k", lambda v: pg.watts_strogatz(8, v, 0.1, seed=0), NOT_COUNTS),
    ("watts_strogatz-p", lambda v: pg.watts_strogatz(8, 2, v, seed=0), NOT_FRACTIONS),
    ("watts_strogatz-seed", lambda v: pg.watts_strogatz(8, 2, 0.1, seed=v), NOT_SEEDS),
    ("barabasi_albert-n", lambda v: pg.barabasi_albert(v, 2, seed=0), NOT_POSITIVE_COUNTS),
    ("barabasi_albert-m", lambda v: pg.barabasi_albert(8, v, seed=0), NOT_POSITIVE_COUNTS),
    ("barabasi_albert-seed", lambda v: pg.barabasi_albert(8, 2, seed=v), NOT_SEEDS),
    (
        "random_layered-widths",
        lambda v: pg.random_layered([3, v], density=0.5, seed=0),
        NOT_POSITIVE_COUNTS,
    ),
    (
        "random_layered-density",
        lambda v: pg.random_layered([3, 3], density=v, seed=0),
        NOT_FRACTIONS,
    ),
    (
        "random_layered-skip_density",
        lambda v: pg.random_layered([3, 3, 3], density=0.5, skip_density=v, seed=0),
        NOT_FRACTIONS,
    ),
    (
        "random_layered-seed",
        lambda v: pg.random_layered([3, 3], density=0.5, seed=v),
        NOT_SEEDS,
    ),
    ("complete_layered-widths", lambda v: pg.complete_layered([2, v]), NOT_POSITIVE_COUNTS),
    ("small_world_layered-layers", lambda v: pg.small_world_layered(v, 8, 2), NOT_POSITIVE_COUNTS),
    ("small_world_layered-width", lambda v: pg.small_world_layered(3, v, 2), NOT_POSITIVE_COUNTS),
    (
        "small_world_layered-neighbours",
        lambda v: pg.small_world_layered(3, 8, v),
        NOT_POSITIVE_COUNTS,
    ),
    ("small_world_layered-p", lambda v: pg.small_world_layered(3, 8, 2, v), NOT_FRACTIONS),
    ("small_world_layered-seed", lambda v: pg.small_world_layered(3, 8, 2, seed=v), NOT_SEEDS),
    ("to_dag-graph", lambda v: pg.to_dag(v), NOT_GRAPHS),
    ("summary-graph", lambda v: pg.summary(v), NOT_GRAPHS),
    ("layer_graph-graph", lambda v: pg.layer_graph(v), NOT_GRAPHS),
    ("layer_index-graph", lambda v: pg.layer_index(v), NOT_GRAPHS),
    ("scale-structure", lambda v: pg.scale(v, 2), NOT_GRAPHS),
]


@pytest.mark.parametrize(
    ("call", "value"),
    [
        pytest.param(call, value, id=f"{name}-{value_id(value)}")
        for name, call, values in CASES
        for value in values
    ],
)
def test_generators_and_functions_refuse_bad_values(call, value):
    with pytest.raises(PaddleError):
        call(value)


def diamond() -> nx.DiGraph:
    graph = nx.DiGraph([(0, 1), (0, 2), (1, 3), (2, 3)])
    graph.graph["name"] = "diamond"
    return graph


GRAPH_CASES: list[tuple[str, Callable[[nx.DiGraph, Any], Any], list[Any]]] = [
    (
        "to_dag-order",
        lambda g, v: pg.to_dag(g, order=v),
        ["sideways", 3, None, [0, 1], [9, 8, 7, 6]],
    ),
    ("to_dag-seed", lambda g, v: pg.to_dag(g, order="random", seed=v), NOT_SEEDS),
    ("summary-seed", lambda g, v: pg.summary(g, seed=v), NOT_SEEDS),
    ("scale-sizes", lambda g, v: pg.scale(g, v), NOT_POSITIVE_COUNTS),
    (
        "scale-size-of-a-vertex",
        lambda g, v: pg.scale(g, {0: v, 1: 1, 2: 1, 3: 1}),
        NOT_POSITIVE_COUNTS,
    ),
]


@pytest.mark.parametrize(
    ("call", "value"),
    [
        pytest.param(call, value, id=f"{name}-{value_id(value)}")
        for name, call, values in GRAPH_CASES
        for value in values
    ],
)
def test_a_refused_call_leaves_the_graph_as_it_was(call, value):
    graph = diamond()
    before = snapshot(graph)
    with pytest.raises(PaddleError):
        call(graph, value)
    assert_unchanged(before, graph)


@pytest.mark.parametrize("value", NOT_GRAPHS, ids=value_id)
def test_draw_refuses_what_is_not_a_graph_and_writes_nothing(tmp_path, value):
    with pytest.raises(PaddleError):
        pg.draw(value, tmp_path / "g.png")
    assert list(tmp_path.iterdir()) == []
