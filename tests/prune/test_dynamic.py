"""SET and RigL: exact densities, zero-initialised growth, reset optimizer state."""

from __future__ import annotations

import math

import pytest
import torch
from prune_helpers import masks

from pypaddle.errors import ConfigError
from pypaddle.prune import SET, RigL, layer_densities, reset_optimizer_state
from pypaddle.sparse import MaskedDeepFFN, MaskedLinear, maskable_layers


def _ffn(seed: int = 0) -> MaskedDeepFFN:
    torch.manual_seed(seed)
    return MaskedDeepFFN(16, 4, [32, 16])


def _loss(model: torch.nn.Module) -> torch.Tensor:
    return model(torch.randn(8, 16)).square().mean()


class TestLayerDensities:
    def test_uniform(self):
        assert layer_densities([(4, 4), (2, 8)], 0.3) == [0.3, 0.3]

    def test_erk_holds_the_overall_density_and_favours_small_layers(self):
        shapes = [(300, 64), (100, 300), (10, 100), (8, 4, 3, 3)]
        densities = layer_densities(shapes, 0.2, "erk")
        sizes = [math.prod(shape) for shape in shapes]
        overall = sum(d * s for d, s in zip(densities, sizes)) / sum(sizes)
        assert overall == pytest.approx(0.2)
        assert densities[2] > densities[0] > densities[1]
        assert all(0 < d <= 1 for d in densities)

    def test_erk_caps_at_dense(self):
        densities = layer_densities([(1000, 1000), (2, 2)], 0.5, "erk")
        assert densities[1] == 1.0
        assert densities[0] == pytest.approx((0.5 * 1_000_004 - 4) / 1_000_000)

    def test_unknown(self):
        with pytest.raises(ConfigError, match="uniform, erk"):
            layer_densities([(2, 2)], 0.5, "er")


class TestSET:
    def test_density_held_exactly_and_masks_move(self):
        model = _ffn()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01)
        dst = SET(model, optimizer, 0.2, end_step=20, update_frequency=5, seed=0)
        counts = [int(layer.mask.sum()) for layer in maskable_layers(model)]
        assert counts == [round(0.2 * layer.num_weights) for layer in maskable_layers(model)]
        start = masks(model)
        for _ in range(20):
            loss = _loss(model)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            dst.step()
            assert [int(layer.mask.sum()) for layer in maskable_layers(model)] == counts
            for layer in maskable_layers(model):
                assert (layer.weight[~layer.mask] == 0).all()
        assert not all(torch.equal(a, b) for a, b in zip(start, masks(model)))

    def test_erk_distribution(self):
        model = _ffn()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        SET(model, optimizer, 0.2, end_step=10, distribution="erk", seed=0)
        shapes = [tuple(layer.weight.shape) for layer in maskable_layers(model)]
        expected = layer_densities(shapes, 0.2, "erk")
        for layer, density in zip(maskable_layers(model), expected):
            assert int(layer.mask.sum()) == round(density * layer.num_weights)

    def test_seeded(self):
        first, second = _ffn(), _ffn()
        for model in (first, second):
            SET(model, torch.optim.SGD(model.parameters(), lr=0.1), 0.3, end_step=5, seed=7)
        assert all(torch.equal(a, b) for a, b in zip(masks(first), masks(second)))

    def test_cosine_decay_of_the_drop_fraction(self):
        model = _ffn()
        dst = SET(model, torch.optim.SGD(model.parameters(), lr=0.1), 0.5, end_step=100, seed=0)
        assert dst.fraction(0) == pytest.approx(0.3)
        assert dst.fraction(50) == pytest.approx(0.15)
        assert dst.fraction(100) == pytest.approx(0.0)
        assert dst.is_update_step(100) is False
        assert dst.is_update_step(200) is False

    def test_bad_density(self):
        model = _ffn()
        with pytest.raises(ConfigError, match="density"):
            SET(model, torch.optim.SGD(model.parameters(), lr=0.1), 0.0, end_step=5)
        assert model.density == 1.0


class TestRigL:
    def _setup(self):
        layer = MaskedLinear(3, 1, bias=False)
        with torch.no_grad():
            layer.weight.copy_(torch.tensor([[1.0, 0.5, 0.2]]))
        layer.mask[0, 2] = False  # the two active weights are what density 2/3 keeps
        optimizer = torch.optim.SGD(layer.parameters(), lr=0.1, momentum=0.9)
        rigl = RigL(layer, optimizer, 2 / 3, end_step=1000, drop_fraction=0.5, update_frequency=1)
        return layer, optimizer, rigl

    def test_grows_the_largest_dense_gradient_at_zero_and_resets_its_state(self):
        layer, optimizer, rigl = self._setup()
        inputs = torch.tensor([[1.0, 1.0, 10.0]])
        layer(inputs).sum().backward()
        optimizer.step()
        weight_before = layer.weight.detach().clone()
        momentum = optimizer.state[layer.weight]["momentum_buffer"]
        assert (momentum[0, :2] != 0).all()
        rigl.step(lambda: layer(inputs).sum())
        # drop round(0.5 * 2) = 1 weight, the smaller of |0.9| and |0.4|; grow where the
        # dense gradient (the input) is largest: weight 2.
        assert layer.mask.tolist() == [[True, False, True]]
        assert layer.weight[0, 2].item() == 0.0
        assert layer.weight[0, 0].item() == weight_before[0, 0].item()
        assert momentum[0, 1:].tolist() == [0.0, 0.0]
        assert momentum[0, 0].item() != 0
        assert layer.weight.grad is not None  # the user's gradient is left as it was
        assert layer.weight.grad[0, 2].item() == 0.0

    def test_needs_a_closure_on_update_steps(self):
        layer, _, rigl = self._setup()
        before = layer.mask.clone()
        with pytest.raises(ConfigError, match="closure"):
            rigl.step()
        assert torch.equal(layer.mask, before)
        assert rigl.step_count == 0


class TestOptimizerState:
    def test_adam_moments_reset_in_place(self):
        layer = MaskedLinear(3, 2)
        optimizer = torch.optim.Adam(layer.parameters(), lr=0.1)
        layer(torch.randn(4, 3)).sum().backward()
        optimizer.step()
        state = optimizer.state[layer.weight]
        exp_avg = state["exp_avg"]
        positions = torch.tensor([[True, False, False], [False, False, True]])
        reset_optimizer_state(optimizer, layer.weight, positions)
        assert state["exp_avg"] is exp_avg
        assert (exp_avg[positions] == 0).all()
        assert (exp_avg[~positions] != 0).all()
        assert (state["exp_avg_sq"][positions] == 0).all()
        assert int(state["step"]) == 1

    def test_a_view_into_a_packed_parameter_is_refused_not_ignored(self):
        import networkx as nx

        from pypaddle.sparse import MaskedDeepDAN

        torch.manual_seed(0)
        model = MaskedDeepDAN(3, 2, nx.DiGraph([(0, 1), (1, 2), (0, 2)]))
        optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
        model(torch.randn(4, 3)).sum().backward()
        optimizer.step()
        layer = model.layers_main_hidden[2]
        moments = optimizer.state[model.hidden_weight]["exp_avg"].clone()
        # The layer's weight is a view: the optimizer keeps no state for it, so resetting
        # "its" state would silently do nothing.
        with pytest.raises(ConfigError, match=r"view.*parameter_leaf\(\).*cut=cut"):
            reset_optimizer_state(optimizer, layer.weight, torch.ones(1, 2, dtype=torch.bool))
        assert torch.equal(optimizer.state[model.hidden_weight]["exp_avg"], moments)
        leaf, cut = layer.parameter_leaf()
        reset_optimizer_state(optimizer, leaf, torch.ones(1, 2, dtype=torch.bool), cut=cut)
        assert bool((cut(optimizer.state[model.hidden_weight]["exp_avg"]) == 0).all())


class TestMaskedWeightsStayOut:
    def test_momentum_and_weight_decay_never_bring_a_masked_weight_back(self):
        from pypaddle.prune import prune

        model = _ffn()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.1)
        for _ in range(3):  # momentum builds up on every weight
            loss = _loss(model)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        prune(model, 0.7)
        pruned = masks(model)
        probe = torch.randn(5, 16)
        for _ in range(5):
            loss = _loss(model)
            optimizer.zero_grad()
            loss.backward()
            for layer in maskable_layers(model):
                assert (layer.weight.grad[~layer.mask] == 0).all()
            optimizer.step()
        assert all(torch.equal(a, b) for a, b in zip(pruned, masks(model)))
        zeroed = _ffn()
        zeroed.load_state_dict(model.state_dict())
        zeroed.apply_mask()
        assert torch.equal(model(probe), zeroed(probe))
        moved = any((layer.weight[~layer.mask] != 0).any() for layer in maskable_layers(model))
        assert moved  # momentum did move the hidden values, yet they stay out of the function


# its DAN is a label-oriented small world (deep and narrow) on purpose, and so are rewirings
@pytest.mark.filterwarnings("ignore::pypaddle.errors.StructureWarning")
class TestRewiringTheStructureAsItIs:
    """``density=None``: keep the model's masks and counts, e.g. a DAN's sparse structure."""

    @staticmethod
    def _dan():
        from pypaddle.graph import watts_strogatz
        from pypaddle.sparse import MaskedDeepDAN

        torch.manual_seed(0)
        return MaskedDeepDAN(8, 3, watts_strogatz(40, 4, 0.3, seed=1))

    @pytest.mark.parametrize("method", [SET, RigL])
    def test_a_dan_keeps_its_edge_count_and_rewires_into_a_dan(self, method):
        from pypaddle.sparse import MaskedDeepDAN

        dan = self._dan()
        edges = dan.generate_structure().number_of_edges()
        before = masks(dan)
        optimizer = torch.optim.SGD(dan.parameters(), lr=0.1, momentum=0.9)
        dst = method(dan, optimizer, None, end_step=20, update_frequency=4, seed=0)
        assert all(map(torch.equal, masks(dan), before))  # untouched at the start
        counts = [int(layer.mask.sum()) for layer in maskable_layers(dan)]
        inputs = torch.randn(16, 8)
        for _ in range(12):
            loss = dan(inputs).square().mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if method is RigL:
                dst.step(lambda: dan(inputs).square().mean())
            else:
                dst.step()
        assert [int(layer.mask.sum()) for layer in maskable_layers(dan)] == counts
        assert not all(map(torch.equal, masks(dan), before))  # connections moved
        rewired = dan.generate_structure()
        assert rewired.number_of_edges() == edges
        rebuilt = MaskedDeepDAN(8, 3, rewired)
        assert set(rebuilt.generate_structure().edges) == set(rewired.edges)

    def test_a_density_the_dan_cannot_reach_points_to_none(self):
        dan = self._dan()
        optimizer = torch.optim.SGD(dan.parameters(), lr=0.1)
        with pytest.raises(ConfigError, match="density=None"):
            RigL(dan, optimizer, 0.5, end_step=10)
