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
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from pypaddle.errors import InputTypeError
from pypaddle.sparse.masked import MaskedLinearLayer

if TYPE_CHECKING:
    from pypaddle.sparse.dan import MaskedDeepDAN

__all__ = ["DanLayer", "pack_per_layer_entries"]

# A layer's tensor name -> the packed tensor of the DAN that holds it.
_PACKED = {
    "weight": "hidden_weight",
    "bias": "hidden_bias",
    "mask": "hidden_mask",
    "bias_mask": "hidden_bias_mask",
}


class DanLayer(MaskedLinearLayer):
    """Layer of a :class:`~pypaddle.sparse.MaskedDeepDAN`; its tensors are views.

    ``weight``, ``bias``, ``mask`` and ``bias_mask`` are views into the DAN's packed
    ``hidden_weight``, ``hidden_bias``, ``hidden_mask`` and ``hidden_bias_mask``: in-place
    edits (``layer.mask[0] = False``, ``prune_neurons``, ``weight.mul_`` under
    ``no_grad``) reach the model, and ``layer.weight.grad`` is this layer's part of
    ``hidden_weight.grad``. The layer owns no parameters of its own, so optimise
    ``model.parameters()``, and its ``state_dict`` is empty: the DAN's holds the packed
    tensors. Assigning a new tensor (``layer.weight = ...``) is refused; assigning a
    mask copies it in, as on every masked layer.

    What a view cannot do: ``layer.weight.data = t`` replaces the data of a temporary
    view and changes nothing (copy into it instead); ``layer.requires_grad_(False)`` and
    ``layer.to(...)`` have nothing of their own to act on (the model's do; to freeze one
    layer, zero its part of ``hidden_weight.grad`` with a hook on ``hidden_weight``);
    ``torch.nn.utils.prune`` needs a registered parameter, so use :mod:`pypaddle.prune`.
    Before the first backward ``layer.weight.grad`` is None, and torch warns that a
    non-leaf's ``.grad`` is read. Forward hooks on a layer run when the model takes the
    module path, which ``kernel="auto"`` does while any layer has one.
    """

    def __init__(
        self,
        owner: MaskedDeepDAN,
        in_features: int,
        out_features: int,
        weights: tuple[int, int],
        rows: tuple[int, int],
    ) -> None:
        nn.Module.__init__(self)
        self.in_features = in_features
        self.out_features = out_features
        # The owner is not registered as a submodule (it is this module's parent).
        object.__setattr__(self, "_owner", owner)
        self._weights = weights  # this layer's span of the packed weight (row-major block)
        self._rows = rows  # its span of the packed bias: its vertices

    # -- views --------------------------------------------------------------------------
    def _cut_weight(self, packed: torch.Tensor) -> torch.Tensor:
        start, end = self._weights
        return packed[start:end].view(self.out_features, self.in_features)

    def _cut_rows(self, packed: torch.Tensor) -> torch.Tensor:
        return packed[self._rows[0] : self._rows[1]]

    @staticmethod
    def _with_grad(view: torch.Tensor, packed: torch.Tensor, cut: Callable) -> torch.Tensor:
        if packed.grad is not None:
            view.grad = cut(packed.grad)
        return view

    @property
    def weight(self) -> torch.Tensor:  # type: ignore[override]
        packed = self._owner.hidden_weight
        return self._with_grad(self._cut_weight(packed), packed, self._cut_weight)

    @property
    def bias(self) -> torch.Tensor:  # type: ignore[override]
        packed = self._owner.hidden_bias
        return self._with_grad(self._cut_rows(packed), packed, self._cut_rows)

    @property
    def mask(self) -> torch.Tensor:  # type: ignore[override]
        return self._cut_weight(self._owner.hidden_mask)

    @property
    def bias_mask(self) -> torch.Tensor:  # type: ignore[override]
        return self._cut_rows(self._owner.hidden_bias_mask)

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
        packed = self._owner.packed_mask_values(f"hidden_{name}", dtype)
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
        if any(
            tuple(value.shape) != tuple(layer.named_tensor(name).shape)
            for value, layer in zip(values, layers)
        ):
            continue
        for key in keys:
            del state_dict[key]
        state_dict[prefix + packed] = torch.cat([value.reshape(-1) for value in values])
