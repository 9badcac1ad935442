"""A graph-built net starts right for its activation and active fan-in, and says when its
structure is degenerate for learning."""

from __future__ import annotations

import math
import warnings

import networkx as nx
import numpy as np
import pytest
import torch
from torch import nn

import pypaddle.graph as pg
from pypaddle.errors import ConfigError, StructureWarning
from pypaddle.sparse import MaskedDeepDAN, activation_gain


def built(*args, seed=0, **kwargs):
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StructureWarning)
        return MaskedDeepDAN(*args, **kwargs)


def vertex_stds(model):
    """Each vertex's standard deviation over its edges (its active entries), and fan-ins."""
    plan = model.plan
    weight, mask = model.hidden_weight.detach(), model.hidden_mask
    row = torch.from_numpy(
        np.repeat(np.arange(plan.vertices), np.repeat(plan.columns, plan.widths))
    )
    active = mask.float()
    fan_in = torch.zeros(plan.vertices).index_add_(0, row, active)
    power = torch.zeros(plan.vertices).index_add_(0, row, weight.square() * active)
    return (power / fan_in).sqrt(), fan_in


class TestFanInInit:
    @pytest.mark.parametrize(
        ("activation", "gain"),
        [(nn.ReLU, math.sqrt(2)), (nn.Tanh, 5 / 3), (nn.Identity, 1.0), (nn.GELU, math.sqrt(2))],
    )
    def test_every_vertex_has_gain_over_root_active_fan_in(self, activation, gain):
        # 4 layers of 200 vertices, each with 50 edges from the layer before (and 64 inputs
        # into the sources): each vertex's std over its edges is gain / sqrt(fan-in).
        structure = pg.random_layered([200] * 4, density=0.25, seed=0)
        model = built(64, 10, structure, activation=activation)
        std, fan_in = vertex_stds(model)
        expected = gain / fan_in.sqrt()
        ratio = std / expected
        # the std of the sample std of ~50 uniform draws is ~ 0.075 of the std
        assert abs(float(ratio.mean()) - 1) < 0.01
        assert float(ratio.std()) < 0.15
        # the pooled power of every layer is right to 2 %
        for start, end in model.plan.writes:
            pooled = float((std[start:end].square() * fan_in[start:end]).mean())
            assert pooled == pytest.approx(gain**2, rel=0.03)

    def test_fan_in_is_the_active_one_not_the_layer_width(self):
        # vertex 3 reads 1 edge of a layer of 3 reads: its bound is gain * sqrt(3 / 1)
        structure = nx.DiGraph([(0, 3), (1, 4), (2, 4), (0, 4)])
        model = built(5, 2, structure)
        weight = model.plan.layer_weights(model.hidden_weight.detach())[1]
        assert float(weight[0].abs().max()) <= math.sqrt(2) * math.sqrt(3) + 1e-6
        assert float(weight[1].abs().max()) <= math.sqrt(2) * math.sqrt(3 / 3) + 1e-6
        assert int((weight[0] != 0).sum()) == 1

    def test_entries_that_are_no_edge_start_at_zero_and_stay_there(self):
        structure = pg.small_world_layered(4, 12, 3, 0.3, seed=1)
        model = built(8, 3, structure)
        mask = model.hidden_mask
        assert torch.count_nonzero(model.hidden_weight.detach()[~mask]) == 0
        assert torch.count_nonzero(model.hidden_weight.detach()[mask]) == int(mask.sum())
        optimizer = torch.optim.Adam(model.parameters(), 1e-2)
        for kernel in ("torch", "modules"):
            model.kernel = kernel
            optimizer.zero_grad()
            model(torch.randn(16, 8)).square().sum().backward()
            assert torch.count_nonzero(model.hidden_weight.grad[~mask]) == 0
            optimizer.step()
        assert torch.count_nonzero(model.hidden_weight.detach()[~mask]) == 0

    def test_it_is_the_legacy_draw_times_gain_root_three_on_the_edges(self):
        structure = pg.watts_strogatz(30, 4, 0.3, order="random", seed=2)
        new = built(6, 3, structure, seed=5)
        old = built(6, 3, structure, seed=5, init="legacy")
        mask = new.hidden_mask
        scale = math.sqrt(2) * math.sqrt(3)
        torch.testing.assert_close(new.hidden_weight[mask], old.hidden_weight[mask] * scale)
        assert torch.equal(new.hidden_bias, old.hidden_bias)
        assert torch.equal(new.layer_out.weight, old.layer_out.weight)

    def test_the_signal_keeps_its_power_through_depth(self):
        structure = pg.small_world_layered(32, 64, 16, 0.0, seed=0)
        inputs = torch.rand(256, 64, generator=torch.Generator().manual_seed(0))
        powers = {}
        for init in ("fan_in", "legacy"):
            model = built(64, 10, structure, init=init)
            with torch.no_grad():
                model.hidden_bias.zero_()
                blocks = [inputs]
                for layer, first in zip(model.layers_main_hidden, model.plan.first_blocks):
                    blocks.append(torch.relu(layer(torch.cat(blocks[first:], 1))))
            ratio = float(blocks[-1].square().mean() / blocks[1].square().mean())
            powers[init] = ratio ** (1 / 31)  # the factor per layer
        assert powers["fan_in"] == pytest.approx(1, abs=0.1)
        assert powers["legacy"] < 0.2  # a sixth of the power per layer, in expectation


class TestLegacyInit:
    def test_legacy_reproduces_the_old_draw(self):
        structure = pg.small_world_layered(3, 8, 2, 0.2, seed=0)
        model = built(5, 2, structure, seed=3, init="legacy")
        # the start of earlier releases, written out
        torch.manual_seed(3)
        plan = model.plan
        bound = torch.from_numpy(1 / np.sqrt(np.maximum(plan.fan_in(), 1)))
        row_length = torch.from_numpy(np.repeat(plan.columns, plan.widths))
        weight = torch.empty(plan.blocks[-1][1]).uniform_(-1, 1)
        bias = torch.empty(plan.vertices).uniform_(-1, 1)
        assert torch.equal(model.hidden_weight, weight.mul_(bound.repeat_interleave(row_length)))
        assert torch.equal(model.hidden_bias, bias.mul_(bound))
        assert model.init == "legacy"

    def test_the_old_api_still_builds(self):
        structure = nx.DiGraph([(0, 1), (0, 2), (1, 2)])
        torch.manual_seed(0)
        with pytest.warns(DeprecationWarning, match="MaskedDeepDAN: the keyword") as deprecated:
            old = MaskedDeepDAN(size_input=4, size_output=2, structure=structure)
        assert sorted(str(warning.message).split(" is")[0] for warning in deprecated) == [
            "MaskedDeepDAN: the keyword size_input=",
            "MaskedDeepDAN: the keyword size_output=",
        ]
        new = built(4, 2, structure)
        assert (old.size_input, old.size_output, old.init) == (4, 2, "fan_in")
        for key, tensor in old.state_dict().items():
            assert torch.equal(tensor, new.state_dict()[key]), key
        assert old(torch.randn(3, 4)).shape == (3, 2)

    @pytest.mark.parametrize("init", ["he", "", None, 1, "LEGACY", ["fan_in"]])
    def test_an_unknown_init_is_refused(self, init):
        with pytest.raises(ConfigError, match="unknown init"):
            MaskedDeepDAN(4, 2, nx.DiGraph([(0, 1)]), init=init)


class TestActivationGain:
    @pytest.mark.parametrize(
        ("activation", "gain"),
        [
            (nn.ReLU(), math.sqrt(2)),
            (nn.ELU(), math.sqrt(2)),
            (nn.Tanh(), 5 / 3),
            (nn.Sigmoid(), 1.0),
            (nn.Identity(), 1.0),
            (nn.LeakyReLU(0.2), math.sqrt(2 / 1.04)),
            (nn.SELU(), 0.75),
        ],
    )
    def test_gains(self, activation, gain):
        assert activation_gain(activation) == pytest.approx(gain)


def caught_warnings(*args, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = MaskedDeepDAN(*args, **kwargs)
    return model, [w for w in caught if issubclass(w.category, StructureWarning)]


class TestStructureWarning:
    def test_the_label_oriented_ring_warns_once_with_the_numbers(self):
        _, caught = caught_warnings(64, 10, pg.watts_strogatz(128, 8, 0.1, seed=0))
        assert len(caught) == 1
        message = str(caught[0].message)
        assert "64 input features and 10 outputs pass through 1 source vertex" in message
        assert "116 layers deep but only 1.1 vertices wide" in message
        assert "order='random'" in message
        assert caught[0].filename == __file__

    def test_one_source_for_the_digits_is_a_bottleneck(self):
        _, caught = caught_warnings(64, 10, pg.barabasi_albert(100, 2, seed=0))
        assert len(caught) == 1
        assert "pass through 1 source vertex" in str(caught[0].message)
        assert "layers deep" not in str(caught[0].message)

    @pytest.mark.parametrize(
        "structure",
        [
            pg.watts_strogatz(128, 8, 0.1, order="random", seed=0),
            pg.small_world_layered(4, 64, 8, 0.1, seed=0),
            pg.small_world_layered(32, 16, 8, 0.1, seed=0),
            nx.DiGraph([("a", "b"), ("b", "c"), ("a", "c")]),
        ],
        ids=["ws-random", "demo", "32x16", "toy"],
    )
    def test_trainable_structures_do_not_warn(self, structure):
        model, caught = (
            caught_warnings(64, 10, structure)
            if len(structure) > 3
            else (caught_warnings(4, 2, structure))
        )
        assert caught == []
        assert model.structure_problems() == []

    def test_thresholds(self):
        # 7 sources for 64 inputs and 10 classes: 7 < min(10, 64 / 8) warns, 8 does not
        seven = pg.complete_layered([7, 10])
        assert len(caught_warnings(64, 10, seven)[1]) == 1
        assert caught_warnings(64, 10, pg.complete_layered([8, 10]))[1] == []
        # a chain of 16 layers of width 3 is > 4 x deeper than wide; 15 layers is not
        assert "16 layers deep" in str(
            caught_warnings(3, 1, pg.complete_layered([3] * 16))[1][0].message
        )
        assert caught_warnings(3, 1, pg.complete_layered([3] * 15))[1] == []

    def test_pruned_vertices_cut_off_from_inputs_or_outputs(self):
        structure = pg.complete_layered([4, 4, 4])
        model = built(4, 2, structure)
        assert model.structure_problems() == []
        plan = model.plan
        with torch.no_grad():
            first = model.plan.layer_weights(model.hidden_mask)
            first[1][:, 0] = False  # nothing leaves source 0: it reaches no output
            model.hidden_mask[: plan.blocks[0][1]].view(4, 4)[3] = False  # no input to 3
        problems = model.structure_problems()
        assert problems == [
            "1 of 12 vertices are reached by no input and 1 reach no output through active "
            "connections: their weights never affect the loss; prune them away or use a "
            "structure where every vertex lies on a path from the inputs to the outputs"
        ]


class TestNormalization:
    def test_batch_normalises_each_vertex_and_runs_the_module_path(self):
        structure = pg.small_world_layered(3, 5, 2, 0.3, seed=0)
        model = built(4, 2, structure, normalization="batch")
        assert model.normalization == "batch"
        assert model.use_layer_norm is False
        assert [type(norm) for norm in model.layer_norms] == [nn.BatchNorm1d] * 3
        assert [norm.num_features for norm in model.layer_norms] == list(model.plan.widths)
        inputs = torch.randn(8, 4)
        for kernel in ("auto", "torch", "compiled"):
            model.kernel = kernel
            assert model._kernel_for(inputs) == "modules"

    def test_fresh_batch_norm_in_eval_mode_is_the_identity(self):
        structure = pg.small_world_layered(4, 6, 3, 0.3, seed=1)
        plain = built(5, 3, structure, seed=2)
        normed = built(5, 3, structure, seed=2, normalization="batch")
        normed.eval()
        inputs = torch.randn(7, 5)
        torch.testing.assert_close(normed(inputs), plain(inputs), atol=1e-4, rtol=1e-4)

    def test_a_layer_of_one_vertex_keeps_its_signal_under_batch_but_not_layer_norm(self):
        chain = nx.path_graph(4, create_using=nx.DiGraph)  # four layers of one vertex
        inputs = torch.randn(16, 3)
        layer = built(3, 2, chain, normalization="layer")
        batch = built(3, 2, chain, normalization="batch")
        # a LayerNorm over one vertex outputs its shift whatever the input
        with torch.no_grad():
            assert float(layer(inputs).std(0).max()) < 1e-6
            assert float(batch(inputs).std(0).min()) > 1e-3

    def test_use_layer_norm_is_layer_normalization(self):
        model = built(4, 2, nx.DiGraph([(0, 1)]), use_layer_norm=True)
        assert (model.normalization, model.use_layer_norm) == ("layer", True)
        assert type(model.layer_norms[0]) is nn.LayerNorm

    @pytest.mark.parametrize(
        ("arguments", "message"),
        [
            ({"normalization": "group"}, "unknown normalization 'group'"),
            ({"normalization": True}, "unknown normalization True"),
            ({"normalization": "batch", "use_layer_norm": True}, "two normalisations"),
        ],
    )
    def test_bad_normalization_is_refused(self, arguments, message):
        with pytest.raises(ConfigError, match=message):
            MaskedDeepDAN(4, 2, nx.DiGraph([(0, 1)]), **arguments)

    def test_compaction_keeps_every_vertex_of_a_batch_normalised_layer(self):
        from pypaddle.deploy import compact

        structure = pg.small_world_layered(3, 6, 3, 0.3, seed=3)
        model = built(4, 2, structure, normalization="batch")
        with torch.no_grad():
            model.hidden_mask[model.plan.blocks[1][0] : model.plan.blocks[1][0] + 9] = False
            for norm in model.layer_norms:
                norm.running_mean.uniform_(-1, 1)
                norm.weight.uniform_(0.5, 2)
        model.eval()
        inputs = torch.randn(5, 4)
        torch.testing.assert_close(compact(model)(inputs), model(inputs))


def layer_block(model, index):
    """Layer ``index``'s slices of the packed weight (and mask) and of the bias."""
    layer = model.layers_main_hidden[index]
    (start, end), (first, last) = model.plan.blocks[index], model.plan.writes[index]
    return layer, slice(start, end), slice(first, last)


def packed_state(model):
    return {
        name: tensor.detach().clone()
        for name, tensor in (
            ("weight", model.hidden_weight),
            ("bias", model.hidden_bias),
            ("mask", model.hidden_mask),
            ("bias_mask", model.hidden_bias_mask),
        )
    }


def assert_only_block_changed(before, model, entries, rows):
    after = packed_state(model)
    for name, part in (("weight", entries), ("mask", entries), ("bias", rows), ("bias_mask", rows)):
        keep = torch.ones(after[name].numel(), dtype=torch.bool)
        keep[part] = False
        assert torch.equal(after[name][keep], before[name][keep]), name


class TestLayerReset:
    """A layer's reset_parameters follows its model's init, on its own block only."""

    @pytest.mark.parametrize(
        ("activation", "gain"), [(nn.ReLU, math.sqrt(2)), (nn.Tanh, 5 / 3), (nn.Identity, 1.0)]
    )
    def test_fan_in_every_vertex_has_gain_over_root_active_fan_in(self, activation, gain):
        structure = pg.random_layered([200] * 4, density=0.25, seed=0)
        model = built(64, 10, structure, activation=activation)
        with torch.no_grad():
            model.hidden_weight.fill_(0.5)  # a trained-looking start, far from any init
        before = packed_state(model)
        layer, entries, rows = layer_block(model, 2)
        torch.manual_seed(1)
        layer.reset_parameters(keep_mask=True)
        std, fan_in = vertex_stds(model)
        ratio = (std / (gain / fan_in.sqrt()))[rows]
        assert abs(float(ratio.mean()) - 1) < 0.02
        assert float(ratio.std()) < 0.15
        pooled = float((std[rows].square() * fan_in[rows]).mean())
        assert pooled == pytest.approx(gain**2, rel=0.03)
        # U(-a, a) with a = gain sqrt(3 / fan-in) per vertex; no edge: exactly 0
        weight, mask = layer.weight.detach(), layer.mask
        bound = (gain * math.sqrt(3) / mask.sum(1).float().sqrt()).unsqueeze(1)
        assert bool((weight.abs() <= bound * (1 + 1e-6)).all())
        assert bool((weight[~mask] == 0).all())
        assert int((weight[mask] == 0).sum()) == 0
        bias_bound = 1 / mask.sum(1).float().sqrt()
        assert bool((layer.bias.detach().abs() <= bias_bound).all())
        assert torch.equal(layer.mask, before["mask"][entries].view_as(layer.mask))
        assert_only_block_changed(before, model, entries, rows)

    def test_fan_in_counts_the_weights_still_active(self):
        structure = pg.random_layered([100] * 3, density=0.6, seed=2)
        model = built(32, 4, structure)
        layer, entries, rows = layer_block(model, 1)
        with torch.no_grad():
            layer.mask[:, ::2] = False  # about half of every vertex's edges pruned
        before = packed_state(model)
        torch.manual_seed(3)
        layer.reset_parameters(keep_mask=True)
        std, fan_in = vertex_stds(model)
        assert torch.equal(fan_in[rows], layer.mask.sum(1).float())
        assert float(fan_in[rows].mean()) < 0.35 * 100  # the pruned fan-in, not 60
        pooled = float((std[rows].square() * fan_in[rows]).mean())
        assert pooled == pytest.approx(2.0, rel=0.04)
        assert bool((layer.weight.detach()[~layer.mask] == 0).all())
        assert_only_block_changed(before, model, entries, rows)

    def test_fan_in_without_keep_mask_opens_the_block_and_draws_over_its_columns(self):
        structure = pg.random_layered([50] * 3, density=0.3, seed=4)
        model = built(16, 4, structure, activation=nn.Tanh)
        layer, entries, rows = layer_block(model, 2)
        with torch.no_grad():
            layer.bias_mask[:5] = False
        before = packed_state(model)
        layer.reset_parameters()
        assert bool(layer.mask.all())
        assert bool(layer.bias_mask.all())
        columns = layer.in_features
        weight = layer.weight.detach()
        assert bool((weight.abs() <= 5 / 3 * math.sqrt(3 / columns) * (1 + 1e-6)).all())
        assert float(weight.std()) == pytest.approx(5 / 3 / math.sqrt(columns), rel=0.05)
        assert_only_block_changed(before, model, entries, rows)

    def test_fan_in_masked_biases_stay_zero(self):
        model = built(16, 4, pg.random_layered([20, 20], density=0.5, seed=0))
        layer = model.layers_main_hidden[1]
        with torch.no_grad():
            layer.bias_mask[:3] = False
        layer.reset_parameters(keep_mask=True)
        assert layer.bias.detach()[:3].tolist() == [0.0, 0.0, 0.0]
        assert bool((layer.bias.detach()[3:] != 0).all())

    def test_legacy_is_the_masked_linear_reset(self):
        structure = pg.random_layered([40] * 3, density=0.4, seed=5)
        model = built(16, 4, structure, init="legacy")
        layer, entries, rows = layer_block(model, 1)
        before = packed_state(model)
        torch.manual_seed(7)
        layer.reset_parameters(keep_mask=True)
        # MaskedLinearLayer's reset: U(-b, b), b = 1 / sqrt(active fan-in), over the block
        torch.manual_seed(7)
        bound = layer.mask.sum(1).float().rsqrt()
        expected_weight = torch.empty(layer.weight.shape).uniform_(-1, 1).mul_(bound[:, None])
        expected_bias = torch.empty(layer.bias.shape).uniform_(-1, 1).mul_(bound)
        assert torch.equal(layer.weight.detach(), expected_weight)
        assert torch.equal(layer.bias.detach(), expected_bias)
        assert int((layer.weight.detach()[~layer.mask] != 0).sum()) > 0  # legacy: drawn too
        assert_only_block_changed(before, model, entries, rows)

    def test_keeps_the_model_dtype(self):
        model = built(8, 2, pg.random_layered([10, 10], density=0.5, seed=0)).double()
        layer = model.layers_main_hidden[1]
        layer.reset_parameters(keep_mask=True)
        assert model.hidden_weight.dtype == torch.float64
        assert bool((layer.weight.detach()[~layer.mask] == 0).all())
