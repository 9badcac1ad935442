"""The old-API names in pypaddle.util: set_random_masks and build_layer_index."""

from __future__ import annotations

import functools

import networkx as nx
import pytest
import torch
from torch import nn

from pypaddle.errors import ConfigError, InputTypeError
from pypaddle.graph import CachedLayeredGraph, layer_index
from pypaddle.sparse import MaskedDeepFFN, MaskedLinearLayer, maskable_layers
from pypaddle.util import build_layer_index, set_random_masks


def masks_of(model):
    return [layer.mask.clone() for layer in maskable_layers(model)]


class TestSetRandomMasks:
    def test_via_apply(self):
        torch.manual_seed(0)
        model = MaskedDeepFFN(20, 4, [30, 30])
        masks = [layer.mask for layer in maskable_layers(model)]
        returned = model.apply(set_random_masks)
        assert returned is model
        assert [layer.mask for layer in maskable_layers(model)] == masks  # same objects
        assert 0.4 < model.density < 0.6
        for layer in maskable_layers(model):
            assert layer.mask.dtype == torch.bool
            assert 0 < layer.num_active_weights < layer.num_weights

    def test_seeded_generator_is_reproducible(self):
        model = MaskedDeepFFN(10, 3, [8])
        model.apply(functools.partial(set_random_masks, generator=torch.Generator().manual_seed(5)))
        first = masks_of(model)
        model.apply(functools.partial(set_random_masks, generator=torch.Generator().manual_seed(5)))
        assert all(torch.equal(a, b) for a, b in zip(first, masks_of(model), strict=True))
        model.apply(functools.partial(set_random_masks, generator=torch.Generator().manual_seed(6)))
        assert not all(torch.equal(a, b) for a, b in zip(first, masks_of(model), strict=True))

    def test_global_seed_is_reproducible(self):
        layer = MaskedLinearLayer(30, 20)
        torch.manual_seed(1)
        set_random_masks(layer)
        first = layer.mask.clone()
        torch.manual_seed(1)
        set_random_masks(layer)
        assert torch.equal(layer.mask, first)

    @pytest.mark.parametrize("density", [0.1, 0.25, 0.8])
    def test_density_honoured(self, density):
        layer = MaskedLinearLayer(100, 100)
        set_random_masks(layer, density=density, generator=torch.Generator().manual_seed(0))
        # 10,000 Bernoulli draws: three standard deviations are below 0.013
        assert layer.density == pytest.approx(density, abs=0.015)

    @pytest.mark.parametrize(("density", "active"), [(0.0, 0), (1.0, 12)])
    def test_density_extremes(self, density, active):
        layer = MaskedLinearLayer(4, 3)
        set_random_masks(layer, density=density)
        assert layer.num_active_weights == active

    def test_non_masked_modules_untouched(self):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(3, 3), nn.LayerNorm(3), MaskedLinearLayer(3, 3))
        before = {name: value.clone() for name, value in model.state_dict().items()}
        model.apply(functools.partial(set_random_masks, density=0.0))
        after = model.state_dict()
        for name in ("0.weight", "0.bias", "1.weight", "1.bias", "2.weight", "2.bias"):
            assert torch.equal(after[name], before[name])
        assert model[2].num_active_weights == 0
        assert not hasattr(model[0], "mask")
        assert bool(model[2].bias_mask.all())

    @pytest.mark.parametrize("density", [-0.1, 1.5, float("nan")])
    def test_density_out_of_range(self, density):
        layer = MaskedLinearLayer(4, 3)
        with pytest.raises(ConfigError, match="density"):
            set_random_masks(layer, density=density)
        assert bool(layer.mask.all())

    @pytest.mark.parametrize("density", ["0.5", None, True])
    def test_density_of_wrong_type(self, density):
        with pytest.raises(InputTypeError, match="density"):
            set_random_masks(MaskedLinearLayer(4, 3), density=density)

    def test_density_is_keyword_only(self):
        with pytest.raises(TypeError):
            set_random_masks(MaskedLinearLayer(4, 3), 0.5)


class TestBuildLayerIndex:
    def test_same_as_layer_index(self):
        graph = nx.DiGraph([(0, 2), (1, 2), (2, 3), (0, 3)])
        expected = ({0: 0, 2: 1, 1: 0, 3: 2}, {0: [0, 1], 1: [2], 2: [3]})
        assert layer_index(graph) == expected
        assert build_layer_index(graph) == expected

    def test_cached_layered_graph(self):
        graph = CachedLayeredGraph([("a", "b")])
        assert build_layer_index(graph) == ({"a": 0, "b": 1}, {0: ["a"], 1: ["b"]})

    def test_fills_the_dict_given(self):
        filled = {}
        result = build_layer_index(nx.DiGraph([(0, 1), (1, 2)]), filled)
        assert filled == {0: 0, 1: 1, 2: 2}
        assert result[0] == filled


def test_set_random_masks_draws_every_mask_of_a_recurrent_net():
    from pypaddle.sparse import MaskedLSTM

    lstm = MaskedLSTM(4, 6, num_layers=2)
    set_random_masks(lstm, density=0.5, generator=torch.Generator().manual_seed(0))
    for weight, mask in lstm.masked_parameters():
        values = getattr(lstm, mask)
        assert values.shape == getattr(lstm, weight).shape
        assert 0.2 < values.float().mean().item() < 0.8


def test_get_and_set_mask_name_the_weight_of_a_recurrent_net():
    from pypaddle.errors import MaskError
    from pypaddle.sparse import MaskedGRU

    gru = MaskedGRU(3, 5)
    gru.set_mask(torch.zeros(15, 3, dtype=torch.bool), "weight_ih_l0")
    assert not gru.get_mask("weight_ih_l0").any()
    assert gru.get_mask("weight_hh_l0").all()
    with pytest.raises(MaskError, match="weight_ih_l0, weight_hh_l0"):
        gru.get_mask()
