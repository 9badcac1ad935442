"""What each recorded operation does to the structure, keyed by module type or function name.

Every operation is one of:

- ``transparent``: element-wise (activations, normalisation, dropout, casts): each output
  element stands for the same neurons as the input element it came from;
- ``merge``: element-wise on several tensors (``+``, ``*``, ``torch.where``...), broadcast:
  each output element stands for the neurons of all its operands' elements;
- ``move``: data movement (``view``, ``flatten``, ``permute``, ``cat``, indexing, padding...):
  replayed on tensors of element numbers, so any such function is handled exactly;
- ``linear`` / ``conv``: weighted layers; ``pool`` / ``adaptive_pool`` / ``reduce``:
  windows without weights; ``structure``: a model that knows its own graph (DAN).

Anything else has no rule and can be extracted at layer level only.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from pypaddle.extract._trace import STRUCTURE_MODELS

__all__ = ["classify"]


def _names(text: str) -> list[str]:
    return text.split()


_TRANSPARENT_MODULES: tuple[type, ...] = tuple(
    getattr(nn, name)
    for name in _names(
        "Identity ReLU ReLU6 LeakyReLU PReLU RReLU ELU CELU SELU GELU SiLU Mish Sigmoid Tanh "
        "Hardtanh Hardswish Hardsigmoid Hardshrink Softshrink Tanhshrink Softsign Softplus "
        "LogSigmoid Threshold Softmax LogSoftmax Softmin Dropout Dropout1d Dropout2d "
        "Dropout3d AlphaDropout FeatureAlphaDropout BatchNorm1d BatchNorm2d BatchNorm3d "
        "SyncBatchNorm LayerNorm GroupNorm InstanceNorm1d InstanceNorm2d InstanceNorm3d "
        "RMSNorm"
    )
    if hasattr(nn, name)
)

_MOVE_MODULES: tuple[type, ...] = tuple(
    getattr(nn, name)
    for name in _names(
        "Flatten Unflatten PixelShuffle PixelUnshuffle ChannelShuffle ZeroPad1d ZeroPad2d "
        "ZeroPad3d ConstantPad1d ConstantPad2d ConstantPad3d ReflectionPad1d ReflectionPad2d "
        "ReflectionPad3d ReplicationPad1d ReplicationPad2d ReplicationPad3d CircularPad1d "
        "CircularPad2d CircularPad3d"
    )
    if hasattr(nn, name)
)

_POOL_MODULES = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)
_ADAPTIVE_MODULES = (
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveAvgPool3d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d,
    nn.AdaptiveMaxPool3d,
)
_CONV_MODULES = (nn.Conv1d, nn.Conv2d, nn.Conv3d)

_TRANSPARENT_FUNCTIONS = frozenset(
    _names(
        "relu relu6 gelu silu sigmoid tanh elu selu celu leaky_relu hardtanh hardswish "
        "hardsigmoid softplus mish softmax log_softmax softmin logsigmoid softsign tanhshrink "
        "hardshrink softshrink threshold rrelu dropout dropout1d dropout2d dropout3d "
        "alpha_dropout feature_alpha_dropout batch_norm layer_norm group_norm instance_norm "
        "rms_norm normalize contiguous clone detach float double half bfloat16 to type "
        "type_as abs neg negative exp log log1p sqrt rsqrt square clamp clip sign sin cos erf "
        "reciprocal nan_to_num"
    )
)
_MERGE_FUNCTIONS = frozenset(
    _names(
        "add iadd radd sub isub rsub mul imul rmul div truediv itruediv rtruediv floordiv "
        "maximum minimum where pow ipow addcmul addcdiv lerp"
    )
)
_MOVE_FUNCTIONS = frozenset(
    _names(
        "view reshape flatten unflatten permute transpose t squeeze unsqueeze expand "
        "expand_as repeat tile flip roll narrow getitem cat concat concatenate stack chunk "
        "split tensor_split unbind movedim moveaxis swapaxes swapdims select index_select pad "
        "view_as reshape_as pixel_shuffle pixel_unshuffle channel_shuffle getattr"
    )
)
_POOL_FUNCTIONS = frozenset(
    _names(
        "max_pool1d max_pool2d max_pool3d avg_pool1d avg_pool2d avg_pool3d "
        "max_pool1d_with_indices max_pool2d_with_indices max_pool3d_with_indices"
    )
)
_ADAPTIVE_FUNCTIONS = frozenset(
    _names(
        "adaptive_avg_pool1d adaptive_avg_pool2d adaptive_avg_pool3d adaptive_max_pool1d "
        "adaptive_max_pool2d adaptive_max_pool3d adaptive_max_pool1d_with_indices "
        "adaptive_max_pool2d_with_indices adaptive_max_pool3d_with_indices"
    )
)
_REDUCE_FUNCTIONS = frozenset(["mean", "sum", "amax", "amin", "max", "min", "logsumexp", "prod"])
_WEIGHTED_FUNCTIONS = {"linear": "linear", "conv1d": "conv", "conv2d": "conv", "conv3d": "conv"}


def _strip_inplace(name: str) -> str:
    return name[:-1] if name.endswith("_") else name


def classify(kind: str, target: Any, name: str) -> str | None:
    """The rule of an operation, or None if it has none."""
    if kind == "module":
        if isinstance(target, STRUCTURE_MODELS):
            return "structure"
        if isinstance(target, nn.Linear):
            return "linear"
        if isinstance(target, _CONV_MODULES):
            return "conv"
        if isinstance(target, _POOL_MODULES):
            return "pool"
        if isinstance(target, _ADAPTIVE_MODULES):
            return "adaptive_pool"
        if isinstance(target, _TRANSPARENT_MODULES):
            return "transparent"
        if isinstance(target, _MOVE_MODULES):
            return "move"
        return None
    name = _strip_inplace(name)
    for rule, names in (
        ("transparent", _TRANSPARENT_FUNCTIONS),
        ("merge", _MERGE_FUNCTIONS),
        ("move", _MOVE_FUNCTIONS),
        ("pool", _POOL_FUNCTIONS),
        ("adaptive_pool", _ADAPTIVE_FUNCTIONS),
        ("reduce", _REDUCE_FUNCTIONS),
    ):
        if name in names:
            return rule
    return _WEIGHTED_FUNCTIONS.get(name)
