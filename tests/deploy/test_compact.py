"""compact: smaller dense models that compute what the masked models compute."""

from __future__ import annotations

import copy
import warnings

import networkx as nx
import pytest
import torch
from torch import nn

from pypaddle.deploy import CompactDAN, CompactionWarning, compact
from pypaddle.errors import InputTypeError, StructureError
from pypaddle.prune import prune
from pypaddle.sparse import (
    MaskableModule,
    MaskedConv1d,
    MaskedConv2d,
    MaskedDeepDAN,
    MaskedDeepFFN,
    MaskedLinearLayer,
    masked_lenet5,
    masked_vgg,
)

ACTIVATIONS = [nn.ReLU, nn.Sigmoid, nn.Tanh, torch.nn.functional.gelu]


class _Softsign(nn.Module):
    """An activation compact does not know by name: it checks it acts per entry."""

    def forward(self, x):
        return x / (1 + x.abs())


def dense_params(model: nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


def linears(model: nn.Module) -> list[nn.Linear]:
    return [module for module in model.modules() if type(module) is nn.Linear]


def prune_randomly(model: nn.Module, generator: torch.Generator) -> None:
    """Random weights, random whole neurons and inputs, random bias masks."""
    for layer in model.modules():
        if not isinstance(layer, MaskableModule):
            continue
        density = float(torch.rand(1, generator=generator)) * 0.8
        keep = torch.rand(layer.weight.shape, generator=generator) < density
        layer.mask &= keep
        rows = layer.weight.shape[0]
        dead = torch.rand(rows, generator=generator) < 0.3
        layer.mask[dead] = False
        if isinstance(layer, MaskedLinearLayer):
            layer.prune_inputs(torch.rand(layer.in_features, generator=generator) < 0.2)
        if layer.bias_mask is not None:
            layer.bias_mask &= torch.rand(rows, generator=generator) < 0.7
        with torch.no_grad():
            if layer.bias is not None:
                layer.bias.normal_(0, 1, generator=generator)


def assert_same_function(model: nn.Module, small: nn.Module, inputs: torch.Tensor) -> None:
    with torch.no_grad():
        torch.testing.assert_close(small(inputs), model(inputs), rtol=0, atol=1e-5)


class TestHandChecked:
    def test_constant_neuron_is_folded_into_the_next_bias(self):
        model = MaskedDeepFFN(3, 1, [2], activation=nn.Sigmoid)
        hidden, out = model.layers_main_hidden[0], model.layer_out
        hidden.mask[0] = False  # neuron 0 has no inputs: it outputs sigmoid(b0)
        with torch.no_grad():
            hidden.bias.copy_(torch.tensor([0.5, -1.0]))
            out.weight.copy_(torch.tensor([[2.0, 3.0]]))
            out.bias.fill_(0.25)
        small = compact(model)
        first, last = linears(small)
        assert (first.out_features, last.in_features) == (1, 1)
        expected_bias = 0.25 + 2.0 * torch.sigmoid(torch.tensor(0.5))
        torch.testing.assert_close(last.bias, expected_bias.reshape(1))
        torch.testing.assert_close(last.weight, torch.tensor([[3.0]]))
        assert_same_function(model, small, torch.randn(6, 3))

    def test_unread_neuron_goes_with_its_weights(self):
        model = MaskedDeepFFN(3, 2, [4])
        model.layer_out.prune_inputs([1, 2])
        small = compact(model)
        first, _ = linears(small)
        assert first.out_features == 2
        torch.testing.assert_close(first.weight, model.layers_main_hidden[0].weight[[0, 3]])
        assert_same_function(model, small, torch.randn(5, 3))

    def test_chain_of_constants_reaches_a_fixpoint(self):
        # layer 1 loses all inputs, so layer 2 only reads constants, so the output is constant
        model = MaskedDeepFFN(3, 2, [4, 4, 4], activation=nn.Sigmoid)
        model.layers_main_hidden[1].mask.fill_(False)
        small = compact(model)
        # one all-zero neuron stands in for each emptied layer
        assert [layer.out_features for layer in linears(small)] == [1, 1, 1, 2]
        assert not any(bool(layer.weight.any()) for layer in linears(small))
        assert_same_function(model, small, torch.randn(5, 3))
        out = small(torch.randn(3, 3))
        torch.testing.assert_close(out[0], out[1])

    def test_dan_layers_read_only_the_blocks_they_need(self):
        # layers [0], [1, 3], [2]; vertex 1 loses its input, so 2 reads only vertex 0
        model = MaskedDeepDAN(4, 2, nx.DiGraph([(0, 1), (1, 2), (0, 2), (0, 3)]))
        model.layers_main_hidden[1].prune_neurons([0])
        small = compact(model)
        assert small.read_blocks == [(0, 0), (1, 1), (1, 1), (2, 3)]
        assert small.index_names == [None] * 4
        assert_same_function(model, small, torch.randn(5, 4))

    def test_dan_gathers_columns_within_a_block(self):
        # layers [0, 1, 2], [3], [5]; vertex 1 stays for vertex 5 but 3 no longer reads it
        model = MaskedDeepDAN(4, 2, nx.DiGraph([(0, 3), (1, 3), (2, 3), (3, 5), (1, 5)]))
        model.layers_main_hidden[1].mask[0, 1] = False
        small = compact(model)
        assert small.index_1.tolist() == [0, 2]  # of block 1 (vertices 0, 1, 2)
        assert small.index_2.tolist() == [1, 3]  # of blocks 1 and 2: vertices 1 and 3
        assert_same_function(model, small, torch.randn(5, 4))

    def test_relu_neuron_without_inputs_and_with_zero_bias_goes(self):
        model = MaskedDeepFFN(3, 2, [4, 4])
        model.layers_main_hidden[0].prune_neurons([0, 1])
        small = compact(model)
        assert [layer.out_features for layer in linears(small)] == [2, 4, 2]
        assert_same_function(model, small, torch.randn(5, 3))


class TestRandomPrunings:
    @pytest.mark.parametrize("activation", ACTIVATIONS)
    def test_ffn(self, activation):
        generator = torch.Generator().manual_seed(1)
        for trial in range(12):
            torch.manual_seed(trial)
            model = MaskedDeepFFN((2, 5), 3, [9, 7, 6], activation=activation)
            prune_randomly(model, generator)
            small = compact(model)
            assert dense_params(small) <= dense_params(model)
            assert_same_function(model, small, torch.randn(8, 2, 5, generator=generator))

    def test_ffn_with_layer_norm_keeps_widths(self):
        generator = torch.Generator().manual_seed(2)
        for trial in range(5):
            torch.manual_seed(trial)
            model = MaskedDeepFFN(6, 3, [8, 5], use_layer_norm=True, activation=nn.Tanh)
            prune_randomly(model, generator)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", CompactionWarning)
                small = compact(model)
            assert [layer.out_features for layer in linears(small)] == [8, 5, 3]
            assert_same_function(model, small, torch.randn(8, 6, generator=generator))

    @pytest.mark.parametrize("activation", [nn.ReLU, nn.Sigmoid])
    def test_dan_with_skip_connections(self, activation):
        generator = torch.Generator().manual_seed(3)
        for trial in range(10):
            graph = nx.gnp_random_graph(30, 0.2, seed=trial, directed=True)
            structure = nx.DiGraph((u, v) for u, v in graph.edges if u < v)
            structure.add_nodes_from(range(30))
            torch.manual_seed(trial)
            model = MaskedDeepDAN(7, 3, structure, activation=activation)
            prune_randomly(model, generator)
            small = compact(model)
            assert isinstance(small, CompactDAN)
            assert dense_params(small) <= dense_params(model)
            assert_same_function(model, small, torch.randn(8, 7, generator=generator))

    def test_dan_with_every_vertex_pruned_is_a_constant(self):
        model = MaskedDeepDAN(4, 2, nx.DiGraph([(0, 1), (1, 2), (0, 2)]), activation=nn.Sigmoid)
        for layer in model.layers_main_hidden:
            layer.mask.fill_(False)
        small = compact(model)
        assert [linear.in_features for linear in small.linears] == [0]
        assert_same_function(model, small, torch.randn(3, 4))

    def test_dan_with_layer_norm(self):
        generator = torch.Generator().manual_seed(4)
        structure = nx.DiGraph([(0, 2), (1, 2), (2, 3), (0, 3), (1, 4), (3, 5)])
        model = MaskedDeepDAN(5, 2, structure, use_layer_norm=True)
        prune_randomly(model, generator)
        small = compact(model)
        assert_same_function(model, small, torch.randn(8, 5, generator=generator))

    def test_sequential_of_convolutions(self):
        generator = torch.Generator().manual_seed(5)
        for trial in range(8):
            torch.manual_seed(trial)
            padding_mode = "zeros" if trial % 2 else "replicate"
            model = nn.Sequential(
                MaskedConv2d(3, 8, 3, padding=1, padding_mode=padding_mode),
                nn.ReLU(),
                MaskedConv2d(8, 8, 3, padding=0),
                nn.Sigmoid(),
                nn.MaxPool2d(2),
                MaskedConv2d(8, 6, 1),
                nn.Tanh(),
                nn.Flatten(),
                MaskedLinearLayer(6 * 3 * 3, 10),
                nn.ReLU(),
                nn.Linear(10, 4),
            )
            prune_randomly(model, generator)
            small = compact(model)
            assert_same_function(model, small, torch.randn(4, 3, 8, 8, generator=generator))


def randomise_batch_norms(model: nn.Module, generator: torch.Generator) -> None:
    with torch.no_grad():
        for norm in model.modules():
            if isinstance(norm, nn.modules.batchnorm._BatchNorm):
                norm.running_mean.normal_(0, 1, generator=generator)
                norm.running_var.uniform_(0.5, 2, generator=generator)
                norm.weight.normal_(1, 0.5, generator=generator)
                norm.bias.normal_(0, 1, generator=generator)


class TestBatchNorm:
    def test_conv_batch_norm_relu_stacks(self):
        generator = torch.Generator().manual_seed(7)
        for trial in range(8):
            torch.manual_seed(trial)
            model = nn.Sequential(
                MaskedConv2d(3, 8, 3, padding=1, padding_mode="reflect"),
                nn.BatchNorm2d(8),
                nn.ReLU(),
                MaskedConv2d(8, 8, 3),
                nn.BatchNorm2d(8),
                nn.Sigmoid(),
                nn.Flatten(),
                MaskedLinearLayer(8 * 4 * 4, 6),
                nn.BatchNorm1d(6),
                nn.Tanh(),
                MaskedLinearLayer(6, 3),
            ).eval()
            randomise_batch_norms(model, generator)
            prune_randomly(model, generator)
            small = compact(model)
            assert_same_function(model, small, torch.randn(4, 3, 6, 6, generator=generator))

    def test_pruned_channels_leave_the_batch_norm(self):
        model = nn.Sequential(
            MaskedConv2d(2, 6, 1), nn.BatchNorm2d(6), nn.ReLU(), MaskedConv2d(6, 2, 1)
        ).eval()
        randomise_batch_norms(model, torch.Generator().manual_seed(0))
        model[3].prune_input_channels([0, 4])
        small = compact(model)
        assert small[1].num_features == 4
        torch.testing.assert_close(small[1].running_mean, model[1].running_mean[[1, 2, 3, 5]])
        assert_same_function(model, small, torch.randn(2, 2, 3, 3))


class TestConvNets:
    def test_lenet_pruned_by_filters(self):
        torch.manual_seed(0)
        model = masked_lenet5().eval()
        prune(model, 0.5, scope="layer", granularity="channel")
        small = compact(model)
        assert [small[i].out_channels for i in (0, 3)] == [3, 8]
        assert_same_function(model, small, torch.randn(3, 1, 28, 28))

    @pytest.mark.slow
    def test_vgg_with_batch_norm_and_random_prunings(self):
        generator = torch.Generator().manual_seed(8)
        for trial in range(3):
            torch.manual_seed(trial)
            model = masked_vgg(11, (3, 32, 32), 10, width=0.125, batch_norm=True).eval()
            randomise_batch_norms(model, generator)
            prune_randomly(model, generator)
            small = compact(model)
            assert dense_params(small) < dense_params(model)
            assert_same_function(model, small, torch.randn(2, 3, 32, 32, generator=generator))


class TestConvolutions:
    def test_conv1d_stack(self):
        generator = torch.Generator().manual_seed(6)
        for trial in range(6):
            torch.manual_seed(trial)
            model = nn.Sequential(
                MaskedConv1d(2, 6, 3, padding="same", padding_mode="circular"),
                nn.ELU(),
                MaskedConv1d(6, 5, 3, stride=2),
                nn.Hardtanh(),
                nn.AdaptiveAvgPool1d(4),
                nn.Flatten(),
                MaskedLinearLayer(20, 3),
            )
            prune_randomly(model, generator)
            small = compact(model)
            assert_same_function(model, small, torch.randn(3, 2, 16, generator=generator))

    def test_pruned_output_channels_and_their_readers_shrink(self):
        model = nn.Sequential(
            MaskedConv2d(3, 8, 3),
            nn.ReLU(),
            MaskedConv2d(8, 4, 3),
            nn.Flatten(),
            MaskedLinearLayer(4 * 5 * 5, 2),
        )
        model[0].prune_output_channels([0, 7])
        model[2].prune_output_channels([1])
        small = compact(model)
        assert (small[0].out_channels, small[2].in_channels, small[2].out_channels) == (6, 6, 3)
        assert small[4].in_features == 3 * 25
        assert_same_function(model, small, torch.randn(2, 3, 9, 9))

    def test_pruned_channels_go(self):
        model = nn.Sequential(MaskedConv2d(3, 8, 3, padding=1), nn.ReLU(), MaskedConv2d(8, 4, 3))
        model[0].mask[[1, 4, 6]] = False  # channels without inputs...
        with torch.no_grad():
            model[0].bias[[1, 4, 6]] = -1.0  # ... whose ReLU(bias) is 0
        model[2].mask[:, 2] = False  # channel 2 is read by nobody
        small = compact(model)
        assert (small[0].out_channels, small[2].in_channels) == (4, 4)
        assert type(small[0]) is nn.Conv2d
        assert_same_function(model, small, torch.randn(2, 3, 9, 9))

    def test_constant_channel_read_with_zero_padding_stays(self):
        model = nn.Sequential(MaskedConv2d(2, 3, 3), nn.Sigmoid(), MaskedConv2d(3, 2, 3, padding=1))
        model[0].mask[0] = False  # constant sigmoid(b) != 0: the zero padding sees its edge
        with pytest.warns(CompactionWarning, match="removed no neuron"):
            small = compact(model)
        assert small[0].out_channels == 3
        assert_same_function(model, small, torch.randn(2, 2, 7, 7))
        model[2].padding_mode = "replicate"  # a constant stays constant: fold it
        small = compact(model)
        assert small[0].out_channels == 2
        assert_same_function(model, small, torch.randn(2, 2, 7, 7))

    def test_grouped_convolution_keeps_its_channels(self):
        model = nn.Sequential(
            MaskedConv2d(2, 4, 3),
            nn.ReLU(),
            MaskedConv2d(4, 4, 3, groups=2),
            nn.ReLU(),
            MaskedConv2d(4, 2, 1),
        )
        model[0].mask[1] = False
        model[2].mask[0] = False
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CompactionWarning)
            small = compact(model)
        assert [small[i].out_channels for i in (0, 2, 4)] == [4, 4, 2]
        assert_same_function(model, small, torch.randn(2, 2, 7, 7))


class TestContract:
    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    def test_model_is_not_changed(self, dtype):
        models = [
            MaskedDeepFFN(4, 2, [5, 5], activation=nn.Sigmoid),
            MaskedDeepDAN(4, 2, nx.DiGraph([(0, 1), (1, 2), (0, 2)]), activation=nn.Sigmoid),
        ]
        for model in models:
            model.to(dtype)
            model.layers_main_hidden[0].mask.fill_(False)  # constants folded, layers emptied
            model.layers_main_hidden[1].mask.fill_(False)
            state = copy.deepcopy(model.state_dict())
            compact(model)
            for key, value in model.state_dict().items():
                assert torch.equal(value, state[key]), key

    def test_training_mode_is_kept(self):
        model = MaskedDeepFFN(4, 2, [5]).eval()
        model.layers_main_hidden[0].prune_neurons([0])
        assert not compact(model).training

    def test_prelu_and_a_callable_between_layers(self):
        model = nn.Sequential(
            MaskedLinearLayer(5, 6),
            nn.PReLU(),
            MaskedLinearLayer(6, 6),
            _Softsign(),
            MaskedLinearLayer(6, 2),
        )
        with torch.no_grad():
            model[1].weight.fill_(0.3)
        model[0].mask[:3] = False  # PReLU(bias) of three neurons without inputs
        model[2].mask[[1, 4]] = False
        small = compact(model)
        assert (small[0].out_features, small[2].out_features) == (3, 4)
        assert_same_function(model, small, torch.randn(4, 5))

    def test_float64_model(self):
        model = MaskedDeepFFN(4, 2, [5]).double()
        model.layers_main_hidden[0].prune_neurons([0, 1])
        small = compact(model)
        assert all(parameter.dtype == torch.float64 for parameter in small.parameters())
        assert_same_function(model, small, torch.randn(3, 4, dtype=torch.float64))

    def test_gradients_flow_through_the_compact_model(self):
        model = MaskedDeepDAN(4, 2, nx.DiGraph([(0, 1), (1, 2), (0, 2), (0, 3)]))
        model.layers_main_hidden[1].prune_neurons([0])  # vertex 1: no inputs, then unread
        small = compact(model)
        small(torch.randn(3, 4)).sum().backward()
        assert all(parameter.grad is not None for parameter in small.parameters())


class TestBadInput:
    def test_no_masked_layers_returns_the_model_with_a_warning(self):
        model = nn.Sequential(nn.Linear(3, 2))
        with pytest.warns(CompactionWarning, match="no masked layers"):
            assert compact(model) is model

    def test_unstructured_sparsity_says_nothing_was_removed(self):
        model = MaskedDeepFFN(4, 2, [5])
        model.layers_main_hidden[0].mask[:, 0] = False
        with pytest.warns(CompactionWarning, match="unstructured"):
            compact(model)

    def test_unknown_module_between_layers_is_named(self):
        model = nn.Sequential(MaskedConv2d(3, 4, 1), nn.GroupNorm(2, 4), MaskedConv2d(4, 2, 1))
        with pytest.raises(StructureError, match="GroupNorm"):
            compact(model)

    def test_batch_norm_without_running_statistics_is_refused(self):
        model = nn.Sequential(
            MaskedLinearLayer(3, 4),
            nn.BatchNorm1d(4, track_running_stats=False),
            MaskedLinearLayer(4, 2),
        )
        with pytest.raises(StructureError, match="running statistics"):
            compact(model)

    def test_softmax_between_layers_is_refused(self):
        model = nn.Sequential(MaskedLinearLayer(3, 4), nn.Softmax(1), MaskedLinearLayer(4, 2))
        with pytest.raises(StructureError, match="Softmax"):
            compact(model)

    @pytest.mark.parametrize("model_class", ["ffn", "dan"])
    @pytest.mark.parametrize("activation", [nn.Softmax(dim=1), nn.PReLU(4)])
    def test_activation_that_mixes_neurons_is_refused(self, model_class, activation):
        # Removing a neuron changes what a softmax gives the others; a PReLU with one
        # parameter per neuron cannot run on a narrower layer.
        torch.manual_seed(0)
        if model_class == "ffn":
            model = MaskedDeepFFN(5, 2, [4, 4], activation=activation)
        else:
            model = MaskedDeepDAN(5, 2, nx.DiGraph([(0, 1), (2, 3)]), activation=activation)
        prune(model, 1, scope="layer", granularity="neuron")
        state = copy.deepcopy(model.state_dict())
        with pytest.raises(StructureError, match=type(activation).__name__):
            compact(model)
        assert all(torch.equal(state[key], value) for key, value in model.state_dict().items())

    def test_custom_forward_is_refused(self):
        class Custom(nn.Module):
            def __init__(self):
                super().__init__()
                self.layer = MaskedLinearLayer(3, 2)

            def forward(self, x):
                return self.layer(x) * 2

        with pytest.raises(StructureError, match=r"nn\.Sequential"):
            compact(Custom())

    def test_linear_on_a_conv_without_flatten_is_refused(self):
        model = nn.Sequential(MaskedConv2d(2, 3, 3), nn.ReLU(), MaskedLinearLayer(4, 2))
        with pytest.raises(StructureError, match=r"nn\.Flatten"):
            compact(model)

    def test_features_back_into_channels_are_refused(self):
        model = nn.Sequential(
            MaskedLinearLayer(8, 8), nn.Unflatten(1, (2, 2, 2)), MaskedConv2d(2, 2, 1)
        )
        with pytest.raises(StructureError, match="Unflatten"):
            compact(model)

    def test_flatten_between_linear_layers_is_refused(self):
        model = nn.Sequential(MaskedLinearLayer(8, 8), nn.Flatten(), MaskedLinearLayer(8, 2))
        with pytest.raises(StructureError, match="layout"):
            compact(model)

    def test_sequential_without_layers_of_its_own(self):
        with pytest.raises(StructureError, match="inside it"):
            compact(nn.Sequential(nn.Flatten(), MaskedDeepFFN(4, 2, [3])))

    def test_not_a_module(self):
        with pytest.raises(InputTypeError):
            compact("model")
