"""Pruning and growing: score -> select -> mask, schedules, lottery tickets, SET and RigL.

:func:`prune` is the one entry point for masking weights; the schedules and trainers
(:func:`prune_iteratively`, :class:`GradualPruning`, :class:`LotteryTicket`, :class:`SET`,
:class:`RigL`) only call it and the selection helpers. :func:`report` tells how dense
every layer is.
"""

from pypaddle.prune._prune import SCOPES, importance, prune
from pypaddle.prune.criteria import CRITERIA
from pypaddle.prune.select import GRANULARITIES

__all__ = ["CRITERIA", "GRANULARITIES", "SCOPES", "importance", "prune"]
