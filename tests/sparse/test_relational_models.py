"""Relational MLP and CNN (You et al. 2020): block masks, the complete graph is the dense
model, width matching, read-back, pruning, and bad input."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import torch
from torch import nn

from bad_values import NOT_COUNTS, assert_unchanged, snapshot, value_id
from pypaddle.deploy import count
from pypaddle.errors import ConfigError, InputTypeError, StructureError
from pypaddle.graph import ws_flex
from pypaddle.prune import prune
from pypaddle.sparse import (
    RelationalCNN,
    RelationalMLP,
    maskable_layers,
    matched_width,
    relational_mask,
)


def block_mask(graph: nx.Graph, block_in: int, block_out: int) -> torch.Tensor:
    """kron(A + I, ones) in torch's [out, in] layout: row block v reads column block u."""
    adjacency = nx.to_numpy_array(graph, nodelist=list(graph), weight=None) != 0
    reads = adjacency | np.eye(len(adjacency), dtype=bool)  # [u, v]: v reads u
    return torch.from_numpy(np.kron(reads.T, np.ones((block_out, block_in), dtype=bool)))


def dense_mlp(model: RelationalMLP) -> nn.Sequential:
    """The torch MLP with the model's parameters."""
    modules: list[nn.Module] = [nn.Flatten()]
    for layer in model.layers_main_hidden:
        linear = nn.Linear(layer.in_features, layer.out_features)
        linear.load_state_dict({"weight": layer.weight, "bias": layer.bias})
        modules += [linear, nn.ReLU()]
    head = nn.Linear(model.width, model.num_classes)
    head.load_state_dict({"weight": model.layer_out.weight, "bias": model.layer_out.bias})
    return nn.Sequential(*modules, head)


class TestRelationalMask:
    def test_is_the_kronecker_block_mask(self):
        graph = ws_flex(8, 3.5, 0.3, seed=0)
        assert torch.equal(relational_mask(graph, 16, 24), block_mask(graph, 2, 3))

    def test_directed_edges_carry_messages_one_way(self):
        mask = relational_mask(nx.DiGraph([(0, 1)]), 2, 2)
        assert mask.int().tolist() == [[1, 0], [1, 1]]  # node 1 reads node 0, not back

    def test_uneven_split_gives_the_first_nodes_one_unit_more(self):
        mask = relational_mask(nx.empty_graph(3), 7, 7, uneven=True)
        assert torch.equal(mask, torch.block_diag(*(torch.ones(s, s) for s in (3, 2, 2))) > 0)


class TestRelationalMLP:
    def test_relational_layers_carry_the_block_mask_and_the_rest_is_dense(self):
        graph = ws_flex(16, 5.5, 0.2, seed=1)
        model = RelationalMLP(64, 10, graph, 48, layers=3)
        assert len(model.relational_layers) == 3
        for layer in model.relational_layers:
            assert torch.equal(layer.mask, block_mask(graph, 3, 3))
            assert layer.density == pytest.approx((16 + 2 * 44) / 16**2)
        assert bool(model.layers_main_hidden[0].mask.all())
        assert bool(model.layer_out.mask.all())

    def test_complete_graph_gives_exactly_the_dense_mlp(self):
        torch.manual_seed(0)
        model = RelationalMLP((1, 8, 8), 10, nx.complete_graph(8), 32, layers=3)
        assert all(bool(layer.mask.all()) for layer in maskable_layers(model))
        inputs = torch.randn(17, 1, 8, 8)
        assert torch.equal(model(inputs), dense_mlp(model)(inputs))

    def test_sparse_graph_computes_with_masked_weights_and_masked_gradients(self):
        model = RelationalMLP(12, 3, nx.cycle_graph(6), 12, layers=2)
        reference = dense_mlp(model)
        for linear, layer in zip(list(reference)[3:-1:2], model.relational_layers):
            linear.weight.data.mul_(layer.mask)
        inputs = torch.randn(9, 12)
        torch.testing.assert_close(model(inputs), reference(inputs))
        model(inputs).sum().backward()
        for layer in model.relational_layers:
            assert bool((layer.weight.grad[~layer.mask] == 0).all())

    def test_relational_layers_start_at_the_scale_of_their_active_fan_in(self):
        torch.manual_seed(0)
        model = RelationalMLP(16, 2, nx.empty_graph(16), 512, layers=1)  # fan-in 32
        weight = model.relational_layers[0].weight.detach()[model.relational_layers[0].mask]
        assert float(weight.abs().max()) <= 32**-0.5
        assert float(weight.abs().max()) > 0.9 * 32**-0.5

    def test_relational_graph_reads_the_masks_back_and_follows_pruning(self):
        graph = ws_flex(8, 4, 0.5, seed=3)
        model = RelationalMLP(10, 2, graph, 16, layers=2)
        assert set(map(frozenset, model.relational_graph().edges)) == set(
            map(frozenset, graph.edges)
        )
        u, v = next(iter(graph.edges))
        for layer in model.relational_layers:
            layer.mask[2 * v : 2 * v + 2, 2 * u : 2 * u + 2] = False
            layer.mask[2 * u : 2 * u + 2, 2 * v : 2 * v + 2] = False
        assert set(map(frozenset, model.relational_graph().edges)) == set(
            map(frozenset, graph.edges)
        ) - {frozenset((u, v))}

    def test_pruning_never_revives_a_missing_block(self):
        graph = ws_flex(8, 3, 0.0)
        model = RelationalMLP(10, 2, graph, 16, layers=2)
        before = [layer.mask.clone() for layer in model.relational_layers]
        assert prune(model.relational_layers, 0.5) == 128  # half of the 2 x 128 kept
        for layer, mask in zip(model.relational_layers, before):
            assert bool((layer.mask <= mask).all())
        assert sum(int(layer.mask.sum()) for layer in model.relational_layers) == 128

    def test_the_graph_handed_in_is_copied_not_kept(self):
        graph = nx.cycle_graph(4)
        model = RelationalMLP(4, 2, graph, 8, layers=1)
        graph.add_edge(0, 2)
        assert model.graph.number_of_edges() == 4

    def test_generate_structure_counts_every_kept_weight(self):
        model = RelationalMLP(6, 2, nx.path_graph(3), 6, layers=2)
        structure = model.generate_structure()
        assert structure.number_of_edges() == sum(
            int(layer.mask.sum()) for layer in model.relational_layers
        )


class TestRelationalCNN:
    def test_complete_graph_gives_exactly_the_dense_cnn(self):
        torch.manual_seed(0)
        model = RelationalCNN((2, 8, 8), 5, nx.complete_graph(4), 8, layers=2, pool_after=[0])
        assert all(bool(layer.mask.all()) for layer in maskable_layers(model))
        convs = [model.stem, *model.relational_layers]
        dense = []
        for layer in convs:
            conv = nn.Conv2d(layer.in_channels, layer.out_channels, 3, padding="same")
            conv.load_state_dict({"weight": layer.weight, "bias": layer.bias})
            dense.append(conv)
        head = nn.Linear(8, 5)
        head.load_state_dict({"weight": model.head.weight, "bias": model.head.bias})
        inputs = torch.randn(4, 2, 8, 8)
        hidden = torch.relu(dense[0](inputs))
        hidden = nn.functional.max_pool2d(torch.relu(dense[1](hidden)), 2)
        hidden = torch.relu(dense[2](hidden))
        assert torch.equal(model(inputs), head(hidden.mean(dim=(2, 3))))

    def test_relational_convs_keep_whole_kernels_of_the_block_pairs(self):
        graph = ws_flex(4, 2, 0.0)
        model = RelationalCNN((1, 8, 8), 3, graph, 8, layers=2, kernel_size=3)
        for layer in model.relational_layers:
            assert torch.equal(layer.channel_connectivity(), block_mask(graph, 2, 2))
            assert torch.equal(
                layer.mask, block_mask(graph, 2, 2)[:, :, None, None].expand(8, 8, 3, 3)
            )
        assert set(map(frozenset, model.relational_graph().edges)) == set(
            map(frozenset, graph.edges)
        )

    def test_batch_norm_and_bad_images(self):
        model = RelationalCNN((1, 8, 8), 3, nx.cycle_graph(4), 8, batch_norm=True)
        assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 4
        with pytest.raises(ConfigError, match=r"\[batch, 1, 8, 8\]"):
            model(torch.randn(2, 1, 7, 7))


class TestMatchedWidth:
    @pytest.mark.parametrize(
        ("graph", "uneven"),
        [
            (ws_flex(8, 2, 0.0), False),
            (ws_flex(16, 5.5, 0.3, seed=0), False),
            (ws_flex(6, 2.5, 0.0), True),
        ],
    )
    def test_mlp_width_has_the_closest_parameter_count(self, graph, uneven):
        def active(width: int, graph: nx.Graph = graph) -> int:
            model = RelationalMLP(64, 10, graph, width, layers=3, uneven=uneven)
            return count(model, torch.randn(1, 64)).active_params

        dense = count(RelationalMLP(64, 10, nx.complete_graph(4), 64), torch.randn(1, 64))
        width = matched_width(graph, 64, inputs=64, outputs=10, layers=3, uneven=uneven)
        step = 1 if uneven else graph.number_of_nodes()
        gap = abs(active(width) - dense.active_params)
        assert gap <= abs(active(width + step) - dense.active_params)
        if width - step >= graph.number_of_nodes():
            assert gap <= abs(active(width - step) - dense.active_params)
        assert width > 64
        assert uneven or width % graph.number_of_nodes() == 0

    def test_cnn_width_counts_kernels_and_norms(self):
        graph = nx.cycle_graph(4)
        width = matched_width(graph, 16, inputs=1, outputs=10, layers=2, kernel_size=3, norm=True)
        example = torch.randn(2, 1, 8, 8)

        def active(width: int, graph: nx.Graph) -> int:
            model = RelationalCNN((1, 8, 8), 10, graph, width, layers=2, batch_norm=True)
            return count(model, example).active_params + 2 * width * 3  # BN affine

        dense = active(16, nx.complete_graph(4))
        assert abs(active(width, graph) - dense) <= abs(active(width + 4, graph) - dense)
        assert abs(active(width, graph) - dense) <= abs(active(width - 4, graph) - dense)

    def test_complete_graph_keeps_the_dense_width(self):
        for n in (1, 4, 8):
            assert matched_width(nx.complete_graph(n), 64, inputs=64, outputs=10, layers=3) == 64


NOT_WIDTHS = [0, *NOT_COUNTS]
GRAPH = nx.cycle_graph(4)

CASES = [
    ("mlp-width", lambda v: RelationalMLP(8, 2, GRAPH, v), NOT_WIDTHS, ConfigError),
    ("mlp-layers", lambda v: RelationalMLP(8, 2, GRAPH, 8, layers=v), NOT_WIDTHS, ConfigError),
    (
        "mlp-uneven",
        lambda v: RelationalMLP(8, 2, GRAPH, 8, uneven=v),
        [None, "yes", 2],
        InputTypeError,
    ),
    ("cnn-width", lambda v: RelationalCNN((1, 4, 4), 2, GRAPH, v), NOT_WIDTHS, ConfigError),
    (
        "cnn-pool_after",
        lambda v: RelationalCNN((1, 4, 4), 2, GRAPH, 8, layers=2, pool_after=v),
        [[2], [-1], "0", 3, [0, 1, 1.5]],
        ConfigError,
    ),
    ("mask-width", lambda v: relational_mask(GRAPH, v, 8), NOT_WIDTHS, ConfigError),
    (
        "matched-dense_width",
        lambda v: matched_width(GRAPH, v, inputs=4, outputs=2, layers=1),
        NOT_WIDTHS,
        ConfigError,
    ),
    (
        "matched-kernel_size",
        lambda v: matched_width(GRAPH, 8, inputs=4, outputs=2, layers=1, kernel_size=v),
        NOT_WIDTHS,
        ConfigError,
    ),
]


@pytest.mark.parametrize(
    ("call", "value", "error"),
    [
        pytest.param(call, value, error, id=f"{name}-{value_id(value)}")
        for name, call, values, error in CASES
        for value in values
    ],
)
def test_bad_values_are_refused_and_leave_the_graph_as_it_was(call, value, error):
    before = snapshot(GRAPH)
    with pytest.raises(error):
        call(value)
    assert_unchanged(before, GRAPH)


@pytest.mark.parametrize("graph", [None, 3, "graph", [(0, 1)], np.eye(3)], ids=value_id)
def test_what_is_not_a_graph_is_an_input_type_error(graph):
    with pytest.raises(InputTypeError, match="networkx graph"):
        RelationalMLP(8, 2, graph, 8)
    with pytest.raises(InputTypeError):
        matched_width(graph, 8, inputs=4, outputs=2, layers=1)


def test_a_graph_without_nodes_is_a_structure_error():
    with pytest.raises(StructureError, match="no nodes"):
        RelationalCNN((1, 4, 4), 2, nx.Graph(), 8)


def test_width_not_divisible_names_the_numbers_and_both_ways_out():
    with pytest.raises(ConfigError) as error:
        RelationalMLP(8, 2, ws_flex(16, 4, 0.0), 100)
    message = str(error.value)
    for part in ("width = 100", "16 nodes", "100 = 16 x 6 + 4", "96 or 112", "uneven=True"):
        assert part in message
    assert "first 4 nodes own 7 units and the other 12 own 6" in message
    assert RelationalMLP(8, 2, ws_flex(16, 4, 0.0), 100, uneven=True).width == 100


def test_width_below_the_node_count_is_refused_even_uneven():
    with pytest.raises(ConfigError, match="smaller than the 16 nodes"):
        RelationalMLP(8, 2, ws_flex(16, 4, 0.0), 10, uneven=True)
