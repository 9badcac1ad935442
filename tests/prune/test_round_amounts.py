"""round_amounts: the one definition of how much each round of iterative pruning removes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bad_values import NOT_COUNTS, NOT_FRACTIONS
from pypaddle.errors import ConfigError
from pypaddle.prune import prune, prune_iteratively, round_amounts
from pypaddle.sparse import MaskedDeepFFN, maskable_layers


class TestRoundAmounts:
    def test_fractions_are_the_same_every_round(self):
        assert round_amounts(0.125, 3) == [0.5, 0.5, 0.5]
        assert round_amounts(0.81, 2) == pytest.approx([0.1, 0.1])
        assert round_amounts(1.0, 4) == [0.0] * 4
        assert round_amounts(0.0, 2) == [1.0, 1.0]

    def test_counts_decay_geometrically_and_end_exactly(self):
        assert round_amounts(20, 3, active=160) == [80, 40, 20]
        amounts = round_amounts(109, 3, active=1088)
        left = [1088 - sum(amounts[: r + 1]) for r in range(3)]
        assert left == [round(1088 * (109 / 1088) ** (r / 3)) for r in (1, 2)] + [109]
        assert round_amounts(0, 2, active=10) == [10, 0]
        assert round_amounts(7, 5, active=7) == [0] * 5
        assert round_amounts(0, 3, active=0) == [0, 0, 0]

    def test_numpy_scalars_are_accepted(self):
        assert round_amounts(np.float64(0.25), np.int64(2)) == [0.5, 0.5]
        assert round_amounts(np.int64(20), np.int32(3), active=np.int64(160)) == [80, 40, 20]

    def test_fraction_amounts_reproduce_the_density_with_prune(self):
        torch.manual_seed(0)
        model = MaskedDeepFFN(8, 2, [16])
        for amount in round_amounts(0.125, 3):
            prune(model, amount)
        assert model.density == 0.125

    def test_prune_iteratively_follows_the_counts(self):
        torch.manual_seed(0)
        model = MaskedDeepFFN(16, 4, [32, 16])
        total = sum(layer.num_weights for layer in maskable_layers(model))
        densities = prune_iteratively(model, 0.1, 3)
        amounts = round_amounts(round(0.1 * total), 3, active=total)
        assert [d * total for d in densities] == pytest.approx(
            [total - sum(amounts[: r + 1]) for r in range(3)]
        )

    @pytest.mark.parametrize("keep", NOT_FRACTIONS)
    def test_bad_fractions(self, keep):
        with pytest.raises(ConfigError):
            round_amounts(keep, 3)

    @pytest.mark.parametrize("rounds", [*NOT_COUNTS, 0])
    def test_bad_rounds(self, rounds):
        with pytest.raises(ConfigError):
            round_amounts(0.5, rounds)

    @pytest.mark.parametrize("bad", [*NOT_COUNTS, 0.5])
    def test_bad_counts(self, bad):
        with pytest.raises(ConfigError):
            round_amounts(bad, 3, active=10)
        with pytest.raises(ConfigError):
            round_amounts(3, 3, active=bad)

    def test_keep_above_active(self):
        with pytest.raises(ConfigError, match="keep=11 is more than the 10 active"):
            round_amounts(11, 2, active=10)
