"""Masked linear layers: one boolean mask per weight, higher orders as views of it."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pypaddle._core.checks import check_count, check_real
from pypaddle.errors import ConfigError, InputTypeError, MaskError
from pypaddle.sparse._arguments import check_device, check_dtype, check_flag, check_tensor_input

__all__ = ["MaskableModule", "MaskedLinear", "MaskedLinearLayer", "maskable_layers"]


def _as_bool_mask(value: Any, shape: torch.Size, what: str) -> torch.Tensor:
    """``value`` as a bool tensor of ``shape``, or a MaskError naming both shapes."""
    if isinstance(value, torch.Tensor):
        tensor = value.detach()
    else:
        try:
            # np.array copies into C order: torch cannot wrap negative strides
            # (``array[::-1]``, ``np.flip``), and the copy keeps the caller's array unaliased.
            tensor = torch.as_tensor(np.array(value, order="C"))
        except (TypeError, ValueError, RuntimeError) as error:
            raise MaskError(
                f"cannot read a {what} from a {type(value).__name__}: {error}; "
                "give a bool tensor or array"
            ) from None
    if tuple(tensor.shape) != tuple(shape):
        raise MaskError(
            f"the {what} has shape {tuple(tensor.shape)} but the weight it masks has shape "
            f"{tuple(shape)}; give a mask of shape {tuple(shape)}"
        )
    if tensor.dtype == torch.bool:
        return tensor
    if tensor.is_complex() or not (tensor.is_floating_point() or _is_integer(tensor)):
        raise MaskError(
            f"the {what} has dtype {tensor.dtype}, which is not boolean-like; "
            "give a bool tensor (or one holding only 0 and 1)"
        )
    if not bool(((tensor == 0) | (tensor == 1)).all()):
        raise MaskError(
            f"the {what} of dtype {tensor.dtype} holds values other than 0 and 1; "
            "give a bool tensor (or one holding only 0 and 1)"
        )
    return tensor != 0


def mask_is_full(mask: torch.Tensor) -> bool:
    """Whether the bool ``mask`` is all True, read from its values now (nothing is cached).

    A mask can be edited behind torch's back (through ``mask.data`` or a numpy view, which
    no version counter sees), so no answer is kept from one call to the next. The check
    runs on the CPU only, where reading a byte view costs a few microseconds; on other
    devices, and while tracing or compiling, the answer is False so that callers mask
    without a device synchronisation or a data-dependent branch.
    """
    if torch.jit.is_tracing() or torch.compiler.is_compiling() or mask.device.type != "cpu":
        return False
    if mask.numel() == 0:
        return True
    if mask.dtype != torch.bool:
        return bool(mask.all())
    # A min over the bytes is an order of magnitude faster than ``mask.all()``.
    return bool(mask.view(torch.uint8).min())


def mask_as_values(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor | None:
    """``mask`` as 0/1 values of ``dtype``, or None where it is all True (see mask_is_full)."""
    return None if mask_is_full(mask) else mask.to(dtype)


def check_theta(theta: Any) -> float:
    """``theta`` of ``recompute_mask`` as a float, if it is a finite real number >= 0."""
    return check_real(theta, "theta (the magnitude below which recompute_mask masks)", minimum=0.0)


def _is_integer(tensor: torch.Tensor) -> bool:
    return not tensor.is_floating_point() and not tensor.is_complex() and tensor.dtype != torch.bool


def _index_tensor(
    indices: Sequence[int] | torch.Tensor, size: int, what: str, device: torch.device
) -> torch.Tensor:
    """``indices`` as a long tensor of positions in ``0..size-1`` (negatives count back).

    A bool vector of length ``size`` selects positions, as in torch indexing; anything
    else that is not integral is refused rather than truncated.
    """
    try:
        index = torch.as_tensor(
            np.array(indices) if not isinstance(indices, torch.Tensor) else indices
        )
    except (TypeError, ValueError, RuntimeError) as error:
        raise InputTypeError(
            f"{what} indices must be ints or a bool vector, got {indices!r} ({error})"
        ) from None
    index = index.to(device).reshape(-1)
    if index.dtype == torch.bool:
        if index.numel() != size:
            raise MaskError(
                f"a bool selection of {what}s needs one entry per {what} ({size}), "
                f"got {index.numel()}"
            )
        return index.nonzero().reshape(-1)
    if index.numel() == 0:
        return index.to(torch.long)
    if index.is_floating_point() or index.is_complex():
        raise InputTypeError(
            f"{what} indices must be ints, got {index.tolist()}; indices are not rounded"
        )
    index = index.to(torch.long)
    if int(index.min()) < -size or int(index.max()) >= size:
        raise MaskError(
            f"{what} index out of range: the layer has {size} ({what}s 0..{size - 1}), "
            f"got {index.tolist()}"
        )
    return index.remainder(size)


class MaskableModule(nn.Module):
    """A module whose weights are gated by boolean mask buffers of the same shapes.

    Every mask object is registered once and only ever edited in place, so optimizers,
    hooks, ``state_dict``, ``deepcopy``, ``.to()`` and ``torch.compile`` all see the same
    tensor. Assigning ``module.mask = m`` copies ``m`` into it after checking it.

    Which parameter each mask gates is said by :meth:`masked_parameters`: pairs of
    ``(parameter name, mask buffer name)``. Single-weight modules (linear, convolution)
    have the one pair ``("weight", "mask")`` and so also offer ``module.weight`` and
    ``module.mask``; a module with several weight matrices (a recurrent net) lists each,
    e.g. ``("weight_ih_l0", "weight_ih_l0_mask")``. Generic code (pruning, density,
    :meth:`apply_mask`) reads the pairs. A module with a per-output ``bias_mask`` buffer
    (dim 0 of ``weight``) gets it applied to ``bias`` and checked on assignment.
    """

    weight: torch.Tensor
    mask: torch.Tensor

    def masked_parameters(self) -> tuple[tuple[str, str], ...]:
        """``(parameter name, mask buffer name)`` of every masked weight of this module."""
        return (("weight", "mask"),)

    def __setattr__(self, name: str, value: Any) -> None:
        buffers = self.__dict__.get("_buffers", {})
        if name == "bias_mask" and name in buffers:
            self._set_bias_mask(value)
        elif name in buffers and buffers[name] is not None and name.endswith("mask"):
            weights = {mask: weight for weight, mask in self.masked_parameters()}
            if name not in weights:
                super().__setattr__(name, value)
                return
            checked = _as_bool_mask(value, self.tensor(weights[name]).shape, name)
            with torch.no_grad():
                buffers[name].copy_(checked)
        else:
            super().__setattr__(name, value)

    def _set_bias_mask(self, value: Any) -> None:
        bias_mask = self.named_tensor("bias_mask")
        if bias_mask is None:
            if value is not None:
                raise MaskError(
                    "this layer has no bias (bias=False), so it has no bias mask to set; "
                    "mask its weights with layer.mask instead"
                )
            return
        checked = _as_bool_mask(value, bias_mask.shape, "bias mask")
        with torch.no_grad():
            bias_mask.copy_(checked)

    def _register_weight_masks(self) -> None:
        """Register ``mask`` (all True, shaped like ``weight``) and ``bias_mask`` (None
        without a bias), as every single-weight masked layer holds them."""
        self.register_buffer("mask", torch.ones_like(self.weight, dtype=torch.bool))
        bias = self.named_tensor("bias")
        bias_mask = None if bias is None else torch.ones_like(bias, dtype=torch.bool)
        self.register_buffer("bias_mask", bias_mask)

    def _as_weight_dtype(self, input: torch.Tensor) -> torch.Tensor:
        """A floating input in the weight's dtype (masked layers accept any float input).

        Any other input (integers, bools, complex numbers) is an InputTypeError naming the
        conversion, rather than torch's message about mismatched scalar types.
        """
        dtype = self.weight.dtype
        if input.dtype == dtype:
            return input
        if input.is_floating_point():
            return input.to(dtype)
        raise InputTypeError(
            f"{type(self).__name__} takes floating-point input, got {input.dtype}; "
            f"convert it first, e.g. input.to({dtype})"
        )

    def _reset_by_active_fan_in(self, keep_mask: bool, torch_reset: Callable[[], None]) -> None:
        """``reset_parameters`` of a single-weight masked layer (linear or conv).

        Resets the masks to all True unless ``keep_mask``. With full masks (or while torch's
        constructor runs, before the masks exist) it is ``torch_reset`` itself; with a
        partial mask kept, every output unit is drawn with the bound torch would use for
        its *active* fan-in, ``1 / sqrt(fan_in)``.
        """
        mask = self.named_tensor("mask")
        bias_mask = self.named_tensor("bias_mask")
        if mask is not None and not keep_mask:
            with torch.no_grad():
                mask.fill_(True)
                if bias_mask is not None:
                    bias_mask.fill_(True)
        if mask is None or bool(mask.all()):
            torch_reset()
            return
        with torch.no_grad():
            weight = self.tensor("weight")
            fan_in = mask.flatten(1).sum(1).clamp(min=1).to(weight.dtype)
            bound = fan_in.rsqrt()
            weight.uniform_(-1.0, 1.0).mul_(bound.reshape((-1,) + (1,) * (weight.dim() - 1)))
            bias = self.named_tensor("bias")
            if bias is not None:
                bias.uniform_(-1.0, 1.0).mul_(bound)

    def _mask_of(self, weight: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The parameter ``weight`` and its mask buffer, or a MaskError listing the masked ones."""
        pairs = dict(self.masked_parameters())
        if not isinstance(weight, str):
            raise InputTypeError(
                f"name a masked weight of {type(self).__name__} by its parameter name (a str), "
                f"got {weight!r}; its masked weights are: {', '.join(pairs) or 'none'}"
            )
        if weight not in pairs:
            names = ", ".join(pairs) or "none"
            raise MaskError(
                f"{type(self).__name__} has no masked weight {weight!r}; its masked weights "
                f"are: {names}. Name one of them, e.g. get_mask({next(iter(pairs), 'weight')!r})"
            )
        return self.tensor(weight), self.tensor(pairs[weight])

    def get_mask(self, weight: str = "weight") -> torch.Tensor:
        """The mask buffer of ``weight`` itself (edits to it take effect).

        Modules with several masked weights (recurrent nets) name the one they mean, e.g.
        ``get_mask("weight_hh_l0")``.
        """
        return self._mask_of(weight)[1]

    def set_mask(self, mask: Any, weight: str = "weight") -> None:
        """Copy a bool (or 0/1) tensor, array or nested list of the weight's shape into the mask.

        Raises :class:`~pypaddle.errors.MaskError` naming both shapes if it does not fit;
        the mask is left unchanged then. ``weight`` names the masked weight, as in
        :meth:`get_mask`.
        """
        parameter, buffer = self._mask_of(weight)
        checked = _as_bool_mask(mask, parameter.shape, "mask")
        with torch.no_grad():
            buffer.copy_(checked)

    def masked_weight(self) -> torch.Tensor:
        """The weight with masked entries zeroed (differentiable; masked gradients are 0).

        Masking multiplies by 0, as ``torch.nn.utils.prune`` does, so a masked weight that
        holds ``inf`` or ``nan`` spoils the output: :meth:`apply_mask` clears them.
        """
        values = self.mask_values("mask", self.weight.dtype)
        return self.weight if values is None else self.weight * values

    def masked_bias(self) -> torch.Tensor | None:
        """The bias with the entries of masked outputs zeroed, or None without a bias."""
        bias = self.named_tensor("bias")
        if bias is None or self.named_tensor("bias_mask") is None:
            return bias
        values = self.mask_values("bias_mask", bias.dtype)
        return bias if values is None else bias * values

    def mask_values(self, name: str, dtype: torch.dtype) -> torch.Tensor | None:
        """The bool buffer ``name`` as 0/1 values of ``dtype``, or None if it is all True.

        Read from the buffer at every call, so any edit is honoured by the next forward:
        in place, through a view, through ``mask.data`` or a numpy view of it, a new
        ``mask.data``, ``load_state_dict``. (On the CPU an all-True mask is recognised and
        skipped; elsewhere the weight is always multiplied, see :func:`mask_is_full`.)
        """
        return mask_as_values(self.tensor(name), dtype)

    def named_tensor(self, name: str) -> torch.Tensor | None:
        """The parameter or buffer ``name`` of this module (None if absent or None).

        Generic code (masks, pruning, counting) reads weights and masks through this
        rather than ``_parameters`` / ``_buffers``, so that modules whose tensors are views
        into storage their model packs (the hidden layers of a ``MaskedDeepDAN``) take part.
        """
        tensor = self._parameters.get(name)
        return tensor if tensor is not None else self._buffers.get(name)

    def tensor(self, name: str) -> torch.Tensor:
        """:meth:`named_tensor` for a tensor the module must have (a KeyError otherwise)."""
        tensor = self.named_tensor(name)
        if tensor is None:
            raise KeyError(f"{type(self).__name__} has no tensor {name!r}")
        return tensor

    def parameter_leaf(
        self, name: str = "weight"
    ) -> tuple[torch.Tensor, Callable[[torch.Tensor], torch.Tensor] | None]:
        """The autograd leaf that holds parameter ``name``, and how to cut it out.

        For an ordinary layer the leaf is the parameter itself and the cut is None. A layer
        whose weight is a view into a packed parameter returns that parameter and a
        function taking any tensor shaped like it (its gradient, an optimizer's moment) to
        the view of this layer's part. Gradients with respect to the weight, and optimizer
        state, live on the leaf.
        """
        return self.tensor(name), None

    def _mask_pairs(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [
            (self.tensor(weight), self.tensor(mask)) for weight, mask in self.masked_parameters()
        ]

    @torch.no_grad()
    def apply_mask(self) -> None:
        """Zero the masked weights (and masked biases) for good; the masks are kept."""
        for weight, mask in self._mask_pairs():
            weight.masked_fill_(~mask, 0.0)
        bias_mask = self.named_tensor("bias_mask")
        if bias_mask is not None:
            self.tensor("bias").masked_fill_(~bias_mask, 0.0)

    @torch.no_grad()
    def recompute_mask(self, theta: float = 0.001) -> None:
        """Keep only weights with ``|w| > theta``; a weight already masked stays masked.

        ``theta`` is a finite real number >= 0; anything else (NaN, which would mask every
        weight, a negative or infinite value, a string) is a ConfigError and changes nothing.
        """
        theta = check_theta(theta)
        for weight, mask in self._mask_pairs():
            mask.logical_and_(weight.abs() > theta)

    def check_state_dict_masks(self, state_dict: Mapping[str, Any], prefix: str = "") -> None:
        """Raise MaskError unless every mask of this module in ``state_dict`` fits.

        A mask entry (``prefix + "mask"``, ``prefix + "bias_mask"``, ...) must be a tensor of
        its buffer's shape holding only booleans or 0 and 1, as assigning it would demand.
        ``load_state_dict`` runs this before copying anything, so a refused load leaves the
        module as it was. Where the entry of the weight it masks does not fit either (a
        state_dict of another architecture), torch's own error, which lists every entry
        that does not fit, is left to report it.
        """
        pairs = [*self.masked_parameters(), ("bias", "bias_mask")]
        for weight, name in pairs:
            key = prefix + name
            # Only masks this module stores itself: a view onto a model's packed mask
            # (a MaskedDeepDAN layer's) is the model's to check.
            if key not in state_dict or self._buffers.get(name) is None:
                continue
            value = state_dict[key]
            if not isinstance(value, torch.Tensor):
                raise MaskError(
                    f"the state_dict entry {key!r} is a {type(value).__name__}, not a tensor; "
                    "a mask entry must be a bool tensor (or one holding only 0 and 1)"
                )
            given = state_dict.get(prefix + weight)
            parameter = self._parameters.get(weight)
            if (
                isinstance(given, torch.Tensor)
                and parameter is not None
                and given.shape != parameter.shape
            ):
                continue
            _as_bool_mask(value, self.tensor(name).shape, f"state_dict entry {key!r}")

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
        self.check_state_dict_masks(state_dict, prefix)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    @property
    def num_weights(self) -> int:
        """Number of masked weight entries (of every masked parameter)."""
        return sum(mask.numel() for _, mask in self._mask_pairs())

    @property
    def num_active_weights(self) -> int:
        """Number of weights the masks keep."""
        return sum(int(mask.sum()) for _, mask in self._mask_pairs())

    @property
    def density(self) -> float:
        """Fraction of weights the masks keep."""
        return self.num_active_weights / max(self.num_weights, 1)


class MaskedLinearLayer(nn.Linear, MaskableModule):
    """``torch.nn.Linear`` whose weights are gated by a boolean mask.

    A drop-in for ``nn.Linear`` (same constructor, same parameter names, so a Linear's
    ``state_dict`` loads with ``strict=False``). Besides ``weight`` and ``bias`` it holds
    two bool buffers: ``mask`` (shape of ``weight``) and, with a bias, ``bias_mask`` (one
    entry per output neuron). Pruning a neuron clears its row of ``mask`` and its bias, so
    it contributes nothing.

    A floating-point input is converted to the layer's weight dtype, so a float64 array
    made with numpy works on a float32 layer; nothing is forced to float32.

    Examples
    --------
    >>> import torch
    >>> layer = MaskedLinearLayer(4, 3)
    >>> layer.mask[:, :2] = False           # in-place edits work
    >>> layer.prune_neurons([0])            # first order: output neuron 0 and its bias
    >>> layer.density
    0.3333333333333333
    >>> layer(torch.ones(2, 4))[:, 0]
    tensor([0., 0.], grad_fn=<SelectBackward0>)
    """

    bias_mask: torch.Tensor | None

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        in_features = check_count(in_features, "in_features", 1)
        out_features = check_count(out_features, "out_features", 1)
        bias = check_flag(bias, "bias")
        check_device(device)
        check_dtype(dtype)
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        self._register_weight_masks()

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        check_tensor_input(input, type(self).__name__)
        if input.dim() == 0 or input.shape[-1] != self.in_features:
            raise ConfigError(
                f"{type(self).__name__}({self.in_features}, {self.out_features}) takes inputs "
                f"whose last dimension is {self.in_features} (in_features), got an input of "
                f"shape {tuple(input.shape)}; give [..., {self.in_features}]"
            )
        return F.linear(self._as_weight_dtype(input), self.masked_weight(), self.masked_bias())

    def reset_parameters(self, keep_mask: bool = False) -> None:
        """Re-initialise weight and bias; reset the mask to all True unless ``keep_mask``.

        With a full mask this is exactly ``nn.Linear``'s initialisation. With a partial
        mask kept, each row is drawn with the bound ``nn.Linear`` would use for its *active*
        fan-in, so a sparse row starts with the same scale as a dense row of that size.
        """
        self._reset_by_active_fan_in(check_flag(keep_mask, "keep_mask"), super().reset_parameters)

    # -- first order: neurons and inputs ----------------------------------------------
    @torch.no_grad()
    def prune_neurons(self, indices: Sequence[int] | torch.Tensor) -> None:
        """Mask output neurons: their row of weights and their bias."""
        rows = self._indices(indices, self.out_features, "output neuron")
        self.mask[rows] = False
        if self.bias_mask is not None:
            self.bias_mask[rows] = False

    @torch.no_grad()
    def prune_inputs(self, indices: Sequence[int] | torch.Tensor) -> None:
        """Mask input features: their column of weights."""
        columns = self._indices(indices, self.in_features, "input feature")
        self.mask[:, columns] = False

    @property
    def neuron_mask(self) -> torch.Tensor:
        """Bool per output neuron: True if any of its weights or its bias is active."""
        active = self.mask.any(dim=1)
        if self.bias_mask is not None:
            active = active | self.bias_mask
        return active

    @property
    def input_mask(self) -> torch.Tensor:
        """Bool per input feature: True if any weight reads it."""
        return self.mask.any(dim=0)

    def _indices(self, indices: Sequence[int] | torch.Tensor, size: int, what: str) -> torch.Tensor:
        return _index_tensor(indices, size, what, self.mask.device)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, density={self.density:.4g}"


MaskedLinear = MaskedLinearLayer
"""The name pypaddle 0.3 also used for :class:`MaskedLinearLayer`: the same class."""


def maskable_layers(model: nn.Module) -> list[MaskableModule]:
    """Every masked module in ``model`` (the model itself included), at any depth.

    Works through any container: ``Sequential``, ``ModuleList``, ``ModuleDict`` and user
    modules alike.
    """
    if not isinstance(model, nn.Module):
        raise InputTypeError(f"expected a torch.nn.Module, got {type(model).__name__}")
    return [module for module in model.modules() if isinstance(module, MaskableModule)]
