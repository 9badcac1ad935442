"""Issue 15: the models' constructor arguments follow one naming scheme.

What comes in is ``input_shape`` (``in_channels`` for DeepCellDAN, whose images may have any
size; ``input_size`` for MaskedDeepRNN, as torch's recurrent layers), what goes out is
``num_classes``, the structure argument follows; options are keyword-only. The old keyword
names keep working with a DeprecationWarning, and the old attribute names stay readable.
"""

from __future__ import annotations

import inspect
import warnings

import networkx as nx
import pytest
import torch

from pypaddle.errors import InputTypeError
from pypaddle.sparse import (
    DeepCellDAN,
    MaskedConvNet,
    MaskedDeepDAN,
    MaskedDeepFFN,
    MaskedDeepRNN,
    conv_bn_relu_cell,
)
from pypaddle.sparse._common import renamed_keywords

STRUCTURE = nx.DiGraph([(0, 1), (0, 2), (1, 2)])

SCHEME = [
    (MaskedDeepFFN, ["input_shape", "num_classes", "hidden_layers"]),
    (MaskedDeepDAN, ["input_shape", "num_classes", "structure"]),
    (MaskedConvNet, ["input_shape", "num_classes", "blocks"]),
    (DeepCellDAN, ["num_classes", "in_channels", "cell_constructor", "structure"]),
    (MaskedDeepRNN, ["input_size", "hidden_layers"]),
]


@pytest.mark.parametrize(("model", "positional"), SCHEME, ids=lambda x: getattr(x, "__name__", ""))
def test_signature_follows_the_scheme(model, positional):
    parameters = list(inspect.signature(model).parameters.values())
    names = [p.name for p in parameters if p.kind is p.POSITIONAL_OR_KEYWORD]
    assert names == positional
    # Everything after the positional ones is an option, keyword-only.
    assert all(p.kind is p.KEYWORD_ONLY for p in parameters[len(positional) :])


def ffn(**arguments):
    torch.manual_seed(0)
    return MaskedDeepFFN(hidden_layers=[3], **arguments)


def dan(**arguments):
    torch.manual_seed(0)
    return MaskedDeepDAN(structure=STRUCTURE, **arguments)


def cells(**arguments):
    torch.manual_seed(0)
    return DeepCellDAN(
        cell_constructor=conv_bn_relu_cell, structure=STRUCTURE, output_channels=4, **arguments
    )


RENAMED = [
    (ffn, "size_input", "input_shape", {"num_classes": 2}, (1, 2, 2)),
    (ffn, "size_output", "num_classes", {"input_shape": 4}, 2),
    (dan, "size_input", "input_shape", {"num_classes": 2}, 4),
    (dan, "size_output", "num_classes", {"input_shape": 4}, 2),
    (cells, "input_channel_size", "in_channels", {"num_classes": 2}, 3),
]


@pytest.mark.parametrize(("build", "old", "new", "others", "value"), RENAMED)
def test_old_keyword_warns_and_builds_the_same_model(build, old, new, others, value):
    with pytest.warns(DeprecationWarning, match=rf"{old}= is deprecated, use {new}=") as caught:
        old_model = build(**{old: value}, **others)
    assert len(caught) == 1
    assert caught[0].filename == __file__  # the warning points at the caller
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        new_model = build(**{new: value}, **others)
    assert repr(old_model) == repr(new_model)
    old_state, new_state = old_model.state_dict(), new_model.state_dict()
    assert old_state.keys() == new_state.keys()
    for key, tensor in old_state.items():
        assert torch.equal(tensor, new_state[key]), key


@pytest.mark.parametrize(("build", "old", "new", "others", "value"), RENAMED)
def test_old_and_new_keyword_together_is_refused(build, old, new, others, value):
    with pytest.raises(InputTypeError, match=rf"both {new} .* and {old}="):
        build(**{old: value, new: value}, **others)


def test_old_keyword_with_the_new_one_given_by_position_is_refused():
    with pytest.raises(InputTypeError, match=r"both input_shape .* and size_input="):
        MaskedDeepFFN(4, 2, [3], size_input=4)
    with pytest.raises(InputTypeError, match=r"both in_channels .* and input_channel_size="):
        DeepCellDAN(2, 3, conv_bn_relu_cell, STRUCTURE, input_channel_size=3)


def test_positional_calls_of_the_0_3_api_work_without_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert MaskedDeepFFN(784, 10, [20])(torch.randn(2, 784)).shape == (2, 10)
        assert MaskedDeepDAN(5, 3, STRUCTURE)(torch.randn(2, 5)).shape == (2, 3)
        model = DeepCellDAN(10, 3, conv_bn_relu_cell, STRUCTURE, output_channels=4)
        assert model(torch.randn(2, 3, 8, 8)).shape == (2, 10)


def test_old_attribute_names_read_the_new_ones():
    model = MaskedDeepFFN((1, 2, 3), 4, [5])
    assert (model.input_shape, model.in_features, model.num_classes) == ((1, 2, 3), 6, 4)
    assert (model.size_input, model.size_output) == (6, 4)
    model = MaskedDeepDAN((2, 3), 4, STRUCTURE)
    assert (model.input_shape, model.in_features, model.num_classes) == ((2, 3), 6, 4)
    assert (model.size_input, model.size_output) == (6, 4)
    cell_model = DeepCellDAN(2, 3, conv_bn_relu_cell, STRUCTURE, output_channels=4)
    assert (cell_model.in_channels, cell_model.input_channel_size) == (3, 3)
    with pytest.raises(AttributeError):
        model.size_input = 7  # read-only: the model keeps one source of truth
    assert model.in_features == 6


def test_renaming_to_a_missing_parameter_is_a_programming_error():
    with pytest.raises(ValueError, match="no parameter 'width'"):

        @renamed_keywords(size="width")
        def area(length, height):
            return length * height
