"""DanPlan: the one layout of a MaskedDeepDAN, and everything that reads it agreeing with it."""

from __future__ import annotations

import dataclasses

import networkx as nx
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pypaddle.deploy import compact
from pypaddle.errors import InputTypeError, StructureError
from pypaddle.sparse import DanPlan, MaskedDeepDAN


@pytest.fixture
def skip_chain():
    """a -> b -> c -> d with a skip b -> d, and an isolated e (inserted last)."""
    structure = nx.DiGraph([("a", "b"), ("b", "c"), ("c", "d"), ("b", "d")])
    structure.add_node("e")
    return structure


class TestHandChecked:
    """The plan of five vertices, worked out by hand (3 input features).

    Layers: {a, e}, {b}, {c}, {d}. Layer 1 reads layer 0, layer 2 reads layer 1, layer 3
    reads layers 1 and 2 (c, and b over the skip). The sinks are e (layer 0) and d.
    """

    def test_vertex_order_and_layers(self, skip_chain):
        plan = DanPlan.from_structure(skip_chain, 3)
        assert plan.labels == ("a", "e", "b", "c", "d")
        assert plan.widths == (2, 1, 1, 1)
        assert plan.vertices == 5
        assert plan.writes == ((0, 2), (2, 3), (3, 4), (4, 5))
        assert plan.sources == (0, 2)

    def test_what_each_layer_reads(self, skip_chain):
        plan = DanPlan.from_structure(skip_chain, 3)
        assert plan.first_blocks == (0, 1, 2, 2)
        assert plan.reads == ((0, 0), (0, 2), (2, 3), (2, 4))
        assert plan.columns == (3, 2, 1, 2)

    def test_packed_offsets_and_edge_entries(self, skip_chain):
        plan = DanPlan.from_structure(skip_chain, 3)
        assert plan.blocks == ((0, 6), (6, 8), (8, 9), (9, 11))
        # a->b: layer 1, column a; b->c: layer 2, column b; b->d and c->d: layer 3
        assert sorted(plan.entries.tolist()) == [6, 8, 9, 10]
        assert plan.edge_mask().tolist() == [True] * 7 + [False] + [True] * 3
        assert plan.fan_in().tolist() == [3, 3, 1, 1, 2]

    def test_sinks(self, skip_chain):
        plan = DanPlan.from_structure(skip_chain, 3)
        assert plan.sinks == (1, 4)
        assert plan.sink_range is None  # e and d are not neighbours
        assert not plan.sinks_are_last_layer

    def test_edges_at_inverts_entries(self, skip_chain):
        plan = DanPlan.from_structure(skip_chain, 3)
        sources, targets = plan.edges_at(plan.entries)
        assert sources.tolist() == plan.edge_sources.tolist()
        assert targets.tolist() == plan.edge_targets.tolist()
        labelled = {(plan.labels[u], plan.labels[v]) for u, v in zip(sources, targets)}
        assert labelled == set(skip_chain.edges)

    def test_the_model_reads_it(self, skip_chain):
        model = MaskedDeepDAN(3, 2, skip_chain)
        plan = model.plan
        assert plan == DanPlan.from_structure(skip_chain, 3)
        assert model.layer_widths == plan.widths
        assert [tuple(layer.weight.shape) for layer in model.layers_main_hidden] == [
            (2, 3),
            (1, 2),
            (1, 1),
            (1, 2),
        ]
        assert model.hidden_mask.tolist() == plan.edge_mask().tolist()
        assert model.sink_index.tolist() == [1, 4]
        assert model.layer_out.in_features == 2


class TestPure:
    def test_same_structure_same_plan_and_structure_untouched(self, skip_chain):
        before = (list(skip_chain.nodes(data=True)), list(skip_chain.edges(data=True)))
        torch.manual_seed(0)
        first = DanPlan.from_structure(skip_chain, 3)
        torch.manual_seed(1)
        second = DanPlan.from_structure(skip_chain.copy(), 3)
        assert first == second
        assert hash(first) == hash(second)
        assert first != DanPlan.from_structure(skip_chain, 4)
        assert (list(skip_chain.nodes(data=True)), list(skip_chain.edges(data=True))) == before

    def test_read_only(self, skip_chain):
        model = MaskedDeepDAN(3, 2, skip_chain)
        plan = model.plan
        with pytest.raises(dataclasses.FrozenInstanceError):
            plan.widths = (5,)  # type: ignore[misc]
        with pytest.raises(ValueError, match="read-only"):
            plan.edge_sources[0] = 3
        with pytest.raises(AttributeError):
            model.plan = plan  # type: ignore[misc]
        assert model.plan is plan

    def test_copies_share_an_equal_plan(self, skip_chain):
        import copy

        model = MaskedDeepDAN(3, 2, skip_chain)
        assert copy.deepcopy(model).plan == model.plan
        model.layers_main_hidden[3].mask.fill_(False)  # pruning does not change the layout
        assert model.plan == DanPlan.from_structure(skip_chain, 3)

    @pytest.mark.parametrize(
        ("structure", "error"),
        [
            (nx.DiGraph(), StructureError),
            (nx.DiGraph([(0, 1), (1, 0)]), StructureError),
            (nx.path_graph(3), StructureError),
            ([(0, 1)], InputTypeError),
        ],
    )
    def test_bad_structures(self, structure, error):
        with pytest.raises(error):
            DanPlan.from_structure(structure, 3)


@st.composite
def random_dags(draw):
    """A DAG of up to 14 vertices with shuffled labels and insertion order."""
    count = draw(st.integers(1, 14))
    order = draw(st.permutations(range(count)))
    pairs = [(u, v) for u in range(count) for v in range(u + 1, count)]
    chosen = draw(st.lists(st.sampled_from(pairs), unique=True)) if pairs else []
    structure = nx.DiGraph()
    structure.add_nodes_from(f"v{order[v]}" for v in range(count))
    structure.add_edges_from((f"v{order[u]}", f"v{order[v]}") for u, v in chosen)
    return structure


class TestEverythingReadsThePlan:
    @settings(max_examples=40, deadline=None)
    @given(random_dags(), st.integers(1, 5))
    def test_constructor_and_generate_structure(self, structure, features):
        model = MaskedDeepDAN(features, 2, structure)
        plan = model.plan
        assert plan == DanPlan.from_structure(structure, features)
        assert set(plan.labels) == set(structure)
        assert len(plan.labels) == len(structure)
        for layer, view in enumerate(model.layers_main_hidden):
            start, end = plan.blocks[layer]
            assert tuple(view.weight.shape) == (plan.widths[layer], plan.columns[layer])
            assert view.weight.data_ptr() == model.hidden_weight[start:end].data_ptr()
            assert view.bias.data_ptr() == model.hidden_bias[plan.writes[layer][0] :].data_ptr()
        assert torch.equal(model.hidden_mask, plan.edge_mask())
        assert model.sink_index.tolist() == list(plan.sinks)
        out_degree = dict(structure.out_degree)
        assert [plan.labels[v] for v in plan.sinks] == [
            label for label in plan.labels if out_degree[label] == 0
        ]
        layer_of = {label: layer for layer, (start, end) in enumerate(plan.writes)
                    for label in plan.labels[start:end]}  # fmt: skip
        for u, v in structure.edges:
            low, high = plan.reads[layer_of[v]]
            assert low <= plan.labels.index(u) < high
        generated = model.generate_structure()
        assert list(generated) == list(structure)  # same labels, same order
        assert set(generated.edges) == set(structure.edges)

    @pytest.mark.filterwarnings("ignore:compact removed no neuron")
    @settings(max_examples=10, deadline=None)
    @given(random_dags())
    def test_compaction(self, structure):
        torch.manual_seed(0)
        model = MaskedDeepDAN(3, 2, structure)
        plan = model.plan
        small = compact(model)
        # Untouched, every vertex is kept, and layer i reads blocks first_blocks[i] .. i.
        hidden = small.layer_specs[:-1]
        assert [spec[1] for spec in hidden] == list(plan.widths)
        assert [tuple(spec[2:4]) for spec in hidden] == [
            (0, 0) if layer == 0 else (first, layer)
            for layer, first in enumerate(plan.first_blocks)
        ]
        assert small.layer_specs[-1][0] == len(plan.sinks)
        x = torch.randn(4, 3)
        torch.testing.assert_close(small(x), model(x), atol=1e-5, rtol=1e-5)

    def test_entries_are_where_the_views_put_the_edges(self):
        rng = np.random.default_rng(0)
        structure = nx.gnp_random_graph(30, 0.2, seed=1, directed=True)
        structure = nx.DiGraph((u, v) for u, v in structure.edges if u < v)
        structure.add_nodes_from(rng.permutation(30).tolist())
        model = MaskedDeepDAN(4, 2, structure)
        plan = model.plan
        flat = torch.zeros_like(model.hidden_mask)
        for layer, view in enumerate(model.layers_main_hidden):
            if layer == 0:
                continue
            rows, columns = view.mask.nonzero(as_tuple=True)
            start = plan.blocks[layer][0]
            flat[start + rows * plan.columns[layer] + columns] = True
        assert sorted(flat.nonzero().reshape(-1).tolist()) == sorted(plan.entries.tolist())
