"""A minimal training loop: seeded mini-batches, classification or regression, no I/O.

For data-parallel training every process draws the same batch order and takes its own
slice of each batch (``rank`` of ``world``); the caller averages the gradients (DDP).
``precision="bf16"`` runs the forward pass and the loss under bfloat16 autocast on the
features' device (see :func:`pypaddle.experiments.devices.autocast`); the weights, their
gradients and the optimizer state stay in the model's own dtype.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from pypaddle.experiments.devices import autocast

__all__ = ["accuracy", "evaluate", "loss_function", "train_epoch"]


def loss_function(
    classification: bool,
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Cross-entropy for class labels, mean squared error for regression targets."""
    if classification:
        return F.cross_entropy
    return lambda output, target: F.mse_loss(output, target.reshape(output.shape))


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    features: torch.Tensor,
    labels: torch.Tensor,
    *,
    batch_size: int,
    generator: torch.Generator,
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
    after_step: Callable[[Callable[[], torch.Tensor]], None] | None = None,
    rank: int = 0,
    world: int = 1,
    precision: str = "32",
) -> float:
    """One pass over ``features`` in shuffled mini-batches; returns the mean loss.

    The order of the samples is drawn from ``generator`` only, so a seeded generator
    gives the same batches every time. With ``world > 1`` this process trains on slice
    ``rank`` of every batch (a batch too small to give every process a sample is skipped
    by all of them) and the returned loss is that of its own slices. ``after_step`` is
    called after every optimizer step with a closure that computes the loss of the whole
    batch (on every process the same) with the unwrapped module.
    """
    model.train()
    # The module itself, not a DistributedDataParallel wrapper around it.
    module = getattr(model, "module", model)
    order = torch.randperm(labels.shape[0], generator=generator)
    total_loss, seen = 0.0, 0
    for whole in order.split(batch_size):
        if whole.numel() < world:
            continue
        batch = whole.tensor_split(world)[rank]
        with autocast(features.device, precision):
            value = loss(model(features[batch]), labels[batch])
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        optimizer.step()
        if after_step is not None:
            # The hook may need a loss to differentiate (RigL reads dense gradients): that of
            # the whole batch, which every process computes alike from the same weights.
            after_step(functools.partial(_batch_loss, loss, module, features[whole], labels[whole]))
        total_loss += float(value.detach()) * batch.numel()
        seen += batch.numel()
    return total_loss / max(seen, 1)


def _batch_loss(
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    module: nn.Module,
    features: torch.Tensor,
    labels: torch.Tensor,
) -> torch.Tensor:
    return loss(module(features), labels)


@torch.no_grad()
def accuracy(model: nn.Module, features: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of samples whose highest-scoring class is the label."""
    model.eval()
    predictions = model(features).argmax(dim=1)
    return float((predictions == labels).double().mean())


@torch.no_grad()
def evaluate(
    model: nn.Module,
    features: torch.Tensor,
    targets: torch.Tensor,
    *,
    classification: bool,
    precision: str = "32",
) -> dict[str, float]:
    """Test loss, and accuracy for classification, of ``model`` on the given samples."""
    model.eval()
    with autocast(features.device, precision):
        output = model(features)
        test_loss = loss_function(classification)(output, targets)
    metrics = {"loss": float(test_loss)}
    if classification:
        metrics["accuracy"] = float((output.argmax(dim=1) == targets).double().mean())
    return metrics
