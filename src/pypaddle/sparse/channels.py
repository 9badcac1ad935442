"""Channel-level structure of a convolution: which output channels read which input channels.

A conv's *channel connectivity* is a bool ``[out_channels, in_channels]`` matrix (True where
the kernel of that pair is active); :meth:`MaskedConv2d.channel_connectivity` reads it from
the mask and :meth:`MaskedConv2d.set_channel_connectivity` writes it. This module turns graphs
into such matrices and back, vectorised (scipy sparse arrays, no loop per edge):

- a bipartite graph, one vertex per input and per output channel
  (:func:`bipartite_connectivity`; :meth:`MaskedConv2d.generate_structure` is the inverse);
- a relational graph over a few vertices that each own a group of channels, as in the
  relational graphs of You et al. (2020): output channels of ``v`` read the input channels
  of ``u`` when ``u -> v`` is an edge (both ways for an undirected graph), and their own
  when ``self_loops`` (:func:`relational_connectivity`, back with
  :func:`relational_structure`). Any ``pypaddle.graph`` prior or networkx graph will do.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import networkx as nx
import numpy as np
import scipy.sparse
import torch

from pypaddle.errors import ConfigError, InputTypeError, StructureError
from pypaddle.graph.build import add_edges_from_arrays
from pypaddle.sparse._common import check_size

__all__ = [
    "bipartite_connectivity",
    "channel_groups",
    "relational_connectivity",
    "relational_structure",
]


def _check_graph(graph: Any) -> None:
    if not isinstance(graph, nx.Graph):
        raise InputTypeError(f"expected a networkx graph, got {type(graph).__name__}")


def _edges_among(
    graph: nx.Graph, labels: list[Hashable], *, require_all: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Positions in ``labels`` of the (source, target) of every edge among ``labels``.

    Both directions of an undirected edge are given. With ``require_all`` a label missing
    from the graph is a StructureError; otherwise it is a vertex without edges.
    """
    if len(set(labels)) != len(labels):
        raise StructureError("a vertex stands for two channels; give each channel its own vertex")
    present = np.fromiter((label in graph for label in labels), dtype=bool, count=len(labels))
    if not present.any() or (require_all and not present.all()):
        missing = [label for label, here in zip(labels, present) if not here]
        raise StructureError(
            f"the graph has no vertex {missing[0]!r} ({len(missing)} of the {len(labels)} "
            "channel vertices are missing); add them or pass the labels it uses"
        )
    positions = np.flatnonzero(present)
    nodelist = [labels[i] for i in positions]
    adjacency = nx.to_scipy_sparse_array(graph, nodelist=nodelist, weight=None, format="coo")
    return positions[adjacency.row], positions[adjacency.col]


def bipartite_connectivity(
    graph: nx.Graph,
    inputs: Sequence[Hashable] | int,
    outputs: Sequence[Hashable] | int,
) -> torch.Tensor:
    """Bool ``[len(outputs), len(inputs)]``: True where ``graph`` joins input ``c`` to output ``o``.

    ``inputs`` / ``outputs`` are the vertex labels of the input / output channels in
    channel order; an int ``n`` means the labels ``("input", 0..n-1)`` /
    ``("output", 0..n-1)`` that :meth:`MaskedConv2d.generate_structure` uses. A directed
    graph's edges must run from input to output channels; an undirected graph's edges may
    be given either way. A channel label missing from the graph is a channel without
    edges (but not every label may be missing). Vertices that are not channels may be
    present; no edge may join two inputs, two outputs, or (directed) an output to an input.

    Examples
    --------
    >>> import networkx as nx
    >>> graph = nx.DiGraph([("x", "a"), ("y", "a"), ("y", "b")])
    >>> bipartite_connectivity(graph, ["x", "y"], ["a", "b"]).tolist()
    [[True, True], [False, True]]
    """
    _check_graph(graph)
    if isinstance(inputs, int):
        inputs = [("input", c) for c in range(check_size(inputs, "inputs"))]
    if isinstance(outputs, int):
        outputs = [("output", o) for o in range(check_size(outputs, "outputs"))]
    inputs, outputs = list(inputs), list(outputs)
    count = len(inputs)
    rows, columns = _edges_among(graph, inputs + outputs, require_all=False)
    from_input, to_input = rows < count, columns < count
    wrong = from_input == to_input
    if graph.is_directed():
        wrong |= ~from_input & to_input
    if wrong.any():
        k = int(np.flatnonzero(wrong)[0])
        labels = inputs + outputs
        kind = (
            "joins two input channels"
            if from_input[k] and to_input[k]
            else "joins two output channels"
            if not from_input[k] and not to_input[k]
            else "runs from an output channel to an input channel"
        )
        raise StructureError(
            f"the edge {(labels[rows[k]], labels[columns[k]])!r} {kind}; a channel graph "
            "only has edges from input to output channels"
        )
    connectivity = torch.zeros(len(outputs), count, dtype=torch.bool)
    keep = from_input & ~to_input
    connectivity[torch.from_numpy(columns[keep] - count), torch.from_numpy(rows[keep])] = True
    return connectivity


def channel_groups(channels: int, nodes: int) -> np.ndarray:
    """The vertex (0..nodes-1) that owns each of ``channels`` channels, in even blocks.

    As ``numpy.array_split``: the first ``channels % nodes`` vertices own one more.

    >>> channel_groups(5, 2).tolist()
    [0, 0, 0, 1, 1]
    """
    channels, nodes = check_size(channels, "channels"), check_size(nodes, "number of vertices")
    if nodes > channels:
        raise ConfigError(
            f"{nodes} vertices cannot share {channels} channels; every vertex needs at least "
            "one channel, so use a graph with at most as many vertices as channels"
        )
    sizes = np.full(nodes, channels // nodes)
    sizes[: channels % nodes] += 1
    return np.repeat(np.arange(nodes), sizes)


def relational_connectivity(
    graph: nx.Graph,
    in_channels: int,
    out_channels: int,
    *,
    nodes: Sequence[Hashable] | None = None,
    self_loops: bool = True,
) -> torch.Tensor:
    """Bool ``[out_channels, in_channels]`` from a relational graph over channel groups.

    The channels of each side are split into ``len(nodes)`` even blocks (see
    :func:`channel_groups`), block ``i`` owned by ``nodes[i]`` (by default the graph's
    vertices in order). Output channels of ``v`` read input channels of ``u`` when
    ``u -> v`` is an edge (undirected: either way) or, with ``self_loops``, when ``u == v``.

    Examples
    --------
    >>> import networkx as nx
    >>> relational_connectivity(nx.DiGraph([(0, 1)]), 2, 4).int().tolist()
    [[1, 0], [1, 0], [1, 1], [1, 1]]
    """
    _check_graph(graph)
    nodes = list(graph) if nodes is None else list(nodes)
    if not nodes:
        raise StructureError("the relational graph has no vertices; it needs at least one")
    sources, targets = _edges_among(graph, nodes, require_all=True)
    adjacency = np.zeros((len(nodes), len(nodes)), dtype=bool)
    adjacency[sources, targets] = True
    if self_loops:
        np.fill_diagonal(adjacency, True)
    in_owner = channel_groups(in_channels, len(nodes))
    out_owner = channel_groups(out_channels, len(nodes))
    return torch.from_numpy(adjacency.T[np.ix_(out_owner, in_owner)])


def relational_structure(
    connectivity: Any,
    nodes: Sequence[Hashable] | int,
    *,
    self_loops: bool = True,
) -> nx.DiGraph:
    """The relational graph of a channel connectivity (or of a conv): the inverse of
    :func:`relational_connectivity`.

    ``u -> v`` is an edge when some output channel of ``v`` reads some input channel of
    ``u``; with ``self_loops`` the loops ``v -> v`` are left out (the forward direction
    adds them). ``connectivity`` is a bool ``[out, in]`` tensor or anything with a
    ``channel_connectivity()`` method (a masked conv); ``nodes`` the vertex labels or their
    number.

    Examples
    --------
    >>> import networkx as nx
    >>> prior = nx.DiGraph([(0, 1), (1, 2)])
    >>> sorted(relational_structure(relational_connectivity(prior, 6, 6), 3).edges)
    [(0, 1), (1, 2)]
    """
    if hasattr(connectivity, "channel_connectivity"):
        connectivity = connectivity.channel_connectivity()
    matrix = torch.as_tensor(connectivity).detach().cpu().numpy() != 0
    if matrix.ndim != 2:
        raise ConfigError(f"a channel connectivity is 2-d [out, in], got shape {matrix.shape}")
    nodes = list(range(check_size(nodes, "nodes"))) if isinstance(nodes, int) else list(nodes)
    out_owner = channel_groups(matrix.shape[0], len(nodes))
    in_owner = channel_groups(matrix.shape[1], len(nodes))
    # Sum the channel blocks: one sparse product with the two owner indicator matrices.
    out_indicator = scipy.sparse.csr_array(
        (np.ones(out_owner.size), (out_owner, np.arange(out_owner.size))),
        shape=(len(nodes), out_owner.size),
    )
    in_indicator = scipy.sparse.csr_array(
        (np.ones(in_owner.size), (in_owner, np.arange(in_owner.size))),
        shape=(len(nodes), in_owner.size),
    )
    reads = (out_indicator @ scipy.sparse.csr_array(matrix, dtype=float) @ in_indicator.T).toarray()
    targets, sources = np.nonzero(reads)
    if self_loops:
        keep = targets != sources
        targets, sources = targets[keep], sources[keep]
    structure = nx.DiGraph()
    add_edges_from_arrays(structure, nodes, sources, targets)
    return structure
