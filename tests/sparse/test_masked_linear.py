"""MaskedLinearLayer: the mask buffer, first-order views, forward/backward, persistence."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from pypaddle.errors import ConfigError, InputTypeError, MaskError, PaddleError
from pypaddle.sparse import (
    MaskableModule,
    MaskedDeepFFN,
    MaskedLinear,
    MaskedLinearLayer,
    maskable_layers,
)
from pypaddle.sparse._common import check_size


def make_layer(in_features=4, out_features=3, *, bias=True, seed=0):
    torch.manual_seed(seed)
    return MaskedLinearLayer(in_features, out_features, bias=bias)


def hand_forward(layer, x):
    """x @ (W*M).T + b*bm, written out without the layer's forward."""
    weight = layer.weight.detach() * layer.mask
    out = x @ weight.T
    if layer.bias is not None:
        out = out + layer.bias.detach() * layer.bias_mask
    return out


class TestConstruction:
    def test_is_a_linear_and_alias(self):
        layer = make_layer()
        assert isinstance(layer, nn.Linear)
        assert isinstance(layer, MaskableModule)
        assert MaskedLinear is MaskedLinearLayer

    def test_masks_start_full_and_bool(self):
        layer = make_layer(4, 3)
        assert layer.mask.dtype == torch.bool
        assert layer.mask.shape == (3, 4)
        assert bool(layer.mask.all())
        assert layer.bias_mask.dtype == torch.bool
        assert layer.bias_mask.shape == (3,)
        assert bool(layer.bias_mask.all())

    def test_masks_are_buffers(self):
        layer = make_layer()
        assert dict(layer.named_buffers()).keys() == {"mask", "bias_mask"}
        assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]

    def test_no_bias_has_no_bias_mask(self):
        layer = make_layer(bias=False)
        assert layer.bias is None
        assert layer.bias_mask is None
        assert list(layer.state_dict()) == ["weight", "mask"]

    def test_initial_weights_equal_linear(self):
        torch.manual_seed(7)
        masked = MaskedLinearLayer(5, 3)
        torch.manual_seed(7)
        dense = nn.Linear(5, 3)
        assert torch.equal(masked.weight, dense.weight)
        assert torch.equal(masked.bias, dense.bias)


PATTERN = ((1, 0, 1, 0), (0, 0, 1, 1), (1, 1, 1, 0))


class TestSetMask:
    def expected(self):
        return torch.tensor(PATTERN, dtype=torch.bool)

    @pytest.mark.parametrize(
        "value",
        [
            torch.tensor(PATTERN, dtype=torch.bool),
            torch.tensor(PATTERN, dtype=torch.float32),
            torch.tensor(PATTERN, dtype=torch.int64),
            torch.tensor(PATTERN, dtype=torch.uint8),
            np.array(PATTERN, dtype=bool),
            np.array(PATTERN, dtype=np.float64),
            np.array(PATTERN, dtype=np.int32),
            [list(row) for row in PATTERN],
            [[float(v) for v in row] for row in PATTERN],
            [[bool(v) for v in row] for row in PATTERN],
        ],
        ids=[
            "bool-tensor",
            "float-tensor",
            "long-tensor",
            "uint8-tensor",
            "bool-array",
            "float-array",
            "int-array",
            "int-list",
            "float-list",
            "bool-list",
        ],
    )
    def test_assignment_accepts_boolean_like(self, value):
        layer = make_layer()
        mask_id, mask_ptr = id(layer.mask), layer.mask.data_ptr()
        layer.mask = value
        assert torch.equal(layer.mask, self.expected())
        assert layer.mask.dtype == torch.bool
        assert id(layer.mask) == mask_id
        assert layer.mask.data_ptr() == mask_ptr
        assert layer._buffers["mask"] is layer.mask

    def test_set_mask_and_get_mask(self):
        layer = make_layer()
        mask = layer.mask
        layer.set_mask(PATTERN)
        assert layer.get_mask() is mask
        assert torch.equal(layer.get_mask(), self.expected())

    def test_reversed_and_fortran_arrays(self):
        layer = make_layer()
        pattern = np.array(PATTERN, dtype=bool)
        layer.mask = pattern[::-1]
        assert torch.equal(layer.mask, self.expected().flip(0))
        layer.mask = np.asfortranarray(pattern)
        assert torch.equal(layer.mask, self.expected())

    def test_assignment_copies(self):
        layer = make_layer()
        source = torch.ones(3, 4, dtype=torch.bool)
        layer.mask = source
        source[0, 0] = False
        assert bool(layer.mask[0, 0])

    def test_in_place_edit(self):
        layer = make_layer()
        mask_id = id(layer.mask)
        layer.mask[:, :3] = False
        assert id(layer.mask) == mask_id
        assert layer.num_active_weights == 3
        assert torch.equal(layer.mask[:, 3], torch.ones(3, dtype=torch.bool))

    def test_new_data_after_a_forward_takes_effect(self):
        # mask.data = ... (common in older pruning code) does not bump the version
        # counter; the forward must still use the new mask
        layer = make_layer()
        x = torch.randn(2, 4)
        layer(x)
        layer.mask.data = torch.zeros(3, 4, dtype=torch.bool)
        torch.testing.assert_close(layer(x), layer.bias.expand(2, 3), rtol=0, atol=0)

    @pytest.mark.parametrize("shape", [(4, 3), (3,), (3, 4, 1), (12,), ()])
    def test_wrong_shape_names_both_shapes(self, shape):
        layer = make_layer()
        layer.mask[0, 0] = False
        before = layer.mask.clone()
        with pytest.raises(MaskError) as info:
            layer.mask = torch.ones(shape, dtype=torch.bool)
        assert str(tuple(shape)) in str(info.value)
        assert "(3, 4)" in str(info.value)
        assert torch.equal(layer.mask, before)

    @pytest.mark.parametrize(
        "value",
        [
            torch.full((3, 4), 0.5),
            torch.full((3, 4), 2, dtype=torch.long),
            torch.full((3, 4), -1.0),
            torch.full((3, 4), float("nan")),
            torch.ones(3, 4, dtype=torch.complex64),
            np.full((3, 4), "a"),
            [["yes"] * 4] * 3,
            [[1, 0], [1]],
            None,
            "1111",
        ],
        ids=[
            "half",
            "two",
            "minus-one",
            "nan",
            "complex",
            "str-array",
            "str-list",
            "ragged",
            "none",
            "str",
        ],
    )
    def test_non_boolean_values_rejected(self, value):
        layer = make_layer()
        layer.mask[1, 1] = False
        before = layer.mask.clone()
        with pytest.raises(MaskError):
            layer.mask = value
        assert torch.equal(layer.mask, before)

    def test_one_bad_entry_rejects_all(self):
        layer = make_layer()
        value = torch.zeros(3, 4)
        value[2, 3] = 0.5
        with pytest.raises(MaskError):
            layer.set_mask(value)
        assert bool(layer.mask.all())

    def test_mask_error_is_value_error(self):
        layer = make_layer()
        with pytest.raises(ValueError, match="shape"):
            layer.mask = torch.ones(2, 2)
        assert issubclass(MaskError, PaddleError)


class TestBiasMask:
    def test_assign_keeps_object(self):
        layer = make_layer()
        bias_mask = layer.bias_mask
        layer.bias_mask = [1, 0, 1]
        assert layer.bias_mask is bias_mask
        assert layer.bias_mask.tolist() == [True, False, True]

    def test_wrong_shape_names_both_shapes(self):
        layer = make_layer()
        with pytest.raises(MaskError, match=r"\(4,\).*\(3,\)"):
            layer.bias_mask = torch.ones(4, dtype=torch.bool)
        assert bool(layer.bias_mask.all())

    def test_non_boolean_rejected(self):
        layer = make_layer()
        with pytest.raises(MaskError):
            layer.bias_mask = torch.tensor([1.0, 0.5, 0.0])
        assert bool(layer.bias_mask.all())

    def test_layer_without_bias_refuses_a_bias_mask(self):
        layer = make_layer(bias=False)
        with pytest.raises(MaskError, match="no bias"):
            layer.bias_mask = torch.ones(3, dtype=torch.bool)
        assert layer.bias_mask is None
        assert "bias_mask" not in layer.state_dict()


class TestPruneNeurons:
    def test_rows_and_bias_masked(self):
        layer = make_layer(4, 3)
        layer.prune_neurons([0, 2])
        assert layer.mask.tolist() == [[False] * 4, [True] * 4, [False] * 4]
        assert layer.bias_mask.tolist() == [False, True, False]
        assert layer.neuron_mask.tolist() == [False, True, False]

    def test_pruned_neuron_outputs_exactly_zero(self):
        layer = make_layer(4, 3)
        with torch.no_grad():
            layer.bias.fill_(5.0)
        layer.prune_neurons([1])
        out = layer(torch.randn(6, 4))
        assert torch.equal(out[:, 1], torch.zeros(6))
        assert bool((out[:, 0] != 0).all())

    def test_pruned_neuron_contributes_nothing_downstream(self):
        torch.manual_seed(0)
        first, second = MaskedLinearLayer(4, 3), MaskedLinearLayer(3, 2)
        x = torch.randn(5, 4)
        first.prune_neurons([1])
        hidden = first(x)
        hidden_changed = hidden.clone()
        hidden_changed[:, 1] = 0.0
        assert torch.equal(second(hidden), second(hidden_changed))

    def test_negative_index_and_tensor(self):
        layer = make_layer(4, 3)
        layer.prune_neurons(torch.tensor([-1]))
        assert layer.neuron_mask.tolist() == [True, True, False]

    def test_bool_selection(self):
        layer = make_layer(4, 3)
        layer.prune_neurons([True, False, False])
        assert layer.neuron_mask.tolist() == [False, True, True]

    def test_bool_selection_of_wrong_length(self):
        layer = make_layer(4, 3)
        with pytest.raises(MaskError, match="3"):
            layer.prune_neurons([True, False])
        assert bool(layer.mask.all())

    def test_float_indices_not_truncated(self):
        layer = make_layer(4, 3)
        with pytest.raises(InputTypeError):
            layer.prune_neurons([1.7])
        assert bool(layer.mask.all())

    def test_empty_is_a_no_op(self):
        layer = make_layer(4, 3)
        layer.prune_neurons([])
        assert bool(layer.mask.all())

    @pytest.mark.parametrize("index", [3, -4, 100])
    def test_out_of_range(self, index):
        layer = make_layer(4, 3)
        with pytest.raises(MaskError, match="out of range"):
            layer.prune_neurons([0, index])
        assert bool(layer.mask.all())
        assert bool(layer.bias_mask.all())

    def test_without_bias(self):
        layer = make_layer(4, 3, bias=False)
        layer.prune_neurons([0])
        assert layer.neuron_mask.tolist() == [False, True, True]
        assert torch.equal(layer(torch.randn(2, 4))[:, 0], torch.zeros(2))


class TestPruneInputs:
    def test_columns_masked(self):
        layer = make_layer(4, 3)
        layer.prune_inputs([1, 3])
        assert layer.mask.tolist() == [[True, False, True, False]] * 3
        assert layer.input_mask.tolist() == [True, False, True, False]
        assert bool(layer.bias_mask.all())

    def test_pruned_input_is_ignored(self):
        layer = make_layer(4, 3)
        layer.prune_inputs([2])
        x = torch.randn(5, 4)
        x_changed = x.clone()
        x_changed[:, 2] = 1e6
        assert torch.equal(layer(x), layer(x_changed))

    def test_out_of_range(self):
        layer = make_layer(4, 3)
        with pytest.raises(MaskError, match="input feature"):
            layer.prune_inputs([4])
        assert bool(layer.mask.all())


class TestViews:
    def test_neuron_mask_counts_bias(self):
        layer = make_layer(2, 2)
        layer.mask[0] = False
        assert layer.neuron_mask.tolist() == [True, True]
        layer.bias_mask[0] = False
        assert layer.neuron_mask.tolist() == [False, True]

    def test_input_mask(self):
        layer = make_layer(3, 2)
        layer.mask[:, 0] = False
        layer.mask[0, 1] = False
        assert layer.input_mask.tolist() == [False, True, True]


class TestCounts:
    def test_full(self):
        layer = make_layer(4, 3)
        assert (layer.num_weights, layer.num_active_weights, layer.density) == (12, 12, 1.0)

    def test_partial(self):
        layer = make_layer(4, 3)
        layer.mask[:, :3] = False
        assert layer.num_weights == 12
        assert layer.num_active_weights == 3
        assert layer.density == 0.25
        assert "density=0.25" in repr(layer)

    def test_empty(self):
        layer = make_layer(4, 3)
        layer.mask = torch.zeros(3, 4)
        assert (layer.num_active_weights, layer.density) == (0, 0.0)


class TestForward:
    def test_hand_computed_numbers(self):
        layer = make_layer(3, 2)
        with torch.no_grad():
            layer.weight.copy_(torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))
            layer.bias.copy_(torch.tensor([10.0, 20.0]))
        layer.mask = [[1, 0, 1], [0, 1, 0]]
        layer.bias_mask = [False, True]
        out = layer(torch.tensor([[1.0, 1.0, 1.0], [1.0, 2.0, 3.0]]))
        assert out.tolist() == [[4.0, 25.0], [10.0, 30.0]]

    @settings(max_examples=30, deadline=None)
    @given(
        in_features=st.integers(1, 6),
        out_features=st.integers(1, 6),
        seed=st.integers(0, 2**16),
        density=st.floats(0.0, 1.0),
    )
    def test_equals_hand_computation(self, in_features, out_features, seed, density):
        generator = torch.Generator().manual_seed(seed)
        layer = MaskedLinearLayer(in_features, out_features)
        layer.mask = torch.rand(out_features, in_features, generator=generator) < density
        layer.bias_mask = torch.rand(out_features, generator=generator) < density
        x = torch.randn(4, in_features, generator=generator)
        torch.testing.assert_close(layer(x), hand_forward(layer, x), rtol=0, atol=1e-6)

    def test_masked_inf_and_nan_are_cleared_by_apply_mask(self):
        layer = make_layer(3, 2)
        with torch.no_grad():
            layer.weight[0, 0] = float("inf")
            layer.weight[1, 2] = float("nan")
            layer.bias[1] = float("inf")
        layer.mask[0, 0] = False
        layer.mask[1, 2] = False
        layer.bias_mask[1] = False
        # Masking multiplies by zero (as torch.nn.utils.prune does): inf * 0 is nan.
        assert not bool(torch.isfinite(layer(torch.ones(2, 3))).all())
        layer.apply_mask()
        out = layer(torch.ones(2, 3))
        assert bool(torch.isfinite(out).all())
        expected = torch.stack(
            [layer.weight[0, 1:].sum() + layer.bias[0], layer.weight[1, :2].sum()]
        ).detach()
        torch.testing.assert_close(out, expected.expand(2, 2))

    def test_float64_numpy_input_on_float32_layer(self):
        layer = make_layer(4, 3)
        layer.mask[:, 0] = False
        x = np.arange(8, dtype=np.float64).reshape(2, 4) / 10
        out = layer(torch.from_numpy(x))
        assert out.dtype == torch.float32
        torch.testing.assert_close(out, hand_forward(layer, torch.from_numpy(x).float()))

    def test_float64_layer(self):
        layer = make_layer(4, 3).to(torch.float64)
        layer.mask[:, 1] = False
        assert layer.weight.dtype == torch.float64
        assert layer.mask.dtype == torch.bool
        x = torch.randn(2, 4, dtype=torch.float64)
        out = layer(x)
        assert out.dtype == torch.float64
        torch.testing.assert_close(out, hand_forward(layer, x))
        assert layer(x.float()).dtype == torch.float64

    def test_bfloat16_layer(self):
        layer = make_layer(4, 3).to(torch.bfloat16)
        layer.prune_neurons([0])
        assert layer.mask.dtype == torch.bool
        assert layer.bias_mask.dtype == torch.bool
        out = layer(torch.randn(2, 4))
        assert out.dtype == torch.bfloat16
        assert torch.equal(out[:, 0], torch.zeros(2, dtype=torch.bfloat16))

    def test_batch_dimensions(self):
        layer = make_layer(4, 3)
        assert layer(torch.randn(2, 5, 4)).shape == (2, 5, 3)

    @pytest.mark.parametrize("dtype", [torch.int64, torch.bool, torch.complex64])
    def test_non_floating_input_is_named(self, dtype):
        layer = make_layer(4, 3)
        with pytest.raises(InputTypeError, match=rf"floating-point input, got {dtype}.*\.to"):
            layer(torch.ones(2, 4, dtype=dtype))

    def test_built_and_run_in_inference_mode(self):
        with torch.inference_mode():
            layer = make_layer(4, 3)
            layer.mask[0, 0] = False
            out = layer(torch.ones(2, 4))
            layer.mask[0] = False
            assert layer(torch.ones(2, 4))[:, 0].tolist() == [layer.bias[0].item()] * 2
        assert out.shape == (2, 3)


class TestMaskValueCache:
    """The forward caches the mask as 0/1 values; every way of changing the mask shows."""

    @pytest.mark.parametrize(
        "change",
        [
            lambda layer: layer.mask[:, :2].fill_(False),
            lambda layer: layer.mask.__setitem__((0, 1), False),
            lambda layer: layer.set_mask(torch.eye(3, 4, dtype=torch.bool)),
            lambda layer: setattr(layer, "mask", torch.zeros(3, 4)),
            lambda layer: layer.prune_neurons([2]),
            lambda layer: layer.recompute_mask(0.2),
            lambda layer: layer.load_state_dict(
                {**layer.state_dict(), "mask": torch.rand(3, 4) < 0.5}
            ),
            lambda layer: layer.bias_mask.fill_(False),
        ],
    )
    def test_forward_sees_every_change(self, change):
        layer = make_layer(4, 3)
        x = torch.randn(5, 4)
        torch.testing.assert_close(layer(x), hand_forward(layer, x))
        change(layer)
        torch.testing.assert_close(layer(x), hand_forward(layer, x))
        layer.mask.fill_(True)
        torch.testing.assert_close(layer(x), hand_forward(layer, x))

    def test_dtype_change_and_pickle(self):
        layer = make_layer(4, 3)
        layer.mask[0, 0] = False
        x = torch.randn(2, 4, dtype=torch.float64)
        layer(x)
        layer.double()
        torch.testing.assert_close(layer(x), hand_forward(layer, x))
        restored = pickle.loads(pickle.dumps(layer))
        assert "_mask_values" not in restored.__dict__
        torch.testing.assert_close(restored(x), layer(x))


class TestBackward:
    def test_masked_gradients_exactly_zero(self):
        layer = make_layer(5, 4)
        layer.mask = torch.rand(4, 5, generator=torch.Generator().manual_seed(1)) < 0.5
        layer.prune_neurons([3])
        layer(torch.randn(8, 5)).pow(2).sum().backward()
        assert bool((layer.weight.grad[~layer.mask] == 0).all())
        assert bool((layer.weight.grad[layer.mask] != 0).all())
        assert layer.bias.grad[3].item() == 0.0
        assert bool((layer.bias.grad[:3] != 0).all())

    def test_masked_gradient_zero_for_a_large_masked_weight(self):
        layer = make_layer(3, 2)
        with torch.no_grad():
            layer.weight[0, 0] = 1e30
        layer.mask[0, 0] = False
        layer(torch.ones(1, 3)).sum().backward()
        assert bool(torch.isfinite(layer.weight.grad).all())
        assert layer.weight.grad[0, 0].item() == 0.0

    def test_sgd_step_leaves_masked_weights(self):
        layer = make_layer(4, 3)
        layer.mask[:, 0] = False
        before = layer.weight.detach().clone()
        optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
        layer(torch.randn(5, 4)).sum().backward()
        optimizer.step()
        assert torch.equal(layer.weight[:, 0], before[:, 0])
        assert not torch.equal(layer.weight[:, 1:], before[:, 1:])


class TestApplyMask:
    def test_zeroes_masked_weights_and_biases(self):
        layer = make_layer(3, 2)
        with torch.no_grad():
            layer.weight.fill_(2.0)
            layer.bias.fill_(3.0)
            layer.weight[1, 1] = float("inf")
        layer.mask = [[1, 0, 1], [1, 0, 1]]
        layer.bias_mask = [False, True]
        weight = layer.weight
        layer.apply_mask()
        assert layer.weight is weight
        assert layer.weight.tolist() == [[2.0, 0.0, 2.0], [2.0, 0.0, 2.0]]
        assert layer.bias.tolist() == [0.0, 3.0]
        assert layer.mask.tolist() == [[True, False, True]] * 2

    def test_without_bias(self):
        layer = make_layer(2, 2, bias=False)
        layer.mask[0] = False
        layer.apply_mask()
        assert layer.weight[0].tolist() == [0.0, 0.0]
        assert bool((layer.weight[1] != 0).all())


class TestRecomputeMask:
    def test_threshold(self):
        layer = make_layer(3, 2)
        with torch.no_grad():
            layer.weight.copy_(torch.tensor([[0.0005, -0.002, 0.001], [-0.0009, 0.5, -3.0]]))
        layer.recompute_mask(theta=0.001)
        assert layer.mask.tolist() == [[False, True, False], [False, True, True]]

    def test_default_theta(self):
        layer = make_layer(2, 1)
        with torch.no_grad():
            layer.weight.copy_(torch.tensor([[0.001, 0.0011]]))
        layer.recompute_mask()
        assert layer.mask.tolist() == [[False, True]]

    def test_never_revives(self):
        layer = make_layer(3, 2)
        layer.mask[0, 0] = False
        with torch.no_grad():
            layer.weight[0, 0] = 1e6
        mask = layer.mask
        layer.recompute_mask(theta=0.001)
        assert layer.mask is mask
        assert not bool(layer.mask[0, 0])


class TestResetParameters:
    def test_resets_mask_by_default(self):
        layer = make_layer(4, 3)
        layer.prune_neurons([0])
        mask, bias_mask = layer.mask, layer.bias_mask
        layer.reset_parameters()
        assert layer.mask is mask
        assert layer.bias_mask is bias_mask
        assert bool(layer.mask.all())
        assert bool(layer.bias_mask.all())

    def test_keep_mask(self):
        layer = make_layer(4, 3)
        layer.prune_neurons([0])
        layer.mask[1, 1] = False
        expected = layer.mask.clone()
        old_weight = layer.weight.detach().clone()
        layer.reset_parameters(keep_mask=True)
        assert torch.equal(layer.mask, expected)
        assert layer.bias_mask.tolist() == [False, True, True]
        assert not torch.equal(layer.weight, old_weight)

    def test_keep_mask_bound_uses_active_fan_in(self):
        layer = make_layer(100, 50)
        layer.mask[:, 4:] = False
        layer.reset_parameters(keep_mask=True)
        # nn.Linear's bound for a fan-in of 4 is 1/sqrt(4)
        assert layer.weight.abs().max().item() <= 0.5
        assert layer.weight.abs().max().item() > 0.4

    @pytest.mark.parametrize("keep_mask", [False, True])
    def test_full_mask_equals_linear(self, keep_mask):
        masked, dense = make_layer(6, 4), nn.Linear(6, 4)
        torch.manual_seed(3)
        masked.reset_parameters(keep_mask=keep_mask)
        torch.manual_seed(3)
        dense.reset_parameters()
        assert torch.equal(masked.weight, dense.weight)
        assert torch.equal(masked.bias, dense.bias)


class TestStateDict:
    def test_round_trip_strict(self):
        layer = make_layer(4, 3)
        layer.mask[:, :2] = False
        layer.prune_neurons([2])
        fresh = make_layer(4, 3, seed=1)
        mask = fresh.mask
        result = fresh.load_state_dict(layer.state_dict(), strict=True)
        assert result.missing_keys == []
        assert result.unexpected_keys == []
        assert fresh.mask is mask
        assert torch.equal(fresh.mask, layer.mask)
        assert torch.equal(fresh.bias_mask, layer.bias_mask)
        assert torch.equal(fresh.weight, layer.weight)
        x = torch.randn(3, 4)
        assert torch.equal(fresh(x), layer(x))

    def test_round_trip_through_torch_save(self, tmp_path):
        layer = make_layer(4, 3)
        layer.mask[0] = False
        torch.save(layer.state_dict(), tmp_path / "layer.pt")
        fresh = make_layer(4, 3, seed=2)
        fresh.load_state_dict(torch.load(tmp_path / "layer.pt"))
        assert torch.equal(fresh.mask, layer.mask)

    def test_round_trip_ffn(self):
        torch.manual_seed(0)
        model = MaskedDeepFFN(6, 2, [5, 4])
        for layer in maskable_layers(model):
            draws = torch.rand(layer.mask.shape, generator=torch.Generator().manual_seed(4))
            layer.mask = draws < 0.5
        torch.manual_seed(1)
        fresh = MaskedDeepFFN(6, 2, [5, 4])
        fresh.load_state_dict(model.state_dict(), strict=True)
        for mine, theirs in zip(maskable_layers(fresh), maskable_layers(model), strict=True):
            assert torch.equal(mine.mask, theirs.mask)
        x = torch.randn(3, 6)
        assert torch.equal(fresh(x), model(x))

    def test_load_linear_state_dict(self):
        dense = nn.Linear(5, 3)
        layer = make_layer(5, 3, seed=4)
        layer.mask[0, 0] = False
        result = layer.load_state_dict(dense.state_dict(), strict=False)
        assert sorted(result.missing_keys) == ["bias_mask", "mask"]
        assert result.unexpected_keys == []
        assert torch.equal(layer.weight, dense.weight)
        assert not bool(layer.mask[0, 0])
        layer.mask[0, 0] = True
        x = torch.randn(2, 5)
        torch.testing.assert_close(layer(x), dense(x))

    def test_masks_saved_as_bool(self):
        state = make_layer().state_dict()
        assert state["mask"].dtype == torch.bool
        assert state["bias_mask"].dtype == torch.bool


class TestCopyAndMove:
    def test_deepcopy_independent_masks(self):
        layer = make_layer(4, 3)
        layer.mask[0, 0] = False
        clone = copy.deepcopy(layer)
        assert torch.equal(clone.mask, layer.mask)
        assert clone.mask.data_ptr() != layer.mask.data_ptr()
        clone.mask[1, 1] = False
        clone.bias_mask[2] = False
        assert bool(layer.mask[1, 1])
        assert bool(layer.bias_mask[2])
        clone.mask = torch.zeros(3, 4)
        assert layer.num_active_weights == 11

    def test_to_float64_keeps_bool_and_identity_of_module(self):
        model = nn.Sequential(make_layer(4, 3), nn.ReLU(), make_layer(3, 2))
        model[0].mask[0] = False
        model.to(torch.float64)
        for layer in maskable_layers(model):
            assert layer.mask.dtype == torch.bool
            assert layer.weight.dtype == torch.float64
        assert model[0].mask[0].tolist() == [False] * 4
        assert model(torch.randn(2, 4)).dtype == torch.float64

    def test_half_and_double_methods(self):
        layer = make_layer().double()
        assert layer.mask.dtype == torch.bool
        layer.half()
        assert layer.mask.dtype == torch.bool
        assert layer.bias_mask.dtype == torch.bool


class TestCompile:
    @pytest.mark.slow
    # torch.compile's own modules still define TorchScript methods while they load.
    @pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated")
    def test_compiled_equals_eager(self):
        layer = make_layer(4, 3)
        layer.mask[:, :2] = False
        layer.prune_neurons([1])
        x = torch.randn(5, 4)
        compiled = torch.compile(layer)
        torch.testing.assert_close(compiled(x), layer(x), rtol=0, atol=1e-6)
        assert torch.equal(compiled(x)[:, 1], torch.zeros(5))
        # an in-place mask edit after compiling is seen by the compiled module
        layer.mask[:, 2] = False
        torch.testing.assert_close(compiled(x), layer(x), rtol=0, atol=1e-6)
        torch.testing.assert_close(compiled(x), hand_forward(layer, x), rtol=0, atol=1e-6)


class TestMaskableLayers:
    def test_finds_at_any_depth_in_module_order(self):
        layers = [make_layer(2, 2) for _ in range(5)]

        class Box(nn.Module):
            def __init__(self):
                super().__init__()
                self.plain = nn.Linear(2, 2)
                self.inner = layers[3]
                self.deeper = nn.Sequential(nn.Sequential(layers[4]))

        model = nn.Sequential(
            layers[0],
            nn.ReLU(),
            nn.ModuleList([nn.Tanh(), layers[1]]),
            nn.ModuleDict({"x": layers[2], "y": nn.Linear(2, 2)}),
            Box(),
        )
        found = maskable_layers(model)
        assert [id(layer) for layer in found] == [id(layer) for layer in layers]

    def test_includes_the_model_itself(self):
        layer = make_layer()
        assert maskable_layers(layer) == [layer]

    def test_masked_model_includes_itself_first(self):
        class MaskedBox(MaskedLinearLayer):
            def __init__(self):
                super().__init__(2, 2)
                self.child = MaskedLinearLayer(2, 2)

        box = MaskedBox()
        assert maskable_layers(box) == [box, box.child]

    def test_shared_layer_once(self):
        layer = make_layer()
        assert maskable_layers(nn.Sequential(layer, layer)) == [layer]

    def test_no_masked_layers(self):
        assert maskable_layers(nn.Sequential(nn.Linear(2, 2))) == []

    @pytest.mark.parametrize("value", [[make_layer()], None, "model"])
    def test_non_module_is_a_type_error(self, value):
        with pytest.raises(InputTypeError) as info:
            maskable_layers(value)
        assert isinstance(info.value, TypeError)
        assert isinstance(info.value, PaddleError)


class TestMaskedModelMethods:
    def model(self):
        torch.manual_seed(0)
        return MaskedDeepFFN(4, 2, [3])

    def test_apply_mask_on_every_layer(self):
        model = self.model()
        for layer in maskable_layers(model):
            layer.mask[0] = False
        model.apply_mask()
        for layer in maskable_layers(model):
            assert bool((layer.weight[0] == 0).all())

    def test_recompute_mask_passes_theta(self):
        model = self.model()
        with torch.no_grad():
            for layer in maskable_layers(model):
                layer.weight.fill_(0.5)
                layer.weight[0, 0] = 0.01
        model.recompute_mask(theta=0.1)
        assert [layer.num_active_weights for layer in maskable_layers(model)] == [11, 5]

    def test_density_over_all_layers(self):
        model = self.model()
        layers = maskable_layers(model)
        layers[0].mask[:, :2] = False
        assert model.density == pytest.approx((12 - 6 + 6) / 18)


class TestCheckSize:
    @pytest.mark.parametrize("value", [1, 7, np.int64(3)])
    def test_positive_ints(self, value):
        assert check_size(value, "width") == int(value)

    @pytest.mark.parametrize("value", [0, -2, 2.0, "3", None, True, False])
    def test_rejects(self, value):
        with pytest.raises(ConfigError, match="width"):
            check_size(value, "width")
