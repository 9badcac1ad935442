"""What each module type is, in one table read by extraction, compaction and counting.

A module's *kind* says what it does to a sample (a linear map, an element-wise activation,
a pool...). :func:`pypaddle.extract.to_graph` turns the kind into a graph rule,
:func:`pypaddle.deploy.compact` into what it may do with the module between two weighted
layers, and :func:`pypaddle.deploy.count` into how many multiply-accumulates the module
costs. Registering a custom module type once, with :func:`register_kind`, serves all three;
:func:`pypaddle.extract.register_rule` is the older spelling of the same registration.

Lookups follow the class hierarchy: a subclass has its base's kind unless it is registered
itself, and a user's registration wins over the built-in table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvTransposeNd

from pypaddle.errors import ConfigError, InputTypeError
from pypaddle.sparse.dan import MaskedDeepDAN

__all__ = [
    "KINDS",
    "ModuleKind",
    "is_own_leaf",
    "kind_of",
    "register_kind",
    "registered_kinds",
    "weight_mask",
]


@dataclass(frozen=True)
class ModuleKind:
    """What one kind of module means to extraction, compaction and counting.

    Attributes
    ----------
    name : str
        The kind's name (a key of :data:`KINDS`).
    rule : str or None
        How :func:`~pypaddle.extract.to_graph` reads it at neuron and channel level:
        ``"linear"``, ``"conv"``, ``"transparent"`` (element-wise), ``"move"`` (moves
        elements), ``"pool"``, ``"adaptive_pool"`` or ``"structure"`` (a model that knows
        its graph); None: layer level only.
    compaction : str or None
        What :func:`~pypaddle.deploy.compact` does with it: ``"weighted"`` (slices it),
        ``"elementwise"`` (acts on each unit alone: passes constants through it),
        ``"identity"`` (nothing at inference), ``"constant"`` (keeps a constant map
        constant: pools, flatten), ``"batch_norm"`` (folded with its running statistics),
        ``"pin"`` (reads every unit, so all stay) or ``"probe"`` (tried on a probe input);
        None: refused between two weighted layers.
    macs : str or None
        How :func:`~pypaddle.deploy.count` counts its weight: once per ``"outputs"``
        position, per ``"inputs"`` position (transposed convolutions) or per time
        ``"steps"`` (recurrent nets); None: no multiply-accumulates.
    """

    name: str
    rule: str | None
    compaction: str | None
    macs: str | None


def _kinds(*kinds: ModuleKind) -> dict[str, ModuleKind]:
    return {kind.name: kind for kind in kinds}


KINDS: dict[str, ModuleKind] = _kinds(
    # weight [out, in] on the last dimension (and an optional bool ``mask`` of its shape)
    ModuleKind("linear", "linear", "weighted", "outputs"),
    # weight [out, in / groups, *kernel] with stride, padding, dilation, groups, padding_mode
    ModuleKind("conv", "conv", "weighted", "outputs"),
    ModuleKind("conv_transpose", None, None, "inputs"),
    ModuleKind("recurrent", None, None, "steps"),
    # acts on each element alone (scalar parameters only)
    ModuleKind("activation", "transparent", "elementwise", None),
    ModuleKind("dropout", "transparent", "identity", None),
    ModuleKind("batch_norm", "transparent", "batch_norm", None),
    # normalises over all units of a sample
    ModuleKind("layer_norm", "transparent", "pin", None),
    ModuleKind("norm", "transparent", None, None),
    # keeps the shape; may mix units (softmax)
    ModuleKind("transparent", "transparent", "probe", None),
    ModuleKind("pool", "pool", "constant", None),
    ModuleKind("adaptive_pool", "adaptive_pool", "constant", None),
    ModuleKind("flatten", "move", "constant", None),
    ModuleKind("move", "move", None, None),
    ModuleKind("structure", "structure", None, None),
)
"""Every module kind by name; :func:`register_kind` takes one of these names."""


def _torch_types(names: str) -> list[type]:
    return [getattr(nn, name) for name in names.split() if hasattr(nn, name)]


def _builtin_table() -> dict[type, str]:
    table: dict[type, str] = {nn.Linear: "linear", MaskedDeepDAN: "structure"}
    groups = {
        "conv": "Conv1d Conv2d Conv3d",
        "recurrent": "RNNBase",
        "activation": (
            "Identity ReLU ReLU6 LeakyReLU PReLU ELU CELU SELU GELU SiLU Mish Sigmoid Tanh "
            "Hardtanh Hardswish Hardsigmoid Hardshrink Softshrink Tanhshrink Softsign Softplus "
            "LogSigmoid Threshold"
        ),
        "transparent": "RReLU Softmax LogSoftmax Softmin",
        "dropout": "Dropout Dropout1d Dropout2d Dropout3d AlphaDropout FeatureAlphaDropout",
        "layer_norm": "LayerNorm",
        "norm": "GroupNorm InstanceNorm1d InstanceNorm2d InstanceNorm3d RMSNorm",
        "pool": "MaxPool1d MaxPool2d MaxPool3d AvgPool1d AvgPool2d AvgPool3d",
        "adaptive_pool": (
            "AdaptiveAvgPool1d AdaptiveAvgPool2d AdaptiveAvgPool3d AdaptiveMaxPool1d "
            "AdaptiveMaxPool2d AdaptiveMaxPool3d"
        ),
        "flatten": "Flatten",
        "move": (
            "Unflatten PixelShuffle PixelUnshuffle ChannelShuffle ZeroPad1d ZeroPad2d "
            "ZeroPad3d ConstantPad1d ConstantPad2d ConstantPad3d ReflectionPad1d "
            "ReflectionPad2d ReflectionPad3d ReplicationPad1d ReplicationPad2d "
            "ReplicationPad3d CircularPad1d CircularPad2d CircularPad3d"
        ),
    }
    for kind, names in groups.items():
        table.update(dict.fromkeys(_torch_types(names), kind))
    table[_BatchNorm] = "batch_norm"  # BatchNorm1d/2d/3d, SyncBatchNorm, lazy ones
    table[_ConvTransposeNd] = "conv_transpose"
    return table


# type -> kind name: pypaddle's own entries, and the user's (which win).
_BUILTIN: dict[type, str] = _builtin_table()
_REGISTERED: dict[type, str] = {}


def register_kind(module_type: type, kind: str | None, *, builtin: bool = False) -> None:
    """Tell extraction, compaction and counting what modules of ``module_type`` are.

    ``kind`` is a name of :data:`KINDS` (``"linear"``, ``"conv"``, ``"activation"``,
    ``"norm"``...); None removes the registration. A registered module is recorded whole
    by :func:`~pypaddle.extract.to_graph` (never traced into). Subclasses follow their
    base's registration unless registered themselves.

    Parameters
    ----------
    module_type : type
        An ``nn.Module`` subclass.
    kind : str or None
        What it is; see :class:`ModuleKind` for what each kind means to each consumer.
    builtin : bool
        For pypaddle's own modules: the entry joins the built-in table (a user's
        registration still wins over it).

    Raises
    ------
    InputTypeError
        If ``module_type`` is not an ``nn.Module`` class.
    ConfigError
        If ``kind`` is not a name of :data:`KINDS` or None.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> class Scaled(nn.Linear):  # a custom linear layer with its own forward
    ...     def forward(self, x):
    ...         return 2 * super().forward(x)
    >>> register_kind(Scaled, "linear")
    >>> kind_of(Scaled(3, 2)).macs
    'outputs'
    >>> register_kind(Scaled, None)
    """
    if not isinstance(module_type, type) or not issubclass(module_type, nn.Module):
        raise InputTypeError(
            f"module_type must be an nn.Module class, got {module_type!r}; pass the class "
            "itself, e.g. register_kind(MyLayer, 'linear')"
        )
    table = _BUILTIN if builtin else _REGISTERED
    if kind is None:
        table.pop(module_type, None)
        return
    if not isinstance(kind, str) or kind not in KINDS:
        raise ConfigError(
            f"kind must be one of {', '.join(map(repr, KINDS))} or None, got {kind!r}"
        )
    table[module_type] = kind


def registered_kinds() -> dict[type, str]:
    """The user's registrations, type -> kind name (a copy)."""
    return dict(_REGISTERED)


def _lookup(module: nn.Module | type) -> tuple[type, str] | None:
    """The nearest class of ``module``'s hierarchy with a kind, and that kind's name."""
    klass = module if isinstance(module, type) else type(module)
    for table in (_REGISTERED, _BUILTIN):
        for base in klass.__mro__:
            name = table.get(base)
            if name is not None:
                return base, name
    return None


def kind_of(module: nn.Module | type) -> ModuleKind | None:
    """The kind of a module (or module class), or None if the table does not know it.

    Examples
    --------
    >>> from torch import nn
    >>> kind_of(nn.Conv2d(1, 2, 3)).name, kind_of(nn.ReLU()).rule, kind_of(nn.LSTM(2, 3)).macs
    ('conv', 'transparent', 'steps')
    >>> kind_of(nn.Sequential()) is None
    True
    """
    found = _lookup(module)
    return None if found is None else KINDS[found[1]]


def is_own_leaf(module: nn.Module) -> bool:
    """Whether ``module``'s kind comes from an entry for a class outside torch.

    A user's class (or pypaddle's) with a kind is recorded whole by extraction; a user's
    subclass of ``nn.Linear`` without a registration of its own is traced into as before.
    """
    found = _lookup(module)
    if found is None:
        return False
    return found[0] in _REGISTERED or not found[0].__module__.startswith("torch.")


def weight_mask(module: nn.Module) -> torch.Tensor | None:
    """The bool mask of ``module.weight``: its ``mask`` (pypaddle, or a custom layer) or
    ``weight_mask`` (``torch.nn.utils.prune``), if one of the weight's shape exists."""
    weight: Any = getattr(module, "weight", None)
    if not isinstance(weight, torch.Tensor):
        return None
    for name in ("mask", "weight_mask"):
        mask = getattr(module, name, None)
        if isinstance(mask, torch.Tensor) and mask.shape == weight.shape:
            return mask
    return None
