"""Compaction of a MaskedDeepDAN into a CompactDAN: dense layers with index gathers.

Why a module of its own rather than a MaskedDeepDAN rebuilt from the pruned structure: a
rebuilt DAN still reads contiguous ranges of earlier vertices through masks (the zeros
cost time), and it cannot say that a source reads only some input features. A
CompactDAN keeps, per graph layer, one dense ``nn.Linear`` over exactly the columns its
kept vertices read: a gather (``index_select``) from the concatenation of the input and
the earlier layers' outputs, skipped where the columns are already one contiguous block.
Its forward is a short loop of ``cat``, ``index_select``, ``linear`` and the activation,
which ``torch.jit.trace``, ``torch.compile`` and the ONNX exporter all follow.
"""

from __future__ import annotations

import copy
from typing import Any, cast

import torch
from torch import nn

from pypaddle.deploy._units import empty_module, masked_weight_and_bias, unit_constants
from pypaddle.sparse import DanLayer
from pypaddle.sparse.dan import MaskedDeepDAN

__all__ = ["CompactDAN", "compact_dan"]


class CompactDAN(nn.Module):
    """The dense remainder of a :class:`MaskedDeepDAN` after :func:`compact`.

    Block 0 is the flattened input; block ``k + 1`` is the output of layer ``k``. Layer
    ``k`` reads the concatenation of blocks ``first`` to ``last`` of its spec, then, where
    its spec says it gathers, only the columns in its ``index_k`` buffer.

    Examples
    --------
    >>> import networkx as nx, torch
    >>> from pypaddle.deploy import compact
    >>> from pypaddle.sparse import MaskedDeepDAN
    >>> model = MaskedDeepDAN(4, 2, nx.DiGraph([(0, 1), (1, 2), (0, 2), (0, 3)]))
    >>> model.layers_main_hidden[1].prune_neurons([0])  # vertex 1: no inputs, then unread
    >>> small = compact(model)
    >>> [(linear.in_features, linear.out_features) for linear in small.linears]
    [(4, 1), (1, 1), (1, 1), (2, 2)]
    >>> x = torch.randn(3, 4)
    >>> torch.allclose(small(x), model(x), atol=1e-6)
    True

    Parameters
    ----------
    size_input : int
        Features per sample (the input is flattened per sample).
    layers : list of (in_features, out_features, first_block, last_block, gathers)
        One entry per hidden layer that kept a vertex, in order; the last entry is the
        output layer.
    activation : nn.Module
        Applied after every hidden layer.
    norms : list of nn.Module, optional
        One per hidden layer (``nn.Identity`` or a ``LayerNorm``); identities if omitted.
    """

    def __init__(
        self,
        size_input: int,
        layers: list[tuple[int, int, int, int, bool]],
        activation: nn.Module,
        norms: list[nn.Module] | None = None,
    ) -> None:
        super().__init__()
        self.size_input = int(size_input)
        self.layer_specs = [tuple(int(value) for value in spec) for spec in layers]
        # Filled in by compact or load: no initialisation (a zero-width one would warn).
        self.linears = nn.ModuleList(
            empty_module(nn.Linear, spec[0], spec[1]) for spec in self.layer_specs
        )
        hidden = len(self.layer_specs) - 1
        self.norms = nn.ModuleList(norms if norms is not None else [nn.Identity()] * hidden)
        self.activation = activation
        self.read_blocks = [(spec[2], spec[3]) for spec in self.layer_specs]
        self.index_names: list[str | None] = []
        for position, (size_in, *_, gathers) in enumerate(self.layer_specs):
            name = f"index_{position}" if gathers else None
            if name is not None:
                self.register_buffer(name, torch.zeros(size_in, dtype=torch.long))
            self.index_names.append(name)

    def config(self) -> dict[str, Any]:
        """Constructor arguments besides the modules (see ``pypaddle.deploy.save``)."""
        return {"size_input": self.size_input, "layers": [list(s) for s in self.layer_specs]}

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        blocks = [input.reshape(input.shape[0], self.size_input)]
        last = len(self.linears) - 1
        for position, linear in enumerate(self.linears):
            first, last_block = self.read_blocks[position]
            reads = (
                blocks[first]
                if first == last_block
                else torch.cat(blocks[first : last_block + 1], 1)
            )
            name = self.index_names[position]
            if name is not None:
                reads = reads.index_select(1, self.get_buffer(name))
            if position == last:
                return linear(reads)
            blocks.append(self.activation(self.norms[position](linear(reads))))
        raise AssertionError("a CompactDAN always has an output layer")


def compact_dan(model: MaskedDeepDAN) -> CompactDAN:
    """The :class:`CompactDAN` computing what ``model`` computes (see :func:`compact`)."""
    plan = model.plan  # layer ranges, what each reads, the sinks: one source of truth
    vertices = plan.vertices
    read_from = [low for low, _ in plan.reads]
    # A LayerNorm reads every vertex of its layer; a BatchNorm has one entry per vertex.
    pinned = model.use_layer_norm or getattr(model, "normalization", None) is not None
    layers = cast(list[DanLayer], list(model.layers_main_hidden))
    masks = [layer.mask.detach().cpu() for layer in layers]
    pairs = [masked_weight_and_bias(layer) for layer in layers]
    weights = [weight for weight, _ in pairs]
    biases = [bias for _, bias in pairs]
    out_weight, out_bias = masked_weight_and_bias(model.layer_out)
    sinks = torch.tensor(plan.sinks, dtype=torch.long)

    # Forward: vertices that no kept vertex feeds output the constant act(bias).
    kept = torch.ones(vertices, dtype=torch.bool)
    constants = torch.zeros(vertices, dtype=torch.float64)
    for layer, (start, end) in enumerate(plan.writes):
        low = read_from[layer]
        if layer == 0:
            live = masks[0].any(1)
        else:
            gone = ~kept[low:start]
            biases[layer] += weights[layer][:, gone] @ constants[low:start][gone]
            live = masks[layer][:, kept[low:start]].any(1)
        if pinned:
            continue
        values = unit_constants([model.activation], biases[layer], model.layer_out.weight)
        kept[start:end] = live
        constants[start:end] = torch.where(live, 0.0, values)
    gone = ~kept[sinks]
    out_bias += out_weight[:, gone] @ constants[sinks][gone]

    # Backward: vertices that no kept vertex (or output) reads go.
    used = torch.zeros(vertices, dtype=torch.bool)
    used[sinks] = model.layer_out.mask.detach().cpu().any(0) & kept[sinks]
    for layer in range(len(plan.widths) - 1, -1, -1):
        (start, end), low = plan.writes[layer], read_from[layer]
        if not pinned:
            kept[start:end] &= used[start:end]
        if layer > 0:
            rows = kept[start:end]
            used[low:start] |= masks[layer][rows].any(0) & kept[low:start]

    return _build(model, kept, masks, weights, biases, out_weight, out_bias)


def _build(
    model: MaskedDeepDAN,
    kept: torch.Tensor,
    masks: list[torch.Tensor],
    weights: list[torch.Tensor],
    biases: list[torch.Tensor],
    out_weight: torch.Tensor,
    out_bias: torch.Tensor,
) -> CompactDAN:
    features, plan = model.in_features, model.plan
    # Column of every kept vertex in the concatenation [input | kept vertices].
    column = torch.full((plan.vertices,), -1, dtype=torch.long)
    column[kept] = features + torch.arange(int(kept.sum()))
    block_start = [0]  # first column of each block of the compact model
    block_of_column = [0] * features
    specs, tensors, norms = [], [], []

    def blocks_read(columns: torch.Tensor) -> tuple[int, int, torch.Tensor | None]:
        """The blocks ``columns`` fall in, and the gather within them (None: all of them)."""
        newest = len(block_start) - 1
        if columns.numel() == 0:
            return newest, newest, columns
        first, last = block_of_column[int(columns[0])], block_of_column[int(columns[-1])]
        end = block_start[last + 1] if last < newest else len(block_of_column)
        local = columns - block_start[first]
        contiguous = torch.equal(local, torch.arange(end - block_start[first]))
        return first, last, None if contiguous else local

    for layer, ((start, end), (low, _)) in enumerate(zip(plan.writes, plan.reads)):
        rows = kept[start:end].nonzero().reshape(-1)
        if rows.numel() == 0:
            continue
        if layer == 0:
            sources = masks[0][rows].any(0).nonzero().reshape(-1)
            columns = sources
        else:
            sources = (masks[layer][rows].any(0) & kept[low:start]).nonzero().reshape(-1)
            columns = column[low + sources]
        first, last, index = blocks_read(columns)
        specs.append((columns.numel(), rows.numel(), first, last, index is not None))
        tensors.append((weights[layer][rows][:, sources], biases[layer][rows], index))
        norm = model.layer_norms[layer]
        norms.append(copy.deepcopy(norm))
        block_start.append(len(block_of_column))
        block_of_column.extend([len(block_start) - 1] * rows.numel())

    sink_positions = torch.tensor(plan.sinks, dtype=torch.long)
    read = model.layer_out.mask.detach().cpu().any(0) & kept[sink_positions]
    sources = read.nonzero().reshape(-1)
    first, last, index = blocks_read(column[sink_positions[sources]])
    specs.append((sources.numel(), out_weight.shape[0], first, last, index is not None))
    tensors.append((out_weight[:, sources], out_bias, index))

    result = CompactDAN(features, specs, copy.deepcopy(model.activation), norms)
    reference = model.layer_out.weight
    result.to(device=reference.device, dtype=reference.dtype)
    with torch.no_grad():
        linears = cast(list[nn.Linear], list(result.linears))
        for linear, name, (weight, bias, index) in zip(linears, result.index_names, tensors):
            linear.weight.copy_(weight)
            linear.bias.copy_(bias)
            if name is not None and index is not None:
                result.get_buffer(name).copy_(index)
    return result
