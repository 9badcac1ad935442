"""One hidden layer of a MaskedDeepDAN: a masked linear layer viewing the DAN's packed tensors.

A deep, narrow DAN has hundreds of layers. Were each its own weight and bias parameter,
every training step would pay autograd and the optimizer for hundreds of tiny tensors.
Instead the DAN holds four packed tensors (``hidden_weight``, ``hidden_bias`` and their
masks) and each layer is a window onto them: ``layer.weight`` is a view of its block of
``hidden_weight``, so reading, editing and pruning a layer work as on any masked layer,
and the DAN's kernels see every layer at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import torch
from torch import nn

from pypaddle.errors import ConfigError, InputTypeError
from pypaddle.sparse._arguments import check_flag
from pypaddle.sparse._dan_init import weight_scale
from pypaddle.sparse._dan_plan import DanPlan
from pypaddle.sparse.masked import MaskedLinearLayer

__all__ = ["DanLayer", "PackedOwner", "pack_per_layer_entries"]


class PackedOwner(Protocol):
    """What a layer view reads from the model that owns the packed tensors (a MaskedDeepDAN)."""

    @property
    def plan(self) -> DanPlan: ...
    @property
    def hidden_weight(self) -> torch.Tensor: ...
    @property
    def hidden_bias(self) -> torch.Tensor: ...
    @property
    def hidden_mask(self) -> torch.Tensor: ...
    @property
    def hidden_bias_mask(self) -> torch.Tensor: ...
    @property
    def init(self) -> str: ...
    @property
    def activation(self) -> nn.Module: ...

    def packed_mask_values(
        self, name: str, dtype: torch.dtype, region: tuple[int, int] | None = None
    ) -> torch.Tensor | None: ...


# A layer's tensor name -> the packed tensor of the DAN that holds it.
_PACKED = {
    "weight": "hidden_weight",
    "bias": "hidden_bias",
    "mask": "hidden_mask",
    "bias_mask": "hidden_bias_mask",
}


class _PackedView(torch.Tensor):
    """A layer's view of a packed tensor whose ``.data`` cannot be swapped from under it.

    Operations on it give plain tensors. Assigning ``view.data = t``, which on an ordinary
    tensor replaces its storage, would here replace the storage of a throw-away view and
    change nothing: it is routed to the layer instead, which copies ``t`` in (or refuses
    it). Reading ``view.data`` gives a plain tensor sharing the packed storage.
    """

    __torch_function__ = torch._C._disabled_torch_function_impl  # type: ignore[assignment]

    @property
    def data(self) -> torch.Tensor:
        return torch.Tensor.data.__get__(self)  # type: ignore[attr-defined]

    @data.setter
    def data(self, value: Any) -> None:
        layer, name = self.__dict__["_pypaddle_layer"]
        layer._assign_data(name, value)

    # Copies and pickles are plain tensors: they do not carry the layer (and its model).
    def __deepcopy__(self, memo: dict) -> torch.Tensor:
        return self.as_subclass(torch.Tensor).__deepcopy__(memo)

    def __reduce_ex__(self, protocol: Any) -> Any:
        return self.as_subclass(torch.Tensor).__reduce_ex__(protocol)


class DanLayer(MaskedLinearLayer):
    """Layer of a :class:`~pypaddle.sparse.MaskedDeepDAN`; its tensors are views.

    ``weight``, ``bias``, ``mask`` and ``bias_mask`` are views into the DAN's packed
    ``hidden_weight``, ``hidden_bias``, ``hidden_mask`` and ``hidden_bias_mask`` (where,
    is the model's :attr:`~pypaddle.sparse.MaskedDeepDAN.plan`). The layer owns no tensor
    of its own: no parameters (optimise ``model.parameters()``) and an empty
    ``state_dict`` (the DAN's holds the packed tensors).

    Every edit through a view reaches the model, and the next forward of every kernel
    honours it:

    - in place: ``layer.mask[0] = False``, ``layer.weight.copy_(t)`` or ``.mul_`` under
      ``torch.no_grad()``, ``prune_neurons``, ``set_mask``;
    - through ``.data`` or numpy: ``layer.weight.data[...] = v``,
      ``layer.mask.data[...] = False``, ``layer.mask.numpy()[...] = False`` (these bypass
      torch's version counter, so the model compares its masks with the copies its cached
      values were made from, every forward);
    - ``layer.weight.data = t`` and ``layer.mask.data = m``: on an ordinary tensor these
      swap the storage, which a view cannot do, so they copy ``t`` (converted as by
      ``copy_``) or ``m`` (checked as by ``set_mask``) into the packed tensor instead;
      anything of another shape is refused (``ConfigError`` for weights, ``MaskError``
      for masks) and changes nothing;
    - assigning a mask (``layer.mask = m``) copies it in, as on every masked layer;
      assigning a weight or bias (``layer.weight = t``) is refused: copy into it.

    What a view cannot do: ``layer.weight.grad = g`` sets the gradient of a throw-away
    view (the gradient lives in ``model.hidden_weight.grad``, and ``layer.weight.grad``
    reads this layer's part of it); ``layer.requires_grad_(False)`` and ``layer.to(...)``
    have nothing of their own to act on (the model's do; to freeze one layer, zero its
    part of ``hidden_weight.grad`` with a hook on ``hidden_weight``);
    ``torch.nn.utils.prune`` needs a registered parameter, so use :mod:`pypaddle.prune`.
    Before the first backward ``layer.weight.grad`` is None, and torch warns that a
    non-leaf's ``.grad`` is read. Forward hooks on a layer run when the model takes the
    module path, which ``kernel="auto"`` does while any layer has one.
    """

    _owner: PackedOwner

    def __init__(self, owner: PackedOwner, layer: int) -> None:
        nn.Module.__init__(self)
        plan = owner.plan
        self.in_features = plan.columns[layer]
        self.out_features = plan.widths[layer]
        # The owner is not registered as a submodule (it is this module's parent).
        object.__setattr__(self, "_owner", owner)
        self._weights = plan.blocks[layer]  # its span of the packed weight (row-major block)
        self._rows = plan.writes[layer]  # its span of the packed bias: its vertices

    # -- views --------------------------------------------------------------------------
    def _cut_weight(self, packed: torch.Tensor) -> torch.Tensor:
        start, end = self._weights
        return packed[start:end].view(self.out_features, self.in_features)

    def _cut_rows(self, packed: torch.Tensor) -> torch.Tensor:
        return packed[self._rows[0] : self._rows[1]]

    def _view(self, name: str, packed: torch.Tensor, cut: Callable) -> torch.Tensor:
        view = cut(packed)
        if torch.jit.is_tracing() or torch.compiler.is_compiling():
            return view
        view = view.as_subclass(_PackedView)
        view.__dict__["_pypaddle_layer"] = (self, name)
        # A computed packed tensor (torch's pruning or parametrizations) has no .grad.
        if packed.is_leaf and packed.grad is not None:
            view.grad = cut(packed.grad)
        return view

    @property
    def weight(self) -> torch.Tensor:  # type: ignore[override]
        return self._view("weight", self._owner.hidden_weight, self._cut_weight)

    @property
    def bias(self) -> torch.Tensor:  # type: ignore[override]
        return self._view("bias", self._owner.hidden_bias, self._cut_rows)

    @property
    def mask(self) -> torch.Tensor:  # type: ignore[override]
        return self._view("mask", self._owner.hidden_mask, self._cut_weight)

    @property
    def bias_mask(self) -> torch.Tensor:  # type: ignore[override]
        return self._view("bias_mask", self._owner.hidden_bias_mask, self._cut_rows)

    def _assign_data(self, name: str, value: Any) -> None:
        """``layer.<name>.data = value``: copied into the packed tensor, or refused."""
        if name == "mask":
            self.set_mask(value)
            return
        if name == "bias_mask":
            self._set_bias_mask(value)
            return
        target = getattr(self, name)
        if not isinstance(value, torch.Tensor) or value.is_complex():
            raise InputTypeError(
                f"layer.{name}.data must be a real tensor, got {type(value).__name__}"
                f"{'' if not isinstance(value, torch.Tensor) else f' of {value.dtype}'}; "
                f"layer.{name} views the model's packed hidden_{name}, so new data is "
                "copied into it"
            )
        if value.shape != target.shape:
            raise ConfigError(
                f"layer.{name}.data must keep the shape {tuple(target.shape)}, got "
                f"{tuple(value.shape)}; layer.{name} is a fixed window onto the model's "
                f"packed hidden_{name}, so its shape cannot change"
            )
        with torch.no_grad():
            target.copy_(value)

    def reset_parameters(self, keep_mask: bool = False) -> None:
        """Re-initialise this layer's block of the model as the model's ``init`` does.

        The mask is reset to all True unless ``keep_mask`` (as on every masked layer).
        Then each vertex of the layer is drawn over its *active* fan-in ``n`` (its
        unmasked weights): with ``init="fan_in"`` (the default of
        :class:`~pypaddle.sparse.MaskedDeepDAN`) its weights are uniform with standard
        deviation ``gain / sqrt(n)`` for the model's activation and its masked weights
        are 0, as when the model was built; with ``init="legacy"`` it is
        :class:`~pypaddle.sparse.MaskedLinearLayer`'s reset, ``U(-b, b)`` with ``b = 1 /
        sqrt(n)`` over the whole block. Biases start at ``U(-b, b)`` either way (a masked
        bias at 0 under ``"fan_in"``). Only this layer's part of the packed tensors
        changes.

        Examples
        --------
        >>> from pypaddle.graph import random_layered
        >>> from pypaddle.sparse import MaskedDeepDAN
        >>> model = MaskedDeepDAN(4, 2, random_layered([6, 6], density=0.5, seed=0))
        >>> layer = model.layers_main_hidden[1]
        >>> layer.reset_parameters(keep_mask=True)
        >>> bool((layer.weight[~layer.mask] == 0).all())
        True
        """
        keep_mask = check_flag(keep_mask, "keep_mask")
        if self._owner.init == "legacy":
            super().reset_parameters(keep_mask)
            return
        with torch.no_grad():
            weight, bias, mask, bias_mask = self.weight, self.bias, self.mask, self.bias_mask
            if not keep_mask:
                mask.fill_(True)
                bias_mask.fill_(True)
            fan_in = mask.sum(1).clamp(min=1).to(torch.float64)
            bound = fan_in.rsqrt()
            scale = weight_scale(bound, self._owner.activation, "fan_in")
            drawn = torch.empty_like(weight).uniform_(-1.0, 1.0)
            weight.copy_(drawn.mul_(scale.to(weight.dtype).unsqueeze(1)).mul_(mask))
            drawn = torch.empty_like(bias).uniform_(-1.0, 1.0)
            bias.copy_(drawn.mul_(bound.to(bias.dtype)).mul_(bias_mask))

    def named_tensor(self, name: str) -> torch.Tensor | None:
        if name in _PACKED:
            return getattr(self, name)
        return super().named_tensor(name)

    def parameter_leaf(
        self, name: str = "weight"
    ) -> tuple[torch.Tensor, Callable[[torch.Tensor], torch.Tensor] | None]:
        if name == "weight":
            return self._owner.hidden_weight, self._cut_weight
        if name == "bias":
            return self._owner.hidden_bias, self._cut_rows
        return super().parameter_leaf(name)

    def mask_values(self, name: str, dtype: torch.dtype) -> torch.Tensor | None:
        region = self._weights if name == "mask" else self._rows
        packed = self._owner.packed_mask_values(f"hidden_{name}", dtype, region)
        if packed is None:
            return None
        return self._cut_weight(packed) if name == "mask" else self._cut_rows(packed)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "mask":
            self.set_mask(value)
        elif name == "bias_mask":
            self._set_bias_mask(value)
        elif name in ("weight", "bias"):
            raise InputTypeError(
                f"a MaskedDeepDAN layer's {name} is a view into the model's packed "
                f"hidden_{name}, so it cannot be replaced; change its values in place "
                f"instead, e.g. with torch.no_grad(): layer.{name}.copy_(new_values)"
            )
        else:
            super().__setattr__(name, value)


def pack_per_layer_entries(state_dict: dict, prefix: str, layers: nn.ModuleList) -> None:
    """Turn a state_dict's per-layer entries into the packed ones, in place.

    State dicts saved before the hidden layers were packed (the checkpoints of earlier
    experiments) hold ``layers_main_hidden.{i}.weight``, ``.bias``, ``.mask`` and
    ``.bias_mask``. Where every layer's entry is there with this model's shape, they
    become the one packed entry; otherwise they are left for ``load_state_dict`` to report.
    """
    for name, packed in _PACKED.items():
        keys = [f"{prefix}layers_main_hidden.{index}.{name}" for index in range(len(layers))]
        if prefix + packed in state_dict or not all(key in state_dict for key in keys):
            continue
        values = [state_dict[key] for key in keys]
        shapes = [tuple(getattr(layer, name).shape) for layer in layers]
        if any(tuple(value.shape) != shape for value, shape in zip(values, shapes)):
            continue
        for key in keys:
            del state_dict[key]
        state_dict[prefix + packed] = torch.cat([value.reshape(-1) for value in values])
