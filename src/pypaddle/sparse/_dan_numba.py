"""The hidden part of a MaskedDeepDAN on the CPU, compiled with numba (``pypaddle[fast]``).

Same computation and the same packed tensors as :mod:`._dan_kernel`, but the hidden
layers after the first run as one compiled loop over the *active* edges, so a layer costs
nanoseconds of bookkeeping instead of a few torch calls, and masked entries cost nothing.
Layer 0, which reads the (usually wide) input, is one BLAS product as before. Forward and
backward each make a handful of calls whatever the depth of the graph.
"""

from __future__ import annotations

import importlib.util
import warnings
from functools import cache
from types import ModuleType
from typing import Any

import numpy as np
import torch

from pypaddle.sparse._dan_plan import DanPlan

__all__ = [
    "ActiveEdges",
    "CompiledDanSinks",
    "active_edges",
    "available",
    "preferred",
    "supports",
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
    if importlib.util.find_spec("numba") is None:
        return False
    try:
        _kernels()
    except Exception as error:  # any failure of a broken install, not only ImportError
        warnings.warn(
            f"numba is installed but cannot be used ({type(error).__name__}: {error}); "
            "MaskedDeepDAN falls back to its torch kernel",
            RuntimeWarning,
            stacklevel=2,
        )
        return False
    return True


@cache
def _kernels() -> ModuleType:
    from pypaddle.sparse import _dan_numba_kernels

    return _dan_numba_kernels


def supports(features: torch.Tensor) -> bool:
    """Whether this kernel can run on ``features`` (CPU, float32 or float64)."""
    return features.device.type == "cpu" and features.dtype in _DTYPES and available()


def preferred(plan: DanPlan, edges: ActiveEdges, batch: int) -> bool:
    """Whether this kernel should beat the torch one on ``batch`` samples.

    A cost estimate (layer 0 is the same BLAS product in both and left out): the compiled
    loop costs about 0.35 ns per active entry and sample for forward and backward, the
    torch kernel about 30 us per layer plus 0.08 ns per packed entry (active or not) and
    sample, as measured on one core of an x86-64 machine. Deep, narrow or sparse-skip
    graphs go to the compiled loop, wide and dense layers to BLAS.
    """
    active = int(edges[0][-1])
    packed = plan.blocks[-1][1] - plan.blocks[0][1]
    return 4 * active * batch < packed * batch + 400_000 * (len(plan.writes) - 1)


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


class CompiledDanSinks(torch.autograd.Function):
    """As :class:`._dan_kernel.DanSinks`, with the CSR ``edges`` of :func:`active_edges`
    after the activation: ``CompiledDanSinks.apply(plan, activation, edges, sink_index,
    features, weight, weight_mask, bias, bias_mask)``."""

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
        x, w = features.detach().numpy(), weight.detach().numpy()
        mask = _numpy(weight_mask)
        first_rows, first_block = plan.writes[0][1], plan.blocks[0][1]
        first = w[:first_block].reshape(first_rows, -1)
        if mask is not None:
            first = first * mask[:first_block].reshape(first_rows, -1)
        masked_bias = bias.detach().numpy()
        if bias_mask is not None:
            masked_bias = masked_bias * bias_mask.detach().numpy()
        activations = np.empty((plan.vertices, x.shape[0]), dtype=x.dtype)
        np.dot(first, x.T, out=activations[:first_rows])
        activations[:first_rows] += masked_bias[:first_rows, None]
        kernels.activate_rows(activations, 0, first_rows, code)
        kernels.forward_rows(activations, first_rows, *edges, w, masked_bias, code)
        ctx.plan, ctx.code, ctx.edges = plan, code, edges
        ctx.arrays = activations, first
        ctx.save_for_backward(features, weight, sink_index, weight_mask, bias_mask)
        if plan.sink_range is not None:
            sinks = activations[plan.sink_range[0] : plan.sink_range[1]]
        else:
            sinks = activations[sink_index.numpy()]
        return torch.from_numpy(np.ascontiguousarray(sinks.T))

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_sinks: torch.Tensor):
        plan: DanPlan = ctx.plan
        features, weight, sink_index, weight_mask, bias_mask = ctx.saved_tensors
        activations, first = ctx.arrays
        kernels, code = _kernels(), ctx.code
        grads = np.zeros_like(activations)
        incoming = grad_sinks.detach().numpy().T
        if plan.sink_range is not None:
            grads[plan.sink_range[0] : plan.sink_range[1]] = incoming
        else:
            grads[sink_index.numpy()] = incoming
        weight_grad = np.zeros(weight.shape[0], dtype=activations.dtype)
        bias_grad = np.empty(plan.vertices, dtype=activations.dtype)
        first_rows, first_block = plan.writes[0][1], plan.blocks[0][1]
        kernels.backward_rows(
            activations, grads, first_rows, *ctx.edges, weight.detach().numpy(), code,
            weight_grad, bias_grad,
        )  # fmt: skip
        kernels.derivative_rows(grads, activations, 0, first_rows, code)
        first_grads = grads[:first_rows]
        bias_grad[:first_rows] = first_grads.sum(1)
        x = features.detach().numpy()
        np.dot(first_grads, x, out=weight_grad[:first_block].reshape(first_rows, -1))
        if weight_mask is not None:
            weight_grad[:first_block] *= weight_mask[:first_block].numpy()
        if bias_mask is not None:
            bias_grad *= bias_mask.numpy()
        input_grad = None
        if ctx.needs_input_grad[4]:
            input_grad = torch.from_numpy(first_grads.T @ first)
        return (
            None, None, None, None, input_grad, torch.from_numpy(weight_grad), None,
            torch.from_numpy(bias_grad), None,
        )  # fmt: skip
