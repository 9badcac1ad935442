"""MaskedConv1d / MaskedConv2d: drop-ins for torch convs, masks, first-order views."""

from __future__ import annotations

import copy

import networkx as nx
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pypaddle.errors import InputTypeError, MaskError
from pypaddle.sparse import MaskableModule, MaskedConv1d, MaskedConv2d, maskable_layers
from pypaddle.sparse._common import MaskedModel

# (constructor arguments, input shape without batch)
CONV2D_CASES = [
    ((3, 4, 3), (3, 9, 9)),
    ((3, 4, (3, 2)), (3, 9, 8)),
    ((4, 6, 3), {"stride": 2, "padding": 1}, (4, 11, 10)),
    ((4, 6, 3), {"padding": "same", "dilation": 2}, (4, 9, 9)),
    ((4, 6, 3), {"padding": "valid", "bias": False}, (4, 7, 7)),
    ((4, 6, 3), {"groups": 2, "padding": 1}, (4, 6, 6)),
    ((4, 4, 3), {"groups": 4, "padding": 2, "dilation": 2}, (4, 7, 7)),
    ((2, 3, 3), {"padding": 1, "padding_mode": "reflect"}, (2, 6, 6)),
    ((2, 3, 3), {"padding": 2, "padding_mode": "replicate"}, (2, 6, 6)),
    ((2, 3, 3), {"padding": (1, 2), "padding_mode": "circular"}, (2, 6, 6)),
    ((2, 3, (2, 4)), {"padding": "same", "padding_mode": "circular"}, (2, 6, 7)),
]
CONV1D_CASES = [
    ((3, 4, 3), (3, 12)),
    ((4, 6, 5), {"stride": 3, "padding": 2, "dilation": 1}, (4, 20)),
    ((4, 6, 3), {"padding": "same", "dilation": 3, "groups": 2}, (4, 15)),
    ((2, 3, 4), {"padding": 2, "padding_mode": "reflect", "bias": False}, (2, 9)),
    ((2, 3, 3), {"padding": 1, "padding_mode": "circular"}, (2, 9)),
]


def _split(case):
    if len(case) == 2:
        return case[0], {}, case[1]
    return case


def make_pair(masked_class, dense_class, args, kwargs, seed=0):
    """A torch conv and a masked conv holding the same weights."""
    torch.manual_seed(seed)
    dense = dense_class(*args, **kwargs)
    masked = masked_class(*args, **kwargs)
    missing, unexpected = masked.load_state_dict(dense.state_dict(), strict=False)
    assert set(missing) <= {"mask", "bias_mask"}
    assert unexpected == []
    return dense, masked


ALL_CASES = [(MaskedConv2d, nn.Conv2d, case) for case in CONV2D_CASES] + [
    (MaskedConv1d, nn.Conv1d, case) for case in CONV1D_CASES
]


class TestDropIn:
    @pytest.mark.parametrize(("masked_class", "dense_class", "case"), ALL_CASES)
    def test_equal_outputs_with_full_mask(self, masked_class, dense_class, case):
        args, kwargs, shape = _split(case)
        dense, masked = make_pair(masked_class, dense_class, args, kwargs)
        x = torch.randn(2, *shape)
        assert torch.equal(masked(x), dense(x))

    @pytest.mark.parametrize(("masked_class", "dense_class", "case"), ALL_CASES)
    def test_same_attributes_and_parameter_names(self, masked_class, dense_class, case):
        args, kwargs, _ = _split(case)
        dense, masked = make_pair(masked_class, dense_class, args, kwargs)
        assert isinstance(masked, dense_class)
        assert isinstance(masked, MaskableModule)
        for attribute in ("stride", "padding", "dilation", "groups", "padding_mode"):
            assert getattr(masked, attribute) == getattr(dense, attribute)
        assert [n for n, _ in masked.named_parameters()] == [n for n, _ in dense.named_parameters()]
        expected_buffers = {"mask"} | ({"bias_mask"} if dense.bias is not None else set())
        assert {n for n, _ in masked.named_buffers()} == expected_buffers
        assert masked.mask.shape == masked.weight.shape
        assert masked.mask.dtype == torch.bool

    def test_masked_state_dict_loads_into_torch_conv(self):
        masked = MaskedConv2d(3, 4, 3)
        dense = nn.Conv2d(3, 4, 3)
        missing, unexpected = dense.load_state_dict(masked.state_dict(), strict=False)
        assert missing == []
        assert set(unexpected) == {"mask", "bias_mask"}
        assert torch.equal(dense.weight, masked.weight)

    def test_same_initialisation_as_torch(self):
        torch.manual_seed(3)
        dense = nn.Conv2d(3, 5, 3)
        torch.manual_seed(3)
        masked = MaskedConv2d(3, 5, 3)
        assert torch.equal(dense.weight, masked.weight)
        assert torch.equal(dense.bias, masked.bias)

    def test_float64_input_on_float32_conv(self):
        conv = MaskedConv2d(2, 3, 3)
        x = torch.randn(1, 2, 5, 5, dtype=torch.float64)
        out = conv(x)
        assert out.dtype == torch.float32
        assert torch.allclose(out, conv(x.float()))

    def test_float64_conv(self):
        conv = MaskedConv1d(2, 3, 3, dtype=torch.float64)
        assert conv(torch.randn(1, 2, 5)).dtype == torch.float64

    def test_repr_names_density(self):
        conv = MaskedConv2d(2, 2, 1)
        conv.mask[0] = False
        assert "density=0.5" in repr(conv)
        assert "kernel_size=(1, 1)" in repr(conv)


def hand_conv2d(conv, x):
    """The conv computed by F.conv2d with weight * mask and bias * bias_mask."""
    weight = conv.weight.detach() * conv.mask
    bias = None if conv.bias is None else conv.bias.detach() * conv.bias_mask
    return F.conv2d(x, weight, bias, conv.stride, conv.padding, conv.dilation, conv.groups)


class TestMasking:
    def test_forward_uses_masked_weight(self):
        torch.manual_seed(0)
        conv = MaskedConv2d(3, 4, 3, padding=1)
        conv.mask.copy_(torch.rand(conv.mask.shape) > 0.5)
        x = torch.randn(2, 3, 6, 6)
        assert torch.allclose(conv(x), hand_conv2d(conv, x), atol=1e-6)
        assert not torch.allclose(conv(x), nn.functional.conv2d(x, conv.weight, conv.bias, 1, 1))

    def test_masked_weights_get_zero_gradient(self):
        torch.manual_seed(0)
        conv = MaskedConv2d(4, 6, 3, groups=2)
        mask = torch.rand(conv.mask.shape) > 0.4
        conv.mask = mask
        conv.prune_output_channels([1])
        conv(torch.randn(3, 4, 7, 7)).square().sum().backward()
        assert bool((conv.weight.grad[~conv.mask] == 0).all())
        assert bool((conv.weight.grad[conv.mask] != 0).all())
        assert conv.bias.grad[1] == 0
        assert bool((conv.bias.grad[[0, 2, 3, 4, 5]] != 0).all())

    def test_full_mask_gradient_equals_torch(self):
        dense, masked = make_pair(MaskedConv1d, nn.Conv1d, (2, 3, 3), {"padding": 1})
        x = torch.randn(4, 2, 8)
        dense(x).sum().backward()
        masked(x).sum().backward()
        assert torch.equal(dense.weight.grad, masked.weight.grad)

    def test_parameters_and_mask_keep_identity(self):
        conv = MaskedConv2d(2, 3, 3)
        weight, mask = conv.weight, conv.mask
        conv.mask = torch.zeros(3, 2, 3, 3)
        conv.prune_kernels([0], [1])
        conv.apply_mask()
        conv.recompute_mask(0.1)
        conv.reset_parameters()
        assert conv.weight is weight
        assert conv.mask is mask
        assert bool(conv.mask.all())

    def test_apply_mask_zeroes_weights_and_biases(self):
        conv = MaskedConv2d(2, 3, 3)
        conv.prune_output_channels([2])
        conv.mask[0, 1, 0, 0] = False
        conv.apply_mask()
        assert bool((conv.weight[2] == 0).all())
        assert conv.weight[0, 1, 0, 0] == 0
        assert conv.bias[2] == 0
        assert int((conv.weight != 0).sum()) == conv.num_active_weights == 2 * 9 * 2 - 1

    def test_recompute_mask_keeps_large_weights_and_never_revives(self):
        conv = MaskedConv1d(1, 2, 3, bias=False)
        with torch.no_grad():
            conv.weight.copy_(torch.tensor([[[0.5, 0.01, -0.3]], [[0.0, -0.2, 0.9]]]))
        conv.mask[1, 0, 2] = False
        conv.recompute_mask(0.1)
        assert conv.mask.tolist() == [[[True, False, True]], [[False, True, False]]]

    def test_reset_parameters_keep_mask_uses_active_fan_in(self):
        torch.manual_seed(0)
        conv = MaskedConv2d(16, 2, 3)
        conv.mask[0] = False
        conv.mask[0, 0, 0, 0] = True  # filter 0 has fan-in 1, filter 1 has 144
        conv.reset_parameters(keep_mask=True)
        assert int(conv.mask.sum()) == 1 + 144
        assert conv.weight[1].abs().max() <= 1 / 12
        assert conv.weight[0].abs().max() > 1 / 12

    def test_maskable_layers_and_model_methods_find_convs(self):
        class Net(MaskedModel):
            def __init__(self):
                super().__init__()
                self.features = nn.Sequential(MaskedConv2d(1, 2, 3), nn.ReLU())
                self.blocks = nn.ModuleDict({"a": MaskedConv1d(2, 2, 1)})

        net = Net()
        layers = maskable_layers(net)
        assert layers == [net.features[0], net.blocks["a"]]
        with torch.no_grad():
            net.features[0].weight.fill_(0.05)
        net.recompute_mask(0.1)
        assert not bool(net.features[0].mask.any())
        assert bool(net.blocks["a"].mask.all())
        assert net.density == pytest.approx(4 / (18 + 4))

    def test_deepcopy_and_state_dict_round_trip(self):
        conv = MaskedConv2d(2, 3, 3, groups=1)
        conv.prune_kernels([0, 2], [1, 0])
        clone = copy.deepcopy(conv)
        assert torch.equal(clone.mask, conv.mask)
        fresh = MaskedConv2d(2, 3, 3)
        fresh.load_state_dict(conv.state_dict())
        assert torch.equal(fresh.kernel_mask, conv.kernel_mask)
        x = torch.randn(1, 2, 5, 5)
        assert torch.equal(fresh(x), conv(x))


class TestViews:
    def test_kernel_mask(self):
        conv = MaskedConv2d(3, 2, 3)
        conv.mask[1, 2] = False
        conv.mask[0, 0, 1, 1] = False  # one entry: the kernel stays active
        assert conv.kernel_mask.tolist() == [[True, True, True], [True, True, False]]

    def test_prune_kernels(self):
        conv = MaskedConv2d(3, 2, 3)
        conv.prune_kernels([0, 1], [2, 0])
        assert conv.kernel_mask.tolist() == [[True, True, False], [False, True, True]]
        assert conv.num_active_weights == 4 * 9

    def test_filter_view_includes_bias(self):
        conv = MaskedConv2d(2, 3, 3)
        conv.prune_filters([1])
        assert conv.output_channel_mask.tolist() == [True, False, True]
        assert conv.filter_mask.tolist() == [True, False, True]
        assert conv.bias_mask.tolist() == [True, False, True]
        out = conv(torch.randn(2, 2, 5, 5))
        assert bool((out[:, 1] == 0).all())
        # a filter with only its bias left is still active
        conv.bias_mask[1] = True
        assert conv.output_channel_mask.tolist() == [True, True, True]

    def test_input_channel_view(self):
        conv = MaskedConv1d(3, 2, 3)
        conv.prune_input_channels([1])
        assert conv.input_channel_mask.tolist() == [True, False, True]
        assert not bool(conv.mask[:, 1].any())
        x = torch.randn(2, 3, 7)
        changed = x.clone()
        changed[:, 1] += 10
        assert torch.equal(conv(x), conv(changed))

    def test_bool_selection_and_negative_indices(self):
        conv = MaskedConv2d(2, 4, 1)
        conv.prune_output_channels(torch.tensor([True, False, False, False]))
        conv.prune_output_channels([-1])
        assert conv.output_channel_mask.tolist() == [False, True, True, False]

    def test_bad_indices(self):
        conv = MaskedConv2d(2, 4, 1)
        with pytest.raises(MaskError, match="out of range"):
            conv.prune_output_channels([4])
        with pytest.raises(InputTypeError, match="not rounded"):
            conv.prune_input_channels([0.5])
        with pytest.raises(MaskError, match="one input channel per output channel"):
            conv.prune_kernels([0, 1], [0])
        assert bool(conv.mask.all())


class TestGroupedConv:
    def test_kernel_mask_shape_and_input_channels(self):
        conv = MaskedConv2d(4, 6, 3, groups=2)
        assert conv.kernel_mask.shape == (6, 2)
        conv.prune_input_channels([3])  # group 1, column 1: filters 3..5 only
        assert conv.mask[3:, 1].any().item() is False
        assert bool(conv.mask[:3].all())
        assert bool(conv.mask[3:, 0].all())
        assert conv.input_channel_mask.tolist() == [True, True, True, False]

    def test_prune_kernels_in_layer_channel_numbers(self):
        conv = MaskedConv2d(4, 4, 1, groups=2)
        conv.prune_kernels([3], [2])  # group 1: output 3 reads inputs 2 and 3
        assert conv.kernel_mask.tolist() == [
            [True, True],
            [True, True],
            [True, True],
            [False, True],
        ]

    def test_kernel_across_groups_is_refused(self):
        conv = MaskedConv2d(4, 4, 1, groups=2)
        with pytest.raises(MaskError, match="crosses groups"):
            conv.prune_kernels([0, 3], [1, 0])
        assert bool(conv.mask.all())

    def test_channel_connectivity_is_block_diagonal(self):
        conv = MaskedConv2d(4, 6, 3, groups=2)
        conv.prune_kernels([0], [1])
        expected = torch.zeros(6, 4, dtype=torch.bool)
        expected[:3, :2] = True
        expected[3:, 2:] = True
        expected[0, 1] = False
        assert torch.equal(conv.channel_connectivity(), expected)

    def test_set_channel_connectivity_round_trip(self):
        conv = MaskedConv2d(4, 6, 3, groups=2)
        wanted = torch.zeros(6, 4, dtype=torch.bool)
        wanted[0, 0] = wanted[2, 1] = wanted[4, 3] = wanted[5, 2] = True
        conv.set_channel_connectivity(wanted)
        assert torch.equal(conv.channel_connectivity(), wanted)
        assert conv.num_active_weights == 4 * 9

    def test_set_channel_connectivity_across_groups_is_refused(self):
        conv = MaskedConv2d(4, 6, 3, groups=2)
        conv.prune_kernels([0], [0])
        before = conv.mask.clone()
        wanted = torch.ones(6, 4, dtype=torch.bool)
        with pytest.raises(MaskError, match="groups=2"):
            conv.set_channel_connectivity(wanted)
        assert torch.equal(conv.mask, before)

    def test_wrong_shape_connectivity(self):
        conv = MaskedConv2d(4, 6, 3, groups=2)
        with pytest.raises(MaskError, match=r"\(6, 4\)"):
            conv.set_channel_connectivity(torch.ones(6, 2, dtype=torch.bool))


class TestMaskErrors:
    @staticmethod
    def _assign(conv, mask):
        conv.mask = mask

    @pytest.mark.parametrize("how", ["set_mask", "assign"])
    def test_wrong_shape_mask_names_both_shapes(self, how):
        conv = MaskedConv2d(4, 6, 3, groups=2)
        before = conv.mask.clone()
        bad = torch.ones(6, 4, 3, 3, dtype=torch.bool)  # the shape without groups
        setter = conv.set_mask if how == "set_mask" else lambda mask: self._assign(conv, mask)
        with pytest.raises(MaskError, match=r"\(6, 4, 3, 3\).*\(6, 2, 3, 3\)"):
            setter(bad)
        assert torch.equal(conv.mask, before)

    def test_non_boolean_mask(self):
        conv = MaskedConv1d(1, 1, 2)
        with pytest.raises(MaskError, match="other than 0 and 1"):
            conv.set_mask([[[0.5, 1.0]]])

    def test_bias_mask_of_conv_without_bias(self):
        conv = MaskedConv1d(1, 1, 2, bias=False)
        with pytest.raises(MaskError, match="no bias"):
            conv.bias_mask = torch.ones(1, dtype=torch.bool)

    def test_numpy_mask(self):
        conv = MaskedConv1d(1, 2, 2)
        conv.mask = [[[1, 0]], [[0, 1]]]
        assert conv.mask.tolist() == [[[True, False]], [[False, True]]]


class TestStructure:
    def test_generate_structure_is_the_channel_graph(self):
        conv = MaskedConv2d(2, 3, 3)
        conv.prune_kernels([0, 2], [1, 1])
        structure = conv.generate_structure()
        assert set(structure.nodes) == {("input", 0), ("input", 1)} | {
            ("output", o) for o in range(3)
        }
        assert set(structure.edges) == {
            (("input", 0), ("output", 0)),
            (("input", 0), ("output", 1)),
            (("input", 1), ("output", 1)),
            (("input", 0), ("output", 2)),
        }
        assert structure.nodes[("input", 1)]["role"] == "input"
        assert structure.nodes[("output", 2)]["role"] == "output"

    def test_grouped_structure_is_disconnected_per_group(self):
        conv = MaskedConv1d(4, 4, 1, groups=4)
        structure = conv.generate_structure()
        assert structure.number_of_edges() == 4
        assert nx.number_weakly_connected_components(structure) == 4
