"""Pruning schedules: iterative rounds to a target density, Zhu & Gupta's gradual pruning,
and lottery tickets (snapshot, prune, rewind).

They only call :func:`pypaddle.prune.prune`'s pieces and the masked modules' public
methods; none of them reaches into a module.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import nn

from pypaddle._core.checks import check_count, check_fraction
from pypaddle.errors import ConfigError, InputTypeError
from pypaddle.prune._prune import check_scope, prunable, prune_once, unit_counts
from pypaddle.prune._targets import Target, collect_targets
from pypaddle.prune.amounts import left_after_rounds
from pypaddle.prune.criteria import Criterion, resolve_criterion
from pypaddle.prune.select import Granularity, parse_granularity

__all__ = ["GradualPruning", "LotteryTicket", "cubic_sparsity", "prune_iteratively"]


def _selection(
    model_or_modules: Any,
    criterion: Any,
    scope: Any,
    granularity: Any,
    prune_outputs: Any,
    options: dict[str, Any],
) -> tuple[list[Target], Granularity, str, Criterion]:
    """The checked targets, granularity, scope and criterion of a schedule."""
    targets = collect_targets(model_or_modules)
    grouping = parse_granularity(granularity)
    scope = check_scope(scope)
    if grouping.is_n_m:
        raise ConfigError("N:M fixes the density; use prune(model, None, granularity=...)")
    if not isinstance(prune_outputs, bool):
        raise InputTypeError(f"prune_outputs must be True or False, got {prune_outputs!r}")
    targets = prunable(model_or_modules, targets, grouping, prune_outputs)
    for target in targets:
        grouping.check(target.weight.shape, target.name)
    return targets, grouping, scope, resolve_criterion(criterion, options)


def _warn_if_already_there(
    starts: Sequence[int], finals: Sequence[int], totals: Sequence[int], target: float, what: str
) -> None:
    """Say so when a schedule has nothing to prune: the model is already at its target.

    Densities count every entry of every mask; a MaskedDeepDAN's masks hold its non-edges
    too, so a fresh DAN starts well below 1.
    """
    already = all(final >= start for start, final in zip(starts, finals))
    if target < 1 and sum(starts) > 0 and already:
        warnings.warn(
            f"the model already has {sum(starts)} of {sum(totals)} weights (or groups) "
            f"active, a density of {sum(starts) / sum(totals):.4g} <= the target {what} "
            f"{target:.4g}, so nothing is pruned. Densities count every mask entry; a "
            "MaskedDeepDAN's masks also hold the non-edges of its structure. Give a lower "
            "target, or use prune(model, amount) to remove a fraction of the active weights",
            UserWarning,
            stacklevel=3,
        )


def _zero_masked(targets: Iterable[Target]) -> None:
    for module in {id(target.module): target.module for target in targets}.values():
        module.apply_mask()


def prune_iteratively(
    model_or_modules: nn.Module | Iterable[nn.Module],
    density: float,
    rounds: int,
    *,
    train: Callable[[int], Any] | None = None,
    ticket: LotteryTicket | None = None,
    criterion: str | Criterion = "magnitude",
    scope: str = "global",
    granularity: Any = "weight",
    prune_outputs: bool = False,
    **criterion_options: Any,
) -> list[float]:
    """Prune to ``density`` in ``rounds`` rounds, removing the same fraction every round.

    Each round: ``train(round)`` if given, prune so that the kept groups decay
    geometrically from the current count to ``density`` of all groups (per layer with
    ``scope="layer"``; the counts are :func:`~pypaddle.prune.round_amounts`'), zero the
    masked weights, and ``ticket.rewind()`` if a :class:`LotteryTicket` is given
    (iterative magnitude pruning with rewinding). Train once more after the last round
    yourself. ``criterion``, ``scope``, ``granularity``, ``prune_outputs`` and the
    criterion's options are those of :func:`~pypaddle.prune.prune`.

    Returns the density (of the pruned units: weights or groups) after every round.

    Every argument (the ticket too: a :class:`LotteryTicket` of this model) is checked
    before the first round, and each round computes all its masks before writing any:
    an error leaves the masks of that round as they were (earlier rounds, and what
    ``train`` did, stay).

    Examples
    --------
    >>> import torch
    >>> from pypaddle.sparse import MaskedDeepFFN
    >>> _ = torch.manual_seed(0)
    >>> model = MaskedDeepFFN(8, 2, [16])
    >>> prune_iteratively(model, 0.125, 3)
    [0.5, 0.25, 0.125]
    """
    density = check_fraction(density, "density")
    rounds = check_count(rounds, "rounds", 1)
    if train is not None and not callable(train):
        raise InputTypeError(f"train must be a callable train(round) or None, got {train!r}")
    targets, grouping, scope, scorer = _selection(
        model_or_modules, criterion, scope, granularity, prune_outputs, criterion_options
    )
    if ticket is not None:
        _check_ticket(ticket, targets)
    starts, totals = unit_counts(targets, grouping, scope)
    finals = [min(round(density * total), start) for start, total in zip(starts, totals)]
    _warn_if_already_there(starts, finals, totals, density, "density")
    left = [left_after_rounds(start, final, rounds) for start, final in zip(starts, finals)]
    densities = []
    for round_ in range(rounds):
        if train is not None:
            train(round_)
        keeps = [unit_left[round_] for unit_left in left]

        def how_many(unit: int, active: int, keeps: list[int] = keeps) -> int:
            return max(active - keeps[unit], 0)

        prune_once(model_or_modules, targets, grouping, scope, scorer, how_many)
        _zero_masked(targets)
        if ticket is not None:
            ticket.rewind()
        active, _ = unit_counts(targets, grouping, "global")
        densities.append(active[0] / max(sum(totals), 1))
    return densities


def _check_ticket(ticket: Any, targets: Sequence[Target]) -> None:
    if not isinstance(ticket, LotteryTicket):
        raise InputTypeError(
            f"ticket must be a LotteryTicket (or None), got {type(ticket).__name__}; make one "
            "with LotteryTicket(model) before training"
        )
    inside = {id(module) for module in ticket.model.modules()}
    outside = [target.name for target in targets if id(target.module) not in inside]
    if outside:
        raise ConfigError(
            f"the lottery ticket is of another model: it does not hold {', '.join(outside[:3])}, "
            "which are being pruned, so rewinding it would not rewind them; make the ticket "
            "of this model, LotteryTicket(model)"
        )
    ticket.check()


def cubic_sparsity(
    step: int, final_sparsity: float, start_step: int, end_step: int, initial_sparsity: float = 0.0
) -> float:
    """Zhu & Gupta's sparsity at ``step``: ``s_f + (s_i - s_f) (1 - progress)**3``.

    Before ``start_step`` it is ``initial_sparsity``, after ``end_step`` ``final_sparsity``.

    >>> cubic_sparsity(50, 0.9, 0, 100)
    0.7875
    """
    step = check_count(step, "step")
    final_sparsity = check_fraction(final_sparsity, "final_sparsity")
    initial_sparsity = check_fraction(initial_sparsity, "initial_sparsity")
    start_step = check_count(start_step, "start_step")
    end_step = check_count(end_step, "end_step", start_step)
    if step >= end_step:
        return final_sparsity
    if step <= start_step:
        return initial_sparsity
    progress = (step - start_step) / (end_step - start_step)
    return final_sparsity + (initial_sparsity - final_sparsity) * (1.0 - progress) ** 3


class GradualPruning:
    """Gradual pruning with the cubic schedule of Zhu & Gupta (2017), one call per step.

    Call :meth:`step` after every ``optimizer.step()``. At steps ``start_step``,
    ``start_step + frequency``, ... and at ``end_step`` it prunes to the sparsity of
    :func:`cubic_sparsity` (of all weights, or of each layer with ``scope="layer"``);
    after every step it zeroes the masked weights so that momentum or weight decay cannot
    move them.

    Examples
    --------
    >>> import torch
    >>> from pypaddle.sparse import MaskedDeepFFN
    >>> _ = torch.manual_seed(0)
    >>> model = MaskedDeepFFN(8, 2, [16])
    >>> schedule = GradualPruning(model, 0.75, end_step=4, frequency=2)
    >>> for _ in range(5):
    ...     schedule.step()
    >>> model.density
    0.25
    """

    def __init__(
        self,
        model_or_modules: nn.Module | Iterable[nn.Module],
        final_sparsity: float,
        *,
        end_step: int,
        start_step: int = 0,
        frequency: int = 100,
        initial_sparsity: float = 0.0,
        criterion: str | Criterion = "magnitude",
        scope: str = "global",
        granularity: Any = "weight",
        prune_outputs: bool = False,
        **criterion_options: Any,
    ) -> None:
        self.final_sparsity = check_fraction(final_sparsity, "final_sparsity")
        self.initial_sparsity = check_fraction(initial_sparsity, "initial_sparsity")
        self.start_step = check_count(start_step, "start_step", 0)
        self.end_step = check_count(end_step, "end_step", self.start_step)
        self.frequency = check_count(frequency, "frequency", 1)
        self.targets, self.granularity, self.scope, self.scorer = _selection(
            model_or_modules, criterion, scope, granularity, prune_outputs, criterion_options
        )
        self.model_or_modules = model_or_modules
        self.step_count = 0
        starts, totals = unit_counts(self.targets, self.granularity, self.scope)
        finals = [round((1.0 - self.final_sparsity) * total) for total in totals]
        _warn_if_already_there(starts, finals, totals, 1.0 - self.final_sparsity, "density")

    def sparsity(self, step: int | None = None) -> float:
        """The scheduled sparsity at ``step`` (the next step by default)."""
        step = self.step_count if step is None else check_count(step, "step")
        return cubic_sparsity(
            step, self.final_sparsity, self.start_step, self.end_step, self.initial_sparsity
        )

    def is_pruning_step(self, step: int) -> bool:
        """Whether :meth:`step` prunes at ``step``."""
        step = check_count(step, "step")
        if step < self.start_step or step > self.end_step:
            return False
        return (step - self.start_step) % self.frequency == 0 or step == self.end_step

    @torch.no_grad()
    def step(self) -> None:
        """Prune if this is a pruning step; zero the masked weights; count the step."""
        step = self.step_count
        if self.is_pruning_step(step):
            _, totals = unit_counts(self.targets, self.granularity, self.scope)
            keeps = [round((1.0 - self.sparsity(step)) * total) for total in totals]

            def how_many(unit: int, active: int) -> int:
                return max(active - keeps[unit], 0)

            prune_once(
                self.model_or_modules,
                self.targets,
                self.granularity,
                self.scope,
                self.scorer,
                how_many,
            )
        _zero_masked(self.targets)
        self.step_count += 1


class LotteryTicket:
    """Snapshot a model's parameters now; :meth:`rewind` them later, masks kept (IMP).

    The snapshot holds every parameter of the model (masked layers, norms, biases), as
    the lottery ticket experiments rewind them all; masks are buffers and are not part of
    it. Take a new snapshot with :meth:`snapshot` (e.g. after ``k`` training steps, for
    late rewinding).

    Examples
    --------
    >>> import torch
    >>> from pypaddle.sparse import MaskedDeepFFN
    >>> from pypaddle.prune import prune
    >>> _ = torch.manual_seed(0)
    >>> model = MaskedDeepFFN(8, 2, [16])
    >>> ticket = LotteryTicket(model)
    >>> initial = model.layer_out.weight.detach().clone()
    >>> with torch.no_grad():
    ...     _ = model.layer_out.weight.mul_(3)         # "training"
    >>> _ = prune(model, 0.5)
    >>> ticket.rewind()
    >>> kept = model.layer_out.mask
    >>> bool((model.layer_out.weight[kept] == initial[kept]).all())
    True
    >>> bool((model.layer_out.weight[~kept] == 0).all())
    True
    """

    def __init__(self, model: nn.Module) -> None:
        if not isinstance(model, nn.Module):
            raise InputTypeError(f"a lottery ticket needs the model, got {type(model).__name__}")
        self.model = model
        self.snapshot()

    def snapshot(self) -> None:
        """Remember the current value of every parameter."""
        self.state = {
            name: parameter.detach().clone() for name, parameter in self.model.named_parameters()
        }

    def check(self) -> dict[str, nn.Parameter]:
        """The model's parameters, if they are still those of the snapshot (ConfigError if not)."""
        parameters = dict(self.model.named_parameters())
        missing = sorted(set(self.state) ^ set(parameters))
        missing += sorted(
            name
            for name in set(self.state) & set(parameters)
            if self.state[name].shape != parameters[name].shape
        )
        if missing:
            raise ConfigError(
                f"the model's parameters changed since the snapshot ({', '.join(missing)}); "
                "take a new snapshot with ticket.snapshot()"
            )
        return parameters

    @torch.no_grad()
    def rewind(self) -> None:
        """Put every parameter back to the snapshot, in place, and zero the masked weights.

        The parameters are checked against the snapshot (names and shapes) before the first
        is written.
        """
        parameters = self.check()
        for name, parameter in parameters.items():
            parameter.copy_(self.state[name])
        _zero_masked(collect_targets(self.model))
