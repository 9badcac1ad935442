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
from torch.nn.utils import skip_init

from pypaddle.errors import StructureError
from pypaddle.kinds import kind_of, weight_mask
from pypaddle.sparse.masked import MaskableModule

__all__ = [
    "batch_norm_constants",
    "check_activation",
    "check_between",
    "conv_class",
    "empty_module",
    "fold_is_exact",
    "is_linear",
    "is_weighted",
    "kernel_sum",
    "masked_weight_and_bias",
    "optional_tensor",
    "sliced_batch_norm",
    "spatial_factor",
    "tensor_of",
    "unit_constants",
]


def tensor_of(module: nn.Module, name: str) -> torch.Tensor:
    """The tensor attribute ``name`` of ``module`` (a weight, a buffer), typed as one."""
    tensor = getattr(module, name)
    if not isinstance(tensor, torch.Tensor):
        raise StructureError(
            f"{type(module).__name__}.{name} is a {type(tensor).__name__}, not a tensor; "
            "a module of this kind needs one"
        )
    return tensor


def optional_tensor(module: nn.Module, name: str) -> torch.Tensor | None:
    """The tensor attribute ``name`` of ``module``, or None where it has none (a bias)."""
    tensor = getattr(module, name, None)
    return tensor if isinstance(tensor, torch.Tensor) else None


def masked_weight_and_bias(layer: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """The layer's weight and bias with masked entries zeroed (no bias: zeros).

    On the CPU in float64: the bookkeeping is small, and folded biases stay exact.
    """
    with torch.no_grad():
        if isinstance(layer, MaskableModule):
            weight, bias = layer.masked_weight(), layer.masked_bias()
        else:
            weight, bias = tensor_of(layer, "weight"), optional_tensor(layer, "bias")
            if weight.layout != torch.strided:  # a SparseLinear's CSR weight
                weight = weight.to_dense()
            mask = weight_mask(layer)  # a custom layer's mask
            if mask is not None:
                weight = weight * mask
        # copies, always: compaction edits them in place (folded biases, emptied layers)
        weight = weight.detach().to("cpu", torch.float64, copy=True)
        if bias is None:
            return weight, weight.new_zeros(weight.shape[0])
        return weight, bias.detach().reshape(-1).to("cpu", torch.float64, copy=True)


def empty_module(cls: type[nn.Module], *args: Any, **kwargs: Any) -> nn.Module:
    """``cls(*args, **kwargs)`` with uninitialised weights (they are overwritten next).

    A layer may have zero width after compaction; initialising one would only warn.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Initializing zero-element tensors")
        return skip_init(cls, *args, **kwargs)


def _compaction(module: nn.Module) -> str | None:
    """What compaction may do with ``module`` (see :class:`pypaddle.kinds.ModuleKind`)."""
    kind = kind_of(module)
    return None if kind is None else kind.compaction


def is_weighted(module: nn.Module) -> bool:
    """A linear layer or a convolution (masked or not, or of a kind registered so): what
    compaction slices."""
    return _compaction(module) == "weighted"


def is_linear(module: nn.Module) -> bool:
    """A layer of the ``"linear"`` kind: weight ``[out, in]`` on the last dimension."""
    kind = kind_of(module)
    return kind is not None and kind.name == "linear"


_CONV_CLASSES: dict[int, type[nn.Module]] = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}


def conv_class(module: nn.Module) -> type[nn.Module]:
    """The plain ``nn.ConvNd`` a (masked or custom) convolution is a kind of."""
    for cls in _CONV_CLASSES.values():
        if isinstance(module, cls):
            return cls
    spatial = tensor_of(module, "weight").dim() - 2
    if spatial not in _CONV_CLASSES:
        raise StructureError(
            f"{type(module).__name__} has a weight of {spatial + 2} dimensions; "
            "compact rebuilds convolutions of 1, 2 or 3 spatial dimensions only"
        )
    return _CONV_CLASSES[spatial]


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
    """Whether ``module`` acts on each unit alone, as its kind says or a probe shows."""
    compaction = _compaction(module)
    if compaction == "identity":
        return True
    if compaction == "elementwise":
        # scalar parameters only: one slope per neuron (nn.PReLU(n)) would need slicing
        return all(parameter.numel() == 1 for parameter in module.parameters())
    if compaction == "probe" or kind_of(module) is None:
        parameterless = not any(True for _ in module.parameters())
        return parameterless and _probe_elementwise(module)
    return False


def _preserves_constants(module: nn.Module) -> bool:
    """A reshape or pool that maps a constant map of a channel to a constant."""
    if _compaction(module) != "constant":
        return False
    # an average pool that counts zero padding makes a constant smaller near the border
    padding = getattr(module, "padding", 0)
    padding = padding if isinstance(padding, tuple) else (padding,)
    return not getattr(module, "count_include_pad", False) or not any(padding)


def check_between(modules: Iterable[nn.Module], where: str) -> bool:
    """Check the modules between two weighted layers; True if a LayerNorm pins the units."""
    pinned = False
    for module in modules:
        compaction = _compaction(module)
        if compaction == "pin":
            pinned = True
        elif compaction == "batch_norm":
            if getattr(module, "running_mean", None) is None:
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
    if not isinstance(activation, nn.Module) or not _is_elementwise(activation):
        raise StructureError(
            f"the activation {activation} of this {type(model).__name__} does not act on each "
            "neuron alone (or has one parameter per neuron), so removing a neuron would change "
            "what the others compute; compact needs an element-wise activation such as "
            "nn.ReLU, nn.Tanh or nn.PReLU()"
        )


def batch_norm_constants(norm: nn.Module, values: torch.Tensor) -> torch.Tensor:
    """What an eval-mode BatchNorm makes of the per-channel constants ``values [1, C]``."""
    eps = float(getattr(norm, "eps", 1e-5))
    scale = (tensor_of(norm, "running_var") + eps).rsqrt()
    values = (values - tensor_of(norm, "running_mean")) * scale
    weight, bias = optional_tensor(norm, "weight"), optional_tensor(norm, "bias")
    if weight is not None:
        values = values * weight
    if bias is not None:
        values = values + bias
    return values


def sliced_batch_norm(norm: nn.Module, kept: torch.Tensor) -> nn.Module:
    """A copy of ``norm`` for the ``kept`` channels only (a whole copy if all are kept: after
    the last layer, where a norm without running statistics is allowed)."""
    if bool(kept.all()):
        return copy.deepcopy(norm)
    channels = kept.nonzero().reshape(-1).to(tensor_of(norm, "running_mean").device)
    new: Any = copy.deepcopy(norm)  # a BatchNorm, or a module of that kind
    new.num_features = channels.numel()
    with torch.no_grad():
        for name in ("weight", "bias"):
            parameter = norm._parameters.get(name)
            if parameter is not None:
                new._parameters[name] = nn.Parameter(parameter[channels].clone())
        for name in ("running_mean", "running_var"):
            new._buffers[name] = tensor_of(norm, name)[channels].clone()
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
            if _compaction(module) == "identity" or _preserves_constants(module):
                continue
            if _compaction(module) == "batch_norm":
                values = batch_norm_constants(module, values)
                continue
            values = module(values)
    return values.reshape(-1).to(bias.device, bias.dtype)


def fold_is_exact(reader: Any) -> bool:
    """Whether a constant input unit can be folded into ``reader``'s bias exactly.

    A convolution that pads with zeros sees a constant channel as constant only away from
    the border, so there a constant channel other than zero must stay a channel.
    """
    if is_linear(reader):
        return True
    if getattr(reader, "padding_mode", "zeros") != "zeros":
        return True
    padding = reader.padding
    if isinstance(padding, str):
        return padding == "valid" or all(size == 1 for size in reader.kernel_size)
    return not any(padding)


def spatial_factor(reader: nn.Module, units: int) -> int:
    """How many input columns of ``reader`` each unit of the layer before it feeds."""
    if not is_linear(reader):
        return 1
    in_features = tensor_of(reader, "weight").shape[1]
    factor, rest = divmod(in_features, units)
    if rest or factor == 0:
        raise StructureError(
            f"a Linear with {in_features} inputs follows a layer with {units} "
            f"outputs; {in_features} is not a multiple of {units}, so compact cannot "
            "tell which inputs belong to which channel"
        )
    return factor


def kernel_sum(weight: torch.Tensor) -> torch.Tensor:
    """``[out, in, *kernel]`` summed over the kernel (``[out, in]`` stays as it is)."""
    return weight.flatten(2).sum(2) if weight.dim() > 2 else weight
