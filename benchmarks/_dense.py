"""Dense PyTorch references for the masked models."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["ConcatMLP", "mlp"]


def mlp(widths: Sequence[int]) -> nn.Sequential:
    """``Linear -> ReLU -> ... -> Linear`` through ``widths`` (input first, output last)."""
    modules: list[nn.Module] = []
    for size_in, size_out in itertools.pairwise(widths[:-1]):
        modules += [nn.Linear(size_in, size_out), nn.ReLU()]
    modules.append(nn.Linear(widths[-2], widths[-1]))
    return nn.Sequential(*modules)


class ConcatMLP(nn.Module):
    """A dense network whose hidden layer ``L >= 1`` reads all earlier hidden layers.

    Hidden layer 0 reads the input; hidden layer ``L`` reads the concatenation of hidden
    layers ``0 .. L - 1``; the output reads the last hidden layer. This is the dense
    counterpart of a DAG with edges from every earlier layer.
    """

    def __init__(self, size_input: int, size_output: int, hidden_widths: Sequence[int]) -> None:
        super().__init__()
        reads = [size_input] + [
            sum(hidden_widths[:layer]) for layer in range(1, len(hidden_widths))
        ]
        self.hidden = nn.ModuleList(
            nn.Linear(size_in, width) for size_in, width in zip(reads, hidden_widths)
        )
        self.out = nn.Linear(hidden_widths[-1], size_output)
        self.activation = nn.ReLU()

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        outputs = [self.activation(self.hidden[0](input))]
        for layer in self.hidden[1:]:
            reads = outputs[0] if len(outputs) == 1 else torch.cat(outputs, 1)
            outputs.append(self.activation(layer(reads)))
        return self.out(outputs[-1])
