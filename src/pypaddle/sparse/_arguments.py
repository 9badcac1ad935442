"""Checks of the constructor arguments and inputs that the masked layers share.

Counts, reals and probabilities are checked by :mod:`pypaddle._core.checks`; this module
adds what only torch layers take: on/off flags, devices, dtypes, conv geometry, and the
rule that a forward takes a tensor.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from pypaddle._core.checks import check_count
from pypaddle.errors import ConfigError, InputTypeError

__all__ = [
    "bind_arguments",
    "check_conv_sizes",
    "check_device",
    "check_dtype",
    "check_flag",
    "check_tensor_input",
]


def check_flag(value: Any, name: str) -> bool:
    """``value`` as a bool, if it is one (a numpy bool too); anything else an InputTypeError."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise InputTypeError(f"{name} must be True or False, got {value!r}")


def check_device(value: Any, name: str = "device") -> None:
    """A ConfigError unless ``value`` is None, a torch.device or a device string or index."""
    if value is None or isinstance(value, torch.device):
        return
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InputTypeError(
            f"{name} must be a torch.device, a device string such as 'cpu' or 'cuda:0', "
            f"or None, got {value!r}"
        )
    try:
        torch.device(value)
    except (RuntimeError, ValueError, TypeError) as error:
        raise ConfigError(f"{name} {value!r} is not a device torch knows ({error})") from None


def check_dtype(value: Any, name: str = "dtype") -> None:
    """A ConfigError unless ``value`` is None or a real floating-point torch dtype."""
    if value is None:
        return
    if not isinstance(value, torch.dtype):
        raise InputTypeError(
            f"{name} must be a torch.dtype such as torch.float32, or None, got {value!r}"
        )
    if not value.is_floating_point:
        raise ConfigError(
            f"{name} must be a floating-point dtype (the weights are trained), got {value}; "
            "give e.g. torch.float32, torch.float64 or torch.bfloat16"
        )


def check_conv_sizes(value: Any, name: str, dims: int, minimum: int) -> tuple[int, ...]:
    """An int or a tuple of ``dims`` ints (each ``>= minimum``) as a tuple of ``dims`` ints."""
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        if len(value) != dims:
            raise ConfigError(
                f"{name} must be an int or {dims} ints (one per spatial dimension), got {value!r}"
            )
        return tuple(check_count(size, f"every entry of {name}", minimum) for size in value)
    return (check_count(value, name, minimum),) * dims


def check_tensor_input(input: Any, module: str) -> None:
    """An InputTypeError unless ``input`` is a tensor (numpy arrays included: convert them)."""
    if isinstance(input, torch.Tensor):
        return
    kind = type(input).__qualname__
    if type(input).__module__ not in ("builtins", "numpy"):
        kind = f"{type(input).__module__}.{kind}"
    elif isinstance(input, np.ndarray):
        kind = "numpy.ndarray"
    raise InputTypeError(
        f"{module} takes a torch.Tensor, got a {kind}; convert it first, e.g. "
        "torch.as_tensor(x) (a float64 array is then computed in the layer's dtype)"
    )


def bind_arguments(
    signature_of: Callable[..., Any], owner: str, args: tuple, kwargs: dict
) -> dict[str, Any]:
    """``args`` and ``kwargs`` bound to the parameters of ``signature_of``, defaults applied.

    An unknown keyword or too many positional arguments is an InputTypeError naming
    ``owner``'s parameters.
    """
    signature = inspect.signature(signature_of)
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as error:
        raise InputTypeError(
            f"{owner}: {error}; its parameters are ({', '.join(signature.parameters)})"
        ) from None
    bound.apply_defaults()
    return dict(bound.arguments)
