"""The recurrent nets, cell networks and conv nets under pypaddle.prune and graph priors."""

from __future__ import annotations

import pytest
import torch

from pypaddle.graph import erdos_renyi, watts_strogatz
from pypaddle.prune import prune
from pypaddle.sparse import (
    DeepCellDAN,
    MaskedConv2d,
    MaskedDeepRNN,
    MaskedGRULayer,
    MaskedLSTM,
    conv_bn_relu_cell,
    masked_lenet5,
    relational_connectivity,
    relational_structure,
)


@pytest.mark.parametrize("scope", ["global", "layer"])
def test_prune_a_masked_lstm(scope):
    torch.manual_seed(0)
    lstm = MaskedLSTM(5, 8, num_layers=2, bidirectional=True)
    removed = prune(lstm, 0.5, scope=scope)
    assert removed == lstm.num_weights // 2
    assert lstm.density == pytest.approx(0.5)
    output, _ = lstm(torch.randn(6, 3, 5))
    output.sum().backward()
    for weight, mask in lstm.masked_parameters():
        assert bool((getattr(lstm, weight).grad[~getattr(lstm, mask)] == 0).all())


def test_prune_old_api_deep_rnn():
    model = MaskedDeepRNN(3, [6, 4], build_recurrent_layer=MaskedGRULayer)
    prune(model, 0.25)
    assert model.density == pytest.approx(0.75, abs=0.01)
    assert model(torch.randn(5, 2, 3)).shape == (2, 4)


def test_prune_lenet_filters():
    model = masked_lenet5()
    prune(model, 0.5, granularity="filter", scope="layer")
    first = model.masked_convs()[0]
    assert int((~first.output_channel_mask).sum()) == 3
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_cell_network_on_a_watts_strogatz_prior():
    structure = watts_strogatz(30, 4, 0.3, seed=0)
    model = DeepCellDAN(5, 3, conv_bn_relu_cell, structure)
    assert set(model.cell_structure().edges) == set(structure.edges)
    # pruning whole input channels of the cells' convs cuts edges of the structure
    cells = [model.cell(v).conv for v in model.vertices if len(model.cell_inputs(v)) > 1]
    prune(cells, 0.3, granularity="input", scope="global")
    surviving = set(model.cell_structure().edges)
    assert surviving < set(structure.edges)
    cut = sum(int((~conv.input_channel_mask).sum()) for conv in cells)
    assert len(structure.edges) - len(surviving) == cut


def test_relational_conv_from_an_erdos_renyi_prior():
    prior = erdos_renyi(8, 0.4, seed=1)
    conv = MaskedConv2d(16, 24, 3)
    conv.set_channel_connectivity(relational_connectivity(prior, 16, 24))
    back = relational_structure(conv, list(prior))
    assert set(back.edges) == set(prior.edges)
