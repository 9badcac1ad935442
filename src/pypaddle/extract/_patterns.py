"""Connection patterns of windowed layers by index arithmetic: no loop per weight or pixel.

A pattern is a pair of int64 arrays ``(targets, sources)`` of flat element indices within
one sample: output element ``targets[i]`` reads input element ``sources[i]``. Every
spatial dimension is handled by a table ``[output position, kernel offset] -> input
position`` (``-1`` where the window reads padding); a window of several dimensions is the
product of its per-dimension tables, formed by broadcasting.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "adaptive_table",
    "conv_channel_pattern",
    "conv_pattern",
    "linear_pattern",
    "reduction_pattern",
    "spatial_windows",
    "window_pattern",
    "window_table",
]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def window_table(
    in_size: int,
    out_size: int,
    kernel: int,
    *,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    padding_mode: str = "zeros",
) -> np.ndarray:
    """``[out_size, kernel]``: the input position read at each output position and offset.

    Position ``o * stride - padding + k * dilation`` of the padded input, folded back into
    the input as ``padding_mode`` pads (``reflect`` mirrors without repeating the edge,
    ``replicate`` repeats the edge, ``circular`` wraps); ``-1`` where it reads a zero pad
    (or, for pooling, the region beyond the input that ``ceil_mode`` admits).
    """
    position = (
        np.arange(out_size, dtype=np.int64)[:, None] * stride
        - padding
        + np.arange(kernel, dtype=np.int64)[None, :] * dilation
    )
    if padding_mode == "zeros":
        return np.where((position >= 0) & (position < in_size), position, -1)
    if padding_mode == "reflect":
        period = max(2 * (in_size - 1), 1)
        folded = np.mod(position, period)
        return np.where(folded < in_size, folded, period - folded)
    if padding_mode == "replicate":
        return np.clip(position, 0, in_size - 1)
    if padding_mode == "circular":
        return np.mod(position, in_size)
    raise ValueError(f"unknown padding mode {padding_mode!r}; expected one of {_PADDING_MODES}")


def adaptive_table(in_size: int, out_size: int) -> np.ndarray:
    """``[out_size, widest window]`` of adaptive pooling: window ``o`` is
    ``floor(o * in / out) .. ceil((o + 1) * in / out) - 1``; ``-1`` pads shorter windows."""
    outputs = np.arange(out_size, dtype=np.int64)
    start = (outputs * in_size) // out_size
    end = -((-(outputs + 1) * in_size) // out_size)
    width = int((end - start).max())
    position = start[:, None] + np.arange(width, dtype=np.int64)[None, :]
    return np.where(position < end[:, None], position, -1)


def spatial_windows(tables: Sequence[np.ndarray], in_sizes: Sequence[int]) -> np.ndarray:
    """``[output positions, kernel offsets]`` of flat input positions (``-1``: padding).

    Output positions and kernel offsets are both flattened in C order over the
    dimensions, matching a tensor's ``reshape(-1)`` and a weight's kernel dimensions.
    """
    count = len(tables)
    flat = np.zeros([1] * (2 * count), dtype=np.int64)
    valid = np.ones([1] * (2 * count), dtype=bool)
    in_strides = [math.prod(in_sizes[d + 1 :]) for d in range(count)]
    for dim, table in enumerate(tables):
        shape = [1] * (2 * count)
        shape[dim], shape[count + dim] = table.shape
        positions = table.reshape(shape)
        flat = flat + np.maximum(positions, 0) * in_strides[dim]
        valid = valid & (positions >= 0)
    flat = np.where(valid, flat, -1)
    outputs = math.prod(table.shape[0] for table in tables)
    return flat.reshape(outputs, -1)


def window_pattern(windows: np.ndarray, channels: int, in_positions: int):
    """Channel-wise windows (pooling): output ``(c, o)`` reads input ``(c, windows[o])``."""
    out_positions = windows.shape[0]
    channel = np.arange(channels, dtype=np.int64)[:, None, None]
    sources = channel * in_positions + windows[None, :, :]
    targets = np.broadcast_to(
        channel * out_positions + np.arange(out_positions, dtype=np.int64)[None, :, None],
        sources.shape,
    )
    keep = np.broadcast_to(windows[None, :, :] >= 0, sources.shape)
    return targets[keep], sources[keep]


def conv_pattern(
    active: np.ndarray,
    groups: int,
    windows: np.ndarray,
    in_positions: int,
    *,
    may_repeat: bool,
):
    """Output ``(o, p)`` reads input ``(c, windows[p, k])`` for every active weight ``(o, c, k)``.

    ``active`` is the bool ``[out, in / groups, *kernel]`` array of connections that exist;
    ``windows`` comes from :func:`spatial_windows`. With a padding mode that folds the
    window back into the input (``may_repeat``), two kernel offsets can read the same
    input, and the duplicate pairs are merged.
    """
    out_channels, group_width = active.shape[:2]
    out_per_group = out_channels // groups
    out_channel, in_local, offset = np.nonzero(active.reshape(out_channels, group_width, -1))
    in_channel = (out_channel // out_per_group) * group_width + in_local
    out_positions = windows.shape[0]
    spatial = windows[:, offset].T  # [active weights, output positions]
    sources = in_channel[:, None] * in_positions + spatial
    targets = np.broadcast_to(
        out_channel[:, None] * out_positions + np.arange(out_positions, dtype=np.int64)[None, :],
        sources.shape,
    )
    keep = spatial >= 0
    targets, sources = targets[keep], sources[keep]
    if may_repeat and targets.size:
        pairs = np.unique(targets * (in_positions * active.shape[1] * groups) + sources)
        targets, sources = np.divmod(pairs, in_positions * active.shape[1] * groups)
    return targets, sources


def conv_channel_pattern(active: np.ndarray, groups: int):
    """Channel to channel: ``o`` reads ``c`` if any weight of kernel ``(o, c)`` is active."""
    out_channels, group_width = active.shape[:2]
    kernels = active.reshape(out_channels, group_width, -1).any(axis=2)
    out_channel, in_local = np.nonzero(kernels)
    in_channel = (out_channel // (out_channels // groups)) * group_width + in_local
    return out_channel.astype(np.int64), in_channel.astype(np.int64)


def linear_pattern(active: np.ndarray, leading: int):
    """``[out, in]`` connections applied to the last dimension of ``leading`` rows."""
    out_features, in_features = active.shape
    out_index, in_index = np.nonzero(active)
    rows = np.arange(leading, dtype=np.int64)[:, None]
    targets = (rows * out_features + out_index[None, :]).reshape(-1)
    sources = (rows * in_features + in_index[None, :]).reshape(-1)
    return targets, sources


def reduction_pattern(shape: Sequence[int], dims: Sequence[int]):
    """Reducing ``dims`` of a sample of ``shape``: each output reads the elements it reduces."""
    kept_shape = [1 if dim in dims else size for dim, size in enumerate(shape)]
    coordinates = np.unravel_index(np.arange(math.prod(shape), dtype=np.int64), tuple(shape))
    kept = tuple(
        np.zeros_like(axis) if dim in dims else axis for dim, axis in enumerate(coordinates)
    )
    targets = np.ravel_multi_index(kept, tuple(kept_shape))
    return targets.astype(np.int64), np.arange(math.prod(shape), dtype=np.int64)
