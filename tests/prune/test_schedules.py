"""Iterative and gradual pruning schedules, and lottery tickets."""

from __future__ import annotations

import pytest
import torch
from prune_helpers import masks

from pypaddle.errors import ConfigError
from pypaddle.graph import random_layered
from pypaddle.prune import (
    GradualPruning,
    LotteryTicket,
    cubic_sparsity,
    prune,
    prune_iteratively,
)
from pypaddle.sparse import MaskedDeepDAN, MaskedDeepFFN, maskable_layers


def _ffn(seed: int = 0) -> MaskedDeepFFN:
    torch.manual_seed(seed)
    return MaskedDeepFFN(16, 4, [32, 16])


def _train_step(model: MaskedDeepFFN, optimizer: torch.optim.Optimizer) -> None:
    loss = model(torch.randn(8, 16)).square().mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


class TestPruneIteratively:
    def test_geometric_rounds_reach_the_density_exactly(self):
        model = _ffn()
        total = sum(layer.num_weights for layer in maskable_layers(model))  # 1088
        densities = prune_iteratively(model, 0.1, 3)
        assert densities[-1] == round(0.1 * total) / total
        final = round(0.1 * total)
        kept = [round(total * (final / total) ** (r / 3)) / total for r in (1, 2, 3)]
        assert densities == kept
        assert model.density == densities[-1]

    def test_one_round_is_one_shot_pruning(self):
        first, second = _ffn(), _ffn()
        prune_iteratively(first, 0.25, 1)
        prune(second, 0.75)
        assert all(torch.equal(a, b) for a, b in zip(masks(first), masks(second)))

    def test_calls_train_before_each_round_and_zeroes_masked_weights(self):
        model = _ffn()
        seen = []
        prune_iteratively(model, 0.5, 2, train=lambda round_: seen.append(model.density))
        assert seen == [1.0, pytest.approx(0.7068, abs=1e-3)]
        for layer in maskable_layers(model):
            assert (layer.weight[~layer.mask] == 0).all()

    def test_layer_scope_gives_each_layer_the_density(self):
        model = _ffn()
        prune_iteratively(model, 0.25, 2, scope="layer")
        for layer in maskable_layers(model):
            assert layer.density == round(0.25 * layer.num_weights) / layer.num_weights

    def test_neurons(self):
        model = _ffn()
        prune_iteratively(model, 0.5, 2, scope="layer", granularity="neuron", prune_outputs=True)
        assert [int(layer.neuron_mask.sum()) for layer in maskable_layers(model)] == [16, 8, 2]
        model = _ffn()
        prune_iteratively(model, 0.5, 2, scope="layer", granularity="neuron")
        assert [int(layer.neuron_mask.sum()) for layer in maskable_layers(model)] == [16, 8, 4]

    @pytest.mark.parametrize("density", [1.5, -0.1, "half"])
    def test_bad_density(self, density):
        model = _ffn()
        with pytest.raises(ConfigError, match="density"):
            prune_iteratively(model, density, 2)
        assert model.density == 1.0


class TestCubicSchedule:
    def test_values(self):
        assert cubic_sparsity(0, 0.9, 0, 100) == 0.0
        assert cubic_sparsity(100, 0.9, 0, 100) == 0.9
        assert cubic_sparsity(200, 0.9, 0, 100) == 0.9
        assert cubic_sparsity(25, 0.8, 0, 100, 0.2) == pytest.approx(0.8 - 0.6 * 0.75**3)
        assert cubic_sparsity(5, 0.8, 10, 20, 0.1) == 0.1

    def test_gradual_pruning_prunes_on_schedule_and_keeps_masked_weights_zero(self):
        model = _ffn()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.1)
        schedule = GradualPruning(model, 0.8, start_step=2, end_step=10, frequency=4)
        total = sum(layer.num_weights for layer in maskable_layers(model))
        densities = []
        for _ in range(14):
            _train_step(model, optimizer)
            schedule.step()
            densities.append(model.density)
            for layer in maskable_layers(model):
                assert (layer.weight[~layer.mask] == 0).all()
        # pruning at steps 2, 6 and 10 (the end); nothing in between or after
        expected_at = {2: 0.0, 6: 0.8 - 0.8 * 0.5**3, 10: 0.8}
        for step, sparsity in expected_at.items():
            assert densities[step] == round((1 - sparsity) * total) / total
        assert densities[:2] == [1.0, 1.0]
        assert densities[3:6] == [densities[2]] * 3
        assert densities[10:] == [densities[10]] * 4

    def test_bad_frequency(self):
        with pytest.raises(ConfigError, match="frequency"):
            GradualPruning(_ffn(), 0.5, end_step=10, frequency=0)


class TestLotteryTicket:
    def test_imp_rewinds_survivors_to_initial_weights(self):
        model = _ffn()
        initial = {name: value.clone() for name, value in model.named_parameters()}
        ticket = LotteryTicket(model)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.5)

        def train(round_: int) -> None:
            for _ in range(3):
                _train_step(model, optimizer)

        prune_iteratively(model, 0.2, 2, train=train, ticket=ticket)
        assert model.density == pytest.approx(0.2, abs=1e-3)
        for name, parameter in model.named_parameters():
            layer_name = name.rsplit(".", 1)[0]
            layer = model.get_submodule(layer_name)
            if name.endswith("weight"):
                kept = layer.mask
                assert torch.equal(parameter[kept], initial[name][kept])
                assert (parameter[~kept] == 0).all()
            else:
                assert torch.equal(parameter, initial[name])

    def test_the_ticket_is_not_the_trained_mask_of_random_pruning(self):
        trained, random = _ffn(), _ffn()
        optimizer = torch.optim.SGD(trained.parameters(), lr=0.5)
        for _ in range(3):
            _train_step(trained, optimizer)
        prune(trained, 0.8)
        prune(random, 0.8, criterion="random", seed=0)
        assert not torch.equal(trained.layer_out.mask, random.layer_out.mask)

    def test_late_rewinding_snapshot(self):
        model = _ffn()
        ticket = LotteryTicket(model)
        with torch.no_grad():
            model.layer_out.weight.add_(1.0)
        ticket.snapshot()
        late = model.layer_out.weight.detach().clone()
        with torch.no_grad():
            model.layer_out.weight.mul_(2.0)
        ticket.rewind()
        assert torch.equal(model.layer_out.weight, late)

    def test_changed_model(self):
        model = _ffn()
        ticket = LotteryTicket(model)
        model.extra = torch.nn.Linear(2, 2)
        with pytest.raises(ConfigError, match=r"extra\.weight"):
            ticket.rewind()


class TestNothingToPrune:
    """A target the model already meets prunes nothing, and says so (a fresh DAN's masks
    hold its non-edges, so its density starts far below 1)."""

    def _dan(self) -> MaskedDeepDAN:
        torch.manual_seed(0)
        return MaskedDeepDAN(2, 2, random_layered([20, 20, 20], density=0.1, seed=0))

    def test_iterative(self):
        model = self._dan()
        assert model.density < 0.5
        with pytest.warns(UserWarning, match="nothing is pruned"):
            prune_iteratively(model, 0.5, 2)
        assert model.density == pytest.approx(self._dan().density)

    def test_gradual(self):
        with pytest.warns(UserWarning, match="MaskedDeepDAN"):
            GradualPruning(self._dan(), 0.5, end_step=4)

    def test_no_warning_when_there_is_work(self, recwarn):
        prune_iteratively(_ffn(), 0.5, 2)
        GradualPruning(_ffn(), 0.5, end_step=4)
        prune_iteratively(_ffn(), 1.0, 1)
        assert not [w for w in recwarn if "nothing is pruned" in str(w.message)]
