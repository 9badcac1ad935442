"""The built-in criteria on tiny cases with hand-computed scores."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pypaddle.errors import ConfigError, StructureWarning
from pypaddle.graph import watts_strogatz
from pypaddle.prune import importance, prune
from pypaddle.sparse import MaskedDeepDAN, MaskedDeepFFN, MaskedLinear


def _layer(values: list[list[float]], bias: bool = False) -> MaskedLinear:
    layer = MaskedLinear(len(values[0]), len(values), bias=bias)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(values))
    return layer


def _total(output: torch.Tensor, target: object) -> torch.Tensor:
    return output.sum()


def _half_squared_error(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return 0.5 * (output - target).square().mean()


class TestMagnitude:
    def test_absolute_value(self):
        layer = _layer([[3.0, -2.0, 0.5]])
        assert importance(layer)["MaskedLinearLayer"].tolist() == [[3.0, 2.0, 0.5]]


class TestSNIP:
    def test_gradient_times_weight(self):
        layer = _layer([[3.0, -2.0]])
        inputs = torch.tensor([[1.0, 4.0]])
        scores = importance(layer, "snip", inputs=inputs, loss_fn=_total)
        # d(sum)/dw = x, so |g * w| = [1 * 3, 4 * 2]
        assert scores["MaskedLinearLayer"].tolist() == [[3.0, 8.0]]

    def test_prunes_what_magnitude_keeps_and_leaves_no_gradient(self):
        layer = _layer([[3.0, -2.0]])
        prune(layer, 1, criterion="snip", inputs=torch.tensor([[1.0, 4.0]]), loss_fn=_total)
        assert layer.mask.tolist() == [[False, True]]
        assert layer.weight.grad is None

    def test_cross_entropy_by_default(self):
        torch.manual_seed(0)
        model = MaskedDeepFFN(4, 3, [5])
        inputs, targets = torch.randn(6, 4), torch.tensor([0, 1, 2, 0, 1, 2])
        scores = importance(model, "snip", inputs=inputs, targets=targets)
        loss = F.cross_entropy(model(inputs), targets)
        gradient = torch.autograd.grad(loss, model.layer_out.weight)[0]
        expected = (gradient * model.layer_out.weight).abs()
        assert torch.allclose(scores["layer_out"], expected)

    def test_needs_the_model(self):
        layer = _layer([[1.0, 2.0]])
        with pytest.raises(ConfigError, match="pass the model itself"):
            importance([layer], "snip", inputs=torch.ones(1, 2), loss_fn=_total)
        scores = importance([layer], "snip", inputs=torch.ones(1, 2), loss_fn=_total, model=layer)
        assert scores["[0]"].tolist() == [[1.0, 2.0]]


class TestTaylor:
    def test_half_fisher_times_squared_weight(self):
        layer = _layer([[1.0, 2.0]])
        inputs = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
        targets = torch.tensor([[0.0], [1.0]])
        scores = importance(
            layer, "taylor", inputs=inputs, targets=targets, loss_fn=_half_squared_error
        )
        # sample 1: residual 1, gradient [1, 0]; sample 2: residual 3, gradient [0, 6].
        # Fisher = mean of squares = [0.5, 18]; saliency = 0.5 * F * w^2 = [0.25, 36].
        assert scores["MaskedLinearLayer"].tolist() == [[0.25, 36.0]]

    def test_mini_batches(self):
        layer = _layer([[1.0, 2.0]])
        inputs = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
        targets = torch.tensor([[0.0], [1.0]])
        scores = importance(
            layer,
            "taylor",
            inputs=inputs,
            targets=targets,
            loss_fn=_half_squared_error,
            batch_size=2,
        )
        # one batch: gradient = mean of the per-sample gradients = [0.5, 3]
        assert scores["MaskedLinearLayer"].tolist() == [[0.5 * 0.25 * 1.0, 0.5 * 9.0 * 4.0]]


class TestSynFlow:
    def _two_layers(self) -> nn.Sequential:
        return nn.Sequential(_layer([[1.0, -2.0], [3.0, 4.0]]), nn.ReLU(), _layer([[-1.0, 2.0]]))

    def test_synaptic_flow_of_a_positive_network(self):
        model = self._two_layers()
        scores = importance(model, "synflow", input_shape=(2,))
        # |W1| = [[1, 2], [3, 4]], |W2| = [1, 2]; R = |W2| |W1| 1 = 17.
        # dR/d|W1|_ij = |W2|_i, dR/d|W2|_i = (|W1| 1)_i = [3, 7].
        assert scores["0"].tolist() == [[1.0, 2.0], [6.0, 8.0]]
        assert scores["2"].tolist() == [[3.0, 14.0]]
        assert model[0].weight[0, 1].item() == -2.0  # the model is untouched

    def test_masked_weights_carry_no_flow(self):
        model = self._two_layers()
        model[0].mask[1, 1] = False
        scores = importance(model, "synflow", input_shape=(2,))
        assert scores["2"].tolist() == [[3.0, 3.0 * 2.0]]

    def test_iterative_reaches_the_exact_amount(self):
        torch.manual_seed(0)
        model = MaskedDeepFFN(16, 4, [32, 32])
        removed = prune(model, 0.9, criterion="synflow", iterations=10)
        total = sum(layer.num_weights for layer in [*model.layers_main_hidden, model.layer_out])
        assert removed == round(0.9 * total)

    def test_iterative_differs_from_one_shot(self):
        torch.manual_seed(0)
        one_shot = MaskedDeepFFN(16, 4, [32, 32])
        iterative = MaskedDeepFFN(16, 4, [32, 32])
        iterative.load_state_dict(one_shot.state_dict())
        prune(one_shot, 0.95, criterion="synflow", iterations=1)
        prune(iterative, 0.95, criterion="synflow", iterations=20)
        assert one_shot.density == iterative.density
        assert not torch.equal(
            one_shot.layers_main_hidden[1].mask, iterative.layers_main_hidden[1].mask
        )

    def test_needs_the_input_shape(self):
        with pytest.raises(ConfigError, match="input_shape"):
            prune(self._two_layers(), 0.5, criterion="synflow")


class TestDanLayers:
    """Criteria that differentiate reach the hidden layers of a MaskedDeepDAN, which are
    views into its packed weight, whichever kernel runs it."""

    @pytest.mark.parametrize("kernel", ["compiled", "torch", "modules"])
    def test_snip_scores_are_gradient_times_weight(self, kernel):
        torch.manual_seed(0)
        structure = watts_strogatz(20, 4, 0.3, seed=0)
        # a label-oriented small world: deep and narrow, which the warning says
        with pytest.warns(StructureWarning, match="layers deep"):
            model = MaskedDeepDAN(4, 2, structure, activation=nn.Tanh, kernel=kernel)
        inputs, targets = torch.randn(8, 4), torch.tensor([0, 1] * 4)
        scores = importance(model, "snip", inputs=inputs, targets=targets)
        loss = F.cross_entropy(model(inputs), targets)
        gradient = torch.autograd.grad(loss, model.hidden_weight)[0]
        for index, layer in enumerate(model.layers_main_hidden):
            start, end = model.plan.blocks[index]
            expected = (gradient[start:end].view_as(layer.weight) * layer.weight).abs()
            torch.testing.assert_close(scores[f"layers_main_hidden.{index}"], expected)
        assert all(float(score.sum()) > 0 for score in scores.values())
        assert model.hidden_weight.grad is None

    @pytest.mark.slow
    def test_synflow_scores_every_hidden_layer(self):
        torch.manual_seed(0)
        with pytest.warns(StructureWarning, match="layers deep"):  # a deep chain, on purpose
            model = MaskedDeepDAN(4, 2, watts_strogatz(20, 4, 0.3, seed=0), activation=nn.Identity)
        scores = importance(model, "synflow", iterations=1)
        hidden = [scores[f"layers_main_hidden.{i}"] for i in range(len(model.layer_widths))]
        assert all(float(score.sum()) > 0 for score in hidden)
