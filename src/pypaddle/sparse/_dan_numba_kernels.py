"""Compiled loops of the CPU DAN kernel (imported only when numba is installed).

Rows of ``H`` are vertices in layer order, columns the batch. Layer by layer, vertex by
vertex, each vertex sums its active incoming edges (a sparse row times the activations
it reads) and applies the activation in place; the backward pass walks the same edges in
reverse. Within a layer no vertex reads another, so vertex order is layer order.
Activation codes: 0 identity, 1 ReLU, 2 tanh, 3 sigmoid.

The samples of a batch are independent, so the batch is cut into blocks of columns and
each block runs the whole graph on its own thread (``*_block``: compiled without the GIL,
called from a pool of Python threads; numba's ``prange`` compiled these loops without
vectorising them). Each block has arrays of its own (the caller passes each its own ``H``
and ``G``, with ``low:high`` all their columns): two threads on the two halves of the
same rows ran no faster than one. A weight's gradient sums over every sample, so each
block writes its own partial sums (one per active edge and per vertex) and
:func:`reduce_blocks` adds them up in block order: the result depends on the blocks,
never on which thread ran which or when. One block runs ``forward_block`` over all the
columns and ``backward_rows``, which writes the weight gradients directly, without partial
sums.
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np
from llvmlite import ir  # type: ignore[import-untyped]
from numba import types
from numba.extending import intrinsic

__all__ = [
    "backward_block",
    "backward_rows",
    "backward_task_float32",
    "backward_task_float64",
    "forward_block",
    "forward_task_float32",
    "forward_task_float64",
    "reduce_blocks",
    "seed_gradients",
]

# Sums may be reordered (vectorised) and multiply-adds fused; inf and nan keep their meaning.
_FAST = {"reassoc", "contract"}


@numba.njit(cache=True, nogil=True, fastmath=_FAST)
def _activate(z: np.ndarray, code: int) -> None:
    if code == 1:
        for b in range(z.shape[0]):
            if z[b] < 0:
                z[b] = 0
    elif code == 2:
        for b in range(z.shape[0]):
            z[b] = math.tanh(z[b])
    elif code == 3:
        for b in range(z.shape[0]):
            z[b] = 1 / (1 + math.exp(-z[b]))


@numba.njit(cache=True, nogil=True, fastmath=_FAST)
def _activate_at(H: np.ndarray, v: int, low: int, high: int, code: int) -> None:
    """:func:`_activate` of ``H[v, low:high]``, indexed in place (no slice: a slice's
    reference count is one shared counter that threads would contend for)."""
    if code == 1:
        for b in range(low, high):
            if H[v, b] < 0:
                H[v, b] = 0
    elif code == 2:
        for b in range(low, high):
            H[v, b] = math.tanh(H[v, b])
    elif code == 3:
        for b in range(low, high):
            H[v, b] = 1 / (1 + math.exp(-H[v, b]))


@numba.njit(cache=True, nogil=True, fastmath=_FAST)
def _derivative_at(g: np.ndarray, H: np.ndarray, v: int, low: int, code: int) -> None:
    """``g *= act'(z)`` from the outputs ``H[v, low:low + g.size]``, indexed in place."""
    low_, width = np.uint64(low), np.uint64(g.shape[0])
    one = g.dtype.type(1)  # see _derivative
    if code == 1:
        for b in range(width):
            if H[v, low_ + b] <= 0:
                g[b] = 0
    elif code == 2:
        for b in range(width):
            h = H[v, low_ + b]
            g[b] *= one - h * h
    elif code == 3:
        for b in range(width):
            h = H[v, low_ + b]
            g[b] *= h * (one - h)


@numba.njit(cache=True, nogil=True, fastmath=_FAST)
def _forward_columns(
    H: np.ndarray,
    start: int,
    indptr: np.ndarray,
    sources: np.ndarray,
    positions: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray,
    code: int,
    low: int,
    high: int,
) -> None:
    """Columns ``low:high`` of vertices ``start..``: bias plus active incoming edges, then
    activation."""
    # Unsigned column indices: numba then knows they are not negative (no wraparound
    # test per element), so the loops over the block's columns vectorise.
    low_, width = np.uint64(low), np.uint64(high - low)
    z = np.empty(high - low, dtype=H.dtype)  # its own array, so the loops below vectorise
    for v in range(start, H.shape[0]):
        for b in range(width):
            z[b] = bias[v]
        for e in range(indptr[v], indptr[v + 1]):
            w = weight[positions[e]]
            u = sources[e]
            for b in range(width):
                z[b] += w * H[u, low_ + b]
        _activate(z, code)
        for b in range(width):
            H[v, low_ + b] = z[b]


@numba.njit(cache=True, nogil=True, fastmath=_FAST)
def forward_block(
    H: np.ndarray,
    start: int,
    indptr: np.ndarray,
    sources: np.ndarray,
    positions: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray,
    code: int,
    low: int,
    high: int,
) -> None:
    """Columns ``low:high`` (one block of samples, or all) of every vertex: rows ``:start``
    (layer 0) hold pre-activations on entry and are activated; then vertices ``start..``
    in order, each its bias plus its active incoming edges, activated."""
    for v in range(start):
        _activate_at(H, v, low, high, code)
    _forward_columns(H, start, indptr, sources, positions, weight, bias, code, low, high)


@numba.njit(cache=True, nogil=True, fastmath=_FAST)
def _backward_columns(
    H: np.ndarray,
    G: np.ndarray,
    start: int,
    indptr: np.ndarray,
    sources: np.ndarray,
    positions: np.ndarray,
    weight: np.ndarray,
    code: int,
    edge_grad: np.ndarray,
    bias_grad: np.ndarray,
    low: int,
    high: int,
    packed: bool,
) -> None:
    """Back through columns ``low:high`` of vertices ``.., start`` in reverse: ``G`` holds
    output gradients on entry; each vertex's row becomes its pre-activation gradient, is
    pushed to the vertices it reads, and gives ``bias_grad[v]`` and, for its active edge
    ``e``, ``edge_grad[e]`` (or ``edge_grad[positions[e]]`` if ``packed``), sums over
    these columns."""
    low_, width = np.uint64(low), np.uint64(high - low)  # unsigned: see _forward_columns
    g = np.empty(high - low, dtype=H.dtype)  # its own array, so the loops below vectorise
    # Sums in H's dtype: a literal 0.0 would make every float32 product a float64 one (a
    # conversion per element, half the vector width), which cost a third of the time.
    zero = H.dtype.type(0)
    for v in range(H.shape[0] - 1, start - 1, -1):
        for b in range(width):
            g[b] = G[v, low_ + b]
        _derivative_at(g, H, v, low, code)
        total = zero
        for b in range(width):
            G[v, low_ + b] = g[b]
            total += g[b]
        bias_grad[v] = total
        for e in range(indptr[v], indptr[v + 1]):
            u = sources[e]
            w = weight[positions[e]]
            dot = zero
            for b in range(width):
                dot += g[b] * H[u, low_ + b]
            for b in range(width):
                G[u, low_ + b] += w * g[b]
            edge_grad[positions[e] if packed else e] = dot


@numba.njit(cache=True, nogil=True, fastmath=_FAST)
def _first_rows_gradients(
    H: np.ndarray, G: np.ndarray, start: int, code: int, bias_grad: np.ndarray, low: int, high: int
) -> None:
    """Rows ``:start`` (layer 0) of columns ``low:high``: output gradients in ``G`` become
    pre-activation gradients, and ``bias_grad[v]`` their sums over these columns."""
    zero, one = H.dtype.type(0), H.dtype.type(1)  # see _backward_columns
    for v in range(start):
        total = zero
        if code == 1:
            for b in range(low, high):
                if H[v, b] <= 0:
                    G[v, b] = 0
                total += G[v, b]
        else:
            for b in range(low, high):
                h = H[v, b]
                if code == 2:
                    G[v, b] *= one - h * h
                elif code == 3:
                    G[v, b] *= h * (one - h)
                total += G[v, b]
        bias_grad[v] = total


@numba.njit(cache=True, nogil=True, fastmath=_FAST)
def backward_rows(
    H: np.ndarray,
    G: np.ndarray,
    start: int,
    indptr: np.ndarray,
    sources: np.ndarray,
    positions: np.ndarray,
    weight: np.ndarray,
    code: int,
    weight_grad: np.ndarray,
    bias_grad: np.ndarray,
) -> None:
    """Back through every vertex in reverse, every column: ``G`` holds output gradients on
    entry; each vertex's row becomes its pre-activation gradient, is pushed to the
    vertices it reads, and gives its edges' (``weight_grad[positions[e]]``) and bias's
    gradients; rows ``:start`` (layer 0) become pre-activation gradients with their bias
    gradients too."""
    _backward_columns(
        H, G, start, indptr, sources, positions, weight, code, weight_grad, bias_grad, 0,
        H.shape[1], True,
    )  # fmt: skip
    _first_rows_gradients(H, G, start, code, bias_grad, 0, H.shape[1])


@numba.njit(cache=True, nogil=True, fastmath=_FAST)
def backward_block(
    H: np.ndarray,
    G: np.ndarray,
    start: int,
    indptr: np.ndarray,
    sources: np.ndarray,
    positions: np.ndarray,
    weight: np.ndarray,
    code: int,
    edge_grad: np.ndarray,
    bias_grad: np.ndarray,
    low: int,
    high: int,
) -> None:
    """As :func:`backward_rows`, for columns ``low:high`` only (one block of samples). The
    block's partial sums go to ``edge_grad`` (per active edge) and ``bias_grad`` (per
    vertex)."""
    _backward_columns(
        H, G, start, indptr, sources, positions, weight, code, edge_grad, bias_grad, low,
        high, False,
    )  # fmt: skip
    _first_rows_gradients(H, G, start, code, bias_grad, low, high)


@numba.njit(cache=True, nogil=True, fastmath=_FAST)
def seed_gradients(G: np.ndarray, sinks: np.ndarray, grad_sinks: np.ndarray, low: int) -> None:
    """Where a block's backward pass starts: ``G`` zero but for the rows ``sinks[i]``,
    which get the samples' output gradients ``grad_sinks[low + b, i]`` (on the block's own
    thread: zeros written by torch would wake its OpenMP threads, which then spin on the
    cores the blocks run on)."""
    G[:] = 0
    for i in range(sinks.size):
        v = sinks[i]
        for b in range(G.shape[1]):
            G[v, b] = grad_sinks[low + b, i]


@numba.njit(cache=True, nogil=True, fastmath=_FAST)
def reduce_blocks(
    edge_grads: np.ndarray,
    bias_grads: np.ndarray,
    positions: np.ndarray,
    weight_grad: np.ndarray,
    bias_grad: np.ndarray,
) -> None:
    """``weight_grad[positions[e]]`` and ``bias_grad[v]``: the blocks' partial sums added
    in block order."""
    blocks = edge_grads.shape[0]
    for e in range(positions.size):
        total = edge_grads[0, e]
        for k in range(1, blocks):
            total += edge_grads[k, e]
        weight_grad[positions[e]] = total
    for v in range(bias_grad.size):
        total = bias_grads[0, v]
        for k in range(1, blocks):
            total += bias_grads[k, v]
        bias_grad[v] = total


# -- the blocks as one OpenMP team -----------------------------------------------------------
# torch runs its parallel products on OpenMP threads, which keep spinning for a few
# milliseconds after each product, waiting for the next: blocks run on threads of their
# own would share the cores with them (measured: two blocks on two cores ran no faster
# than one). Run on the team of torch's own OpenMP runtime instead (``GOMP_parallel``
# through ctypes, see ``_dan_numba``), the blocks take over those very threads. The task
# below is what each thread of the team runs; it finds its arrays through a record of
# int64 values (addresses, sizes), since a C callback takes one pointer.


def _pointer_typing(typingctx, address, like):  # pragma: no cover - compiled
    """The int64 ``address`` as a pointer to values of ``like``'s type."""
    signature = types.CPointer(like)(address, like)

    def codegen(context, builder, signature, arguments):
        return builder.inttoptr(arguments[0], context.get_value_type(signature.return_type))

    return signature, codegen


_pointer: Any = intrinsic(_pointer_typing)


def _call_int_typing(typingctx, address):  # pragma: no cover - compiled
    """Call the C function ``int f(void)`` at the int64 ``address``."""
    signature = types.int32(address)

    def codegen(context, builder, signature, arguments):
        function = ir.FunctionType(ir.IntType(32), [])
        return builder.call(builder.inttoptr(arguments[0], function.as_pointer()), [])

    return signature, codegen


_call_int: Any = intrinsic(_call_int_typing)


# Record layout, forward: [0] blocks, [1] vertices, [2] start, [3] activation code,
# [4] omp_get_thread_num, [5] omp_get_num_threads, [6] indptr, [7] sources, [8] positions,
# [9] weight, [10] bias (addresses), [11] edges, [12] weight size, then per block k:
# [13 + 2k] its activations' address, [14 + 2k] its samples.
# Backward: [0] .. [9] as forward, [10] sinks, [11] output gradients [batch, sinks],
# [12] edge partial sums [blocks, edges], [13] bias partial sums [blocks, vertices],
# [14] edges, [15] weight size, [16] sink count, [17] batch, then per block k:
# [18 + 4k] activations, [19 + 4k] gradients, [20 + 4k] first sample, [21 + 4k] samples.


@numba.njit(cache=True, nogil=True)
def _forward_task(record: np.ndarray, zero: Any) -> None:  # pragma: no cover - compiled
    count, vertices, start, code = record[0], record[1], record[2], record[3]
    edges, weights = record[11], record[12]
    indptr = numba.carray(_pointer(record[6], record[0]), (vertices + 1,))
    sources = numba.carray(_pointer(record[7], record[0]), (edges,))
    positions = numba.carray(_pointer(record[8], record[0]), (edges,))
    weight = numba.carray(_pointer(record[9], zero), (weights,))
    bias = numba.carray(_pointer(record[10], zero), (vertices,))
    me, team = _call_int(record[4]), _call_int(record[5])
    for k in range(me, count, team):
        width = record[14 + 2 * k]
        H = numba.carray(_pointer(record[13 + 2 * k], zero), (vertices, width))
        forward_block(H, start, indptr, sources, positions, weight, bias, code, 0, width)


@numba.njit(cache=True, nogil=True)
def _backward_task(record: np.ndarray, zero: Any) -> None:  # pragma: no cover - compiled
    count, vertices, start, code = record[0], record[1], record[2], record[3]
    edges, weights, sink_count, batch = record[14], record[15], record[16], record[17]
    indptr = numba.carray(_pointer(record[6], record[0]), (vertices + 1,))
    sources = numba.carray(_pointer(record[7], record[0]), (edges,))
    positions = numba.carray(_pointer(record[8], record[0]), (edges,))
    weight = numba.carray(_pointer(record[9], zero), (weights,))
    sinks = numba.carray(_pointer(record[10], record[0]), (sink_count,))
    outputs = numba.carray(_pointer(record[11], zero), (batch, sink_count))
    edge_grads = numba.carray(_pointer(record[12], zero), (count, edges))
    bias_grads = numba.carray(_pointer(record[13], zero), (count, vertices))
    me, team = _call_int(record[4]), _call_int(record[5])
    for k in range(me, count, team):
        low, width = record[20 + 4 * k], record[21 + 4 * k]
        H = numba.carray(_pointer(record[18 + 4 * k], zero), (vertices, width))
        G = numba.carray(_pointer(record[19 + 4 * k], zero), (vertices, width))
        seed_gradients(G, sinks, outputs, low)
        backward_block(
            H, G, start, indptr, sources, positions, weight, code, edge_grads[k], bias_grads[k],
            0, width,
        )  # fmt: skip


_TASK = types.void(types.CPointer(types.int64))


@numba.cfunc(_TASK, cache=True, nogil=True)
def forward_task_float32(record):  # pragma: no cover - compiled
    """Forward through this thread's blocks of a float32 record (a ``GOMP_parallel`` task)."""
    _forward_task(numba.carray(record, (13 + 2 * record[0],)), np.float32(0))


@numba.cfunc(_TASK, cache=True, nogil=True)
def forward_task_float64(record):  # pragma: no cover - compiled
    """Forward through this thread's blocks of a float64 record."""
    _forward_task(numba.carray(record, (13 + 2 * record[0],)), np.float64(0))


@numba.cfunc(_TASK, cache=True, nogil=True)
def backward_task_float32(record):  # pragma: no cover - compiled
    """Back through this thread's blocks of a float32 record (a ``GOMP_parallel`` task)."""
    _backward_task(numba.carray(record, (18 + 4 * record[0],)), np.float32(0))


@numba.cfunc(_TASK, cache=True, nogil=True)
def backward_task_float64(record):  # pragma: no cover - compiled
    """Back through this thread's blocks of a float64 record."""
    _backward_task(numba.carray(record, (18 + 4 * record[0],)), np.float64(0))
