"""DeepCellDAN: one cell per vertex, compiled schedule, built-in cells, cell_structure()."""

from __future__ import annotations

import functools
import sys

import networkx as nx
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pypaddle.errors import ConfigError, InputTypeError, StructureError
from pypaddle.sparse import (
    ConvBNReLUCell,
    DeepCellDAN,
    MaskedConv2d,
    SeparableConvCell,
    conv_bn_relu_cell,
    maskable_layers,
    separable_conv_cell,
)


class Weighted(nn.Module):
    """Channel j scaled by 10**j and summed: shows the order in which inputs arrive."""

    def __init__(self, channels, crop=0):
        super().__init__()
        self.register_buffer("scale", 10.0 ** torch.arange(channels).reshape(1, -1, 1, 1))
        self.crop = crop

    def forward(self, input):
        out = (input * self.scale).sum(1, keepdim=True)
        return out[:, :, : out.shape[2] - self.crop, : out.shape[3] - self.crop]


def weighted_cells(crops=None):
    calls = []

    def construct(**kwargs):
        calls.append(kwargs)
        channels = kwargs["input_channel_size"] if kwargs["is_input"] else kwargs["in_degree"]
        return Weighted(channels, crop=(crops or {}).get(len(calls) - 1, 0))

    return construct, calls


def diamond():
    # insertion order of c's in-edges: b first, then a
    structure = nx.DiGraph()
    structure.add_nodes_from(["a", "b", "c", "d"])
    structure.add_edges_from([("a", "b"), ("b", "c"), ("a", "c"), ("a", "d")])
    return structure


@pytest.fixture
def one_thread():
    """One torch thread: on a loaded shared machine, two spinning threads cost 10x."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def oriented_watts_strogatz(n, k, p, seed):
    graph = nx.watts_strogatz_graph(n, k, p, seed=seed)
    structure = nx.DiGraph()
    structure.add_nodes_from(sorted(graph))
    structure.add_edges_from((min(u, v), max(u, v)) for u, v in graph.edges)
    return structure


class TestConstruction:
    def test_constructor_gets_the_old_keywords(self):
        construct, calls = weighted_cells()
        model = DeepCellDAN(4, 2, construct, diamond())
        assert model.vertices == ["a", "b", "d", "c"]  # by layer, insertion order within
        assert calls == [
            {
                "is_input": True,
                "is_output": False,
                "in_degree": 0,
                "out_degree": 3,
                "layer": 0,
                "input_channel_size": 2,
            },
            {
                "is_input": False,
                "is_output": False,
                "in_degree": 1,
                "out_degree": 1,
                "layer": 1,
                "input_channel_size": 2,
            },
            {
                "is_input": False,
                "is_output": True,
                "in_degree": 1,
                "out_degree": 0,
                "layer": 1,
                "input_channel_size": 2,
            },
            {
                "is_input": False,
                "is_output": True,
                "in_degree": 2,
                "out_degree": 0,
                "layer": 2,
                "input_channel_size": 2,
            },
        ]
        assert model.cell_inputs("c") == ["b", "a"]
        assert model.cell("d") is model.cells[2]

    def test_structure_is_not_modified(self):
        structure = diamond()
        before = (list(structure.nodes), list(structure.edges))
        DeepCellDAN(4, 2, conv_bn_relu_cell, structure)
        assert (list(structure.nodes), list(structure.edges)) == before

    def test_head(self):
        model = DeepCellDAN(7, 3, conv_bn_relu_cell, diamond(), output_channels=12)
        assert isinstance(model.last_conv, MaskedConv2d)
        assert model.last_conv.in_channels == 2  # sinks c and d
        assert model.last_conv.out_channels == 12
        assert model.classifier.out_features == 7


class TestForward:
    def test_inputs_are_concatenated_in_in_edge_order(self):
        construct, _ = weighted_cells()
        model = DeepCellDAN(3, 2, construct, diamond()).eval()
        x = torch.randn(2, 2, 4, 4)
        a = x[:, :1] + 10 * x[:, 1:]
        b = a
        c = b + 10 * a
        d = a
        sinks = torch.cat([d, c], 1)  # sinks in vertex order: d, c
        features = model.last_norm(model.last_conv(sinks))
        expected = model.classifier(F.adaptive_avg_pool2d(features, 1).flatten(1))
        assert torch.allclose(model(x), expected, atol=1e-5)

    def test_smaller_outputs_are_zero_padded_bottom_right(self):
        construct, _ = weighted_cells(crops={1: 2})  # vertex b drops 2 rows and columns
        model = DeepCellDAN(3, 1, construct, diamond()).eval()
        x = torch.randn(2, 1, 5, 5)
        recorded = {}

        def record(module, inputs, output):
            recorded["c"] = inputs[0]

        model.cell("c").register_forward_hook(record)
        model(x)
        reads = recorded["c"]
        assert reads.shape == (2, 2, 5, 5)
        assert torch.equal(reads[:, 0, :3, :3], x[:, 0, :3, :3])  # b, cropped
        assert bool((reads[:, 0, 3:] == 0).all())
        assert bool((reads[:, 0, :, 3:] == 0).all())
        assert torch.equal(reads[:, 1], x[:, 0])  # a

    def test_forward_never_calls_networkx(self):
        model = DeepCellDAN(3, 3, conv_bn_relu_cell, oriented_watts_strogatz(30, 4, 0.5, 1))
        x = torch.randn(2, 3, 8, 8)
        called = []

        def profile(frame, event, arg):
            if event == "call" and "networkx" in frame.f_code.co_filename:
                called.append(frame.f_code.co_name)

        sys.setprofile(profile)
        try:
            model(x)
        finally:
            sys.setprofile(None)
        assert called == []

    def test_float64_input(self):
        model = DeepCellDAN(3, 3, conv_bn_relu_cell, diamond())
        assert model(torch.randn(2, 3, 6, 6, dtype=torch.float64)).dtype == torch.float32

    @pytest.mark.parametrize(
        ("construct", "batch"), [(conv_bn_relu_cell, 100), (separable_conv_cell, 4)]
    )
    @pytest.mark.usefixtures("one_thread")
    def test_watts_strogatz_200_3x50x50(self, construct, batch):
        structure = oriented_watts_strogatz(200, 3, 0.8, seed=0)
        torch.manual_seed(0)
        model = DeepCellDAN(10, 3, construct, structure)
        assert len(model.cells) == 200
        with torch.no_grad():
            out = model(torch.randn(batch, 3, 50, 50))
        assert out.shape == (batch, 10)
        assert bool(torch.isfinite(out).all())
        assert set(model.cell_structure().edges) == set(structure.edges)

    @pytest.mark.usefixtures("one_thread")
    def test_gradients_reach_every_cell(self):
        model = DeepCellDAN(3, 3, conv_bn_relu_cell, oriented_watts_strogatz(20, 4, 0.3, 2))
        model(torch.randn(4, 3, 8, 8)).sum().backward()
        assert all(cell.conv.weight.grad is not None for cell in model.cells)
        assert all(bool(cell.conv.weight.grad.abs().sum() > 0) for cell in model.cells)


class TestBuiltInCells:
    def test_conv_bn_relu_cell(self):
        cell = conv_bn_relu_cell(False, False, 3, 1, 2, 5)
        assert isinstance(cell, ConvBNReLUCell)
        assert cell.conv.in_channels == 3
        assert cell.conv.out_channels == 1
        out = cell(torch.randn(2, 3, 7, 7))
        assert out.shape == (2, 1, 7, 7)
        assert bool((out >= 0).all())
        source = conv_bn_relu_cell(True, False, 0, 2, 0, 5, kernel_size=5)
        assert source.conv.in_channels == 5
        assert source.conv.kernel_size == (5, 5)

    def test_separable_conv_cell(self):
        cell = separable_conv_cell(False, True, 4, 0, 3, 3)
        assert isinstance(cell, SeparableConvCell)
        assert cell.depthwise.groups == 4
        assert cell.pointwise.kernel_size == (1, 1)
        assert cell.relu_first
        assert not separable_conv_cell(True, False, 0, 1, 0, 3).relu_first
        assert cell(torch.randn(2, 4, 6, 6)).shape == (2, 1, 6, 6)

    @pytest.mark.parametrize("cell_class", [ConvBNReLUCell, SeparableConvCell])
    def test_pruned_input_channel_is_not_read(self, cell_class):
        cell = cell_class(3).eval()
        cell.prune_input_channels([1])
        assert cell.input_channel_mask.tolist() == [True, False, True]
        x = torch.randn(2, 3, 5, 5)
        changed = x.clone()
        changed[:, 1] = 100.0
        assert torch.allclose(cell(x), cell(changed))

    def test_separable_input_dies_with_its_depthwise_kernel(self):
        cell = SeparableConvCell(3)
        cell.depthwise.prune_output_channels([2])
        assert cell.input_channel_mask.tolist() == [True, True, False]


class TestCellStructure:
    @pytest.mark.parametrize("construct", [conv_bn_relu_cell, separable_conv_cell])
    def test_untouched_model_gives_back_the_structure(self, construct):
        structure = oriented_watts_strogatz(40, 4, 0.5, seed=3)
        structure.nodes[5]["colour"] = "red"
        model = DeepCellDAN(3, 3, construct, structure)
        exported = model.cell_structure()
        assert set(exported.nodes) == set(structure.nodes)
        assert set(exported.edges) == set(structure.edges)
        assert exported.nodes[5] == {"colour": "red"}

    def test_pruned_edges_disappear(self):
        model = DeepCellDAN(3, 3, conv_bn_relu_cell, diamond())
        model.prune_edges([("a", "c"), ("a", "d")])
        assert set(model.cell_structure().edges) == {("a", "b"), ("b", "c")}
        assert set(model.cell_structure().nodes) == {"a", "b", "c", "d"}
        assert not bool(model.cell("c").conv.mask[:, 1].any())  # a is c's channel 1
        assert bool(model.cell("c").conv.mask[:, 0].all())

    def test_pruning_by_magnitude_cuts_edges(self):
        model = DeepCellDAN(3, 3, conv_bn_relu_cell, diamond())
        with torch.no_grad():
            model.cell("c").conv.weight[:, 0] = 1e-5
        model.recompute_mask(1e-3)
        assert ("b", "c") not in model.cell_structure().edges

    def test_bad_edges(self):
        model = DeepCellDAN(3, 3, conv_bn_relu_cell, diamond())
        with pytest.raises(StructureError, match="no edge"):
            model.prune_edges([("a", "b"), ("b", "d")])
        with pytest.raises(StructureError, match="no vertex 'z'"):
            model.prune_edges([("z", "b")])
        with pytest.raises(InputTypeError, match=r"\(u, v\) pairs"):
            model.prune_edges([("a", "b"), ("b",)])
        with pytest.raises(InputTypeError, match=r"\(u, v\) pairs"):
            model.prune_edges(["ab"])
        assert bool(model.cell("b").conv.mask.all())  # checked before any cut

    def test_cells_without_input_channels_keep_their_edges(self):
        construct, _ = weighted_cells()
        model = DeepCellDAN(3, 2, construct, diamond())
        assert set(model.cell_structure().edges) == set(diamond().edges)
        with pytest.raises(InputTypeError, match="prune_input_channels"):
            model.prune_edges([("a", "b")])


class TestMasks:
    def test_maskable_layers_and_apply_mask(self):
        model = DeepCellDAN(3, 3, conv_bn_relu_cell, diamond())
        layers = maskable_layers(model)
        assert len(layers) == 4 + 2  # one conv per cell, head conv, classifier
        model.cell("b").conv.mask[0, 0, 0, 0] = False
        model.apply_mask()
        assert model.cell("b").conv.weight[0, 0, 0, 0] == 0
        assert model.density < 1


class TestBadInput:
    def test_cell_with_wrong_number_of_channels_names_the_vertex(self):
        def construct(is_input, in_degree, input_channel_size, **_):
            channels = input_channel_size if is_input else in_degree
            out = 2 if in_degree == 2 else 1
            return nn.Conv2d(channels, out, 1)

        model = DeepCellDAN(3, 3, construct, diamond())
        with pytest.raises(ConfigError, match=r"vertex 'c' returned shape \(2, 2, 4, 4\)"):
            model(torch.randn(2, 3, 4, 4))

    @pytest.mark.parametrize(
        "structure", [nx.DiGraph(), nx.DiGraph([(0, 1), (1, 2), (2, 0)])], ids=["empty", "ring"]
    )
    def test_structure_without_sources(self, structure):
        with pytest.raises(StructureError, match="no sources"):
            DeepCellDAN(3, 3, conv_bn_relu_cell, structure)

    def test_cycle_is_named(self):
        with pytest.raises(StructureError, match="cycle"):
            DeepCellDAN(3, 3, conv_bn_relu_cell, nx.DiGraph([(0, 1), (1, 2), (2, 1)]))

    def test_undirected_structure(self):
        with pytest.raises(StructureError, match="directed"):
            DeepCellDAN(3, 3, conv_bn_relu_cell, nx.path_graph(3))

    def test_constructor_must_return_a_module(self):
        with pytest.raises(InputTypeError, match="vertex 'a'"):
            DeepCellDAN(3, 3, lambda **_: "not a module", diamond())
        with pytest.raises(InputTypeError, match="callable"):
            DeepCellDAN(3, 3, "conv", diamond())

    @pytest.mark.parametrize("shape", [(2, 3, 8), (2, 1, 8, 8)])
    def test_wrong_input_shape(self, shape):
        model = DeepCellDAN(3, 3, conv_bn_relu_cell, diamond())
        with pytest.raises(ConfigError, match=r"\[batch, 3, height, width\]"):
            model(torch.randn(*shape))

    def test_bad_sizes(self):
        with pytest.raises(ConfigError, match="num_classes"):
            DeepCellDAN(0, 3, conv_bn_relu_cell, diamond())
        with pytest.raises(ConfigError, match="in_channels"):
            DeepCellDAN(3, True, conv_bn_relu_cell, diamond())

    def test_partial_constructor(self):
        construct = functools.partial(conv_bn_relu_cell, kernel_size=1)
        model = DeepCellDAN(3, 3, construct, diamond())
        assert model.cell("a").conv.kernel_size == (1, 1)
