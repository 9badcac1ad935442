import pytest
import torch
from torch import nn

import pypaddle
from bad_values import assert_unchanged, snapshot


def test_snapshot_sees_a_changed_buffer_and_mode():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    before = snapshot(model)
    assert_unchanged(before, model)
    model(torch.randn(4, 2))
    with pytest.raises(AssertionError):
        assert_unchanged(before, model)
    before = snapshot(model)
    model.eval()
    with pytest.raises(AssertionError):
        assert_unchanged(before, model)


def test_snapshot_sees_a_changed_mask():
    layer = pypaddle.sparse.MaskedLinearLayer(3, 2)
    before = snapshot(layer)
    layer.mask[0, 0] = False
    with pytest.raises(AssertionError):
        assert_unchanged(before, layer)


def test_a_nan_graph_attribute_that_stays_is_unchanged():
    import math

    import networkx as nx

    graph = nx.DiGraph(score=math.nan)
    before = snapshot(graph)
    assert_unchanged(before, graph)
    graph.graph["score"] = 1.0
    with pytest.raises(AssertionError):
        assert_unchanged(before, graph)
