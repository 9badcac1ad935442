"""Masked convolutions: one boolean mask per kernel entry, kernels and channels as views."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from pypaddle._core.checks import check_count
from pypaddle.errors import ConfigError, MaskError
from pypaddle.graph import CachedLayeredGraph
from pypaddle.sparse._arguments import (
    check_conv_sizes,
    check_device,
    check_dtype,
    check_flag,
    check_tensor_input,
)
from pypaddle.sparse._structure import (
    input_vertex,
    mask_edges,
    output_vertex,
    structure_from_positions,
)
from pypaddle.sparse.masked import MaskableModule, _as_bool_mask, _index_tensor

__all__ = ["MaskedConv1d", "MaskedConv2d"]

Size = int | tuple[int, ...]


_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _check_padding(padding: Any, dims: int, strides: tuple[int, ...]) -> str | tuple[int, ...]:
    if isinstance(padding, str):
        if padding not in ("same", "valid"):
            raise ConfigError(
                f"padding must be 'same', 'valid', an int >= 0 or {dims} of them, got {padding!r}"
            )
        if padding == "same" and any(stride != 1 for stride in strides):
            raise ConfigError(
                f"padding='same' needs stride 1 (torch does not pad strided convolutions to "
                f"the same size), got stride={strides}; give an int padding instead"
            )
        return padding
    return check_conv_sizes(padding, "padding", dims, 0)


class _MaskedConv(MaskableModule):
    """What the masked convolutions share: masks, forward, first-order views.

    Layout (as torch's): ``weight`` is ``[out_channels, in_channels / groups, *kernel]``;
    dim 0 are the filters (output channels, with ``bias_mask``), dim 1 the input channels
    of the filter's group, the rest the kernel. A *kernel* is one (output channel, input
    channel) pair; input channel ``c`` of the layer is column ``c % (in_channels / groups)``
    of the filters of group ``c // (in_channels / groups)``.
    """

    in_channels: int
    out_channels: int
    groups: int
    _spatial_dims: int = 2
    # Set by the torch conv class after this one in the MRO.
    kernel_size: tuple[int, ...]
    dilation: tuple[int, ...]
    padding: str | tuple[int, ...]
    _conv_forward: Callable[..., torch.Tensor]
    bias: torch.Tensor | None
    bias_mask: torch.Tensor | None

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Size,
        stride: Size = 1,
        padding: str | Size = 0,
        dilation: Size = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        dims = self._spatial_dims
        in_channels = check_count(in_channels, "in_channels", 1)
        out_channels = check_count(out_channels, "out_channels", 1)
        kernel = check_conv_sizes(kernel_size, "kernel_size", dims, 1)
        strides = check_conv_sizes(stride, "stride", dims, 1)
        dilations = check_conv_sizes(dilation, "dilation", dims, 1)
        paddings = _check_padding(padding, dims, strides)
        groups = check_count(groups, "groups", 1)
        if in_channels % groups or out_channels % groups:
            raise ConfigError(
                f"groups={groups} must divide in_channels ({in_channels}) and out_channels "
                f"({out_channels}); each group connects in_channels / groups inputs to "
                "out_channels / groups outputs"
            )
        bias = check_flag(bias, "bias")
        if not isinstance(padding_mode, str) or padding_mode not in _PADDING_MODES:
            raise ConfigError(
                f"padding_mode must be one of {', '.join(map(repr, _PADDING_MODES))}, "
                f"got {padding_mode!r}"
            )
        check_device(device)
        check_dtype(dtype)
        # The torch conv class after this one in the MRO takes exactly these arguments.
        super().__init__(
            in_channels,
            out_channels,
            kernel,
            stride=strides,
            padding=paddings,
            dilation=dilations,
            groups=groups,
            bias=bias,
            padding_mode=padding_mode,
            device=device,
            dtype=dtype,
        )
        self._register_weight_masks()

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        self._check_input(input)
        return self._conv_forward(
            self._as_weight_dtype(input), self.masked_weight(), self.masked_bias()
        )

    def _check_input(self, input: Any) -> None:
        """A ConfigError naming the shape this conv takes, unless ``input`` has it."""
        name = type(self).__name__
        check_tensor_input(input, name)
        dims = self._spatial_dims
        spatial = "length" if dims == 1 else "height, width"
        wanted = f"[batch, {self.in_channels}, {spatial}]"
        if input.dim() not in (dims + 1, dims + 2) or input.shape[-dims - 1] != self.in_channels:
            raise ConfigError(
                f"{name} with in_channels={self.in_channels} takes inputs {wanted} (or without "
                f"the batch dimension), got an input of shape {tuple(input.shape)}"
            )
        padding = self.padding
        if padding == "same":
            return
        pads = (0,) * dims if padding == "valid" else padding
        kernel = self.kernel_size
        dilation = self.dilation
        for axis in range(dims):
            size = input.shape[input.dim() - dims + axis]
            span = dilation[axis] * (kernel[axis] - 1) + 1
            if size + 2 * pads[axis] < span:
                raise ConfigError(
                    f"{name}: an input of shape {tuple(input.shape)} is smaller than the "
                    f"kernel ({span} wide with dilation, padded input {size + 2 * pads[axis]}) "
                    f"along spatial dimension {axis}; give a larger input or more padding"
                )

    def reset_parameters(self, keep_mask: bool = False) -> None:
        """Re-initialise weight and bias; reset the masks to all True unless ``keep_mask``.

        With a full mask this is exactly torch's initialisation. With a partial mask kept,
        each filter is drawn with the bound torch would use for its *active* fan-in.
        """
        self._reset_by_active_fan_in(
            check_flag(keep_mask, "keep_mask"),
            super().reset_parameters,  # type: ignore[misc]
        )

    # -- geometry of groups ------------------------------------------------------------
    @property
    def _group_sizes(self) -> tuple[int, int]:
        """(output channels, input channels) per group."""
        return self.out_channels // self.groups, self.in_channels // self.groups

    # -- first order: kernels, filters, input channels ---------------------------------
    @property
    def kernel_mask(self) -> torch.Tensor:
        """Bool ``[out_channels, in_channels / groups]``: True where a kernel has any active entry.

        Column ``j`` of a filter in group ``g`` is input channel ``g * in_channels / groups + j``.
        """
        return self.mask.flatten(2).any(2)

    @property
    def output_channel_mask(self) -> torch.Tensor:
        """Bool per output channel (filter): True if any of its weights or its bias is active."""
        active = self.mask.flatten(1).any(1)
        if self.bias_mask is not None:
            active = active | self.bias_mask
        return active

    filter_mask = output_channel_mask

    @property
    def input_channel_mask(self) -> torch.Tensor:
        """Bool per input channel: True if any active weight reads it."""
        out_per_group, in_per_group = self._group_sizes
        kernels = self.kernel_mask.reshape(self.groups, out_per_group, in_per_group)
        return kernels.any(1).reshape(self.in_channels)

    @torch.no_grad()
    def prune_output_channels(self, indices: Sequence[int] | torch.Tensor) -> None:
        """Mask whole filters: every weight of the output channels and their bias."""
        rows = _index_tensor(indices, self.out_channels, "output channel", self.mask.device)
        self.mask[rows] = False
        if self.bias_mask is not None:
            self.bias_mask[rows] = False

    prune_filters = prune_output_channels

    @torch.no_grad()
    def prune_input_channels(self, indices: Sequence[int] | torch.Tensor) -> None:
        """Mask input channels: every kernel that reads them."""
        channels = _index_tensor(indices, self.in_channels, "input channel", self.mask.device)
        out_per_group, in_per_group = self._group_sizes
        doomed = torch.zeros(
            self.groups, out_per_group, in_per_group, dtype=torch.bool, device=self.mask.device
        )
        doomed[channels // in_per_group, :, channels % in_per_group] = True
        self.mask[doomed.reshape(self.out_channels, in_per_group)] = False

    @torch.no_grad()
    def prune_kernels(
        self,
        output_channels: Sequence[int] | torch.Tensor,
        input_channels: Sequence[int] | torch.Tensor,
    ) -> None:
        """Mask the kernels ``(output_channels[k], input_channels[k])`` (layer channel numbers).

        Raises :class:`~pypaddle.errors.MaskError` if a pair crosses groups (a grouped conv
        has no kernel there); nothing is changed then.
        """
        device = self.mask.device
        rows = _index_tensor(output_channels, self.out_channels, "output channel", device)
        columns = _index_tensor(input_channels, self.in_channels, "input channel", device)
        if rows.numel() != columns.numel():
            raise MaskError(
                f"prune_kernels needs one input channel per output channel, got "
                f"{rows.numel()} output and {columns.numel()} input channels"
            )
        columns = self._local_columns(rows, columns)
        self.mask[rows, columns] = False

    def _local_columns(self, rows: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
        """Input channels as columns of ``weight``, or a MaskError for pairs across groups."""
        out_per_group, in_per_group = self._group_sizes
        crossing = (rows // out_per_group) != (columns // in_per_group)
        if bool(crossing.any()):
            k = int(crossing.nonzero()[0])
            row, column = int(rows[k]), int(columns[k])
            raise MaskError(
                f"kernel (output channel {row}, input channel {column}) crosses groups: this "
                f"conv has groups={self.groups}, output channel {row} is in group "
                f"{row // out_per_group} and input channel {column} in group "
                f"{column // in_per_group}; a grouped conv only connects channels of one group"
            )
        return columns % in_per_group

    # -- channel connectivity: [out_channels, in_channels] over the whole layer --------
    def channel_connectivity(self) -> torch.Tensor:
        """Bool ``[out_channels, in_channels]``: True where a kernel has an active entry.

        Pairs in different groups (``groups > 1``) are always False.
        """
        out_per_group, in_per_group = self._group_sizes
        kernels = self.kernel_mask.reshape(self.groups, out_per_group, in_per_group)
        connectivity = kernels.new_zeros(self.groups, out_per_group, self.groups, in_per_group)
        group = torch.arange(self.groups, device=kernels.device)
        connectivity[group, :, group, :] = kernels
        return connectivity.reshape(self.out_channels, self.in_channels)

    @torch.no_grad()
    def set_channel_connectivity(self, connectivity: Any) -> None:
        """Make the kernels of True pairs fully active and mask those of False pairs.

        ``connectivity`` is bool-like ``[out_channels, in_channels]``, as
        :meth:`channel_connectivity` returns it; :mod:`pypaddle.sparse.channels` builds one
        from a bipartite or a relational graph. A grouped conv refuses
        True pairs across groups with a :class:`~pypaddle.errors.MaskError` naming one; the
        mask is unchanged after any error.
        """
        wanted = _as_bool_mask(
            connectivity, torch.Size((self.out_channels, self.in_channels)), "channel connectivity"
        ).to(self.mask.device)
        pairs = wanted.nonzero()
        self._local_columns(pairs[:, 0], pairs[:, 1])  # checks groups
        out_per_group, in_per_group = self._group_sizes
        blocks = wanted.reshape(self.groups, out_per_group, self.groups, in_per_group)
        group = torch.arange(self.groups, device=wanted.device)
        kernels = blocks[group, :, group, :].reshape(self.out_channels, in_per_group)
        shape = kernels.shape + (1,) * (self.weight.dim() - 2)
        self.mask.copy_(kernels.reshape(shape).expand_as(self.mask))

    def generate_structure(self) -> CachedLayeredGraph:
        """The channel graph: ``("input", c)`` -> ``("output", o)`` for every active kernel.

        Every channel is a vertex (a pruned one stays, isolated); vertices carry a ``role``
        attribute (``"input"`` / ``"output"``). Built from the mask in one vectorised pass.
        """
        connectivity = self.channel_connectivity()
        labels: list[Any] = [input_vertex(c) for c in range(self.in_channels)]
        labels += [output_vertex(o) for o in range(self.out_channels)]
        vertices = [(label, {"role": "input"}) for label in labels[: self.in_channels]]
        vertices += [(label, {"role": "output"}) for label in labels[self.in_channels :]]
        edges = [mask_edges(connectivity, 0, self.in_channels)]
        return structure_from_positions(vertices, labels, edges)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, density={self.density:.4g}"


class MaskedConv1d(_MaskedConv, nn.Conv1d):
    """``torch.nn.Conv1d`` whose kernel entries are gated by a boolean mask.

    A drop-in for ``nn.Conv1d``: the same constructor (stride, padding including
    ``"same"``/``"valid"`` and every ``padding_mode``, dilation, groups, bias) and the same
    parameter names, so a Conv1d's ``state_dict`` loads with ``strict=False``. Buffers:
    ``mask`` (shape of ``weight``) and, with a bias, ``bias_mask`` (one per filter). The
    first-order views are those of :class:`MaskedConv2d`.

    Examples
    --------
    >>> import torch
    >>> conv = MaskedConv1d(2, 3, 3, padding="same")
    >>> conv.prune_kernels([0], [1])          # filter 0 no longer reads channel 1
    >>> conv.kernel_mask.tolist()
    [[True, False], [True, True], [True, True]]
    >>> conv(torch.randn(4, 2, 10)).shape
    torch.Size([4, 3, 10])
    """

    _spatial_dims = 1


class MaskedConv2d(_MaskedConv, nn.Conv2d):
    """``torch.nn.Conv2d`` whose kernel entries are gated by a boolean mask.

    A drop-in for ``nn.Conv2d``: the same constructor (stride, padding including
    ``"same"``/``"valid"`` and every ``padding_mode``, dilation, groups, bias) and the same
    parameter names, so a Conv2d's ``state_dict`` loads with ``strict=False``. Buffers:
    ``mask`` (shape of ``weight``) and, with a bias, ``bias_mask`` (one per filter).
    First-order views read and write that one mask: :attr:`kernel_mask`,
    :attr:`output_channel_mask`, :attr:`input_channel_mask`, :meth:`prune_kernels`,
    :meth:`prune_output_channels` (its bias too), :meth:`prune_input_channels`,
    :meth:`channel_connectivity` / :meth:`set_channel_connectivity`.

    Examples
    --------
    >>> import torch
    >>> conv = MaskedConv2d(4, 6, 3, padding=1, groups=2)
    >>> conv.prune_output_channels([5])       # a filter and its bias
    >>> conv.prune_input_channels([0])        # read by the filters of group 0 only
    >>> conv.output_channel_mask.tolist()
    [True, True, True, True, True, False]
    >>> conv.input_channel_mask.tolist()
    [False, True, True, True]
    >>> conv(torch.randn(1, 4, 8, 8))[0, 5].abs().max().item()
    0.0
    """
