"""A masked network whose neurons and connections follow a directed acyclic graph."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import networkx as nx
import numpy as np
import torch
from torch import nn

from pypaddle.errors import StructureError
from pypaddle.graph import CachedLayeredGraph
from pypaddle.graph.layering import edge_index, layer_array
from pypaddle.sparse._common import (
    MaskedModel,
    check_size,
    flatten_input,
    input_shape,
    resolve_activation,
)
from pypaddle.sparse._dan_kernel import FAST_ACTIVATIONS, DanPlan, dan_sinks
from pypaddle.sparse._structure import (
    input_vertex,
    mask_edges,
    output_vertex,
    structure_from_positions,
)
from pypaddle.sparse.masked import MaskedLinearLayer

__all__ = ["MaskedDeepDAN"]


class MaskedDeepDAN(MaskedModel):
    """A network with one neuron per vertex of a DAG and one weight per edge.

    Semantics (see DESIGN.md): every input feature feeds every source vertex; vertex ``v``
    computes ``act(norm?(b_v + sum over edges u -> v of w_uv * h_u))``, so skip connections
    are summed before the activation like any other incoming edge; every sink (out-degree
    0), whatever its layer, feeds every output. An isolated vertex is both a source and a
    sink: it reads every input and feeds every output.

    The graph is compiled once: the vertices of layer ``L`` form one masked linear layer that
    reads the concatenated activations of the layers from the lowest one with an edge into
    ``L`` up to ``L - 1``; its mask holds exactly the graph's edges. ``forward`` runs one
    matrix product per layer and never touches networkx. The structure is not modified.

    Parameters
    ----------
    size_input : int or tuple of int
        Number of input features, or the shape of one input sample.
    size_output : int
        Number of outputs.
    structure : networkx.DiGraph
        Any directed acyclic graph with at least one vertex (e.g. a
        :class:`~pypaddle.graph.CachedLayeredGraph`). Labels may be any hashables.
    use_layer_norm : bool
        Normalise each layer's pre-activations with a ``LayerNorm``.
    activation : nn.Module, nn.Module class or callable
        The activation of every vertex (``nn.ReLU`` by default).

    Examples
    --------
    >>> import networkx as nx, torch
    >>> structure = nx.DiGraph([("a", "b"), ("b", "c"), ("a", "c")])
    >>> model = MaskedDeepDAN(4, 2, structure)
    >>> model(torch.randn(3, 4)).shape
    torch.Size([3, 2])
    >>> sorted(model.generate_structure().edges)
    [('a', 'b'), ('a', 'c'), ('b', 'c')]
    """

    def __init__(
        self,
        size_input: int | Sequence[int],
        size_output: int,
        structure: nx.DiGraph,
        *,
        use_layer_norm: bool = False,
        activation: Any = nn.ReLU,
    ) -> None:
        super().__init__()
        shape, features = input_shape(size_input)
        size_output = check_size(size_output, "size_output")
        vertices, layers = layer_array(structure)
        if not vertices:
            raise StructureError(
                "the structure has no vertices; add at least one vertex (each is one neuron)"
            )
        position_in_graph = dict(zip(vertices, range(len(vertices))))
        graph_sources, graph_targets = edge_index(structure, position_in_graph)

        # Positions in layer order: vertices sorted by layer, insertion order within a layer.
        order = np.argsort(layers, kind="stable")
        position = np.empty_like(order)
        position[order] = np.arange(order.size)
        widths = np.bincount(layers)
        layer_of_position = layers[order]
        starts = np.concatenate(([0], np.cumsum(widths)))  # hidden position of each layer
        sources, targets = position[graph_sources], position[graph_targets]
        target_layers = layer_of_position[targets]
        lowest_source_layer = np.arange(widths.size)
        np.minimum.at(lowest_source_layer, target_layers, layer_of_position[sources])

        self.input_shape = shape
        self.size_input = features
        self.size_output = size_output
        self.use_layer_norm = bool(use_layer_norm)
        self.layer_widths = tuple(widths.tolist())
        self._labels = [vertices[i] for i in order]
        self._vertex_data = [(vertex, dict(data)) for vertex, data in structure.nodes(data=True)]
        # Layer L reads activation blocks first_block[L] .. L, where block 0 is the input
        # and block k + 1 is layer k: one contiguous slice of the concatenation.
        self._first_block = (0, *(int(layer) + 1 for layer in lowest_source_layer[1:]))

        hidden = []
        edge_order = np.argsort(target_layers, kind="stable")
        edges_per_layer = np.split(edge_order, np.cumsum(np.bincount(target_layers))[:-1])
        for layer, width in enumerate(self.layer_widths):
            if layer == 0:
                hidden.append(MaskedLinearLayer(features, width))
                continue
            first_hidden = starts[self._first_block[layer] - 1]
            linear = MaskedLinearLayer(int(starts[layer] - first_hidden), width)
            incoming = edges_per_layer[layer]
            mask = torch.zeros_like(linear.mask)
            rows = torch.from_numpy(targets[incoming] - starts[layer])
            columns = torch.from_numpy(sources[incoming] - first_hidden)
            mask[rows, columns] = True
            linear.set_mask(mask)
            linear.reset_parameters(keep_mask=True)
            hidden.append(linear)
        self.layers_main_hidden = nn.ModuleList(hidden)
        self.layer_norms = nn.ModuleList(
            nn.LayerNorm(width) if self.use_layer_norm else nn.Identity()
            for width in self.layer_widths
        )
        self.activation = resolve_activation(activation)

        out_degree = np.bincount(sources, minlength=order.size)
        sinks = np.flatnonzero(out_degree == 0)
        self._sinks_are_last_layer = sinks.size == widths[-1]
        self.register_buffer("sink_index", torch.from_numpy(sinks), persistent=False)
        contiguous = bool(sinks.size) and sinks[-1] - sinks[0] + 1 == sinks.size
        self._plan = DanPlan(
            vertices=int(starts[-1]),
            reads=tuple(
                (0, 0) if layer == 0 else (int(starts[first - 1]), int(starts[layer]))
                for layer, first in enumerate(self._first_block)
            ),
            writes=tuple(
                (int(starts[layer]), int(starts[layer + 1])) for layer in range(widths.size)
            ),
            sinks=(int(sinks[0]), int(sinks[-1]) + 1) if contiguous else None,
        )
        self.layer_out = MaskedLinearLayer(int(sinks.size), size_output)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        features = flatten_input(input, self.size_input)
        dtype = self.layer_out.weight.dtype
        if features.is_floating_point():
            features = features.to(dtype)
        kind = FAST_ACTIVATIONS.get(type(self.activation))
        if kind is not None and not self.use_layer_norm and features.is_floating_point():
            layers = self.layers_main_hidden
            sinks = dan_sinks(
                self._plan,
                kind,
                self.sink_index,
                features,
                # Straight from the modules' dicts: nn.Module.__getattr__ would cost a few
                # microseconds per layer and call on deep graphs.
                [layer._parameters["weight"] for layer in layers],
                [layer.mask_values("mask", dtype) for layer in layers],
                [layer._parameters["bias"] for layer in layers],
                [layer.mask_values("bias_mask", dtype) for layer in layers],
            )
            return self.layer_out(sinks)
        return self._forward_by_modules(features)

    def _forward_by_modules(self, features: torch.Tensor) -> torch.Tensor:
        """Layer by layer with ordinary autograd: any activation, layer norm, module hooks."""
        blocks = [features]
        for layer, norm, first in zip(self.layers_main_hidden, self.layer_norms, self._first_block):
            reads = blocks[first] if first == len(blocks) - 1 else torch.cat(blocks[first:], 1)
            blocks.append(self.activation(norm(layer(reads))))
        if self._sinks_are_last_layer:
            sinks = blocks[-1]
        else:
            sinks = torch.cat(blocks[1:], 1).index_select(1, self.sink_index)
        return self.layer_out(sinks)

    @property
    def num_vertices(self) -> int:
        """Number of vertices (hidden neurons)."""
        return len(self._labels)

    def generate_structure(
        self, include_input: bool = False, include_output: bool = False
    ) -> CachedLayeredGraph:
        """The structure as a graph, built from the current masks.

        An untouched model gives back the structure it was built from: the same labels
        (in the same order, with their attributes) and the same edges. After masking it
        gives the surviving subgraph (every vertex stays; a vertex whose edges are all
        masked is isolated). ``include_input`` adds vertices ``("input", i)`` with their
        edges to the sources, ``include_output`` adds ``("output", j)`` with the edges from
        the sinks; these carry a ``role`` attribute (``"input"`` / ``"output"``).
        """
        labels: list[Any] = list(self._labels)
        vertices: list[tuple[Any, dict]] = []
        edges = []
        starts = np.concatenate(([0], np.cumsum(self.layer_widths)))
        if include_input:
            labels += [input_vertex(i) for i in range(self.size_input)]
            vertices += [(label, {"role": "input"}) for label in labels[self.num_vertices :]]
            edges.append(mask_edges(self.layers_main_hidden[0].mask, self.num_vertices, 0))
        vertices += [(vertex, dict(data)) for vertex, data in self._vertex_data]
        for layer in range(1, len(self.layer_widths)):
            mask = self.layers_main_hidden[layer].mask
            first_hidden = starts[self._first_block[layer] - 1]
            edges.append(mask_edges(mask, int(first_hidden), int(starts[layer])))
        if include_output:
            output_start = len(labels)
            labels += [output_vertex(j) for j in range(self.size_output)]
            vertices += [(label, {"role": "output"}) for label in labels[output_start:]]
            out_targets, out_sources = self.layer_out.mask.detach().cpu().nonzero(as_tuple=True)
            sink_positions = self.sink_index.cpu().numpy()
            edges.append((sink_positions[out_sources.numpy()], out_targets.numpy() + output_start))
        taken = set(labels[: self.num_vertices])
        clash = [label for label in labels[self.num_vertices :] if label in taken]
        if clash:
            raise StructureError(
                f"the structure already has a vertex labelled {clash[0]!r}, which "
                "generate_structure uses for an input or output; relabel the structure's "
                "vertices (e.g. with networkx.relabel_nodes) to include inputs and outputs"
            )
        return structure_from_positions(vertices, labels, edges)
