"""A minimal classification training loop: seeded mini-batches, no networkx, no I/O."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["accuracy", "train_epoch"]


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    features: torch.Tensor,
    labels: torch.Tensor,
    *,
    batch_size: int,
    generator: torch.Generator,
) -> float:
    """One pass over ``features`` in shuffled mini-batches; returns the mean cross-entropy.

    The order of the samples is drawn from ``generator`` only, so a seeded generator
    gives the same batches every time.
    """
    model.train()
    order = torch.randperm(labels.shape[0], generator=generator)
    total_loss = 0.0
    for batch in order.split(batch_size):
        loss = F.cross_entropy(model(features[batch]), labels[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total_loss += float(loss.detach()) * batch.numel()
    return total_loss / max(labels.shape[0], 1)


@torch.no_grad()
def accuracy(model: nn.Module, features: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of samples whose highest-scoring class is the label."""
    model.eval()
    predictions = model(features).argmax(dim=1)
    return float((predictions == labels).double().mean())
