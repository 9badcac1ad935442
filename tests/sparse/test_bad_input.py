"""Bad input to every public constructor and method of the masked layers and models.

Each case throws a value from the catalogues of ``tests/bad_values.py`` (and a few that only
make sense here) at one argument, and asserts the ``pypaddle.errors`` class the contract
names and that nothing changed: the module handed in (every parameter, buffer, grad, mode
and hook) and, for constructors, torch's random state (nothing was drawn before the check).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import networkx as nx
import numpy as np
import pytest
import torch
from torch import nn

from bad_values import NOT_COUNTS, NOT_FINITE_REALS, NOT_FRACTIONS, assert_unchanged, snapshot
from pypaddle.errors import ConfigError, InputTypeError, MaskError, StructureError
from pypaddle.sparse import (
    DeepCellDAN,
    MaskedConv1d,
    MaskedConv2d,
    MaskedConvNet,
    MaskedDeepFFN,
    MaskedDeepRNN,
    MaskedGRU,
    MaskedGRULayer,
    MaskedLinearLayer,
    MaskedLSTM,
    MaskedLSTMLayer,
    MaskedRecurrentLayer,
    MaskedRNN,
    conv_bn_relu_cell,
    maskable_layers,
    masked_vgg,
)
from pypaddle.util import build_layer_index, set_random_masks

NOT_SIZES = [*NOT_COUNTS, 0]  # sizes of layers are counts >= 1
NOT_FLAGS = [None, "yes", 1, 0, 0.0, [True], np.int64(1), object()]
NOT_THETAS = [*NOT_FINITE_REALS, -0.1, -1, np.float64(-1.0)]
NOT_TENSORS = [np.ones((2, 3), dtype=np.float32), [[1.0, 2.0, 3.0]], 3.0, None, "x"]
STRUCTURE = nx.DiGraph([("a", "b"), ("a", "c"), ("b", "c")])


def _ids(values: list[Any]) -> list[str]:
    return [f"{i}-{type(value).__name__}" for i, value in enumerate(values)]


# -- constructors ------------------------------------------------------------------------
def _constructor_cases() -> list[Any]:
    cases: list[Any] = []

    def add(name: str, build: Callable[[Any], Any], values: list[Any], error: type) -> None:
        cases.extend(
            [pytest.param(build, value, error, id=f"{name}-{i}") for i, value in enumerate(values)]
        )

    def without_length_one(values: list[Any]) -> list[Any]:
        # [3] and (3,) are valid sizes of a one-dimensional conv
        return [v for v in values if not (isinstance(v, (list, tuple)) and len(v) == 1)]

    add("linear-in", lambda v: MaskedLinearLayer(v, 2), NOT_SIZES, ConfigError)
    add("linear-out", lambda v: MaskedLinearLayer(3, v), NOT_SIZES, ConfigError)
    add("linear-bias", lambda v: MaskedLinearLayer(3, 2, bias=v), NOT_FLAGS, InputTypeError)
    add(
        "linear-dtype",
        lambda v: MaskedLinearLayer(3, 2, dtype=v),
        [torch.int64, torch.bool],
        ConfigError,
    )
    add(
        "linear-dtype-type",
        lambda v: MaskedLinearLayer(3, 2, dtype=v),
        ["float32", 3, np.float32],
        InputTypeError,
    )
    add(
        "linear-device",
        lambda v: MaskedLinearLayer(3, 2, device=v),
        ["gpu7", "cpu:x", -1],
        ConfigError,
    )
    add(
        "linear-device-type",
        lambda v: MaskedLinearLayer(3, 2, device=v),
        [1.5, [0], object()],
        InputTypeError,
    )
    for conv, dims in ((MaskedConv1d, 1), (MaskedConv2d, 2)):
        name = conv.__name__
        sizes = NOT_SIZES if dims == 2 else without_length_one(NOT_SIZES)
        add(f"{name}-in", lambda v, c=conv: c(v, 2, 3), NOT_SIZES, ConfigError)
        add(f"{name}-out", lambda v, c=conv: c(2, v, 3), NOT_SIZES, ConfigError)
        add(f"{name}-kernel", lambda v, c=conv: c(2, 2, v), sizes, ConfigError)
        add(
            f"{name}-kernel-dims",
            lambda v, c=conv: c(2, 2, v),
            [(3,) * (dims + 1), (*((3,) * (dims - 1)), 0)],
            ConfigError,
        )
        add(f"{name}-stride", lambda v, c=conv: c(2, 2, 3, stride=v), sizes, ConfigError)
        add(f"{name}-dilation", lambda v, c=conv: c(2, 2, 3, dilation=v), sizes, ConfigError)
        counts = NOT_COUNTS if dims == 2 else without_length_one(NOT_COUNTS)
        padding = [*counts, "full", "SAME", ""]
        add(f"{name}-padding", lambda v, c=conv: c(2, 2, 3, padding=v), padding, ConfigError)
        add(
            f"{name}-same-strided",
            lambda v, c=conv: c(2, 2, 3, padding="same", stride=v),
            [2, 3],
            ConfigError,
        )
        add(
            f"{name}-groups",
            lambda v, c=conv: c(4, 6, 3, groups=v),
            [*NOT_SIZES, 3, 4, 5],
            ConfigError,
        )
        add(
            f"{name}-padding-mode",
            lambda v, c=conv: c(2, 2, 3, padding_mode=v),
            ["mirror", "ZEROS", None, 3, ""],
            ConfigError,
        )
        add(f"{name}-bias", lambda v, c=conv: c(2, 2, 3, bias=v), NOT_FLAGS, InputTypeError)
    for rnn in (MaskedRNN, MaskedGRU, MaskedLSTM):
        name = rnn.__name__
        add(f"{name}-input", lambda v, r=rnn: r(v, 2), NOT_SIZES, ConfigError)
        add(f"{name}-hidden", lambda v, r=rnn: r(3, v), NOT_SIZES, ConfigError)
        add(f"{name}-layers", lambda v, r=rnn: r(3, 2, num_layers=v), NOT_SIZES, ConfigError)
        add(f"{name}-dropout", lambda v, r=rnn: r(3, 2, dropout=v), NOT_FRACTIONS, ConfigError)
        for flag in ("bias", "batch_first", "bidirectional"):
            add(
                f"{name}-{flag}",
                lambda v, r=rnn, f=flag: r(3, 2, **{f: v}),
                NOT_FLAGS,
                InputTypeError,
            )
        add(
            f"{name}-keyword",
            lambda v, r=rnn: r(3, 2, **{v: 1}),
            ["foo", "nonlinearty"],
            InputTypeError,
        )
        add(
            f"{name}-positional", lambda v, r=rnn: r(3, 2, 1, *([True] * 9)), [None], InputTypeError
        )
    add(
        "MaskedRNN-nonlinearity",
        lambda v: MaskedRNN(3, 2, nonlinearity=v),
        ["sigmoid", "TANH", None, 3, nn.ReLU()],
        ConfigError,
    )
    add("MaskedGRU-proj", lambda v: MaskedGRU(3, 2, proj_size=v), [1], InputTypeError)
    add(
        "MaskedLSTM-proj", lambda v: MaskedLSTM(3, 2, proj_size=v), [*NOT_COUNTS, 2, 5], ConfigError
    )
    add(
        "RecurrentLayer-nonlinearity",
        lambda v: MaskedRecurrentLayer(3, 2, nonlinearity=v),
        ["sigmoid", None, nn.Sigmoid(), 3],
        ConfigError,
    )
    add(
        "GRULayer-nonlinearity",
        lambda v: MaskedGRULayer(3, 2, nonlinearity=v),
        ["tanh", nn.Tanh()],
        ConfigError,
    )
    add("LSTMLayer-input", lambda v: MaskedLSTMLayer(v, 2), NOT_SIZES, ConfigError)
    add(
        "LSTMLayer-batch-first",
        lambda v: MaskedLSTMLayer(3, 2, batch_first=v),
        NOT_FLAGS,
        InputTypeError,
    )

    add(
        "ffn-input",
        lambda v: MaskedDeepFFN(v, 2, [4]),
        [v for v in NOT_SIZES if not isinstance(v, (list, tuple))],
        ConfigError,
    )
    add(
        "ffn-input-shape",
        lambda v: MaskedDeepFFN(v, 2, [4]),
        [(), (2, 0), (2, -1), [1.5], (True,)],
        ConfigError,
    )
    add("ffn-output", lambda v: MaskedDeepFFN(3, v, [4]), NOT_SIZES, ConfigError)
    add(
        "ffn-hidden",
        lambda v: MaskedDeepFFN(3, 2, v),
        [[], 4, None, [0], [1.5], [-1], "ab", [4, None], {"a": 1}],
        ConfigError,
    )
    add(
        "ffn-layer-norm",
        lambda v: MaskedDeepFFN(3, 2, [4], use_layer_norm=v),
        NOT_FLAGS,
        InputTypeError,
    )
    add(
        "ffn-activation",
        lambda v: MaskedDeepFFN(3, 2, [4], activation=v),
        [3, "relu", [nn.ReLU()]],
        InputTypeError,
    )

    def convnet(**changes: Any) -> MaskedConvNet:
        arguments = {"input_shape": (1, 8, 8), "num_classes": 3, "blocks": [4, "M"], **changes}
        return MaskedConvNet(**arguments)

    add(
        "convnet-shape",
        lambda v: convnet(input_shape=v),
        [None, 3, (1, 8), (1, 8, 8, 8), (1, 8, -1), (1, 8, 8.5), "abc", (0, 8, 8)],
        ConfigError,
    )
    add("convnet-classes", lambda v: convnet(num_classes=v), NOT_SIZES, ConfigError)
    add(
        "convnet-blocks",
        lambda v: convnet(blocks=v),
        [
            None,
            3,
            "M",
            [4, "X"],
            [0],
            [1.5],
            [-2],
            [True],
            ["M", "M", "M", "M"],
            [4, "M", 4, "M", 4, "M", 4, "M"],
        ],
        ConfigError,
    )
    add(
        "convnet-hidden",
        lambda v: convnet(hidden_layers=v),
        [None, 3, [0], [1.5], "ab"],
        ConfigError,
    )
    add("convnet-kernel", lambda v: convnet(kernel_size=v), NOT_SIZES, ConfigError)
    add("convnet-shrinks", lambda v: convnet(kernel_size=v, padding=0), [9, 10], ConfigError)
    add(
        "convnet-padding",
        lambda v: convnet(padding=v),
        [None, -1, 1.5, "valid", [1, 1], [], object()],
        ConfigError,
    )
    add("convnet-batch-norm", lambda v: convnet(batch_norm=v), NOT_FLAGS, InputTypeError)
    add("convnet-activation", lambda v: convnet(activation=v), [3, "relu"], InputTypeError)
    add(
        "vgg-depth",
        lambda v: masked_vgg(v, width=0.125),
        [10, 12, None, "11", [11], 11.5, True, -11],
        ConfigError,
    )
    add(
        "vgg-width",
        lambda v: masked_vgg(11, width=v),
        [*NOT_FINITE_REALS, 0, -1, -0.5],
        ConfigError,
    )

    add("deep-rnn-input", lambda v: MaskedDeepRNN(v, [4]), NOT_SIZES, ConfigError)
    add(
        "deep-rnn-hidden",
        lambda v: MaskedDeepRNN(3, v),
        [[], 4, None, [0], [1.5], "ab", [4, -1]],
        ConfigError,
    )
    add(
        "deep-rnn-builder",
        lambda v: MaskedDeepRNN(3, [4], build_recurrent_layer=v),
        [None, 3, "MaskedLSTMLayer"],
        InputTypeError,
    )
    add(
        "deep-rnn-batch-first",
        lambda v: MaskedDeepRNN(3, [4], batch_first=v),
        NOT_FLAGS,
        InputTypeError,
    )
    add(
        "deep-rnn-nonlinearity",
        lambda v: MaskedDeepRNN(3, [4], nonlinearity=v),
        ["sigmoid", 3],
        ConfigError,
    )

    def cells(**changes: Any) -> DeepCellDAN:
        arguments = {
            "num_classes": 3,
            "in_channels": 2,
            "cell_constructor": conv_bn_relu_cell,
            "structure": STRUCTURE,
            **changes,
        }
        return DeepCellDAN(**arguments)

    add("cells-classes", lambda v: cells(num_classes=v), NOT_SIZES, ConfigError)
    add("cells-channels", lambda v: cells(in_channels=v), NOT_SIZES, ConfigError)
    add("cells-output-channels", lambda v: cells(output_channels=v), NOT_SIZES, ConfigError)
    add("cells-constructor", lambda v: cells(cell_constructor=v), [None, 3, "conv"], InputTypeError)
    add(
        "cells-constructor-result",
        lambda v: cells(cell_constructor=lambda **_: v),
        [None, 3, torch.ones(1)],
        InputTypeError,
    )
    add(
        "cells-structure-type",
        lambda v: cells(structure=v),
        [None, "abc", 3, [("a", "b")]],
        InputTypeError,
    )
    add(
        "cells-structure",
        lambda v: cells(structure=v),
        [nx.Graph([(0, 1)]), nx.DiGraph(), nx.DiGraph([(0, 1), (1, 0)])],
        StructureError,
    )
    return cases


@pytest.mark.parametrize(("build", "value", "error"), _constructor_cases())
def test_constructors_refuse_bad_arguments(build, value, error):
    state = torch.get_rng_state()
    with pytest.raises(error):
        build(value)
    assert torch.equal(torch.get_rng_state(), state)  # refused before any weight was drawn


def test_constructor_messages_name_the_argument():
    for build, argument in [
        (lambda: MaskedLinearLayer(-1, 2), "in_features"),
        (lambda: MaskedConv2d(2, 2, 3, padding_mode="mirror"), "padding_mode"),
        (lambda: MaskedConv2d(4, 6, 3, groups=4), "groups"),
        (lambda: MaskedRNN(3, 2, nonlinearity="sigmoid"), "nonlinearity"),
        (lambda: MaskedLSTM(3, 2, dropout=math.nan), "dropout"),
        (lambda: MaskedGRU(3, 2.5), "hidden_size"),
        (lambda: MaskedLSTM(3, 2, proj_size=2), "proj_size"),
    ]:
        with pytest.raises((ConfigError, InputTypeError)) as info:
            build()
        assert argument in str(info.value)


# -- forward inputs ----------------------------------------------------------------------
def _layers() -> dict[str, Callable[[], nn.Module]]:
    return {
        "linear": lambda: MaskedLinearLayer(3, 2),
        "conv1d": lambda: MaskedConv1d(3, 2, 3),
        "conv2d": lambda: MaskedConv2d(3, 2, 3),
        "rnn": lambda: MaskedRNN(3, 2),
        "gru": lambda: MaskedGRU(3, 2, batch_first=True),
        "lstm": lambda: MaskedLSTM(3, 2, num_layers=2),
        "ffn": lambda: MaskedDeepFFN(3, 2, [4]),
        "convnet": lambda: MaskedConvNet((3, 6, 6), 2, [2, "M"], batch_norm=True),
        "deep-rnn": lambda: MaskedDeepRNN(3, [4, 2]),
        "cells": lambda: DeepCellDAN(2, 3, conv_bn_relu_cell, STRUCTURE, output_channels=4),
    }


WRONG_SHAPES = {
    "linear": [(4, 5), (4, 2), (5,), (), (2, 3, 4)],
    "conv1d": [(2, 4, 9), (9,), (2, 3, 2), (2, 2, 3, 9), (1, 1, 3, 9)],
    "conv2d": [(1, 4, 6, 6), (3, 6), (1, 3, 2, 6), (2, 1, 3, 6, 6), (1, 2, 6)],
    "rnn": [(5, 2, 4), (5,), (5, 2, 3, 1), (5, 2)],
    "gru": [(2, 5, 4), (5, 4)],
    "lstm": [(5, 2, 2), (5, 1, 2, 3)],
    "ffn": [(4, 5), (4,), (4, 2, 2)],
    "convnet": [(2, 3, 6), (2, 3, 5, 6), (2, 1, 6, 6), (2, 3, 6, 6, 1)],
    "deep-rnn": [(5, 2, 4), (5, 2, 3, 1)],
    "cells": [(2, 2, 8, 8), (2, 3, 8), (3, 8, 8)],
}


@pytest.mark.parametrize(
    ("kind", "shape"),
    [(kind, shape) for kind, shapes in WRONG_SHAPES.items() for shape in shapes],
)
def test_forward_refuses_inputs_of_the_wrong_shape(kind, shape):
    module = _layers()[kind]()
    before = snapshot(module)
    with pytest.raises(ConfigError) as info:
        module(torch.ones(shape))
    assert str(tuple(shape)) in str(info.value)
    assert_unchanged(before, module)


@pytest.mark.parametrize("value", NOT_TENSORS, ids=_ids(NOT_TENSORS))
@pytest.mark.parametrize("kind", list(_layers()))
def test_forward_refuses_what_is_not_a_tensor(kind, value):
    module = _layers()[kind]()
    before = snapshot(module)
    with pytest.raises(InputTypeError) as info:
        module(value)
    assert "torch.as_tensor" in str(info.value)
    assert_unchanged(before, module)


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, torch.complex64])
@pytest.mark.parametrize("kind", ["linear", "conv1d", "conv2d", "rnn", "gru", "lstm", "ffn"])
def test_forward_refuses_non_float_tensors(kind, dtype):
    module = _layers()[kind]()
    shape = {"linear": (2, 3), "conv1d": (2, 3, 5), "conv2d": (1, 3, 5, 5), "ffn": (2, 3)}
    before = snapshot(module)
    with pytest.raises(InputTypeError):
        module(torch.ones(shape.get(kind, (5, 2, 3)), dtype=dtype))
    assert_unchanged(before, module)


def test_wrong_width_message_names_expected_and_given():
    with pytest.raises(ConfigError) as info:
        MaskedLinearLayer(3, 2)(torch.ones(4, 5))
    assert "3" in str(info.value)
    assert "(4, 5)" in str(info.value)


# -- methods ---------------------------------------------------------------------------
def _pruned_linear() -> MaskedLinearLayer:
    torch.manual_seed(0)
    layer = MaskedLinearLayer(4, 3)
    layer.mask[0, 1] = False
    layer(torch.randn(2, 4)).sum().backward()  # a gradient to keep
    return layer


def _any_module(kind: str) -> nn.Module:
    torch.manual_seed(0)
    return {
        "linear": _pruned_linear,
        "conv": lambda: MaskedConv2d(4, 6, 3, groups=2),
        "lstm": lambda: MaskedLSTM(3, 2, num_layers=2),
        "ffn": lambda: MaskedDeepFFN(3, 2, [4]),
        "deep-rnn": lambda: MaskedDeepRNN(3, [4]),
        "convnet": lambda: MaskedConvNet((1, 6, 6), 2, [2, "M"]),
        "cells": lambda: DeepCellDAN(2, 3, conv_bn_relu_cell, STRUCTURE, output_channels=4),
    }[kind]()


METHOD_KINDS = ["linear", "conv", "lstm", "ffn", "deep-rnn", "convnet", "cells"]
BAD_INDICES_TYPE = [[1.5], [math.nan], "a", None, object(), torch.tensor([0.5]), [[0, "x"]]]
BAD_INDICES_RANGE = [[3], [-4], [0, 7], torch.tensor([True, False]), np.array([10])]


def _method_cases() -> list[Any]:
    cases: list[Any] = []

    def add(name: str, kind: str, call: Callable, values: list[Any], error: Any) -> None:
        cases.extend(
            [
                pytest.param(kind, call, value, error, id=f"{name}-{i}")
                for i, value in enumerate(values)
            ]
        )

    for kind in METHOD_KINDS:
        add(f"{kind}-recompute", kind, lambda m, v: m.recompute_mask(v), NOT_THETAS, ConfigError)
        add(
            f"{kind}-set-random-density",
            kind,
            lambda m, v: m.apply(lambda x: set_random_masks(x, density=v)),
            NOT_FRACTIONS,
            _density_error,
        )
    for kind in ("linear", "conv", "lstm"):
        add(
            f"{kind}-reset",
            kind,
            lambda m, v: m.reset_parameters(keep_mask=v),
            NOT_FLAGS,
            InputTypeError,
        )
        add(
            f"{kind}-get-mask-type",
            kind,
            lambda m, v: m.get_mask(v),
            [None, 3, ["weight"], b"weight"],
            InputTypeError,
        )
        add(
            f"{kind}-get-mask-name",
            kind,
            lambda m, v: m.get_mask(v),
            ["bias", "wieght", ""],
            MaskError,
        )
        add(
            f"{kind}-set-mask-name",
            kind,
            lambda m, v: m.set_mask(torch.ones(1), v),
            [None, 3],
            InputTypeError,
        )
        add(
            f"{kind}-random-generator",
            kind,
            lambda m, v: set_random_masks(m, generator=v),
            [0, "seed", np.random.default_rng(0)],
            InputTypeError,
        )
    bad_masks = [
        torch.full((3, 4), 0.5),
        torch.full((3, 4), math.nan),
        torch.full((3, 4), 7.0),
        torch.ones(4, 3, dtype=torch.bool),
        torch.ones(3, 4, 1, dtype=torch.bool),
        np.ones((3, 5)),
        [[1, 0]],
        None,
        "mask",
        3,
        object(),
        torch.ones(3, 4, dtype=torch.complex64),
    ]
    add("linear-set-mask", "linear", lambda m, v: m.set_mask(v), bad_masks, MaskError)
    add("linear-assign-mask", "linear", lambda m, v: setattr(m, "mask", v), bad_masks, MaskError)
    add(
        "linear-assign-bias-mask",
        "linear",
        lambda m, v: setattr(m, "bias_mask", v),
        [[1, 0], [0.5, 1, 1], None, "x"],
        MaskError,
    )
    add(
        "linear-prune-neurons-type",
        "linear",
        lambda m, v: m.prune_neurons(v),
        BAD_INDICES_TYPE,
        InputTypeError,
    )
    add(
        "linear-prune-neurons-range",
        "linear",
        lambda m, v: m.prune_neurons(v),
        BAD_INDICES_RANGE,
        MaskError,
    )
    add(
        "linear-prune-inputs-type",
        "linear",
        lambda m, v: m.prune_inputs(v),
        BAD_INDICES_TYPE,
        InputTypeError,
    )
    add(
        "linear-prune-inputs-range",
        "linear",
        lambda m, v: m.prune_inputs(v),
        [[4], [-5], np.array([9])],
        MaskError,
    )
    add(
        "conv-prune-outputs-type",
        "conv",
        lambda m, v: m.prune_output_channels(v),
        BAD_INDICES_TYPE,
        InputTypeError,
    )
    add(
        "conv-prune-outputs-range",
        "conv",
        lambda m, v: m.prune_output_channels(v),
        [[6], [-7], [0, 9]],
        MaskError,
    )
    add(
        "conv-prune-inputs-type",
        "conv",
        lambda m, v: m.prune_input_channels(v),
        BAD_INDICES_TYPE,
        InputTypeError,
    )
    add(
        "conv-prune-inputs-range",
        "conv",
        lambda m, v: m.prune_input_channels(v),
        [[4], [-5]],
        MaskError,
    )
    add(
        "conv-prune-kernels",
        "conv",
        lambda m, v: m.prune_kernels(*v),
        [([0], [3]), ([0, 1], [0]), ([9], [0]), ([0], [9])],
        MaskError,
    )
    add(
        "conv-prune-kernels-type",
        "conv",
        lambda m, v: m.prune_kernels(*v),
        [([0.5], [0]), (None, [0])],
        InputTypeError,
    )
    add(
        "conv-connectivity",
        "conv",
        lambda m, v: m.set_channel_connectivity(v),
        [torch.ones(6, 4, dtype=torch.bool), torch.ones(4, 6), torch.full((6, 4), 0.5), None],
        MaskError,
    )
    add(
        "lstm-gate-weight",
        "lstm",
        lambda m, v: m.gate_mask(v, 0),
        ["weight_ih_l9", None, 3, ["weight_ih_l0"]],
        ConfigError,
    )
    add(
        "lstm-gate",
        "lstm",
        lambda m, v: m.gate_mask("weight_ih_l0", v),
        ["gate", 4, -1, 1.5, True, None, math.nan],
        ConfigError,
    )
    add(
        "lstm-set-mask",
        "lstm",
        lambda m, v: m.set_mask(v, "weight_hh_l1"),
        [torch.ones(8, 3), torch.full((8, 2), 0.5), None],
        MaskError,
    )
    add(
        "cells-prune-edges-type",
        "cells",
        lambda m, v: m.prune_edges(v),
        [None, 3, "ab", [("a",)], [("a", "b", "c")], [3]],
        InputTypeError,
    )
    add(
        "cells-prune-edges",
        "cells",
        lambda m, v: m.prune_edges(v),
        [[("b", "a")], [("a", "z")], [("a", "b"), ("c", "a")]],
        StructureError,
    )
    add("cells-cell", "cells", lambda m, v: m.cell(v), ["z", None, ["a"]], StructureError)
    return cases


def _density_error(value: Any) -> type:
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return ConfigError
    return InputTypeError


@pytest.mark.parametrize(("kind", "call", "value", "error"), _method_cases())
def test_methods_refuse_bad_arguments_and_change_nothing(kind, call, value, error):
    module = _any_module(kind)
    if not isinstance(error, type):
        error = error(value)
    before = snapshot(module)
    with pytest.raises(error):
        call(module, value)
    assert_unchanged(before, module)


@pytest.mark.parametrize(
    "value",
    [None, 3, "model", object(), [nn.Linear(1, 1)]],
    ids=_ids([None, 3, "model", object(), [1]]),
)
def test_module_functions_refuse_what_is_not_a_module(value):
    with pytest.raises(InputTypeError):
        maskable_layers(value)
    with pytest.raises(InputTypeError):
        set_random_masks(value)


@pytest.mark.parametrize(
    ("graph", "error"),
    [
        (None, InputTypeError),
        ("abc", InputTypeError),
        (3, InputTypeError),
        (nx.Graph([(0, 1)]), StructureError),
        (nx.DiGraph([(0, 1), (1, 0)]), StructureError),
    ],
)
def test_build_layer_index_refuses_bad_graphs(graph, error):
    with pytest.raises(error):
        build_layer_index(graph)


@pytest.mark.parametrize(
    "value", [[], "x", 3, (1, 2), object()], ids=_ids([[], "x", 3, (1, 2), object()])
)
def test_build_layer_index_refuses_a_bad_index_argument(value):
    graph = nx.DiGraph([(0, 1)])
    before = snapshot(graph)
    with pytest.raises(InputTypeError):
        build_layer_index(graph, value)
    assert_unchanged(before, graph)


def test_set_random_masks_leaves_every_layer_unchanged_on_a_bad_density():
    model = MaskedDeepFFN(3, 2, [4])
    before = snapshot(model)
    for layer in maskable_layers(model):
        with pytest.raises(ConfigError):
            set_random_masks(layer, density=math.nan)
    assert_unchanged(before, model)
