"""The window of a convolution or pooling call, read from its module or its arguments."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pypaddle.extract import _patterns as patterns
from pypaddle.extract._trace import Op

__all__ = ["Window", "adaptive_tables", "conv_window", "pool_window", "spatial_count"]

# Positional parameters after (input, weight, bias) / after input, as torch orders them.
_CONV_ARGUMENTS = ("stride", "padding", "dilation", "groups")
_POOL_ARGUMENTS = ("kernel_size", "stride", "padding", "dilation")
_AVG_POOL_ARGUMENTS = ("kernel_size", "stride", "padding")


def _per_dim(value: Any, count: int) -> tuple[int, ...]:
    if isinstance(value, (tuple, list)):
        if len(value) == count:
            return tuple(int(item) for item in value)
        return (int(value[0]),) * count
    return (int(value),) * count


def spatial_count(name: str) -> int:
    """Spatial dimensions of a layer from its name (``MaxPool1d`` -> 1); 2 if unnamed."""
    digits = [char for char in name if char.isdigit()]
    return int(digits[-1]) if digits else 2


@dataclass(frozen=True)
class Window:
    """Kernel, stride, padding and dilation per spatial dimension, and the padding mode."""

    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    padding_mode: str = "zeros"

    def tables(self, in_sizes, out_sizes) -> list[np.ndarray]:
        """One :func:`~pypaddle.extract._patterns.window_table` per spatial dimension."""
        return [
            patterns.window_table(
                in_sizes[d],
                out_sizes[d],
                self.kernel[d],
                stride=self.stride[d],
                padding=self.padding[d],
                dilation=self.dilation[d],
                padding_mode=self.padding_mode,
            )
            for d in range(len(self.kernel))
        ]


def conv_window(op: Op, kernel: tuple[int, ...]) -> tuple[Window, int]:
    """The window and the number of groups of a convolution module or ``F.conv*d`` call."""
    spatial = len(kernel)
    if op.kind == "module":
        module = op.target
        stride, padding, dilation = module.stride, module.padding, module.dilation
        groups, mode = module.groups, module.padding_mode
    else:
        arguments = {**dict(zip(_CONV_ARGUMENTS, op.args[3:])), **op.kwargs}
        stride = arguments.get("stride", 1)
        padding = arguments.get("padding", 0)
        dilation = arguments.get("dilation", 1)
        groups, mode = arguments.get("groups", 1), "zeros"
    dilation = _per_dim(dilation, spatial)
    if padding == "valid":
        padding = 0
    elif padding == "same":
        # torch pads total = dilation * (kernel - 1), the smaller half before.
        padding = tuple(d * (k - 1) // 2 for d, k in zip(dilation, kernel))
    window = Window(kernel, _per_dim(stride, spatial), _per_dim(padding, spatial), dilation, mode)
    return window, int(groups)


def pool_window(op: Op, spatial: int) -> Window:
    """The window of a pooling module or ``F.max_pool*d`` / ``F.avg_pool*d`` call."""
    if op.kind == "module":
        module = op.target
        settings = {
            "kernel_size": module.kernel_size,
            "stride": module.stride,
            "padding": module.padding,
            "dilation": getattr(module, "dilation", 1),
        }
    else:
        names = _AVG_POOL_ARGUMENTS if "avg" in op.type_name else _POOL_ARGUMENTS
        settings = dict(zip(names, op.args[1:]))
        settings.update({k: v for k, v in op.kwargs.items() if k in _POOL_ARGUMENTS})
    kernel = settings["kernel_size"]
    stride = settings.get("stride") or kernel  # torch: a stride of None means the kernel size
    return Window(
        _per_dim(kernel, spatial),
        _per_dim(stride, spatial),
        _per_dim(settings.get("padding", 0), spatial),
        _per_dim(settings.get("dilation", 1), spatial),
    )


def adaptive_tables(in_sizes, out_sizes) -> list[np.ndarray]:
    """One :func:`~pypaddle.extract._patterns.adaptive_table` per spatial dimension."""
    return [
        patterns.adaptive_table(size_in, size_out) for size_in, size_out in zip(in_sizes, out_sizes)
    ]
