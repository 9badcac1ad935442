"""The Triton DAN kernel, run by Triton's interpreter on CPU tensors, against the torch
kernel: outputs and every gradient on random DAGs; its packing of the edges, its cost
model and its refusals."""

from __future__ import annotations

import copy
import subprocess
import sys

import networkx as nx
import numpy as np
import pytest
import torch
from torch import nn

from bad_values import assert_unchanged, snapshot
from pypaddle.errors import ConfigError
from pypaddle.sparse import MaskedDeepDAN
from pypaddle.sparse import _dan_triton as gpu
from pypaddle.sparse._dan_numba import active_edges
from pypaddle.sparse._dan_plan import DanPlan

pytest.importorskip("triton")

CPU = torch.device("cpu")


@pytest.fixture
def interpreter(monkeypatch):
    """Triton's interpreter for the kernels' next use (they are jitted per setting)."""
    monkeypatch.setenv("TRITON_INTERPRET", "1")


def random_dag(seed: int, vertices: int, density: float) -> nx.DiGraph:
    """A random DAG on shuffled labels, with skip edges, isolated vertices and sinks in
    early layers (so that the sinks are usually not contiguous)."""
    rng = np.random.default_rng(seed)
    sources, targets = np.nonzero(np.triu(rng.random((vertices, vertices)) < density, 1))
    labels = rng.permutation(vertices)
    structure = nx.DiGraph()
    structure.add_nodes_from(labels.tolist())
    structure.add_edges_from(zip(labels[sources].tolist(), labels[targets].tolist()))
    return structure


def run(model: MaskedDeepDAN, x: torch.Tensor, weights: torch.Tensor):
    """Output, and the gradients of (output * weights).sum() by input and parameter."""
    model.zero_grad()
    x = x.detach().clone().requires_grad_()
    output = model(x)
    (output * weights).sum().backward()
    return output.detach(), x.grad, {name: p.grad for name, p in model.named_parameters()}


def assert_kernels_agree(
    model: MaskedDeepDAN, x: torch.Tensor, seed: int, tolerance: float | None = None
) -> None:
    reference = copy.deepcopy(model)
    reference.kernel = "torch"
    model.kernel = "triton"
    assert model._kernel_for(x) == "triton"
    weights = torch.randn(
        x.shape[0], model.num_classes, dtype=x.dtype, generator=torch.Generator().manual_seed(seed)
    )
    output, input_grad, grads = run(model, x, weights)
    expected_output, expected_input_grad, expected_grads = run(reference, x, weights)
    close = {} if tolerance is None else {"rtol": tolerance, "atol": tolerance}
    torch.testing.assert_close(output, expected_output, **close)
    torch.testing.assert_close(input_grad, expected_input_grad, **close)
    assert grads.keys() == expected_grads.keys()
    for name, grad in grads.items():
        torch.testing.assert_close(grad, expected_grads[name], msg=name, **close)
    assert bool((grads["hidden_weight"][~model.hidden_mask] == 0).all())
    assert bool((grads["hidden_bias"][~model.hidden_bias_mask] == 0).all())


@pytest.mark.usefixtures("interpreter")
class TestAgainstTorchKernel:
    @pytest.mark.parametrize(
        ("seed", "activation", "dtype", "batch"),
        [
            (0, nn.ReLU, torch.float32, 5),
            (1, nn.Tanh, torch.float64, 70),
            (2, nn.Sigmoid, torch.float64, 1),
            (3, nn.Identity, torch.float32, 33),
            (4, nn.ReLU, torch.float64, 130),  # two programs, the second one part-full
        ],
    )
    def test_random_dags(self, seed, activation, dtype, batch):
        torch.manual_seed(seed)
        structure = random_dag(seed, 14 + 3 * seed, 0.25)
        model = MaskedDeepDAN(5, 3, structure, activation=activation).to(dtype)
        x = torch.randn(batch, 5, dtype=dtype, generator=torch.Generator().manual_seed(seed))
        assert_kernels_agree(model, x, seed)

    @pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
    def test_half_precision_sums_in_float32(self, dtype):
        torch.manual_seed(10)
        model = MaskedDeepDAN(4, 2, random_dag(10, 16, 0.3)).to(dtype)
        x = torch.randn(6, 4, generator=torch.Generator().manual_seed(10)).to(dtype)
        assert_kernels_agree(model, x, 10, tolerance=3e-2)

    @pytest.mark.parametrize("seed", [5, 6])
    def test_pruned_weights_and_biases(self, seed):
        torch.manual_seed(seed)
        model = MaskedDeepDAN(4, 2, random_dag(seed, 20, 0.3), activation=nn.Tanh).double()
        generator = torch.Generator().manual_seed(seed)
        model.hidden_mask[torch.rand(model.hidden_mask.shape, generator=generator) < 0.4] = False
        model.hidden_bias_mask[::3] = False
        x = torch.randn(9, 4, dtype=torch.float64, generator=generator)
        assert_kernels_agree(model, x, seed)

    def test_mask_edits_after_a_forward_are_seen(self):
        torch.manual_seed(7)
        model = MaskedDeepDAN(3, 2, random_dag(7, 16, 0.3), activation=nn.Tanh, kernel="triton")
        x = torch.randn(4, 3)
        before = model(x)
        for layer in model.layers_main_hidden[1:]:
            layer.mask[:, ::2] = False
        after = model(x)
        assert not torch.allclose(before, after)
        torch.testing.assert_close(after, model._forward_by_modules(x))

    def test_deep_chain_with_wide_layer_zero_and_a_layered_block(self):
        # Layer 0 is 3 sources wide; then a chain, then a complete 2 x 20 block: tiles of
        # more than one chunk, and tiles of several rows.
        structure = nx.DiGraph([(0, 3), (1, 3), (2, 3)])
        nx.add_path(structure, range(3, 12))
        structure.add_edges_from((11, 12 + i) for i in range(20))
        structure.add_edges_from((12 + i, 32 + j) for i in range(20) for j in range(20))
        torch.manual_seed(8)
        model = MaskedDeepDAN(6, 4, structure).double()
        x = torch.randn(3, 6, dtype=torch.float64)
        assert_kernels_agree(model, x, 8)

    def test_same_gradients_every_time(self):
        torch.manual_seed(9)
        model = MaskedDeepDAN(4, 2, random_dag(9, 24, 0.3), kernel="triton")
        x = torch.randn(70, 4)
        weights = torch.randn(70, 2)
        first, second = run(model, x, weights), run(model, x, weights)
        assert torch.equal(first[1], second[1])
        for name, grad in first[2].items():
            assert torch.equal(grad, second[2][name]), name

    def test_auto_never_picks_it_on_the_cpu(self):
        model = MaskedDeepDAN(8, 2, random_dag(10, 20, 0.3))
        assert model._kernel_for(torch.randn(4, 8)) in ("compiled", "torch")


class TestPacking:
    def test_tiles_of_a_small_graph(self):
        # Layers: (a, b) -> (c, d) -> e, with e also reading a directly.
        structure = nx.DiGraph([("a", "c"), ("b", "c"), ("a", "d"), ("c", "e"), ("d", "e")])
        structure.add_edge("a", "e")
        plan = DanPlan.from_structure(structure, features=2)
        assert plan.labels == ("a", "b", "c", "d", "e")
        packed = gpu.triton_edges(plan, active_edges(plan, plan.edge_mask()), CPU)
        assert (packed.block_v, packed.block_k) == (2, 2)  # widest layer, mean in-degree
        forward = packed.forward
        # Layer 1 (c: 2 edges, d: 1) is one tile of one chunk; layer 2 (e: 3 edges) a tile
        # of two chunks.
        assert forward.count == 2  # and an empty tile at the end
        assert forward.vertex.tolist() == [2, 3, 4, -1, -1, -1]
        assert forward.offset.tolist() == [0, 1, 3, 3]
        # Chunks hold [k, slot]: c reads a, b; d reads a; e reads a, c, then d.
        a, b, c, d, e = 0, 1, 2, 3, 4
        assert forward.other.view(3, 2, 2).tolist() == [
            [[a, a], [b, -1]],
            [[a, -1], [c, -1]],
            [[d, -1], [-1, -1]],
        ]
        sources, targets = plan.edges_at(forward.position.view(3, 2, 2)[0, 0].numpy())
        assert (sources.tolist(), targets.tolist()) == ([a, a], [c, d])
        backward = packed.backward
        # The last layer first; by out-degree within a layer: e (no edges); c, d; a (3
        # edges: 2 chunks), b.
        assert backward.vertex.tolist() == [e, -1, c, d, a, b, -1, -1]
        assert backward.offset.tolist() == [0, 0, 1, 3, 3]
        assert backward.other.view(3, 2, 2).tolist() == [
            [[e, e], [-1, -1]],
            [[c, c], [d, -1]],
            [[e, -1], [-1, -1]],
        ]
        assert sorted(packed.positions.tolist()) == sorted(plan.entries.tolist())

    def test_pruned_edges_are_not_packed(self):
        structure = nx.DiGraph([(0, 1), (0, 2), (1, 2)])
        plan = DanPlan.from_structure(structure, features=3)
        mask = plan.edge_mask()
        edges = list(zip(plan.edge_sources.tolist(), plan.edge_targets.tolist()))
        mask[plan.entries[edges.index((1, 2))]] = False
        packed = gpu.triton_edges(plan, active_edges(plan, mask), CPU)
        kept = [plan.entries[edges.index(edge)] for edge in [(0, 1), (0, 2)]]
        assert packed.positions.tolist() == kept
        assert packed.forward.vertex.tolist() == [1, -1, 2, -1, -1, -1]
        assert packed.forward.other.view(-1, 2, 2)[:, 0].tolist() == [[0, -1], [0, -1]]


class TestCostModel:
    def test_the_walk_costs_once_per_wave_of_programs(self):
        _, packed = self.packed(nx.path_graph(50, create_using=nx.DiGraph))
        one_wave = gpu.cost(packed, 256, multiprocessors=132)
        assert gpu.cost(packed, 512, multiprocessors=132) == pytest.approx(one_wave, rel=0.01)
        # 132 * 4 programs of 64 samples fill one wave; one sample more starts a second.
        full = 132 * 4 * 64
        assert gpu.cost(packed, full + 1, multiprocessors=132) > 1.9 * (
            gpu.cost(packed, full, multiprocessors=132) - gpu.LAUNCH_SECONDS
        )

    @staticmethod
    def packed(structure: nx.DiGraph, features: int = 8) -> tuple[DanPlan, gpu.TritonEdges]:
        plan = DanPlan.from_structure(structure, features)
        return plan, gpu.triton_edges(plan, active_edges(plan, plan.edge_mask()), CPU)

    def test_deep_narrow_graphs_go_to_triton(self):
        plan, packed = self.packed(nx.path_graph(200, create_using=nx.DiGraph))
        assert gpu.preferred(plan, packed, 256)
        assert gpu.preferred(plan, packed, 8192)

    def test_few_wide_dense_layers_go_to_cublas(self):
        width, layers = 128, 3
        source, target = np.divmod(np.arange(width * width), width)
        starts = np.arange(layers) * width
        structure = nx.DiGraph()
        structure.add_edges_from(
            zip(
                (starts[:, None] + source).ravel().tolist(),
                (starts[:, None] + width + target).ravel().tolist(),
            )
        )
        plan, packed = self.packed(structure)
        assert plan.widths == (width,) * (layers + 1)
        assert not gpu.preferred(plan, packed, 256)
        assert not gpu.preferred(plan, packed, 8192)


class TestRefusals:
    def test_cpu_without_the_interpreter_names_the_alternatives(self, monkeypatch):
        monkeypatch.delenv("TRITON_INTERPRET", raising=False)
        model = MaskedDeepDAN(4, 2, nx.path_graph(5, create_using=nx.DiGraph), kernel="triton")
        x = torch.randn(3, 4)
        before = snapshot(model)
        with pytest.raises(ConfigError, match=r"TRITON_INTERPRET.*'torch'.*'compiled'"):
            model(x)
        assert_unchanged(before, model)
        model.kernel = "auto"
        assert model._kernel_for(x) in ("compiled", "torch")

    def test_other_devices_are_named(self):
        model = MaskedDeepDAN(4, 2, nx.path_graph(5, create_using=nx.DiGraph), kernel="triton")
        x = torch.empty(3, 4, device="meta")
        with pytest.raises(ConfigError, match="runs on CUDA devices, not on meta"):
            model._kernel_for(x)
        model.kernel = "auto"
        assert model._kernel_for(x) == "torch"

    def test_integer_dtypes_are_named(self):
        assert "float32" in gpu.unsupported(torch.zeros(2, dtype=torch.int64))

    def test_without_triton_it_says_what_to_install(self, monkeypatch):
        monkeypatch.setattr(gpu, "available", lambda: False)
        model = MaskedDeepDAN(4, 2, nx.path_graph(5, create_using=nx.DiGraph), kernel="triton")
        with pytest.raises(ConfigError, match=r"pypaddle\[gpu\]"):
            model(torch.randn(3, 4))

    @pytest.mark.slow
    def test_importing_pypaddle_does_not_import_triton(self):
        code = (
            "import sys, torch, networkx, pypaddle, pypaddle.sparse\n"
            "model = pypaddle.sparse.MaskedDeepDAN(3, 2, networkx.DiGraph([(0, 1)]))\n"
            "model(torch.randn(2, 3)).sum().backward()\n"
            "print('triton' in sys.modules)\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert result.stdout.strip() == "False"
