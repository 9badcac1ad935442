"""The hidden part of a MaskedDeepDAN as one autograd node.

A DAN layer reads a contiguous range of earlier activations. Run with ordinary autograd,
that range has to be concatenated from per-layer tensors first, and every layer costs
several autograd nodes: for deep, narrow graphs (hundreds of layers of one or two
vertices) the bookkeeping, not the arithmetic, dominates. Here all vertex activations
live in one ``[vertices, batch]`` buffer (vertices in layer order), so the range a layer
reads is a contiguous row slice, and forward and backward are each one loop of BLAS calls
per layer writing straight into that buffer. Layer 0 reads the input itself, untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = ["FAST_ACTIVATIONS", "DanPlan", "dan_sinks"]

# Activations whose derivative follows from their output alone.
FAST_ACTIVATIONS: dict[type[nn.Module], str] = {
    nn.ReLU: "relu",
    nn.Identity: "identity",
    nn.Tanh: "tanh",
    nn.Sigmoid: "sigmoid",
}


@dataclass(frozen=True)
class DanPlan:
    """Where each layer reads and writes in the ``[vertices, batch]`` activation buffer.

    Layer 0 reads the input; layer ``i > 0`` reads rows ``reads[i]``. Layer ``i`` writes
    rows ``writes[i]``. The sinks are rows ``sinks`` (a range) or, when they are not
    contiguous, the rows listed in the tensor given to :func:`dan_sinks`.
    """

    vertices: int
    reads: tuple[tuple[int, int], ...]
    writes: tuple[tuple[int, int], ...]
    sinks: tuple[int, int] | None


def _relu_(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.clamp_min_(0)


_ACTIVATE_IN_PLACE = {
    "relu": _relu_,
    "tanh": torch.Tensor.tanh_,
    "sigmoid": torch.Tensor.sigmoid_,
    "identity": None,
}


def _derivative(kind: str, out: torch.Tensor) -> torch.Tensor | None:
    """The activation's derivative at every vertex, from the activation's output."""
    if kind == "relu":
        return torch.sign(out)  # outputs are >= 0: 1 where active, 0 where not
    if kind == "tanh":
        return 1 - out * out
    if kind == "sigmoid":
        return out * (1 - out)
    return None


class _DanSinks(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        plan: DanPlan,
        activation: str,
        sink_index: torch.Tensor,
        features: torch.Tensor,
        *tensors: torch.Tensor | None,
    ):
        count = len(plan.writes)
        weights, masks = tensors[:count], tensors[count : 2 * count]
        biases, bias_masks = tensors[2 * count : 3 * count], tensors[3 * count :]
        # Masks come as 0/1 values of the weight dtype, None when all True.
        masked_weights = [
            weight if mask is None else weight * mask for weight, mask in zip(weights, masks)
        ]
        bias_mask = torch.cat(
            [torch.ones_like(b) if mask is None else mask for b, mask in zip(biases, bias_masks)]
        )
        masked_biases = (torch.cat(biases) * bias_mask).unsqueeze(1)
        activations = features.new_empty(plan.vertices, features.shape[0])
        activate = _ACTIVATE_IN_PLACE[activation]
        for layer, (weight, (low, high), (start, end)) in enumerate(
            zip(masked_weights, plan.reads, plan.writes)
        ):
            reads = features.t() if layer == 0 else activations[low:high]
            out = activations[start:end]
            torch.addmm(masked_biases[start:end], weight, reads, out=out)
            if activate is not None:
                activate(out)
        ctx.plan = plan
        ctx.activation = activation
        ctx.masked_weights = masked_weights
        ctx.save_for_backward(features, activations, bias_mask, sink_index, *masks)
        if plan.sinks is not None:
            return activations[plan.sinks[0] : plan.sinks[1]].t()
        return activations.index_select(0, sink_index).t()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_sinks: torch.Tensor):
        plan: DanPlan = ctx.plan
        features, activations, bias_mask, sink_index, *masks = ctx.saved_tensors
        count = len(plan.writes)
        # Gradients with respect to each vertex's pre-activation, once its layer's turn
        # comes; until then, with respect to its output.
        grads = torch.zeros_like(activations)
        if plan.sinks is not None:
            grads[plan.sinks[0] : plan.sinks[1]] = grad_sinks.t()
        else:
            grads.index_copy_(0, sink_index, grad_sinks.t())
        derivative = _derivative(ctx.activation, activations)
        for layer in range(count - 1, -1, -1):
            (low, high), (start, end) = plan.reads[layer], plan.writes[layer]
            grad = grads[start:end]
            if derivative is not None:
                grad.mul_(derivative[start:end])
            if layer > 0:
                grads[low:high].addmm_(ctx.masked_weights[layer].t(), grad)
        first_start, first_end = plan.writes[0]
        input_grad = None
        if ctx.needs_input_grad[3]:
            input_grad = grads[first_start:first_end].t() @ ctx.masked_weights[0]
        by_batch = activations.t()
        weight_grads = [
            torch.mm(grads[start:end], features if layer == 0 else by_batch[:, low:high])
            for layer, ((low, high), (start, end)) in enumerate(zip(plan.reads, plan.writes))
        ]
        for grad, mask in zip(weight_grads, masks):
            if mask is not None:
                grad.mul_(mask)
        bias_grads = (grads.sum(1) * bias_mask).split([end - start for start, end in plan.writes])
        none = [None] * count
        return (None, None, None, input_grad, *weight_grads, *none, *bias_grads, *none)


def dan_sinks(
    plan: DanPlan,
    activation: str,
    sink_index: torch.Tensor,
    features: torch.Tensor,
    weights: list[torch.Tensor],
    masks: list[torch.Tensor | None],
    biases: list[torch.Tensor],
    bias_masks: list[torch.Tensor | None],
) -> torch.Tensor:
    """Activations ``[batch, sinks]`` of the sink vertices for ``features [batch, in]``.

    ``masks`` and ``bias_masks`` hold 0/1 values of the weight dtype, or None for a mask
    that is all True. Masked weights and biases get exactly zero gradient.
    """
    return _DanSinks.apply(
        plan, activation, sink_index, features, *weights, *masks, *biases, *bias_masks
    )
