"""Shared helpers of the pruning tests."""

from __future__ import annotations

import torch
from torch import nn

from pypaddle.sparse.masked import MaskableModule


class FourDimMasked(MaskableModule):
    """A maskable module with a convolution-shaped weight ``[out, in, kh, kw]``.

    It stands in for any masked convolution: the granularities only read the weight's
    shape and the mask pairs.
    """

    def __init__(self, out_channels: int, in_channels: int, kernel: tuple[int, int]) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, *kernel))
        self.bias = nn.Parameter(torch.randn(out_channels))
        self.register_buffer("mask", torch.ones_like(self.weight, dtype=torch.bool))
        self.register_buffer("bias_mask", torch.ones_like(self.bias, dtype=torch.bool))


def masks(model: nn.Module) -> list[torch.Tensor]:
    """Copies of every mask buffer of ``model`` (to compare before and after)."""
    return [buffer.clone() for name, buffer in model.named_buffers() if name.endswith("mask")]
