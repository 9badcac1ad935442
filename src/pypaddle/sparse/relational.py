"""Relational networks (You, Leskovec, He & Xie 2020): layers that exchange messages on a graph.

A relational graph of ``n`` nodes gives every node a block of the neurons (or channels)
of each hidden layer. In one layer, the block of node ``v`` reads the blocks of its
neighbours and its own: the weight ``[out, in]`` is masked by the block mask
``kron(A + I, ones(block, block))`` (``A`` the adjacency; ``A[u, v]`` lets ``v`` read
``u``; an undirected graph goes both ways). The models here are masked models of this
library, so pruning, counting, compaction and extraction treat them as any other:

- :class:`RelationalMLP`: a dense masked stem ``inputs -> width``, ``layers`` relational
  layers ``width -> width``, a dense masked head ``width -> outputs`` (the shape of You et
  al.'s MLP; their stem and head are dense too);
- :class:`RelationalCNN`: a dense masked 3x3 conv stem ``channels -> width``, ``layers``
  relational convs, global average pooling and a dense masked linear head.

On the complete graph every mask is full and the model is exactly the dense one.
:func:`matched_width` picks the width at which a relational model has as many
parameters as a dense baseline, as You et al. compare graphs at equal budgets.

Splitting a width over the nodes: by default a width must be a multiple of ``n`` (every
node owns ``width / n`` units), otherwise a :class:`~pypaddle.errors.ConfigError` names
both numbers, the nearest multiples and the uneven split; with ``uneven=True`` the first
``width % n`` nodes own one unit more (as ``numpy.array_split``).
"""

from __future__ import annotations

import functools
from collections.abc import Hashable, Sequence
from typing import Any, cast

import networkx as nx
import numpy as np
import torch
from torch import nn

from pypaddle._core.checks import check_count
from pypaddle.errors import ConfigError, InputTypeError, StructureError
from pypaddle.sparse._arguments import check_flag, check_tensor_input
from pypaddle.sparse._common import MaskedModel, check_size, resolve_activation
from pypaddle.sparse.channels import channel_groups, relational_connectivity, relational_structure
from pypaddle.sparse.conv import MaskedConv2d
from pypaddle.sparse.ffn import MaskedDeepFFN
from pypaddle.sparse.masked import MaskedLinearLayer

__all__ = ["RelationalCNN", "RelationalMLP", "matched_width", "relational_mask"]


def _check_graph(graph: Any) -> list[Hashable]:
    """The nodes of a relational graph, in order, if it is a usable networkx graph."""
    if not isinstance(graph, nx.Graph):
        raise InputTypeError(
            f"a relational graph must be a networkx graph, got {type(graph).__name__}; make "
            "one with pypaddle.graph.ws_flex or networkx"
        )
    if graph.number_of_nodes() == 0:
        raise StructureError("the relational graph has no nodes; it needs at least one")
    return list(graph)


def _check_split(width: int, nodes: int, what: str, uneven: bool) -> None:
    """Refuse a width that cannot be split over ``nodes`` blocks (see the module notes)."""
    if width < nodes:
        raise ConfigError(
            f"{what} = {width} is smaller than the {nodes} nodes of the relational graph; "
            f"every node needs at least one unit: give {what} >= {nodes} (a multiple of "
            f"{nodes}, e.g. {nodes} or {2 * nodes}) or a graph with fewer nodes"
        )
    block, rest = divmod(width, nodes)
    if rest and not uneven:
        raise ConfigError(
            f"{what} = {width} does not split evenly over the {nodes} nodes of the relational "
            f"graph ({width} = {nodes} x {block} + {rest}); give a multiple of {nodes} "
            f"({block * nodes} or {(block + 1) * nodes}), or uneven=True to let the first "
            f"{rest} nodes own {block + 1} units and the other {nodes - rest} own {block}"
        )


def _adjacency(graph: nx.Graph, nodes: list[Hashable]) -> np.ndarray:
    """Bool ``[n, n]``: ``[u, v]`` where ``v`` reads ``u`` (an edge or ``u == v``)."""
    matrix = nx.to_scipy_sparse_array(graph, nodelist=nodes, weight=None, format="coo")
    adjacency = np.zeros((len(nodes), len(nodes)), dtype=bool)
    adjacency[matrix.row, matrix.col] = True
    if not graph.is_directed():
        adjacency |= adjacency.T
    np.fill_diagonal(adjacency, True)
    return adjacency


def relational_mask(
    graph: nx.Graph, in_width: int, out_width: int, *, uneven: bool = False
) -> torch.Tensor:
    """The bool ``[out_width, in_width]`` mask of one relational layer on ``graph``.

    ``kron(A + I, ones(out_block, in_block))`` transposed to torch's ``[out, in]``: the
    units of node ``v`` read the units of ``u`` when ``u -> v`` is an edge (an undirected
    edge goes both ways) or ``u == v``. Nodes own consecutive blocks in the graph's node
    order. A width that ``n`` does not divide is a ConfigError unless ``uneven``.

    Examples
    --------
    >>> path = nx.path_graph(3)  # 0 - 1 - 2
    >>> relational_mask(path, 3, 6).int().tolist()
    [[1, 1, 0], [1, 1, 0], [1, 1, 1], [1, 1, 1], [0, 1, 1], [0, 1, 1]]
    """
    nodes = _check_graph(graph)
    in_width = check_size(in_width, "in_width")
    out_width = check_size(out_width, "out_width")
    uneven = check_flag(uneven, "uneven")
    _check_split(in_width, len(nodes), "in_width", uneven)
    _check_split(out_width, len(nodes), "out_width", uneven)
    return relational_connectivity(graph, in_width, out_width, nodes=nodes)


def _active_weights(adjacency: np.ndarray, width: int) -> int:
    """Weights a ``width -> width`` relational layer keeps (blocks as channel_groups)."""
    sizes = np.bincount(channel_groups(width, adjacency.shape[0]), minlength=adjacency.shape[0])
    return int(sizes @ adjacency.astype(np.int64) @ sizes)


def _parameter_count(
    adjacency: np.ndarray,
    width: int,
    *,
    inputs: int,
    outputs: int,
    layers: int,
    kernel_area: int,
    norm: bool,
) -> int:
    stem = inputs * width * kernel_area + width
    relational = layers * (_active_weights(adjacency, width) * kernel_area + width)
    head = width * outputs + outputs
    norms = 2 * width * (layers + 1) if norm else 0
    return stem + relational + head + norms


def matched_width(
    graph: nx.Graph,
    dense_width: int,
    *,
    inputs: int,
    outputs: int,
    layers: int,
    kernel_size: int = 1,
    norm: bool = False,
    uneven: bool = False,
) -> int:
    """The width at which a relational model has as many parameters as the dense one.

    The dense baseline is the same model at ``dense_width`` on the complete graph (every
    mask full). Parameters are counted as the masks keep them: weights of the stem, of
    the ``layers`` relational layers (``kernel_size ** 2`` per kept channel pair for a
    CNN), of the head, every bias and, with ``norm``, the two affine vectors of each of the
    ``layers + 1`` hidden norms. Among the widths the graph can be split into (multiples of
    its ``n`` nodes, or any width ``>= n`` with ``uneven``) the one whose count is closest
    to the baseline's is returned, the smaller on a tie.

    Parameters
    ----------
    graph : networkx.Graph
        The relational graph.
    dense_width : int
        Width of the dense baseline.
    inputs, outputs : int
        Input features (for a CNN: image channels) and outputs of the model.
    layers : int
        Relational layers.
    kernel_size : int
        1 for :class:`RelationalMLP`; the conv kernel size for :class:`RelationalCNN`.
    norm : bool
        Whether the model has a norm (layer norm, batch norm) after each hidden layer.
    uneven : bool
        Allow widths that are not multiples of ``n`` (see :func:`relational_mask`).

    Examples
    --------
    >>> ring = nx.cycle_graph(8)  # every node reads 3 of 8 blocks
    >>> matched_width(ring, 64, inputs=64, outputs=10, layers=3)
    96
    >>> matched_width(nx.complete_graph(8), 64, inputs=64, outputs=10, layers=3)
    64
    """
    nodes = _check_graph(graph)
    dense_width = check_size(dense_width, "dense_width")
    parameters = functools.partial(
        _parameter_count,
        inputs=check_size(inputs, "inputs"),
        outputs=check_size(outputs, "outputs"),
        layers=check_size(layers, "layers"),
        kernel_area=check_size(kernel_size, "kernel_size") ** 2,
        norm=check_flag(norm, "norm"),
    )
    uneven = check_flag(uneven, "uneven")
    count = len(nodes)
    target = parameters(np.ones((count, count), dtype=bool), dense_width)
    adjacency = _adjacency(graph, nodes)
    step = 1 if uneven else count
    # The count grows with the width: walk up to the first width at or past the target.
    width = count
    while parameters(adjacency, width) < target:
        width += step
    if width > count and target - parameters(adjacency, width - step) <= (
        parameters(adjacency, width) - target
    ):
        width -= step
    return width


def _mask_layers(layers: Sequence[MaskedLinearLayer | MaskedConv2d], mask: torch.Tensor) -> None:
    """Give every relational layer the block mask, drawn anew over its active fan-in."""
    for layer in layers:
        if isinstance(layer, MaskedConv2d):
            layer.set_channel_connectivity(mask)
        else:
            layer.set_mask(mask)
        layer.reset_parameters(keep_mask=True)


def _read_graph(masks: Sequence[torch.Tensor], nodes: list[Hashable], directed: bool) -> nx.Graph:
    """The node pairs that still exchange messages in any relational layer."""
    graph: nx.Graph = nx.DiGraph() if directed else nx.Graph()
    graph.add_nodes_from(nodes)
    for mask in masks:
        graph.add_edges_from(relational_structure(mask, nodes).edges)
    return graph


class RelationalMLP(MaskedDeepFFN):
    """A relational MLP: ``layers`` rounds of message exchange on a graph, between a dense
    stem and a dense head.

    ``input -> stem (inputs -> width) -> [relational layer (width -> width)] * layers ->
    head (width -> outputs)``, each hidden layer followed by the optional layer norm and
    the activation. It is a :class:`~pypaddle.sparse.MaskedDeepFFN` with ``hidden_layers
    = [width] * (layers + 1)`` whose layers ``1 .. layers`` carry the block mask of
    :func:`relational_mask`: everything that works on a masked FFN (pruning, counting,
    compaction, ``generate_structure``) works here. The relational layers are drawn over
    their *active* fan-in (``MaskedLinearLayer.reset_parameters(keep_mask=True)``), so a
    sparse graph starts at the scale of a dense layer; on the complete graph every mask is
    full and the model is exactly the dense MLP.

    Parameters
    ----------
    input_shape : int or tuple of int
        Input features, or the shape of one sample (flattened).
    num_classes : int
        Outputs.
    graph : networkx.Graph
        The relational graph, ``n`` nodes (e.g. :func:`pypaddle.graph.ws_flex`); a
        DiGraph's edges carry messages one way only.
    width : int
        Units per hidden layer; a multiple of ``n`` unless ``uneven``.
    layers : int
        Relational layers, >= 1.
    uneven : bool
        Let a width that ``n`` does not divide be split unevenly (the first ``width % n``
        nodes own one unit more).
    use_layer_norm : bool
        A LayerNorm after every hidden layer.
    activation : nn.Module, class or callable
        ReLU by default.

    Examples
    --------
    >>> import torch
    >>> from pypaddle.graph import ws_flex
    >>> model = RelationalMLP(64, 10, ws_flex(8, 3, 0.0), 32, layers=2)
    >>> model(torch.randn(5, 64)).shape
    torch.Size([5, 10])
    >>> [round(layer.density, 3) for layer in model.relational_layers]
    [0.5, 0.5]
    >>> sorted(model.relational_graph().edges) == sorted(model.graph.edges)
    True
    """

    def __init__(
        self,
        input_shape: int | Sequence[int],
        num_classes: int,
        graph: nx.Graph,
        width: int,
        *,
        layers: int = 3,
        uneven: bool = False,
        use_layer_norm: bool = False,
        activation: Any = nn.ReLU,
    ) -> None:
        nodes = _check_graph(graph)
        width = check_size(width, "width")
        layers = check_count(layers, "layers (relational layers)", 1)
        uneven = check_flag(uneven, "uneven")
        _check_split(width, len(nodes), "width", uneven)
        mask = relational_mask(graph, width, width, uneven=uneven)
        super().__init__(
            input_shape,
            num_classes,
            [width] * (layers + 1),
            use_layer_norm=use_layer_norm,
            activation=activation,
        )
        self.graph = graph.copy()
        self.nodes = nodes
        self.width = width
        self.uneven = uneven
        _mask_layers(self.relational_layers, mask)

    @property
    def relational_layers(self) -> list[MaskedLinearLayer]:
        """The ``layers`` masked linear layers that exchange messages on the graph."""
        return [cast(MaskedLinearLayer, layer) for layer in self.layers_main_hidden[1:]]

    def relational_graph(self) -> nx.Graph:
        """The graph read back from the masks: ``u - v`` while any relational layer still
        lets the units of one node read the other's (after pruning: the surviving graph)."""
        return _read_graph(
            [layer.mask for layer in self.relational_layers], self.nodes, self.graph.is_directed()
        )


class RelationalCNN(MaskedModel):
    """A relational CNN: a dense conv stem, ``layers`` relational convs, a dense head.

    ``image -> stem conv (channels -> width) -> [relational conv (width -> width)] *
    layers -> global average pooling -> masked linear head``; every conv is
    ``kernel_size`` x ``kernel_size`` with ``"same"`` padding, followed by the optional
    batch norm and the activation; ``pool_after`` lists the relational layers (0-based)
    after which a 2x2 max pooling halves the image. A relational conv's channel
    connectivity is :func:`relational_mask` (every kernel of a kept channel pair is
    kept), drawn over its active fan-in; on the complete graph the model is exactly the
    dense CNN.

    Parameters
    ----------
    input_shape : (channels, height, width)
        One image.
    num_classes : int
        Outputs.
    graph : networkx.Graph
        The relational graph, ``n`` nodes.
    width : int
        Channels of every hidden conv; a multiple of ``n`` unless ``uneven``.
    layers : int
        Relational convs, >= 1.
    kernel_size : int
        Of every conv.
    pool_after : sequence of int
        Relational layers followed by a 2x2 max pooling.
    batch_norm : bool
        A BatchNorm2d after every conv.
    uneven : bool
        As in :class:`RelationalMLP`.
    activation : nn.Module, class or callable
        ReLU by default.

    Examples
    --------
    >>> import torch
    >>> model = RelationalCNN((1, 8, 8), 10, nx.cycle_graph(4), 16, layers=2)
    >>> model(torch.randn(3, 1, 8, 8)).shape
    torch.Size([3, 10])
    >>> model.relational_layers[0].channel_connectivity().float().mean().item()
    0.75
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        graph: nx.Graph,
        width: int,
        *,
        layers: int = 3,
        kernel_size: int = 3,
        pool_after: Sequence[int] = (),
        batch_norm: bool = False,
        uneven: bool = False,
        activation: Any = nn.ReLU,
    ) -> None:
        super().__init__()
        nodes = _check_graph(graph)
        if (
            not isinstance(input_shape, Sequence)
            or isinstance(input_shape, str)
            or len(input_shape) != 3
        ):
            raise ConfigError(f"input_shape must be (channels, height, width), got {input_shape!r}")
        channels, height, image_width = (check_size(size, "input_shape") for size in input_shape)
        num_classes = check_size(num_classes, "num_classes")
        width = check_size(width, "width")
        layers = check_count(layers, "layers (relational layers)", 1)
        kernel_size = check_size(kernel_size, "kernel_size")
        batch_norm = check_flag(batch_norm, "batch_norm")
        uneven = check_flag(uneven, "uneven")
        if isinstance(pool_after, (str, bytes)) or not isinstance(pool_after, Sequence):
            raise ConfigError(f"pool_after must be a list of layer indices, got {pool_after!r}")
        pools = {check_count(index, "every pool_after index") for index in pool_after}
        if pools and max(pools) >= layers:
            raise ConfigError(
                f"pool_after = {sorted(pools)} names a layer beyond the {layers} relational "
                f"layers (0 .. {layers - 1})"
            )
        if min(height, image_width) < 2 ** len(pools):
            raise ConfigError(
                f"{len(pools)} poolings halve the {height}x{image_width} image to nothing; "
                "pool fewer times or give larger images"
            )
        _check_split(width, len(nodes), "width", uneven)
        mask = relational_mask(graph, width, width, uneven=uneven)
        self.activation = resolve_activation(activation)

        self.input_shape = (channels, height, image_width)
        self.num_classes = num_classes
        self.graph = graph.copy()
        self.nodes = nodes
        self.width = width
        self.uneven = uneven
        self.pool_after = tuple(sorted(pools))
        self.stem = MaskedConv2d(channels, width, kernel_size, padding="same")
        self.layers_relational = nn.ModuleList(
            MaskedConv2d(width, width, kernel_size, padding="same") for _ in range(layers)
        )
        self.norms = nn.ModuleList(
            nn.BatchNorm2d(width) if batch_norm else nn.Identity() for _ in range(layers + 1)
        )
        self.pool = nn.MaxPool2d(2)
        self.head = MaskedLinearLayer(width, num_classes)
        _mask_layers(self.relational_layers, mask)

    @property
    def relational_layers(self) -> list[MaskedConv2d]:
        """The ``layers`` masked convs that exchange messages on the graph."""
        return [cast(MaskedConv2d, layer) for layer in self.layers_relational]

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        check_tensor_input(input, type(self).__name__)
        if input.dim() != 4 or tuple(input.shape[1:]) != self.input_shape:
            shape = ", ".join(map(str, self.input_shape))
            raise ConfigError(
                f"RelationalCNN takes images of shape [batch, {shape}], got {tuple(input.shape)}"
            )
        hidden = self.activation(self.norms[0](self.stem(input)))
        for index, (layer, norm) in enumerate(zip(self.layers_relational, self.norms[1:])):
            hidden = self.activation(norm(layer(hidden)))
            if index in self.pool_after:
                hidden = self.pool(hidden)
        return self.head(hidden.mean(dim=(2, 3)))

    def relational_graph(self) -> nx.Graph:
        """The graph read back from the channel connectivity of the relational convs (after
        pruning: the node pairs that still exchange messages in any layer)."""
        return _read_graph(
            [layer.channel_connectivity() for layer in self.relational_layers],
            self.nodes,
            self.graph.is_directed(),
        )
