"""How much each round of iterative pruning removes: the one definition of it.

Iterative pruning (:func:`~pypaddle.prune.prune_iteratively`, SynFlow's rounds, the
``iterative`` and ``lottery`` experiment methods, the demo) removes the same fraction of
the still-active weights every round, so that what is left decays geometrically to its
target. :func:`round_amounts` gives the ``amount`` to hand :func:`~pypaddle.prune.prune`
in each round, in ``prune``'s own convention: a float is a fraction of the still-active
weights (or groups), an int a count.
"""

from __future__ import annotations

import itertools
from typing import Any, overload

from pypaddle._core.checks import check_count, check_fraction
from pypaddle.errors import ConfigError

__all__ = ["round_amounts"]


@overload
def round_amounts(keep: float, rounds: int, *, active: None = None) -> list[float]: ...


@overload
def round_amounts(keep: int, rounds: int, *, active: int) -> list[int]: ...


def round_amounts(keep: Any, rounds: Any, *, active: Any = None) -> list[float] | list[int]:
    """The amount each of ``rounds`` rounds removes so that ``keep`` is left at the end.

    Every round removes the same fraction of what is still active (a geometric decay).

    Parameters
    ----------
    keep : float or int
        Without ``active``: the fraction in [0, 1] of the weights (or groups) active now
        that the last round leaves. With ``active``: the count, at most ``active``.
    rounds : int
        The number of rounds, >= 1.
    active : int, optional
        How many weights (or groups) are active now. Given, the amounts are exact counts:
        after round ``r`` of ``R``, ``round(active * (keep / active) ** (r / R))`` are
        left, so the last round ends exactly at ``keep``.

    Returns
    -------
    list of float or list of int
        One amount per round, as :func:`~pypaddle.prune.prune` reads it: without
        ``active`` the fraction of the still-active weights to remove (the same each
        round, ``1 - keep ** (1 / rounds)``); with ``active`` the count to remove.

    Raises
    ------
    ConfigError
        If ``keep`` is not a fraction (or a count up to ``active``), ``rounds`` not an
        int >= 1, or ``active`` not an int >= 0 (NaN, infinities and bools included).

    Examples
    --------
    >>> round_amounts(0.125, 3)
    [0.5, 0.5, 0.5]
    >>> round_amounts(20, 3, active=160)
    [80, 40, 20]
    >>> round_amounts(0, 2, active=10)         # nothing kept: all go in the first round
    [10, 0]
    """
    rounds = check_count(rounds, "rounds", 1)
    if active is None:
        fraction = check_fraction(keep, "keep")
        return [1.0 - fraction ** (1.0 / rounds)] * rounds
    active = check_count(active, "active")
    keep = check_count(keep, "keep")
    if keep > active:
        raise ConfigError(
            f"keep={keep} is more than the {active} active weights (or groups); a round can "
            f"only remove, so give keep <= {active}"
        )
    left = [_geometric(active, keep, step / rounds) for step in range(rounds)] + [keep]
    return [before - after for before, after in itertools.pairwise(left)]


def _geometric(start: int, final: int, progress: float) -> int:
    """What is left after ``progress`` (0 to 1) of a geometric decay from start to final."""
    if start == 0:
        return 0
    return round(start * (final / start) ** progress)


def left_after_rounds(active: int, keep: int, rounds: int) -> list[int]:
    """What is still active after each round, when :func:`round_amounts` is followed."""
    left = []
    for removed in round_amounts(keep, rounds, active=active):
        active -= removed
        left.append(active)
    return left
