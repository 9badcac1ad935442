"""What the masked models share: argument checks, activations, whole-model mask methods."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from pypaddle._core.checks import check_count
from pypaddle.errors import ConfigError, InputTypeError
from pypaddle.sparse._arguments import check_tensor_input
from pypaddle.sparse.masked import MaskableModule, check_theta, maskable_layers

__all__ = ["MaskedModel", "check_size", "flatten_input", "input_shape", "resolve_activation"]


def check_size(value: Any, name: str) -> int:
    """``value`` as a positive int (not a bool), or a ConfigError naming ``name``."""
    return check_count(value, name, 1)


def input_shape(size_input: int | Sequence[int]) -> tuple[tuple[int, ...], int]:
    """The input shape and its number of features; an int means a flat input."""
    if isinstance(size_input, Sequence) and not isinstance(size_input, (str, bytes)):
        if len(size_input) == 0:
            raise ConfigError("size_input must be a positive int or a non-empty shape, got ()")
        shape = tuple(check_size(dim, "every dimension of size_input") for dim in size_input)
    else:
        shape = (check_size(size_input, "size_input"),)
    return shape, math.prod(shape)


class _Function(nn.Module):
    def __init__(self, function: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.function = function

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return self.function(input)

    def extra_repr(self) -> str:
        return getattr(self.function, "__name__", repr(self.function))


def resolve_activation(activation: Any) -> nn.Module:
    """A module from an activation given as a module, a module class, a callable or None."""
    if activation is None:
        return nn.Identity()
    if isinstance(activation, nn.Module):
        return activation
    if isinstance(activation, type) and issubclass(activation, nn.Module):
        try:
            return activation()
        except TypeError as error:
            raise InputTypeError(
                f"activation {activation.__name__} cannot be built without arguments "
                f"({error}); pass an instance instead, e.g. activation={activation.__name__}(...)"
            ) from None
    if callable(activation):
        return _Function(activation)
    raise InputTypeError(
        f"activation must be an nn.Module, an nn.Module class or a callable, got {activation!r}"
    )


def flatten_input(input: torch.Tensor, features: int, model: str = "the model") -> torch.Tensor:
    """``input`` as ``[batch, features]``, or a ConfigError saying which shapes fit.

    Anything but a tensor (a numpy array too) is an InputTypeError saying how to convert it.
    """
    check_tensor_input(input, model)
    if input.dim() == 2 and input.shape[1] == features:
        return input
    if input.dim() > 2 and math.prod(input.shape[1:]) == features:
        return input.reshape(input.shape[0], features)
    raise ConfigError(
        f"the model takes {features} input features per sample, got an input of shape "
        f"{tuple(input.shape)}; give [batch, {features}] or [batch, *shape] with "
        f"{features} elements per sample"
    )


class MaskedModel(nn.Module):
    """Whole-model mask methods shared by the masked models."""

    def apply_mask(self) -> None:
        """Zero every masked weight of every masked layer, for good."""
        for layer in maskable_layers(self):
            layer.apply_mask()

    def recompute_mask(self, theta: float = 0.001) -> None:
        """In every masked layer keep only weights with ``|w| > theta`` (never revives one).

        ``theta`` is checked before any layer changes (a finite real number >= 0).
        """
        check_theta(theta)
        for layer in maskable_layers(self):
            layer.recompute_mask(theta)

    @property
    def density(self) -> float:
        """Fraction of the weights of all masked layers that the masks keep."""
        layers = maskable_layers(self)
        total = sum(layer.num_weights for layer in layers)
        return sum(layer.num_active_weights for layer in layers) / max(total, 1)

    def _load_from_state_dict(
        self,
        state_dict: dict,
        prefix: str,
        local_metadata: dict,
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        # torch loads module by module; check every mask first, so that a refused load
        # leaves the whole model as it was, not only the layer with the bad mask.
        for name, module in self.named_modules():
            if isinstance(module, MaskableModule):
                module.check_state_dict_masks(state_dict, f"{prefix}{name}." if name else prefix)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
