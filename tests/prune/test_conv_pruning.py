"""Pruning masked convolutions: filters, kernels, input channels (grouped too), blocks, N:M."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from pypaddle.prune import prune, report
from pypaddle.sparse import MaskedConv1d, MaskedConv2d, MaskedLinear, maskable_layers


def _conv(groups: int = 1) -> MaskedConv2d:
    conv = MaskedConv2d(4, 4, 3, groups=groups)
    with torch.no_grad():
        conv.weight.copy_(torch.arange(float(conv.weight.numel())).reshape(conv.weight.shape) + 1)
    return conv


class TestConvolutionGranularities:
    def test_filter_removes_the_smallest_filter_with_its_bias(self):
        conv = _conv()
        prune(conv, 1, granularity="filter")
        assert conv.output_channel_mask.tolist() == [False, True, True, True]
        assert conv.bias_mask.tolist() == [False, True, True, True]
        prune(conv, 1, granularity="channel")
        assert conv.output_channel_mask.tolist() == [False, False, True, True]

    def test_kernel_removes_whole_kernels(self):
        conv = _conv()
        prune(conv, 3, granularity="kernel")
        assert conv.kernel_mask[0].tolist() == [False, False, False, True]
        assert conv.kernel_mask[1:].all()
        assert int(conv.mask.sum()) == conv.mask.numel() - 27

    def test_input_channels(self):
        conv = _conv()
        prune(conv, 2, granularity="input")
        assert conv.input_channel_mask.tolist() == [False, False, True, True]

    def test_grouped_input_channels_are_the_layer_channels(self):
        conv = _conv(groups=2)  # weight [4, 2, 3, 3]; filters 0-1 read 0-1, filters 2-3 read 2-3
        prune(conv, 1, granularity="input")
        # channel 0 is column 0 of filters 0 and 1: the smallest weights
        assert conv.input_channel_mask.tolist() == [False, True, True, True]
        assert conv.kernel_mask.tolist() == [
            [False, True],
            [False, True],
            [True, True],
            [True, True],
        ]
        prune(conv, 1, granularity="input")
        assert conv.input_channel_mask.tolist() == [False, False, True, True]

    def test_block_and_n_m_on_filters_seen_as_rows(self):
        conv = _conv()  # rows of 4 * 9 = 36 weights
        prune(conv, 0.5, granularity=("block", 2, 6))
        assert int(conv.mask.sum()) == conv.mask.numel() // 2
        conv.mask.fill_(True)
        prune(conv, None, granularity=("n:m", 1, 4))
        assert (conv.mask.reshape(-1, 4).sum(1) == 1).all()

    def test_conv1d(self):
        conv = MaskedConv1d(3, 2, 5)
        prune(conv, 1, scope="layer", granularity="kernel")
        assert int(conv.kernel_mask.sum()) == 5


class TestMixedModel:
    def _model(self) -> nn.Sequential:
        torch.manual_seed(0)
        return nn.Sequential(
            MaskedConv2d(1, 8, 3),
            nn.ReLU(),
            MaskedConv2d(8, 8, 3),
            nn.Flatten(),
            MaskedLinear(8 * 4 * 4, 10),
        )

    def test_same_masks_as_torch_global_unstructured(self):
        model = self._model()
        twins = []
        for layer in maskable_layers(model):
            twin = nn.Linear(1, 1)
            del twin.weight
            twin.weight = nn.Parameter(layer.weight.detach().clone())
            twins.append(twin)
        for amount in (0.4, 0.4, 100):
            prune(model, amount)
            torch_prune.global_unstructured(
                [(twin, "weight") for twin in twins],
                pruning_method=torch_prune.L1Unstructured,
                amount=amount,
            )
        for twin, layer in zip(twins, maskable_layers(model)):
            assert torch.equal(twin.weight_mask.bool(), layer.mask)

    def test_filters_and_neurons_in_one_global_ranking(self):
        model = self._model()
        prune(model, 0.25, granularity="filter", prune_outputs=True)
        units = [int(layer.bias_mask.sum()) for layer in maskable_layers(model)]
        assert sum(units) == 26 - round(0.25 * 26)
        assert report(model).density < 1.0
        output = model(torch.randn(2, 1, 8, 8))
        assert output.shape == (2, 10)
