"""Masked recurrent nets: drop-ins for ``torch.nn.RNN/GRU/LSTM`` with a mask per weight matrix.

Every weight matrix ``weight_ih_l{k}``, ``weight_hh_l{k}`` (and ``weight_hr_l{k}`` of a
projected LSTM, ``_reverse`` for the backward direction) has a bool buffer of its shape
named ``<weight>_mask``. Gates are views of those masks: rows ``g * hidden_size`` to
``(g + 1) * hidden_size`` of the gate matrices, in torch's gate order.

How the forward pass runs: with every mask full it *is* torch's forward (the same fused
kernel, cuDNN-flattened weights on a GPU). With a partial mask it calls the same fused ATen
kernel (``torch.lstm``, ``torch.gru``, ``torch.rnn_tanh``, ``torch.rnn_relu``) with the
masked weights ``weight * mask`` in place of the parameters, so the sequence loop stays in
C++ and masked weights get zero gradient.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from pypaddle._core.checks import check_count, check_probability
from pypaddle.errors import ConfigError, InputTypeError
from pypaddle.sparse._arguments import (
    bind_arguments,
    check_device,
    check_dtype,
    check_flag,
    check_tensor_input,
)
from pypaddle.sparse.masked import MaskableModule, mask_is_full

__all__ = ["MaskedGRU", "MaskedLSTM", "MaskedRNN"]

_GATES = {
    "RNN_TANH": ("hidden",),
    "RNN_RELU": ("hidden",),
    "GRU": ("reset", "update", "new"),
    "LSTM": ("input", "forget", "cell", "output"),
}
_KERNELS: dict[str, Callable[..., Any]] = {
    "RNN_TANH": torch.rnn_tanh,
    "RNN_RELU": torch.rnn_relu,
    "GRU": torch.gru,
    "LSTM": torch.lstm,
}


def _rnn_parameters(
    input_size: int,
    hidden_size: int,
    num_layers: int = 1,
    nonlinearity: str = "tanh",
    bias: bool = True,
    batch_first: bool = False,
    dropout: float = 0.0,
    bidirectional: bool = False,
    device: Any = None,
    dtype: Any = None,
) -> None:
    """torch.nn.RNN's parameters, in its order (for binding and checking arguments)."""


def _gru_parameters(
    input_size: int,
    hidden_size: int,
    num_layers: int = 1,
    bias: bool = True,
    batch_first: bool = False,
    dropout: float = 0.0,
    bidirectional: bool = False,
    device: Any = None,
    dtype: Any = None,
) -> None:
    """torch.nn.GRU's parameters, in its order."""


def _lstm_parameters(
    input_size: int,
    hidden_size: int,
    num_layers: int = 1,
    bias: bool = True,
    batch_first: bool = False,
    dropout: float = 0.0,
    bidirectional: bool = False,
    proj_size: int = 0,
    device: Any = None,
    dtype: Any = None,
) -> None:
    """torch.nn.LSTM's parameters, in its order."""


def _checked_arguments(
    parameters: Callable[..., None], owner: str, args: tuple, kwargs: dict
) -> dict[str, Any]:
    """The constructor arguments of a masked recurrent net, checked, as keywords."""
    arguments = bind_arguments(parameters, owner, args, kwargs)
    arguments["input_size"] = check_count(arguments["input_size"], "input_size", 1)
    hidden_size = check_count(arguments["hidden_size"], "hidden_size", 1)
    arguments["hidden_size"] = hidden_size
    arguments["num_layers"] = check_count(arguments["num_layers"], "num_layers", 1)
    for flag in ("bias", "batch_first", "bidirectional"):
        arguments[flag] = check_flag(arguments[flag], flag)
    arguments["dropout"] = check_probability(arguments["dropout"], "dropout")
    if "nonlinearity" in arguments and arguments["nonlinearity"] not in ("tanh", "relu"):
        raise ConfigError(
            f"nonlinearity must be 'tanh' or 'relu' (torch's fused kernels have no other), "
            f"got {arguments['nonlinearity']!r}"
        )
    if "proj_size" in arguments:
        proj_size = check_count(arguments["proj_size"], "proj_size", 0)
        if proj_size >= hidden_size:
            raise ConfigError(
                f"proj_size must be smaller than hidden_size ({hidden_size}), got {proj_size}; "
                "0 means no projection"
            )
        arguments["proj_size"] = proj_size
    check_device(arguments["device"])
    check_dtype(arguments["dtype"])
    return arguments


class _MaskedRNNBase(MaskableModule):
    """Masks, gate views and the masked forward shared by MaskedRNN, MaskedGRU, MaskedLSTM."""

    mode: str
    input_size: int
    hidden_size: int
    num_layers: int
    bias: bool
    batch_first: bool
    dropout: float
    bidirectional: bool
    proj_size: int
    _flat_weights_names: list[str]
    # torch.nn.RNNBase's methods, which the masked forward calls.
    permute_hidden: Callable[..., Any]
    check_forward_args: Callable[..., None]

    def _register_masks(self) -> None:
        for name in self._weight_names():
            weight = self.tensor(name)
            self.register_buffer(f"{name}_mask", torch.ones_like(weight, dtype=torch.bool))

    def _weight_names(self) -> list[str]:
        return [name for name in self._flat_weights_names if name.startswith("weight_")]

    def masked_parameters(self) -> tuple[tuple[str, str], ...]:
        """``(weight name, mask name)`` for every weight matrix, e.g.
        ``("weight_ih_l0", "weight_ih_l0_mask")``; biases are not masked."""
        return tuple((name, f"{name}_mask") for name in self._weight_names())

    # -- gates: views of the masks ------------------------------------------------------
    @property
    def gate_names(self) -> tuple[str, ...]:
        """The gates of this cell in torch's row order (LSTM: input, forget, cell, output)."""
        return _GATES[self.mode]

    def gate_mask(self, weight: str, gate: str | int) -> torch.Tensor:
        """The rows of ``<weight>_mask`` that feed ``gate``: a view, so edits take effect.

        ``weight`` is a parameter name such as ``"weight_hh_l1_reverse"``; ``gate`` a name
        from :attr:`gate_names` or its position.

        Examples
        --------
        >>> lstm = MaskedLSTM(3, 2)
        >>> lstm.gate_mask("weight_hh_l0", "forget").fill_(False).shape
        torch.Size([2, 2])
        >>> lstm.weight_hh_l0_mask[:, 0].tolist()
        [True, True, False, False, True, True, True, True]
        """
        names = {name for name, _ in self.masked_parameters()}
        if not isinstance(weight, str) or weight not in names or weight.startswith("weight_hr"):
            gated = sorted(name for name in names if not name.startswith("weight_hr"))
            raise ConfigError(f"{weight!r} is not a gate weight of this module; use one of {gated}")
        if isinstance(gate, str):
            if gate not in self.gate_names:
                raise ConfigError(f"unknown gate {gate!r}; this module has {self.gate_names}")
            index = self.gate_names.index(gate)
        else:
            if isinstance(gate, bool) or not isinstance(gate, numbers.Integral):
                raise ConfigError(
                    f"gate must be a gate name {self.gate_names} or its position (an int), "
                    f"got {gate!r}"
                )
            index = int(gate)
            if not 0 <= index < len(self.gate_names):
                raise ConfigError(
                    f"gate index {gate} out of range; this module has {len(self.gate_names)} "
                    f"gates {self.gate_names}"
                )
        mask = self.tensor(f"{weight}_mask")
        return mask[index * self.hidden_size : (index + 1) * self.hidden_size]

    # -- forward ------------------------------------------------------------------------
    def _masked_flat_weights(self) -> list[torch.Tensor] | None:
        """The weights in torch's flat order, masked; None if every mask is full.

        The masks are read at every call (nothing cached), so an edit by any path is seen.
        """
        if self._masks_full():
            return None
        weights = []
        for name in self._flat_weights_names:
            parameter = self.tensor(name)
            values = None
            if name.startswith("weight_"):
                values = self.mask_values(f"{name}_mask", parameter.dtype)
            weights.append(parameter if values is None else parameter * values)
        return weights

    def _masks_full(self) -> bool:
        """Whether every mask is all True: on the CPU mask by mask, elsewhere with one
        device synchronisation, so that full masks run torch's own (cuDNN) forward."""
        masks = [self.tensor(mask) for _, mask in self.masked_parameters()]
        if torch.jit.is_tracing() or torch.compiler.is_compiling():
            return False
        if all(mask.device.type == "cpu" for mask in masks):
            return all(mask_is_full(mask) for mask in masks)
        return bool(torch.stack([mask.all() for mask in masks]).all())

    def forward(self, input: Any, hx: Any = None) -> tuple[Any, Any]:
        dtype = self.tensor(self._flat_weights_names[0]).dtype
        input = self._checked_input(input, dtype)
        weights = self._masked_flat_weights()
        if weights is None:
            return super().forward(input, hx)
        return self._forward_with(weights, input, hx)

    def _checked_input(self, input: Any, dtype: torch.dtype) -> Any:
        """A floating-point input (tensor or packed sequence) of the right width, in ``dtype``."""
        name = type(self).__name__
        data = input.data if isinstance(input, PackedSequence) else input
        check_tensor_input(data, name)
        if not data.is_floating_point():
            raise InputTypeError(
                f"{name} takes floating-point input, got {data.dtype}; convert it first, "
                f"e.g. input.to({dtype})"
            )
        packed = isinstance(input, PackedSequence)
        if (not packed and data.dim() not in (2, 3)) or data.shape[-1] != self.input_size:
            order = "[batch, sequence" if self.batch_first else "[sequence, batch"
            raise ConfigError(
                f"{name} with input_size={self.input_size} takes a 2-D or 3-D input, "
                f"{order}, {self.input_size}] (or [sequence, {self.input_size}] unbatched), "
                f"got an input of shape {tuple(data.shape)}"
            )
        return input if data.dtype == dtype else input.to(dtype)

    def _forward_with(self, weights: list[torch.Tensor], input: Any, hx: Any) -> tuple[Any, Any]:
        """torch's forward (input forms, hidden state checks) with ``weights`` as parameters."""
        is_lstm = self.mode == "LSTM"
        packed = isinstance(input, PackedSequence)
        batched = True
        batch_dim = 0 if self.batch_first else 1
        if packed:
            data, batch_sizes, sorted_indices, unsorted_indices = input
            batch = int(batch_sizes[0])
        else:
            batched = input.dim() == 3
            data = input if batched else input.unsqueeze(batch_dim)
            batch_sizes = sorted_indices = unsorted_indices = None
            batch = data.size(batch_dim)
        if hx is None:
            hx = self._zero_state(batch, data)
        else:
            states = hx if is_lstm else (hx,)
            wanted = 3 if batched else 2
            if any(state.dim() != wanted for state in states):
                raise RuntimeError(
                    f"for a {'batched 3' if batched else 'unbatched 2'}-D input the hidden "
                    f"state must be {wanted}-D, got {[state.dim() for state in states]}-D"
                )
            if not batched:
                states = tuple(state.unsqueeze(1) for state in states)
            hx = states if is_lstm else states[0]
            hx = self.permute_hidden(hx, sorted_indices)
        self.check_forward_args(data, hx, batch_sizes)
        options = (self.bias, self.num_layers, float(self.dropout), self.training)
        kernel = _KERNELS[self.mode]
        if batch_sizes is None:
            result = kernel(data, hx, weights, *options, self.bidirectional, self.batch_first)
        else:
            result = kernel(data, batch_sizes, hx, weights, *options, self.bidirectional)
        output = result[0]
        hidden: Any = (result[1], result[2]) if is_lstm else result[1]
        if packed:
            output = PackedSequence(output, batch_sizes, sorted_indices, unsorted_indices)
        elif not batched:
            output = output.squeeze(batch_dim)
            hidden = tuple(h.squeeze(1) for h in hidden) if is_lstm else hidden.squeeze(1)
        return output, self.permute_hidden(hidden, unsorted_indices)

    def _zero_state(self, batch: int, data: torch.Tensor) -> Any:
        directions = 2 if self.bidirectional else 1
        output_size = self.proj_size if self.proj_size > 0 else self.hidden_size
        shape = (self.num_layers * directions, batch)
        hidden = data.new_zeros(*shape, output_size)
        if self.mode == "LSTM":
            return hidden, data.new_zeros(*shape, self.hidden_size)
        return hidden

    def reset_parameters(self, keep_mask: bool = False) -> None:
        """torch's initialisation; the masks are reset to all True unless ``keep_mask``."""
        keep_mask = check_flag(keep_mask, "keep_mask")
        super().reset_parameters()  # type: ignore[misc]
        if not keep_mask and "_buffers" in self.__dict__:
            with torch.no_grad():
                for _, mask in self.masked_parameters():
                    buffer = self.named_tensor(mask)
                    if buffer is not None:
                        buffer.fill_(True)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, density={self.density:.4g}"


class MaskedRNN(_MaskedRNNBase, nn.RNN):
    """``torch.nn.RNN`` with a bool mask per weight matrix.

    The same constructor (``nonlinearity``, ``num_layers``, ``bias``, ``batch_first``,
    ``dropout``, ``bidirectional``), the same parameter names, so an ``nn.RNN``'s
    ``state_dict`` loads with ``strict=False``, and with full masks the same output.

    Examples
    --------
    >>> import torch
    >>> rnn = MaskedRNN(4, 3, num_layers=2, batch_first=True)
    >>> rnn.weight_hh_l1_mask.fill_(False).shape    # no recurrence in layer 1
    torch.Size([3, 3])
    >>> output, hidden = rnn(torch.randn(5, 7, 4))
    >>> output.shape, hidden.shape
    (torch.Size([5, 7, 3]), torch.Size([2, 5, 3]))
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(**_checked_arguments(_rnn_parameters, "MaskedRNN", args, kwargs))
        self._register_masks()


class MaskedGRU(_MaskedRNNBase, nn.GRU):
    """``torch.nn.GRU`` with a bool mask per weight matrix; gates reset, update, new.

    A drop-in for ``nn.GRU`` like :class:`MaskedRNN`; see :meth:`gate_mask` for gate views.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(**_checked_arguments(_gru_parameters, "MaskedGRU", args, kwargs))
        self._register_masks()


class MaskedLSTM(_MaskedRNNBase, nn.LSTM):
    """``torch.nn.LSTM`` with a bool mask per weight matrix; gates input, forget, cell, output.

    A drop-in for ``nn.LSTM`` (``proj_size`` too: ``weight_hr_l{k}`` has a mask like the
    others) like :class:`MaskedRNN`; see :meth:`gate_mask` for gate views.

    Examples
    --------
    >>> import torch
    >>> lstm = MaskedLSTM(4, 3, num_layers=2, bidirectional=True)
    >>> lstm.weight_ih_l1_reverse_mask.shape
    torch.Size([12, 6])
    >>> output, (hidden, cell) = lstm(torch.randn(7, 5, 4))
    >>> output.shape, hidden.shape
    (torch.Size([7, 5, 6]), torch.Size([4, 5, 3]))
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(**_checked_arguments(_lstm_parameters, "MaskedLSTM", args, kwargs))
        self._register_masks()
