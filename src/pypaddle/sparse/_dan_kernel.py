"""The hidden part of a MaskedDeepDAN as one autograd node.

A DAN layer reads a contiguous range of earlier activations. Run with ordinary autograd,
that range has to be concatenated from per-layer tensors first, and every layer costs
several autograd nodes: for deep, narrow graphs (hundreds of layers of one or two
vertices) the bookkeeping, not the arithmetic, dominates. Here all activations live in one
``[input features + vertices, batch]`` buffer, so the range a layer reads is a contiguous
row slice, and forward and backward are each one loop of in-place BLAS calls per layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = ["FAST_ACTIVATIONS", "DanPlan", "dan_hidden"]

# Activations whose derivative follows from the pre-activation or the output alone.
FAST_ACTIVATIONS: dict[type[nn.Module], str] = {
    nn.ReLU: "relu",
    nn.Identity: "identity",
    nn.Tanh: "tanh",
    nn.Sigmoid: "sigmoid",
}


@dataclass(frozen=True)
class DanPlan:
    """Row ranges of the activation buffer: layer ``i`` reads ``reads[i]`` and writes ``writes[i]``.

    Rows ``0 .. features - 1`` hold the input, the following rows the vertices in layer
    order.
    """

    features: int
    vertices: int
    reads: tuple[tuple[int, int], ...]
    writes: tuple[tuple[int, int], ...]


def _relu_(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.clamp_min_(0)


# In-place activations; each derivative below is computed from the activation's output.
_ACTIVATE_IN_PLACE = {
    "relu": _relu_,
    "tanh": torch.Tensor.tanh_,
    "sigmoid": torch.Tensor.sigmoid_,
    "identity": None,
}


def _derivative(kind: str, out: torch.Tensor) -> torch.Tensor | None:
    """The activation's derivative at every vertex, from the activation's output."""
    if kind == "relu":
        return (out > 0).to(out.dtype)
    if kind == "tanh":
        return 1 - out * out
    if kind == "sigmoid":
        return out * (1 - out)
    return None


class _DanHidden(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, plan: DanPlan, activation: str, features: torch.Tensor, *tensors: torch.Tensor
    ):
        count = len(plan.writes)
        weights, masks = tensors[:count], tensors[count : 2 * count]
        biases, bias_masks = tensors[2 * count : 3 * count], tensors[3 * count :]
        # Masks come as 0/1 values of the weight dtype (None when all True).
        masked_weights = [
            weight if mask is None else weight * mask for weight, mask in zip(weights, masks)
        ]
        bias_mask = torch.cat(
            [
                torch.ones_like(bias) if mask is None else mask
                for bias, mask in zip(biases, bias_masks)
            ]
        )
        masked_biases = torch.cat(biases) * bias_mask
        batch = features.shape[0]
        activations = features.new_empty(plan.features + plan.vertices, batch)
        activations[: plan.features].copy_(features.t())
        # Each vertex starts as its (masked) bias; its layer adds the product, activates.
        outputs = activations[plan.features :]
        outputs.copy_(masked_biases.unsqueeze(1).expand(plan.vertices, batch))
        activate = _ACTIVATE_IN_PLACE[activation]
        for weight, (low, high), (start, end) in zip(masked_weights, plan.reads, plan.writes):
            out = outputs[start:end]
            out.addmm_(weight, activations[low:high])
            if activate is not None:
                activate(out)
        ctx.plan = plan
        ctx.activation = activation
        ctx.masked_weights = masked_weights
        ctx.save_for_backward(activations, bias_mask, *masks)
        return outputs.t()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_hidden: torch.Tensor):
        plan: DanPlan = ctx.plan
        activations, bias_mask, *masks = ctx.saved_tensors
        count = len(plan.writes)
        # Gradients of the input rows only if the input needs them: layer 0 reads only
        # the input, every other layer only vertices.
        base = 0 if ctx.needs_input_grad[2] else plan.features
        grads = activations.new_zeros(activations.shape[0] - base, activations.shape[1])
        # Gradients with respect to the pre-activations, once each layer's turn comes.
        grad_pre = grads[plan.features - base :]
        grad_pre.copy_(grad_hidden.t())
        derivative = _derivative(ctx.activation, activations[plan.features :])
        for weight, (low, high), (start, end) in zip(
            reversed(ctx.masked_weights), reversed(plan.reads), reversed(plan.writes)
        ):
            grad = grad_pre[start:end]
            if derivative is not None:
                grad.mul_(derivative[start:end])
            if low >= base:
                grads[low - base : high - base].addmm_(weight.t(), grad)
        activations_by_batch = activations.t()
        weight_grads = [
            torch.mm(grad_pre[start:end], activations_by_batch[:, low:high])
            for (low, high), (start, end) in zip(plan.reads, plan.writes)
        ]
        for grad, mask in zip(weight_grads, masks):
            if mask is not None:
                grad.mul_(mask)
        bias_grads = (grad_pre.sum(1) * bias_mask).split(
            [end - start for start, end in plan.writes]
        )
        input_grad = grads[: plan.features].t() if base == 0 else None
        return (
            None,
            None,
            input_grad,
            *weight_grads,
            *([None] * count),
            *bias_grads,
            *([None] * count),
        )


def dan_hidden(
    plan: DanPlan,
    activation: str,
    features: torch.Tensor,
    weights: list[torch.Tensor],
    masks: list[torch.Tensor],
    biases: list[torch.Tensor],
    bias_masks: list[torch.Tensor],
) -> torch.Tensor:
    """All vertex activations ``[batch, vertices]`` (layer order) for ``features [batch, in]``."""
    return _DanHidden.apply(plan, activation, features, *weights, *masks, *biases, *bias_masks)
