"""What the masked models share: argument checks, activations, whole-model mask methods."""

from __future__ import annotations

import functools
import inspect
import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any, ParamSpec, TypeVar

import torch
from torch import nn

from pypaddle._core.checks import check_count
from pypaddle.errors import ConfigError, InputTypeError
from pypaddle.sparse._arguments import check_tensor_input
from pypaddle.sparse.masked import MaskableModule, check_theta, maskable_layers

__all__ = [
    "MaskedModel",
    "attribute_alias",
    "check_size",
    "flatten_input",
    "renamed_keywords",
    "resolve_activation",
    "resolve_input_shape",
]

_P = ParamSpec("_P")
_R = TypeVar("_R")


def check_size(value: Any, name: str) -> int:
    """``value`` as a positive int (not a bool), or a ConfigError naming ``name``."""
    return check_count(value, name, 1)


def resolve_input_shape(input_shape: int | Sequence[int]) -> tuple[tuple[int, ...], int]:
    """The input shape and its number of features; an int means a flat input."""
    if isinstance(input_shape, Sequence) and not isinstance(input_shape, (str, bytes)):
        if len(input_shape) == 0:
            raise ConfigError("input_shape must be a positive int or a non-empty shape, got ()")
        shape = tuple(check_size(dim, "every dimension of input_shape") for dim in input_shape)
    else:
        shape = (check_size(input_shape, "input_shape"),)
    return shape, math.prod(shape)


def attribute_alias(new: str) -> property:
    """A read-only property that reads attribute ``new`` (an attribute's old name)."""

    def read(self: Any) -> Any:
        return getattr(self, new)

    return property(read, doc=f"The old name of :attr:`{new}` (read-only).")


def renamed_keywords(
    **renames: str,
) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Let a function still take the old names of renamed keyword arguments.

    ``renamed_keywords(old="new")`` wraps a function (a model's ``__init__``) so that
    ``old=value`` is passed on as ``new=value`` with a ``DeprecationWarning`` naming the new
    name. Giving the old name together with the new one (by keyword or by position) is an
    :class:`~pypaddle.errors.InputTypeError`. ``inspect.signature`` of the wrapped function
    (and of a class whose ``__init__`` it is) shows only the new names.

    Examples
    --------
    >>> import warnings
    >>> @renamed_keywords(size="width")
    ... def area(width, height):
    ...     return width * height
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     area(size=2, height=3)
    6
    >>> str(caught[0].message)
    'area: the keyword size= is deprecated, use width= (the same value)'
    >>> str(inspect.signature(area))
    '(width, height)'
    """

    def decorate(function: Callable[_P, _R]) -> Callable[_P, _R]:
        parameters = list(inspect.signature(function).parameters.values())
        positional = [
            parameter.name
            for parameter in parameters
            if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD)
        ]
        owner = function.__qualname__.removesuffix(".__init__")
        for old, new in renames.items():
            if new not in {parameter.name for parameter in parameters}:
                raise ValueError(f"{owner} has no parameter {new!r} to rename {old!r} to")

        @functools.wraps(function)
        def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            for old, new in renames.items():
                if old not in kwargs:
                    continue
                given_by_position = new in positional and positional.index(new) < len(args)
                if new in kwargs or given_by_position:
                    raise InputTypeError(
                        f"{owner} got both {new} (the new name) and {old}= (its deprecated "
                        f"old name); give only {new}"
                    )
                warnings.warn(
                    f"{owner}: the keyword {old}= is deprecated, use {new}= (the same value)",
                    DeprecationWarning,
                    stacklevel=2,
                )
                kwargs[new] = kwargs.pop(old)
            return function(*args, **kwargs)

        return wrapper

    return decorate


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
