"""Filling a graph from edge arrays, fast."""

from __future__ import annotations

import operator
from collections.abc import Hashable, Sequence

import networkx as nx
import numpy as np

from pypaddle.graph.layered import LayeredGraph
from pypaddle.graph.layering import vertex_array

__all__ = ["add_edges_from_arrays"]


def _runs(keys: np.ndarray) -> tuple[list[int], list[int]]:
    """Start and end offsets of the runs of equal values in a sorted array."""
    bounds = np.flatnonzero(np.diff(keys)) + 1
    starts = np.concatenate(([0], bounds))
    ends = np.concatenate((bounds, [keys.size]))
    return starts.tolist(), ends.tolist()


def add_edges_from_arrays(
    graph: nx.DiGraph,
    labels: Sequence[Hashable],
    sources: np.ndarray,
    targets: np.ndarray,
) -> None:
    """Add the edges ``labels[sources[i]] -> labels[targets[i]]`` to ``graph``.

    Vertices missing from the graph are added. Equivalent to ``graph.add_edges_from`` but
    about three times faster for large edge sets: the adjacency of a ``DiGraph`` is filled
    one vertex at a time with C-level ``dict.update`` calls instead of one Python step per
    edge. Each edge still gets its own (empty) attribute dict, shared by the successor and
    predecessor views exactly as networkx does it. This relies on the ``DiGraph``
    adjacency layout (``_succ`` / ``_pred``), so it is used only for ``DiGraph`` itself and
    :class:`~pypaddle.graph.LayeredGraph`; other graph classes get ``add_edges_from``.
    """
    sources = np.asarray(sources, dtype=np.int64)
    targets = np.asarray(targets, dtype=np.int64)
    label_array = vertex_array(list(labels))
    graph.add_nodes_from(label_array.tolist())
    if not (type(graph) is nx.DiGraph or isinstance(graph, LayeredGraph)):
        graph.add_edges_from(zip(label_array[sources].tolist(), label_array[targets].tolist()))
        return
    if sources.size == 0:
        return
    by_source = np.argsort(sources, kind="stable")
    source_sorted, target_sorted = sources[by_source], targets[by_source]
    edge_data: list[dict] = [{} for _ in range(sources.size)]
    target_labels = label_array[target_sorted].tolist()
    successors = graph._succ
    starts, ends = _runs(source_sorted)
    for vertex, start, end in zip(label_array[source_sorted[starts]].tolist(), starts, ends):
        successors[vertex].update(zip(target_labels[start:end], edge_data[start:end]))

    by_target = np.argsort(target_sorted, kind="stable")
    shared_data = operator.itemgetter(*by_target.tolist())(edge_data)
    if sources.size == 1:
        shared_data = (shared_data,)
    target_sorted = target_sorted[by_target]
    source_labels = label_array[source_sorted[by_target]].tolist()
    predecessors = graph._pred
    starts, ends = _runs(target_sorted)
    for vertex, start, end in zip(label_array[target_sorted[starts]].tolist(), starts, ends):
        predecessors[vertex].update(zip(source_labels[start:end], shared_data[start:end]))
