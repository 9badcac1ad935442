"""Issue 16 findings 5, 6 and 10 for pruning, and the seams of issue 15.

5: scoring never changes the model. 6: everything is checked before the first change.
10: structured pruning leaves a model's outputs alone unless asked. Seams: compute_masks
is pure and prune is compute + write; a criterion is a Criterion.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from prune_helpers import masks
from torch import nn

from bad_values import assert_unchanged, snapshot
from pypaddle.errors import ConfigError, InputTypeError
from pypaddle.graph import watts_strogatz
from pypaddle.prune import (
    SET,
    Criterion,
    GradualPruning,
    LotteryTicket,
    RigL,
    Target,
    compute_masks,
    importance,
    prune,
    prune_iteratively,
)
from pypaddle.sparse import (
    MaskedConv2d,
    MaskedDeepDAN,
    MaskedDeepFFN,
    MaskedLinear,
    maskable_layers,
    masked_lenet5,
)


class BatchNormNet(nn.Module):
    """Masked linear -> batch norm -> ReLU -> dropout -> masked linear, with a hook."""

    def __init__(self, fail: str | None = None) -> None:
        super().__init__()
        self.first = MaskedLinear(6, 8)
        self.norm = nn.BatchNorm1d(8)
        self.dropout = nn.Dropout(0.5)
        self.second = MaskedLinear(8, 3)
        self.fail = fail
        self.calls = 0
        self.norm.register_forward_hook(lambda module, inputs, output: None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.dropout(torch.relu(self.norm(self.first(x))))
        self.norm.eval()  # a forward that flips a mode: it must be put back
        if self.fail == "raise":
            raise RuntimeError("the model broke after batch norm ran")
        output = self.second(hidden)
        if self.fail == "nan":
            output = output * math.nan
        return output


def _bn_net(fail: str | None = None) -> BatchNormNet:
    torch.manual_seed(0)
    model = BatchNormNet(fail)
    model.train()
    model.first.weight.grad = torch.full_like(model.first.weight, 0.25)
    model.second.bias.requires_grad_(False)
    return model


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return torch.randn(10, 6, generator=generator), torch.arange(10) % 3


DATA_CRITERIA = ["snip", "taylor"]


def _data_options(criterion: str) -> dict:
    inputs, targets = _batch()
    options = {"inputs": inputs, "targets": targets}
    if criterion == "taylor":
        options["batch_size"] = 5
    return options


class TestScoringLeavesTheModelAlone:
    """Finding 5."""

    @pytest.mark.parametrize("criterion", DATA_CRITERIA)
    def test_success_changes_nothing(self, criterion):
        model = _bn_net()
        before = snapshot(model)
        importance(model, criterion, **_data_options(criterion))
        compute_masks(model, 0.5, criterion=criterion, **_data_options(criterion))
        assert_unchanged(before, model)
        assert model.norm.training
        assert int(model.norm.num_batches_tracked) == 0

    @pytest.mark.parametrize("criterion", DATA_CRITERIA)
    def test_prune_changes_only_masks(self, criterion):
        model = _bn_net()
        running_mean = model.norm.running_mean.clone()
        assert prune(model, 0.5, criterion=criterion, **_data_options(criterion)) == 36
        assert torch.equal(model.norm.running_mean, running_mean)
        assert int(model.norm.num_batches_tracked) == 0
        assert model.norm.training
        assert torch.equal(model.first.weight.grad, torch.full_like(model.first.weight, 0.25))
        assert model.second.bias.requires_grad is False
        assert len(model.norm._forward_hooks) == 1

    @pytest.mark.parametrize("criterion", DATA_CRITERIA)
    def test_nan_input_is_refused_and_changes_nothing(self, criterion):
        model = _bn_net()
        before = snapshot(model)
        options = _data_options(criterion)
        options["inputs"] = options["inputs"].clone()
        options["inputs"][3, 2] = math.nan
        with pytest.raises(ConfigError, match="NaN"):
            prune(model, 0.5, criterion=criterion, **options)
        assert_unchanged(before, model)

    @pytest.mark.parametrize("criterion", DATA_CRITERIA)
    @pytest.mark.parametrize("fail", ["raise", "nan"])
    def test_a_failing_model_changes_nothing(self, criterion, fail):
        model = _bn_net(fail)
        before = snapshot(model)
        with pytest.raises(ConfigError):
            prune(model, 0.5, criterion=criterion, **_data_options(criterion))
        assert_unchanged(before, model)

    @pytest.mark.parametrize("criterion", DATA_CRITERIA)
    def test_a_failing_loss_changes_nothing(self, criterion):
        model = _bn_net()
        before = snapshot(model)
        options = _data_options(criterion)
        options["targets"] = torch.zeros(10, dtype=torch.long) + 7  # class 7 of 3
        with pytest.raises(ConfigError, match="loss_fn"):
            prune(model, 0.5, criterion=criterion, **options)
        assert_unchanged(before, model)

        def broken(output, targets):
            raise ValueError("no loss today")

        options.update(targets=None, loss_fn=broken)
        with pytest.raises(ConfigError, match="no loss today"):
            prune(model, 0.5, criterion=criterion, **options)
        assert_unchanged(before, model)

    def test_frozen_weights_are_scored_and_stay_frozen(self):
        model = _bn_net()
        model.first.weight.requires_grad_(False)
        scores = importance(model, "snip", **_data_options("snip"))
        assert scores["first"].shape == (8, 6)
        assert bool((scores["first"] > 0).any())
        assert model.first.weight.requires_grad is False

    def test_synflow_changes_nothing(self):
        model = _bn_net()
        before = snapshot(model)
        compute_masks(model, 0.5, criterion="synflow", iterations=3, input_shape=(6,))
        assert_unchanged(before, model)

    def test_dan_with_packed_weights(self):
        torch.manual_seed(0)
        model = MaskedDeepDAN(5, 3, watts_strogatz(12, 4, 0.3, seed=0))
        inputs, targets = torch.randn(6, 5), torch.arange(6) % 3
        with torch.no_grad():  # the DAN caches its packed masks on the first forward
            model.eval()(inputs)
        model.train()
        before = snapshot(model)
        compute_masks(model, 0.3, criterion="snip", inputs=inputs, targets=targets)
        compute_masks(model, 0.3, criterion="taylor", inputs=inputs, targets=targets)
        assert_unchanged(before, model)


class _Failing:
    """A criterion that scores by magnitude and fails (NaN or raise) on its n-th call."""

    def __init__(self, fail_at: int, how: str = "nan", iterations: int = 1) -> None:
        self.calls = 0
        self.fail_at = fail_at
        self.how = how
        self.iterations = iterations

    def __call__(self, module: nn.Module, name: str) -> torch.Tensor:
        self.calls += 1
        scores = getattr(module, name).detach().abs().clone()
        if self.calls == self.fail_at:
            if self.how == "raise":
                raise ConfigError("the criterion gave up")
            scores[0] = math.nan
        return scores


def _ffn(seed: int = 0) -> MaskedDeepFFN:
    torch.manual_seed(seed)
    return MaskedDeepFFN(16, 4, [32, 16])


class TestCheckedBeforeTheFirstChange:
    """Finding 6."""

    @pytest.mark.parametrize("ticket", ["x", 3, object(), nn.Linear(2, 2)])
    def test_a_ticket_that_is_not_one(self, ticket):
        model = _ffn()
        before = snapshot(model)
        with pytest.raises(InputTypeError, match="LotteryTicket"):
            prune_iteratively(model, 0.5, 2, ticket=ticket)
        assert_unchanged(before, model)

    def test_a_ticket_of_another_model(self):
        model, other = _ffn(), _ffn(1)
        before = snapshot(model)
        with pytest.raises(ConfigError, match="another model"):
            prune_iteratively(model, 0.5, 2, ticket=LotteryTicket(other))
        assert_unchanged(before, model)

    def test_a_stale_ticket(self):
        model = _ffn()
        ticket = LotteryTicket(model)
        ticket.state["layer_out.weight"] = torch.zeros(2, 2)
        before = snapshot(model)
        with pytest.raises(ConfigError, match=r"layer_out\.weight"):
            prune_iteratively(model, 0.5, 2, ticket=ticket)
        with pytest.raises(ConfigError, match=r"layer_out\.weight"):
            ticket.rewind()
        assert_unchanged(before, model)

    def test_a_ticket_of_a_parent_model_is_fine(self):
        model = _ffn()
        ticket = LotteryTicket(model)
        initial = model.layer_out.weight.detach().clone()
        prune_iteratively([model.layer_out], 0.5, 1, ticket=ticket)
        kept = model.layer_out.mask
        assert torch.equal(model.layer_out.weight[kept], initial[kept])

    def test_train_that_is_not_callable(self):
        model = _ffn()
        before = snapshot(model)
        with pytest.raises(InputTypeError, match="train"):
            prune_iteratively(model, 0.5, 2, train="yes")
        assert_unchanged(before, model)

    @pytest.mark.parametrize("amount", [math.nan, np.float64(math.nan), np.float32(math.nan)])
    def test_nan_amount(self, amount):
        model = _ffn()
        before = snapshot(model)
        with pytest.raises(ConfigError):
            prune(model, amount)
        with pytest.raises(ConfigError):
            compute_masks(model, amount)
        assert_unchanged(before, model)

    @pytest.mark.parametrize("fail_at", [1, 3])
    @pytest.mark.parametrize("how", ["nan", "raise"])
    @pytest.mark.parametrize("scope", ["global", "layer"])
    def test_scores_that_fail_in_any_layer_write_no_mask(self, fail_at, how, scope):
        model = _ffn()
        before = snapshot(model)
        with pytest.raises(ConfigError):
            prune(model, 0.5, criterion=_Failing(fail_at, how), scope=scope)
        assert_unchanged(before, model)

    def test_a_several_round_criterion_failing_late_leaves_the_masks(self):
        model = _ffn()
        before = snapshot(model)
        criterion = _Failing(fail_at=7, iterations=3)  # round 3 of 3, first layer
        with pytest.raises(ConfigError, match="NaN"):
            prune(model, 0.5, criterion=criterion)
        assert criterion.calls == 7
        assert_unchanged(before, model)

    def test_iterations_of_a_custom_criterion_are_checked(self):
        model = _ffn()
        criterion = _Failing(fail_at=0, iterations=0)
        with pytest.raises(ConfigError, match="iterations"):
            prune(model, 0.5, criterion=criterion)
        assert criterion.calls == 0

    def test_a_count_above_the_active_is_refused_before_scoring(self):
        model = _ffn()
        criterion = _Failing(fail_at=0)
        with pytest.raises(ConfigError, match="only 64 are still active"):
            prune(model, 65, criterion=criterion, scope="layer")
        assert criterion.calls == 0
        assert model.density == 1.0

    def test_prune_iteratively_failing_in_round_two_keeps_round_one(self):
        model = _ffn()
        criterion = _Failing(fail_at=4)  # first layer of round 2
        with pytest.raises(ConfigError, match="NaN"):
            prune_iteratively(model, 0.25, 2, criterion=criterion)
        total = sum(layer.num_weights for layer in maskable_layers(model))
        active = sum(layer.num_active_weights for layer in maskable_layers(model))
        assert active == round(total * (round(0.25 * total) / total) ** 0.5)

    def test_gradual_pruning_step_that_fails_changes_nothing(self):
        model = _ffn()
        schedule = GradualPruning(model, 0.5, end_step=2, frequency=1, criterion=_Failing(2))
        before = snapshot(model)
        with pytest.raises(ConfigError, match="NaN"):
            schedule.step()
        assert_unchanged(before, model)
        assert schedule.step_count == 0

    def test_set_with_nan_weights_moves_nothing(self):
        model = _ffn()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        dst = SET(model, optimizer, 0.5, end_step=10, update_frequency=1, seed=0)
        with torch.no_grad():
            model.layer_out.weight[0, 0] = math.nan
            model.layer_out.mask[0, 0] = True
        before = snapshot(model)
        with pytest.raises(ConfigError, match="NaN"):
            dst.step()
        assert_unchanged(before, model)

    @pytest.mark.parametrize(
        "closure",
        [
            lambda: (_ for _ in ()).throw(RuntimeError("closure broke")),
            lambda: "not a loss",
        ],
        ids=["raises", "not-a-tensor"],
    )
    def test_rigl_closure_that_fails_changes_nothing(self, closure):
        model = _ffn()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        rigl = RigL(model, optimizer, 0.5, end_step=10, update_frequency=1, seed=0)
        with torch.no_grad():  # masked weights that are not zero must come back as they were
            model.layer_out.weight.masked_fill_(~model.layer_out.mask, 3.0)
        before = snapshot(model)
        with pytest.raises((ConfigError, RuntimeError)):
            rigl.step(closure)
        assert_unchanged(before, model)

    def test_rigl_nan_gradient_moves_nothing(self):
        model = _ffn()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        rigl = RigL(model, optimizer, 0.5, end_step=10, update_frequency=1, seed=0)
        before = snapshot(model)
        with pytest.raises(ConfigError, match="NaN"):
            rigl.step(lambda: model(torch.full((2, 16), math.nan)).sum())
        assert_unchanged(before, model)


class TestOutputsAreKept:
    """Finding 10."""

    def test_readme_example_on_a_ffn(self):
        torch.manual_seed(0)
        model = MaskedDeepFFN(64, 10, [100])
        prune(model, 0.5)
        out = masks(model.layer_out)
        active = model.layers_main_hidden[0].num_active_weights
        removed = prune(model, 10, scope="layer", granularity="neuron")
        assert int(model.layers_main_hidden[0].neuron_mask.sum()) == 90
        assert all(torch.equal(a, b) for a, b in zip(out, masks(model.layer_out)))
        assert removed == active - model.layers_main_hidden[0].num_active_weights > 0
        assert bool((model(torch.randn(4, 64)) != 0).all())

    def test_opt_in(self):
        torch.manual_seed(0)
        model = MaskedDeepFFN(64, 10, [100])
        prune(model, 10, scope="layer", granularity="neuron", prune_outputs=True)
        assert int(model.layer_out.neuron_mask.sum()) == 0
        assert int(model.layers_main_hidden[0].neuron_mask.sum()) == 90

    # a label-oriented small world of 20 vertices: deep and narrow on purpose
    @pytest.mark.filterwarnings("ignore::pypaddle.errors.StructureWarning")
    def test_dan_output_layer(self):
        torch.manual_seed(0)
        model = MaskedDeepDAN(5, 3, watts_strogatz(20, 4, 0.3, seed=0))
        out = masks(model.layer_out)
        prune(model, 0.5, scope="global", granularity="neuron")
        assert all(torch.equal(a, b) for a, b in zip(out, masks(model.layer_out)))
        hidden = [layer.bias_mask for layer in model.layers_main_hidden]
        assert sum(int((~mask).sum()) for mask in hidden) == 10  # half of the 20 vertices
        torch.manual_seed(0)
        model = MaskedDeepDAN(5, 3, watts_strogatz(20, 4, 0.3, seed=0))
        prune(model, 1, scope="layer", granularity="neuron", prune_outputs=True)
        assert int(model.layer_out.bias_mask.sum()) == 2

    @pytest.mark.parametrize("granularity", ["filter", "channel", "neuron"])
    def test_lenet(self, granularity):
        model = masked_lenet5()
        prune(model, 0.5, scope="layer", granularity=granularity)
        assert bool(model.classifier[4].bias_mask.all())
        assert int(model.classifier[2].bias_mask.sum()) == 42
        assert int(model.features[0].bias_mask.sum()) == 3

    def test_conv_net_with_a_dense_head_prunes_its_last_conv(self):
        torch.manual_seed(0)
        model = nn.Sequential(
            MaskedConv2d(1, 4, 3), nn.ReLU(), MaskedConv2d(4, 6, 3), nn.Flatten(), nn.Linear(24, 2)
        )
        prune(model, 2, scope="layer", granularity="filter")
        assert [int(layer.bias_mask.sum()) for layer in maskable_layers(model)] == [2, 4]

    def test_conv_net_ending_in_a_masked_conv(self):
        model = nn.Sequential(MaskedConv2d(1, 4, 3), nn.BatchNorm2d(4), MaskedConv2d(4, 6, 3))
        prune(model, 2, scope="layer", granularity="filter")
        assert [int(layer.bias_mask.sum()) for layer in maskable_layers(model)] == [2, 6]

    def test_weights_and_inputs_of_the_output_layer_are_still_pruned(self):
        model = _ffn()
        prune(model, 0.5, scope="layer")
        assert model.layer_out.density == 0.5
        inputs = int(model.layer_out.input_mask.sum())
        prune(model, 1, scope="layer", granularity="input")
        assert int(model.layer_out.input_mask.sum()) == inputs - 1

    def test_a_single_layer_and_a_list_are_pruned_as_given(self):
        layer = MaskedLinear(4, 3)
        prune(layer, 1, granularity="neuron")
        assert int(layer.neuron_mask.sum()) == 2
        model = _ffn()
        prune([model.layer_out], 1, granularity="neuron")
        assert int(model.layer_out.neuron_mask.sum()) == 3
        model = _ffn()
        prune(list(model.children()), 1, scope="layer", granularity="neuron")
        assert int(model.layer_out.neuron_mask.sum()) == 3

    def test_schedules_keep_outputs_too(self):
        model = _ffn()
        schedule = GradualPruning(model, 0.5, end_step=0, scope="layer", granularity="neuron")
        schedule.step()
        assert int(model.layer_out.neuron_mask.sum()) == 4
        assert int(model.layers_main_hidden[1].neuron_mask.sum()) == 8

    @pytest.mark.parametrize("flag", [1, "yes", None, np.bool_(True)])
    def test_prune_outputs_must_be_a_bool(self, flag):
        model = _ffn()
        with pytest.raises(InputTypeError, match="prune_outputs"):
            prune(model, 1, granularity="neuron", prune_outputs=flag)
        assert model.density == 1.0


class TestComputeMasks:
    def test_prune_is_compute_then_write(self):
        model, twin = _ffn(), _ffn()
        before = snapshot(model)
        computed = compute_masks(model, 0.3, scope="layer", granularity="neuron")
        assert_unchanged(before, model)
        assert sorted(computed) == [
            "layers_main_hidden.0.bias_mask",
            "layers_main_hidden.0.mask",
            "layers_main_hidden.1.bias_mask",
            "layers_main_hidden.1.mask",
        ]
        prune(twin, 0.3, scope="layer", granularity="neuron")
        for key, mask in computed.items():
            module, name = key.rsplit(".", 1)
            assert mask.dtype == torch.bool
            assert torch.equal(mask, getattr(twin.get_submodule(module), name))
            assert mask.data_ptr() != getattr(model.get_submodule(module), name).data_ptr()

    def test_keys_are_paths_of_the_masks(self):
        assert sorted(compute_masks(MaskedLinear(3, 2), 1)) == ["mask"]
        layers = [MaskedLinear(3, 2), nn.Sequential(nn.ReLU(), MaskedLinear(2, 2))]
        assert sorted(compute_masks(layers, 1)) == ["[0].mask", "[1].1.mask"]

    def test_same_masks_as_prune_for_every_criterion(self):
        inputs, targets = torch.randn(8, 16), torch.arange(8) % 4
        options = {
            "magnitude": {},
            "random": {"seed": 3},
            "snip": {"inputs": inputs, "targets": targets},
            "taylor": {"inputs": inputs, "targets": targets},
            "synflow": {"iterations": 4, "input_shape": (16,)},
        }
        for criterion, extra in options.items():
            model, twin = _ffn(), _ffn()
            computed = compute_masks(model, 0.6, criterion=criterion, **extra)
            assert model.density == 1.0
            prune(twin, 0.6, criterion=criterion, **extra)
            for key, mask in computed.items():
                module, name = key.rsplit(".", 1)
                assert torch.equal(mask, getattr(twin.get_submodule(module), name)), criterion


class TestCriterionProtocol:
    def test_functions_and_builtins_are_criteria(self):
        from pypaddle.prune.criteria import SNIP, Magnitude

        assert isinstance(Magnitude(), Criterion)
        assert isinstance(lambda module, name: module.weight.abs(), Criterion)
        assert isinstance(SNIP(inputs=torch.ones(1, 2), targets=torch.zeros(1)), Criterion)
        assert not isinstance("magnitude", Criterion)

    def test_prepare_receives_the_targets(self):
        seen: list[Target] = []

        class Recording:
            def prepare(self, model_or_modules, targets):
                seen.extend(targets)

            def __call__(self, module, name):
                return getattr(module, name).detach().abs()

        model = _ffn()
        prune(model, 0.5, criterion=Recording())
        assert [target.path for target in seen] == [
            "layers_main_hidden.0",
            "layers_main_hidden.1",
            "layer_out",
        ]
        assert all(isinstance(target, Target) for target in seen)
        assert seen[0].weight is model.layers_main_hidden[0].weight


def test_cross_entropy_options_still_flow():
    torch.manual_seed(0)
    model = MaskedDeepFFN(4, 3, [5])
    inputs, targets = torch.randn(6, 4), torch.tensor([0, 1, 2, 0, 1, 2])
    scores = importance(model, "snip", inputs=inputs, targets=targets, loss_fn=F.cross_entropy)
    assert scores["layer_out"].shape == (3, 5)
