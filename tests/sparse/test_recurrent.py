"""MaskedRNN / MaskedGRU / MaskedLSTM: drop-ins for torch's recurrent nets, masks, gates."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from pypaddle.errors import ConfigError, MaskError
from pypaddle.sparse import (
    MaskedDeepRNN,
    MaskedGRU,
    MaskedGRULayer,
    MaskedLSTM,
    MaskedLSTMLayer,
    MaskedRecurrentLayer,
    MaskedRNN,
    maskable_layers,
)

PAIRS = [(MaskedRNN, nn.RNN), (MaskedGRU, nn.GRU), (MaskedLSTM, nn.LSTM)]
OPTIONS = [
    {},
    {"num_layers": 2},
    {"num_layers": 2, "batch_first": True, "bidirectional": True},
    {"bias": False, "bidirectional": True},
    {"num_layers": 3, "dropout": 0.3},
]


def make_pair(masked_class, dense_class, options, seed=0):
    torch.manual_seed(seed)
    dense = dense_class(5, 4, **options)
    masked = masked_class(5, 4, **options)
    missing, unexpected = masked.load_state_dict(dense.state_dict(), strict=False)
    assert all(name.endswith("_mask") for name in missing)
    assert len(missing) == len(masked.masked_parameters())
    assert unexpected == []
    return dense, masked


def _input(options, batch=3, steps=6):
    shape = (batch, steps, 5) if options.get("batch_first") else (steps, batch, 5)
    return torch.randn(*shape)


def _assert_close(a, b, atol=1e-5):
    if isinstance(a, tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_close(x, y, atol)
    else:
        assert a.shape == b.shape
        assert torch.allclose(a, b, atol=atol), (a - b).abs().max()


def _sparse_masks(module, density=0.6, seed=1):
    generator = torch.Generator().manual_seed(seed)
    for _, mask_name in module.masked_parameters():
        mask = getattr(module, mask_name)
        mask.copy_(torch.rand(mask.shape, generator=generator) < density)


def _zeroed_copy(dense, masked):
    """A torch module whose weights are the masked module's weights with masks applied."""
    reference = copy.deepcopy(dense)
    with torch.no_grad():
        for weight, mask in masked.masked_parameters():
            getattr(reference, weight).mul_(getattr(masked, mask))
    return reference


CASES = [(m, d, o) for m, d in PAIRS for o in OPTIONS]


class TestDropIn:
    @pytest.mark.parametrize(("masked_class", "dense_class", "options"), CASES)
    def test_full_masks_equal_torch(self, masked_class, dense_class, options):
        dense, masked = make_pair(masked_class, dense_class, options)
        dense.eval()
        masked.eval()
        x = _input(options)
        _assert_close(masked(x), dense(x))

    @pytest.mark.parametrize(("masked_class", "dense_class", "options"), CASES)
    def test_partial_masks_equal_torch_on_zeroed_weights(self, masked_class, dense_class, options):
        dense, masked = make_pair(masked_class, dense_class, options)
        _sparse_masks(masked)
        reference = _zeroed_copy(dense, masked)
        x = _input(options)
        torch.manual_seed(5)  # dropout draws the same numbers in both kernels
        ours = masked(x)
        torch.manual_seed(5)
        _assert_close(ours, reference(x))

    @pytest.mark.parametrize(("masked_class", "dense_class"), PAIRS)
    def test_same_parameter_names_and_mask_buffers(self, masked_class, dense_class):
        dense, masked = make_pair(
            masked_class, dense_class, {"num_layers": 2, "bidirectional": True}
        )
        names = [name for name, _ in dense.named_parameters()]
        assert [name for name, _ in masked.named_parameters()] == names
        assert "weight_ih_l1_reverse" in names
        weights = [name for name in names if name.startswith("weight")]
        assert [name for name, _ in masked.named_buffers()] == [f"{w}_mask" for w in weights]
        for weight in weights:
            assert getattr(masked, f"{weight}_mask").shape == getattr(masked, weight).shape
            assert getattr(masked, f"{weight}_mask").dtype == torch.bool

    @pytest.mark.parametrize(("masked_class", "dense_class"), PAIRS)
    def test_state_dict_loads_into_torch_module(self, masked_class, dense_class):
        _, masked = make_pair(masked_class, dense_class, {})
        fresh = dense_class(5, 4)
        missing, unexpected = fresh.load_state_dict(masked.state_dict(), strict=False)
        assert missing == []
        assert sorted(unexpected) == ["weight_hh_l0_mask", "weight_ih_l0_mask"]

    def test_same_initialisation_as_torch(self):
        torch.manual_seed(2)
        dense = nn.LSTM(5, 4, num_layers=2)
        torch.manual_seed(2)
        masked = MaskedLSTM(5, 4, num_layers=2)
        for (name, a), (_, b) in zip(dense.named_parameters(), masked.named_parameters()):
            assert torch.equal(a, b), name

    def test_relu_rnn(self):
        dense, masked = make_pair(MaskedRNN, nn.RNN, {"nonlinearity": "relu"})
        _sparse_masks(masked)
        x = _input({})
        _assert_close(masked(x), _zeroed_copy(dense, masked)(x))

    # torch's own notice on CPU builds with oneDNN: it computes projections without it
    @pytest.mark.filterwarnings("ignore:LSTM with projections is not supported:UserWarning")
    def test_lstm_with_projection(self):
        dense, masked = make_pair(MaskedLSTM, nn.LSTM, {"proj_size": 2, "num_layers": 2})
        assert masked.weight_hr_l1_mask.shape == (2, 4)
        x = _input({})
        _assert_close(masked(x), dense(x))
        _sparse_masks(masked)
        _assert_close(masked(x), _zeroed_copy(dense, masked)(x))

    @pytest.mark.parametrize(("masked_class", "dense_class"), PAIRS)
    def test_given_hidden_state_unbatched_and_packed(self, masked_class, dense_class):
        dense, masked = make_pair(masked_class, dense_class, {"num_layers": 2})
        _sparse_masks(masked)
        reference = _zeroed_copy(dense, masked)
        is_lstm = masked_class is MaskedLSTM
        h = torch.randn(2, 3, 4)
        hx = (h, torch.randn(2, 3, 4)) if is_lstm else h
        x = _input({})
        _assert_close(masked(x, hx), reference(x, hx))
        # unbatched: [steps, features] with a [layers, hidden] state
        single = tuple(s[:, 0] for s in hx) if is_lstm else h[:, 0]
        _assert_close(masked(x[:, 0], single), reference(x[:, 0], single))
        # packed sequences of different lengths
        packed = pack_padded_sequence(x, [6, 4, 2], enforce_sorted=False)
        ours, ours_hidden = masked(packed, hx)
        theirs, theirs_hidden = reference(packed, hx)
        _assert_close(ours.data, theirs.data)
        _assert_close(ours_hidden, theirs_hidden)

    def test_float64_input_on_float32_module(self):
        lstm = MaskedLSTM(5, 4)
        x = torch.randn(6, 3, 5, dtype=torch.float64)
        output, _ = lstm(x)
        assert output.dtype == torch.float32
        lstm.weight_ih_l0_mask[0] = False
        assert lstm(x)[0].dtype == torch.float32

    def test_bad_input_rank(self):
        gru = MaskedGRU(5, 4)
        gru.weight_hh_l0_mask[0] = False
        with pytest.raises(ValueError, match="2-D or 3-D"):
            gru(torch.randn(2, 3, 4, 5))
        with pytest.raises(RuntimeError, match="hidden state must be 3-D"):
            gru(torch.randn(6, 3, 5), torch.randn(3, 4))


class TestMasks:
    @pytest.mark.parametrize(("masked_class", "dense_class"), PAIRS)
    def test_masked_weights_get_zero_gradient(self, masked_class, dense_class):
        _, masked = make_pair(masked_class, dense_class, {"num_layers": 2, "bidirectional": True})
        _sparse_masks(masked, density=0.5)
        output, _ = masked(_input({}))
        output.square().sum().backward()
        for weight, mask in masked.masked_parameters():
            grad = getattr(masked, weight).grad
            active = getattr(masked, mask)
            assert bool((grad[~active] == 0).all()), weight
            assert bool((grad[active] != 0).any()), weight

    def test_fully_masked_recurrence_ignores_history(self):
        rnn = MaskedRNN(2, 3, bias=False)
        rnn.weight_hh_l0_mask.fill_(False)
        x = torch.randn(4, 1, 2)
        output, _ = rnn(x)
        expected = torch.tanh(x @ rnn.weight_ih_l0.T)
        assert torch.allclose(output, expected, atol=1e-6)

    def test_apply_and_recompute_mask(self):
        gru = MaskedGRU(5, 4, num_layers=2)
        weight, mask = gru.weight_ih_l1, gru.weight_ih_l1_mask
        with torch.no_grad():
            gru.weight_hh_l0[0, 0] = 1e-4
        gru.weight_ih_l1_mask[:, 0] = False
        gru.recompute_mask(1e-3)
        assert not gru.weight_hh_l0_mask[0, 0]
        gru.apply_mask()
        assert bool((gru.weight_ih_l1[:, 0] == 0).all())
        assert gru.weight_hh_l0[0, 0] == 0
        assert gru.num_weights == sum(
            gru.get_parameter(w).numel() for w, _ in gru.masked_parameters()
        )
        assert gru.num_active_weights == gru.num_weights - 12 - 1
        assert gru.weight_ih_l1 is weight
        assert gru.weight_ih_l1_mask is mask
        gru.reset_parameters()
        assert gru.density == 1.0
        assert gru.weight_ih_l1_mask is mask

    def test_wrong_shape_mask(self):
        lstm = MaskedLSTM(5, 4)
        with pytest.raises(MaskError, match=r"\(16, 5\)"):
            lstm.weight_ih_l0_mask = torch.ones(16, 4, dtype=torch.bool)
        assert bool(lstm.weight_ih_l0_mask.all())

    def test_maskable_layers_and_deepcopy(self):
        model = nn.Sequential(MaskedLSTM(5, 4), nn.Linear(4, 1))
        assert maskable_layers(model) == [model[0]]
        model[0].weight_hh_l0_mask[1] = False
        clone = copy.deepcopy(model)
        assert torch.equal(clone[0].weight_hh_l0_mask, model[0].weight_hh_l0_mask)
        x = torch.randn(6, 2, 5)
        assert torch.equal(clone[0](x)[0], model[0](x)[0])

    def test_repr_names_density(self):
        rnn = MaskedRNN(2, 2)
        rnn.weight_ih_l0_mask.fill_(False)
        assert "density=0.5" in repr(rnn)


class TestGates:
    def test_gate_names(self):
        assert MaskedLSTM(2, 3).gate_names == ("input", "forget", "cell", "output")
        assert MaskedGRU(2, 3).gate_names == ("reset", "update", "new")
        assert MaskedRNN(2, 3).gate_names == ("hidden",)

    def test_gate_mask_is_a_view_of_the_weight_mask(self):
        lstm = MaskedLSTM(2, 3, bidirectional=True)
        gate = lstm.gate_mask("weight_ih_l0_reverse", "cell")
        assert gate.shape == (3, 2)
        gate.fill_(False)
        expected = torch.ones(12, 2, dtype=torch.bool)
        expected[6:9] = False
        assert torch.equal(lstm.weight_ih_l0_reverse_mask, expected)
        assert bool(lstm.weight_ih_l0_mask.all())
        assert torch.equal(lstm.gate_mask("weight_ih_l0_reverse", 2), gate)

    def test_pruned_forget_gate_forgets(self):
        # forget gate sigma(0 + b) with zero weights and bias -> 0.5 exactly
        lstm = MaskedLSTM(2, 3, bias=False)
        lstm.gate_mask("weight_ih_l0", "forget").fill_(False)
        lstm.gate_mask("weight_hh_l0", "forget").fill_(False)
        reference = nn.LSTM(2, 3, bias=False)
        reference.load_state_dict(lstm.state_dict(), strict=False)
        with torch.no_grad():
            reference.weight_ih_l0[3:6] = 0
            reference.weight_hh_l0[3:6] = 0
        x = torch.randn(5, 2, 2)
        _assert_close(lstm(x), reference(x))

    def test_bad_gate_requests(self):
        lstm = MaskedLSTM(2, 3, proj_size=2)
        with pytest.raises(ConfigError, match="unknown gate 'update'"):
            lstm.gate_mask("weight_ih_l0", "update")
        with pytest.raises(ConfigError, match="out of range"):
            lstm.gate_mask("weight_ih_l0", 4)
        with pytest.raises(ConfigError, match="not a gate weight"):
            lstm.gate_mask("weight_hr_l0", 0)
        with pytest.raises(ConfigError, match="not a gate weight"):
            lstm.gate_mask("bias_ih_l0", 0)


class TestOldAPI:
    def test_layers_are_single_layer_modules(self):
        layer = MaskedRecurrentLayer(3, 4, True, nonlinearity=nn.ReLU())
        assert isinstance(layer, MaskedRNN)
        assert layer.nonlinearity == "relu"
        assert layer.batch_first
        assert layer.num_layers == 1
        assert isinstance(MaskedGRULayer(3, 4), MaskedGRU)
        assert isinstance(MaskedLSTMLayer(3, 4), MaskedLSTM)

    def test_unfold_accepts_old_hidden_shape(self):
        layer = MaskedRecurrentLayer(3, 4)
        x = torch.randn(5, 2, 3)
        hx = torch.randn(2, 4)
        assert torch.equal(layer.unfold(x, hx), layer(x, hx.unsqueeze(0))[0])
        lstm = MaskedLSTMLayer(3, 4)
        states = (torch.randn(2, 4), torch.randn(2, 4))
        assert lstm.unfold(x, states).shape == (5, 2, 4)

    def test_old_mask_setters(self):
        layer = MaskedGRULayer(3, 2)
        layer.set_i2h_mask(torch.zeros(6, 3, dtype=torch.bool))
        layer.set_h2h_mask(torch.eye(2, dtype=torch.bool).repeat(3, 1))
        assert not bool(layer.weight_ih_l0_mask.any())
        assert int(layer.weight_hh_l0_mask.sum()) == 6

    def test_unsupported_nonlinearities(self):
        with pytest.raises(ConfigError, match="tanh and relu only"):
            MaskedRecurrentLayer(3, 4, nonlinearity=nn.Sigmoid())
        with pytest.raises(ConfigError, match="fixed gate nonlinearities"):
            MaskedLSTMLayer(3, 4, nonlinearity=nn.Tanh())

    @pytest.mark.parametrize("build", [MaskedRecurrentLayer, MaskedGRULayer, MaskedLSTMLayer])
    @pytest.mark.parametrize("batch_first", [False, True])
    def test_deep_rnn_returns_last_step_of_last_layer(self, build, batch_first):
        model = MaskedDeepRNN(3, [6, 4], build_recurrent_layer=build, batch_first=batch_first)
        x = torch.randn(2, 7, 3) if batch_first else torch.randn(7, 2, 3)
        out = model(x)
        assert out.shape == (2, 4)
        hidden = model.recurrent_layers[0](x)[0]
        full = model.recurrent_layers[1](hidden)[0]
        expected = full[:, -1] if batch_first else full[-1]
        assert torch.equal(out, expected)
        assert maskable_layers(model) == list(model.recurrent_layers)

    def test_deep_rnn_mask_methods_and_nonlinearity(self):
        model = MaskedDeepRNN(3, [4], nonlinearity="relu")
        assert model.recurrent_layers[0].nonlinearity == "relu"
        model.recurrent_layers[0].weight_ih_l0_mask.fill_(False)
        assert model.density == pytest.approx(16 / (12 + 16))
        model.apply_mask()
        assert bool((model.recurrent_layers[0].weight_ih_l0 == 0).all())

    @pytest.mark.parametrize("hidden_layers", [[], 4, [4, 0]])
    def test_deep_rnn_bad_sizes(self, hidden_layers):
        with pytest.raises(ConfigError):
            MaskedDeepRNN(3, hidden_layers)
