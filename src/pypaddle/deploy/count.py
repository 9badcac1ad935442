"""Parameters and multiply-accumulates of a model, dense and as its masks leave them."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from pypaddle._core.reports import Report, TableCells
from pypaddle.deploy._modes import evaluating
from pypaddle.deploy._units import tensor_of
from pypaddle.deploy.sparse_kernels import SparseLinear
from pypaddle.errors import ConfigError, InputTypeError
from pypaddle.kinds import kind_of, weight_mask
from pypaddle.sparse import DanLayer
from pypaddle.sparse.dan import MaskedDeepDAN
from pypaddle.sparse.masked import MaskableModule

__all__ = ["Counts", "LayerCount", "count"]


def _macs(module: nn.Module) -> str | None:
    """How the module applies its weight per sample (see :class:`pypaddle.kinds.ModuleKind`)."""
    kind = kind_of(module)
    return None if kind is None else kind.macs


@dataclass(frozen=True)
class LayerCount:
    """One module's parameters and multiply-accumulates (MACs) per sample.

    ``macs`` is what the layer costs computed densely; ``effective_macs`` counts only the
    weights its masks keep. Modules without a weight matrix (norms) have zero MACs.
    """

    name: str
    kind: str
    params: int
    active_params: int
    macs: int
    effective_macs: int


@dataclass(frozen=True)
class Counts(Report):
    """What :func:`count` found: one :class:`LayerCount` per module with parameters.

    A report: :meth:`to_dict` gives plain data, ``str()`` (or :meth:`to_table`) a text
    table, and Jupyter shows it as an HTML table.
    """

    layers: tuple[LayerCount, ...]

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def active_params(self) -> int:
        return sum(layer.active_params for layer in self.layers)

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def effective_macs(self) -> int:
        return sum(layer.effective_macs for layer in self.layers)

    @property
    def flop_bound(self) -> float:
        """Dense over effective MACs: the speed-up a perfect kernel for these masks gives."""
        return self.macs / self.effective_macs if self.effective_macs else math.inf

    def to_dict(self) -> dict[str, Any]:
        """Plain data: totals and a list of per-layer dicts."""
        return {
            "params": self.params,
            "active_params": self.active_params,
            "macs": self.macs,
            "effective_macs": self.effective_macs,
            "layers": [asdict(layer) for layer in self.layers],
        }

    def as_dict(self) -> dict[str, Any]:
        """The same as :meth:`to_dict` (the name of pypaddle 0.4)."""
        return self.to_dict()

    def table_cells(self) -> TableCells:
        """One row per layer and a total; counts with thousands separators."""

        def numbers(*values: int) -> list[str]:
            return [f"{value:,}" for value in values]

        rows = [
            [
                layer.name,
                layer.kind,
                *numbers(layer.params, layer.active_params, layer.macs, layer.effective_macs),
            ]
            for layer in self.layers
        ]
        total = numbers(self.params, self.active_params, self.macs, self.effective_macs)
        return TableCells(
            ["layer", "kind", "params", "active", "MACs", "effective MACs"],
            rows,
            [["total", "", *total]],
            "llrrrr",
        )

    def table(self) -> str:
        """The counts as a fixed-width text table (the same as ``str(counts)``)."""
        return self.to_table()


def _params(module: nn.Module) -> int:
    """Parameters of ``module`` itself (a SparseLinear's weight and bias as if dense).

    A MaskedDeepDAN's packed hidden parameters are counted in the layers that view them.
    """
    if isinstance(module, SparseLinear):
        return (module.in_features + 1) * module.out_features
    if isinstance(module, DanLayer):
        return module.weight.numel() + module.bias.numel()
    packed = (module.hidden_weight, module.hidden_bias) if isinstance(module, MaskedDeepDAN) else ()
    return sum(
        parameter.numel()
        for parameter in module.parameters(recurse=False)
        if not any(parameter is seen for seen in packed)
    )


def _active_params(module: nn.Module) -> int:
    """Parameters of ``module`` itself that its masks keep (all of them without masks)."""
    if isinstance(module, SparseLinear):
        # masked weights and biases are stored as zeros (a masked bias) or not at all
        return module.weight.values().numel() + int(module.bias.count_nonzero())
    total = _params(module)
    if not isinstance(module, MaskableModule):
        mask = weight_mask(module)  # a custom layer's, or torch.nn.utils.prune's
        return total if mask is None else total - int((~mask.bool()).sum())
    for _, mask_name in module.masked_parameters():
        masked = module.named_tensor(mask_name)
        if masked is not None:
            total -= int((~masked).sum())
    bias_mask = module.named_tensor("bias_mask")
    if bias_mask is not None:
        total -= int((~bias_mask).sum())
    return total


def _weight_density(module: nn.Module) -> tuple[int, int]:
    """Entries and active entries of the module's ``weight`` (a recurrent net: all of them)."""
    if _macs(module) == "steps":
        weights = {
            name: parameter
            for name, parameter in module.named_parameters(recurse=False)
            if name.startswith("weight_")
        }
        masks = dict(module.named_buffers(recurse=False))
        entries = sum(weight.numel() for weight in weights.values())
        active = sum(
            int(masks[f"{name}_mask"].sum()) if f"{name}_mask" in masks else weight.numel()
            for name, weight in weights.items()
        )
        return entries, active
    weight = tensor_of(module, "weight")
    if isinstance(module, SparseLinear):
        return module.in_features * module.out_features, weight.values().numel()
    own = module.named_tensor("mask") if isinstance(module, MaskableModule) else None
    if own is not None:
        return weight.numel(), int(own.sum())
    mask = weight_mask(module)
    return weight.numel(), weight.numel() if mask is None else int(mask.bool().sum())


def _positions(module: nn.Module, tensor: torch.Tensor, batch: int) -> int:
    """How many times per sample the layer applies its weight: the positions of ``tensor``
    (its output, or for a transposed convolution its input), whose channels are the
    weight's first dimension."""
    return tensor.numel() // max(batch, 1) // tensor_of(module, "weight").shape[0]


def _steps(module: nn.Module, input: Any) -> int:
    """Time steps per sample of a recurrent net's input (the mean length if packed)."""
    if isinstance(input, PackedSequence):
        return int(input.batch_sizes.sum()) // max(int(input.batch_sizes[0]), 1)
    if input.dim() == 2:  # unbatched: [steps, features]
        return input.shape[0]
    return input.shape[1] if getattr(module, "batch_first", False) else input.shape[0]


def _holds_tensor(value: Any) -> bool:
    if isinstance(value, (torch.Tensor, PackedSequence)):
        return True
    if isinstance(value, (tuple, list)):
        return any(_holds_tensor(item) for item in value)
    if isinstance(value, dict):
        return any(_holds_tensor(item) for item in value.values())
    return False


def _arguments(example_input: Any) -> tuple[Any, ...]:
    """The model's positional arguments: a tuple is the arguments, anything else the one."""
    if not _holds_tensor(example_input):
        raise InputTypeError(
            f"example_input must be a tensor (or a PackedSequence), or a tuple of the model's "
            f"arguments holding one, got {_describe(example_input)}; pass e.g. "
            "torch.randn(1, 4)"
        )
    if isinstance(example_input, tuple) and not isinstance(example_input, PackedSequence):
        return example_input
    return (example_input,)


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    text = repr(value)
    return text if len(text) <= 60 else f"a {type(value).__name__}"


def count(model: nn.Module, example_input: Any) -> Counts:
    """Count parameters and multiply-accumulates (MACs) per sample, per layer and in total.

    ``example_input`` is run through ``model`` once (under ``torch.no_grad``) with forward
    hooks on its linear, convolution and recurrent layers, so a convolution's MACs follow
    from its real output size. A layer's dense MACs are ``weight entries x output
    positions`` (for a convolution, ``out x in/groups x kernel x output pixels``; for a
    recurrent net, all its weight entries x time steps); its effective MACs count only the
    weights its masks keep. The hidden layers of a :class:`MaskedDeepDAN` run inside one
    kernel that no hook sees; they are counted from their shapes (one position each).
    The model is left as it was: the hooks are removed and its training mode restored.

    Raises
    ------
    InputTypeError
        If ``model`` is not a module or ``example_input`` holds no tensor.
    ConfigError
        If the model's forward fails on ``example_input`` (the model's own error is
        repeated, and chained).

    Examples
    --------
    >>> import torch
    >>> from pypaddle.sparse import MaskedDeepFFN
    >>> model = MaskedDeepFFN(4, 2, [3])
    >>> model.layers_main_hidden[0].mask[0] = False
    >>> counts = count(model, torch.randn(1, 4))
    >>> counts.macs, counts.effective_macs, counts.params, counts.active_params
    (18, 14, 23, 19)
    >>> print(counts)
    layer                 kind               params  active  MACs  effective MACs
    -----------------------------------------------------------------------------
    layers_main_hidden.0  MaskedLinearLayer      15      11    12               8
    layer_out             MaskedLinearLayer       8       8     6               6
    -----------------------------------------------------------------------------
    total                                        23      19    18              14
    """
    if not isinstance(model, nn.Module):
        raise InputTypeError(
            f"count needs a torch.nn.Module, got {type(model).__name__}; pass the model "
            "itself, e.g. count(model, torch.randn(1, 4))"
        )
    inputs = _arguments(example_input)
    first = next((value for value in inputs if isinstance(value, torch.Tensor)), None)
    batch = first.shape[0] if first is not None and first.dim() > 0 else 1
    positions: dict[nn.Module, int] = {}

    def hook(module: nn.Module, inputs: Any, output: Any) -> None:
        how = _macs(module)
        if how == "steps":
            # every weight matrix (each layer and direction) is applied once per step
            positions[module] = positions.get(module, 0) + _steps(module, inputs[0])
            return
        # a transposed convolution applies its whole weight at every input position
        tensor = inputs[0] if how == "inputs" else output
        if isinstance(tensor, torch.Tensor):
            positions[module] = positions.get(module, 0) + _positions(module, tensor, batch)

    handles = [
        module.register_forward_hook(hook)
        for module in model.modules()
        if _macs(module) is not None
    ]
    try:
        with evaluating(model), torch.no_grad():
            model(*inputs)
    except Exception as error:
        raise ConfigError(
            f"the model's forward failed on the example input "
            f"({_describe(example_input)}): {type(error).__name__}: {error}; give an "
            "example input the model accepts (with a batch dimension first)"
        ) from error
    finally:
        for handle in handles:
            handle.remove()
    for dan in (module for module in model.modules() if isinstance(module, MaskedDeepDAN)):
        for layer in dan.layers_main_hidden:
            positions.setdefault(layer, 1)

    layers = []
    for name, module in model.named_modules():
        params = _params(module)
        if params == 0 and module not in positions:
            continue
        macs = effective = 0
        if _macs(module) is not None:
            entries, active = _weight_density(module)
            calls = positions.get(module, 0)
            macs, effective = entries * calls, active * calls
        layers.append(
            LayerCount(
                name or type(module).__name__,
                type(module).__name__,
                params,
                _active_params(module),
                macs,
                effective,
            )
        )
    return Counts(tuple(layers))
