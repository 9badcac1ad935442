"""MaskedConvNet and its presets: layouts, outputs equal to torch's, pruning, bad input."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from pypaddle.errors import ConfigError
from pypaddle.sparse import (
    VGG_BLOCKS,
    MaskedConv2d,
    MaskedConvNet,
    MaskedLinearLayer,
    maskable_layers,
    masked_lenet5,
    masked_vgg,
)


def torch_twin(model):
    """The same layout built from torch modules, holding the same weights."""
    convert = {
        MaskedConv2d: lambda m: nn.Conv2d(
            m.in_channels, m.out_channels, m.kernel_size, padding=m.padding
        ),
        MaskedLinearLayer: lambda m: nn.Linear(m.in_features, m.out_features),
    }

    def rebuild(sequential):
        return nn.Sequential(*(convert.get(type(m), copy.deepcopy)(m) for m in sequential))

    twin = nn.Module()
    twin.features = rebuild(model.features)
    twin.classifier = rebuild(model.classifier)
    missing, unexpected = twin.load_state_dict(model.state_dict(), strict=False)
    assert missing == []
    assert all(name.endswith("mask") for name in unexpected)
    return lambda x: twin.classifier(twin.features(x).flatten(1))


class TestLeNet5:
    def test_layout(self):
        model = masked_lenet5()
        convs = model.masked_convs()
        assert [(c.in_channels, c.out_channels, c.kernel_size, c.padding) for c in convs] == [
            (1, 6, (5, 5), (2, 2)),
            (6, 16, (5, 5), (0, 0)),
        ]
        linears = [m for m in model.classifier if isinstance(m, MaskedLinearLayer)]
        assert [(m.in_features, m.out_features) for m in linears] == [
            (400, 120),
            (120, 84),
            (84, 10),
        ]
        assert model.feature_shape == (16, 5, 5)
        assert len(maskable_layers(model)) == 5

    def test_equals_torch_twin_with_full_masks(self):
        torch.manual_seed(0)
        model = masked_lenet5()
        x = torch.randn(3, 1, 28, 28)
        assert torch.allclose(model(x), torch_twin(model)(x), atol=1e-6)

    def test_other_input_size(self):
        model = masked_lenet5((3, 32, 32), 5)
        assert model.feature_shape == (16, 6, 6)
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 5)


class TestVGG:
    @pytest.mark.parametrize(("depth", "convs"), [(11, 8), (13, 10), (16, 13), (19, 16)])
    def test_depths(self, depth, convs):
        model = masked_vgg(depth, width=0.0625)
        assert len(model.masked_convs()) == convs
        assert sum(isinstance(m, nn.BatchNorm2d) for m in model.features) == convs
        assert sum(isinstance(m, nn.MaxPool2d) for m in model.features) == 5
        assert model.feature_shape == (32, 1, 1)

    def test_width_scales_channels(self):
        model = masked_vgg(11, width=0.25, batch_norm=False)
        expected = [round(b / 4) for b in VGG_BLOCKS[11] if not isinstance(b, str)]
        assert [c.out_channels for c in model.masked_convs()] == expected
        assert not any(isinstance(m, nn.BatchNorm2d) for m in model.features)

    def test_forward_and_pruning(self):
        torch.manual_seed(0)
        model = masked_vgg(11, width=0.125, hidden_layers=[32])
        x = torch.randn(4, 3, 32, 32)
        model.eval()
        assert torch.allclose(model(x), torch_twin(model)(x), atol=1e-5)
        model.train()
        model(x).sum().backward()
        first = model.masked_convs()[0]
        first.prune_output_channels([0, 1])
        model.zero_grad()
        model(x).sum().backward()
        assert bool((first.weight.grad[:2] == 0).all())
        model.recompute_mask(0.05)
        assert 0 < model.density < 1


class TestGeneric:
    def test_valid_padding_and_average_pooling(self):
        model = MaskedConvNet((2, 20, 18), 4, [3, "A", 5], kernel_size=3, padding=0)
        # 20x18 -> conv 18x16 -> pool 9x8 -> conv 7x6
        assert model.feature_shape == (5, 7, 6)
        assert isinstance(model.features[2], nn.AvgPool2d)
        assert model(torch.randn(1, 2, 20, 18)).shape == (1, 4)

    def test_activation_and_hidden_layers(self):
        model = MaskedConvNet((1, 4, 4), 2, [2], hidden_layers=[5, 3], activation=nn.Tanh)
        assert isinstance(model.features[1], nn.Tanh)
        widths = [m.out_features for m in model.classifier if isinstance(m, MaskedLinearLayer)]
        assert widths == [5, 3, 2]

    def test_float64_input(self):
        model = MaskedConvNet((1, 4, 4), 2, [2])
        assert model(torch.randn(1, 1, 4, 4, dtype=torch.float64)).dtype == torch.float32


class TestBadInput:
    def test_unknown_block(self):
        with pytest.raises(ConfigError, match="block 1 is 'P'"):
            MaskedConvNet((1, 8, 8), 2, [4, "P"])

    def test_image_shrinks_to_nothing(self):
        with pytest.raises(ConfigError, match="block 4"):
            MaskedConvNet((1, 8, 8), 2, [4, "M", "M", "M", "M"])
        with pytest.raises(ConfigError, match="block 0"):
            MaskedConvNet((1, 2, 2), 2, [4], kernel_size=3, padding=0)

    def test_wrong_input_shape(self):
        model = masked_lenet5()
        with pytest.raises(ConfigError, match=r"\[batch, 1, 28, 28\]"):
            model(torch.randn(2, 1, 32, 32))

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"input_shape": (28, 28)}, "channels, height, width"),
            ({"padding": (1, 1, 1)}, "3 values for 2 convs"),
            ({"padding": -1}, "non-negative"),
            ({"num_classes": 0}, "num_classes"),
        ],
    )
    def test_bad_arguments(self, kwargs, message):
        arguments = {"input_shape": (1, 8, 8), "num_classes": 2, "blocks": [2, "M", 2]}
        arguments.update(kwargs)
        with pytest.raises(ConfigError, match=message):
            MaskedConvNet(**arguments)

    def test_bad_vgg(self):
        with pytest.raises(ConfigError, match="depth"):
            masked_vgg(12)
        with pytest.raises(ConfigError, match="width"):
            masked_vgg(11, width=0)
