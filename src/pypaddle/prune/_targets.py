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
    """One masked weight: its module, a printable name, and the parameter / mask names."""

    module: MaskableModule
    name: str
    weight_name: str
    mask_name: str

    @property
    def weight(self) -> torch.Tensor:
        return self.module.named_tensor(self.weight_name)

    @property
    def mask(self) -> torch.Tensor:
        return self.module.named_tensor(self.mask_name)

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
    if isinstance(model_or_modules, nn.Module):
        names = {id(module): name for name, module in model_or_modules.named_modules()}
        layers = maskable_layers(model_or_modules)
        return [(names[id(layer)] or type(layer).__name__, layer) for layer in layers]
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
    for name, module in _modules(model_or_modules):
        pairs = module.masked_parameters()
        for weight_name, mask_name in pairs:
            label = name if len(pairs) == 1 else f"{name}.{weight_name}"
            targets.append(Target(module, label, weight_name, mask_name))
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
