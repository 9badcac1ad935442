"""A masked network whose neurons and connections follow a directed acyclic graph."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import networkx as nx
import numpy as np
import torch
from torch import nn

from pypaddle.errors import ConfigError, InputTypeError, StructureError
from pypaddle.graph import CachedLayeredGraph
from pypaddle.graph.layering import edge_index, layer_array
from pypaddle.sparse import _dan_numba as compiled
from pypaddle.sparse._common import (
    MaskedModel,
    check_size,
    flatten_input,
    input_shape,
    resolve_activation,
)
from pypaddle.sparse._dan_kernel import FAST_ACTIVATIONS, DanPlan, DanSinks
from pypaddle.sparse._dan_layer import DanLayer, pack_per_layer_entries
from pypaddle.sparse._structure import (
    input_vertex,
    mask_edges,
    output_vertex,
    structure_from_positions,
)
from pypaddle.sparse.masked import MaskedLinearLayer, cached_mask_values

__all__ = ["KERNELS", "MaskedDeepDAN"]

KERNELS = ("auto", "compiled", "torch", "modules")


def _check_kernel(kernel: Any) -> None:
    if kernel not in KERNELS:
        choices = ", ".join(map(repr, KERNELS))
        raise ConfigError(f"unknown kernel {kernel!r}; choose one of {choices}")


class MaskedDeepDAN(MaskedModel):
    """A network with one neuron per vertex of a DAG and one weight per edge.

    Semantics (see DESIGN.md): every input feature feeds every source vertex; vertex ``v``
    computes ``act(norm?(b_v + sum over edges u -> v of w_uv * h_u))``, so skip connections
    are summed before the activation like any other incoming edge; every sink (out-degree
    0), whatever its layer, feeds every output. An isolated vertex is both a source and a
    sink: it reads every input and feeds every output.

    The graph is compiled once: the vertices of layer ``L`` form one masked linear layer that
    reads the concatenated activations of the layers from the lowest one with an edge into
    ``L`` up to ``L - 1``; its mask holds exactly the graph's edges. The layers' weights,
    biases and masks are packed into ``hidden_weight``, ``hidden_bias``, ``hidden_mask``
    and ``hidden_bias_mask`` (layer blocks one after another), and ``layers_main_hidden[i]``
    is a :class:`~pypaddle.sparse.MaskedLinearLayer` whose tensors are views into them, so
    a deep graph costs autograd and the optimizer two parameters, not two per layer.
    ``forward`` never touches networkx. The structure is not modified.

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
    kernel : {"auto", "compiled", "torch", "modules"}
        What runs the hidden layers (also settable later as ``model.kernel``).
        ``"compiled"``: a numba-compiled loop over the active edges (CPU, float32 or
        float64; ``pip install 'pypaddle[fast]'``). ``"torch"``: one autograd node running
        one matrix product per layer, on any device and dtype. ``"modules"``: layer by
        layer with ordinary autograd, which is also what activations other than
        ReLU/tanh/sigmoid/identity, layer norm, tracing and ``torch.compile`` get.
        ``"auto"`` picks compiled or torch by an estimate of their costs (the compiled
        loop for deep, narrow or sparse graphs; BLAS for wide, dense layers), and the
        module path while a hidden layer has forward hooks (the kernels run the layers
        without calling them, so only that path calls their hooks). All give the same
        outputs and gradients.

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
        kernel: str = "auto",
    ) -> None:
        super().__init__()
        shape, features = input_shape(size_input)
        size_output = check_size(size_output, "size_output")
        _check_kernel(kernel)
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

        # Layer L is a [width, columns] block of the packed weight, row-major, blocks in
        # layer order; its mask holds exactly the graph's edges into L (layer 0: all True).
        first_blocks = np.asarray(self._first_block[1:], dtype=np.int64)
        first_hidden = np.concatenate(([0], starts[first_blocks - 1]))
        columns = np.where(np.arange(widths.size) == 0, features, starts[:-1] - first_hidden)
        block_starts = np.concatenate(([0], np.cumsum(widths * columns)))
        mask = torch.zeros(int(block_starts[-1]), dtype=torch.bool)
        mask[: int(block_starts[1])] = True
        entries = (
            block_starts[target_layers]
            + (targets - starts[target_layers]) * columns[target_layers]
            + sources
            - first_hidden[target_layers]
        )
        mask[torch.from_numpy(entries)] = True
        # Every vertex starts as nn.Linear starts a neuron, with its *active* fan-in.
        fan_in = np.bincount(targets, minlength=order.size)
        fan_in[: widths[0]] = features
        bound = torch.from_numpy(1 / np.sqrt(np.maximum(fan_in, 1)))
        row_length = torch.from_numpy(np.repeat(columns, widths))
        weight = torch.empty(mask.numel()).uniform_(-1, 1)
        bias = torch.empty(order.size).uniform_(-1, 1)
        self.hidden_weight = nn.Parameter(weight.mul_(bound.repeat_interleave(row_length)))
        self.hidden_bias = nn.Parameter(bias.mul_(bound))
        self.register_buffer("hidden_mask", mask)
        self.register_buffer("hidden_bias_mask", torch.ones(order.size, dtype=torch.bool))
        self.layers_main_hidden = nn.ModuleList(
            DanLayer(
                self,
                int(columns[layer]),
                int(widths[layer]),
                (int(block_starts[layer]), int(block_starts[layer + 1])),
                (int(starts[layer]), int(starts[layer + 1])),
            )
            for layer in range(widths.size)
        )
        self.layer_norms = nn.ModuleList(
            nn.LayerNorm(width) if self.use_layer_norm else nn.Identity()
            for width in self.layer_widths
        )
        self.activation = resolve_activation(activation)
        self.kernel = kernel

        out_degree = np.bincount(sources, minlength=order.size)
        sinks = np.flatnonzero(out_degree == 0)
        self._sinks_are_last_layer = sinks.size == widths[-1]
        self.register_buffer("sink_index", torch.from_numpy(sinks), persistent=False)
        contiguous = bool(sinks.size) and sinks[-1] - sinks[0] + 1 == sinks.size
        self._plan = DanPlan(
            vertices=int(starts[-1]),
            reads=tuple(
                (0, 0) if layer == 0 else (int(first_hidden[layer]), int(starts[layer]))
                for layer in range(widths.size)
            ),
            writes=tuple(
                (int(starts[layer]), int(starts[layer + 1])) for layer in range(widths.size)
            ),
            columns=tuple(int(width) for width in columns),
            blocks=tuple(
                (int(block_starts[layer]), int(block_starts[layer + 1]))
                for layer in range(widths.size)
            ),
            sinks=(int(sinks[0]), int(sinks[-1]) + 1) if contiguous else None,
        )
        self.layer_out = MaskedLinearLayer(int(sinks.size), size_output)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        features = flatten_input(input, self.size_input)
        dtype = self.hidden_weight.dtype
        if not features.is_floating_point():
            raise InputTypeError(
                f"MaskedDeepDAN takes floating-point input, got {features.dtype}; convert "
                f"it first, e.g. input.to({dtype})"
            )
        features = features.to(dtype)
        kernel = self._kernel_for(features)
        if kernel == "modules":
            return self._forward_by_modules(features)
        arguments = (
            self.sink_index,
            features,
            self.hidden_weight,
            self.packed_mask_values("hidden_mask", dtype),
            self.hidden_bias,
            self.packed_mask_values("hidden_bias_mask", dtype),
        )
        activation = FAST_ACTIVATIONS[type(self.activation)]
        if kernel == "compiled":
            edges = self._active_edges()
            sinks = compiled.CompiledDanSinks.apply(self._plan, activation, edges, *arguments)
        else:
            sinks = DanSinks.apply(self._plan, activation, *arguments)
        return self.layer_out(sinks)

    def _kernel_for(self, features: torch.Tensor) -> str:
        """Which of "compiled", "torch" or "modules" runs the hidden layers (see ``kernel``)."""
        _check_kernel(self.kernel)
        if (
            self.kernel == "modules"
            or type(self.activation) not in FAST_ACTIVATIONS
            or self.use_layer_norm
            or torch.jit.is_tracing()
            or torch.compiler.is_compiling()
        ):
            return "modules"
        if self.kernel == "torch":
            return "torch"
        if self.kernel == "auto" and self._layers_have_hooks():
            return "modules"
        if compiled.supports(features):
            if self.kernel == "compiled":
                return "compiled"
            preferred = compiled.preferred(self._plan, self._active_edges(), features.shape[0])
            return "compiled" if preferred else "torch"
        if self.kernel == "compiled":
            raise ConfigError(
                "kernel='compiled' needs numba (pip install 'pypaddle[fast]') and a float32 "
                f"or float64 input on the CPU; got {features.dtype} on {features.device}"
                + (
                    ""
                    if compiled.available()
                    else ", and numba is not installed or fails to import"
                )
            )
        return "torch"

    def _layers_have_hooks(self) -> bool:
        """Whether a hidden layer has forward (pre-)hooks, which only the module path calls."""
        return any(
            layer._forward_hooks or layer._forward_pre_hooks for layer in self.layers_main_hidden
        )

    def packed_mask_values(self, name: str, dtype: torch.dtype) -> torch.Tensor | None:
        """The packed mask buffer ``name`` as 0/1 values of ``dtype`` (None if all True),
        cached until the mask is edited (through any layer's view or directly)."""
        cache = self.__dict__.setdefault("_packed_masks", {})
        return cached_mask_values(cache, name, self._buffers[name], dtype)

    def _active_edges(self) -> compiled.ActiveEdges:
        mask = self.hidden_mask
        if mask.is_inference():  # no version counter to key a cache on
            return compiled.active_edges(self._plan, mask)
        key = (mask, mask._version, mask.data_ptr())
        cached = self.__dict__.get("_edges")
        if cached is None or cached[0][0] is not mask or cached[0][1:] != key[1:]:
            cached = self.__dict__["_edges"] = (key, compiled.active_edges(self._plan, mask))
        return cached[1]

    def _load_from_state_dict(
        self,
        state_dict: dict,
        prefix: str,
        local_metadata: dict,
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        # A state_dict from before the hidden layers were packed loads too.
        pack_per_layer_entries(state_dict, prefix, self.layers_main_hidden)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state.pop("_packed_masks", None)
        state.pop("_edges", None)
        return state

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
