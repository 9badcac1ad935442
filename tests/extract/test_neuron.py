"""Neuron level: every layer's edges are the sparsity pattern of its Jacobian."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given, settings
from hypothesis import strategies as st
from models import to_graph_with_tuples as to_graph
from torch import nn
from torch.autograd.functional import jacobian
from torch.nn.utils import prune

from pypaddle.sparse import MaskedConv1d, MaskedConv2d, MaskedLinearLayer


def jacobian_pattern(function, x: torch.Tensor) -> set[tuple[int, int]]:
    """``(input element, output element)`` pairs where d output / d input is nonzero."""
    with torch.no_grad():
        outputs = function(x)[0].numel()
    matrix = jacobian(function, x, vectorize=True).reshape(outputs, x[0].numel())
    targets, sources = matrix.nonzero(as_tuple=True)
    return set(zip(sources.tolist(), targets.tolist()))


def edges_between(graph, source: str, target: str) -> set[tuple[int, int]]:
    return {(u[1], v[1]) for u, v in graph.edges if u[0] == source and v[0] == target}


def layer_pattern(layer: nn.Module, x: torch.Tensor, **options) -> set[tuple[int, int]]:
    graph = to_graph(nn.Sequential(layer), x, **options)
    # Every edge leaves the input (a convolution that reads only padding has none).
    assert {u[0] for u, _ in graph.edges} <= {"input"}
    return edges_between(graph, "input", "0")


def _seeded(layer: nn.Module) -> nn.Module:
    torch.manual_seed(0)
    for parameter in layer.parameters():
        nn.init.uniform_(parameter, 0.1, 1.0)  # no weight is zero by chance
        parameter.data[torch.rand(parameter.shape) < 0.5] *= -1
    return layer.double()


CONVOLUTIONS = [
    (nn.Conv2d(2, 4, 3), (5, 7)),
    (nn.Conv2d(2, 3, (2, 3), stride=2, padding=1), (6, 9)),
    (nn.Conv2d(2, 3, 3, padding=2, dilation=2), (7, 5)),
    (nn.Conv2d(4, 6, (3, 2), stride=(1, 2), padding=(0, 1), groups=2), (5, 8)),
    (nn.Conv2d(3, 3, 3, padding=1, groups=3), (4, 6)),
    (nn.Conv2d(2, 2, 4, padding="same"), (6, 5)),
    (nn.Conv2d(2, 2, 3, padding="valid", stride=(2, 3)), (7, 9)),
    (nn.Conv2d(2, 3, 3, padding=(1, 2), padding_mode="reflect"), (4, 5)),
    (nn.Conv2d(2, 3, 3, padding=2, padding_mode="replicate"), (4, 5)),
    (nn.Conv2d(2, 3, (3, 2), padding=(2, 1), stride=2, padding_mode="circular"), (5, 4)),
    (nn.Conv1d(4, 6, 3, stride=2, padding=1, dilation=2, groups=2), (11,)),
    (nn.Conv1d(2, 2, 5, padding=3, padding_mode="reflect"), (6,)),
    (nn.Conv3d(2, 2, (2, 3, 2), stride=(1, 2, 1), padding=1), (3, 5, 4)),
]


@pytest.mark.filterwarnings("ignore:Using padding=.same.:UserWarning")
class TestConvolution:
    @pytest.mark.parametrize(("conv", "size"), CONVOLUTIONS, ids=lambda c: repr(c))
    def test_edges_are_the_jacobian_pattern(self, conv, size):
        conv = _seeded(conv)
        x = torch.randn(1, conv.in_channels, *size, dtype=torch.float64)
        expected = jacobian_pattern(conv, x)
        assert layer_pattern(conv, x) == expected
        assert len(expected) > 0

    @pytest.mark.parametrize(("conv", "size"), CONVOLUTIONS[:5], ids=lambda c: repr(c))
    def test_mask_and_threshold_drop_exactly_their_weights(self, conv, size):
        conv = _seeded(conv)
        generator = torch.Generator().manual_seed(1)
        mask = torch.rand(conv.weight.shape, generator=generator) < 0.5
        conv.register_buffer("mask", mask)
        x = torch.randn(1, conv.in_channels, *size, dtype=torch.float64)
        pruned = copy.deepcopy(conv)
        with torch.no_grad():
            pruned.weight[~mask] = 0
        assert layer_pattern(conv, x) == jacobian_pattern(pruned, x)

        with torch.no_grad():
            pruned.weight[pruned.weight.abs() <= 0.5] = 0
        assert layer_pattern(conv, x, threshold=0.5) == jacobian_pattern(pruned, x)

    def test_functional_convolution_reads_its_parameter(self):
        class Functional(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.weight = nn.Parameter(torch.randn(4, 1, 3, 2, dtype=torch.float64))

            def forward(self, x):
                return F.conv2d(x, self.weight, None, 2, 1, 1, 2)

        model = Functional()
        x = torch.randn(1, 2, 5, 6, dtype=torch.float64)
        graph = to_graph(model, x)
        assert edges_between(graph, "input", "conv2d") == jacobian_pattern(model, x)


@st.composite
def conv_cases(draw):
    """A random Conv1d/Conv2d (groups, stride, padding with any mode, dilation) and input size."""
    dims = draw(st.sampled_from([1, 2]))
    groups = draw(st.sampled_from([1, 2]))
    in_channels = groups * draw(st.integers(1, 2))
    out_channels = groups * draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(dims))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    mode = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
    padding = tuple(draw(st.integers(0, 2)) for _ in range(dims))
    # Reflect needs padding < size; every input must fit the dilated kernel.
    size = tuple(
        draw(st.integers(max(d * (k - 1) + 1, p + 1, 2), 7))
        for d, k, p in zip(dilation, kernel, padding)
    )
    layer = (nn.Conv1d if dims == 1 else nn.Conv2d)(
        in_channels, out_channels, kernel, stride, padding, dilation, groups, padding_mode=mode
    )
    return layer, size


class TestConvolutionProperty:
    @pytest.mark.slow
    @settings(max_examples=15, deadline=None)
    @given(conv_cases())
    @example((nn.Conv1d(1, 1, 1, 3, 1), (2,)))  # reads only zero padding: no edge at all
    def test_any_convolution_is_its_jacobian(self, case):
        conv, size = case
        conv = _seeded(conv)
        x = torch.randn(1, conv.in_channels, *size, dtype=torch.float64)
        assert layer_pattern(conv, x) == jacobian_pattern(conv, x)


class TestLinear:
    def test_masked_linear_has_an_edge_per_active_weight(self):
        torch.manual_seed(0)
        layer = MaskedLinearLayer(6, 4)
        layer.mask = torch.rand(4, 6) < 0.5
        expected = {(i, o) for o, i in layer.mask.nonzero().tolist()}
        assert layer_pattern(layer, torch.randn(2, 6)) == expected

        kept = layer.mask & (layer.weight.abs() > 0.2)
        expected = {(i, o) for o, i in kept.nonzero().tolist()}
        assert layer_pattern(layer, torch.randn(2, 6), threshold=0.2) == expected

    def test_plain_linear_on_a_sequence_acts_on_the_last_dimension(self):
        layer = _seeded(nn.Linear(3, 2))
        x = torch.randn(1, 4, 3, dtype=torch.float64)
        assert layer_pattern(layer, x) == jacobian_pattern(layer, x)

    def test_torch_prune_masks_are_read(self):
        layer = nn.Linear(5, 3)
        prune.random_unstructured(layer, "weight", amount=0.6)
        expected = {(i, o) for o, i in layer.weight_mask.nonzero().tolist()}
        assert layer_pattern(layer, torch.randn(1, 5)) == expected


def _union_of_jacobians(layer, shape, count=200):
    """Pairs where d output / d input is nonzero for at least one of ``count`` inputs."""
    generator = torch.Generator().manual_seed(0)
    batch = torch.randn(count, *shape[1:], generator=generator, dtype=torch.float64)
    with torch.no_grad():
        outputs = layer(batch)[0].numel()
    matrix = jacobian(lambda x: layer(x).sum(0), batch, vectorize=True)
    any_input = matrix.reshape(outputs, count, -1).ne(0).any(dim=1)
    targets, sources = any_input.nonzero(as_tuple=True)
    return set(zip(sources.tolist(), targets.tolist()))


class TestPooling:
    @pytest.mark.parametrize(
        ("pool", "shape"),
        [
            (nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True), (1, 2, 6, 7)),
            (nn.AvgPool2d((2, 3), count_include_pad=False, padding=(1, 1)), (1, 1, 5, 8)),
            (nn.AdaptiveAvgPool2d((3, 2)), (1, 2, 7, 5)),
            (nn.AdaptiveAvgPool1d(4), (1, 3, 10)),
            (nn.AvgPool1d(3, stride=1), (1, 2, 6)),
        ],
        ids=repr,
    )
    def test_average_pooling_is_its_jacobian(self, pool, shape):
        x = torch.randn(shape, dtype=torch.float64)
        assert layer_pattern(pool, x) == jacobian_pattern(pool, x)

    @pytest.mark.parametrize(
        ("pool", "shape"),
        [
            (
                nn.MaxPool2d((2, 3), stride=(2, 1), padding=1, dilation=(1, 2), ceil_mode=True),
                (1, 2, 5, 7),
            ),
            (nn.MaxPool2d(2), (1, 1, 4, 6)),
            (nn.AdaptiveMaxPool2d((2, 3)), (1, 1, 5, 7)),
            (nn.MaxPool1d(3, stride=2, padding=1), (1, 2, 9)),
        ],
        ids=repr,
    )
    def test_max_pooling_connects_each_output_to_its_window(self, pool, shape):
        # One Jacobian of a max pool picks one element per window; over many inputs
        # every element of every window gets picked.
        x = torch.randn(shape, dtype=torch.float64)
        assert layer_pattern(pool, x) == _union_of_jacobians(pool, shape)

    def test_functional_pooling_and_reductions(self):
        class Pools(nn.Module):
            def forward(self, x):
                return F.max_pool2d(x, 2), F.avg_pool2d(x, (1, 2)), x.mean((2, 3)), x.amax(1)

        x = torch.randn(1, 2, 4, 6, dtype=torch.float64)
        graph = to_graph(Pools(), x)
        assert edges_between(graph, "input", "mean") == jacobian_pattern(
            lambda t: t.mean((2, 3)), x
        )
        assert edges_between(graph, "input", "avg_pool2d") == jacobian_pattern(
            lambda t: F.avg_pool2d(t, (1, 2)), x
        )
        assert edges_between(graph, "input", "max_pool2d") == edges_between(
            to_graph(nn.Sequential(nn.MaxPool2d(2)), x), "input", "0"
        )
        amax = edges_between(graph, "input", "amax")
        assert amax == {(c * 24 + p, p) for c in range(2) for p in range(24)}


class TestTransparentAndMoving:
    def test_elementwise_layers_and_flatten_keep_identities(self):
        torch.manual_seed(0)
        model = nn.Sequential(
            nn.Conv2d(1, 2, 3),
            nn.ReLU(),
            nn.BatchNorm2d(2),
            nn.Dropout(),
            nn.Flatten(),
            MaskedLinearLayer(18, 4),
        )
        model[5].mask = torch.rand(4, 18) < 0.5
        graph = to_graph(model, torch.randn(1, 1, 5, 5))
        assert {v[0] for v in graph} == {"input", "0", "5"}
        expected = {(i, o) for o, i in model[5].mask.nonzero().tolist()}
        assert edges_between(graph, "0", "5") == expected

    def test_permute_and_view_move_elements_exactly(self):
        class Moves(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.conv = nn.Conv2d(2, 3, 1)
                self.linear = nn.Linear(12, 2)

            def forward(self, x):
                y = self.conv(x).permute(0, 2, 3, 1)  # [1, 2, 2, 3]
                return self.linear(y.reshape(y.size(0), -1))

        model = Moves()
        graph = to_graph(model, torch.randn(1, 2, 2, 2))
        # Feature f of the flattened permuted tensor is conv output (c, h, w) with
        # f = (h * 2 + w) * 3 + c, i.e. conv element c * 4 + h * 2 + w.
        feature_to_conv = {
            (h * 2 + w) * 3 + c: c * 4 + h * 2 + w
            for c in range(3)
            for h in range(2)
            for w in range(2)
        }
        expected = {(feature_to_conv[f], o) for o in range(2) for f in range(12)}
        assert edges_between(graph, "conv", "linear") == expected

    @pytest.mark.parametrize("tracer", ["fx", "hooks"])
    def test_tensor_properties_move_elements(self, tracer):
        class Transposed(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.fc = nn.Linear(2, 1)

            def forward(self, x):
                return self.fc(x.mT)

        graph = to_graph(Transposed(), torch.randn(1, 2, 3), tracer=tracer)
        # Row r of x.mT is column r of x: elements r and 3 + r.
        assert edges_between(graph, "input", "fc") == {(r, r) for r in range(3)} | {
            (3 + r, r) for r in range(3)
        }
        assert "getattr" in to_graph(Transposed(), torch.randn(1, 2, 3), granularity="layer")


class Merge(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(1, 2, 3, padding=1)
        self.b = nn.Conv2d(2, 2, 3, padding=1)
        self.c = nn.Conv2d(4, 3, 1)

    def forward(self, x):
        y = self.a(x)
        z = torch.relu(self.b(y)) + y
        return self.c(torch.cat([z, y], dim=1))


class TestMerging:
    def test_residual_add_and_cat_at_neuron_level(self):
        graph = to_graph(Merge(), torch.randn(1, 1, 4, 4))
        elements = range(32)
        assert edges_between(graph, "b", "add") == {(e, e) for e in elements}
        assert edges_between(graph, "a", "add") == {(e, e) for e in elements}
        # c is 1x1 over cat([z, y]): channels 0, 1 are the add, channels 2, 3 are a.
        assert edges_between(graph, "add", "c") == {
            (k * 16 + p, o * 16 + p) for o in range(3) for k in range(2) for p in range(16)
        }
        assert edges_between(graph, "a", "c") == {
            (k * 16 + p, o * 16 + p) for o in range(3) for k in range(2) for p in range(16)
        }
        assert {v[0] for v in graph} == {"input", "a", "b", "add", "c"}
        assert {graph.nodes[v]["role"] for v in graph if v[0] == "c"} == {"output"}

    def test_residual_add_and_cat_at_channel_level(self):
        graph = to_graph(Merge(), torch.randn(1, 1, 4, 4), granularity="channel")
        pairs = {(u, v) for u, v in graph.edges}
        expected = {(("input", 0), ("a", k)) for k in range(2)}
        expected |= {(("a", i), ("b", o)) for i in range(2) for o in range(2)}
        expected |= {((m, k), ("add", k)) for m in ("a", "b") for k in range(2)}
        expected |= {((m, k), ("c", o)) for m in ("a", "add") for k in range(2) for o in range(3)}
        assert pairs == expected

    def test_broadcast_product_connects_each_output_to_its_operands(self):
        class Gate(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.conv = nn.Conv2d(1, 2, 1)
                self.pool = nn.AdaptiveAvgPool2d(1)

            def forward(self, x):
                y = self.conv(x)
                return y * torch.sigmoid(self.pool(y))

        graph = to_graph(Gate(), torch.randn(1, 1, 2, 3))
        assert edges_between(graph, "conv", "mul") == {(e, e) for e in range(12)}
        assert edges_between(graph, "pool", "mul") == {(e // 6, e) for e in range(12)}
        channels = to_graph(Gate(), torch.randn(1, 1, 2, 3), granularity="channel")
        assert {(u, v) for u, v in channels.in_edges([("mul", 0), ("mul", 1)])} == {
            (("conv", 0), ("mul", 0)),
            (("conv", 1), ("mul", 1)),
        }

    def test_elementwise_max_of_two_tensors_merges(self):
        class Larger(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.a, self.b = nn.Linear(2, 3), nn.Linear(2, 3)

            def forward(self, x):
                return torch.max(self.a(x), self.b(x))

        graph = to_graph(Larger(), torch.randn(1, 2))
        assert (
            edges_between(graph, "a", "max")
            == edges_between(graph, "b", "max")
            == {(e, e) for e in range(3)}
        )


def test_pattern_arrays_are_int64_and_unique():
    # A circular pad folds two kernel offsets onto one input: no duplicate edges.
    conv = nn.Conv1d(1, 1, 5, padding=3, padding_mode="circular")
    graph = to_graph(nn.Sequential(conv), torch.randn(1, 1, 3))
    sources = np.array([u[1] for u, _ in graph.edges])
    assert graph.number_of_edges() == len(set(graph.edges)) == 5 * 3
    assert sources.max() == 2


class TestMaskedConvolution:
    @pytest.mark.parametrize(
        ("conv", "size"),
        [
            (MaskedConv2d(4, 6, 3, stride=2, padding=1, groups=2), (5, 7)),
            (
                MaskedConv2d(2, 3, (3, 2), padding=(2, 1), dilation=(1, 2), padding_mode="reflect"),
                (4, 6),
            ),
            (MaskedConv1d(2, 4, 3, padding="same", groups=2), (7,)),
        ],
        ids=repr,
    )
    def test_masked_edges_are_the_jacobian_pattern(self, conv, size):
        conv = _seeded(conv)
        generator = torch.Generator().manual_seed(2)
        conv.mask = torch.rand(conv.weight.shape, generator=generator) < 0.4
        conv.prune_output_channels([1])
        x = torch.randn(1, conv.in_channels, *size, dtype=torch.float64)
        expected = jacobian_pattern(conv, x)  # the masked forward itself
        assert layer_pattern(conv, x) == expected
        assert {target for _, target in expected} < set(range(conv(x)[0].numel()))

    def test_channel_graph_is_the_layers_own_channel_structure(self):
        conv = MaskedConv2d(4, 6, 3, groups=2)
        conv.prune_kernels([0, 4], [1, 3])
        conv.prune_output_channels([2])
        graph = to_graph(nn.Sequential(conv), torch.randn(1, 4, 5, 5), granularity="channel")
        own = conv.generate_structure()

        def to_own(vertex):
            return ("input", vertex[1]) if vertex[0] == "input" else ("output", vertex[1])

        assert {(to_own(u), to_own(v)) for u, v in graph.edges} == set(own.edges)
        assert graph.number_of_nodes() == own.number_of_nodes() == 10
