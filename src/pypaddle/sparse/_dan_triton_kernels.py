"""Triton programs of the GPU DAN kernel (imported only when the kernel runs).

Activations live in a ``[vertices, batch]`` buffer ``H`` (rows are vertices in layer
order, the batch contiguous). Every program owns ``BLOCK_B`` columns of it, the same
samples from the first layer to the last, and walks the *tiles* of the graph in order:
a tile is up to ``BLOCK_V`` vertices of one layer, whose active edges are packed in
chunks of ``BLOCK_K`` edges per vertex (-1 where a vertex has fewer); each edge of a
chunk gathers one ``[BLOCK_V, BLOCK_B]`` block of earlier activations, so only active
edges are read. No vertex of a tile reads another of the same tile, and a barrier after
each tile makes its rows visible to the program's later tiles: one launch runs every
layer. The columns a program touches stay in its multiprocessor's caches for the graphs
this kernel is chosen for (Triton cannot index shared memory by a vertex number known only
at run time, so the buffer is global memory, read back through L1/L2).

The backward pass walks the tiles of the *reverse* graph (each vertex's outgoing edges,
the last layer's tiles first), pulling gradients from the vertices it feeds, so that
every sum has one writer and a fixed order: the results are deterministic. Weight
gradients are one more launch over the edges, each a dot product over the batch.

The functions are plain Python here; :func:`jitted` compiles them with ``triton.jit``,
which consults ``TRITON_INTERPRET`` as it does, so that the interpreter (CPU tensors, the
tests) and the compiler can both be had in one process. For the same reason they call
only Triton's builtins, none of its library functions written in Triton (``tl.sum``,
``tl.zeros``): those were jitted, for one mode, when triton was imported. Activation
codes: 0 identity, 1 ReLU, 2 tanh, 3 sigmoid.
"""

from __future__ import annotations

import os
from functools import cache
from types import SimpleNamespace

import torch
import triton
import triton.language as tl

__all__ = ["accumulator", "interpreting", "jitted"]


def dan_forward(
    H,
    bias,
    weight,
    tile_vertex,
    tile_offset,
    ell_source,
    ell_position,
    tiles,
    batch,
    ACTIVATION: tl.constexpr,
    BLOCK_V: tl.constexpr,
    BLOCK_K: tl.constexpr,
    BLOCK_B: tl.constexpr,
    ACC: tl.constexpr,
):
    """Rows of ``H`` for the tiles ``0 .. tiles - 1``: bias plus active edges, activated."""
    columns = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)
    column_ok = columns < batch
    slots = tl.arange(0, BLOCK_V)
    # Each tile's vertices and chunk range are loaded during the tile before (they do not
    # depend on activations), so that their latency hides behind its store and barrier;
    # the packing ends with an empty tile, which the last tile loads.
    next_rows = tl.load(tile_vertex + slots)
    next_first = tl.load(tile_offset)
    next_last = tl.load(tile_offset + 1)
    for tile in range(tiles):
        row_ok = next_rows >= 0
        rows = tl.maximum(next_rows, 0).to(tl.int64)
        first = next_first
        last = next_last
        next_rows = tl.load(tile_vertex + (tile + 1) * BLOCK_V + slots)
        next_first = tl.load(tile_offset + tile + 1)
        next_last = tl.load(tile_offset + tile + 2)
        acc = tl.full([BLOCK_V, BLOCK_B], 0.0, ACC)
        acc += tl.load(bias + rows, mask=row_ok, other=0.0).to(ACC)[:, None]
        for chunk in range(first, last):
            # Unrolled: the loads of all BLOCK_K edges are in flight together.
            for k in tl.static_range(BLOCK_K):
                entries = (chunk * BLOCK_K + k) * BLOCK_V + slots
                sources = tl.load(ell_source + entries)
                edge_ok = sources >= 0
                w = tl.load(weight + tl.load(ell_position + entries), mask=edge_ok, other=0.0)
                reads = tl.maximum(sources, 0).to(tl.int64)[:, None] * batch + columns[None, :]
                h = tl.load(H + reads, mask=edge_ok[:, None] & column_ok, other=0.0)
                acc += w.to(ACC)[:, None] * h.to(ACC)
        if ACTIVATION == 1:
            acc = tl.where(acc > 0, acc, 0.0)
        elif ACTIVATION == 2:
            acc = 1.0 - 2.0 / (tl.exp(2.0 * acc) + 1.0)
        elif ACTIVATION == 3:
            acc = 1.0 / (1.0 + tl.exp(-acc))
        writes = rows[:, None] * batch + columns[None, :]
        tl.store(H + writes, acc.to(H.dtype.element_ty), mask=row_ok[:, None] & column_ok)
        tl.debug_barrier()  # this tile's rows, visible to every thread of the program


def dan_backward(
    H,
    G,
    weight,
    tile_vertex,
    tile_offset,
    ell_target,
    ell_position,
    tiles,
    batch,
    ACTIVATION: tl.constexpr,
    BLOCK_V: tl.constexpr,
    BLOCK_K: tl.constexpr,
    BLOCK_B: tl.constexpr,
    ACC: tl.constexpr,
):
    """``G`` from output gradients (nonzero at sinks) to pre-activation gradients, one
    tile of the reverse graph after the other (the last layer's first)."""
    columns = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)
    column_ok = columns < batch
    slots = tl.arange(0, BLOCK_V)
    next_rows = tl.load(tile_vertex + slots)
    next_first = tl.load(tile_offset)
    next_last = tl.load(tile_offset + 1)
    for tile in range(tiles):
        row_ok = next_rows >= 0
        rows = tl.maximum(next_rows, 0).to(tl.int64)
        first = next_first
        last = next_last
        next_rows = tl.load(tile_vertex + (tile + 1) * BLOCK_V + slots)
        next_first = tl.load(tile_offset + tile + 1)
        next_last = tl.load(tile_offset + tile + 2)
        own = rows[:, None] * batch + columns[None, :]
        own_ok = row_ok[:, None] & column_ok
        acc = tl.load(G + own, mask=own_ok, other=0.0).to(ACC)
        for chunk in range(first, last):
            for k in tl.static_range(BLOCK_K):
                entries = (chunk * BLOCK_K + k) * BLOCK_V + slots
                targets = tl.load(ell_target + entries)
                edge_ok = targets >= 0
                w = tl.load(weight + tl.load(ell_position + entries), mask=edge_ok, other=0.0)
                reads = tl.maximum(targets, 0).to(tl.int64)[:, None] * batch + columns[None, :]
                g = tl.load(G + reads, mask=edge_ok[:, None] & column_ok, other=0.0)
                acc += w.to(ACC)[:, None] * g.to(ACC)
        if ACTIVATION != 0:
            h = tl.load(H + own, mask=own_ok, other=0.0).to(ACC)
            if ACTIVATION == 1:
                acc = tl.where(h > 0, acc, 0.0)
            elif ACTIVATION == 2:
                acc = acc * (1.0 - h * h)
            else:
                acc = acc * h * (1.0 - h)
        tl.store(G + own, acc.to(G.dtype.element_ty), mask=own_ok)
        tl.debug_barrier()


def dan_edge_grads(
    H,
    G,
    edge_target,
    edge_source,
    partial,
    edges,
    batch,
    BLOCK_E: tl.constexpr,
    BLOCK_B: tl.constexpr,
    ACC: tl.constexpr,
):
    """``partial[e, j]``: the sum of ``G[target] * H[source]`` of edge ``e`` over the
    samples ``j, j + BLOCK_B, ...``; the caller adds up each row (a row of partial sums
    keeps the programs free of reductions across threads)."""
    index = tl.program_id(0) * BLOCK_E + tl.arange(0, BLOCK_E)
    edge_ok = index < edges
    targets = tl.load(edge_target + index, mask=edge_ok, other=0).to(tl.int64)
    sources = tl.load(edge_source + index, mask=edge_ok, other=0).to(tl.int64)
    acc = tl.full([BLOCK_E, BLOCK_B], 0.0, ACC)
    for start in range(0, batch, BLOCK_B):
        columns = start + tl.arange(0, BLOCK_B)
        ok = edge_ok[:, None] & (columns < batch)[None, :]
        g = tl.load(G + targets[:, None] * batch + columns[None, :], mask=ok, other=0.0)
        h = tl.load(H + sources[:, None] * batch + columns[None, :], mask=ok, other=0.0)
        acc += g.to(ACC) * h.to(ACC)
    sums = index.to(tl.int64)[:, None] * BLOCK_B + tl.arange(0, BLOCK_B)[None, :]
    tl.store(partial + sums, acc, mask=edge_ok[:, None])


def accumulator(dtype: torch.dtype) -> tl.dtype:
    """What sums run in for activations of ``dtype``: float64 for float64, else float32."""
    return tl.float64 if dtype == torch.float64 else tl.float32


@cache
def _jitted(interpret: bool) -> SimpleNamespace:
    del interpret  # the cache key: triton.jit reads the variable itself
    return SimpleNamespace(
        forward=triton.jit(dan_forward),
        backward=triton.jit(dan_backward),
        edge_grads=triton.jit(dan_edge_grads),
    )


def interpreting() -> bool:
    """Whether ``triton.jit`` would make an interpreted function now (``TRITON_INTERPRET``)."""
    knobs = getattr(triton, "knobs", None)  # triton >= 3.4 parses the variable there
    if knobs is not None:
        return bool(knobs.runtime.interpret)
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def jitted() -> SimpleNamespace:
    """The three programs, compiled for the GPU, or interpreted while ``TRITON_INTERPRET``
    is set (Triton's own switch, read now: each setting gets its own, cached)."""
    return _jitted(interpreting())
