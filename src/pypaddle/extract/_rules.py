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

Anything else has no rule and can be extracted at layer level only, unless its module
type is given one of these rules with :func:`register_rule`.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from pypaddle import kinds
from pypaddle.errors import ConfigError, InputTypeError

__all__ = ["classify", "is_registered_leaf", "register_rule"]

# Rules a user may give a module type, and the kind (pypaddle.kinds) each one registers.
_KIND_OF_RULE = {
    "transparent": "transparent",
    "move": "move",
    "linear": "linear",
    "conv": "conv",
    "pool": "pool",
    "adaptive_pool": "adaptive_pool",
}


def _names(text: str) -> list[str]:
    return text.split()


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


def register_rule(module_type: type, rule: str | None) -> None:
    """Tell :func:`~pypaddle.extract.to_graph` what modules of ``module_type`` do.

    Such modules become leaves (recorded whole, never traced into) handled by ``rule``:

    - ``"transparent"``: element-wise, the output has the input's shape (a custom
      activation or normalisation);
    - ``"move"``: only moves elements; it is replayed on element numbers, so its
      ``forward`` must work on an int64 tensor;
    - ``"linear"``: has a ``weight`` ``[out, in]`` applied to the last dimension (and an
      optional bool ``mask`` of the same shape);
    - ``"conv"``: has ``weight``, ``stride``, ``padding``, ``dilation``, ``groups`` and
      ``padding_mode`` as ``torch.nn.Conv2d`` does;
    - ``"pool"`` (``kernel_size``, ``stride``, ``padding``, optional ``dilation``) and
      ``"adaptive_pool"``: windows within each channel.

    Subclasses follow their base's registration. ``rule=None`` removes it. The rule
    registers the module's kind in :mod:`pypaddle.kinds` (the same name, ``"transparent"``
    for a module that may mix units), so compaction and counting know the module too;
    :func:`pypaddle.kinds.register_kind` offers the finer kinds (``"activation"``,
    ``"norm"``, ``"recurrent"``...).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from pypaddle.extract import to_graph
    >>> class Gauss(nn.Module):  # a custom activation: torch.special has no rule
    ...     def forward(self, x):
    ...         return torch.special.ndtr(x)
    >>> model = nn.Sequential(nn.Linear(3, 2), Gauss(), nn.Linear(2, 1))
    >>> register_rule(Gauss, "transparent")
    >>> to_graph(model, torch.randn(1, 3)).number_of_edges()
    8
    >>> register_rule(Gauss, None)
    """
    if not isinstance(module_type, type) or not issubclass(module_type, nn.Module):
        raise InputTypeError(f"module_type must be an nn.Module class, got {module_type!r}")
    if rule is not None and (not isinstance(rule, str) or rule not in _KIND_OF_RULE):
        raise ConfigError(
            f"rule must be one of {', '.join(map(repr, _KIND_OF_RULE))} or None, got {rule!r}"
        )
    kinds.register_kind(module_type, None if rule is None else _KIND_OF_RULE[rule])


def is_registered_leaf(module: nn.Module) -> bool:
    """Whether extraction records ``module`` whole because of its entry in the kinds table."""
    return kinds.is_own_leaf(module)


def classify(kind: str, target: Any, name: str) -> str | None:
    """The rule of an operation, or None if it has none."""
    if kind == "module":
        module_kind = kinds.kind_of(target)
        return None if module_kind is None else module_kind.rule
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
