"""Whole models: masked FFN and DAN against generate_structure, a ResNet-18 at every level."""

from __future__ import annotations

import copy

import networkx as nx
import pytest
import torch
from models import ResNet18, small_cnn
from models import to_graph_with_tuples as to_graph
from torch import nn

import pypaddle.graph as pg
from pypaddle import extract
from pypaddle.errors import ConfigError
from pypaddle.sparse import (
    MaskedDeepDAN,
    MaskedDeepFFN,
    MaskedLinearLayer,
    MaskedLSTM,
    maskable_layers,
)
from pypaddle.sparse.convnet import masked_lenet5
from pypaddle.util import set_random_masks


def relabelled(graph: nx.DiGraph, mapping) -> set:
    return {(mapping(u), mapping(v)) for u, v in graph.edges}


def hidden(graph: nx.DiGraph) -> nx.DiGraph:
    return graph.subgraph(v for v, role in graph.nodes(data="role") if role == "hidden")


class TestMaskedDeepFFN:
    @pytest.mark.parametrize("use_layer_norm", [False, True])
    def test_hidden_graph_is_generate_structure_exactly(self, use_layer_norm):
        torch.manual_seed(0)
        model = MaskedDeepFFN((1, 3, 4), 3, [5, 6, 4], use_layer_norm=use_layer_norm)
        model.apply(lambda m: set_random_masks(m, density=0.4))
        graph = to_graph(model, torch.randn(2, 1, 3, 4))
        assert graph.graph["tracer"] == "hooks"  # its forward branches on the input's shape

        offsets = {"layers_main_hidden.0": 0, "layers_main_hidden.1": 5, "layers_main_hidden.2": 11}

        def to_structure(vertex):
            name, index = vertex
            if name == "input":
                return ("input", index)
            if name == "layer_out":
                return ("output", index)
            return offsets[name] + index

        expected = model.generate_structure()
        inner = hidden(graph)
        assert {to_structure(v) for v in inner} == set(expected)
        assert relabelled(inner, to_structure) == set(expected.edges)
        full = model.generate_structure(include_input=True, include_output=True)
        assert relabelled(graph, to_structure) == set(full.edges)
        assert nx.is_isomorphic(nx.DiGraph(inner), nx.DiGraph(expected))

    def test_threshold_drops_small_weights(self):
        torch.manual_seed(1)
        model = MaskedDeepFFN(6, 2, [4])
        graph = to_graph(model, torch.randn(1, 6), threshold=0.3)
        kept = model.layers_main_hidden[0].weight.abs() > 0.3
        assert graph.in_degree(("layers_main_hidden.0", 0)) == int(kept[0].sum())


def dag_with_skips() -> nx.DiGraph:
    structure = nx.DiGraph()
    structure.add_nodes_from(["a", "b", "c", "d", "e", "f", "g"], colour="red")
    structure.add_edges_from(
        [("a", "c"), ("b", "c"), ("c", "d"), ("a", "d"), ("d", "e"), ("b", "e"), ("c", "g")]
    )
    structure.add_edge("f", "e")
    return structure


def dan_labels(graph: nx.DiGraph):
    """Vertex -> the label ``generate_structure(True, True)`` gives it (DAN vertices carry
    theirs in a ``label`` attribute)."""

    def label(vertex):
        name, index = vertex
        if name == "input":
            return ("input", index)
        text = graph.nodes[vertex]["label"]
        return ("output", int(text.split()[1])) if text.startswith("output ") else text

    return label


class TestMaskedDeepDAN:
    def test_hidden_graph_is_generate_structure_with_its_labels(self):
        torch.manual_seed(0)
        model = MaskedDeepDAN(6, 3, dag_with_skips())
        model.layers_main_hidden[1].mask[0, 0] = False
        graph = to_graph(model, torch.randn(2, 6))
        to_structure = dan_labels(graph)

        expected = model.generate_structure()
        inner = hidden(graph)
        assert {to_structure(v) for v in inner} == set(expected)
        assert relabelled(inner, to_structure) == set(expected.edges)
        full = model.generate_structure(include_input=True, include_output=True)
        assert relabelled(graph, to_structure) == set(full.edges)
        assert {v for v, role in graph.nodes(data="role") if role == "output"} == {
            ("MaskedDeepDAN", index) for index in range(7, 10)
        }

    def test_inside_a_container_and_with_a_threshold(self):
        torch.manual_seed(0)
        dan = MaskedDeepDAN(6, 3, dag_with_skips())
        model = nn.Sequential(nn.Flatten(), dan, nn.ReLU(), nn.Linear(3, 2))
        with torch.no_grad():
            model[3].weight.copy_(torch.tensor([[0.5, -0.6, 0.7], [0.1, 0.9, -0.8]]))
        masks = [layer.mask.clone() for layer in maskable_layers(dan)]
        graph = to_graph(model, torch.randn(1, 2, 3), threshold=0.2)
        pruned = copy.deepcopy(dan)
        pruned.recompute_mask(0.2)
        expected = pruned.generate_structure()
        # Inside a model, the DAN's outputs are hidden too: compare its vertex labels.
        to_structure = dan_labels(graph)
        inner = graph.subgraph(v for v in graph if v[0] == "1" and to_structure(v) in expected)
        assert relabelled(inner, to_structure) == set(expected.edges)
        # The threshold did not touch the model's masks.
        assert all(torch.equal(a, b.mask) for a, b in zip(masks, maskable_layers(dan)))
        assert graph.in_degree(("3", 0)) == 3
        assert all(u[0] == "1" for u, _ in graph.in_edges(("3", 0)))


@pytest.fixture(scope="module")
def resnet() -> ResNet18:
    torch.manual_seed(0)
    return ResNet18(classes=10, width=8)


BLOCKS = [f"layer{stage}.{block}" for stage in range(1, 5) for block in range(2)]


class TestResNet:
    def test_layer_level_shows_every_skip_connection(self, resnet):
        graph = to_graph(resnet, torch.randn(2, 3, 32, 32), granularity="layer")
        adds = [v for v, kind in graph.nodes(data="type") if kind == "add"]
        assert len(adds) == 8
        for block, add in zip(BLOCKS, adds):
            predecessors = set(graph.predecessors(add))
            assert f"{block}.bn2" in predecessors
            (skip,) = predecessors - {f"{block}.bn2"}
            if block.endswith(".0") and block != "layer1.0":
                assert skip == f"{block}.downsample.1"
            else:  # the identity: whatever fed the block's first convolution
                assert list(graph.predecessors(f"{block}.conv1")) == [skip]
        assert graph.nodes["layer2.0.conv1"]["type"] == "Conv2d"
        assert graph.nodes["layer2.0.conv1"]["shape"] == "(16, 4, 4)"
        assert nx.is_directed_acyclic_graph(graph)
        assert list(graph.predecessors("output")) == ["fc"]

    def test_channel_level_counts_and_skips(self, resnet):
        graph = to_graph(resnet, torch.randn(2, 3, 32, 32), granularity="channel")
        convs = [m for m in resnet.modules() if isinstance(m, nn.Conv2d)]
        conv_edges = sum(c.in_channels * c.out_channels for c in convs)
        widths = [8] * 2 + [16] * 2 + [32] * 2 + [64] * 2
        assert graph.number_of_nodes() == 3 + sum(c.out_channels for c in convs) + sum(widths) + 10
        assert graph.number_of_edges() == conv_edges + 2 * sum(widths) + 64 * 10
        # The stem's batch norm, ReLU and max pool leave channels as they are.
        assert {u[0] for u, _ in graph.in_edges(("layer1.0.conv1", 0))} == {"conv1"}
        # After a block, the next one reads the sum of the residual branch and the skip.
        first_add = next(v for v in graph if graph.nodes[v]["kind"] == "add")[0]
        assert {u[0] for u, _ in graph.in_edges(("layer1.1.conv1", 0))} == {first_add}
        assert {u[0] for u, _ in graph.in_edges((first_add, 3))} == {"layer1.0.conv2", "conv1"}
        assert graph.in_degree(("fc", 0)) == 64

    @pytest.mark.slow
    def test_fx_and_hooks_give_the_same_graph(self, resnet):
        for granularity in ("neuron", "channel", "layer"):
            x = torch.randn(2, 3, 16 if granularity == "neuron" else 32, 32)
            by_fx = to_graph(resnet, x, granularity=granularity)
            by_hooks = to_graph(resnet, x, granularity=granularity, tracer="hooks")
            assert (by_fx.graph["tracer"], by_hooks.graph["tracer"]) == ("fx", "hooks")
            assert dict(by_fx.nodes(data=True)) == dict(by_hooks.nodes(data=True))
            assert set(by_fx.edges) == set(by_hooks.edges)


def test_a_module_called_twice_gets_a_vertex_block_per_call():
    class Shared(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(3, 3)

        def forward(self, x):
            return self.fc(torch.tanh(self.fc(x)))

    layers = to_graph(Shared(), torch.randn(1, 3), granularity="layer")
    assert list(nx.topological_sort(layers)) == ["input", "fc", "tanh", "fc_1", "output"]
    assert layers.nodes["fc_1"]["module"] == "fc"
    neurons = to_graph(Shared(), torch.randn(1, 3))
    assert neurons.number_of_edges() == 18
    assert all(u[0] == "fc" for u, _ in neurons.in_edges(("fc_1", 0)))


def test_small_cnn_at_neuron_level():
    model = small_cnn()
    graph = to_graph(model, torch.randn(1, 1, 28, 28))
    assert graph.number_of_nodes() == 784 + 4 * 26 * 26 + 8 * 12 * 12 + 10
    assert graph.number_of_edges() == 4 * 26 * 26 * 9 + 8 * 12 * 12 * 36 + 8 * 12 * 12 * 10
    assert graph.num_layers == 4
    assert graph.nodes[("2", 12 * 12 + 5)] == {
        "module": "2",
        "kind": "Conv2d",
        "layer": 2,
        "index": 149,
        "position": "1,0,5",
        "channel": 1,
        "role": "hidden",
    }


@pytest.mark.parametrize("granularity", ["neuron", "channel", "layer"])
def test_the_graph_toolkit_writes_reads_measures_and_draws_it(granularity, tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, 5), nn.Softmax(1)
    )
    dan = MaskedDeepDAN(5, 2, dag_with_skips())
    example = torch.randn(1, 1, 6, 6)
    graph = extract.to_graph(nn.Sequential(model, dan), example, granularity=granularity)
    for suffix in ("graphml", "json"):
        read = pg.read(pg.write(graph, tmp_path / f"graph.{suffix}"))
        assert list(read.nodes(data=True)) == list(graph.nodes(data=True))
        assert list(read.edges) == list(graph.edges)
    stats = pg.summary(graph)
    assert (stats["vertices"], stats["edges"]) == (graph.number_of_nodes(), graph.number_of_edges())
    assert stats["layers"] == graph.num_layers
    assert pg.draw(graph, tmp_path / "graph.png").stat().st_size > 0


def test_a_leaf_model_is_one_block_named_after_its_class():
    layer = MaskedLinearLayer(3, 2)
    layer.prune_inputs([1])
    graph = to_graph(layer, torch.randn(1, 3))
    assert set(graph.edges) == {
        (("input", i), ("MaskedLinearLayer", o)) for i in (0, 2) for o in (0, 1)
    }
    assert graph.graph["tracer"] == "hooks"


def test_several_inputs_are_numbered():
    class Join(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(5, 1)

        def forward(self, a, b):
            return self.fc(torch.cat([a, b], dim=1))

    graph = to_graph(Join(), (torch.randn(1, 2), torch.randn(1, 3)))
    assert sorted(u for u, _ in graph.in_edges(("fc", 0))) == [
        ("input0", 0),
        ("input0", 1),
        ("input1", 0),
        ("input1", 1),
        ("input1", 2),
    ]
    layers = to_graph(Join(), (torch.randn(1, 2), torch.randn(1, 3)), granularity="layer")
    assert set(layers.edges) == {
        ("input0", "cat"),
        ("input1", "cat"),
        ("cat", "fc"),
        ("fc", "output"),
    }


def test_masked_lenet5_channel_graph_counts():
    torch.manual_seed(0)
    model = masked_lenet5()
    model.features[3].prune_kernels([0, 0], [1, 2])
    graph = to_graph(model, torch.randn(1, 1, 28, 28), granularity="channel")
    assert graph.number_of_nodes() == 1 + 6 + 16 + 120 + 84 + 10
    # conv 1 -> 6, conv 6 -> 16 less two kernels, 400 flat features = 16 channels x 25 -> 120,
    # then 120 -> 84 -> 10.
    assert graph.number_of_edges() == 6 + (96 - 2) + 16 * 120 + 120 * 84 + 84 * 10
    assert not graph.has_edge(("features.0", 1), ("features.3", 0))
    assert graph.has_edge(("features.3", 15), ("classifier.0", 0))


def test_a_masked_recurrent_layer_is_named_and_layer_level_works():
    class Tagger(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = MaskedLSTM(3, 4, batch_first=True)

        def forward(self, x):
            return self.rnn(x)[0]

    with pytest.raises(ConfigError, match=r"module 'rnn' \(MaskedLSTM\).*granularity='layer'"):
        to_graph(Tagger(), torch.randn(2, 5, 3))
    graph = to_graph(Tagger(), torch.randn(2, 5, 3), granularity="layer")
    assert list(graph.edges) == [("input", "rnn"), ("rnn", "getitem"), ("getitem", "output")]
