"""The layout of a MaskedDeepDAN: one plan, computed once from the structure.

Which vertex is which row, which rows form a layer, which earlier rows a layer reads,
where its weight block sits in the packed tensors, which vertices are sources and sinks:
all of it follows from the structure and the input width alone. :class:`DanPlan` holds
it, and everything that needs the layout reads it from there (the model's constructor and
``generate_structure``, its kernels, compaction, counting and extraction) instead of
redoing the index arithmetic.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import networkx as nx
import numpy as np
import torch

from pypaddle.errors import StructureError
from pypaddle.graph.layering import edge_index, layer_array

__all__ = ["DanPlan"]

Range = tuple[int, int]


def _frozen(array: np.ndarray) -> np.ndarray:
    array = np.ascontiguousarray(array, dtype=np.int64)
    array.flags.writeable = False
    return array


@dataclass(frozen=True, eq=False, repr=False)
class DanPlan:
    """The layout of a :class:`~pypaddle.sparse.MaskedDeepDAN`, a pure function of its
    structure and input width.

    Vertices are numbered by *position*: sorted by layer (the longest path from a source),
    in the structure's insertion order within a layer. Every range below is a half-open
    ``(start, end)`` of positions or of entries of a packed tensor.

    Built by :meth:`from_structure`; a model exposes its plan as ``model.plan``. The plan
    is immutable (a frozen dataclass whose arrays are read-only), so it can be shared by
    copies of a model. Two plans are equal when their layouts and edges are.

    Attributes
    ----------
    features : int
        Input features: the columns of layer 0, whose vertices (the sources) read them all.
    labels : tuple
        The structure's vertex labels by position.
    widths : tuple of int
        Vertices per layer.
    first_blocks : tuple of int
        The first activation block each layer reads, where block 0 is the input and block
        ``k + 1`` is layer ``k``: layer ``i`` reads blocks ``first_blocks[i] .. i``, the
        lowest one holding a vertex with an edge into layer ``i`` (layer 0: the input).
    sinks : tuple of int
        Positions of the sinks (out-degree 0, in any layer), ascending; they feed the
        outputs.
    edge_sources, edge_targets : numpy.ndarray
        Positions of the two ends of every edge of the structure (read-only int64).

    Derived layout (properties): ``vertices``, ``writes`` (each layer's range of
    positions), ``reads`` (the range of positions layer ``i > 0`` reads; ``(0, 0)`` for
    layer 0, which reads the input), ``columns`` (each layer's reads), ``blocks`` (each
    layer's range of the packed weight, a row-major ``[width, columns]`` block),
    ``sources`` (the range of layer 0), ``sink_range`` (the sinks as one range, or None
    when they are not contiguous) and ``entries`` (each edge's entry in the packed weight).

    Examples
    --------
    >>> import networkx as nx
    >>> structure = nx.DiGraph([("a", "b"), ("b", "c"), ("a", "c"), ("a", "d")])
    >>> plan = DanPlan.from_structure(structure, features=4)
    >>> plan.labels, plan.widths
    (('a', 'b', 'd', 'c'), (1, 2, 1))
    >>> plan.writes, plan.reads, plan.columns
    (((0, 1), (1, 3), (3, 4)), ((0, 0), (0, 1), (0, 3)), (4, 1, 3))
    >>> plan.blocks, plan.sinks, plan.sink_range
    (((0, 4), (4, 6), (6, 9)), (2, 3), (2, 4))
    """

    features: int
    labels: tuple[Hashable, ...]
    widths: tuple[int, ...]
    first_blocks: tuple[int, ...]
    sinks: tuple[int, ...]
    edge_sources: np.ndarray = field(repr=False)
    edge_targets: np.ndarray = field(repr=False)

    @classmethod
    def from_structure(cls, structure: nx.DiGraph, features: int) -> DanPlan:
        """The plan of a DAN reading ``features`` inputs through ``structure``.

        Vectorised: no Python loop per edge. Raises
        :class:`~pypaddle.errors.StructureError` for a structure that is not a non-empty
        directed acyclic graph (naming a cycle), and
        :class:`~pypaddle.errors.InputTypeError` for one that is not a networkx graph.
        """
        vertices, layers = layer_array(structure)
        if not vertices:
            raise StructureError(
                "the structure has no vertices; add at least one vertex (each is one neuron)"
            )
        graph_sources, graph_targets = edge_index(
            structure, dict(zip(vertices, range(len(vertices))))
        )
        order = np.argsort(layers, kind="stable")
        position = np.empty_like(order)
        position[order] = np.arange(order.size)
        layer_of_position = layers[order]
        sources, targets = position[graph_sources], position[graph_targets]
        widths = np.bincount(layers)
        # Every vertex of layer L > 0 has an edge from layer L - 1, so the minimum is < L.
        lowest_source_layer = np.arange(widths.size)
        np.minimum.at(lowest_source_layer, layer_of_position[targets], layer_of_position[sources])
        out_degree = np.bincount(sources, minlength=order.size)
        return cls(
            features=int(features),
            labels=tuple(vertices[i] for i in order),
            widths=tuple(widths.tolist()),
            first_blocks=(0, *(lowest_source_layer[1:] + 1).tolist()),
            sinks=tuple(np.flatnonzero(out_degree == 0).tolist()),
            edge_sources=_frozen(sources),
            edge_targets=_frozen(targets),
        )

    # -- derived layout ---------------------------------------------------------------------
    @cached_property
    def _starts(self) -> np.ndarray:
        """Position of the first vertex of each layer, then the number of vertices."""
        return _frozen(np.concatenate(([0], np.cumsum(self.widths, dtype=np.int64))))

    @property
    def vertices(self) -> int:
        """Number of vertices (hidden neurons)."""
        return int(self._starts[-1])

    @cached_property
    def writes(self) -> tuple[Range, ...]:
        """Each layer's range of positions: the rows it writes."""
        starts = self._starts.tolist()
        return tuple(itertools.pairwise(starts))

    @cached_property
    def reads(self) -> tuple[Range, ...]:
        """The range of positions layer ``i`` reads; ``(0, 0)`` for layer 0 (the input)."""
        starts = self._starts.tolist()
        later = enumerate(self.first_blocks[1:], start=1)
        return ((0, 0), *((starts[first - 1], starts[layer]) for layer, first in later))

    @cached_property
    def columns(self) -> tuple[int, ...]:
        """Each layer's number of inputs: ``features`` for layer 0, else its read range."""
        return (self.features, *(high - low for low, high in self.reads[1:]))

    @cached_property
    def blocks(self) -> tuple[Range, ...]:
        """Each layer's range of the packed weight (and mask), a row-major block."""
        sizes = np.multiply(self.widths, self.columns, dtype=np.int64)
        ends = np.cumsum(sizes).tolist()
        return tuple(zip([0, *ends[:-1]], ends))

    @property
    def sources(self) -> Range:
        """The range of the sources (in-degree 0): layer 0."""
        return self.writes[0]

    @cached_property
    def sink_range(self) -> Range | None:
        """The sinks as one range of positions, or None when they are not contiguous."""
        first, last = self.sinks[0], self.sinks[-1]
        return (first, last + 1) if last - first + 1 == len(self.sinks) else None

    @property
    def sinks_are_last_layer(self) -> bool:
        """Whether the sinks are exactly the last layer (no sink in an earlier one)."""
        return self.sink_range == self.writes[-1]

    @cached_property
    def entries(self) -> np.ndarray:
        """The entry of every edge (in ``edge_sources`` order) in the packed weight."""
        layer = self.layer_of(self.edge_targets)
        block_starts, write_starts, read_starts, columns = self._layer_arrays
        return _frozen(
            block_starts[layer]
            + (self.edge_targets - write_starts[layer]) * columns[layer]
            + self.edge_sources
            - read_starts[layer]
        )

    @cached_property
    def _layer_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per layer: first packed entry, first position written, first read, columns."""
        return (
            _frozen(np.array([start for start, _ in self.blocks])),
            _frozen(self._starts[:-1]),
            _frozen(np.array([low for low, _ in self.reads])),
            _frozen(np.array(self.columns)),
        )

    def layer_of(self, positions: np.ndarray) -> np.ndarray:
        """The layer of each vertex position in ``positions``."""
        return np.searchsorted(self._starts, positions, side="right") - 1

    def fan_in(self) -> np.ndarray:
        """Each vertex's fan-in in the structure (``features`` for the sources)."""
        fan_in = np.bincount(self.edge_targets, minlength=self.vertices)
        fan_in[: self.widths[0]] = self.features
        return fan_in

    def edge_mask(self) -> torch.Tensor:
        """The packed mask of the structure: every input into a source, and every edge."""
        mask = torch.zeros(self.blocks[-1][1], dtype=torch.bool)
        mask[: self.blocks[0][1]] = True
        mask[torch.from_numpy(self.entries.copy())] = True
        return mask

    def edges_at(self, entries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(sources, targets)``: the positions that entries of layers ``1..`` of the
        packed weight connect (the inverse of :attr:`entries`)."""
        block_starts, write_starts, read_starts, columns = self._layer_arrays
        layer = np.searchsorted(block_starts, entries, side="right") - 1
        local = entries - block_starts[layer]
        return read_starts[layer] + local % columns[layer], write_starts[layer] + local // columns[
            layer
        ]

    def layer_weights(self, packed: torch.Tensor) -> list[torch.Tensor]:
        """Each layer's ``[rows, columns]`` view of a packed weight (or its gradient)."""
        return [
            packed[start:end].view(width, columns)
            for (start, end), width, columns in zip(self.blocks, self.widths, self.columns)
        ]

    def sink_rows(self, activations: torch.Tensor, sink_index: torch.Tensor) -> torch.Tensor:
        """The sinks' rows of vertex-major ``activations`` (a view when the sinks are one
        range; ``sink_index`` lists their rows otherwise)."""
        if self.sink_range is not None:
            return activations[self.sink_range[0] : self.sink_range[1]]
        return activations.index_select(0, sink_index)

    def sink_gradients(
        self, like: torch.Tensor, grad_sinks: torch.Tensor, sink_index: torch.Tensor
    ) -> torch.Tensor:
        """Zeros shaped as vertex-major ``like``, with ``grad_sinks`` (samples x sinks)
        written into the sinks' rows: where a kernel's backward starts."""
        grads = torch.zeros_like(like)
        if self.sink_range is not None:
            grads[self.sink_range[0] : self.sink_range[1]] = grad_sinks.t()
        else:
            grads.index_copy_(0, sink_index, grad_sinks.t().to(grads.dtype))
        return grads

    # -- identity ---------------------------------------------------------------------------
    def _layout(self) -> tuple[Any, ...]:
        return (self.features, self.labels, self.widths, self.first_blocks, self.sinks)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DanPlan):
            return NotImplemented
        return (
            self._layout() == other._layout()
            and np.array_equal(self.edge_sources, other.edge_sources)
            and np.array_equal(self.edge_targets, other.edge_targets)
        )

    def __hash__(self) -> int:
        return hash((self._layout(), self.edge_sources.size))

    def __repr__(self) -> str:
        return (
            f"DanPlan(features={self.features}, vertices={self.vertices}, "
            f"layers={len(self.widths)}, edges={self.edge_sources.size}, "
            f"sinks={len(self.sinks)})"
        )
