"""The hidden part of a MaskedDeepDAN on the CPU, compiled with numba (``pypaddle[fast]``).

Same computation and the same packed tensors as :mod:`._dan_kernel`, but the hidden
layers after the first run as one compiled loop over the *active* edges, so a layer costs
nanoseconds of bookkeeping instead of a few torch calls, and masked entries cost nothing.
Layer 0, which reads the (usually wide) input, is a BLAS product in torch as before (one
per block of samples).
Forward and backward each make a handful of calls whatever the depth of the graph.

On several threads (torch's thread count, ``torch.get_num_threads()``) the batch is cut
into one block of samples per thread, and every block runs the whole graph, forward and
backward, on its own thread. The threads are those of torch's own OpenMP runtime where
torch runs on GNU OpenMP (Linux): one team runs the compiled loops (``GOMP_parallel``
through ctypes), as it runs torch's products. Threads of our own would share the cores
with torch's OpenMP threads, which spin for milliseconds after each product waiting for
the next (measured: two blocks on two cores ran no faster than one). Elsewhere the blocks
run on a pool of Python threads (the compiled loops release the GIL; numba's own
``prange`` compiled them without vectorising them). Each block has its own ``[vertices,
samples]`` activations and gradients (block-major): threads that shared rows, each with
half of every row, also ran no faster than one. Weight and bias gradients sum over the
samples: each block keeps its own partial sums, added in block order afterwards, so the
same thread count gives bit-identical results, run after run (a different thread count
may differ in the last bits, as BLAS does, and so may the bias gradients of the OpenMP team
and of the Python threads, whose sums are vectorised differently; a process forked from
one that ran a team uses the Python threads, as GNU OpenMP cannot start a team there).
"""

from __future__ import annotations

import ctypes
import itertools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from types import ModuleType
from typing import Any

import numpy as np
import torch

from pypaddle._core import extras
from pypaddle.sparse._dan_kernel import cpu_cost, speedup
from pypaddle.sparse._dan_plan import DanPlan

__all__ = [
    "ActiveEdges",
    "CompiledDanSinks",
    "active_edges",
    "available",
    "block_bounds",
    "blocks",
    "cost",
    "preferred",
    "supports",
    "threads",
]

_CODES = {"identity": 0, "relu": 1, "tanh": 2, "sigmoid": 3}
_DTYPES = (torch.float32, torch.float64)

ActiveEdges = tuple[np.ndarray, np.ndarray, np.ndarray]


@cache
def available() -> bool:
    """Whether the compiled kernels can run: numba is installed and imports.

    numba is imported on the first call (by the first DAN forward on the CPU), not when
    pypaddle is. A numba that is installed but fails to import (say, built for another
    numpy) gets a warning naming the error, and the torch kernel runs instead.
    """
    return extras.usable("numba", _kernels, fallback="MaskedDeepDAN falls back to its torch kernel")


@cache
def _kernels() -> ModuleType:
    from pypaddle.sparse import _dan_numba_kernels

    return _dan_numba_kernels


def supports(features: torch.Tensor) -> bool:
    """Whether this kernel can run on ``features`` (CPU, float32 or float64)."""
    return features.device.type == "cpu" and features.dtype in _DTYPES and available()


# The compiled loop's costs, measured on an x86-64 machine: seconds per active entry and
# sample (forward and backward together, one core); the fraction of a core that each block
# of samples after the first adds (on 2 cores: 0.3 - 0.9 by graph, the whole step, where
# the blocks share memory bandwidth and caches with each other and with torch's products);
# and seconds for launching the blocks (twice per training step, when the batch is cut
# into more than one). benchmarks/calibrate_kernels.py measures them.
ENTRY_SECONDS = 0.32e-9
BLOCK_EFFICIENCY = 0.55
LAUNCH_SECONDS = 40e-6
# Less work than this (by the estimate above) is not shared between threads: handing
# blocks over would cost more than it saves.
MIN_SHARED_SECONDS = 4 * LAUNCH_SECONDS


def cost(edges: ActiveEdges, batch: int, thread_count: int) -> float:
    """Estimated seconds of the compiled loop (layers 1..) for a training step on ``batch``
    samples with ``thread_count`` threads.

    Each active entry costs :data:`ENTRY_SECONDS` per sample. The work is split into
    :func:`blocks` blocks of samples, one per thread, so it runs faster by the blocks that
    can run at once (no more than the machine's cores), each after the first adding
    :data:`BLOCK_EFFICIENCY` of a core, and more than one block adds
    :data:`LAUNCH_SECONDS` for handing blocks to the threads.
    """
    active = int(edges[0][-1])
    count = blocks(batch, thread_count, active)
    parallel = speedup(count, BLOCK_EFFICIENCY)
    return ENTRY_SECONDS * active * batch / parallel + (LAUNCH_SECONDS if count > 1 else 0.0)


def preferred(
    plan: DanPlan, edges: ActiveEdges, batch: int, thread_count: int | None = None
) -> bool:
    """Whether this kernel should beat the torch one on ``batch`` samples with
    ``thread_count`` threads (torch's by default).

    Compares :func:`cost` with the torch kernel's :func:`._dan_kernel.cpu_cost` (layer 0
    is the same BLAS product in both and left out). Both parallel parts scale with the
    threads: the BLAS products over every thread, the compiled loop over as many blocks of
    samples as the batch makes (a small batch keeps threads idle); what does not scale is
    the torch kernel's bookkeeping per layer and the compiled loop's thread launches. So
    deep, narrow or sparse-skip graphs go to the compiled loop, wide and dense layers to
    BLAS, and the more threads, the more a small batch favours BLAS.
    """
    thread_count = threads() if thread_count is None else thread_count
    return cost(edges, batch, thread_count) < cpu_cost(plan, batch, thread_count)


def active_edges(plan: DanPlan, mask: torch.Tensor) -> ActiveEdges:
    """The active entries of layers 1.. of the packed ``mask``, as CSR over target rows.

    Returns ``(indptr, sources, positions)``: the entries of vertex row ``v`` are
    ``indptr[v]:indptr[v + 1]``, each reading activation row ``sources[e]`` with the
    weight at ``positions[e]`` of the packed weight. Vectorised: no loop over entries.
    """
    first = plan.blocks[0][1]
    positions = np.flatnonzero(mask[first:].cpu().numpy()) + first
    sources, targets = plan.edges_at(positions)
    indptr = np.zeros(plan.vertices + 1, dtype=np.int64)
    np.cumsum(np.bincount(targets, minlength=plan.vertices), out=indptr[1:])
    return indptr, sources.astype(np.int64), positions.astype(np.int64)


def _numpy(tensor: torch.Tensor | None) -> np.ndarray | None:
    return None if tensor is None else tensor.detach().numpy()


# A block of columns is at least this many samples, and blocks start at multiples of it
# (whole SIMD vectors and cache lines for float32 and float64).
BLOCK_ALIGN = 16


def threads() -> int:
    """The threads the kernel runs on: torch's (``torch.get_num_threads()``)."""
    return max(1, torch.get_num_threads())


def blocks(batch: int, thread_count: int | None = None, active: int | None = None) -> int:
    """How many blocks of columns ``batch`` samples are cut into for ``thread_count``
    threads (torch's by default): one per thread, each at least :data:`BLOCK_ALIGN`
    samples, and only one where the graph's ``active`` edges make too little work to
    share (under :data:`MIN_SHARED_SECONDS` by the cost model). The results depend on
    this number alone, not on the scheduling."""
    thread_count = threads() if thread_count is None else thread_count
    if active is not None and ENTRY_SECONDS * active * batch < MIN_SHARED_SECONDS:
        return 1
    return max(1, min(thread_count, batch // BLOCK_ALIGN))


def block_bounds(batch: int, count: int) -> np.ndarray:
    """``count + 1`` column bounds cutting ``batch`` into ``count`` near-equal blocks whose
    inner bounds are multiples of :data:`BLOCK_ALIGN`."""
    inner = np.rint(np.arange(1, count) * (batch / count / BLOCK_ALIGN)) * BLOCK_ALIGN
    return np.concatenate(([0], inner.astype(np.int64), [batch])).astype(np.int64)


_POOL: list[tuple[int, int, ThreadPoolExecutor]] = []  # [(process, workers, pool)]
_POOL_LOCK = threading.Lock()


def _pool(workers: int) -> ThreadPoolExecutor:
    """A pool of at least ``workers`` threads of this process (a forked child makes its own)."""
    with _POOL_LOCK:
        if _POOL and (_POOL[0][0] != os.getpid() or _POOL[0][1] < workers):
            _POOL.pop()  # threads of the parent (after a fork) are gone; or too few
        if not _POOL:
            _POOL.append((os.getpid(), workers, ThreadPoolExecutor(workers, "pypaddle-dan")))
        return _POOL[0][2]


def _in_blocks(
    function: Callable[..., None], count: int, arguments: Callable[[int], tuple]
) -> None:
    """``function(*arguments(k))`` for every block ``k < count``, one thread each (the
    compiled loops release the GIL); block 0 runs on the calling thread."""
    pool = _pool(count - 1)
    futures = [pool.submit(function, *arguments(k)) for k in range(1, count)]
    function(*arguments(0))
    for future in futures:
        future.result()


@cache
def _openmp() -> tuple[Callable[..., None], int, int] | None:
    """torch's OpenMP runtime, where it is GNU OpenMP (``libgomp``, loaded by torch in this
    process): its ``GOMP_parallel`` and the addresses of ``omp_get_thread_num`` and
    ``omp_get_num_threads``. None elsewhere (another runtime, another system, a torch
    without OpenMP): the blocks then run on a pool of Python threads."""
    if not torch._C.has_openmp:
        return None
    try:
        with open("/proc/self/maps") as maps:
            # address perms offset dev inode path (the path may hold spaces)
            paths = {line.split(maxsplit=5)[5].strip() for line in maps if "/libgomp" in line}
    except OSError:
        return None
    if len(paths) != 1:
        return None  # none, or two runtimes: which one torch uses is unknown
    try:
        library = ctypes.CDLL(paths.pop())  # the loaded one: dlopen returns its handle
        parallel = library.GOMP_parallel
        thread_num, num_threads = library.omp_get_thread_num, library.omp_get_num_threads
    except (OSError, AttributeError):
        return None
    parallel.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
    parallel.restype = None
    addresses = [
        ctypes.cast(function, ctypes.c_void_p).value for function in (thread_num, num_threads)
    ]
    return parallel, int(addresses[0] or 0), int(addresses[1] or 0)


# Whether this process is a forked child: GNU OpenMP cannot start a team in a child of a
# process that ran one (it waits forever for the parent's threads), so a child runs the
# blocks on Python threads of its own.
_FORKED = [False]
os.register_at_fork(after_in_child=lambda: _FORKED.__setitem__(0, True))


def _in_team(task: Any, record: list[int], count: int) -> bool:
    """Run the compiled ``task`` (a numba cfunc) on ``record`` on a team of ``count``
    threads of torch's OpenMP runtime (the calling thread is one; ctypes releases the GIL
    meanwhile); False, running nothing, where there is no such runtime."""
    openmp = None if _FORKED[0] else _openmp()
    if openmp is None:
        return False
    parallel, thread_num, num_threads = openmp
    record[4:6] = [thread_num, num_threads]
    values = np.array(record, dtype=np.int64)
    parallel(task.address, values.ctypes.data, count, 0)
    return True


def _address(array: np.ndarray) -> int:
    return int(array.ctypes.data)


class CompiledDanSinks(torch.autograd.Function):
    """As :class:`._dan_kernel.DanSinks`, with the CSR ``edges`` of :func:`active_edges`
    after the activation: ``CompiledDanSinks.apply(plan, activation, edges, sink_index,
    features, weight, weight_mask, bias, bias_mask)``, where only layer 0's block of
    ``weight_mask`` is read (the edges stand for the rest).

    The batch is cut into :func:`blocks` blocks of samples (one per torch thread), each
    run through the whole graph on its own thread (of torch's OpenMP team where there is
    one, see the module), forward and backward; the weight and
    bias gradients are the blocks' partial sums added in block order, so the same thread
    count gives bit-identical results. Layer 0's products run in torch (its threads).
    """

    @staticmethod
    def forward(
        ctx: Any,
        plan: DanPlan,
        activation: str,
        edges: ActiveEdges,
        sink_index: torch.Tensor,
        features: torch.Tensor,
        weight: torch.Tensor,
        weight_mask: torch.Tensor | None,
        bias: torch.Tensor,
        bias_mask: torch.Tensor | None,
    ):
        kernels, code = _kernels(), _CODES[activation]
        features, weight, bias = features.detach(), weight.detach(), bias.detach()
        first_rows, first_block = plan.writes[0][1], plan.blocks[0][1]
        first = weight[:first_block].view(first_rows, -1)
        if weight_mask is not None:
            first = first * weight_mask[:first_block].view(first_rows, -1)
        masked_bias = bias if bias_mask is None else bias * bias_mask
        batch = features.shape[0]
        count = blocks(batch, active=int(edges[0][-1]))
        bounds = [0, batch] if count == 1 else block_bounds(batch, count).tolist()
        spans = list(itertools.pairwise(bounds))
        # Block-major: each block of samples has its own [vertices, width] activations
        # (allocated by torch: aligned as its BLAS expects, so that results do not vary).
        # Two threads working on the two halves of the same rows ran no faster than one:
        # the CPU's prefetchers stream into the other block's half of each row, and every
        # write of the backward pass then pulls cache lines back and forth between cores.
        parts = [features.new_empty(plan.vertices, high - low) for low, high in spans]
        for part, (low, high) in zip(parts, spans):
            reads = features[low:high].t()
            torch.addmm(masked_bias[:first_rows, None], first, reads, out=part[:first_rows])
        # Contiguous, as the OpenMP team's record of addresses needs (no copy if they are).
        w, b = np.ascontiguousarray(weight.numpy()), np.ascontiguousarray(masked_bias.numpy())
        hs = [part.numpy() for part in parts]
        if count == 1:
            kernels.forward_block(hs[0], first_rows, *edges, w, b, code, 0, batch)
        else:
            indptr, sources, positions = edges
            record = [count, plan.vertices, first_rows, code, 0, 0, _address(indptr)]
            record += [_address(sources), _address(positions), _address(w), _address(b)]
            record += [sources.size, w.size]
            for h in hs:
                record += [_address(h), h.shape[1]]
            task = getattr(kernels, f"forward_task_{w.dtype.name}")
            if not _in_team(task, record, count):
                arguments = (first_rows, *edges, w, b, code, 0)
                _in_blocks(
                    kernels.forward_block, count, lambda k: (hs[k], *arguments, hs[k].shape[1])
                )
        ctx.plan, ctx.code, ctx.edges, ctx.spans = plan, code, edges, spans
        ctx.first = first
        ctx.save_for_backward(features, weight, sink_index, weight_mask, bias_mask, *parts)
        if count == 1:
            return plan.sink_rows(parts[0], sink_index).t().contiguous()
        sinks = features.new_empty(batch, sink_index.numel())
        for part, (low, high) in zip(parts, spans):
            sinks[low:high] = plan.sink_rows(part, sink_index).t()
        return sinks

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_sinks: torch.Tensor):
        plan: DanPlan = ctx.plan
        features, weight, sink_index, weight_mask, bias_mask, *parts = ctx.saved_tensors
        kernels, code, spans, edges = _kernels(), ctx.code, ctx.spans, ctx.edges
        first_rows, first_block = plan.writes[0][1], plan.blocks[0][1]
        # Contiguous, as the OpenMP team's record of addresses needs: a saved-tensor hook
        # may give the activations back in another layout.
        hs = [np.ascontiguousarray(part.numpy()) for part in parts]
        w = np.ascontiguousarray(weight.numpy())
        bias_grad = torch.empty(plan.vertices, dtype=weight.dtype)
        # No torch operation between here and the blocks' loops (see seed_gradients).
        blocks_grads = [torch.empty(part.shape, dtype=part.dtype) for part in parts]
        gs = [grad.numpy() for grad in blocks_grads]
        sinks = np.ascontiguousarray(sink_index.numpy(), dtype=np.int64)
        outputs = np.ascontiguousarray(grad_sinks.detach().to(weight.dtype).numpy())
        if len(parts) == 1:
            weight_grad = torch.zeros_like(weight)
            kernels.seed_gradients(gs[0], sinks, outputs, 0)
            kernels.backward_rows(
                hs[0], gs[0], first_rows, *edges, w, code, weight_grad.numpy(), bias_grad.numpy()
            )
            first_grads = blocks_grads[0][:first_rows]
        else:
            edge_grads = np.empty((len(parts), edges[1].size), dtype=w.dtype)
            bias_grads = np.empty((len(parts), plan.vertices), dtype=w.dtype)
            arguments = (first_rows, *edges, w, code)

            def block(k: int) -> None:
                kernels.seed_gradients(gs[k], sinks, outputs, spans[k][0])
                kernels.backward_block(
                    hs[k], gs[k], *arguments, edge_grads[k], bias_grads[k], 0, hs[k].shape[1]
                )

            indptr, sources, positions = edges
            record = [len(parts), plan.vertices, first_rows, code, 0, 0, _address(indptr)]
            record += [_address(sources), _address(positions), _address(w), _address(sinks)]
            record += [_address(outputs), _address(edge_grads), _address(bias_grads)]
            record += [sources.size, w.size, sinks.size, outputs.shape[0]]
            for h, g, (low, high) in zip(hs, gs, spans):
                record += [_address(h), _address(g), low, high - low]
            task = getattr(kernels, f"backward_task_{w.dtype.name}")
            if not _in_team(task, record, len(parts)):
                _in_blocks(block, len(parts), lambda k: (k,))
            weight_grad = torch.zeros_like(weight)
            kernels.reduce_blocks(
                edge_grads, bias_grads, edges[2], weight_grad.numpy(), bias_grad.numpy()
            )
            first_grads = torch.cat([grad[:first_rows] for grad in blocks_grads], 1)
        torch.mm(first_grads, features, out=weight_grad[:first_block].view(first_rows, -1))
        if weight_mask is not None:
            weight_grad[:first_block] *= weight_mask[:first_block]
        if bias_mask is not None:
            bias_grad *= bias_mask
        input_grad = None
        if ctx.needs_input_grad[4]:
            input_grad = first_grads.t() @ ctx.first
        return None, None, None, None, input_grad, weight_grad, None, bias_grad, None
