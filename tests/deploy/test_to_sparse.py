"""to_sparse / sparse_plan: CSR kernels per layer, the same outputs, measured choices."""

from __future__ import annotations

import networkx as nx
import pytest
import torch
from torch import nn

from pypaddle.deploy import SparseLinear, compact, sparse_plan, to_sparse
from pypaddle.errors import ConfigError, InputTypeError, StructureError
from pypaddle.sparse import MaskedDeepDAN, MaskedDeepFFN, MaskedLinearLayer


def always(*_):
    return True


def never(*_):
    return False


def sparse_ffn() -> MaskedDeepFFN:
    torch.manual_seed(0)
    model = MaskedDeepFFN(32, 5, [40, 30])
    for layer in model.layers_main_hidden:
        layer.mask &= torch.rand(layer.mask.shape) < 0.1
    model.layers_main_hidden[1].bias_mask[:4] = False
    return model


class TestSameOutputs:
    def test_ffn_all_sparse(self):
        model = sparse_ffn()
        fast = to_sparse(model, 4, rule=always)
        assert all(
            isinstance(layer, SparseLinear) for layer in [*fast.layers_main_hidden, fast.layer_out]
        )
        x = torch.randn(6, 32)
        torch.testing.assert_close(fast(x), model(x), rtol=0, atol=1e-5)

    def test_sparse_layer_keeps_only_active_weights(self):
        model = sparse_ffn()
        fast = to_sparse(model, rule=always)
        layer = fast.layers_main_hidden[0]
        assert layer.weight.values().numel() <= model.layers_main_hidden[0].num_active_weights
        assert layer.weight.col_indices().dtype == torch.int32

    def test_compacted_dan_then_sparse(self):
        graph = nx.gnp_random_graph(30, 0.3, seed=2, directed=True)
        structure = nx.DiGraph((u, v) for u, v in graph.edges if u < v)
        structure.add_nodes_from(range(30))
        model = MaskedDeepDAN(10, 3, structure)
        for layer in model.layers_main_hidden:
            layer.mask &= torch.rand(layer.mask.shape) < 0.5
        fast = to_sparse(compact(model), rule=always)
        assert any(isinstance(module, SparseLinear) for module in fast.modules())
        x = torch.randn(5, 10)
        torch.testing.assert_close(fast(x), model(x), rtol=0, atol=1e-5)

    def test_batched_and_float64_inputs(self):
        layer = SparseLinear.from_dense(torch.eye(3)[:, [2, 0, 1]], torch.tensor([1.0, 2, 3]))
        x = torch.arange(12.0, dtype=torch.float64).reshape(2, 2, 3)
        out = layer(x)
        assert out.shape == (2, 2, 3)
        assert out.dtype == torch.float32
        torch.testing.assert_close(out[0, 0], torch.tensor([2.0, 4, 3]))

    def test_a_single_layer_model(self):
        layer = MaskedLinearLayer(4, 3)
        assert isinstance(to_sparse(layer, rule=always), SparseLinear)


class TestChoice:
    def test_rule_sees_density_shape_and_batch(self):
        seen = []
        model = sparse_ffn()
        sparse_plan(model, 7, rule=lambda *args: seen.append(args) or False)
        density, out_features, in_features, batch = seen[0]
        assert (out_features, in_features, batch) == (40, 32, 7)
        assert density == pytest.approx(model.layers_main_hidden[0].density, abs=1e-9)

    def test_never_leaves_the_layers_dense(self):
        model = sparse_ffn()
        fast = to_sparse(model, rule=never)
        assert not any(isinstance(module, SparseLinear) for module in fast.modules())
        assert fast is not model

    def test_measured_choice_follows_the_times(self):
        torch.manual_seed(1)
        model = nn.Sequential(MaskedLinearLayer(256, 256), nn.ReLU(), MaskedLinearLayer(256, 8))
        model[0].mask &= torch.rand(256, 256) < 0.01
        for choice in sparse_plan(model, 2, rounds=3, min_speedup=1.1):
            assert choice.dense_seconds > 0
            assert choice.sparse_seconds > 0
            assert choice.sparse == (choice.dense_seconds >= 1.1 * choice.sparse_seconds)

    def test_model_is_not_changed(self):
        model = sparse_ffn()
        to_sparse(model, rule=always)
        assert isinstance(model.layers_main_hidden[0], MaskedLinearLayer)


class TestBadInput:
    def test_dan_must_be_compacted_first(self):
        model = MaskedDeepDAN(3, 2, nx.DiGraph([(0, 1)]))
        with pytest.raises(StructureError, match="compact it first"):
            to_sparse(model, rule=always)

    @pytest.mark.parametrize("batch_size", [0, -1, 2.5, True])
    def test_batch_size(self, batch_size):
        with pytest.raises(ConfigError, match="batch_size"):
            sparse_plan(sparse_ffn(), batch_size)

    def test_rule(self):
        with pytest.raises(ConfigError, match="rule"):
            sparse_plan(sparse_ffn(), rule="fast")

    def test_not_a_module(self):
        with pytest.raises(InputTypeError):
            to_sparse([1, 2])

    def test_dense_weight_for_sparse_linear(self):
        with pytest.raises(InputTypeError, match="from_dense"):
            SparseLinear(torch.zeros(2, 2), None)
