"""Compaction: a smaller dense model that computes what a masked model computes.

A unit (a neuron, or a convolution channel) can go when it can no longer influence the
output: when no kept unit reads it through an active weight, or when no active weight
feeds it, so that it outputs the constant ``act(bias)`` at every input. The constant is
folded into the bias of the units that read it (where that is exact), then the unit goes.
Removing constants can only make later units constant, and removing unread units can only
make earlier units unread, so one forward pass (constants) and one backward pass (unread
units) reach the fixpoint. What is left becomes plain ``nn.Linear`` / ``nn.ConvNd``
layers, which run at dense speed.
"""

from __future__ import annotations

import copy
import itertools
import warnings
from dataclasses import dataclass, field

import torch
from torch import nn

from pypaddle.deploy._units import (
    check_activation,
    check_between,
    conv_class,
    empty_module,
    fold_is_exact,
    is_linear,
    is_weighted,
    kernel_sum,
    masked_weight_and_bias,
    optional_tensor,
    sliced_batch_norm,
    spatial_factor,
    tensor_of,
    unit_constants,
)
from pypaddle.deploy.dan import compact_dan
from pypaddle.errors import InputTypeError, StructureError
from pypaddle.kinds import kind_of, weight_mask
from pypaddle.sparse.convnet import MaskedConvNet
from pypaddle.sparse.dan import MaskedDeepDAN
from pypaddle.sparse.ffn import MaskedDeepFFN
from pypaddle.sparse.masked import MaskableModule, maskable_layers

__all__ = ["CompactionWarning", "compact"]


class CompactionWarning(UserWarning):
    """Compaction ran but could not make the model smaller (or had nothing to do)."""


def connections(layer: nn.Module) -> torch.Tensor:
    """Bool ``[out, in]`` (kernels reduced): which input unit feeds which output unit."""
    mask = layer.named_tensor("mask") if isinstance(layer, MaskableModule) else weight_mask(layer)
    if mask is None:
        weight = tensor_of(layer, "weight")
        mask = torch.ones(weight.shape, dtype=torch.bool, device=weight.device)
    mask = mask.bool()
    return mask.flatten(2).any(2) if mask.dim() > 2 else mask


@dataclass
class _Stage:
    """One weighted layer and the per-unit modules up to the next one."""

    layer: nn.Module
    after: list[nn.Module]
    pinned: bool = False  # every unit stays (a LayerNorm or a grouped conv reads them all)
    weight: torch.Tensor = field(init=False)
    bias: torch.Tensor = field(init=False)
    kept: torch.Tensor = field(init=False)
    has_bias: bool = field(init=False)

    def __post_init__(self) -> None:
        self.weight, self.bias = masked_weight_and_bias(self.layer)
        self.pinned = self.pinned or getattr(self.layer, "groups", 1) != 1
        self.has_bias = self.layer.bias is not None

    @property
    def reads_all_inputs(self) -> bool:
        return getattr(self.layer, "groups", 1) != 1


def _ffn_stages(model: MaskedDeepFFN) -> tuple[list[nn.Module], list[_Stage]]:
    stages = [
        _Stage(layer, [norm, model.activation], pinned=model.use_layer_norm)
        for layer, norm in zip(model.layers_main_hidden, model.layer_norms)
    ]
    stages.append(_Stage(model.layer_out, []))
    return [nn.Flatten()], stages


def _flat_children(model: nn.Sequential) -> list[nn.Module]:
    children: list[nn.Module] = []
    for child in model:
        children.extend(_flat_children(child) if isinstance(child, nn.Sequential) else [child])
    return children


def _sequential_stages(model: nn.Sequential) -> tuple[list[nn.Module], list[_Stage]]:
    before: list[nn.Module] = []
    stages: list[_Stage] = []
    for position, child in enumerate(_flat_children(model)):
        kind = kind_of(child)
        if kind is not None and kind.name == "conv_transpose":
            raise StructureError(
                f"module {position} is a {type(child).__name__}; compact handles Linear "
                "and Conv1d/2d/3d layers, not transposed convolutions"
            )
        if is_weighted(child):
            stages.append(_Stage(child, []))
        elif isinstance(child, MaskableModule):
            raise StructureError(
                f"module {position} is a masked {type(child).__name__}, which compact cannot "
                "slice; it handles masked Linear and Conv layers"
            )
        else:
            (stages[-1].after if stages else before).append(child)
    if not stages:
        raise StructureError(
            "the nn.Sequential holds no Linear or Conv layer of its own; compact the "
            "masked module inside it instead"
        )
    for index, (stage, reader) in enumerate(itertools.pairwise(stages)):
        where = f"after weighted layer {index} ({type(stage.layer).__name__})"
        stage.pinned = stage.pinned or check_between(stage.after, where)
        _check_channels_meet_features(stage, reader, where)
    return before, stages


def _is_flatten(module: nn.Module) -> bool:
    kind = kind_of(module)
    return kind is not None and kind.name == "flatten"


def _check_channels_meet_features(stage: _Stage, reader: _Stage, where: str) -> None:
    """A convolution's channels reach a Linear only through a Flatten of dims 1..-1."""
    conv_to_linear = not is_linear(stage.layer) and is_linear(reader.layer)
    flattens = [module for module in stage.after if _is_flatten(module)]
    if conv_to_linear and not any(
        getattr(module, "start_dim", 1) == 1 and getattr(module, "end_dim", -1) == -1
        for module in flattens
    ):
        raise StructureError(
            f"a Linear reads a convolution {where} without an nn.Flatten() between them; "
            "compact follows channels into features only through nn.Flatten() "
            "(start_dim=1, end_dim=-1)"
        )
    if (is_linear(stage.layer) and not is_linear(reader.layer)) or (
        flattens and not conv_to_linear
    ):
        raise StructureError(
            f"the feature layout changes {where} in a way compact does not follow "
            "(features back into channels, or a flatten between layers of one kind); "
            "compact the parts before and after it separately"
        )


def _fold(reader: _Stage, constants: torch.Tensor, gone: torch.Tensor) -> None:
    """Add what the ``gone`` constant input units gave ``reader`` to its bias."""
    if not bool(gone.any()):
        return
    weight = reader.weight
    if is_linear(reader.layer):
        factor = spatial_factor(reader.layer, gone.numel())
        weight = weight.reshape(weight.shape[0], gone.numel(), factor).sum(2)
    reader.bias += kernel_sum(weight)[:, gone] @ constants[gone]
    reader.has_bias = True


def _compact_stages(stages: list[_Stage]) -> None:
    """Decide ``stage.kept`` for every stage and fold removed constants into biases."""
    last = len(stages) - 1
    kept_before: torch.Tensor | None = None  # the input's units are all kept
    constants = torch.zeros(0, dtype=torch.float64)
    for index, stage in enumerate(stages):
        links = connections(stage.layer).cpu()
        if kept_before is not None:
            _fold(stage, constants, ~kept_before)
            factor = spatial_factor(stage.layer, kept_before.numel())
            if factor > 1:
                links = links.reshape(links.shape[0], kept_before.numel(), factor).any(2)
            if not stage.reads_all_inputs:  # (then nothing before it was removed)
                links = links[:, kept_before]
        live = links.any(1)
        stage.kept = torch.ones_like(live)
        if index == last or stage.pinned or stages[index + 1].reads_all_inputs:
            kept_before, constants = stage.kept, torch.zeros(live.numel(), dtype=torch.float64)
            continue
        values = unit_constants(stage.after, stage.bias, tensor_of(stage.layer, "weight"))
        stage.kept = live if fold_is_exact(stages[index + 1].layer) else live | (values != 0)
        kept_before, constants = stage.kept, torch.where(stage.kept, 0.0, values)
    for index in range(last - 1, -1, -1):
        stage, reader = stages[index], stages[index + 1]
        if stage.pinned or reader.reads_all_inputs:
            continue
        links = connections(reader.layer).cpu()[reader.kept]
        factor = spatial_factor(reader.layer, stage.kept.numel())
        read = links.reshape(links.shape[0], stage.kept.numel(), factor).any(2).any(0)
        stage.kept &= read


def _columns_of_first(stages: list[_Stage], index: int) -> int:
    """How many input columns of stage ``index + 1`` belong to unit 0 of stage ``index``."""
    reader = stages[index + 1].layer
    return spatial_factor(reader, stages[index].kept.numel())


def _new_layer(stage: _Stage, kept_inputs: torch.Tensor | None) -> nn.Module:
    layer = stage.layer
    rows = stage.kept.nonzero().reshape(-1)
    weight = stage.weight[rows]
    if kept_inputs is not None and not stage.reads_all_inputs:
        factor = spatial_factor(layer, kept_inputs.numel()) if is_linear(layer) else 1
        columns = kept_inputs.repeat_interleave(factor)
        weight = weight[:, columns]
    options = {"device": layer.weight.device, "dtype": layer.weight.dtype}
    if is_linear(layer):
        new = empty_module(nn.Linear, weight.shape[1], weight.shape[0], stage.has_bias, **options)
    else:
        groups = getattr(layer, "groups", 1)
        new = empty_module(
            conv_class(layer),
            weight.shape[1] * groups,
            weight.shape[0],
            tuple(weight.shape[2:]),
            stride=getattr(layer, "stride", 1),
            padding=getattr(layer, "padding", 0),
            dilation=getattr(layer, "dilation", 1),
            groups=groups,
            bias=stage.has_bias,
            padding_mode=getattr(layer, "padding_mode", "zeros"),
            **options,
        )
    with torch.no_grad():
        tensor_of(new, "weight").copy_(weight)
        new_bias = optional_tensor(new, "bias")
        if new_bias is not None:
            new_bias.copy_(stage.bias[rows])
    return new


def _is_batch_norm(module: nn.Module) -> bool:
    kind = kind_of(module)
    return kind is not None and kind.name == "batch_norm"


def _build(before: list[nn.Module], stages: list[_Stage]) -> nn.Sequential:
    modules = [copy.deepcopy(module) for module in before]
    kept_inputs = None
    for index, stage in enumerate(stages):
        if not bool(stage.kept.any()):
            # Torch has no zero-width convolution (and ONNX runtimes dislike empty tensors):
            # keep one unit with all weights zero, which its readers ignore.
            stage.kept[0] = True
            stage.weight[0] = 0.0
            stage.bias[0] = 0.0
            if index + 1 < len(stages):
                stages[index + 1].weight.narrow(1, 0, _columns_of_first(stages, index)).zero_()
        modules.append(_new_layer(stage, kept_inputs))
        modules.extend(
            sliced_batch_norm(module, stage.kept)
            if _is_batch_norm(module)
            else copy.deepcopy(module)
            for module in stage.after
            if not isinstance(module, nn.Identity)
        )
        kept_inputs = stage.kept
    return nn.Sequential(*modules)


def compact(model: nn.Module) -> nn.Module:
    """A smaller dense model computing the same function as ``model`` (in eval mode).

    Neurons and channels that can no longer influence the output are removed: those that
    no kept unit reads through an active weight, and those that no active weight feeds
    (they output the constant ``act(bias)``, which is added to the bias of the units
    reading them). What is left is copied into plain ``nn.Linear`` / ``nn.ConvNd`` layers,
    so the result runs at dense speed and needs nothing from pypaddle but, for a
    :class:`MaskedDeepDAN`, the small :class:`CompactDAN` module.

    Understood: :class:`MaskedDeepFFN` and :class:`MaskedConvNet` (to an
    ``nn.Sequential``), :class:`MaskedDeepDAN` (to a :class:`CompactDAN`, skip connections
    included) and ``nn.Sequential`` stacks of
    masked or plain Linear / Conv layers with element-wise activations, dropout, flatten,
    pooling and BatchNorm (with running statistics, as in eval mode) between them.
    ``model`` is not changed; a model without masked layers is returned as it is, with a
    :class:`CompactionWarning`.

    What stays although it looks removable (and why): every unit of a layer followed by a
    LayerNorm (the norm reads them all), every channel around a grouped convolution, and
    a constant channel other than zero read by a convolution that pads with zeros (near
    the border it is not a constant to that convolution). The model's inputs and outputs
    are never removed.

    Examples
    --------
    >>> import torch
    >>> from pypaddle.sparse import MaskedDeepFFN
    >>> model = MaskedDeepFFN(6, 2, [8, 8])
    >>> model.layers_main_hidden[1].prune_neurons(range(5))
    >>> small = compact(model)
    >>> [layer.out_features for layer in small if isinstance(layer, torch.nn.Linear)]
    [8, 3, 2]
    >>> x = torch.randn(4, 6)
    >>> torch.allclose(small(x), model(x), atol=1e-6)
    True
    """
    if not isinstance(model, nn.Module):
        raise InputTypeError(f"compact needs a torch.nn.Module, got {type(model).__name__}")
    if not maskable_layers(model):
        warnings.warn(
            f"{type(model).__name__} has no masked layers, so there is nothing to compact; "
            "it is returned unchanged",
            CompactionWarning,
            stacklevel=2,
        )
        return model
    if isinstance(model, (MaskedDeepDAN, MaskedDeepFFN)):
        check_activation(model)
    result: nn.Module
    if isinstance(model, MaskedDeepDAN):
        result = compact_dan(model)
    else:
        if isinstance(model, MaskedDeepFFN):
            before, stages = _ffn_stages(model)
        elif isinstance(model, MaskedConvNet):
            # its forward is features -> flatten -> classifier
            chain = nn.Sequential(*model.features, nn.Flatten(), *model.classifier)
            before, stages = _sequential_stages(chain)
        elif isinstance(model, nn.Sequential):
            before, stages = _sequential_stages(model)
        else:
            raise StructureError(
                f"compact cannot read the forward pass of a {type(model).__name__}: it "
                "understands MaskedDeepFFN, MaskedConvNet, MaskedDeepDAN and nn.Sequential "
                "stacks of "
                "(masked) Linear and Conv layers; wrap your layers in an nn.Sequential or "
                "compact the sub-module that is one"
            )
        _compact_stages(stages)
        result = _build(before, stages)
    result.train(model.training)
    _warn_if_nothing_removed(model, result)
    return result


def _warn_if_nothing_removed(model: nn.Module, result: nn.Module) -> None:
    before = sum(parameter.numel() for parameter in model.parameters())
    after = sum(parameter.numel() for parameter in result.parameters())
    if after >= before:
        warnings.warn(
            "compact removed no neuron or channel: every unit still has an active input "
            "and an active output, so the sparsity is unstructured (single weights). "
            "Prune whole neurons or channels to make the model smaller, or use "
            "pypaddle.deploy.to_sparse for sparse kernels",
            CompactionWarning,
            stacklevel=3,
        )
