"""The hidden part of a MaskedDeepDAN on the GPU, in Triton (``pypaddle[gpu]``).

The same computation and packed tensors as :mod:`._dan_kernel`, run the way the compiled
CPU loop of :mod:`._dan_numba` runs it: layer 0, which reads the (usually wide) input, is
one cuBLAS product; every later layer runs in *one* launch over blocks of the batch that
reads only the active edges (see :mod:`._dan_triton_kernels` for the programs), and the
backward pass is two launches more, whatever the depth of the graph. The torch kernel
costs a few launches per layer instead, which is what makes deep, narrow graphs slow on a
GPU.

Nothing here imports triton until a kernel runs, so ``import pypaddle`` never does. The
programs also run on CPU tensors under Triton's interpreter (``TRITON_INTERPRET=1``, set
before the first use), which is how the test suite checks them without a GPU.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import Any

import numpy as np
import torch

from pypaddle._core import extras
from pypaddle.sparse._dan_kernel import cuda_cost
from pypaddle.sparse._dan_numba import ActiveEdges
from pypaddle.sparse._dan_plan import DanPlan

__all__ = [
    "TritonDanSinks",
    "TritonEdges",
    "available",
    "cost",
    "multiprocessors",
    "preferred",
    "triton_edges",
    "unsupported",
]

_CODES = {"identity": 0, "relu": 1, "tanh": 2, "sigmoid": 3}
_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
# Edges and samples per program of the weight gradients: (interpreter, GPU).
_EDGE_BLOCKS = ((16, 16), (64, 64))


@cache
def available() -> bool:
    """Whether the Triton kernels can run: triton is installed and imports.

    triton is imported on the first call, not when pypaddle is. A triton that is
    installed but fails to import gets a warning naming the error.
    """
    return extras.usable("triton", _kernels, fallback="MaskedDeepDAN runs its torch kernel instead")


@cache
def _kernels() -> ModuleType:
    from pypaddle.sparse import _dan_triton_kernels

    return _dan_triton_kernels


def unsupported(features: torch.Tensor) -> str | None:
    """Why this kernel cannot run on ``features``, or None when it can.

    It runs on CUDA tensors of a floating dtype (float16, bfloat16, float32, float64),
    and on CPU tensors only under Triton's interpreter (``TRITON_INTERPRET=1``).
    """
    if features.dtype not in _DTYPES:
        return f"it takes float16, bfloat16, float32 or float64 input, not {features.dtype}"
    if features.device.type not in ("cuda", "cpu"):
        return f"it runs on CUDA devices, not on {features.device}"
    if not available():
        return "triton is not installed or fails to import (pip install 'pypaddle[gpu]')"
    if features.device.type == "cpu" and not _kernels().interpreting():
        return (
            "on CPU tensors it runs only under Triton's interpreter "
            "(TRITON_INTERPRET=1 in the environment before the first use, for testing)"
        )
    return None


# -- the packed edges ------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Tiles:
    """Vertices in tiles of ``block_v`` rows of one layer each, and their edges in chunks.

    ``vertex[tile * block_v + slot]`` is a vertex position (-1 for an empty slot); tile
    ``t`` owns chunks ``offset[t] .. offset[t + 1] - 1``; ``count`` tiles, then an empty
    one; chunk ``c`` holds edge ``k`` of
    slot ``s`` at ``(c * block_k + k) * block_v + s`` of ``other`` (the vertex at the other
    end, -1 where the slot has no ``k``-th edge) and ``position`` (its packed weight).
    """

    vertex: torch.Tensor
    offset: torch.Tensor
    other: torch.Tensor
    position: torch.Tensor
    count: int
    chunks: int


@dataclass(frozen=True, eq=False)
class TritonEdges:
    """The active edges of layers ``1..`` packed for the Triton kernels, on one device.

    ``forward`` tiles the vertices of layers ``1..`` with their incoming edges, and
    ``backward`` every vertex with its outgoing ones, the last layer first; ``targets``,
    ``sources`` and ``positions`` list the edges themselves (for the weight gradients).
    """

    block_v: int
    block_k: int
    forward: Tiles
    backward: Tiles
    targets: torch.Tensor
    sources: torch.Tensor
    positions: torch.Tensor


def _power_of_two(value: int, low: int, high: int) -> int:
    return min(high, max(low, 1 << max(0, int(value) - 1).bit_length()))


def _tiles(
    layers: np.ndarray,
    vertices: np.ndarray,
    indptr: np.ndarray,
    other: np.ndarray,
    positions: np.ndarray,
    block_v: int,
    block_k: int,
    device: torch.device,
    *,
    last_layer_first: bool = False,
) -> Tiles:
    """Tiles of ``vertices`` (ascending positions), layer by layer in the order a kernel
    walks them, each vertex's edges being ``indptr[v]:indptr[v + 1]`` of ``other`` and
    ``positions``. Within a layer the vertices go by descending degree, so that a tile's
    rows have similar counts of edges and few slots of a chunk stay empty. Vectorised: no
    Python loop per vertex or edge."""
    degree = np.diff(indptr)
    walk = -layers[vertices] if last_layer_first else layers[vertices]
    ordered = vertices[np.lexsort((-degree[vertices], walk))]
    layer = layers[ordered]
    starts = np.flatnonzero(np.r_[True, layer[1:] != layer[:-1]])
    sizes = np.diff(np.r_[starts, ordered.size])
    group = np.repeat(np.arange(starts.size), sizes)
    rank = np.arange(ordered.size) - starts[group]
    first_tile = np.r_[0, np.cumsum(-(-sizes // block_v))]
    tile = first_tile[group] + rank // block_v
    slot = rank % block_v
    count = int(first_tile[-1])
    # One empty tile more, at the end: a kernel loads the tile after each one it runs.
    vertex = np.full((count + 1) * block_v, -1, dtype=np.int32)
    vertex[tile * block_v + slot] = ordered
    chunks = np.zeros(count + 1, dtype=np.int64)
    np.maximum.at(chunks, tile, -(-degree[ordered] // block_k))
    offset = np.r_[0, np.cumsum(chunks)]
    tile_of = np.zeros(indptr.size - 1, dtype=np.int64)
    slot_of = np.zeros(indptr.size - 1, dtype=np.int64)
    tile_of[ordered], slot_of[ordered] = tile, slot
    owner = np.repeat(np.arange(indptr.size - 1), degree)
    edge_rank = np.arange(owner.size) - indptr[owner]
    chunk = offset[tile_of[owner]] + edge_rank // block_k
    entry = (chunk * block_k + edge_rank % block_k) * block_v + slot_of[owner]
    size = max(1, int(offset[-1]) * block_k * block_v)  # never an empty tensor
    packed_other = np.full(size, -1, dtype=np.int32)
    packed_position = np.zeros(size, dtype=np.int64)
    packed_other[entry], packed_position[entry] = other, positions
    return Tiles(
        vertex=torch.from_numpy(vertex).to(device),
        offset=torch.from_numpy(offset.astype(np.int32)).to(device),
        other=torch.from_numpy(packed_other).to(device),
        position=torch.from_numpy(packed_position).to(device),
        count=count,
        chunks=int(offset[-1]),
    )


def triton_edges(plan: DanPlan, edges: ActiveEdges, device: torch.device) -> TritonEdges:
    """The active ``edges`` (the CSR of :func:`._dan_numba.active_edges`) packed for the
    Triton kernels on ``device``."""
    indptr, sources, positions = edges
    vertices = plan.vertices
    in_degree = np.diff(indptr)
    targets = np.repeat(np.arange(vertices), in_degree)
    by_source = np.argsort(sources, kind="stable")
    out_indptr = np.r_[0, np.cumsum(np.bincount(sources, minlength=vertices))]
    layers = plan.layer_of(np.arange(vertices))
    block_v = _power_of_two(max(plan.widths), 2, 16)
    # Edges per chunk: the mean degree, so that few slots of a chunk stay empty; a vertex
    # with more edges takes more chunks.
    degree = math.ceil(sources.size / max(1, int(np.count_nonzero(in_degree))))
    block_k = _power_of_two(degree, 2, max(2, 128 // block_v))
    hidden = np.arange(plan.writes[0][1], vertices)
    return TritonEdges(
        block_v=block_v,
        block_k=block_k,
        forward=_tiles(layers, hidden, indptr, sources, positions, block_v, block_k, device),
        backward=_tiles(
            layers,
            np.arange(vertices),
            out_indptr,
            targets[by_source],
            positions[by_source],
            block_v,
            block_k,
            device,
            last_layer_first=True,
        ),
        targets=torch.from_numpy(targets.astype(np.int32)).to(device),
        sources=torch.from_numpy(sources.astype(np.int32)).to(device),
        positions=torch.from_numpy(positions).to(device),
    )


# -- when it wins ------------------------------------------------------------------------------
@cache
def multiprocessors(device: torch.device) -> int:
    """Streaming multiprocessors of a CUDA ``device`` (8 for the interpreter on the CPU)."""
    if device.type != "cuda":
        return 8  # the interpreter: any count works, few programs run fastest
    return int(torch.cuda.get_device_properties(device).multi_processor_count)


def _block_for(batch: int, multiprocessors: int) -> int:
    """Samples per program on a GPU: enough programs to fill it, as few as that takes."""
    return 16 if batch <= 16 * multiprocessors else 32 if batch <= 32 * multiprocessors else 64


def _batch_block(batch: int, device: torch.device) -> int:
    """Samples per program on ``device`` (the interpreter: few programs run fastest)."""
    if device.type != "cuda":
        return _power_of_two(batch, 2, 128)
    return _block_for(batch, multiprocessors(device))


def _current(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """``device`` made the current CUDA device while a kernel launches: Triton launches on
    the current device, whichever device the tensors are on."""
    return torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()


def _launch(packed: TritonEdges, block_b: int) -> dict[str, int]:
    """Launch options of the two walks. Warps: about four elements of a tile each, one to
    four (one warp for the narrow tiles of deep graphs, whose barriers then cost next to
    nothing). One stage: Triton must not software-pipeline a walk, whose loads of a tile
    read what the tile before it stored (the barrier between them is the ordering)."""
    return {"num_warps": max(1, min(4, packed.block_v * block_b // 128)), "num_stages": 1}


# This kernel's costs on an H100/H200-class GPU, estimated (benchmarks/gpu.py measures
# what they predict): seconds of launches and host work per training step; per tile a
# program walks, the latency of a few dependent loads, a store and a barrier; per chunk of
# edges, the latency of the gathers plus their bytes at one multiprocessor's share of the
# cache bandwidth; and the weight gradients' reads, per active edge and sample, at the
# memory bandwidth. Four programs share a multiprocessor.
LAUNCH_SECONDS = 40e-6
TILE_SECONDS = 0.6e-6
CHUNK_SECONDS = 0.3e-6
CACHE_BYTES_PER_SECOND = 40e9
EDGE_SAMPLE_SECONDS = 8 / 2e12
PROGRAMS_PER_MULTIPROCESSOR = 4


def cost(packed: TritonEdges, batch: int, multiprocessors: int) -> float:
    """Estimated seconds of this kernel for layers 1.. of a training step on ``batch``
    samples on a GPU with ``multiprocessors`` streaming multiprocessors.

    Every program walks every tile, forward and backward, so the walk costs the same
    whatever the batch, until the programs (one per :func:`_batch_block` samples) need
    more than one wave; the weight gradients grow with the edges and the batch.
    """
    block_b = _block_for(batch, multiprocessors)
    programs = math.ceil(batch / block_b)
    waves = math.ceil(programs / (PROGRAMS_PER_MULTIPROCESSOR * multiprocessors))
    chunk_bytes = packed.block_k * packed.block_v * block_b * 4  # float32
    chunk = CHUNK_SECONDS + chunk_bytes / CACHE_BYTES_PER_SECOND
    tiles = packed.forward.count + packed.backward.count
    chunks = packed.forward.chunks + packed.backward.chunks
    edges = int(packed.positions.numel())
    return (
        LAUNCH_SECONDS
        + waves * (TILE_SECONDS * tiles + chunk * chunks)
        + EDGE_SAMPLE_SECONDS * edges * batch
    )


def preferred(
    plan: DanPlan, packed: TritonEdges, batch: int, *, multiprocessors: int = 132
) -> bool:
    """Whether this kernel should beat the torch one on ``batch`` samples on a GPU with
    ``multiprocessors`` streaming multiprocessors.

    Compares :func:`cost` with the torch kernel's :func:`._dan_kernel.cuda_cost` (layer 0
    is the same cuBLAS product in both and left out). The torch kernel pays for every
    layer in launches, and for every packed entry, active or not, in arithmetic; this
    kernel pays for its walk over the tiles once per wave of programs, and for the active
    edges only. Deep, narrow graphs go to Triton; a few wide, dense layers to cuBLAS.

    Examples
    --------
    >>> import networkx as nx
    >>> from pypaddle.sparse._dan_numba import active_edges
    >>> chain = DanPlan.from_structure(nx.path_graph(100, create_using=nx.DiGraph), 8)
    >>> packed = triton_edges(chain, active_edges(chain, chain.edge_mask()), torch.device("cpu"))
    >>> preferred(chain, packed, 256)
    True
    """
    return cost(packed, batch, multiprocessors) < cuda_cost(plan, batch)


# -- the autograd node ---------------------------------------------------------------------------
def _activate_(tensor: torch.Tensor, activation: str) -> None:
    if activation == "relu":
        tensor.clamp_min_(0)
    elif activation == "tanh":
        tensor.tanh_()
    elif activation == "sigmoid":
        tensor.sigmoid_()


class TritonDanSinks(torch.autograd.Function):
    """As :class:`._dan_kernel.DanSinks`, with the packed edges of :func:`triton_edges`
    after the activation: ``TritonDanSinks.apply(plan, activation, packed, sink_index,
    features, weight, weight_mask, bias, bias_mask)``, where only layer 0's block of
    ``weight_mask`` is read (the packed edges stand for the rest)."""

    @staticmethod
    def forward(
        ctx: Any,
        plan: DanPlan,
        activation: str,
        packed: TritonEdges,
        sink_index: torch.Tensor,
        features: torch.Tensor,
        weight: torch.Tensor,
        weight_mask: torch.Tensor | None,
        bias: torch.Tensor,
        bias_mask: torch.Tensor | None,
    ):
        kernels = _kernels()
        first_rows, first_block = plan.writes[0][1], plan.blocks[0][1]
        first = weight[:first_block].view(first_rows, -1)
        if weight_mask is not None:
            first = first * weight_mask[:first_block].view(first_rows, -1)
        masked_bias = bias if bias_mask is None else bias * bias_mask
        batch = features.shape[0]
        activations = features.new_empty(plan.vertices, batch)
        torch.addmm(
            masked_bias[:first_rows, None], first, features.t(), out=activations[:first_rows]
        )
        _activate_(activations[:first_rows], activation)
        block_b = _batch_block(batch, features.device)
        if packed.forward.count and batch:
            with _current(features.device):
                kernels.jitted().forward[(math.ceil(batch / block_b),)](
                    activations, masked_bias, weight, packed.forward.vertex,
                    packed.forward.offset, packed.forward.other, packed.forward.position,
                    packed.forward.count, batch, ACTIVATION=_CODES[activation],
                    BLOCK_V=packed.block_v, BLOCK_K=packed.block_k, BLOCK_B=block_b,
                    ACC=kernels.accumulator(features.dtype), **_launch(packed, block_b),
                )  # fmt: skip
        ctx.plan, ctx.activation, ctx.packed = plan, activation, packed
        ctx.save_for_backward(
            features, activations, first, weight, sink_index, weight_mask, bias_mask
        )
        return plan.sink_rows(activations, sink_index).t()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_sinks: torch.Tensor):
        plan: DanPlan = ctx.plan
        packed: TritonEdges = ctx.packed
        features, activations, first, weight, sink_index, weight_mask, bias_mask = ctx.saved_tensors
        kernels = _kernels()
        accumulator = kernels.accumulator(activations.dtype)
        batch = activations.shape[1]
        # Output gradients at the sinks; the kernel turns every row into the gradient of
        # its vertex's pre-activation.
        grads = plan.sink_gradients(activations, grad_sinks, sink_index)
        weight_grad = torch.zeros_like(weight)
        if batch:
            with _current(activations.device):
                block_b = _batch_block(batch, activations.device)
                kernels.jitted().backward[(math.ceil(batch / block_b),)](
                    activations, grads, weight, packed.backward.vertex, packed.backward.offset,
                    packed.backward.other, packed.backward.position, packed.backward.count, batch,
                    ACTIVATION=_CODES[ctx.activation], BLOCK_V=packed.block_v,
                    BLOCK_K=packed.block_k, BLOCK_B=block_b, ACC=accumulator,
                    **_launch(packed, block_b),
                )  # fmt: skip
                edges = int(packed.positions.numel())
                if edges:
                    block_e, block_b = _EDGE_BLOCKS[activations.device.type == "cuda"]
                    sums = torch.float64 if activations.dtype == torch.float64 else torch.float32
                    partial = activations.new_empty(edges, block_b, dtype=sums)
                    kernels.jitted().edge_grads[(math.ceil(edges / block_e),)](
                        activations, grads, packed.targets, packed.sources, partial, edges, batch,
                        BLOCK_E=block_e, BLOCK_B=block_b, ACC=accumulator,
                    )  # fmt: skip
                    weight_grad[packed.positions] = partial.sum(1).to(weight_grad.dtype)
        first_rows, first_block = plan.writes[0][1], plan.blocks[0][1]
        first_grads = grads[:first_rows]
        torch.mm(first_grads, features, out=weight_grad[:first_block].view(first_rows, -1))
        if weight_mask is not None:
            weight_grad[:first_block].mul_(weight_mask[:first_block])
        bias_grad = grads.sum(1)
        if bias_mask is not None:
            bias_grad.mul_(bias_mask)
        input_grad = first_grads.t() @ first if ctx.needs_input_grad[4] else None
        return None, None, None, None, input_grad, weight_grad, None, bias_grad, None
