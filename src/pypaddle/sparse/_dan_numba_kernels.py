"""Compiled loops of the CPU DAN kernel (imported only when numba is installed).

Rows of ``H`` are vertices in layer order, columns the batch. Layer by layer, vertex by
vertex, each vertex sums its active incoming edges (a sparse row times the activations
it reads) and applies the activation in place; the backward pass walks the same edges in
reverse. Within a layer no vertex reads another, so vertex order is layer order.
Activation codes: 0 identity, 1 ReLU, 2 tanh, 3 sigmoid.
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["activate_rows", "backward_rows", "derivative_rows", "forward_rows"]

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
def _derivative(g: np.ndarray, h: np.ndarray, code: int) -> None:
    """``g *= act'(z)``, from the activation's output ``h``."""
    if code == 1:
        for b in range(g.shape[0]):
            if h[b] <= 0:
                g[b] = 0
    elif code == 2:
        for b in range(g.shape[0]):
            g[b] *= 1 - h[b] * h[b]
    elif code == 3:
        for b in range(g.shape[0]):
            g[b] *= h[b] * (1 - h[b])


@numba.njit(cache=True, nogil=True, fastmath=_FAST)
def activate_rows(H: np.ndarray, start: int, end: int, code: int) -> None:
    for v in range(start, end):
        _activate(H[v], code)


@numba.njit(cache=True, nogil=True, fastmath=_FAST)
def derivative_rows(G: np.ndarray, H: np.ndarray, start: int, end: int, code: int) -> None:
    for v in range(start, end):
        _derivative(G[v], H[v], code)


@numba.njit(cache=True, nogil=True, fastmath=_FAST)
def forward_rows(
    H: np.ndarray,
    start: int,
    indptr: np.ndarray,
    sources: np.ndarray,
    positions: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray,
    code: int,
) -> None:
    """Vertices ``start..`` of ``H``: bias plus active incoming edges, then activation."""
    batch = H.shape[1]
    z = np.empty(batch, dtype=H.dtype)  # its own array, so the loops below vectorise
    for v in range(start, H.shape[0]):
        for b in range(batch):
            z[b] = bias[v]
        for e in range(indptr[v], indptr[v + 1]):
            w = weight[positions[e]]
            h = H[sources[e]]
            for b in range(batch):
                z[b] += w * h[b]
        _activate(z, code)
        H[v] = z


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
    """Back through vertices ``.., start`` in reverse: ``G`` holds output gradients on
    entry; each vertex's row becomes its pre-activation gradient, is pushed to the
    vertices it reads, and gives its edges' and bias's gradients."""
    batch = H.shape[1]
    g = np.empty(batch, dtype=H.dtype)  # its own array, so the loops below vectorise
    for v in range(H.shape[0] - 1, start - 1, -1):
        g[:] = G[v]
        _derivative(g, H[v], code)
        G[v] = g
        total = 0.0
        for b in range(batch):
            total += g[b]
        bias_grad[v] = total
        for e in range(indptr[v], indptr[v + 1]):
            u = sources[e]
            h = H[u]
            pushed = G[u]
            w = weight[positions[e]]
            dot = 0.0
            for b in range(batch):
                dot += g[b] * h[b]
            for b in range(batch):
                pushed[b] += w * g[b]
            weight_grad[positions[e]] = dot
