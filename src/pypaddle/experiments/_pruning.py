"""Magnitude pruning of a list of masked layers, the one pruning step the engine needs itself."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from pypaddle.sparse import MaskableModule

__all__ = ["prune_by_magnitude"]


@torch.no_grad()
def prune_by_magnitude(
    layers: Sequence[MaskableModule], fraction: float, *, scope: str = "global"
) -> None:
    """Mask the ``fraction`` of the still-active weights of ``layers`` with the smallest |w|.

    ``scope="global"`` takes one threshold over all layers (the k-th smallest active
    magnitude), ``"layer"`` one per layer; each layer then keeps ``|w| > threshold`` through
    ``recompute_mask`` (masked weights stay masked) and zeroes what it masked.
    """
    groups = [list(layers)] if scope == "global" else [[layer] for layer in layers]
    for group in groups:
        magnitudes = torch.cat(
            [
                getattr(layer, weight).detach()[getattr(layer, mask)].abs().flatten()
                for layer in group
                for weight, mask in layer.masked_parameters()
            ]
        )
        count = int(fraction * magnitudes.numel())
        if count == 0:
            continue
        threshold = float(magnitudes.kthvalue(count).values)
        for layer in group:
            layer.recompute_mask(threshold)
            layer.apply_mask()
