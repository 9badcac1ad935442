"""Neuron- and channel-level graphs from a trace, with sparse matrices instead of loops.

Every traced tensor gets a boolean sparse matrix ``[units, vertices]``: which graph
vertices each of its units stands for. A unit is one element of a sample at neuron level;
at channel level it is one channel of a tensor with channels (``[batch, C, ...]``) and one
feature of a flat tensor (``[batch, F]``). Weighted layers and windows make new vertices
(one per output unit) with edges ``pattern @ matrix`` from the vertices their inputs stand
for; element-wise operations pass matrices on, merges add them, and data movement permutes
their rows. No step loops over weights, edges or pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np
import scipy.sparse as sp
import torch

from pypaddle.errors import ConfigError
from pypaddle.extract import _patterns as patterns
from pypaddle.extract import _settings as settings
from pypaddle.extract._rules import classify
from pypaddle.extract._trace import Op, Trace, tensors_in
from pypaddle.extract._vertices import Block, assemble
from pypaddle.graph import LayeredGraph
from pypaddle.kinds import weight_mask

__all__ = ["unit_graph"]


@dataclass
class _Value:
    shape: tuple[int, ...]  # one sample
    units: int
    matrix: sp.csr_array  # [units, vertices known when it was made]
    depth: int


def _ones(rows: np.ndarray, columns: np.ndarray, shape: tuple[int, int]) -> sp.csr_array:
    data = np.ones(rows.size, dtype=np.float32)
    matrix = sp.csr_array((data, (rows, columns)), shape=shape)
    matrix.sum_duplicates()
    matrix.data[:] = 1
    return matrix


def _widen(matrix: sp.csr_array, columns: int) -> sp.csr_array:
    if matrix.shape[1] == columns:
        return matrix
    return sp.csr_array(
        (matrix.data, matrix.indices, matrix.indptr), shape=(matrix.shape[0], columns)
    )


def _same_units(first: _Value, second: _Value) -> bool:
    """Whether each unit of the two values stands for the same vertices."""
    if first is second:
        return True
    a, b = first.matrix, second.matrix
    return (
        a.shape[0] == b.shape[0]
        and np.array_equal(a.indptr, b.indptr)
        and np.array_equal(a.indices, b.indices)
    )


class _Builder:
    def __init__(self, trace: Trace, granularity: str, threshold: float | None) -> None:
        self.trace = trace
        self.granularity = granularity
        self.threshold = threshold
        self.values: dict[int, _Value] = {}
        self.blocks: list[Block] = []
        self.vertex_count = 0
        self.edge_sources: list[np.ndarray] = []
        self.edge_targets: list[np.ndarray] = []
        self.batch = trace.batch

    # -- units -----------------------------------------------------------------------
    def shape_of(self, value: int, op: Op | None = None) -> tuple[int, ...]:
        tensor = self.trace.tensors[value]
        if tensor.dim() == 0 or tensor.shape[0] != self.batch:
            where = "the model" if op is None else op.describe()
            raise ConfigError(
                f"{where} gives a tensor of shape {tuple(tensor.shape)}, which has lost the "
                f"batch dimension ({self.batch}) of the example input; neuron and channel "
                "graphs need every tensor to keep it, granularity='layer' does not"
            )
        return tuple(tensor.shape[1:])

    def unit_count(self, shape: tuple[int, ...]) -> int:
        if self.granularity == "channel" and len(shape) >= 2:
            return shape[0]
        return math.prod(shape)

    def elements_per_unit(self, shape: tuple[int, ...]) -> int:
        return max(math.prod(shape) // max(self.unit_count(shape), 1), 1)

    def new_block(self, op_name: str, kind: str, shape, depth: int, role="hidden", labels=None):
        units = self.unit_count(shape) if labels is None else len(labels)
        block = Block(op_name, kind, self.vertex_count, units, shape, depth, role, labels)
        self.blocks.append(block)
        self.vertex_count += units
        return block

    def identity_value(self, shape, block: Block, depth: int) -> _Value:
        """A value whose unit ``i`` is vertex ``i`` of ``block``."""
        units = self.unit_count(shape)
        rows = np.arange(units, dtype=np.int64)
        columns = block.start + rows
        return _Value(shape, units, _ones(rows, columns, (units, self.vertex_count)), depth)

    # -- composing ---------------------------------------------------------------------
    def connect(self, targets: np.ndarray, sources: np.ndarray, value: _Value, start: int):
        """Edges into new vertices ``start + targets`` from what ``value``'s units stand for."""
        if targets.size == 0:
            return
        matrix = value.matrix
        if np.all(np.diff(matrix.indptr) == 1):
            vertex_sources = matrix.indices[sources].astype(np.int64)
            vertex_targets = targets
            if np.unique(matrix.indices).size != matrix.indices.size:
                keys = np.unique(vertex_targets * self.vertex_count + vertex_sources)
                vertex_targets, vertex_sources = np.divmod(keys, self.vertex_count)
        else:
            pattern = _ones(targets, sources, (int(targets.max()) + 1, value.units))
            product = (pattern @ matrix).tocoo()
            vertex_targets, vertex_sources = product.row.astype(np.int64), product.col
        self.edge_sources.append(np.asarray(vertex_sources, dtype=np.int64))
        self.edge_targets.append(np.asarray(vertex_targets, dtype=np.int64) + start)

    def mapped(self, shape, pieces: list[tuple[_Value, np.ndarray, np.ndarray]]) -> _Value:
        """A value whose unit ``t`` stands for the units ``s`` of each operand, per piece."""
        units = self.unit_count(shape)
        rows, columns, stacked, offset = [], [], [], 0
        for value, targets, sources in pieces:
            rows.append(targets)
            columns.append(sources + offset)
            stacked.append(_widen(value.matrix, self.vertex_count))
            offset += value.units
        selection = _ones(np.concatenate(rows), np.concatenate(columns), (units, offset))
        matrix = sp.csr_array(selection @ sp.vstack(stacked, format="csr"))
        matrix.data[:] = 1
        depth = max((value.depth for value, _, _ in pieces), default=0)
        return _Value(shape, units, matrix, depth)

    def units_of(self, elements: np.ndarray, shape) -> np.ndarray:
        return elements // self.elements_per_unit(shape)

    # -- the walk ----------------------------------------------------------------------
    def run(self) -> LayeredGraph:
        count = len(self.trace.inputs)
        for position, value in enumerate(self.trace.inputs):
            shape = self.shape_of(value)
            name = "input" if count == 1 else f"input{position}"
            block = self.new_block(name, "input", shape, 0, role="input")
            self.values[value] = self.identity_value(shape, block, 0)
        for op in self.trace.ops:
            self.apply(op)
        return self.graph()

    def apply(self, op: Op) -> None:
        rule = classify(op.kind, op.target, op.type_name)
        if rule is None:
            raise ConfigError(
                f"{op.describe()} has no {self.granularity}-level rule: pypaddle knows linear and "
                "convolution layers, pooling, element-wise, merging and data-movement operations "
                "there; granularity='layer' works for any model, or give the module that "
                "does it a rule with pypaddle.extract.register_rule"
            )
        getattr(self, f"rule_{rule}")(op)

    def operand(self, op: Op, position: int = 0) -> _Value:
        return self.values[op.inputs[position]]

    def out_shapes(self, op: Op) -> list[tuple[int, ...]]:
        return [self.shape_of(value, op) for value in op.outputs]

    def rule_transparent(self, op: Op) -> None:
        if len(op.inputs) > 1:
            self.rule_merge(op)
            return
        source = self.operand(op)
        for value, shape in zip(op.outputs, self.out_shapes(op)):
            if shape != source.shape:
                raise ConfigError(
                    f"{op.describe()} is taken as element-wise but turns a sample of shape "
                    f"{source.shape} into {shape}; granularity='layer' works"
                )
            self.values[value] = source

    def rule_merge(self, op: Op) -> None:
        """Element-wise on several traced tensors (``a + b``): one new vertex per output unit,
        with an edge from each operand unit broadcast into it. With one traced operand (``x +
        1``, ``x * self.scale``) the operation is element-wise and transparent."""
        operands = [self.values[value] for value in op.inputs]
        shape = self.out_shapes(op)[0]
        if len(operands) == 1 or all(
            operand.shape == shape and _same_units(operand, operands[0]) for operand in operands
        ):
            # x * sigmoid(x): every operand unit stands for the same vertices, so the
            # operation is element-wise on them.
            for value in op.outputs:
                self.values[value] = operands[0]
            return
        real = self.trace.tensors[op.outputs[0]]
        depth = max(operand.depth for operand in operands) + 1
        block = self.new_block(op.name, op.type_name, shape, depth)
        for input_value, operand in zip(op.inputs, operands):
            if operand.shape == shape:
                units = np.arange(operand.units, dtype=np.int64)
                self.connect(units, units, operand, block.start)
                continue
            elements = torch.arange(math.prod(operand.shape)).reshape(operand.shape)
            elements = elements.expand(self.trace.tensors[input_value].shape[0], *operand.shape)
            spread = torch.broadcast_to(elements, real.shape)[0].reshape(-1).numpy()
            targets = self.units_of(np.arange(spread.size, dtype=np.int64), shape)
            sources = self.units_of(spread, operand.shape)
            if self.granularity == "channel":
                keys = np.unique(targets * operand.units + sources)
                targets, sources = np.divmod(keys, operand.units)
            self.connect(targets, sources, operand, block.start)
        self.finish(op, block, depth)

    def rule_move(self, op: Op) -> None:
        operands = [self.values[value] for value in op.inputs]
        offsets = np.cumsum([0] + [math.prod(operand.shape) for operand in operands])
        start_of = dict(zip(op.inputs, offsets[:-1].tolist()))

        def substitute(obj: Any) -> Any:
            if isinstance(obj, torch.Tensor):
                value = op.bound.get(id(obj))
                if value is not None:
                    shape = self.values[value].shape
                    numbers = torch.arange(math.prod(shape), dtype=torch.int64) + 1
                    numbers += start_of[value]
                    return numbers.reshape(shape).expand(obj.shape[0], *shape).contiguous()
                if obj.is_floating_point() or obj.is_complex():
                    return torch.zeros(obj.shape, dtype=torch.int64)
                return obj
            if isinstance(obj, (tuple, list)):
                return type(obj)(substitute(item) for item in obj)
            if isinstance(obj, dict):
                return {key: substitute(item) for key, item in obj.items()}
            return obj

        args, kwargs = substitute(op.args), substitute(op.kwargs)
        with torch.no_grad():
            if op.kind == "module":
                result = op.target.forward(*args, **kwargs)
            elif isinstance(op.target, str):
                result = getattr(args[0], op.target)(*args[1:], **kwargs)
            else:
                result = op.target(*args, **kwargs)
        for value, numbers in zip(op.outputs, tensors_in(result)):
            shape = self.shape_of(value, op)
            sources = numbers[0].reshape(-1).numpy() - 1
            targets = np.arange(sources.size, dtype=np.int64)
            keep = sources >= 0
            targets, sources = targets[keep], sources[keep]
            operand = np.searchsorted(offsets, sources, side="right") - 1
            pieces = []
            for position, source_value in enumerate(operands):
                chosen = operand == position
                if not chosen.any():
                    continue
                local = sources[chosen] - offsets[position]
                pieces.append(
                    (
                        source_value,
                        self.units_of(targets[chosen], shape),
                        self.units_of(local, source_value.shape),
                    )
                )
            self.values[value] = self.mapped(shape, pieces)

    # -- layers that make vertices ---------------------------------------------------------
    def make(self, op: Op, targets, sources, source: _Value) -> tuple[Block, int]:
        """New vertices for ``op``'s output; ``targets, sources`` are unit positions."""
        depth = source.depth + 1
        block = self.new_block(op.name, op.type_name, self.out_shapes(op)[0], depth)
        self.connect(targets, sources, source, block.start)
        return block, depth

    def finish(self, op: Op, block: Block, depth: int) -> None:
        for value in op.outputs:
            self.values[value] = self.identity_value(self.shape_of(value, op), block, depth)

    def active(self, weight: torch.Tensor, mask: Any) -> np.ndarray:
        """Bool array of the weights that are connections: mask True, ``|w| > threshold``."""
        weight = weight.detach()
        active = torch.ones(weight.shape, dtype=torch.bool, device=weight.device)
        if isinstance(mask, torch.Tensor) and mask.shape == weight.shape:
            active &= mask.detach().bool()
        if self.threshold is not None:
            active &= weight.abs() > self.threshold
        return active.cpu().numpy()

    def weight_of(self, op: Op, position: int) -> tuple[torch.Tensor, Any]:
        if op.kind == "module":
            module = op.target
            weight = module.weight
            if weight.layout != torch.strided:  # a SparseLinear: its stored entries
                weight = weight.to_dense()
                return weight, weight != 0
            # a masked module's or custom layer's mask, or torch.nn.utils.prune's
            return weight, weight_mask(module)
        weight = op.kwargs.get("weight", op.args[position] if len(op.args) > position else None)
        if not isinstance(weight, torch.Tensor) or id(weight) in op.bound:
            raise ConfigError(
                f"{op.describe()} computes its weight from the input; only fixed weights "
                "(parameters) have a neuron or channel graph, granularity='layer' works"
            )
        return weight, None

    def rule_linear(self, op: Op) -> None:
        source = self.operand(op)
        weight, mask = self.weight_of(op, 1)
        active = self.active(weight, mask)
        if self.granularity == "channel" and len(source.shape) != 1:
            raise ConfigError(
                f"{op.describe()} reads a tensor of shape {source.shape} per sample; at channel "
                "level a linear layer must read flat features, so use granularity='neuron' "
                "or 'layer'"
            )
        leading = math.prod(source.shape[:-1]) if self.granularity == "neuron" else 1
        targets, sources = patterns.linear_pattern(active, leading)
        block, depth = self.make(op, targets, sources, source)
        self.finish(op, block, depth)

    def rule_conv(self, op: Op) -> None:
        source = self.operand(op)
        weight, mask = self.weight_of(op, 1)
        active = self.active(weight, mask)
        window, groups = settings.conv_window(op, tuple(weight.shape[2:]))
        if self.granularity == "channel":
            targets, sources = patterns.conv_channel_pattern(active, groups)
        else:
            in_sizes, out_sizes = source.shape[1:], self.out_shapes(op)[0][1:]
            windows = patterns.spatial_windows(window.tables(in_sizes, out_sizes), in_sizes)
            targets, sources = patterns.conv_pattern(
                active,
                groups,
                windows,
                math.prod(in_sizes),
                may_repeat=window.padding_mode != "zeros",
            )
        block, depth = self.make(op, targets, sources, source)
        self.finish(op, block, depth)

    def window_op(self, op: Op, tables_for) -> None:
        """Pooling: each output reads a window of its own channel."""
        source = self.operand(op)
        out_shape = self.out_shapes(op)[0]
        spatial = min(settings.spatial_count(op.type_name), len(source.shape))
        if self.granularity == "channel" and len(source.shape) > spatial:
            # Pooling works within each channel: at channel level it changes nothing.
            for value in op.outputs:
                self.values[value] = _Value(out_shape, source.units, source.matrix, source.depth)
            return
        in_sizes, out_sizes = source.shape[-spatial:], out_shape[-spatial:]
        channels = math.prod(source.shape[:-spatial])
        windows = patterns.spatial_windows(tables_for(in_sizes, out_sizes, spatial), in_sizes)
        targets, sources = patterns.window_pattern(windows, channels, math.prod(in_sizes))
        if self.granularity == "channel":
            self.values_from_elements(op, targets, sources, source, out_shape)
            return
        block, depth = self.make(op, targets, sources, source)
        self.finish(op, block, depth)

    def values_from_elements(self, op, targets, sources, source, out_shape) -> None:
        pieces = [(source, self.units_of(targets, out_shape), self.units_of(sources, source.shape))]
        mapped = self.mapped(out_shape, pieces)
        for value in op.outputs:
            self.values[value] = mapped

    def rule_pool(self, op: Op) -> None:
        self.window_op(
            op, lambda ins, outs, spatial: settings.pool_window(op, spatial).tables(ins, outs)
        )

    def rule_adaptive_pool(self, op: Op) -> None:
        self.window_op(op, lambda ins, outs, spatial: settings.adaptive_tables(ins, outs))

    def rule_reduce(self, op: Op) -> None:
        source = self.operand(op)
        real = self.trace.tensors[op.inputs[0]]
        dims = op.kwargs.get("dim", op.args[1] if len(op.args) > 1 else None)
        if isinstance(dims, torch.Tensor):  # torch.max(a, b): element-wise, not a reduction
            self.rule_merge(op)
            return
        if dims is None:
            dims = tuple(range(real.dim()))
        dims = {
            int(dim) % real.dim() for dim in (dims if isinstance(dims, (tuple, list)) else [dims])
        }
        if 0 in dims:
            raise ConfigError(
                f"{op.describe()} reduces over the batch dimension; neuron and channel graphs "
                "need every tensor to keep it, granularity='layer' does not"
            )
        out_shape = self.out_shapes(op)[0]
        targets, sources = patterns.reduction_pattern(source.shape, [dim - 1 for dim in dims])
        if self.granularity == "channel":
            self.values_from_elements(op, targets, sources, source, out_shape)
            return
        block, depth = self.make(op, targets, sources, source)
        self.finish(op, block, depth)

    def rule_structure(self, op: Op) -> None:
        from pypaddle.extract._structure import structure_edges

        source = self.operand(op)
        hidden_labels, internal, reads, output_count = structure_edges(op.target, self.threshold)
        labels = [*hidden_labels, *(f"output {j}" for j in range(output_count))]
        out_shape = self.out_shapes(op)[0]
        depth = source.depth + 1
        block = self.new_block(op.name, op.type_name, out_shape, depth, labels=labels)
        read_targets, read_features = reads
        self.connect(read_targets, self.units_of(read_features, source.shape), source, block.start)
        self.edge_sources.append(internal[0] + block.start)
        self.edge_targets.append(internal[1] + block.start)
        rows = np.arange(output_count, dtype=np.int64)
        for value in op.outputs:
            shape = self.shape_of(value, op)
            units = self.unit_count(shape)
            columns = block.start + len(hidden_labels) + rows
            matrix = _ones(rows, columns, (units, self.vertex_count))
            self.values[value] = _Value(shape, units, matrix, depth)

    # -- the graph ---------------------------------------------------------------------------
    def graph(self) -> LayeredGraph:
        outputs = [self.values[value].matrix.indices for value in self.trace.outputs]
        edges = (
            self.edge_sources or [np.zeros(0, np.int64)],
            self.edge_targets or [np.zeros(0, np.int64)],
        )
        return assemble(
            self.blocks,
            np.concatenate(outputs).astype(np.int64),
            np.concatenate(edges[0]),
            np.concatenate(edges[1]),
            granularity=self.granularity,
            tracer=self.trace.tracer,
        )


def unit_graph(trace: Trace, granularity: str, threshold: float | None) -> nx.DiGraph:
    """The neuron- or channel-level graph of a trace."""
    return _Builder(trace, granularity, threshold).run()
