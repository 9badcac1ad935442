"""Masked modules and models built from structures.

The structure classes of :mod:`pypaddle.graph` are exported here too, as the original
pypaddle API did.
"""

from pypaddle.graph import CachedLayeredGraph, LayeredGraph
from pypaddle.sparse.conv import MaskedConv1d, MaskedConv2d
from pypaddle.sparse.dan import MaskedDeepDAN
from pypaddle.sparse.ffn import MaskedDeepFFN
from pypaddle.sparse.masked import MaskableModule, MaskedLinear, MaskedLinearLayer, maskable_layers

__all__ = [
    "CachedLayeredGraph",
    "LayeredGraph",
    "MaskableModule",
    "MaskedConv1d",
    "MaskedConv2d",
    "MaskedDeepDAN",
    "MaskedDeepFFN",
    "MaskedLinear",
    "MaskedLinearLayer",
    "maskable_layers",
]
