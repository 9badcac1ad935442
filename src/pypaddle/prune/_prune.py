"""The one pruning entry point: score -> select -> mask."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import nn

from pypaddle.errors import ConfigError, MaskError
from pypaddle.prune._targets import Target, collect_targets
from pypaddle.prune.amounts import left_after_rounds
from pypaddle.prune.criteria import resolve_criterion
from pypaddle.prune.select import (
    Granularity,
    check_amount,
    count_to_remove,
    lowest,
    parse_granularity,
)

__all__ = ["SCOPES", "importance", "prune"]

SCOPES = ("global", "layer")

# How many groups to remove from a scope unit (the whole model for the global scope, a
# target for the layer scope), given its index and how many of its groups are active now.
HowMany = Callable[[int, int], int]


def prune(
    model_or_modules: nn.Module | Iterable[nn.Module],
    amount: float | int | None,
    *,
    criterion: str | Callable[[nn.Module, str], torch.Tensor] = "magnitude",
    scope: str = "global",
    granularity: Any = "weight",
    **criterion_options: Any,
) -> int:
    """Mask the lowest-scored ``amount`` of the still-active weights (or groups of weights).

    Parameters
    ----------
    model_or_modules : nn.Module or iterable of nn.Module
        A model (every maskable module in it is pruned) or a list of masked modules.
    amount : float or int
        A float in [0, 1] is the fraction, an int the count, of the *still active* weights
        (or groups) to remove, as in ``torch.nn.utils.prune`` (a fraction is rounded with
        Python's ``round``). With ``scope="layer"`` it applies to each layer. For
        ``("n:m", n, m)`` the pattern fixes the sparsity: give ``None``.
    criterion : str or callable
        ``"magnitude"``, ``"random"``, ``"snip"``, ``"taylor"``, ``"synflow"`` (see
        :mod:`pypaddle.prune.criteria` for their options) or any callable
        ``(module, name) -> scores`` of the weight's shape. Low scores are removed first.
    scope : str
        ``"global"``: one threshold over all modules; ``"layer"``: each layer on its own.
    granularity : str or tuple
        ``"weight"``; ``"neuron"`` (an output row of the weight, with its bias);
        ``"input"`` (a column, an input channel for a convolution); ``"channel"`` /
        ``"filter"`` (a convolution's output channel with its bias; a neuron for a linear
        layer); ``"kernel"`` (the kernel of one output-input pair of a convolution; a
        single weight for a linear layer); ``("block", h, w)`` (blocks of the weight seen
        as a matrix ``[outputs, everything else]``); ``("n:m", n, m)`` (keep the ``n``
        best of every ``m`` consecutive weights of a row).
    **criterion_options
        Options of the named criterion (``seed`` / ``generator`` for ``"random"``,
        ``inputs`` / ``targets`` / ``loss_fn`` for ``"snip"`` ...).

    Returns
    -------
    int
        The number of weights newly masked.

    Notes
    -----
    A group's score is the sum of the scores of its active weights; a group is active
    while any of its weights (or, for neurons and filters, its bias) is. Already-masked
    weights stay masked; weights themselves are not changed (``apply_mask()`` zeroes the
    masked ones). Ties are broken by position, the first removed first (see
    :mod:`pypaddle.prune.select`). Everything is checked before the first mask is
    written: after an error, every mask is as it was.

    Examples
    --------
    >>> import torch
    >>> from pypaddle.sparse import MaskedDeepFFN
    >>> from pypaddle.prune import prune
    >>> _ = torch.manual_seed(0)
    >>> model = MaskedDeepFFN(64, 10, [32])
    >>> prune(model, 0.5)                      # half of the 2368 weights, one threshold
    1184
    >>> round(model.density, 3)
    0.5
    >>> _ = prune(model, 4, scope="layer", granularity="neuron")  # 4 neurons per layer
    >>> int(model.layers_main_hidden[0].neuron_mask.sum())
    28
    """
    targets = collect_targets(model_or_modules)
    grouping = parse_granularity(granularity)
    if scope not in SCOPES:
        raise ConfigError(f"unknown scope {scope!r}; valid: {', '.join(SCOPES)}")
    if grouping.is_n_m:
        if amount is not None:
            n, m = grouping.shape
            raise ConfigError(
                f"N:M pruning keeps {n} of every {m} weights, which fixes the sparsity at "
                f"{1 - n / m:g}; pass amount=None"
            )
    else:
        amount = check_amount(amount)
    for target in targets:
        grouping.check(target.weight.shape, target.name)
    scorer = resolve_criterion(criterion, criterion_options)
    iterations = getattr(scorer, "iterations", 1)
    before = sum(int(target.mask.sum()) for target in targets)

    def one_shot(unit: int, active: int) -> int:
        return count_to_remove(amount, active, "groups")

    if iterations == 1 or grouping.is_n_m:
        prune_once(model_or_modules, targets, grouping, scope, scorer, one_shot)
    else:
        # Exponential schedule (SynFlow): every round removes the same fraction of the
        # still-active groups, so that the last one ends where one-shot pruning would.
        starts, _ = unit_counts(targets, grouping, scope)
        keeps = [
            left_after_rounds(start, start - count_to_remove(amount, start, "groups"), iterations)
            for start in starts
        ]
        for iteration in range(iterations):
            prune_once(
                model_or_modules,
                targets,
                grouping,
                scope,
                scorer,
                lambda unit, active, step=iteration: max(active - keeps[unit][step], 0),
            )
    return before - sum(int(target.mask.sum()) for target in targets)


def unit_counts(
    targets: Sequence[Target], grouping: Granularity, scope: str
) -> tuple[list[int], list[int]]:
    """Active and total groups per scope unit (one unit in all for the global scope)."""
    active = [int(_group_active(target, grouping).sum()) for target in targets]
    total = [_group_active(target, grouping).numel() for target in targets]
    if scope == "layer":
        return active, total
    return [sum(active)], [sum(total)]


def importance(
    model_or_modules: nn.Module | Iterable[nn.Module],
    criterion: str | Callable[[nn.Module, str], torch.Tensor] = "magnitude",
    **criterion_options: Any,
) -> dict[str, torch.Tensor]:
    """The scores a criterion gives every masked weight, by module name (nothing is pruned).

    Examples
    --------
    >>> import torch
    >>> from pypaddle.sparse import MaskedLinear
    >>> layer = MaskedLinear(2, 1, bias=False)
    >>> with torch.no_grad():
    ...     _ = layer.weight.copy_(torch.tensor([[3.0, -2.0]]))
    >>> importance(layer, "snip", inputs=torch.tensor([[1.0, 4.0]]), targets=None,
    ...            loss_fn=lambda output, target: output.sum())
    {'MaskedLinearLayer': tensor([[3., 8.]])}
    """
    targets = collect_targets(model_or_modules)
    scorer = resolve_criterion(criterion, criterion_options)
    prepare = getattr(scorer, "prepare", None)
    if prepare is not None:
        prepare(model_or_modules, targets)
    return {target.name: _checked_scores(scorer, target) for target in targets}


def prune_once(
    model_or_modules: Any,
    targets: Sequence[Target],
    grouping: Granularity,
    scope: str,
    scorer: Callable[[nn.Module, str], torch.Tensor],
    how_many: HowMany,
) -> None:
    """Score every target once, select with ``how_many`` per scope unit, clear the masks."""
    prepare = getattr(scorer, "prepare", None)
    if prepare is not None:
        prepare(model_or_modules, targets)
    scores = [_checked_scores(scorer, target) for target in targets]
    removals = select(targets, scores, grouping, scope, how_many)
    apply_removals(targets, grouping, removals)


def _checked_scores(scorer: Callable, target: Target) -> torch.Tensor:
    scores = scorer(target.module, target.weight_name)
    if not isinstance(scores, torch.Tensor):
        scores = torch.as_tensor(scores)
    scores = scores.detach()
    if tuple(scores.shape) != tuple(target.weight.shape):
        raise MaskError(
            f"the criterion returned scores of shape {tuple(scores.shape)} for {target.name}, "
            f"whose weight has shape {tuple(target.weight.shape)}; return one score per weight"
        )
    if not scores.is_floating_point():
        scores = scores.double()
    scores = scores.to(target.weight.device)
    if bool((scores.isnan() & target.mask).any()):
        raise ConfigError(
            f"the criterion returned NaN scores for active weights of {target.name}; "
            "NaN cannot be ranked (check the weights, the data or the loss)"
        )
    return scores


def _group_active(target: Target, grouping: Granularity) -> torch.Tensor:
    """Bool per group: any of its weights (or, for output units, its bias) is active."""
    mask = target.mask
    if grouping.kind in ("weight", "n:m"):
        return mask.reshape(-1)
    active = grouping.to_groups(mask, target.conv_groups).any(dim=1)
    bias_mask = target.bias_mask
    if grouping.masks_bias and bias_mask is not None:
        active = active | bias_mask
    return active


def _group_view(
    target: Target, scores: torch.Tensor, grouping: Granularity
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-group scores (sum over active weights) and per-group activity."""
    if grouping.kind == "weight":
        return scores.reshape(-1), target.mask.reshape(-1)
    masked_scores = scores.masked_fill(~target.mask, 0)
    group_scores = grouping.to_groups(masked_scores, target.conv_groups).sum(dim=1)
    return group_scores, _group_active(target, grouping)


def select(
    targets: Sequence[Target],
    scores: Sequence[torch.Tensor],
    grouping: Granularity,
    scope: str,
    how_many: HowMany,
) -> list[torch.Tensor]:
    """Which groups of each target to remove (one bool vector per target)."""
    if grouping.is_n_m:
        return [_n_m(target, score, grouping) for target, score in zip(targets, scores)]
    views = [_group_view(target, score, grouping) for target, score in zip(targets, scores)]
    if scope == "layer":
        removals = []
        for unit, (group_scores, active) in enumerate(views):
            removals.append(lowest(group_scores, active, how_many(unit, int(active.sum()))))
        return removals
    device = targets[0].mask.device
    all_scores = torch.cat([group_scores.to(device) for group_scores, _ in views])
    all_active = torch.cat([active.to(device) for _, active in views])
    count = int(all_active.sum())
    chosen = lowest(all_scores, all_active, how_many(0, count))
    sizes = [active.numel() for _, active in views]
    return [part.to(active.device) for part, (_, active) in zip(chosen.split(sizes), views)]


# Up to this group size N:M ranks by comparing every pair in a group (no sort); beyond
# it a stable sort per group is cheaper.
_PAIRWISE_UP_TO = 16


def _n_m(target: Target, scores: torch.Tensor, grouping: Granularity) -> torch.Tensor:
    """Of every m consecutive weights keep the n best active ones (ties: later kept)."""
    n, m = grouping.shape
    mask = grouping.to_groups(target.mask)
    ranked = grouping.to_groups(scores).masked_fill(~mask, -torch.inf)
    if m <= _PAIRWISE_UP_TO:
        # rank of i = how many in its group come before it: lower, or equal and earlier;
        # one pass per position j of the group (m passes over all groups at once).
        rank = torch.zeros(ranked.shape, dtype=torch.uint8, device=mask.device)
        for j in range(m):
            column = ranked[:, j : j + 1]
            rank += column < ranked
            rank[:, j + 1 :] += column == ranked[:, j + 1 :]
        removed = rank < m - n
    else:
        order = ranked.argsort(dim=1, stable=True)
        removed = torch.zeros_like(mask).scatter_(1, order[:, : m - n], True)
    return (removed & mask).reshape(-1)


@torch.no_grad()
def apply_removals(
    targets: Sequence[Target], grouping: Granularity, removals: Sequence[torch.Tensor]
) -> None:
    """Clear the masks of the removed groups (and of their biases for output units)."""
    for target, removed in zip(targets, removals):
        mask = target.mask
        if grouping.kind in ("weight", "n:m"):
            mask.logical_and_(~removed.reshape(mask.shape))
            continue
        group_size = mask.numel() // max(removed.numel(), 1)
        expanded = removed[:, None].expand(removed.numel(), group_size)
        mask.logical_and_(~grouping.from_groups(expanded, mask.shape, target.conv_groups))
        bias_mask = target.bias_mask
        if grouping.masks_bias and bias_mask is not None:
            bias_mask.logical_and_(~removed)
