"""Masked modules and models built from structures.

The structure classes of :mod:`pypaddle.graph` are exported here too, as the original
pypaddle API did.
"""

from pypaddle.graph import CachedLayeredGraph, LayeredGraph
from pypaddle.sparse._dan_init import activation_gain
from pypaddle.sparse._dan_layer import DanLayer
from pypaddle.sparse._dan_plan import DanPlan
from pypaddle.sparse.cells import (
    ConvBNReLUCell,
    DeepCellDAN,
    SeparableConvCell,
    conv_bn_relu_cell,
    separable_conv_cell,
)
from pypaddle.sparse.channels import (
    bipartite_connectivity,
    channel_groups,
    relational_connectivity,
    relational_structure,
)
from pypaddle.sparse.conv import MaskedConv1d, MaskedConv2d
from pypaddle.sparse.convnet import VGG_BLOCKS, MaskedConvNet, masked_lenet5, masked_vgg
from pypaddle.sparse.dan import MaskedDeepDAN
from pypaddle.sparse.deep_rnn import (
    MaskedDeepRNN,
    MaskedGRULayer,
    MaskedLSTMLayer,
    MaskedRecurrentLayer,
)
from pypaddle.sparse.ffn import MaskedDeepFFN
from pypaddle.sparse.masked import MaskableModule, MaskedLinear, MaskedLinearLayer, maskable_layers
from pypaddle.sparse.recurrent import MaskedGRU, MaskedLSTM, MaskedRNN
from pypaddle.sparse.relational import RelationalCNN, RelationalMLP, matched_width, relational_mask

__all__ = [
    "VGG_BLOCKS",
    "CachedLayeredGraph",
    "ConvBNReLUCell",
    "DanLayer",
    "DanPlan",
    "DeepCellDAN",
    "LayeredGraph",
    "MaskableModule",
    "MaskedConv1d",
    "MaskedConv2d",
    "MaskedConvNet",
    "MaskedDeepDAN",
    "MaskedDeepFFN",
    "MaskedDeepRNN",
    "MaskedGRU",
    "MaskedGRULayer",
    "MaskedLSTM",
    "MaskedLSTMLayer",
    "MaskedLinear",
    "MaskedLinearLayer",
    "MaskedRNN",
    "MaskedRecurrentLayer",
    "RelationalCNN",
    "RelationalMLP",
    "SeparableConvCell",
    "activation_gain",
    "bipartite_connectivity",
    "channel_groups",
    "conv_bn_relu_cell",
    "maskable_layers",
    "masked_lenet5",
    "masked_vgg",
    "matched_width",
    "relational_connectivity",
    "relational_mask",
    "relational_structure",
    "separable_conv_cell",
]
