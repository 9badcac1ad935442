"""The masked weights a pruning call works on: which module, which weight, which mask."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

import torch
from torch import nn

from pypaddle.errors import ConfigError, InputTypeError
from pypaddle.sparse.masked import MaskableModule, maskable_layers

__all__ = ["Target", "collect_targets", "gradients", "root_model"]


class Target(NamedTuple):
    """One masked weight that pruning works on.

    The ``prepare`` hook of a :class:`~pypaddle.prune.Criterion` receives the targets of a
    call: ``module`` (the masked module), ``name`` (a printable label, as in reports),
    ``weight_name`` / ``mask_name`` (the names of the weight and its mask in ``module``)
    and ``path`` (where the module sits in the model, ``""`` for the model itself).
    ``weight`` and ``mask`` are the tensors themselves.
    """

    module: MaskableModule
    name: str
    weight_name: str
    mask_name: str
    path: str = ""

    @property
    def weight(self) -> torch.Tensor:
        return _present(self.module.named_tensor(self.weight_name), self.weight_name)

    @property
    def mask(self) -> torch.Tensor:
        return _present(self.module.named_tensor(self.mask_name), self.mask_name)

    def key(self, mask_name: str | None = None) -> str:
        """Where mask ``mask_name`` (this weight's mask by default) sits in the model."""
        name = self.mask_name if mask_name is None else mask_name
        return f"{self.path}.{name}" if self.path else name

    def leaf(self) -> tuple[torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]:
        """The autograd leaf holding this weight, and the cut from the leaf to the weight.

        Gradients and optimizer state belong to the leaf; for most layers it is the
        weight itself, for the hidden layers of a MaskedDeepDAN the packed weight.
        """
        leaf, cut = self.module.parameter_leaf(self.weight_name)
        return leaf, (cut if cut is not None else _whole)

    @property
    def conv_groups(self) -> int:
        """A grouped convolution's ``groups`` (1 for everything else)."""
        if self.weight_name != "weight" or self.weight.dim() < 3:
            return 1
        return int(getattr(self.module, "groups", 1))

    @property
    def bias_mask(self) -> torch.Tensor | None:
        """The per-output bias mask that goes with this weight, if it has one."""
        if self.weight_name != "weight":
            return None
        return self.module.named_tensor("bias_mask")


def _present(tensor: torch.Tensor | None, name: str) -> torch.Tensor:
    if tensor is None:
        raise ConfigError(f"the masked module has no tensor {name!r}, which it lists as masked")
    return tensor


def _whole(tensor: torch.Tensor) -> torch.Tensor:
    return tensor


def gradients(loss: torch.Tensor, targets: Sequence[Target]) -> list[torch.Tensor | None]:
    """d ``loss`` / d weight of every target (None where the weight took no part).

    Differentiates with respect to the targets' leaves (each once) and cuts every
    target's part out, so layers that are views into a packed parameter work too.
    """
    sources = [target.leaf() for target in targets]
    leaves = list({id(leaf): leaf for leaf, _ in sources}.values())
    by_leaf = dict(zip(map(id, leaves), torch.autograd.grad(loss, leaves, allow_unused=True)))
    return [None if by_leaf[id(leaf)] is None else cut(by_leaf[id(leaf)]) for leaf, cut in sources]


def _modules(model_or_modules: nn.Module | Iterable[nn.Module]) -> list[tuple[str, MaskableModule]]:
    """``(path, module)`` of every maskable module, in order."""
    if isinstance(model_or_modules, nn.Module):
        names = {id(module): name for name, module in model_or_modules.named_modules()}
        layers = maskable_layers(model_or_modules)
        return [(names[id(layer)], layer) for layer in layers]
    if isinstance(model_or_modules, (str, bytes)) or not isinstance(model_or_modules, Iterable):
        raise InputTypeError(
            "expected a model (torch.nn.Module) or a list of masked modules, "
            f"got {type(model_or_modules).__name__}"
        )
    found: list[tuple[str, MaskableModule]] = []
    seen: set[int] = set()
    for index, module in enumerate(model_or_modules):
        if not isinstance(module, nn.Module):
            raise InputTypeError(
                f"item {index} of the module list is a {type(module).__name__}, "
                "not a torch.nn.Module"
            )
        for name, layer in module.named_modules(prefix=f"[{index}]"):
            if isinstance(layer, MaskableModule) and id(layer) not in seen:
                seen.add(id(layer))
                found.append((name, layer))
    return found


def collect_targets(model_or_modules: nn.Module | Iterable[nn.Module]) -> list[Target]:
    """Every masked weight of every maskable module, in module order.

    Raises ConfigError if there is none, so that a pruning call never silently does nothing.
    """
    targets = []
    for path, module in _modules(model_or_modules):
        pairs = module.masked_parameters()
        name = path or type(module).__name__
        for weight_name, mask_name in pairs:
            label = name if len(pairs) == 1 else f"{name}.{weight_name}"
            targets.append(Target(module, label, weight_name, mask_name, path))
    if not targets:
        raise ConfigError(
            "found no maskable modules to prune; build the model from pypaddle.sparse masked "
            "layers (e.g. MaskedLinear, MaskedDeepFFN) or pass a list of them"
        )
    return targets


def root_model(model_or_modules: nn.Module | Iterable[nn.Module], what: str) -> nn.Module:
    """The model itself, for criteria that run it; a list of modules is not enough."""
    if isinstance(model_or_modules, nn.Module):
        return model_or_modules
    raise ConfigError(
        f"the {what} criterion runs the whole model, but a list of modules was given; "
        f"pass the model itself, or model=... among the options"
    )


def output_layer(model_or_modules: nn.Module | Iterable[nn.Module]) -> MaskableModule | None:
    """The masked layer whose output units are the model's outputs, if there is one.

    It is the last masked module of a model (in module order) when the model holds more
    than one and no module with a weight of its own (a matrix or a kernel, not a norm's
    scale) comes after it, as a dense classifier head would. A model that is one masked
    layer, and a list of modules (the layers to prune, chosen by the caller), have none.
    """
    if not isinstance(model_or_modules, nn.Module):
        return None
    layers = maskable_layers(model_or_modules)
    if len(layers) < 2:
        return None
    last = layers[-1]
    inside_last = {id(module) for module in last.modules()}
    modules = list(model_or_modules.modules())
    position = next(i for i, module in enumerate(modules) if module is last)
    for module in modules[position + 1 :]:
        if id(module) in inside_last or isinstance(module, MaskableModule):
            continue
        if any(p is not None and p.dim() >= 2 for p in module._parameters.values()):
            return None
    return last
