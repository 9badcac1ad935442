"""The sparsification methods an experiment config can name in its ``[sparsify]`` table.

A method is a :class:`Sparsifier` driving :mod:`pypaddle.prune`: the engine trains round 0
for ``training.epochs``, then for each of ``rounds`` further rounds calls
:meth:`Sparsifier.prune` and retrains for ``retrain_epochs``; :meth:`Sparsifier.after_step`
runs after every optimizer step (for methods that change masks while training). Every hook
works on ``layers``, the masked layers that ``sparsify.layers`` selects: ``"all"`` masked
layers of the model, or only the ``"structure"`` layers whose mask entries are the model's
graph edges.

==============  =================================================================
method          what it does
==============  =================================================================
none            dense training
one_shot        train, prune ``amount`` once, retrain
iterative       train, then ``rounds`` x (prune, retrain); ``amount`` per round or
                a final ``density`` reached geometrically
lottery         iterative pruning, rewinding the survivors to their initial values
                before each retraining (lottery tickets, IMP)
gradual         prune while training to ``sparsity`` on the cubic schedule of
                Zhu & Gupta, between fractions ``start`` and ``end`` of the steps
set, rigl       dynamic sparse training at ``density``: drop the smallest weights and
                grow random ones (SET) or those of largest dense gradient (RigL)
==============  =================================================================
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from pypaddle.errors import ConfigError
from pypaddle.experiments.options import option
from pypaddle.experiments.registry import METHODS
from pypaddle.prune import (
    DISTRIBUTIONS,
    SCOPES,
    SET,
    GradualPruning,
    LotteryTicket,
    RigL,
    prune,
    round_amounts,
)
from pypaddle.prune.select import parse_granularity
from pypaddle.sparse import MaskableModule

__all__ = ["Context", "Sparsifier"]

LAYER_CHOICES = ("all", "structure")
CRITERION_CHOICES = ("magnitude", "random", "snip", "taylor", "synflow")
_LAYERS_HELP = (
    "the masked layers the method works on: 'all', or only the 'structure' layers (those "
    "whose mask entries are the model's graph edges)"
)
_RETRAIN_HELP = "epochs of retraining after each pruning"


@dataclass
class Context:
    """What a method may need besides the layers: the model, a training batch, the loss."""

    model: nn.Module
    inputs: torch.Tensor
    targets: torch.Tensor
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    seed: int


class Sparsifier:
    """Hooks the engine calls; the defaults do nothing (dense training).

    In order: :meth:`start` once; then for every round ``r = 0 .. rounds``: (for ``r > 0``)
    :meth:`prune`, a fresh optimizer, :meth:`begin_round`, and :meth:`after_step` after
    every optimizer step of the round's training. Masks may change in any hook; under
    data-parallel training the engine broadcasts them from the first process afterwards.
    """

    rounds: int = 0
    retrain_epochs: int | None = 0
    layers: str = "all"

    def start(self, layers: Sequence[MaskableModule], context: Context) -> None:
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


@dataclass(frozen=True)
class _Selection:
    """How weights are chosen: the options every pruning method shares."""

    criterion: str = option(
        "magnitude",
        choices=CRITERION_CHOICES,
        help="the score that decides which weights go (lowest first): |w|, random, SNIP, "
        "Taylor (Optimal Brain Damage) or SynFlow; see pypaddle.prune.criteria",
    )
    scope: str = option(
        "global",
        choices=SCOPES,
        help="'global': one threshold over all pruned layers; 'layer': each layer loses the "
        "fraction on its own",
    )
    granularity: str | list = option(
        "weight",
        help='"weight", "neuron", "input", "filter", "kernel", ["block", h, w], ["n:m", n, m]',
    )
    layers: str = option("all", choices=LAYER_CHOICES, help=_LAYERS_HELP)

    def check(self, path: str) -> None:
        granularity = self.granularity
        try:
            parse_granularity(tuple(granularity) if isinstance(granularity, list) else granularity)
        except ConfigError as error:
            raise ConfigError(f"{path}.granularity = {granularity!r}: {error}") from None


class _Selector(Sparsifier):
    """Prunes with :func:`pypaddle.prune.prune` and the options of a :class:`_Selection`."""

    def __init__(self, options: Any) -> None:
        self.options = options
        self.layers = options.layers
        granularity = options.granularity
        self.granularity = tuple(granularity) if isinstance(granularity, list) else granularity

    def start(self, layers: Sequence[MaskableModule], context: Context) -> None:
        self.context = context

    def criterion_options(self, round: int) -> dict[str, Any]:
        context, criterion = self.context, self.options.criterion
        if criterion == "random":
            return {"seed": context.seed + round}
        if criterion in ("snip", "taylor"):
            return {
                "inputs": context.inputs,
                "targets": context.targets,
                "loss_fn": context.loss,
                "model": context.model,
            }
        if criterion == "synflow":
            return {"model": context.model, "input_shape": tuple(context.inputs.shape[1:])}
        return {}

    def select(self, layers: Sequence[MaskableModule], amount: float, round: int) -> None:
        prune(
            list(layers),
            amount,
            criterion=self.options.criterion,
            scope=self.options.scope,
            granularity=self.granularity,
            **self.criterion_options(round),
        )
        for layer in layers:
            layer.apply_mask()


_AMOUNT: dict[str, Any] = {
    "above": 0.0,
    "below": 1.0,
    "help": "fraction of the active weights removed",
}


@dataclass(frozen=True)
class OneShotOptions(_Selection):
    amount: float = option(0.5, **_AMOUNT)
    retrain_epochs: int = option(1, minimum=0, help=_RETRAIN_HELP)


class _OneShot(_Selector):
    rounds = 1

    def __init__(self, options: OneShotOptions) -> None:
        super().__init__(options)
        self.retrain_epochs = options.retrain_epochs

    def prune(self, layers: Sequence[MaskableModule], round: int) -> None:
        self.select(layers, self.options.amount, round)


METHODS.add("one_shot", OneShotOptions, description="train, prune once, retrain")(_OneShot)


@dataclass(frozen=True)
class _RoundsOptions(_Selection):
    """How many rounds and how much each removes: iterative pruning and lottery tickets."""

    rounds: int = option(
        3, minimum=1, help="rounds of pruning (each retrained) after the first training"
    )
    amount: float | None = option(
        None,
        **{
            **_AMOUNT,
            "help": "fraction of the active weights removed in each round (not set: 0.5, or "
            "what density needs)",
        },
    )
    density: float | None = option(None, above=0.0, below=1.0, help="density after all rounds")

    def check(self, path: str) -> None:
        super().check(path)
        if self.amount is not None and self.density is not None:
            raise ConfigError(
                f"{path}.amount and {path}.density both given; give the fraction removed per "
                "round (amount) or the density after the last round (density), not both"
            )


@dataclass(frozen=True)
class IterativeOptions(_RoundsOptions):
    retrain_epochs: int = option(1, minimum=0, help=_RETRAIN_HELP)


class _Iterative(_Selector):
    def __init__(self, options: IterativeOptions | LotteryOptions) -> None:
        super().__init__(options)
        self.rounds = options.rounds
        self.retrain_epochs = options.retrain_epochs
        if options.density is not None:  # the same fraction each round reaches the density
            self.amounts = round_amounts(options.density, options.rounds)
        else:
            self.amounts = [0.5 if options.amount is None else options.amount] * options.rounds

    def prune(self, layers: Sequence[MaskableModule], round: int) -> None:
        self.select(layers, self.amounts[round - 1], round)


METHODS.add("iterative", IterativeOptions, description="rounds of pruning, each retrained")(
    _Iterative
)


@dataclass(frozen=True)
class LotteryOptions(_RoundsOptions):
    retrain_epochs: int | None = option(
        None, minimum=0, help=_RETRAIN_HELP + ", after rewinding (not set: training.epochs)"
    )


class _Lottery(_Iterative):
    """Iterative pruning that rewinds the surviving weights to their initial values."""

    def start(self, layers: Sequence[MaskableModule], context: Context) -> None:
        super().start(layers, context)
        self.ticket = LotteryTicket(context.model)

    def prune(self, layers: Sequence[MaskableModule], round: int) -> None:
        super().prune(layers, round)
        self.ticket.rewind()


METHODS.add("lottery", LotteryOptions, description="iterative pruning with rewinding (IMP)")(
    _Lottery
)


@dataclass(frozen=True)
class GradualOptions(_Selection):
    sparsity: float = option(0.9, above=0.0, below=1.0, help="final fraction of weights removed")
    start: float = option(0.0, minimum=0.0, below=1.0, help="fraction of steps before pruning")
    end: float = option(0.75, above=0.0, maximum=1.0, help="fraction of steps at full sparsity")
    frequency: int = option(10, minimum=1, help="steps between pruning steps")
    retrain_epochs: int = option(0, minimum=0, help="epochs of fine-tuning afterwards")

    def check(self, path: str) -> None:
        super().check(path)
        if self.start >= self.end:
            raise ConfigError(f"{path}.start = {self.start} must be below {path}.end = {self.end}")


class _Gradual(_Selector):
    def __init__(self, options: GradualOptions) -> None:
        super().__init__(options)
        self.retrain_epochs = options.retrain_epochs
        self.rounds = 1 if options.retrain_epochs else 0
        self.schedule: GradualPruning | None = None

    def begin_round(
        self,
        layers: Sequence[MaskableModule],
        optimizer: torch.optim.Optimizer,
        round: int,
        steps: int,
    ) -> None:
        if round == 0:
            options = self.options
            self.schedule = GradualPruning(
                list(layers),
                options.sparsity,
                end_step=max(
                    round_half(options.end * steps) - 1, round_half(options.start * steps)
                ),
                start_step=round_half(options.start * steps),
                frequency=options.frequency,
                criterion=options.criterion,
                scope=options.scope,
                granularity=self.granularity,
                **self.criterion_options(0),
            )
        else:
            self.schedule = None

    def after_step(self, closure: Callable[[], torch.Tensor]) -> None:
        if self.schedule is not None:
            self.schedule.step()


def round_half(value: float) -> int:
    return int(value + 0.5)


METHODS.add("gradual", GradualOptions, description="prune while training (Zhu & Gupta)")(_Gradual)


@dataclass(frozen=True)
class DynamicOptions:
    density: float = option(0.1, above=0.0, maximum=1.0, help="fraction of weights kept")
    distribution: str = option(
        "erk",
        choices=DISTRIBUTIONS,
        help="how the density is spread over the layers: 'uniform' (the same in each) or "
        "'erk' (Erdős–Rényi-Kernel: denser where a layer has few weights for its size)",
    )
    drop_fraction: float = option(
        0.3,
        above=0.0,
        maximum=1.0,
        help="fraction of each layer's active weights moved per update: this at the start, "
        "decaying to 0 with a cosine by end",
    )
    update_frequency: int = option(100, minimum=1, help="steps between mask updates")
    end: float = option(0.75, above=0.0, maximum=1.0, help="fraction of steps with updates")
    layers: str = option("all", choices=LAYER_CHOICES, help=_LAYERS_HELP)


class _Dynamic(Sparsifier):
    """SET or RigL over round 0: sparse from the first step, connections moved while training."""

    def __init__(self, options: DynamicOptions, kind: type) -> None:
        self.options, self.kind = options, kind
        self.layers = options.layers
        self.driver: Any = None

    def start(self, layers: Sequence[MaskableModule], context: Context) -> None:
        self.seed = context.seed

    def begin_round(
        self,
        layers: Sequence[MaskableModule],
        optimizer: torch.optim.Optimizer,
        round: int,
        steps: int,
    ) -> None:
        options = self.options
        self.driver = self.kind(
            list(layers),
            optimizer,
            options.density,
            end_step=max(round_half(options.end * steps), 1),
            distribution=options.distribution,
            drop_fraction=options.drop_fraction,
            update_frequency=options.update_frequency,
            seed=self.seed,
        )

    def after_step(self, closure: Callable[[], torch.Tensor]) -> None:
        self.driver.step(closure)


METHODS.add("set", DynamicOptions, description="sparse evolutionary training (SET)")(
    lambda options: _Dynamic(options, SET)
)
METHODS.add("rigl", DynamicOptions, description="rigging the lottery (RigL)")(
    lambda options: _Dynamic(options, RigL)
)
