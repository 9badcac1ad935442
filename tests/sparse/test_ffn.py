"""MaskedDeepFFN: the README examples, structure export, equivalence with a DAN, bad input."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import torch
from torch import nn

import pypaddle.sparse
from pypaddle.errors import ConfigError
from pypaddle.sparse import MaskedDeepDAN, MaskedDeepFFN, MaskedLinearLayer, maskable_layers


class TestReadmeExamples:
    def test_image_shaped_input(self):
        mnist_model = pypaddle.sparse.MaskedDeepFFN((1, 28, 28), 10, [100, 100])
        assert mnist_model(torch.randn(3, 1, 28, 28)).shape == (3, 10)
        assert mnist_model(torch.randn(3, 784)).shape == (3, 10)

    def test_generate_structure(self):
        model = pypaddle.sparse.MaskedDeepFFN(784, 10, [100, 100])
        structure = model.generate_structure()
        assert isinstance(structure, nx.DiGraph)
        assert structure.number_of_nodes() == 200
        assert structure.number_of_edges() == 100 * 100
        assert structure.num_layers == 2
        assert structure.get_vertices(0) == list(range(100))
        assert structure.get_vertices(1) == list(range(100, 200))


class TestForward:
    def test_equals_hand_computation(self):
        torch.manual_seed(0)
        model = MaskedDeepFFN(4, 2, [3], activation=torch.tanh)
        hidden, out = model.layers_main_hidden[0], model.layer_out
        hidden.mask[1, :] = False
        x = torch.randn(5, 4)
        expected_hidden = torch.tanh(x @ (hidden.weight * hidden.mask).T + hidden.bias)
        expected = expected_hidden @ out.weight.T + out.bias
        torch.testing.assert_close(model(x), expected)

    def test_layer_norm(self):
        model = MaskedDeepFFN(4, 2, [3, 5], use_layer_norm=True)
        assert [type(norm) for norm in model.layer_norms] == [nn.LayerNorm, nn.LayerNorm]
        model(torch.randn(2, 4)).sum().backward()
        assert model.layer_norms[0].weight.grad is not None

    def test_float64_numpy_input_on_float32_model(self):
        model = MaskedDeepFFN(4, 2, [3])
        output = model(torch.from_numpy(np.ones((2, 4))))
        assert output.dtype == torch.float32

    def test_masked_gradients_are_zero(self):
        model = MaskedDeepFFN(6, 3, [5, 4])
        pypaddle.util.set_random_masks(model.layers_main_hidden[1])
        model(torch.randn(7, 6)).sum().backward()
        for layer in maskable_layers(model):
            assert torch.all(layer.weight.grad[~layer.mask] == 0)


class TestGenerateStructure:
    def test_masked_weights_are_missing_edges(self):
        model = MaskedDeepFFN(3, 2, [2, 2])
        model.layers_main_hidden[1].mask[0, 1] = False  # hidden 1 -> hidden 2
        structure = model.generate_structure()
        assert set(structure.edges) == {(0, 2), (0, 3), (1, 3)}

    def test_inputs_and_outputs(self):
        model = MaskedDeepFFN(3, 2, [2, 2])
        model.layers_main_hidden[0].mask[1, 2] = False  # input 2 -> hidden 1
        model.layer_out.mask[0, 0] = False  # hidden 2 -> output 0
        structure = model.generate_structure(include_input=True, include_output=True)
        assert structure.number_of_nodes() == 3 + 4 + 2
        assert structure.number_of_edges() == 5 + 4 + 3
        assert set(structure.successors(("input", 2))) == {0}
        assert set(structure.predecessors(("output", 0))) == {3}
        roles = nx.get_node_attributes(structure, "role")
        assert sorted(roles.values()).count("hidden") == 4
        assert roles[("output", 1)] == "output"
        assert structure.num_layers == 4

    def test_pruned_structure_rebuilds_as_dan(self):
        torch.manual_seed(0)
        model = MaskedDeepFFN(10, 3, [20, 20, 20])
        model.recompute_mask(0.1)
        pruned = model.generate_structure()
        rebuilt = MaskedDeepDAN(10, 3, pruned).generate_structure()
        assert set(rebuilt.edges) == set(pruned.edges)

    def test_dan_of_full_structure_computes_the_same_function(self):
        torch.manual_seed(0)
        ffn = MaskedDeepFFN(5, 3, [4, 6])
        dan = MaskedDeepDAN(5, 3, ffn.generate_structure())
        assert dan.layer_widths == (4, 6)
        with torch.no_grad():
            for source, target in zip(maskable_layers(ffn), maskable_layers(dan)):
                target.weight.copy_(source.weight)
                target.bias.copy_(source.bias)
        x = torch.randn(8, 5)
        torch.testing.assert_close(dan(x), ffn(x))


class TestStateDict:
    def test_round_trip_keeps_masks(self):
        model = MaskedDeepFFN(4, 2, [3, 3])
        model.layers_main_hidden[1].mask[:, 0] = False
        fresh = MaskedDeepFFN(4, 2, [3, 3])
        fresh.load_state_dict(model.state_dict(), strict=True)
        assert torch.equal(fresh.layers_main_hidden[1].mask, model.layers_main_hidden[1].mask)
        x = torch.randn(2, 4)
        torch.testing.assert_close(fresh(x), model(x))


class TestBadInput:
    @pytest.mark.parametrize("hidden_layers", [[], [10, 0], [10, -2], 10, "10", [2.5]])
    def test_hidden_layers(self, hidden_layers):
        with pytest.raises(ConfigError, match="hidden"):
            MaskedDeepFFN(4, 2, hidden_layers)

    @pytest.mark.parametrize("input_shape", [0, (), (1, 0, 28), -3])
    def test_input_shape(self, input_shape):
        with pytest.raises(ConfigError, match="input_shape"):
            MaskedDeepFFN(input_shape, 2, [3])

    def test_num_classes(self):
        with pytest.raises(ConfigError, match="num_classes"):
            MaskedDeepFFN(4, 0, [3])

    def test_activation(self):
        with pytest.raises(TypeError, match="activation"):
            MaskedDeepFFN(4, 2, [3], activation="relu")

    def test_wrong_input_shape_names_the_fix(self):
        model = MaskedDeepFFN((1, 28, 28), 10, [5])
        with pytest.raises(ValueError, match="784 input features"):
            model(torch.randn(2, 1, 28, 27))


def test_layers_are_masked_linear():
    model = MaskedDeepFFN(4, 2, [3, 3])
    assert [type(layer) for layer in maskable_layers(model)] == [MaskedLinearLayer] * 3
