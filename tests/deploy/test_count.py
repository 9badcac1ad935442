"""count: parameters and multiply-accumulates, dense and effective."""

from __future__ import annotations

import networkx as nx
import pytest
import torch
from torch import nn

from pypaddle.deploy import count, to_sparse
from pypaddle.errors import InputTypeError
from pypaddle.sparse import (
    MaskedConv2d,
    MaskedDeepDAN,
    MaskedDeepFFN,
    MaskedLinearLayer,
    MaskedLSTM,
)


class TestLinear:
    def test_hand_counted_ffn(self):
        model = MaskedDeepFFN(4, 2, [3])
        model.layers_main_hidden[0].mask[0] = False  # 4 weights
        model.layers_main_hidden[0].bias_mask[0] = False  # and a bias
        model.layer_out.mask[:, 2] = False  # 2 weights
        counts = count(model, torch.randn(5, 4))
        hidden, out = counts.layers
        assert (hidden.params, hidden.active_params, hidden.macs, hidden.effective_macs) == (
            15,
            10,
            12,
            8,
        )
        assert (out.params, out.active_params, out.macs, out.effective_macs) == (8, 6, 6, 4)
        assert (counts.macs, counts.effective_macs) == (18, 12)
        assert counts.flop_bound == pytest.approx(1.5)

    def test_totals_match_the_model(self):
        model = MaskedDeepFFN(10, 3, [8, 6], use_layer_norm=True)
        counts = count(model, torch.randn(2, 10))
        assert counts.params == sum(p.numel() for p in model.parameters())
        assert counts.active_params == counts.params

    def test_macs_per_sample_do_not_depend_on_the_batch(self):
        model = MaskedDeepFFN(10, 3, [8])
        assert count(model, torch.randn(1, 10)).macs == count(model, torch.randn(9, 10)).macs

    def test_dan_hidden_layers_are_counted(self):
        structure = nx.DiGraph([(0, 1), (1, 2), (0, 2)])
        model = MaskedDeepDAN(3, 2, structure)
        counts = count(model, torch.randn(4, 3))
        # layer 0: 3 inputs -> vertex 0; layer 1: 1 -> 1; layer 2 reads 0..1 (2 edges); out 1 -> 2
        assert [layer.effective_macs for layer in counts.layers] == [3, 1, 2, 2]

    def test_table_and_data(self):
        model = nn.Sequential(MaskedLinearLayer(4, 3), nn.ReLU(), nn.Linear(3, 2))
        model[0].mask[:, :2] = False
        counts = count(model, torch.randn(1, 4))
        data = counts.as_dict()
        assert data["effective_macs"] == 6 + 6
        assert [layer["name"] for layer in data["layers"]] == ["0", "2"]
        lines = counts.table().splitlines()
        assert lines[0].split()[:3] == ["layer", "kind", "params"]
        assert lines[-1].split() == ["total", "23", "17", "18", "12"]


class TestConvolution:
    def test_conv_macs_follow_the_output_size(self):
        model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, stride=2), nn.Flatten())
        counts = count(model, torch.randn(2, 3, 10, 10))
        assert counts.macs == 8 * 3 * 3 * 3 * 5 * 5

    def test_masked_conv_counts_active_kernel_entries(self):
        model = MaskedConv2d(2, 4, 3, padding=1)
        model.prune_output_channels([0])  # 18 weights and a bias
        model.mask[1, 0, 0, 0] = False
        counts = count(model, torch.randn(3, 2, 5, 5))
        (layer,) = counts.layers
        assert (layer.params, layer.active_params) == (76, 76 - 19 - 1)
        assert (layer.macs, layer.effective_macs) == (72 * 25, (72 - 19) * 25)

    def test_grouped_conv(self):
        model = nn.Conv1d(4, 6, 3, groups=2)
        assert count(model, torch.randn(1, 4, 10)).macs == 6 * 2 * 3 * 8


def test_sparse_kernel_layers_count_as_the_masked_layers_they_replace():
    torch.manual_seed(0)
    model = MaskedDeepFFN(6, 3, [8])
    model.layers_main_hidden[0].mask &= torch.rand(8, 6) < 0.4
    model.layers_main_hidden[0].prune_neurons([0])
    fast = to_sparse(model, rule=lambda density, *shape: True)
    assert type(fast.layers_main_hidden[0]).__name__ == "SparseLinear"
    x = torch.randn(1, 6)
    sparse, masked = count(fast, x).as_dict(), count(model, x).as_dict()
    for layer in sparse["layers"] + masked["layers"]:
        del layer["kind"]
    assert sparse == masked


class TestRecurrent:
    def test_lstm_weights_are_applied_once_per_step(self):
        # weight_ih [16, 3] and weight_hh [16, 4] per direction, 7 steps
        model = MaskedLSTM(3, 4, batch_first=True, bidirectional=True)
        model.weight_hh_l0_mask[:, 0] = False  # 16 entries
        counts = count(model, torch.randn(2, 7, 3))
        assert counts.macs == 7 * 2 * (16 * 3 + 16 * 4)
        assert counts.effective_macs == counts.macs - 7 * 16
        assert count(model, torch.randn(7, 3)).macs == counts.macs  # unbatched

    def test_plain_gru_and_sequence_first_input(self):
        counts = count(nn.GRU(3, 4, num_layers=2), torch.randn(5, 2, 3))
        assert counts.macs == counts.effective_macs == 5 * (12 * 3 + 12 * 4 + 12 * 4 + 12 * 4)


class TestContract:
    def test_hooks_removed_and_mode_restored(self):
        model = MaskedDeepFFN(4, 2, [3]).train()
        count(model, torch.randn(1, 4))
        assert model.training
        assert all(not module._forward_hooks for module in model.modules())

    def test_not_a_module(self):
        with pytest.raises(InputTypeError):
            count(lambda x: x, torch.randn(1))


def test_count_gives_every_module_back_its_own_training_flag():
    model = nn.Sequential(MaskedLinearLayer(4, 6), nn.BatchNorm1d(6), nn.ReLU())
    model.train()
    model[1].eval()  # a frozen batch norm inside a training model
    before = model[1].running_mean.clone()
    count(model, torch.randn(3, 4))
    assert model.training
    assert model[0].training
    assert not model[1].training
    assert torch.equal(model[1].running_mean, before)
