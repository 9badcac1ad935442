"""What compaction needs to know about the modules between two weighted layers.

Between two weighted layers a module may only act on each unit (neuron or channel) on its
own, or compaction would change what the kept units compute. This module sorts such
modules into element-wise functions (whose value on a constant unit is computed),
constant-preserving reshapes and pools, and modules that mix units.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.utils import skip_init

from pypaddle.errors import StructureError
from pypaddle.sparse._common import _Function
from pypaddle.sparse.masked import MaskableModule

__all__ = [
    "batch_norm_constants",
    "check_activation",
    "check_between",
    "conv_class",
    "empty_module",
    "fold_is_exact",
    "is_weighted",
    "kernel_sum",
    "masked_weight_and_bias",
    "sliced_batch_norm",
    "spatial_factor",
    "unit_constants",
]

# Activations that act on each entry alone (their parameters, if any, are scalars).
_ELEMENTWISE = (
    nn.Identity,
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Sigmoid,
    nn.Tanh,
    nn.Softplus,
    nn.Softsign,
    nn.Hardtanh,
    nn.Hardsigmoid,
    nn.Hardswish,
    nn.Hardshrink,
    nn.Softshrink,
    nn.Tanhshrink,
    nn.LogSigmoid,
    nn.Threshold,
)
# Identity at inference; compaction describes the model in eval mode.
_DROPOUT = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)
_POOLS = (
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.MaxPool3d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d,
    nn.AdaptiveMaxPool3d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveAvgPool3d,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AvgPool3d,
)
_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def masked_weight_and_bias(layer: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """The layer's weight and bias with masked entries zeroed (no bias: zeros).

    On the CPU in float64: the bookkeeping is small, and folded biases stay exact.
    """
    with torch.no_grad():
        if isinstance(layer, MaskableModule):
            weight, bias = layer.masked_weight(), layer.masked_bias()
        else:
            weight, bias = layer.weight, layer.bias
        # copies, always: compaction edits them in place (folded biases, emptied layers)
        weight = weight.detach().to("cpu", torch.float64, copy=True)
        if bias is None:
            return weight, weight.new_zeros(weight.shape[0])
        return weight, bias.detach().to("cpu", torch.float64, copy=True)


def empty_module(cls: type[nn.Module], *args: Any, **kwargs: Any) -> nn.Module:
    """``cls(*args, **kwargs)`` with uninitialised weights (they are overwritten next).

    A layer may have zero width after compaction; initialising one would only warn.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Initializing zero-element tensors")
        return skip_init(cls, *args, **kwargs)


def is_weighted(module: nn.Module) -> bool:
    """A linear layer or a convolution (masked or not): what compaction slices."""
    return isinstance(module, (nn.Linear, *_CONVS))


def conv_class(module: nn.Module) -> type[nn.Module]:
    """The plain ``nn.ConvNd`` a (masked) convolution is a kind of."""
    for cls in _CONVS:
        if isinstance(module, cls):
            return cls
    raise StructureError(f"{type(module).__name__} is not a Conv1d, Conv2d or Conv3d")


def _probe_elementwise(module: nn.Module) -> bool:
    """True if ``module`` gives each column the value it gives it alone (a cheap check)."""
    generator = torch.Generator().manual_seed(0)
    probe = torch.randn(3, 7, generator=generator, dtype=torch.float64)
    columns = torch.tensor([5, 1, 3])
    try:
        with torch.no_grad():
            whole = module(probe)
            part = module(probe[:, columns])
    except Exception:
        return False
    return (
        isinstance(whole, torch.Tensor)
        and whole.shape == probe.shape
        and torch.allclose(whole[:, columns], part, rtol=1e-9, atol=1e-12)
    )


def _is_elementwise(module: nn.Module) -> bool:
    if isinstance(module, _ELEMENTWISE + _DROPOUT):
        return True
    if isinstance(module, nn.PReLU):
        return module.num_parameters == 1
    if isinstance(module, _Function) or not any(True for _ in module.parameters()):
        return _probe_elementwise(module)
    return False


def _preserves_constants(module: nn.Module) -> bool:
    """A reshape or pool that maps a constant map of a channel to a constant."""
    if isinstance(module, nn.Flatten):
        return True
    if isinstance(module, (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)):
        padding = module.padding if isinstance(module.padding, tuple) else (module.padding,)
        return not module.count_include_pad or not any(padding)
    return isinstance(module, _POOLS)


def check_between(modules: Iterable[nn.Module], where: str) -> bool:
    """Check the modules between two weighted layers; True if a LayerNorm pins the units."""
    pinned = False
    for module in modules:
        if isinstance(module, nn.LayerNorm):
            pinned = True
        elif isinstance(module, _BatchNorm):
            if module.running_mean is None:
                raise StructureError(
                    f"the {type(module).__name__} {where} keeps no running statistics "
                    "(track_running_stats=False), so it normalises with the statistics of "
                    "each batch and mixes samples; compact cannot fold it"
                )
        elif not (_is_elementwise(module) or _preserves_constants(module)):
            raise StructureError(
                f"compact cannot see through {type(module).__name__} {where}: between two "
                "linear or convolution layers it understands element-wise activations, "
                "dropout, flatten, pooling, BatchNorm and LayerNorm, which act on each "
                "neuron or channel alone; move the module after the last layer or compact "
                "the parts before and after it separately"
            )
    return pinned


def check_activation(model: nn.Module) -> None:
    """Refuse a model whose activation mixes its neurons (softmax, a per-neuron PReLU...).

    Compaction removes neurons and folds constant ones into biases, which is exact only
    when the activation acts on each neuron alone.
    """
    activation = model.activation
    if not _is_elementwise(activation):
        raise StructureError(
            f"the activation {activation} of this {type(model).__name__} does not act on each "
            "neuron alone (or has one parameter per neuron), so removing a neuron would change "
            "what the others compute; compact needs an element-wise activation such as "
            "nn.ReLU, nn.Tanh or nn.PReLU()"
        )


def batch_norm_constants(norm: _BatchNorm, values: torch.Tensor) -> torch.Tensor:
    """What an eval-mode BatchNorm makes of the per-channel constants ``values [1, C]``."""
    scale = (norm.running_var + norm.eps).rsqrt()
    values = (values - norm.running_mean) * scale
    if norm.weight is not None:
        values = values * norm.weight + norm.bias
    return values


def sliced_batch_norm(norm: _BatchNorm, kept: torch.Tensor) -> _BatchNorm:
    """A copy of ``norm`` for the ``kept`` channels only (a whole copy if all are kept: after
    the last layer, where a norm without running statistics is allowed)."""
    if bool(kept.all()):
        return copy.deepcopy(norm)
    channels = kept.nonzero().reshape(-1).to(norm.running_mean.device)
    new = copy.deepcopy(norm)
    new.num_features = channels.numel()
    with torch.no_grad():
        for name in ("weight", "bias"):
            if norm._parameters.get(name) is not None:
                new._parameters[name] = nn.Parameter(norm._parameters[name][channels].clone())
        for name in ("running_mean", "running_var"):
            new._buffers[name] = norm._buffers[name][channels].clone()
    return new


def unit_constants(
    modules: Iterable[nn.Module], bias: torch.Tensor, like: torch.Tensor
) -> torch.Tensor:
    """The value a unit without inputs outputs after ``modules``: ``act(bias)`` per unit.

    Computed with the dtype and on the device of ``like`` (a weight of the model), as the
    model computes it and as modules with parameters need; returned as ``bias`` is.
    Pools and reshapes keep a constant map constant; dropout is the identity at inference.
    """
    values = bias.reshape(1, -1).to(like.device, like.dtype)
    with torch.no_grad():
        for module in modules:
            if isinstance(module, _DROPOUT) or _preserves_constants(module):
                continue
            if isinstance(module, _BatchNorm):
                values = batch_norm_constants(module, values)
                continue
            values = module(values)
    return values.reshape(-1).to(bias.device, bias.dtype)


def fold_is_exact(reader: nn.Module) -> bool:
    """Whether a constant input unit can be folded into ``reader``'s bias exactly.

    A convolution that pads with zeros sees a constant channel as constant only away from
    the border, so there a constant channel other than zero must stay a channel.
    """
    if isinstance(reader, nn.Linear):
        return True
    if reader.padding_mode != "zeros":
        return True
    padding = reader.padding
    if isinstance(padding, str):
        return padding == "valid" or all(size == 1 for size in reader.kernel_size)
    return not any(padding)


def spatial_factor(reader: nn.Module, units: int) -> int:
    """How many input columns of ``reader`` each unit of the layer before it feeds."""
    if not isinstance(reader, nn.Linear):
        return 1
    factor, rest = divmod(reader.in_features, units)
    if rest or factor == 0:
        raise StructureError(
            f"a Linear with {reader.in_features} inputs follows a layer with {units} "
            f"outputs; {reader.in_features} is not a multiple of {units}, so compact cannot "
            "tell which inputs belong to which channel"
        )
    return factor


def kernel_sum(weight: torch.Tensor) -> torch.Tensor:
    """``[out, in, *kernel]`` summed over the kernel (``[out, in]`` stays as it is)."""
    return weight.flatten(2).sum(2) if weight.dim() > 2 else weight
