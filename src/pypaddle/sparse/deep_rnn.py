"""The recurrent names of the original pypaddle API, on top of the torch drop-ins.

``MaskedRecurrentLayer``, ``MaskedGRULayer`` and ``MaskedLSTMLayer`` are one-layer
:class:`~pypaddle.sparse.MaskedRNN` / ``MaskedGRU`` / ``MaskedLSTM`` with the old
constructor order and ``unfold``; ``MaskedDeepRNN`` stacks them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Any

import torch
from torch import nn

from pypaddle.errors import ConfigError, InputTypeError
from pypaddle.sparse._arguments import check_flag
from pypaddle.sparse._common import MaskedModel, check_size
from pypaddle.sparse.recurrent import MaskedGRU, MaskedLSTM, MaskedRNN

__all__ = ["MaskedDeepRNN", "MaskedGRULayer", "MaskedLSTMLayer", "MaskedRecurrentLayer"]


def _nonlinearity_name(nonlinearity: Any) -> str:
    """``"tanh"`` or ``"relu"`` from a name, an ``nn.Tanh``/``nn.ReLU`` (class or instance)."""
    if isinstance(nonlinearity, str) and nonlinearity in ("tanh", "relu"):
        return nonlinearity
    kind = nonlinearity if isinstance(nonlinearity, type) else type(nonlinearity)
    if kind is nn.Tanh or nonlinearity is torch.tanh:
        return "tanh"
    if kind is nn.ReLU or nonlinearity is torch.relu:
        return "relu"
    raise ConfigError(
        f"a masked RNN runs torch's fused kernel, which supports tanh and relu only; got "
        f"nonlinearity={nonlinearity!r}; give 'tanh', 'relu', nn.Tanh() or nn.ReLU()"
    )


class _OldLayerAPI:
    """``unfold`` and the mask setters of the original single-layer recurrent modules."""

    weight_ih_l0_mask: torch.Tensor
    weight_hh_l0_mask: torch.Tensor

    def unfold(self, input: torch.Tensor, hx: Any = None) -> torch.Tensor:
        """The hidden state after every step, ``[seq, batch, hidden]`` (batch first if set).

        ``hx`` may be given as ``[batch, hidden]`` (the old API's shape) or as torch's
        ``[1, batch, hidden]``.
        """
        if hx is not None:
            hx = tuple(_layer_state(h) for h in hx) if isinstance(hx, tuple) else _layer_state(hx)
        return self(input, hx)[0]  # type: ignore[operator]

    def set_i2h_mask(self, mask: Any) -> None:
        self.weight_ih_l0_mask = mask

    def set_h2h_mask(self, mask: Any) -> None:
        self.weight_hh_l0_mask = mask


def _layer_state(state: torch.Tensor) -> torch.Tensor:
    return state.unsqueeze(0) if state.dim() == 2 else state


class MaskedRecurrentLayer(_OldLayerAPI, MaskedRNN):
    """One masked Elman RNN layer, under its name in the original API.

    ``MaskedRecurrentLayer(input_size, hidden_size, batch_first=False, nonlinearity="tanh")``
    is ``MaskedRNN(input_size, hidden_size, nonlinearity=..., batch_first=...)``: its
    ``forward`` runs a whole sequence, as torch's does; ``unfold(input, hx)`` returns
    every hidden state, as the old layer did.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        batch_first: bool = False,
        nonlinearity: Any = "tanh",
        **kwargs: Any,
    ) -> None:
        super().__init__(
            input_size,
            hidden_size,
            nonlinearity=_nonlinearity_name(nonlinearity),
            batch_first=batch_first,
            **kwargs,
        )


class _FixedGateLayer(_OldLayerAPI):
    """The old constructor of the gated layers, which take no nonlinearity."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        batch_first: bool = False,
        nonlinearity: Any = None,
        **kwargs: Any,
    ) -> None:
        if nonlinearity is not None:
            raise ConfigError(
                f"a {type(self).__name__} has fixed gate nonlinearities; got nonlinearity="
                f"{nonlinearity!r}, leave it out (or use MaskedRecurrentLayer for tanh/relu)"
            )
        super().__init__(input_size, hidden_size, batch_first=batch_first, **kwargs)  # type: ignore[call-arg]


class MaskedGRULayer(_FixedGateLayer, MaskedGRU):
    """One masked GRU layer, under its name in the original API (see MaskedRecurrentLayer)."""


class MaskedLSTMLayer(_FixedGateLayer, MaskedLSTM):
    """One masked LSTM layer, under its name in the original API (see MaskedRecurrentLayer)."""


class MaskedDeepRNN(MaskedModel):
    """A stack of masked recurrent layers of the given widths; returns the last step.

    ``build_recurrent_layer(input_size, hidden_size, batch_first=..., **options)`` makes
    each layer (:class:`MaskedRecurrentLayer`, :class:`MaskedGRULayer`,
    :class:`MaskedLSTMLayer` or anything with torch's recurrent ``forward``);
    ``nonlinearity``, if given, is passed on to it. The output is the last layer's hidden
    state after the last step, ``[batch, hidden_layers[-1]]``.

    Examples
    --------
    >>> import torch
    >>> model = MaskedDeepRNN(3, [8, 4], build_recurrent_layer=MaskedLSTMLayer, batch_first=True)
    >>> model(torch.randn(2, 10, 3)).shape
    torch.Size([2, 4])
    """

    def __init__(
        self,
        input_size: int,
        hidden_layers: list[int],
        *,
        build_recurrent_layer: Callable[..., nn.Module] = MaskedRecurrentLayer,
        nonlinearity: Any = None,
        batch_first: bool = False,
    ) -> None:
        super().__init__()
        self.input_size = check_size(input_size, "input_size")
        if (
            not isinstance(hidden_layers, Sequence)
            or isinstance(hidden_layers, (str, bytes))
            or len(hidden_layers) == 0
        ):
            raise ConfigError(
                f"hidden_layers must be a non-empty list of layer widths, got {hidden_layers!r}"
            )
        self.hidden_layers = [check_size(size, "every hidden layer size") for size in hidden_layers]
        self.batch_first = check_flag(batch_first, "batch_first")
        if not callable(build_recurrent_layer):
            raise InputTypeError(
                "build_recurrent_layer must be callable (e.g. MaskedLSTMLayer), got "
                f"{build_recurrent_layer!r}"
            )
        options = {} if nonlinearity is None else {"nonlinearity": nonlinearity}
        sizes = [self.input_size, *self.hidden_layers]
        self.recurrent_layers = nn.ModuleList(
            build_recurrent_layer(size_in, size_out, batch_first=self.batch_first, **options)
            for size_in, size_out in pairwise(sizes)
        )

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        for layer in self.recurrent_layers:
            input = layer(input)[0]
        return input[:, -1] if self.batch_first else input[-1]
