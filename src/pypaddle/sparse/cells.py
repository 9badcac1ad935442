"""Cell networks: one small conv module per vertex of a DAG (RandWire style).

A vertex's cell maps ``[B, in_degree, H, W]`` (a source's: the input's channels) to one
channel ``[B, 1, H', W']``. The outputs of a vertex's predecessors are zero-padded to their
largest height and width and concatenated, in the structure's order of in-edges, to form
its input; the sinks feed a 1x1 conv, batch norm, global average pooling and a linear head.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any, cast

import networkx as nx
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pypaddle.errors import ConfigError, InputTypeError, StructureError
from pypaddle.graph import CachedLayeredGraph
from pypaddle.graph.layering import layer_array
from pypaddle.sparse._arguments import check_flag, check_tensor_input
from pypaddle.sparse._common import MaskedModel, attribute_alias, check_size, renamed_keywords
from pypaddle.sparse._structure import structure_from_positions
from pypaddle.sparse.conv import MaskedConv2d
from pypaddle.sparse.masked import MaskedLinearLayer

__all__ = [
    "ConvBNReLUCell",
    "DeepCellDAN",
    "SeparableConvCell",
    "conv_bn_relu_cell",
    "separable_conv_cell",
]

CellConstructor = Callable[..., nn.Module]


# -- built-in cells ------------------------------------------------------------------------
class ConvBNReLUCell(nn.Module):
    """``ReLU(BN(conv(x)))`` down to one channel; the conv is masked, "same" padding.

    Input channel ``j`` is the cell's ``j``-th predecessor, so :attr:`input_channel_mask`
    says which incoming edges are still read and :meth:`prune_input_channels` cuts them.
    """

    def __init__(self, in_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv = MaskedConv2d(in_channels, 1, kernel_size, padding="same", bias=False)
        self.norm = nn.BatchNorm2d(1)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.conv(input)))

    @property
    def input_channel_mask(self) -> torch.Tensor:
        """Bool per input channel (incoming edge): True if an active weight reads it."""
        return self.conv.input_channel_mask

    def prune_input_channels(self, indices: Sequence[int] | torch.Tensor) -> None:
        """Stop reading the given input channels (incoming edges)."""
        self.conv.prune_input_channels(indices)


class SeparableConvCell(nn.Module):
    """RandWire's node operation: ReLU, depthwise-separable conv to one channel, BN.

    A depthwise ``kernel_size`` conv per input channel, then a 1x1 conv that sums them into
    one channel (the learned weighted aggregation of the inputs), both masked. A source
    cell (``relu_first=False``) reads the raw input without the leading ReLU.
    """

    def __init__(self, in_channels: int, kernel_size: int = 3, *, relu_first: bool = True) -> None:
        super().__init__()
        self.relu_first = check_flag(relu_first, "relu_first")
        self.depthwise = MaskedConv2d(
            in_channels, in_channels, kernel_size, padding="same", groups=in_channels, bias=False
        )
        self.pointwise = MaskedConv2d(in_channels, 1, 1, bias=False)
        self.norm = nn.BatchNorm2d(1)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if self.relu_first:
            input = F.relu(input)
        return self.norm(self.pointwise(self.depthwise(input)))

    @property
    def input_channel_mask(self) -> torch.Tensor:
        """Bool per input channel: True if both its depthwise kernel and its 1x1 weight live."""
        return self.depthwise.output_channel_mask & self.pointwise.input_channel_mask

    def prune_input_channels(self, indices: Sequence[int] | torch.Tensor) -> None:
        """Stop reading the given input channels (incoming edges)."""
        self.pointwise.prune_input_channels(indices)


def _cell_inputs(is_input: bool, in_degree: int, input_channel_size: int) -> int:
    return input_channel_size if is_input else in_degree


def conv_bn_relu_cell(
    is_input: bool,
    is_output: bool,
    in_degree: int,
    out_degree: int,
    layer: int,
    input_channel_size: int,
    *,
    kernel_size: int = 3,
) -> ConvBNReLUCell:
    """A cell constructor: a :class:`ConvBNReLUCell` for every vertex.

    Pass it as is, or ``functools.partial(conv_bn_relu_cell, kernel_size=5)``.
    """
    return ConvBNReLUCell(_cell_inputs(is_input, in_degree, input_channel_size), kernel_size)


def separable_conv_cell(
    is_input: bool,
    is_output: bool,
    in_degree: int,
    out_degree: int,
    layer: int,
    input_channel_size: int,
    *,
    kernel_size: int = 3,
) -> SeparableConvCell:
    """A cell constructor: a :class:`SeparableConvCell` for every vertex (RandWire's)."""
    channels = _cell_inputs(is_input, in_degree, input_channel_size)
    return SeparableConvCell(channels, kernel_size, relu_first=not is_input)


# -- the network ---------------------------------------------------------------------------
def _stack(tensors: list[torch.Tensor]) -> torch.Tensor:
    """Concatenate along channels after zero-padding (bottom, right) to the largest H, W."""
    if len(tensors) == 1:
        return tensors[0]
    height = max(tensor.shape[2] for tensor in tensors)
    width = max(tensor.shape[3] for tensor in tensors)
    padded = [
        tensor
        if tensor.shape[2] == height and tensor.shape[3] == width
        else F.pad(tensor, (0, width - tensor.shape[3], 0, height - tensor.shape[2]))
        for tensor in tensors
    ]
    return torch.cat(padded, 1)


class DeepCellDAN(MaskedModel):
    """A network with one cell (a small conv module) per vertex of a DAG.

    ``cell_constructor(is_input=, is_output=, in_degree=, out_degree=, layer=,
    input_channel_size=)`` builds the cell of every vertex (see :func:`conv_bn_relu_cell`,
    :func:`separable_conv_cell`); ``is_input`` marks sources (in-degree 0), ``is_output``
    sinks (out-degree 0), ``layer`` is the vertex's layer. A cell maps ``[B, in_degree, H,
    W]`` (a source's: ``[B, in_channels, H, W]``; the constructor protocol keeps its keyword
    name ``input_channel_size``) to ``[B, 1, H', W']``.

    Input channel ``j`` of a vertex is the output of its ``j``-th predecessor in the order of
    ``structure.predecessors(vertex)`` (see :meth:`cell_inputs`); outputs of different sizes
    are zero-padded at the bottom and right to the largest. The sinks' outputs, stacked the
    same way, go through a masked 1x1 conv to ``output_channels``, batch norm, global
    average pooling and a masked linear layer to ``num_classes``.

    The structure is compiled once into lists of positions: ``forward`` never touches
    networkx. The structure itself is not modified.

    Parameters
    ----------
    num_classes : int
        Number of outputs.
    in_channels : int
        Channels of the input images (formerly ``input_channel_size``; that keyword still
        works, with a DeprecationWarning).
    cell_constructor : callable
        Builds the cell of a vertex, called with the keywords above.
    structure : networkx.DiGraph
        A directed acyclic graph with at least one source.
    output_channels : int
        Channels of the masked 1x1 conv after the sinks.

    Examples
    --------
    >>> import networkx as nx, torch
    >>> structure = nx.DiGraph([("a", "b"), ("a", "c"), ("b", "c")])
    >>> model = DeepCellDAN(10, 3, conv_bn_relu_cell, structure)
    >>> model(torch.randn(2, 3, 16, 16)).shape
    torch.Size([2, 10])
    >>> model.cell_inputs("c")
    ['a', 'b']
    >>> model.prune_edges([("b", "c")])
    >>> sorted(model.cell_structure().edges)
    [('a', 'b'), ('a', 'c')]
    """

    input_channel_size = attribute_alias("in_channels")

    @renamed_keywords(input_channel_size="in_channels")
    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        cell_constructor: CellConstructor,
        structure: nx.DiGraph,
        *,
        output_channels: int = 100,
    ) -> None:
        super().__init__()
        self.num_classes = check_size(num_classes, "num_classes")
        self.in_channels = check_size(in_channels, "in_channels")
        output_channels = check_size(output_channels, "output_channels")
        if not callable(cell_constructor):
            raise InputTypeError(
                f"cell_constructor must be callable, got {type(cell_constructor).__name__}"
            )
        if isinstance(structure, nx.DiGraph) and not any(
            degree == 0 for _, degree in structure.in_degree()
        ):
            raise StructureError(
                "the structure has no sources (vertices without predecessors), so no cell "
                "reads the input; give a non-empty directed acyclic graph"
            )
        vertices, layers = layer_array(structure)  # names a cycle if there is one

        order = np.argsort(layers, kind="stable")  # by layer, insertion order within
        self._labels: list[Hashable] = [vertices[i] for i in order]
        position = {label: index for index, label in enumerate(self._labels)}
        self._position_of = position
        self._vertex_data = [(label, dict(structure.nodes[label])) for label in self._labels]
        self._inputs: list[tuple[int, ...]] = [
            tuple(position[u] for u in structure.pred[label]) for label in self._labels
        ]
        out_degree = [structure.out_degree(label) for label in self._labels]
        self._sinks = tuple(i for i, degree in enumerate(out_degree) if degree == 0)

        cells = []
        for index, label in enumerate(self._labels):
            cell = cell_constructor(
                is_input=not self._inputs[index],
                is_output=out_degree[index] == 0,
                in_degree=len(self._inputs[index]),
                out_degree=out_degree[index],
                layer=int(layers[order[index]]),
                input_channel_size=self.in_channels,
            )
            if not isinstance(cell, nn.Module):
                raise InputTypeError(
                    f"cell_constructor returned a {type(cell).__name__} for vertex {label!r}; "
                    "it must return an nn.Module"
                )
            cells.append(cell)
        self.cells = nn.ModuleList(cells)
        self.output_channels = output_channels
        self.last_conv = MaskedConv2d(len(self._sinks), output_channels, 1)
        self.last_norm = nn.BatchNorm2d(output_channels)
        self.classifier = MaskedLinearLayer(output_channels, self.num_classes)

    @property
    def vertices(self) -> list[Hashable]:
        """The vertex labels in the order of :attr:`cells` (by layer)."""
        return list(self._labels)

    def cell(self, vertex: Hashable) -> nn.Module:
        """The cell of ``vertex``."""
        return self.cells[self._position(vertex)]

    def cell_inputs(self, vertex: Hashable) -> list[Hashable]:
        """The predecessors of ``vertex`` in the order of its cell's input channels."""
        return [self._labels[i] for i in self._inputs[self._position(vertex)]]

    def _position(self, vertex: Hashable) -> int:
        try:
            return self._position_of[vertex]
        except (KeyError, TypeError):
            raise StructureError(f"the structure has no vertex {vertex!r}") from None

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        check_tensor_input(input, type(self).__name__)
        if input.dim() != 4 or input.shape[1] != self.in_channels:
            raise ConfigError(
                f"the model takes images [batch, {self.in_channels}, height, width], "
                f"got an input of shape {tuple(input.shape)}"
            )
        dtype = self.classifier.weight.dtype
        if input.is_floating_point() and input.dtype != dtype:
            input = input.to(dtype)
        outputs: list[torch.Tensor] = []
        for index, (cell, inputs) in enumerate(zip(self.cells, self._inputs)):
            reads = _stack([outputs[i] for i in inputs]) if inputs else input
            output = cell(reads)
            if output.dim() != 4 or output.shape[1] != 1:
                raise ConfigError(
                    f"the cell of vertex {self._labels[index]!r} returned shape "
                    f"{tuple(output.shape)} from an input of shape {tuple(reads.shape)}; a "
                    "cell must return one channel, [batch, 1, height, width]"
                )
            outputs.append(output)
        features = self.last_norm(self.last_conv(_stack([outputs[i] for i in self._sinks])))
        return self.classifier(F.adaptive_avg_pool2d(features, 1).flatten(1))

    # -- structure: edges are cell input channels --------------------------------------
    def prune_edges(self, edges: Sequence[tuple[Hashable, Hashable]]) -> None:
        """Cut edges ``(u, v)``: the cell of ``v`` stops reading the output of ``u``.

        Needs cells with ``prune_input_channels`` (the built-in ones). Every edge is
        checked before any is cut.
        """
        if isinstance(edges, (str, bytes)) or not isinstance(edges, Iterable):
            raise InputTypeError(f"prune_edges takes a list of (u, v) pairs, got {edges!r}")
        cuts: dict[int, list[int]] = {}
        for edge in list(edges):
            if isinstance(edge, (str, bytes)) or not isinstance(edge, Sequence) or len(edge) != 2:
                raise InputTypeError(
                    f"prune_edges takes (u, v) pairs, got {edge!r}; give e.g. [(u, v), ...]"
                )
            u, v = edge
            target = self._position(v)
            inputs = self._inputs[target]
            source = self._position(u)
            if source not in inputs:
                raise StructureError(f"the structure has no edge {(u, v)!r}")
            if not hasattr(self.cells[target], "prune_input_channels"):
                raise InputTypeError(
                    f"the cell of vertex {v!r} ({type(self.cells[target]).__name__}) has no "
                    "prune_input_channels, so its edges cannot be cut"
                )
            cuts.setdefault(target, []).append(inputs.index(source))
        for target, channels in cuts.items():
            cast(Any, self.cells[target]).prune_input_channels(channels)

    def cell_structure(self) -> CachedLayeredGraph:
        """The structure as a graph, built from the current masks.

        The same vertex labels (with their attributes) as the structure the model was
        built from, in layer order; an edge ``u -> v`` is kept while the cell of ``v``
        still reads ``u`` (cells exposing ``input_channel_mask``; other cells keep all
        their edges).
        """
        sources, targets = [], []
        for target, inputs in enumerate(self._inputs):
            if not inputs:
                continue
            reads = np.asarray(inputs)
            mask = getattr(self.cells[target], "input_channel_mask", None)
            if isinstance(mask, torch.Tensor) and mask.numel() == len(inputs):
                reads = reads[mask.detach().cpu().numpy()]
            sources.append(reads)
            targets.append(np.full(reads.size, target))
        edges = [(np.concatenate(sources), np.concatenate(targets))] if sources else []
        return structure_from_positions(self._vertex_data, self._labels, edges)

    def extra_repr(self) -> str:
        return (
            f"vertices={len(self._labels)}, sinks={len(self._sinks)}, "
            f"num_classes={self.num_classes}"
        )
