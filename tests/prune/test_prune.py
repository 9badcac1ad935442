"""prune(): amounts, scopes, granularities, ties, and equality with torch.nn.utils.prune."""

from __future__ import annotations

import pytest
import torch
from prune_helpers import FourDimMasked, masks
from torch import nn
from torch.nn.utils import prune as torch_prune

from pypaddle.errors import ConfigError, InputTypeError, MaskError, PaddleError
from pypaddle.prune import prune, report
from pypaddle.sparse import MaskableModule, MaskedDeepFFN, MaskedLinear, maskable_layers


def _ffn(seed: int = 0, hidden: tuple[int, ...] = (300, 100)) -> MaskedDeepFFN:
    torch.manual_seed(seed)
    return MaskedDeepFFN(64, 10, list(hidden))


def _torch_twins(model: nn.Module) -> list[nn.Linear]:
    """Plain nn.Linear layers holding the same weights as the masked layers of ``model``."""
    twins = []
    for layer in maskable_layers(model):
        twin = nn.Linear(layer.in_features, layer.out_features)
        with torch.no_grad():
            twin.weight.copy_(layer.weight)
        twins.append(twin)
    return twins


class TestSameMasksAsTorch:
    @pytest.mark.parametrize("seed", [0, 1, 2])
    def test_global_scope_equals_global_unstructured_over_repeated_calls(self, seed):
        model = _ffn(seed)
        twins = _torch_twins(model)
        parameters = [(twin, "weight") for twin in twins]
        for amount in (0.3, 0.5, 1000, 0.25, 0.9, 7):
            prune(model, amount)
            torch_prune.global_unstructured(
                parameters, pruning_method=torch_prune.L1Unstructured, amount=amount
            )
            for twin, layer in zip(twins, maskable_layers(model)):
                assert torch.equal(twin.weight_mask.bool(), layer.mask)

    @pytest.mark.parametrize("seed", [0, 1])
    def test_layer_scope_equals_l1_unstructured_over_repeated_calls(self, seed):
        model = _ffn(seed)
        twins = _torch_twins(model)
        for amount in (0.2, 0.5, 30, 0.75, 0.5):
            prune(model, amount, scope="layer")
            for twin in twins:
                torch_prune.l1_unstructured(twin, "weight", amount=amount)
            for twin, layer in zip(twins, maskable_layers(model)):
                assert torch.equal(twin.weight_mask.bool(), layer.mask)

    def test_float64_weights_too(self):
        model = _ffn(3).double()
        twins = [twin.double() for twin in _torch_twins(model)]
        parameters = [(twin, "weight") for twin in twins]
        for amount in (0.6, 0.6):
            prune(model, amount)
            torch_prune.global_unstructured(
                parameters, pruning_method=torch_prune.L1Unstructured, amount=amount
            )
        for twin, layer in zip(twins, maskable_layers(model)):
            assert torch.equal(twin.weight_mask.bool(), layer.mask)


class TestAmount:
    def test_fraction_counts_still_active_weights(self):
        layer = MaskedLinear(10, 10)
        layer.mask[:5] = False  # 50 active
        removed = prune(layer, 0.5)
        assert removed == 25
        assert int(layer.mask.sum()) == 25
        assert not layer.mask[:5].any()  # masked weights stay masked

    def test_count_and_rounding_as_torch(self):
        layer = MaskedLinear(5, 1)
        assert prune(layer, 0.5) == round(2.5) == 2  # Python rounds half to even
        assert prune(layer, 2) == 2
        assert int(layer.mask.sum()) == 1

    def test_zero_and_everything(self):
        layer = MaskedLinear(4, 3)
        assert prune(layer, 0) == 0
        assert prune(layer, 0.0) == 0
        assert prune(layer, 1.0) == 12
        assert not layer.mask.any()

    def test_weights_are_not_changed(self):
        model = _ffn()
        before = [layer.weight.clone() for layer in maskable_layers(model)]
        prune(model, 0.5)
        for weight, layer in zip(before, maskable_layers(model)):
            assert torch.equal(weight, layer.weight)

    @pytest.mark.parametrize("amount", [-0.1, 1.5, -1])
    def test_out_of_range_is_a_value_error_and_leaves_masks(self, amount):
        model = _ffn()
        prune(model, 0.3)
        before = masks(model)
        with pytest.raises(ConfigError) as error:
            prune(model, amount)
        assert isinstance(error.value, ValueError)
        assert isinstance(error.value, PaddleError)
        assert all(torch.equal(a, b) for a, b in zip(before, masks(model)))

    def test_count_above_active_names_both(self):
        layer = MaskedLinear(3, 2)
        with pytest.raises(ConfigError, match="only 6 are still active"):
            prune(layer, 7)
        assert layer.mask.all()

    @pytest.mark.parametrize("amount", ["half", True, None])
    def test_wrong_type(self, amount):
        with pytest.raises(InputTypeError):
            prune(MaskedLinear(3, 2), amount)


class TestTieRule:
    def test_first_of_equal_scores_removed_first_globally(self):
        first, second = MaskedLinear(2, 2), MaskedLinear(2, 2)
        with torch.no_grad():
            first.weight.copy_(torch.tensor([[1.0, 3.0], [2.0, 2.0]]))
            second.weight.copy_(torch.tensor([[2.0, 5.0], [2.0, 0.5]]))
        prune([first, second], 3)
        # 0.5 and 1.0 go; of the four 2.0s the first in module order, then row-major.
        assert first.mask.tolist() == [[False, True], [False, True]]
        assert second.mask.tolist() == [[True, True], [True, False]]

    def test_all_equal_removes_the_leading_ones(self):
        layer = MaskedLinear(4, 2)
        with torch.no_grad():
            layer.weight.fill_(1.0)
        prune(layer, 3)
        assert layer.mask.reshape(-1).tolist() == [False] * 3 + [True] * 5


class TestCriteria:
    def test_callable_criterion(self):
        layer = MaskedLinear(3, 2)
        order = torch.arange(6.0).reshape(2, 3)
        prune(layer, 2, criterion=lambda module, name: order)
        assert layer.mask.tolist() == [[False, False, True], [True, True, True]]

    def test_random_is_seeded(self):
        first, second = _ffn(), _ffn()
        prune(first, 0.5, criterion="random", seed=3)
        prune(second, 0.5, criterion="random", generator=torch.Generator().manual_seed(3))
        assert all(torch.equal(a, b) for a, b in zip(masks(first), masks(second)))
        third = _ffn()
        prune(third, 0.5, criterion="random", seed=4)
        assert not all(torch.equal(a, b) for a, b in zip(masks(first), masks(third)))

    def test_random_ignores_magnitude(self):
        layer = MaskedLinear(100, 100)
        prune(layer, 0.5, criterion="random", seed=0)
        kept = layer.weight.detach().abs()[layer.mask].mean()
        removed = layer.weight.detach().abs()[~layer.mask].mean()
        assert abs(float(kept - removed)) < 0.1 * float(kept)

    def test_scores_of_wrong_shape(self):
        layer = MaskedLinear(3, 2)
        with pytest.raises(MaskError, match=r"shape \(3,\)"):
            prune(layer, 1, criterion=lambda module, name: torch.ones(3))
        assert layer.mask.all()

    def test_nan_scores(self):
        layer = MaskedLinear(3, 2)
        with pytest.raises(ConfigError, match="NaN"):
            prune(layer, 1, criterion=lambda module, name: torch.full((2, 3), torch.nan))


class TestGranularity:
    def _layer(self) -> MaskedLinear:
        layer = MaskedLinear(4, 3)
        with torch.no_grad():
            layer.weight.copy_(
                torch.tensor([[4.0, 4.0, 4.0, 4.0], [1.0, 1.0, 0.5, 1.0], [2.0, 2.0, 2.0, 2.0]])
            )
        return layer

    def test_neuron_takes_row_and_bias(self):
        layer = self._layer()
        prune(layer, 1, granularity="neuron")
        assert layer.mask.tolist()[1] == [False] * 4
        assert layer.mask[[0, 2]].all()
        assert layer.bias_mask.tolist() == [True, False, True]

    def test_neuron_amount_counts_active_neurons(self):
        layer = self._layer()
        prune(layer, 1, granularity="neuron")
        prune(layer, 0.5, granularity="neuron")  # round(0.5 * 2) = 1 more neuron
        assert layer.bias_mask.tolist() == [True, False, False]

    def test_input_takes_column(self):
        layer = self._layer()
        prune(layer, 1, granularity="input")
        assert layer.mask[:, 2].tolist() == [False] * 3
        assert int(layer.mask.sum()) == 9
        assert layer.bias_mask.all()

    def test_group_score_sums_active_weights(self):
        layer = self._layer()
        layer.mask[0, :3] = False  # row 0 keeps only one 4.0: score 4 < 7 (row 2 is 8)
        prune(layer, 1, granularity="neuron")
        assert layer.bias_mask.tolist() == [True, False, True]
        prune(layer, 1, granularity="neuron")
        assert layer.bias_mask.tolist() == [False, False, True]

    def test_block(self):
        layer = MaskedLinear(4, 4)
        with torch.no_grad():
            layer.weight.copy_(torch.arange(16.0).reshape(4, 4) + 1)
        prune(layer, 2, granularity=("block", 2, 2))
        expected = torch.ones(4, 4, dtype=torch.bool)
        expected[:2, :] = False  # the two top blocks have the smallest sums
        assert torch.equal(layer.mask, expected)

    def test_block_global_over_layers(self):
        model = _ffn(hidden=(32,))
        prune(model, 0.5, granularity=("block", 2, 2))
        for layer in maskable_layers(model):
            blocks = layer.mask.reshape(layer.mask.shape[0] // 2, 2, -1, 2).permute(0, 2, 1, 3)
            sums = blocks.sum(dim=(2, 3))
            assert set(sums.unique().tolist()) <= {0, 4}
        assert model.density == pytest.approx(0.5, abs=1e-3)

    def test_n_m_keeps_n_best_of_each_m(self):
        layer = MaskedLinear(8, 2)
        with torch.no_grad():
            layer.weight.copy_(
                torch.tensor([[1.0, -5, 3, 2, 0.1, 0.2, -0.3, 0.4], [1, 1, 1, 1, 4, 3, 2, 1]])
            )
        prune(layer, None, granularity=("n:m", 2, 4))
        assert layer.mask.int().tolist() == [[0, 1, 1, 0, 0, 0, 1, 1], [0, 0, 1, 1, 1, 1, 0, 0]]

    def test_n_m_ties_keep_the_later_weights_and_both_rankings_agree(self, monkeypatch):
        from pypaddle.prune import _prune

        layer = MaskedLinear(4, 1)
        with torch.no_grad():
            layer.weight.fill_(1.0)
        prune(layer, None, granularity=("n:m", 1, 4))
        assert layer.mask.tolist() == [[False, False, False, True]]

        torch.manual_seed(0)
        scores = torch.randint(0, 3, (6, 16)).float()  # many ties
        pairwise, sorted_ = MaskedLinear(16, 6), MaskedLinear(16, 6)
        pairwise.mask[0, :5] = False
        sorted_.mask[0, :5] = False
        prune(pairwise, None, criterion=lambda module, name: scores, granularity=("n:m", 3, 8))
        monkeypatch.setattr(_prune, "_PAIRWISE_UP_TO", 0)
        prune(sorted_, None, criterion=lambda module, name: scores, granularity=("n:m", 3, 8))
        assert torch.equal(pairwise.mask, sorted_.mask)
        assert pairwise.mask.reshape(-1, 8).sum(1).tolist() == [3] * 12  # 3 active left in group 0
        assert not pairwise.mask[0, :5].any()

    def test_n_m_on_a_model_and_with_masked_weights(self):
        model = _ffn(hidden=(32,))
        prune(model, 0.5, criterion="random", seed=0)
        before = masks(model)
        prune(model, None, granularity=("n:m", 1, 4))
        for layer, old in zip(maskable_layers(model), before[::2]):
            assert (layer.mask.reshape(-1, 4).sum(1) <= 1).all()
            assert not (layer.mask & ~old).any()  # nothing revived
            # a group with an active weight keeps exactly one
            had = old.reshape(-1, 4).any(1)
            assert torch.equal(layer.mask.reshape(-1, 4).any(1), had)


class TestConvolutionShapes:
    def test_filter_channel_kernel_input(self):
        torch.manual_seed(0)
        conv = FourDimMasked(4, 3, (2, 2))
        with torch.no_grad():
            conv.weight.copy_(torch.arange(48.0).reshape(4, 3, 2, 2) + 1)
        prune(conv, 1, granularity="filter")
        assert not conv.mask[0].any()
        assert conv.mask[1:].all()
        assert conv.bias_mask.tolist() == [False, True, True, True]
        prune(conv, 1, granularity="channel")  # a synonym of filter: the next-smallest
        assert not conv.mask[1].any()
        assert conv.mask[2:].all()
        prune(conv, 2, granularity="kernel")
        assert not conv.mask[2, :2].any()
        assert conv.mask[2, 2].all()
        prune(conv, 1, granularity="input")
        assert not conv.mask[:, 0].any()
        assert int(conv.mask.sum()) == 12

    def test_block_and_n_m_see_filters_as_rows(self):
        conv = FourDimMasked(4, 2, (2, 2))  # rows of 8 weights
        prune(conv, 0.5, granularity=("block", 2, 4))
        assert int(conv.mask.sum()) == 16
        conv.mask.fill_(True)
        prune(conv, None, granularity=("n:m", 2, 4))
        assert (conv.mask.reshape(4, 2, 4).sum(-1) == 2).all()


class TestBadInput:
    def _check_untouched(self, call, error_type, match):
        model = _ffn(hidden=(30,))
        prune(model, 0.2)
        before = masks(model)
        with pytest.raises(error_type, match=match):
            call(model)
        assert all(torch.equal(a, b) for a, b in zip(before, masks(model)))

    def test_unknown_criterion_lists_valid(self):
        self._check_untouched(
            lambda model: prune(model, 0.5, criterion="l1"),
            ConfigError,
            "magnitude, random, snip, taylor, synflow",
        )

    def test_unknown_granularity_lists_valid(self):
        self._check_untouched(
            lambda model: prune(model, 0.5, granularity="row"), ConfigError, "neuron, input"
        )

    def test_unknown_scope(self):
        self._check_untouched(
            lambda model: prune(model, 0.5, scope="model"), ConfigError, "global, layer"
        )

    def test_block_that_does_not_tile_says_what_is_left(self):
        self._check_untouched(
            lambda model: prune(model, 0.5, granularity=("block", 4, 4)),
            ConfigError,
            "2 row.* would be left at the border",
        )

    def test_n_greater_than_m(self):
        self._check_untouched(
            lambda model: prune(model, None, granularity=("n:m", 5, 4)), ConfigError, "n <= m"
        )

    def test_n_m_with_an_amount(self):
        self._check_untouched(
            lambda model: prune(model, 0.5, granularity=("n:m", 2, 4)),
            ConfigError,
            "amount=None",
        )

    def test_snip_without_data(self):
        self._check_untouched(
            lambda model: prune(model, 0.5, criterion="snip"), ConfigError, "needs data"
        )

    def test_unknown_criterion_option(self):
        self._check_untouched(
            lambda model: prune(model, 0.5, criterion="random", sed=1),
            ConfigError,
            "accepts: seed, generator",
        )

    def test_no_maskable_modules(self):
        with pytest.raises(ConfigError, match="no maskable modules"):
            prune(nn.Sequential(nn.Linear(3, 2)), 0.5)
        with pytest.raises(ConfigError, match="no maskable modules"):
            prune([], 0.5)

    def test_not_a_model(self):
        with pytest.raises(InputTypeError):
            prune("model", 0.5)


class TestPeersComplaints:
    def test_deepcopy_and_strict_loading_after_pruning(self):
        import copy

        model = _ffn()
        prune(model, 0.5, scope="layer", granularity="neuron")
        twin = copy.deepcopy(model)
        assert all(torch.equal(a, b) for a, b in zip(masks(model), masks(twin)))
        fresh = _ffn(seed=1)
        fresh.load_state_dict(model.state_dict(), strict=True)
        probe = torch.randn(3, 64)
        assert torch.equal(fresh(probe), model(probe))

    def test_every_masked_parameter_of_a_multi_weight_module(self):
        class TwoWeights(MaskableModule):
            def __init__(self) -> None:
                super().__init__()
                self.weight_ih = nn.Parameter(torch.tensor([[1.0, 4.0], [5.0, 6.0]]))
                self.weight_hh = nn.Parameter(torch.tensor([[2.0, 3.0], [7.0, 8.0]]))
                for name in ("weight_ih", "weight_hh"):
                    self.register_buffer(f"{name}_mask", torch.ones(2, 2, dtype=torch.bool))

            def masked_parameters(self):
                return (("weight_ih", "weight_ih_mask"), ("weight_hh", "weight_hh_mask"))

        module = TwoWeights()
        prune(module, 3)
        assert module.weight_ih_mask.tolist() == [[False, True], [True, True]]
        assert module.weight_hh_mask.tolist() == [[False, False], [True, True]]
        names = [layer.name for layer in report(module).layers]
        assert names == ["TwoWeights.weight_ih", "TwoWeights.weight_hh"]
