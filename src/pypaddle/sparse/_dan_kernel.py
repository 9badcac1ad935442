"""The hidden part of a MaskedDeepDAN as one autograd node, with torch operations.

A DAN layer reads a contiguous range of earlier activations. Run with ordinary autograd,
that range has to be concatenated from per-layer tensors first, and every layer costs
several autograd nodes: for deep, narrow graphs (hundreds of layers of one or two
vertices) the bookkeeping, not the arithmetic, dominates. Here all vertex activations
live in one ``[vertices, batch]`` buffer (vertices in layer order), so the range a layer
reads is a contiguous row slice, and forward and backward are each one loop of BLAS calls
per layer writing straight into that buffer. Layer 0 reads the input itself, untouched.
The weights of all layers come packed in one tensor (each layer's ``[rows, reads]`` block
after the previous one), so autograd sees one weight and one bias, however deep the graph.
Where each layer reads, writes and finds its block is the model's
:class:`~pypaddle.sparse.DanPlan`.

This kernel runs on any device and dtype. On the CPU, :mod:`._dan_numba` runs the same
computation compiled, edge by edge, which is faster for deep and narrow graphs.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import torch
from torch import nn

from pypaddle.sparse._dan_plan import DanPlan

__all__ = ["FAST_ACTIVATIONS", "DanSinks", "cpu_cost", "cuda_cost", "speedup"]

# This kernel's costs on the CPU, measured on one core of an x86-64 machine (forward and
# backward together): seconds of torch calls and autograd bookkeeping per layer, and
# seconds per packed entry (active or masked) and sample, in BLAS products; and the
# fraction of a core that each thread after the first adds to those products (on 2 cores:
# 0.8 where BLAS is most of the time). benchmarks/calibrate_kernels.py measures them.
LAYER_SECONDS = 30e-6
PACKED_ENTRY_SECONDS = 0.055e-9
BLAS_EFFICIENCY = 0.8


@cache
def cores() -> int:
    """The machine's cores (``os.cpu_count()``, read once: it is slow on a busy machine)."""
    return os.cpu_count() or 1


def speedup(workers: int, efficiency: float) -> float:
    """How many times faster ``workers`` threads run than one: each after the first adds
    ``efficiency`` of a core, up to the machine's cores."""
    return 1 + efficiency * (max(1, min(workers, cores())) - 1)


def cpu_cost(plan: DanPlan, batch: int, thread_count: int) -> float:
    """Estimated seconds of this kernel for layers 1.. of a training step on the CPU, on
    ``batch`` samples with ``thread_count`` threads.

    Every packed entry costs :data:`PACKED_ENTRY_SECONDS` per sample, in BLAS products that
    use every thread (up to the machine's cores, each thread after the first adding
    :data:`BLAS_EFFICIENCY` of a core); each layer after the first adds
    :data:`LAYER_SECONDS` of calls, which no thread count shortens.
    """
    parallel = speedup(thread_count, BLAS_EFFICIENCY)
    packed = plan.blocks[-1][1] - plan.blocks[0][1]
    layers = len(plan.writes) - 1
    return PACKED_ENTRY_SECONDS * packed * batch / parallel + LAYER_SECONDS * layers


# This kernel's costs on a CUDA GPU (forward and backward together): seconds of launches
# and autograd bookkeeping per layer (an H200 ran the 200-layer small-world DAN in 25 - 27
# ms), and seconds per packed entry and sample in cuBLAS (6 flops at ~25 TFLOP/s).
CUDA_LAYER_SECONDS = 120e-6
CUDA_PACKED_ENTRY_SECONDS = 0.24e-12


def cuda_cost(plan: DanPlan, batch: int) -> float:
    """Estimated seconds of this kernel for layers 1.. of a training step on a CUDA GPU,
    on ``batch`` samples: :data:`CUDA_LAYER_SECONDS` per layer after the first, which
    keep the GPU waiting on the host for deep graphs, plus the products over every packed
    entry, :data:`CUDA_PACKED_ENTRY_SECONDS` per entry and sample."""
    packed = plan.blocks[-1][1] - plan.blocks[0][1]
    layers = len(plan.writes) - 1
    return CUDA_PACKED_ENTRY_SECONDS * packed * batch + CUDA_LAYER_SECONDS * layers


# Activations whose derivative follows from their output alone.
FAST_ACTIVATIONS: dict[type[nn.Module], str] = {
    nn.ReLU: "relu",
    nn.Identity: "identity",
    nn.Tanh: "tanh",
    nn.Sigmoid: "sigmoid",
}


def _relu_(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.clamp_min_(0)


_relu_backward = torch.ops.aten.threshold_backward.grad_input

_ACTIVATE_IN_PLACE = {
    "relu": _relu_,
    "tanh": torch.Tensor.tanh_,
    "sigmoid": torch.Tensor.sigmoid_,
    "identity": None,
}


def _derivative(kind: str, out: torch.Tensor) -> torch.Tensor | None:
    """The activation's derivative at every vertex, from the activation's output (None for
    the identity, and for ReLU, whose gradients are gated layer by layer instead)."""
    if kind == "tanh":
        return 1 - out * out
    if kind == "sigmoid":
        return out * (1 - out)
    return None


class DanSinks(torch.autograd.Function):
    """``DanSinks.apply(plan, activation, sink_index, features, weight, first_mask,
    hidden_mask, bias, bias_mask)``: activations ``[batch, sinks]`` of the sink vertices.

    ``weight`` and ``bias`` are the packed hidden parameters; ``first_mask`` holds the 0/1
    values of layer 0's block of the packed mask, ``hidden_mask`` those of the blocks
    after it, and ``bias_mask`` those of the bias, in the weight dtype, each None where it
    is all True (layer 0, read from every input, usually is: its weights then go to BLAS
    as they are, with no product with a mask of ones). Masked weights and biases get
    exactly zero gradient.
    """

    @staticmethod
    def forward(
        ctx: Any,
        plan: DanPlan,
        activation: str,
        sink_index: torch.Tensor,
        features: torch.Tensor,
        weight: torch.Tensor,
        first_mask: torch.Tensor | None,
        hidden_mask: torch.Tensor | None,
        bias: torch.Tensor,
        bias_mask: torch.Tensor | None,
    ):
        # Masks come as 0/1 values of the weight dtype, None when all True. Only what is
        # masked is multiplied: an unmasked layer 0 is read from ``weight`` itself.
        first = plan.blocks[0][1]
        masked = weight
        if first_mask is not None or hidden_mask is not None:
            masked = torch.empty_like(weight)
            if first_mask is not None:
                torch.mul(weight[:first], first_mask, out=masked[:first])
            if hidden_mask is None:
                masked[first:] = weight[first:]
            else:
                torch.mul(weight[first:], hidden_mask, out=masked[first:])
        masked_bias = (bias if bias_mask is None else bias * bias_mask).unsqueeze(1)
        activations = features.new_empty(plan.vertices, features.shape[0])
        activate = _ACTIVATE_IN_PLACE[activation]
        blocks = _layer_blocks(plan, weight, masked, first_mask is not None)
        for layer, (block, (low, high), (start, end)) in enumerate(
            zip(blocks, plan.reads, plan.writes)
        ):
            reads = features.t() if layer == 0 else activations[low:high]
            out = activations[start:end]
            torch.addmm(masked_bias[start:end], block, reads, out=out)
            if activate is not None:
                activate(out)
        ctx.plan = plan
        ctx.activation = activation
        ctx.save_for_backward(
            features, activations, weight, masked, sink_index, first_mask, hidden_mask, bias_mask
        )
        return plan.sink_rows(activations, sink_index).t()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_sinks: torch.Tensor):
        plan: DanPlan = ctx.plan
        saved = ctx.saved_tensors
        features, activations, weight, masked, sink_index, first_mask, hidden_mask = saved[:7]
        bias_mask = saved[7]
        blocks = _layer_blocks(plan, weight, masked, first_mask is not None)
        # Gradients with respect to each vertex's pre-activation, once its layer's turn
        # comes; until then, with respect to its output.
        grads = plan.sink_gradients(activations, grad_sinks, sink_index)
        derivative = _derivative(ctx.activation, activations)
        for layer in range(len(plan.writes) - 1, -1, -1):
            (low, high), (start, end) = plan.reads[layer], plan.writes[layer]
            grad = grads[start:end]
            if derivative is not None:
                grad.mul_(derivative[start:end])
            elif ctx.activation == "relu":  # zero where the output is not > 0, in one pass
                _relu_backward(grad, activations[start:end], 0, grad_input=grad)
            if layer > 0:
                grads[low:high].addmm_(blocks[layer].t(), grad)
        first_start, first_end = plan.writes[0]
        input_grad = None
        if ctx.needs_input_grad[3]:
            input_grad = grads[first_start:first_end].t() @ blocks[0]
        by_batch = activations.t()
        weight_grad = torch.empty_like(masked)
        for layer, (out, (low, high), (start, end)) in enumerate(
            zip(plan.layer_weights(weight_grad), plan.reads, plan.writes)
        ):
            torch.mm(grads[start:end], features if layer == 0 else by_batch[:, low:high], out=out)
        first = plan.blocks[0][1]
        if first_mask is not None:
            weight_grad[:first].mul_(first_mask)
        if hidden_mask is not None:
            weight_grad[first:].mul_(hidden_mask)
        bias_grad = grads.sum(1)
        if bias_mask is not None:
            bias_grad.mul_(bias_mask)
        return None, None, None, input_grad, weight_grad, None, None, bias_grad, None


def _layer_blocks(
    plan: DanPlan, weight: torch.Tensor, masked: torch.Tensor, first_masked: bool
) -> list[torch.Tensor]:
    """Each layer's ``[rows, columns]`` weights: of ``masked``, but layer 0's of ``weight``
    itself unless ``first_masked`` (``masked`` then holds nothing there)."""
    blocks = plan.layer_weights(masked)
    if not first_masked:
        blocks[0] = weight[: plan.blocks[0][1]].view(plan.widths[0], plan.columns[0])
    return blocks
