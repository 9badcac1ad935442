"""Names kept for users of the original pypaddle API."""

from __future__ import annotations

import numbers
from collections.abc import Hashable, MutableMapping

import networkx as nx
import torch
from torch import nn

from pypaddle.errors import ConfigError, InputTypeError
from pypaddle.graph.layering import layer_index
from pypaddle.sparse.masked import MaskableModule

__all__ = ["build_layer_index", "set_random_masks"]


def set_random_masks(
    module: nn.Module, *, density: float = 0.5, generator: torch.Generator | None = None
) -> None:
    """Give a masked module random masks keeping each weight with probability ``density``.

    Every masked weight of the module gets its own draw (one mask for a linear or conv
    layer, one per weight matrix for a recurrent net).

    Other modules are left alone, so it works with ``model.apply(set_random_masks)`` as in
    the original pypaddle. Pass a seeded ``generator`` for reproducible masks.

    Examples
    --------
    >>> import torch
    >>> from pypaddle.sparse import MaskedDeepFFN
    >>> model = MaskedDeepFFN(8, 2, [16])
    >>> _ = torch.manual_seed(0)
    >>> _ = model.apply(set_random_masks)
    >>> 0.3 < model.density < 0.7
    True
    """
    if isinstance(density, bool) or not isinstance(density, numbers.Real):
        raise InputTypeError(
            f"density must be a number in [0, 1], got {density!r} ({type(density).__name__})"
        )
    if not 0.0 <= density <= 1.0:
        raise ConfigError(f"density must be in [0, 1], got {density}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise InputTypeError(
            f"generator must be a torch.Generator or None, got {generator!r}; "
            "e.g. torch.Generator().manual_seed(0)"
        )
    if not isinstance(module, nn.Module):
        raise InputTypeError(
            f"set_random_masks takes a torch.nn.Module, got {type(module).__name__}"
        )
    if not isinstance(module, MaskableModule):
        return
    for weight, _ in module.masked_parameters():
        shape = module.get_mask(weight).shape
        draws = torch.rand(shape, generator=generator, device="cpu")
        module.set_mask(draws < density, weight)


def build_layer_index(
    graph: nx.DiGraph, layer_index_: dict[Hashable, int] | None = None
) -> tuple[dict[Hashable, int], dict[int, list[Hashable]]]:
    """The original name of :func:`pypaddle.graph.layer_index`.

    The optional second argument (a dict the original filled in) is updated with the
    result when given.
    """
    if layer_index_ is not None and not isinstance(layer_index_, MutableMapping):
        raise InputTypeError(
            "the second argument of build_layer_index is a dict it fills in (or None), got "
            f"{layer_index_!r}"
        )
    layer_of_vertex, vertices_by_layer = layer_index(graph)
    if layer_index_ is not None:
        layer_index_.update(layer_of_vertex)
    return layer_of_vertex, vertices_by_layer
