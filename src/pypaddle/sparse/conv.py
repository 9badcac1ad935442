"""Masked convolutions: one boolean mask per kernel entry, kernels and channels as views."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from pypaddle.errors import MaskError
from pypaddle.graph import CachedLayeredGraph
from pypaddle.sparse._structure import (
    input_vertex,
    mask_edges,
    output_vertex,
    structure_from_positions,
)
from pypaddle.sparse.masked import MaskableModule, _as_bool_mask, _index_tensor

__all__ = ["MaskedConv1d", "MaskedConv2d"]

Size = int | tuple[int, ...]


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
        # The torch conv class after this one in the MRO takes exactly these arguments.
        super().__init__(
            in_channels,  # type: ignore[call-arg]
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            bias=bias,
            padding_mode=padding_mode,
            device=device,
            dtype=dtype,
        )
        self._register_weight_masks()

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(  # type: ignore[attr-defined]
            self._as_weight_dtype(input), self.masked_weight(), self.masked_bias()
        )

    def reset_parameters(self, keep_mask: bool = False) -> None:
        """Re-initialise weight and bias; reset the masks to all True unless ``keep_mask``.

        With a full mask this is exactly torch's initialisation. With a partial mask kept,
        each filter is drawn with the bound torch would use for its *active* fan-in.
        """
        self._reset_by_active_fan_in(keep_mask, super().reset_parameters)  # type: ignore[misc]

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
        return f"{super().extra_repr()}, density={self.density:.4g}"  # type: ignore[misc]


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
