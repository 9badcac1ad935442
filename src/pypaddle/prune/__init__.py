"""Pruning and growing: score -> select -> mask, schedules, lottery tickets, SET and RigL.

:func:`prune` is the one entry point for masking weights; the schedules and trainers
(:func:`prune_iteratively`, :class:`GradualPruning`, :class:`LotteryTicket`, :class:`SET`,
:class:`RigL`) only call its pieces. :func:`report` tells how dense every layer is.
"""

from pypaddle.prune._prune import SCOPES, importance, prune
from pypaddle.prune.amounts import round_amounts
from pypaddle.prune.criteria import CRITERIA
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
    "DensityReport",
    "GradualPruning",
    "LayerDensity",
    "LotteryTicket",
    "RigL",
    "cubic_sparsity",
    "importance",
    "layer_densities",
    "prune",
    "prune_iteratively",
    "report",
    "reset_optimizer_state",
    "round_amounts",
]
