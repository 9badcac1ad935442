"""Pruning and growing: score -> select -> mask, schedules, lottery tickets, SET and RigL.

:func:`prune` is the one entry point for masking weights (:func:`compute_masks` gives
the masks it would write without writing them; a criterion is any :class:`Criterion`;
:func:`round_amounts` says what each round of iterative pruning removes); the schedules and trainers
(:func:`prune_iteratively`, :class:`GradualPruning`, :class:`LotteryTicket`, :class:`SET`,
:class:`RigL`) only call its pieces. :func:`report` tells how dense every layer is.
"""

from pypaddle.prune._prune import SCOPES, compute_masks, importance, prune
from pypaddle.prune._targets import Target
from pypaddle.prune.amounts import round_amounts
from pypaddle.prune.criteria import CRITERIA, Criterion
from pypaddle.prune.dynamic import (
    DISTRIBUTIONS,
    SET,
    RigL,
    layer_densities,
    reset_optimizer_state,
)
from pypaddle.prune.report import DensityReport, LayerDensity, report
from pypaddle.prune.schedules import (
    GradualPruning,
    LotteryTicket,
    cubic_sparsity,
    prune_iteratively,
)
from pypaddle.prune.select import GRANULARITIES

__all__ = [
    "CRITERIA",
    "DISTRIBUTIONS",
    "GRANULARITIES",
    "SCOPES",
    "SET",
    "Criterion",
    "DensityReport",
    "GradualPruning",
    "LayerDensity",
    "LotteryTicket",
    "RigL",
    "Target",
    "compute_masks",
    "cubic_sparsity",
    "importance",
    "layer_densities",
    "prune",
    "prune_iteratively",
    "report",
    "reset_optimizer_state",
    "round_amounts",
]
