"""Every bad input to pypaddle.extract gets a pypaddle error, and the model is left as it was."""

from __future__ import annotations

import math
import numbers

import numpy as np
import pytest
import torch
from torch import nn

from bad_values import NOT_FINITE_REALS, assert_unchanged, snapshot, value_id
from pypaddle.errors import ConfigError, InputTypeError
from pypaddle.extract import register_rule, to_graph
from pypaddle.kinds import registered_kinds
from pypaddle.sparse import MaskedLinearLayer

NOT_MODULES = [None, 3, "model", object(), nn.Linear, torch.randn(2, 2), lambda x: x, [nn.ReLU()]]
NOT_NAMES = [None, 3, "", "NEURON", "weights", b"neuron", ["neuron"], np.array([1, 2]), object()]
NOT_INPUTS = [None, 3, "x", [[1.0, 2.0]], np.ones((1, 4)), {"x": 1}, (), object()]
NOT_THRESHOLDS = [value for value in NOT_FINITE_REALS if value is not None] + [
    -1e-9,
    -1,
    np.float64(-0.5),
    -math.inf,
    b"0.1",
    torch.tensor(0.1),
    np.array([0.1]),
]


def _model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(MaskedLinearLayer(4, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 2))
    model[0].mask[0, :2] = False
    model.train()
    model[1].eval()
    return model


def _expected_for_threshold(value) -> type[Exception]:
    """A number of the wrong value is a ConfigError; anything else the wrong type."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return ConfigError
    return InputTypeError


@pytest.mark.parametrize("threshold", NOT_THRESHOLDS, ids=value_id)
@pytest.mark.parametrize("granularity", ["neuron", "channel", "layer"])
def test_bad_threshold(threshold, granularity):
    model = _model()
    before = snapshot(model)
    with pytest.raises(_expected_for_threshold(threshold), match="threshold"):
        to_graph(model, torch.randn(2, 4), threshold=threshold, granularity=granularity)
    assert_unchanged(before, model)


def test_nan_threshold_is_refused_not_an_empty_graph():
    with pytest.raises(ConfigError, match=r"threshold must be a finite real number.*nan"):
        to_graph(_model(), torch.randn(2, 4), threshold=math.nan)


@pytest.mark.parametrize("threshold", [0, 0.0, np.float32(0.5), np.int64(1), 10])
def test_good_thresholds_still_work(threshold):
    graph = to_graph(_model(), torch.randn(2, 4), threshold=threshold)
    assert graph.number_of_nodes() == 4 + 3 + 2


@pytest.mark.parametrize("model", NOT_MODULES, ids=value_id)
def test_not_a_module(model):
    with pytest.raises(InputTypeError, match=r"torch\.nn\.Module"):
        to_graph(model, torch.randn(2, 4))


@pytest.mark.parametrize("example_input", NOT_INPUTS, ids=value_id)
def test_bad_example_input(example_input):
    model = _model()
    before = snapshot(model)
    with pytest.raises(InputTypeError, match="example_input must be a tensor"):
        to_graph(model, example_input)
    assert_unchanged(before, model)


@pytest.mark.parametrize(
    "example_input",
    [torch.randn(2, 5), torch.randn(2, 4, 1), torch.tensor(1.0), torch.zeros(2, 0)],
    ids=lambda value: str(tuple(value.shape)),
)
def test_example_input_the_model_refuses(example_input):
    model = _model()
    before = snapshot(model)
    with pytest.raises(ConfigError):
        to_graph(model, example_input)
    assert_unchanged(before, model)


@pytest.mark.parametrize("granularity", NOT_NAMES, ids=value_id)
def test_bad_granularity(granularity):
    model = _model()
    before = snapshot(model)
    with pytest.raises(ConfigError, match="granularity must be one of"):
        to_graph(model, torch.randn(2, 4), granularity=granularity)
    assert_unchanged(before, model)


@pytest.mark.parametrize("tracer", NOT_NAMES, ids=value_id)
def test_bad_tracer(tracer):
    model = _model()
    before = snapshot(model)
    with pytest.raises(ConfigError, match="tracer must be"):
        to_graph(model, torch.randn(2, 4), tracer=tracer)
    assert_unchanged(before, model)


class Custom(nn.Module):
    def forward(self, x):
        return x


@pytest.mark.parametrize(
    "module_type", [None, 3, "Custom", Custom(), nn.ReLU(), int, object, torch.Tensor], ids=value_id
)
def test_register_rule_needs_a_module_class(module_type):
    before = registered_kinds()
    with pytest.raises(InputTypeError, match=r"nn\.Module class"):
        register_rule(module_type, "transparent")
    assert registered_kinds() == before


@pytest.mark.parametrize(
    "rule",
    [3, "", "Linear", "merge", "structure", "reduce", b"linear", ["linear"], np.array([1, 2])],
    ids=value_id,
)
def test_register_rule_needs_a_known_rule(rule):
    before = registered_kinds()
    with pytest.raises(ConfigError, match="rule must be one of"):
        register_rule(Custom, rule)
    assert registered_kinds() == before
