"""MaskedDeepDAN: graph -> model semantics, structure round trips, vectorisation, bad input."""

from __future__ import annotations

import copy
import io
import sys
from collections import OrderedDict

import networkx as nx
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils import parametrize, prune

import pypaddle.sparse
import pypaddle.sparse._dan_numba
import pypaddle.sparse.dan
from bad_values import NOT_COUNTS, assert_unchanged, snapshot
from pypaddle.errors import ConfigError, InputTypeError, MaskError, StructureError
from pypaddle.prune import reset_optimizer_state
from pypaddle.sparse import CachedLayeredGraph, MaskedDeepDAN, maskable_layers

# These tests build label-oriented rings, chains and one-source graphs on purpose (deep,
# narrow structures stress the kernels); the warning itself is tested in test_dan_init.py.
pytestmark = pytest.mark.filterwarnings("ignore::pypaddle.errors.StructureWarning")


def oriented(graph: nx.Graph, relabel=None) -> nx.DiGraph:
    """An undirected graph oriented from lower to higher label, optionally relabelled."""
    structure = nx.DiGraph()
    structure.add_nodes_from(sorted(graph))
    structure.add_edges_from((min(u, v), max(u, v)) for u, v in graph.edges)
    if relabel is not None:
        structure = nx.relabel_nodes(structure, {v: relabel(v) for v in structure})
    return structure


def random_structures():
    for seed in range(3):
        yield oriented(nx.watts_strogatz_graph(40, 4, 0.3, seed=seed))
        yield oriented(nx.barabasi_albert_graph(40, 2, seed=seed), relabel=lambda v: f"v{v}")
        yield oriented(nx.gnp_random_graph(40, 0.15, seed=seed), relabel=lambda v: (v % 3, v))


def hidden_edges(model: MaskedDeepDAN) -> int:
    return sum(int(layer.mask.sum()) for layer in model.layers_main_hidden[1:])


@pytest.fixture
def tiny():
    """a -> b -> c, a -> c, and an isolated vertex d."""
    structure = CachedLayeredGraph()
    structure.add_nodes_from(["a", "b", "c", "d"])
    structure.add_edges_from([("a", "b"), ("b", "c"), ("a", "c")])
    return structure


class TestReadmeExample:
    def test_runs_as_written(self):
        structure = pypaddle.sparse.CachedLayeredGraph()
        structure.add_edges_from([(0, 2), (1, 2), (2, 3), (0, 3), (1, 4)])
        model = pypaddle.sparse.MaskedDeepDAN(784, 10, structure)
        model.apply_mask()
        model.recompute_mask()
        pruned_structure = model.generate_structure()
        new_model = pypaddle.sparse.MaskedDeepDAN(784, 10, pruned_structure)
        assert new_model(torch.randn(2, 784)).shape == (2, 10)
        assert set(pruned_structure.edges) <= set(structure.edges)


class TestSemantics:
    def test_forward_equals_hand_computation(self, tiny):
        torch.manual_seed(0)
        model = MaskedDeepDAN(3, 2, tiny).double()
        first, second, third = model.layers_main_hidden
        # Layer order: a, d (layer 0); b (layer 1); c (layer 2, reading a, d, b).
        assert model.layer_widths == (2, 1, 1)
        assert first.mask.all()
        assert second.mask.tolist() == [[True, False]]
        assert third.mask.tolist() == [[True, False, True]]
        x = torch.randn(5, 3, dtype=torch.float64)
        h_a, h_d = torch.relu(x @ first.weight.T + first.bias).unbind(1)
        h_b = torch.relu(second.weight[0, 0] * h_a + second.bias[0])
        h_c = torch.relu(third.weight[0, 0] * h_a + third.weight[0, 2] * h_b + third.bias[0])
        sinks = torch.stack([h_d, h_c], dim=1)  # sinks in layer order: d, then c
        expected = sinks @ model.layer_out.weight.T + model.layer_out.bias
        torch.testing.assert_close(model(x), expected)

    def test_isolated_vertex_reads_inputs_and_feeds_outputs(self, tiny):
        model = MaskedDeepDAN(3, 2, tiny)
        full = model.generate_structure(include_input=True, include_output=True)
        assert set(full.predecessors("d")) == {("input", i) for i in range(3)}
        assert set(full.successors("d")) == {("output", j) for j in range(2)}
        assert set(full.successors("a")) == {"b", "c"}

    def test_skip_edges_summed_before_activation(self, tiny):
        model = MaskedDeepDAN(3, 1, tiny, activation=nn.Identity)
        with torch.no_grad():
            for layer in maskable_layers(model):
                layer.weight.fill_(1.0)
                layer.bias.zero_()
        # Linear network of ones: a = d = sum(x); b = a; c = a + b = 2 sum(x); out = d + c.
        x = torch.tensor([[1.0, 2.0, 3.0]])
        assert model(x).item() == pytest.approx(6 + 12)

    def test_plain_digraph_and_numpy_float64_input(self):
        model = MaskedDeepDAN(4, 3, nx.DiGraph([(1, 2), (2, 3)]))
        output = model(torch.from_numpy(np.random.default_rng(0).normal(size=(2, 4))))
        assert output.dtype == torch.float32
        assert output.shape == (2, 3)

    def test_shaped_input_is_flattened(self):
        model = MaskedDeepDAN((1, 2, 2), 3, nx.DiGraph([(1, 2)]))
        assert model(torch.randn(6, 1, 2, 2)).shape == (6, 3)

    @pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
    def test_other_dtypes(self, dtype):
        model = MaskedDeepDAN(4, 3, oriented(nx.path_graph(5))).to(dtype)
        output = model(torch.randn(2, 4))
        output.float().sum().backward()
        assert output.dtype == dtype
        assert all(layer.mask.dtype == torch.bool for layer in maskable_layers(model))


class TestKernelsAgree:
    """The compiled and torch kernels against the module-by-module path."""

    @pytest.mark.parametrize("kernel", ["compiled", "torch"])
    @pytest.mark.parametrize("input_grad", [True, False])
    @pytest.mark.parametrize("activation", [nn.ReLU, nn.Tanh, nn.Sigmoid, None])
    def test_outputs_and_gradients(self, kernel, activation, input_grad):
        torch.manual_seed(1)
        structure = oriented(nx.newman_watts_strogatz_graph(30, 4, 0.5, seed=1))
        structure.add_node(30)  # isolated: a sink in layer 0, so the sinks are not contiguous
        model = MaskedDeepDAN(6, 3, structure, activation=activation, kernel=kernel).double()
        assert model.plan.sink_range is None
        model.layers_main_hidden[3].mask.fill_(False)
        model.layers_main_hidden[0].prune_neurons([0])
        model.layers_main_hidden[5].prune_neurons([0])
        x = torch.randn(5, 6, dtype=torch.float64, requires_grad=input_grad)
        results = []
        for forward in (model, model._forward_by_modules):
            model.zero_grad()
            x.grad = None
            forward(x).square().sum().backward()
            input_grad_value = None if x.grad is None else x.grad.clone()
            results.append(
                (forward(x), input_grad_value, [p.grad.clone() for p in model.parameters()])
            )
        assert model._kernel_for(x) == kernel
        (out_fast, dx_fast, grads_fast), (out_slow, dx_slow, grads_slow) = results
        torch.testing.assert_close(out_fast, out_slow)
        torch.testing.assert_close(dx_fast, dx_slow)
        for fast, slow in zip(grads_fast, grads_slow):
            torch.testing.assert_close(fast, slow)
        assert bool((model.hidden_weight.grad[~model.hidden_mask] == 0).all())
        assert bool((model.hidden_bias.grad[~model.hidden_bias_mask] == 0).all())

    @pytest.mark.parametrize("kernel", ["compiled", "torch"])
    def test_mask_edits_after_a_forward_are_seen(self, kernel):
        torch.manual_seed(2)
        structure = oriented(nx.watts_strogatz_graph(25, 4, 0.5, seed=2))
        model = MaskedDeepDAN(4, 2, structure, activation=nn.Tanh, kernel=kernel)
        x = torch.randn(3, 4)
        before = model(x)
        for layer in model.layers_main_hidden[1:]:
            layer.mask[:, ::2] = False
        after = model(x)
        assert not torch.allclose(before, after)
        torch.testing.assert_close(after, model._forward_by_modules(x))

    @pytest.mark.parametrize("kernel", ["compiled", "torch"])
    def test_gradcheck_through_functional_call(self, kernel):
        torch.manual_seed(4)
        structure = oriented(nx.gnp_random_graph(12, 0.3, seed=4))
        model = MaskedDeepDAN(3, 2, structure, activation=nn.Tanh, kernel=kernel).double()
        model.layers_main_hidden[1].mask[:, 0] = False

        def run(x, weight, bias):
            packed = {"hidden_weight": weight, "hidden_bias": bias}
            return torch.func.functional_call(model, packed, (x,))

        x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
        weight = model.hidden_weight.detach().clone().requires_grad_()
        bias = model.hidden_bias.detach().clone().requires_grad_()
        assert torch.autograd.gradcheck(run, (x, weight, bias))

    def test_float32_kernels_agree(self):
        torch.manual_seed(3)
        structure = oriented(nx.barabasi_albert_graph(60, 2, seed=3))
        x = torch.randn(16, 5)
        outputs = []
        for kernel in ("compiled", "torch", "modules"):
            torch.manual_seed(3)
            model = MaskedDeepDAN(5, 2, structure, kernel=kernel)
            model(x).sum().backward()
            outputs.append((model(x), model.hidden_weight.grad))
        for output, grad in outputs[1:]:
            torch.testing.assert_close(output, outputs[0][0])
            torch.testing.assert_close(grad, outputs[0][1])

    def test_layer_norm_and_custom_activation_train(self):
        structure = oriented(nx.watts_strogatz_graph(20, 4, 0.3, seed=0))
        model = MaskedDeepDAN(5, 2, structure, use_layer_norm=True, activation=torch.nn.GELU())
        model(torch.randn(4, 5)).sum().backward()
        assert all(p.grad is not None for p in model.parameters())


class TestGenerateStructure:
    @pytest.mark.parametrize("structure", list(random_structures()))
    def test_untouched_model_gives_back_its_structure(self, structure):
        model = MaskedDeepDAN(10, 4, structure)
        generated = model.generate_structure()
        assert list(generated.nodes) == list(structure.nodes)
        assert set(generated.edges) == set(structure.edges)
        assert generated.number_of_edges() == structure.number_of_edges()

    @pytest.mark.parametrize("structure", list(random_structures()))
    def test_masked_model_gives_surviving_subgraph(self, structure):
        torch.manual_seed(0)
        model = MaskedDeepDAN(10, 4, structure)
        for layer in model.layers_main_hidden[1:]:
            layer.mask.logical_and_(torch.rand(layer.mask.shape) < 0.5)
        pruned = model.generate_structure()
        assert set(pruned.edges) <= set(structure.edges)
        assert pruned.number_of_edges() == hidden_edges(model) < structure.number_of_edges()
        assert set(pruned.nodes) == set(structure.nodes)
        rebuilt = MaskedDeepDAN(10, 4, pruned).generate_structure()
        assert set(rebuilt.edges) == set(pruned.edges)
        assert list(rebuilt.nodes) == list(pruned.nodes)

    def test_masked_edge_is_the_one_removed(self, tiny):
        model = MaskedDeepDAN(3, 2, tiny)
        model.layers_main_hidden[2].mask[0, 0] = False  # a -> c
        assert set(model.generate_structure().edges) == {("a", "b"), ("b", "c")}

    def test_node_attributes_kept(self):
        structure = nx.DiGraph()
        structure.add_node(0, colour="red")
        structure.add_node(1, colour="blue")
        structure.add_edge(0, 1)
        generated = MaskedDeepDAN(2, 2, structure).generate_structure()
        assert dict(generated.nodes(data=True)) == {0: {"colour": "red"}, 1: {"colour": "blue"}}

    def test_with_inputs_and_outputs(self, tiny):
        model = MaskedDeepDAN(3, 2, tiny)
        model.layers_main_hidden[0].mask[0, 1] = False  # input 1 -> a
        model.layer_out.mask[1, 0] = False  # d -> output 1
        full = model.generate_structure(include_input=True, include_output=True)
        assert full.number_of_nodes() == 4 + 3 + 2
        assert full.nodes[("input", 0)]["role"] == "input"
        assert set(full.predecessors("a")) == {("input", 0), ("input", 2)}
        assert set(full.predecessors(("output", 1))) == {"c"}
        assert nx.is_directed_acyclic_graph(full)

    def test_label_clash_with_inputs_is_an_error(self):
        model = MaskedDeepDAN(2, 1, nx.DiGraph([(("input", 0), "x")]))
        assert model.generate_structure().number_of_edges() == 1
        with pytest.raises(StructureError, match="relabel"):
            model.generate_structure(include_input=True)

    @settings(max_examples=30, deadline=None)
    @given(
        st.integers(1, 25).flatmap(
            lambda n: st.tuples(
                st.just(n),
                st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=80),
                st.integers(0, 2**16),
            )
        )
    )
    def test_random_dags_round_trip_and_train(self, case):
        count, pairs, seed = case
        structure = nx.DiGraph()
        structure.add_nodes_from(np.random.default_rng(seed).permutation(count).tolist())
        structure.add_edges_from((min(u, v), max(u, v)) for u, v in pairs if u != v)
        model = MaskedDeepDAN(3, 2, structure)
        model(torch.randn(4, 3)).sum().backward()
        generated = model.generate_structure()
        assert list(generated.nodes) == list(structure.nodes)
        assert set(generated.edges) == set(structure.edges)
        for layer in maskable_layers(model):
            assert torch.all(layer.weight.grad[~layer.mask] == 0)


class TestVectorised:
    @staticmethod
    def python_calls(function, *args) -> int:
        calls = 0

        def profile(frame, event, arg):
            nonlocal calls
            if event == "call":
                calls += 1

        sys.setprofile(profile)
        try:
            function(*args)
        finally:
            sys.setprofile(None)
        return calls

    @staticmethod
    def layered(widths, density, seed):
        rng = np.random.default_rng(seed)
        structure = nx.DiGraph()
        starts = np.cumsum([0, *widths])
        structure.add_nodes_from(range(starts[-1]))
        for layer in range(1, len(widths)):
            block = rng.random((widths[layer - 1], widths[layer])) < density
            block[0, :] = True
            sources, targets = np.nonzero(block)
            structure.add_edges_from(
                zip((sources + starts[layer - 1]).tolist(), (targets + starts[layer]).tolist())
            )
        return structure

    def test_construction_and_export_do_not_loop_over_edges(self):
        sparse = self.layered([30] * 5, 0.1, seed=0)
        dense = self.layered([30] * 5, 0.9, seed=0)
        assert dense.number_of_edges() > 5 * sparse.number_of_edges()
        for work in (
            lambda graph: MaskedDeepDAN(8, 2, graph),
            lambda graph: MaskedDeepDAN(8, 2, graph).generate_structure(),
        ):
            few, many = (
                self.python_calls(work, sparse),
                self.python_calls(work, dense),
            )
            assert many < 1.2 * few

    def test_torch_kernel_one_matrix_product_per_layer_and_no_networkx(self):
        structure = self.layered([20] * 6, 0.3, seed=1)
        extra = [(u, v) for u in range(20) for v in range(60, 120, 7)]  # skips from layer 0
        structure.add_edges_from(extra)
        model = MaskedDeepDAN(8, 2, structure, kernel="torch")
        products = []

        class Count(torch.overrides.TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                name = getattr(func, "__name__", "")
                if name in {"addmm_", "addmm", "mm", "matmul", "linear", "bmm"}:
                    products.append(name)
                return func(*args, **(kwargs or {}))

        touched = []

        def profile(frame, event, arg):
            if event == "call" and "networkx" in frame.f_code.co_filename:
                touched.append(frame.f_code.co_name)

        x = torch.randn(4, 8)
        sys.setprofile(profile)
        try:
            with Count(), torch.no_grad():
                model(x)
        finally:
            sys.setprofile(None)
        assert len(products) == len(model.layer_widths) + 1  # + the output layer
        assert touched == []

    @staticmethod
    def chain(length: int) -> nx.DiGraph:
        """A path with skips of 2 and 5: ``length`` layers of one vertex each."""
        structure = nx.DiGraph()
        structure.add_nodes_from(range(length))
        for step in (1, 2, 5):
            structure.add_edges_from((v, v + step) for v in range(length - step))
        return structure

    def test_compiled_kernel_makes_the_same_python_calls_at_any_depth(self):
        counts = []
        x = torch.randn(8, 6)
        for length in (20, 200):
            model = MaskedDeepDAN(6, 3, self.chain(length), kernel="compiled")
            assert len(model.layer_widths) == length

            def step(model=model):
                model(x).sum().backward()

            step()  # compiles, builds the edge index
            counts.append(self.python_calls(step))
        few, many = counts
        assert many <= few + 10


class TestStateAndCopies:
    def test_state_dict_round_trip_keeps_masks(self, tiny):
        model = MaskedDeepDAN(3, 2, tiny)
        model.layers_main_hidden[2].mask[0, 2] = False
        fresh = MaskedDeepDAN(3, 2, tiny)
        fresh.load_state_dict(model.state_dict(), strict=True)
        x = torch.randn(4, 3)
        torch.testing.assert_close(fresh(x), model(x))
        assert set(fresh.generate_structure().edges) == set(model.generate_structure().edges)

    @staticmethod
    def per_layer_state(model: MaskedDeepDAN) -> dict[str, torch.Tensor]:
        """The state_dict layout from before the hidden layers were packed (one weight,
        bias, mask and bias mask per layer), as old experiment checkpoints hold it."""
        state = {
            f"layers_main_hidden.{index}.{name}": getattr(layer, name).detach().clone()
            for index, layer in enumerate(model.layers_main_hidden)
            for name in ("weight", "bias", "mask", "bias_mask")
        }
        state.update({f"layer_out.{k}": v for k, v in model.layer_out.state_dict().items()})
        return state

    def test_a_per_layer_state_dict_from_before_packing_loads(self, tiny):
        model = MaskedDeepDAN(3, 2, tiny)
        model.layers_main_hidden[2].mask[0, 2] = False
        model.layers_main_hidden[1].prune_neurons([0])
        wrapped = nn.Sequential(MaskedDeepDAN(3, 2, tiny))
        state = {f"0.{key}": value for key, value in self.per_layer_state(model).items()}
        keys = list(state)
        wrapped.load_state_dict(state, strict=True)
        assert list(state) == keys  # the caller's dict is left as it was
        fresh = wrapped[0]
        for name in ("hidden_weight", "hidden_bias", "hidden_mask", "hidden_bias_mask"):
            assert torch.equal(getattr(fresh, name), getattr(model, name)), name
        x = torch.randn(4, 3)
        torch.testing.assert_close(fresh(x), model(x))

    def test_a_per_layer_state_dict_of_another_structure_is_named(self, tiny):
        other = MaskedDeepDAN(3, 2, nx.DiGraph([("a", "b"), ("a", "c"), ("b", "c"), ("c", "d")]))
        model = MaskedDeepDAN(3, 2, tiny)
        with pytest.raises(RuntimeError, match=r"layers_main_hidden\.1\.weight"):
            model.load_state_dict(self.per_layer_state(other), strict=True)

    def test_deepcopy_is_independent(self, tiny):
        model = MaskedDeepDAN(3, 2, tiny)
        clone = copy.deepcopy(model)
        clone.layers_main_hidden[1].mask.fill_(False)
        assert model.layers_main_hidden[1].mask.tolist() == [[True, False]]
        assert clone.generate_structure().number_of_edges() == 2

    def test_structure_is_not_modified(self):
        structure = CachedLayeredGraph([(0, 1), (1, 2)])
        structure.nodes[0]["tag"] = 1
        before = (list(structure.nodes(data=True)), list(structure.edges(data=True)))
        model = MaskedDeepDAN(2, 2, structure)
        model.generate_structure().add_edge(0, 2)
        assert (list(structure.nodes(data=True)), list(structure.edges(data=True))) == before

    def test_density_and_mask_methods(self, tiny):
        model = MaskedDeepDAN(3, 2, tiny)
        with torch.no_grad():
            model.layers_main_hidden[1].weight.fill_(1e-5)
        model.recompute_mask(0.001)
        assert model.layers_main_hidden[1].mask.sum() == 0
        assert 0 < model.density < 1
        model.apply_mask()
        assert model.layers_main_hidden[1].weight.abs().sum() == 0


class TestBadInput:
    def test_cycle_is_named(self):
        with pytest.raises(StructureError, match=r"cycle.*'x'"):
            MaskedDeepDAN(3, 2, nx.DiGraph([("x", "y"), ("y", "x"), ("y", "z")]))

    def test_empty_structure(self):
        with pytest.raises(StructureError, match="no vertices"):
            MaskedDeepDAN(3, 2, nx.DiGraph())

    def test_undirected_structure(self):
        with pytest.raises(StructureError, match="directed"):
            MaskedDeepDAN(3, 2, nx.path_graph(3))

    def test_not_a_graph(self):
        with pytest.raises(TypeError, match="networkx"):
            MaskedDeepDAN(3, 2, [(0, 1)])

    @pytest.mark.parametrize(("input_shape", "num_classes"), [(0, 2), (3, 0), ((1, 0), 2), (-1, 2)])
    def test_sizes(self, input_shape, num_classes):
        with pytest.raises(ConfigError):
            MaskedDeepDAN(input_shape, num_classes, nx.DiGraph([(0, 1)]))

    def test_integer_input_is_named(self):
        model = MaskedDeepDAN(3, 2, nx.DiGraph([(0, 1)]))
        with pytest.raises(InputTypeError, match=r"MaskedDeepDAN takes floating-point.*int64"):
            model(torch.ones(4, 3, dtype=torch.long))

    @pytest.mark.parametrize("kernel", ["compiled", "torch", "modules"])
    def test_built_and_run_in_inference_mode(self, kernel):
        x = torch.randn(4, 3)
        with torch.inference_mode():
            structure = TestVectorised.chain(12)
            model = MaskedDeepDAN(3, 2, structure, activation=nn.Tanh, kernel=kernel)
            before = model(x)
            model.layers_main_hidden[5].mask.fill_(False)
            after = model(x)
        assert not torch.equal(before, after)
        torch.testing.assert_close(after, model._forward_by_modules(x))

    def test_wrong_input_shape(self):
        model = MaskedDeepDAN(3, 2, nx.DiGraph([(0, 1)]))
        with pytest.raises(ValueError, match="3 input features"):
            model(torch.randn(4, 5))


class TestPackedLayers:
    """Each hidden layer is a masked linear layer viewing the DAN's packed tensors."""

    def test_layers_are_views_of_the_packed_tensors(self, tiny):
        model = MaskedDeepDAN(3, 2, tiny)
        layer = model.layers_main_hidden[2]
        start, end = model.plan.blocks[2]
        assert layer.weight.shape == layer.mask.shape == (1, 3)
        with torch.no_grad():
            layer.weight.fill_(2.0)
        assert bool((model.hidden_weight[start:end] == 2).all())
        layer.mask[0, 0] = False
        assert not model.hidden_mask[start]
        layer.prune_neurons([0])
        assert not model.hidden_bias_mask[model.plan.writes[2][0]]
        assert [name for name, _ in model.named_parameters()] == [
            "hidden_weight",
            "hidden_bias",
            "layer_out.weight",
            "layer_out.bias",
        ]
        assert list(layer.parameters()) == []
        assert layer.state_dict() == {}

    def test_layer_gradient_is_its_part_of_the_packed_gradient(self, tiny):
        model = MaskedDeepDAN(3, 2, tiny, activation=nn.Tanh)
        model(torch.randn(4, 3)).sum().backward()
        plan = model.plan
        for layer, (start, end), (low, high) in zip(
            model.layers_main_hidden, plan.blocks, plan.writes
        ):
            assert torch.equal(layer.weight.grad.flatten(), model.hidden_weight.grad[start:end])
            assert torch.equal(layer.bias.grad, model.hidden_bias.grad[low:high])
        assert float(model.hidden_weight.grad.abs().sum()) > 0

    def test_a_penalty_on_layer_weights_reaches_the_packed_parameter(self, tiny):
        model = MaskedDeepDAN(3, 2, tiny)
        penalty = sum(layer.weight.square().sum() for layer in model.layers_main_hidden)
        penalty.backward()
        torch.testing.assert_close(model.hidden_weight.grad, 2 * model.hidden_weight.detach())

    def test_replacing_a_layer_tensor_is_refused_and_changes_nothing(self, tiny):
        model = MaskedDeepDAN(3, 2, tiny)
        layer = model.layers_main_hidden[1]
        weight, mask = model.hidden_weight.clone(), model.hidden_mask.clone()
        with pytest.raises(InputTypeError, match="in place"):
            layer.weight = nn.Parameter(torch.zeros(1, 2))
        with pytest.raises(MaskError, match=r"\(2, 2\).*\(1, 2\)"):
            layer.mask = torch.ones(2, 2, dtype=torch.bool)
        assert torch.equal(model.hidden_weight, weight)
        assert torch.equal(model.hidden_mask, mask)
        layer.mask = [[0, 1]]
        assert layer.mask.tolist() == [[False, True]]

    def test_dtype_copies_and_pickles_keep_the_layers_on_their_model(self, tiny):
        model = MaskedDeepDAN(3, 2, tiny).to(torch.float64)
        assert model.layers_main_hidden[1].weight.dtype == torch.float64
        clone = copy.deepcopy(model)
        with torch.no_grad():
            clone.layers_main_hidden[1].weight.fill_(7.0)
        assert clone.hidden_weight[model.plan.blocks[1][0]] == 7.0
        assert not (model.layers_main_hidden[1].weight == 7.0).any()
        buffer = io.BytesIO()
        torch.save(model, buffer)
        buffer.seek(0)
        loaded = torch.load(buffer, weights_only=False)
        assert loaded.layers_main_hidden[1]._owner is loaded
        x = torch.randn(2, 3, dtype=torch.float64)
        torch.testing.assert_close(loaded(x), model(x))

    def test_optimizer_state_of_one_layer(self, tiny):
        model = MaskedDeepDAN(3, 2, tiny, activation=nn.Tanh)
        optimizer = torch.optim.Adam(model.parameters())
        model(torch.randn(4, 3)).sum().backward()
        optimizer.step()
        leaf, cut = model.layers_main_hidden[2].parameter_leaf()
        assert leaf is model.hidden_weight
        reset_optimizer_state(optimizer, leaf, torch.tensor([[True, False, False]]), cut=cut)
        moment = cut(optimizer.state[model.hidden_weight]["exp_avg"])
        assert moment[0, 0] == 0
        assert moment[0, 2] != 0


class Halved(nn.Module):
    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight / 2


class TestKernelChoice:
    def test_auto_compiles_deep_narrow_graphs_and_uses_blas_for_wide_dense_ones(self):
        x = torch.randn(64, 8)
        deep = MaskedDeepDAN(8, 2, TestVectorised.chain(100))
        wide = MaskedDeepDAN(8, 2, TestVectorised.layered([128] * 3, 0.9, seed=0))
        assert deep._kernel_for(x) == "compiled"
        assert wide._kernel_for(x) == "torch"
        assert deep._kernel_for(x.to(torch.bfloat16)) == "torch"

    def test_hooks_on_a_hidden_layer_run_under_auto(self):
        model = MaskedDeepDAN(8, 2, TestVectorised.chain(30))
        x = torch.randn(4, 8)
        expected = model(x)
        seen = []
        handle = model.layers_main_hidden[7].register_forward_hook(
            lambda module, inputs, output: seen.append(output.shape)
        )
        assert model._kernel_for(x) == "modules"
        torch.testing.assert_close(model(x), expected)
        assert seen == [(4, 1)]
        handle.remove()
        assert model._kernel_for(x) == "compiled"

    def test_a_forward_pre_hook_counts_too(self):
        model = MaskedDeepDAN(8, 2, TestVectorised.chain(30))
        x = torch.randn(4, 8)
        model(x)
        handle = model.layers_main_hidden[0].register_forward_pre_hook(lambda *args: None)
        assert model._kernel_for(x) == "modules"
        handle.remove()
        assert model._kernel_for(x) == "compiled"

    def test_the_choice_is_kept_per_batch_threads_and_masks(self, monkeypatch):
        compiled = pypaddle.sparse._dan_numba
        asked = []

        def spy(plan, edges, batch, thread_count=None):
            asked.append((batch, torch.get_num_threads()))
            return True

        monkeypatch.setattr(compiled, "preferred", spy)
        model = MaskedDeepDAN(8, 2, TestVectorised.chain(30))
        for batch in (4, 4, 32, 4):
            assert model._kernel_for(torch.randn(batch, 8)) == "compiled"
        threads = torch.get_num_threads()
        assert asked == [(4, threads), (32, threads)]
        monkeypatch.setattr(torch, "get_num_threads", lambda: threads + 1)
        model._kernel_for(torch.randn(4, 8))
        assert asked[-1] == (4, threads + 1)
        model.layers_main_hidden[5].mask.data.fill_(False)  # new masks: estimated again
        model._kernel_for(torch.randn(4, 8))
        assert len(asked) == 4

    def test_a_hook_after_the_hook_tables_were_replaced(self):
        model = MaskedDeepDAN(8, 2, TestVectorised.chain(30))
        x = torch.randn(4, 8)
        model(x)
        layer = model.layers_main_hidden[3]
        layer._forward_hooks = OrderedDict()  # how some code clears a module's hooks
        seen = []
        layer.register_forward_hook(lambda module, inputs, output: seen.append(1))
        assert model._kernel_for(x) == "modules"
        model(x)
        assert seen == [1]

    def test_global_forward_hooks_take_the_module_path(self):
        model = MaskedDeepDAN(8, 2, TestVectorised.chain(30))
        x = torch.randn(4, 8)
        seen = []
        handle = torch.nn.modules.module.register_module_forward_hook(
            lambda module, inputs, output: seen.append(type(module).__name__)
        )
        try:
            assert model._kernel_for(x) == "modules"
            model(x)
        finally:
            handle.remove()
        assert seen.count("DanLayer") == len(model.layers_main_hidden)
        assert model._kernel_for(x) == "compiled"

    @pytest.mark.parametrize("kernel", ["auto", "compiled", "torch"])
    @pytest.mark.parametrize("tool", ["prune", "parametrize", "weight_norm"])
    @pytest.mark.filterwarnings("ignore:`torch.nn.utils.weight_norm` is deprecated")
    def test_torch_reparametrizations_of_the_packed_weight(self, kernel, tool):
        torch.manual_seed(0)
        model = MaskedDeepDAN(4, 2, oriented(nx.gnp_random_graph(12, 0.3, seed=0)), kernel=kernel)
        model.double()
        x = torch.randn(3, 4, dtype=torch.float64)
        if tool == "prune":
            prune.l1_unstructured(model, "hidden_weight", amount=0.5)
        elif tool == "parametrize":
            parametrize.register_parametrization(model, "hidden_weight", Halved())
        else:
            torch.nn.utils.weight_norm(model, "hidden_weight", dim=None)
        assert "hidden_weight" not in model._parameters
        output = model(x)
        output.sum().backward()
        torch.testing.assert_close(output, model._forward_by_modules(x))
        if tool == "prune":
            assert int((model.hidden_weight == 0).sum()) >= model.hidden_weight.numel() // 2

    def test_without_numba_auto_uses_torch_and_compiled_says_why(self, monkeypatch):
        monkeypatch.setattr(pypaddle.sparse._dan_numba, "available", lambda: False)
        model = MaskedDeepDAN(8, 2, TestVectorised.chain(50))
        x = torch.randn(4, 8)
        assert model._kernel_for(x) == "torch"
        model.kernel = "compiled"
        with pytest.raises(ConfigError, match=r"pypaddle\[fast\].*not installed"):
            model(x)

    def test_a_broken_numba_warns_and_falls_back(self, monkeypatch):
        compiled = pypaddle.sparse._dan_numba

        def broken():
            raise ImportError("numba was built for another numpy")

        monkeypatch.setattr(compiled, "_kernels", broken)
        compiled.available.cache_clear()
        try:
            with pytest.warns(RuntimeWarning, match="another numpy.*torch kernel"):
                assert not compiled.available()
            model = MaskedDeepDAN(8, 2, TestVectorised.chain(50))
            assert model._kernel_for(torch.randn(4, 8)) == "torch"
        finally:
            compiled.available.cache_clear()

    def test_compiled_refuses_other_dtypes_and_unknown_kernels_are_named(self):
        model = MaskedDeepDAN(4, 2, TestVectorised.chain(10), kernel="compiled")
        with pytest.raises(ConfigError, match="bfloat16"):
            model.to(torch.bfloat16)(torch.randn(2, 4))
        with pytest.raises(ConfigError, match="unknown kernel 'fast'"):
            MaskedDeepDAN(4, 2, nx.DiGraph([(0, 1)]), kernel="fast")
        with pytest.raises(ConfigError, match="unknown kernel 'fast'"):
            model.kernel = "fast"  # refused when set, not at the next forward
        assert model.kernel == "compiled"


def _skip_structure() -> nx.DiGraph:
    return oriented(nx.watts_strogatz_graph(12, 4, 0.5, seed=3))


def _skip_model(kernel: str = "auto", activation=nn.Tanh) -> MaskedDeepDAN:
    """A small DAN with skip edges and two sinks, in float64."""
    torch.manual_seed(5)
    return MaskedDeepDAN(4, 2, _skip_structure(), activation=activation, kernel=kernel).double()


def _same_state_in_a_fresh_model(model: MaskedDeepDAN, x: torch.Tensor) -> torch.Tensor:
    """What a new model loaded with ``model``'s state dict computes."""
    fresh = MaskedDeepDAN(4, 2, _skip_structure(), activation=nn.Tanh, kernel="modules")
    fresh.double().load_state_dict(model.state_dict())
    return fresh(x)


# Every way to edit a mask, applied to layer 3 of the model (and its bias mask).
def _edit_in_place(model):
    model.layers_main_hidden[3].mask[:, 0] = False


def _edit_view_data(model):
    model.layers_main_hidden[3].mask.data[:, 0] = False


def _edit_view_numpy(model):
    model.layers_main_hidden[3].mask.numpy()[:, 0] = False


def _edit_packed_data(model):
    start = model.plan.blocks[3][0]
    model.hidden_mask.data[start] = False


def _edit_packed_numpy(model):
    start = model.plan.blocks[3][0]
    model.hidden_mask.numpy()[start] = False


def _assign_view_data(model):
    layer = model.layers_main_hidden[3]
    new = layer.mask.clone()
    new[:, 0] = False
    layer.mask.data = new


def _set_mask(model):
    layer = model.layers_main_hidden[3]
    new = layer.mask.clone()
    new[:, 0] = False
    layer.set_mask(new)


def _edit_bias_mask_data(model):
    model.layers_main_hidden[3].bias_mask.data[0] = False


def _edit_packed_bias_mask_numpy(model):
    model.hidden_bias_mask.numpy()[model.plan.writes[3][0]] = False


MASK_EDITS = [
    _edit_in_place,
    _edit_view_data,
    _edit_view_numpy,
    _edit_packed_data,
    _edit_packed_numpy,
    _assign_view_data,
    _set_mask,
    _edit_bias_mask_data,
    _edit_packed_bias_mask_numpy,
]


class TestMaskEditsAreHonoured:
    """Issue 16, finding 7: a mask edited however after a forward is what the next one uses."""

    @pytest.mark.parametrize("kernel", ["compiled", "torch", "modules"])
    @pytest.mark.parametrize("edit", MASK_EDITS, ids=lambda edit: edit.__name__)
    def test_by_every_kernel(self, kernel, edit):
        model = _skip_model(kernel)
        x = torch.randn(3, 4, dtype=torch.float64)
        density = model.density
        before = model(x)
        model(x).sum().backward()  # the caches of forward and backward are built
        edit(model)
        after = model(x)
        assert model.density < density or not model.hidden_bias_mask.all()
        assert not torch.allclose(before, after)
        torch.testing.assert_close(after, _same_state_in_a_fresh_model(model, x))
        torch.testing.assert_close(after, model._forward_by_modules(x))

    @pytest.mark.parametrize("kernel", ["compiled", "torch"])
    def test_gradients_follow_a_data_edit(self, kernel):
        model = _skip_model(kernel)
        x = torch.randn(3, 4, dtype=torch.float64)
        model(x).sum().backward()
        model.zero_grad()
        _edit_view_data(model)
        model(x).sum().backward()
        block = model.layers_main_hidden[3].weight.grad
        assert bool((block[:, 0] == 0).all())

    @pytest.mark.parametrize("kernel", ["compiled", "torch"])
    def test_an_edit_of_layer_0_after_a_forward(self, kernel):
        # The kernels keep layer 0's mask values apart from the rest (all True: none).
        model = _skip_model(kernel)
        x = torch.randn(3, 4, dtype=torch.float64)
        model(x).sum().backward()
        assert bool(model.layers_main_hidden[0].mask.all())
        model.zero_grad()
        model.layers_main_hidden[0].mask.data[:, 1] = False
        model(x).sum().backward()
        torch.testing.assert_close(model(x), model._forward_by_modules(x))
        assert bool((model.layers_main_hidden[0].weight.grad[:, 1] == 0).all())
        assert bool((model.layers_main_hidden[0].weight.grad[:, 0] != 0).any())

    @pytest.mark.parametrize("kernel", ["compiled", "torch"])
    @pytest.mark.parametrize("edit", MASK_EDITS, ids=lambda edit: edit.__name__)
    def test_by_the_device_comparison(self, monkeypatch, kernel, edit):
        # What a GPU forward runs (both packed masks in one reduction), on CPU tensors.
        dan = pypaddle.sparse.dan
        compare = dan._changed
        read_backs = []

        def changed(masks, copies):
            read_backs.append(len(masks))
            return compare(masks, copies)

        monkeypatch.setattr(dan, "_compared_on_device", lambda mask: True)
        monkeypatch.setattr(dan, "_changed", changed)
        model = _skip_model(kernel)
        x = torch.randn(3, 4, dtype=torch.float64)
        before = model(x)
        model(x).sum().backward()
        read_backs.clear()
        edit(model)
        after = model(x)
        assert read_backs == [2]  # one read-back for both masks
        assert not torch.allclose(before, after)
        torch.testing.assert_close(after, model._forward_by_modules(x))

    def test_masks_off_the_cpu_are_compared_in_one_reduction(self):
        # What a GPU forward runs (one read-back for both packed masks), on CPU tensors.
        model = _skip_model("torch")
        masks = [model.hidden_mask, model.hidden_bias_mask]
        copies = [mask.clone() for mask in masks]
        assert pypaddle.sparse.dan._changed(masks, copies) == [False, False]
        copies[1][-1] = ~copies[1][-1]
        assert pypaddle.sparse.dan._changed(masks, copies) == [False, True]

    def test_a_layer_called_on_its_own_sees_a_data_edit(self):
        model = _skip_model("modules")
        layer = model.layers_main_hidden[3]
        reads = torch.randn(2, layer.in_features, dtype=torch.float64)
        layer(reads)
        layer.mask.data[:, 0] = False
        expected = reads @ (layer.weight * layer.mask).t() + layer.bias
        torch.testing.assert_close(layer(reads), expected)

    @pytest.mark.parametrize("kernel", ["compiled", "torch", "auto"])
    @pytest.mark.parametrize("name", ["hidden_weight", "hidden_bias"])
    def test_packed_parameters_of_another_size_are_refused(self, kernel, name):
        # The compiled kernel would index past their ends.
        model = _skip_model(kernel)
        x = torch.randn(3, 4, dtype=torch.float64)
        model(x)
        parameter = getattr(model, name)
        parameter.data = torch.randn(parameter.numel() + 5, dtype=torch.float64)
        with pytest.raises(ConfigError, match=rf"{name} has become .*in place"):
            model(x)

    def test_packed_data_of_another_shape_is_a_mask_error(self):
        model = _skip_model("torch")
        x = torch.randn(3, 4, dtype=torch.float64)
        model(x)
        model.hidden_mask.data = torch.ones(3, dtype=torch.bool)
        with pytest.raises(MaskError, match=r"hidden_mask.*in place"):
            model(x)


class TestLayerViewContract:
    """Every edit path on a layer view is honoured or refused; a refusal changes nothing."""

    def test_weight_data_assignment_is_copied_in(self, tiny):
        model = MaskedDeepDAN(3, 2, tiny)
        layer = model.layers_main_hidden[2]
        layer.weight.data = torch.full((1, 3), 2.5, dtype=torch.float64)
        start, end = model.plan.blocks[2]
        assert model.hidden_weight[start:end].tolist() == [2.5] * 3
        assert model.hidden_weight.dtype == torch.float32
        layer.bias.data = torch.tensor([-1.0])
        assert model.hidden_bias[model.plan.writes[2][0]] == -1

    def test_weight_data_in_place_and_copy(self, tiny):
        model = MaskedDeepDAN(3, 2, tiny)
        layer = model.layers_main_hidden[1]
        start, _ = model.plan.blocks[1]
        layer.weight.data[0, 1] = 4.0
        assert model.hidden_weight[start + 1] == 4.0
        with torch.no_grad():
            layer.weight.copy_(torch.tensor([[7.0, 8.0]]))
        assert model.hidden_weight[start : start + 2].tolist() == [7.0, 8.0]

    def test_mask_data_assignment_and_set_mask_are_checked_copies(self, tiny):
        model = MaskedDeepDAN(3, 2, tiny)
        layer = model.layers_main_hidden[2]
        start, end = model.plan.blocks[2]
        layer.mask.data = torch.tensor([[1, 0, 1]])
        assert model.hidden_mask[start:end].tolist() == [True, False, True]
        layer.mask.data[0, 0] = False
        assert model.hidden_mask[start:end].tolist() == [False, False, True]
        layer.set_mask([[True, True, False]])
        assert model.hidden_mask[start:end].tolist() == [True, True, False]
        layer.bias_mask.data = torch.tensor([False])
        assert not model.hidden_bias_mask[model.plan.writes[2][0]]

    @pytest.mark.parametrize(
        ("name", "value", "error"),
        [
            ("weight", torch.zeros(3, 3), ConfigError),
            ("weight", torch.zeros(3), ConfigError),
            ("weight", [[1.0, 2.0, 3.0]], InputTypeError),
            ("weight", torch.zeros(1, 3, dtype=torch.complex64), InputTypeError),
            ("bias", torch.zeros(2), ConfigError),
            ("mask", torch.ones(3, 3, dtype=torch.bool), MaskError),
            ("mask", torch.tensor([[0.5, 1.0, 1.0]]), MaskError),
            ("mask", torch.tensor([[7, 1, 1]]), MaskError),
            ("mask", torch.tensor([[float("nan"), 1.0, 1.0]]), MaskError),
            ("mask", "mask", MaskError),
            ("bias_mask", torch.ones(2, dtype=torch.bool), MaskError),
        ],
    )
    def test_data_that_does_not_fit_is_refused_and_changes_nothing(self, tiny, name, value, error):
        model = MaskedDeepDAN(3, 2, tiny)
        view = getattr(model.layers_main_hidden[2], name)
        before = snapshot(model)
        with pytest.raises(error):
            view.data = value
        assert_unchanged(before, model)

    def test_views_compute_as_plain_tensors(self, tiny):
        model = MaskedDeepDAN(3, 2, tiny)
        layer = model.layers_main_hidden[2]
        assert type(layer.weight * 2) is torch.Tensor
        assert type(layer.weight.data) is torch.Tensor
        assert isinstance(layer.weight, torch.Tensor)
        assert (
            layer.weight.data.data_ptr()
            == model.hidden_weight[model.plan.blocks[2][0] :].data_ptr()
        )

    def test_copies_and_pickles_of_a_view_are_plain_tensors(self, tiny):
        model = MaskedDeepDAN(3, 2, tiny)
        mask = model.layers_main_hidden[2].mask
        for copied in (copy.deepcopy(mask), copy.copy(mask), mask.clone()):
            assert type(copied) is torch.Tensor
            assert torch.equal(copied, mask)
        buffer = io.BytesIO()
        torch.save(mask, buffer)
        buffer.seek(0)
        loaded = torch.load(buffer)
        assert type(loaded) is torch.Tensor
        assert torch.equal(loaded, mask)


class TestConstructorBadInput:
    """Issue 16, finding 11: constructor arguments, each refused with its error class."""

    @staticmethod
    def build(structure, **arguments):
        values = {"input_shape": 3, "num_classes": 2, "structure": structure, **arguments}
        before = snapshot(structure)
        try:
            MaskedDeepDAN(
                values.pop("input_shape"),
                values.pop("num_classes"),
                values.pop("structure"),
                **values,
            )
        finally:
            if isinstance(structure, nx.Graph):
                assert_unchanged(before, structure)

    @pytest.mark.parametrize("value", [*NOT_COUNTS, 0])
    def test_num_classes(self, tiny, value):
        with pytest.raises(ConfigError):
            self.build(tiny, num_classes=value)

    @pytest.mark.parametrize(
        "value",
        [
            *(value for value in NOT_COUNTS if not isinstance(value, (list, tuple))),
            *(0, (), (2, 0), (2, -1), (2, 1.5), [3, "a"]),
        ],
    )
    def test_input_shape(self, tiny, value):
        with pytest.raises(ConfigError):
            self.build(tiny, input_shape=value)

    def test_numpy_sizes_are_counts(self, tiny):
        model = MaskedDeepDAN(np.int64(3), np.int32(2), tiny)
        assert (model.in_features, model.num_classes) == (3, 2)
        assert (model.size_input, model.size_output) == (3, 2)  # the old names, read-only

    @pytest.mark.parametrize(
        "value", ["fast", "", None, 1, True, ["auto"], np.array(["auto", "torch"]), object()]
    )
    def test_kernel(self, tiny, value):
        with pytest.raises(ConfigError, match="unknown kernel"):
            self.build(tiny, kernel=value)

    @pytest.mark.parametrize("value", ["relu", 3, 2.5, object(), [nn.ReLU], nn.Linear])
    def test_activation(self, tiny, value):
        with pytest.raises(InputTypeError, match="activation"):
            self.build(tiny, activation=value)

    @pytest.mark.parametrize("value", ["yes", None, 2, 1.0, [True], object()])
    def test_use_layer_norm(self, tiny, value):
        with pytest.raises(InputTypeError, match="use_layer_norm"):
            self.build(tiny, use_layer_norm=value)

    @pytest.mark.parametrize(
        ("structure", "error"),
        [
            (None, InputTypeError),
            ([(0, 1)], InputTypeError),
            ({0: [1]}, InputTypeError),
            ("graph", InputTypeError),
            (np.eye(3), InputTypeError),
            (nx.Graph([(0, 1)]), StructureError),
            (nx.MultiDiGraph([(0, 1), (0, 1)]), StructureError),
            (nx.DiGraph([(0, 0)]), StructureError),
            (nx.DiGraph([(0, 1), (1, 2), (2, 0)]), StructureError),
            (nx.DiGraph(), StructureError),
        ],
    )
    def test_structure(self, structure, error):
        with pytest.raises(error):
            self.build(structure)


class TestLoadStateDictChecksMasks:
    """Issue 16, finding 6: load_state_dict checks masks as assignment does."""

    @pytest.mark.parametrize("key", ["hidden_mask", "hidden_bias_mask", "layer_out.mask"])
    @pytest.mark.parametrize("bad", ["half", "seven", "nan", "shape", "text"])
    def test_bad_mask_refused_and_model_unchanged(self, tiny, key, bad):
        source = MaskedDeepDAN(3, 2, tiny)
        state = source.state_dict()
        mask = state[key].to(torch.float32)
        state[key] = {
            "half": mask * 0.5,
            "seven": mask * 7,
            "nan": mask.masked_fill(mask == 1, float("nan")),
            "shape": torch.ones(*mask.shape, 2, dtype=torch.bool),
            "text": "mask",
        }[bad]
        model = MaskedDeepDAN(3, 2, tiny)
        model.layers_main_hidden[1].mask[0, 0] = False
        with torch.no_grad():
            model.hidden_weight.add_(1)
        before = snapshot(model)
        with pytest.raises(MaskError, match=key.replace(".", r"\.")):
            model.load_state_dict(state)
        assert_unchanged(before, model)

    def test_zero_one_masks_of_any_dtype_load_as_bool(self, tiny):
        source = MaskedDeepDAN(3, 2, tiny)
        source.layers_main_hidden[2].mask[0, 1] = False
        state = {key: value.clone() for key, value in source.state_dict().items()}
        state["hidden_mask"] = state["hidden_mask"].to(torch.float64)
        model = MaskedDeepDAN(3, 2, tiny)
        model.load_state_dict(state)
        assert model.hidden_mask.dtype == torch.bool
        assert torch.equal(model.hidden_mask, source.hidden_mask)

    def test_a_mask_edit_before_loading_is_replaced(self, tiny):
        model = MaskedDeepDAN(3, 2, tiny, kernel="torch")
        x = torch.randn(2, 3)
        state = copy.deepcopy(model.state_dict())
        expected = model(x)
        model.hidden_mask.numpy()[:] = False
        model.load_state_dict(state)
        torch.testing.assert_close(model(x), expected)
