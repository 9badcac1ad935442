"""One table of module kinds serves extraction, compaction and counting."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import prune as torch_prune

from pypaddle.deploy import SparseLinear, compact, count, to_sparse
from pypaddle.errors import ConfigError, InputTypeError, StructureError
from pypaddle.extract import register_rule, to_graph
from pypaddle.kinds import KINDS, kind_of, register_kind, registered_kinds
from pypaddle.sparse import MaskedConv2d, MaskedDeepDAN, MaskedLinearLayer, MaskedLSTM


class Affine(nn.Module):
    """A custom linear layer with its own mask, unknown to pypaddle until registered."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.randn(out_features))
        self.register_buffer("mask", torch.ones(out_features, in_features, dtype=torch.bool))

    def forward(self, x):
        return F.linear(x, self.weight * self.mask, self.bias)


@pytest.fixture
def affine_model():
    torch.manual_seed(0)
    model = nn.Sequential(
        MaskedLinearLayer(4, 6), nn.ReLU(), Affine(6, 5), nn.ReLU(), nn.Linear(5, 2)
    )
    model[0].mask[:2] = False  # neurons 0 and 1 read nothing: constants relu(b)
    model[2].mask[:, 5] = False  # neuron 5 is read by nothing
    model[2].mask[0] = False  # the custom layer's neuron 0 reads nothing
    model[2].mask[1, 4] = False  # 5 + 6 - 1 + 1 = 11 of its 30 weights masked
    yield model
    register_kind(Affine, None)


def test_a_custom_module_registered_once_is_extracted_compacted_and_counted(affine_model):
    model = affine_model
    x = torch.randn(5, 4)
    with pytest.raises(StructureError, match="Affine"):
        compact(model)  # unknown: compaction cannot see through it
    assert count(model, x).macs == 6 * 4 + 5 * 2  # unknown: no multiply-accumulates
    register_kind(Affine, "linear")

    # extraction reads its mask
    graph = to_graph(model, x)
    assert graph.number_of_nodes() == 4 + 6 + 5 + 2
    assert graph.number_of_edges() == 16 + 19 + 10
    assert not graph.has_edge("0:5", "2:0")
    assert not graph.has_edge("0:4", "2:1")
    assert graph.has_edge("0:4", "2:2")

    # compaction slices it like an nn.Linear: neurons 0, 1 (constants) and 5 (unread) of
    # the first layer go, and its own neuron 0 (a constant, folded into the last bias)
    small = compact(model)
    assert [layer.out_features for layer in small if isinstance(layer, nn.Linear)] == [3, 4, 2]
    assert torch.allclose(small(x), model(x), atol=1e-6)

    # counting applies its weight once per sample, its mask keeping 19 of 30 entries
    counts = count(model, x)
    assert counts.macs == 6 * 4 + 6 * 5 + 5 * 2
    assert counts.effective_macs == 16 + 19 + 10
    assert [layer.active_params for layer in counts.layers] == [16 + 6, 19 + 5, 10 + 2]


def test_register_rule_is_the_same_registration(affine_model):
    register_rule(Affine, "linear")
    assert registered_kinds()[Affine] == "linear"
    assert count(affine_model, torch.randn(1, 4)).effective_macs == 16 + 19 + 10
    register_rule(Affine, None)
    assert Affine not in registered_kinds()


@pytest.mark.parametrize(
    ("module", "name", "rule", "compaction", "macs"),
    [
        (nn.Linear(2, 3), "linear", "linear", "weighted", "outputs"),
        (MaskedLinearLayer(2, 3), "linear", "linear", "weighted", "outputs"),
        (MaskedConv2d(1, 2, 3), "conv", "conv", "weighted", "outputs"),
        (nn.Conv1d(1, 2, 3), "conv", "conv", "weighted", "outputs"),
        (nn.ConvTranspose2d(1, 2, 3), "conv_transpose", None, None, "inputs"),
        (nn.GRU(2, 3), "recurrent", None, None, "steps"),
        (MaskedLSTM(2, 3), "recurrent", None, None, "steps"),
        (nn.ReLU(), "activation", "transparent", "elementwise", None),
        (nn.PReLU(), "activation", "transparent", "elementwise", None),
        (nn.Softmax(1), "transparent", "transparent", "probe", None),
        (nn.Dropout(), "dropout", "transparent", "identity", None),
        (nn.BatchNorm2d(3), "batch_norm", "transparent", "batch_norm", None),
        (nn.SyncBatchNorm(3), "batch_norm", "transparent", "batch_norm", None),
        (nn.LayerNorm(3), "layer_norm", "transparent", "pin", None),
        (nn.GroupNorm(1, 3), "norm", "transparent", None, None),
        (nn.MaxPool2d(2), "pool", "pool", "constant", None),
        (nn.AdaptiveAvgPool2d(1), "adaptive_pool", "adaptive_pool", "constant", None),
        (nn.Flatten(), "flatten", "move", "constant", None),
        (nn.ZeroPad2d(1), "move", "move", None, None),
        (SparseLinear.from_dense(torch.eye(2)), "linear", "linear", "weighted", "outputs"),
        (MaskedDeepDAN, "structure", "structure", None, None),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, nn.Module) else str(value),
)
def test_builtin_kinds(module, name, rule, compaction, macs):
    kind = kind_of(module)
    assert (kind.name, kind.rule, kind.compaction, kind.macs) == (name, rule, compaction, macs)
    assert KINDS[name] is kind


@pytest.mark.parametrize("module", [nn.Sequential(), nn.Module(), nn.Upsample(scale_factor=2)])
def test_modules_without_a_kind(module):
    assert kind_of(module) is None


def test_a_user_registration_wins_and_subclasses_follow_it():
    class Custom(nn.ReLU):
        pass

    class Deeper(Custom):
        pass

    assert kind_of(Deeper()).name == "activation"  # from nn.ReLU
    register_kind(Custom, "norm")
    try:
        assert kind_of(Deeper()).name == "norm"
        register_kind(nn.ReLU, "transparent")
        assert kind_of(nn.ReLU()).name == "transparent"
        register_kind(nn.ReLU, None)
        assert kind_of(nn.ReLU()).name == "activation"  # the built-in entry is back
    finally:
        register_kind(Custom, None)
    assert kind_of(Deeper()).name == "activation"


def test_a_sparse_linear_is_extracted_as_the_layer_it_replaced():
    torch.manual_seed(0)
    model = nn.Sequential(MaskedLinearLayer(6, 5), nn.ReLU(), nn.Linear(5, 2))
    model[0].mask &= torch.rand(5, 6) < 0.5
    fast = to_sparse(model, rule=lambda density, *shape: True)
    assert isinstance(fast[0], SparseLinear)
    x = torch.randn(3, 6)
    assert sorted(to_graph(fast, x).edges) == sorted(to_graph(model, x).edges)
    assert count(fast, x).effective_macs == count(model, x).effective_macs


@pytest.mark.parametrize(
    "module_type", [None, 3, "Linear", nn.Linear(1, 1), int, object, torch.Tensor], ids=repr
)
def test_register_kind_needs_a_module_class(module_type):
    before = registered_kinds()
    with pytest.raises(InputTypeError, match=r"nn\.Module class"):
        register_kind(module_type, "linear")
    assert registered_kinds() == before


@pytest.mark.parametrize(
    "kind", [3, "", "Linear", "weighted", b"linear", ["linear"], np.array([1, 2])], ids=repr
)
def test_register_kind_needs_a_known_kind(kind):
    before = registered_kinds()
    with pytest.raises(ConfigError, match="kind must be one of"):
        register_kind(Affine, kind)
    assert registered_kinds() == before


def test_a_transposed_convolution_applies_its_weight_at_every_input_position():
    model = nn.ConvTranspose2d(2, 3, 3, stride=2)
    counts = count(model, torch.randn(2, 2, 4, 4))
    assert counts.macs == (2 * 3 * 3 * 3) * (4 * 4)


def test_torch_prune_masks_are_counted_and_compacted():
    torch.manual_seed(0)
    model = nn.Sequential(MaskedLinearLayer(4, 3), nn.ReLU(), nn.Linear(3, 2))
    torch_prune.l1_unstructured(model[2], "weight", amount=4)
    counts = count(model, torch.randn(1, 4))
    assert counts.layers[1].effective_macs == 2
    assert counts.layers[1].active_params == 2 + 2
    kept_inputs = int(model[2].weight_mask.any(0).sum())  # neurons of layer 0 still read
    small = compact(model)
    assert small[0].out_features == kept_inputs < 3
    x = torch.randn(5, 4)
    assert torch.allclose(small(x), model(x), atol=1e-6)
