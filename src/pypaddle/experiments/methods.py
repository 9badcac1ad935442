"""The sparsification methods an experiment config can name in its ``[sparsify]`` table.

A method is a :class:`Sparsifier`: the engine trains round 0 for ``training.epochs``,
then for each of ``rounds`` further rounds calls :meth:`Sparsifier.prune` and retrains
for ``retrain_epochs``; :meth:`Sparsifier.after_step` runs after every optimizer step
(for methods that change masks while training). Every hook works on ``layers``, the
masked layers that ``sparsify.layers`` selects: ``"all"`` masked layers of the model, or
only the ``"structure"`` layers whose mask entries are the model's graph edges.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from pypaddle.experiments._pruning import prune_by_magnitude
from pypaddle.experiments.options import option
from pypaddle.experiments.registry import METHODS
from pypaddle.sparse import MaskableModule

__all__ = ["IterativeOptions", "NoneOptions", "OneShotOptions", "Sparsifier"]

LAYER_CHOICES = ("all", "structure")


class Sparsifier:
    """Hooks the engine calls; the defaults do nothing (dense training).

    In order: :meth:`start` once; then for every round ``r = 0 .. rounds``: (for ``r > 0``)
    :meth:`prune`, a fresh optimizer, :meth:`begin_round`, and :meth:`after_step` after
    every optimizer step of the round's training. Masks may change in any hook; under
    data-parallel training the engine broadcasts them from the first process afterwards.
    """

    rounds: int = 0
    retrain_epochs: int = 0
    layers: str = "all"

    def start(self, model: nn.Module, layers: Sequence[MaskableModule]) -> None:
        """Called once, after the model is built and before any training."""

    def prune(self, layers: Sequence[MaskableModule], round: int) -> None:
        """Called before retraining in each round ``1 .. rounds``."""

    def begin_round(
        self,
        layers: Sequence[MaskableModule],
        optimizer: torch.optim.Optimizer,
        round: int,
        steps: int,
    ) -> None:
        """Called before a round trains, with its optimizer and number of optimizer steps."""

    def after_step(self, closure: Callable[[], torch.Tensor]) -> None:
        """Called after every optimizer step; ``closure()`` computes the batch's loss."""


@dataclass(frozen=True)
class NoneOptions:
    pass


@METHODS.add("none", NoneOptions, description="dense training, no sparsification")
def _none(options: NoneOptions) -> Sparsifier:
    return Sparsifier()


class _MagnitudeRounds(Sparsifier):
    def __init__(
        self, rounds: int, amount: float, retrain_epochs: int, layers: str, scope: str
    ) -> None:
        self.rounds = rounds
        self.amount = amount
        self.retrain_epochs = retrain_epochs
        self.layers = layers
        self.scope = scope

    def prune(self, layers: Sequence[MaskableModule], round: int) -> None:
        prune_by_magnitude(layers, self.amount, scope=self.scope)


_AMOUNT = {"above": 0.0, "below": 1.0, "help": "fraction of the active weights removed"}


@dataclass(frozen=True)
class OneShotOptions:
    amount: float = option(0.5, **_AMOUNT)
    retrain_epochs: int = option(1, minimum=0)
    layers: str = option("all", choices=LAYER_CHOICES)
    scope: str = option("global", choices=("global", "layer"))


@METHODS.add("one_shot", OneShotOptions, description="train, prune by magnitude once, retrain")
def _one_shot(options: OneShotOptions) -> Sparsifier:
    return _MagnitudeRounds(
        1, options.amount, options.retrain_epochs, options.layers, options.scope
    )


@dataclass(frozen=True)
class IterativeOptions:
    rounds: int = option(3, minimum=1)
    amount: float = option(0.5, **_AMOUNT)
    retrain_epochs: int = option(1, minimum=0)
    layers: str = option("all", choices=LAYER_CHOICES)
    scope: str = option("global", choices=("global", "layer"))


@METHODS.add(
    "iterative", IterativeOptions, description="rounds of magnitude pruning, each retrained"
)
def _iterative(options: IterativeOptions) -> Sparsifier:
    return _MagnitudeRounds(
        options.rounds, options.amount, options.retrain_epochs, options.layers, options.scope
    )
