"""The one pruning entry point, score -> select -> mask, in two steps: compute, then apply."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import nn

from pypaddle._core.checks import check_count
from pypaddle.errors import ConfigError, InputTypeError, MaskError
from pypaddle.prune._targets import Target, collect_targets, output_layer
from pypaddle.prune.amounts import left_after_rounds
from pypaddle.prune.criteria import Criterion, resolve_criterion
from pypaddle.prune.select import (
    Granularity,
    check_amount,
    count_to_remove,
    lowest,
    parse_granularity,
)

__all__ = ["SCOPES", "compute_masks", "importance", "prune"]

SCOPES = ("global", "layer")
"""Where one threshold applies: over the whole model (``"global"``) or per layer."""

# How many groups to remove from a scope unit (the whole model for the global scope, a
# target for the layer scope), given its index and how many of its groups are active now.
HowMany = Callable[[int, int], int]

# The masks of one target after a step: the weight's, and the bias's (None if untouched).
NewMasks = tuple[torch.Tensor, "torch.Tensor | None"]

_OPTIONS_DOC = """model_or_modules : nn.Module or iterable of nn.Module
        A model (every maskable module in it is pruned) or a list of masked modules.
    amount : float or int
        A float in [0, 1] is the fraction, an int the count, of the *still active* weights
        (or groups) to remove, as in ``torch.nn.utils.prune`` (a fraction is rounded with
        Python's ``round``). With ``scope="layer"`` it applies to each layer. For
        ``("n:m", n, m)`` the pattern fixes the sparsity: give ``None``.
    criterion : str or Criterion
        ``"magnitude"``, ``"random"``, ``"snip"``, ``"taylor"``, ``"synflow"`` (see
        :mod:`pypaddle.prune.criteria` for their options) or any :class:`Criterion`, a
        callable ``(module, name) -> scores`` of the weight's shape. Low scores go first.
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
    prune_outputs : bool
        Whether ``"neuron"``, ``"channel"`` and ``"filter"`` may remove the model's output
        units. By default (False) the model's output layer is left out of these
        granularities, as Torch-Pruning's ignored layers are, since removing an output unit
        makes the model answer 0 there: the output layer is the model's last masked module
        (in module order) when it holds more than one and no module with a weight of its
        own (a dense head) comes after it. A model that is a single masked layer, and a
        list of modules (you chose the layers), are pruned as given.
    **criterion_options
        Options of the named criterion (``seed`` / ``generator`` for ``"random"``,
        ``inputs`` / ``targets`` / ``loss_fn`` for ``"snip"`` ...)."""


def prune(
    model_or_modules: nn.Module | Iterable[nn.Module],
    amount: float | int | None,
    *,
    criterion: str | Criterion = "magnitude",
    scope: str = "global",
    granularity: Any = "weight",
    prune_outputs: bool = False,
    **criterion_options: Any,
) -> int:
    """Mask the lowest-scored ``amount`` of the still-active weights (or groups of weights).

    ``prune`` is :func:`compute_masks` followed by writing its masks into the model.

    Parameters
    ----------
    {options}

    Returns
    -------
    int
        The number of weights newly masked.

    Raises
    ------
    ConfigError, InputTypeError
        For a bad amount, scope, granularity, criterion or option (NaN included), or
        scores that are NaN at an active weight; every mask is then as it was.

    Notes
    -----
    A group's score is the sum of the scores of its active weights; a group is active
    while any of its weights (or, for neurons and filters, its bias) is. Already-masked
    weights stay masked; weights themselves are not changed (``apply_mask()`` zeroes the
    masked ones). Ties are broken by position, the first removed first (see
    :mod:`pypaddle.prune.select`). Everything is checked and every score computed before
    the first mask is written: after an error, every mask is as it was.

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
    >>> _ = prune(model, 4, scope="layer", granularity="neuron")  # 4 hidden neurons
    >>> int(model.layers_main_hidden[0].neuron_mask.sum()), int(model.layer_out.neuron_mask.sum())
    (28, 10)
    >>> _ = prune(model, 1, scope="layer", granularity="neuron", prune_outputs=True)
    >>> int(model.layers_main_hidden[0].neuron_mask.sum()), int(model.layer_out.neuron_mask.sum())
    (27, 9)
    """
    masks = compute_masks(
        model_or_modules,
        amount,
        criterion=criterion,
        scope=scope,
        granularity=granularity,
        prune_outputs=prune_outputs,
        **criterion_options,
    )
    return _write_masks(collect_targets(model_or_modules), masks)


def compute_masks(
    model_or_modules: nn.Module | Iterable[nn.Module],
    amount: float | int | None,
    *,
    criterion: str | Criterion = "magnitude",
    scope: str = "global",
    granularity: Any = "weight",
    prune_outputs: bool = False,
    **criterion_options: Any,
) -> dict[str, torch.Tensor]:
    """The masks :func:`prune` would give the model, computed without changing it.

    Takes the arguments of :func:`prune`. Nothing of the model changes: not its masks, nor
    its weights, buffers, modes or gradients (a criterion that prunes in several rounds,
    such as SynFlow, works on the masks meanwhile and puts them back).

    Parameters
    ----------
    {options}

    Returns
    -------
    dict of str to torch.Tensor
        A new bool tensor for every mask the call would write, keyed by where the mask sits
        in the model (``"layer_out.mask"``, ``"layer_out.bias_mask"``: the module's path, a
        dot, the mask's name; for a model that is one masked layer just ``"mask"``; for a
        list of modules the path starts with the module's index, ``"[0].mask"``). Every
        pruned weight's mask is there; the bias masks are there for ``"neuron"``,
        ``"channel"`` and ``"filter"``, which remove whole output units.

    Examples
    --------
    >>> import torch
    >>> from pypaddle.sparse import MaskedDeepFFN
    >>> _ = torch.manual_seed(0)
    >>> model = MaskedDeepFFN(4, 2, [3])
    >>> masks = compute_masks(model, 2, scope="layer", granularity="neuron")
    >>> sorted(masks)                            # the output layer is left alone
    ['layers_main_hidden.0.bias_mask', 'layers_main_hidden.0.mask']
    >>> int(masks["layers_main_hidden.0.bias_mask"].sum()), model.density   # model unchanged
    (1, 1.0)
    """
    targets, grouping, scope, amount, scorer = _checked_call(
        model_or_modules, amount, criterion, scope, granularity, prune_outputs, criterion_options
    )
    iterations = _iterations(scorer)
    if iterations == 1 or grouping.is_n_m:

        def one_shot(unit: int, active: int) -> int:
            return count_to_remove(amount, active, "groups")

        new = _step(model_or_modules, targets, grouping, scope, scorer, one_shot)
        return _keyed(targets, new)
    # Several rounds (SynFlow): each round scores the model as the rounds before it left
    # it, so the masks are written meanwhile and put back at the end, whatever happens.
    starts, _ = unit_counts(targets, grouping, scope)
    keeps = [
        left_after_rounds(start, start - count_to_remove(amount, start, "groups"), iterations)
        for start in starts
    ]
    saved = _current_masks(targets, grouping)
    try:
        for step in range(iterations):

            def to_keep(unit: int, active: int, step: int = step) -> int:
                return max(active - keeps[unit][step], 0)

            new = _step(model_or_modules, targets, grouping, scope, scorer, to_keep)
            _write(targets, new)
        return _keyed(targets, _current_masks(targets, grouping))
    finally:
        _write(targets, saved)


prune.__doc__ = (prune.__doc__ or "").replace("{options}", _OPTIONS_DOC)
compute_masks.__doc__ = (compute_masks.__doc__ or "").replace("{options}", _OPTIONS_DOC)


def _checked_call(
    model_or_modules: Any,
    amount: Any,
    criterion: Any,
    scope: Any,
    granularity: Any,
    prune_outputs: Any,
    criterion_options: dict[str, Any],
) -> tuple[list[Target], Granularity, str, float | int, Criterion]:
    """Every argument of a pruning call checked, before anything is scored or written."""
    targets = collect_targets(model_or_modules)
    grouping = parse_granularity(granularity)
    scope = check_scope(scope)
    if not isinstance(prune_outputs, bool):
        raise InputTypeError(f"prune_outputs must be True or False, got {prune_outputs!r}")
    checked: float | int = 0
    if grouping.is_n_m:
        if amount is not None:
            n, m = grouping.shape
            raise ConfigError(
                f"N:M pruning keeps {n} of every {m} weights, which fixes the sparsity at "
                f"{1 - n / m:g}; pass amount=None"
            )
    else:
        checked = check_amount(amount)
    targets = prunable(model_or_modules, targets, grouping, prune_outputs)
    for target in targets:
        grouping.check(target.weight.shape, target.name)
    scorer = resolve_criterion(criterion, criterion_options)
    _iterations(scorer)
    if not grouping.is_n_m:
        for active in unit_counts(targets, grouping, scope)[0]:
            count_to_remove(checked, active, "groups")
    return targets, grouping, scope, checked, scorer


def check_scope(scope: Any) -> str:
    """``scope`` if it is one of :data:`SCOPES`, else a ConfigError."""
    if not isinstance(scope, str) or scope not in SCOPES:
        raise ConfigError(f"unknown scope {scope!r}; valid: {', '.join(SCOPES)}")
    return scope


def prunable(
    model_or_modules: Any, targets: list[Target], grouping: Granularity, prune_outputs: bool
) -> list[Target]:
    """The targets a call may prune: without the output layer for output-unit groups."""
    if not grouping.masks_bias or prune_outputs:
        return targets
    output = output_layer(model_or_modules)
    kept = [target for target in targets if target.module is not output]
    if not kept:
        raise ConfigError(
            f"granularity {grouping} removes whole output units, and the only masked layer "
            "left is the model's output layer, which is kept unless asked; pass "
            "prune_outputs=True to remove output units"
        )
    return kept


def _iterations(scorer: Any) -> int:
    iterations = getattr(scorer, "iterations", 1)
    return check_count(iterations, "the criterion's iterations", 1)


def _step(
    model_or_modules: Any,
    targets: Sequence[Target],
    grouping: Granularity,
    scope: str,
    scorer: Criterion,
    how_many: HowMany,
) -> list[NewMasks]:
    """Score every target once and select with ``how_many``: the new masks, nothing written."""
    prepare = getattr(scorer, "prepare", None)
    if prepare is not None:
        prepare(model_or_modules, targets)
    scores = [_checked_scores(scorer, target) for target in targets]
    removals = select(targets, scores, grouping, scope, how_many)
    return _after_removals(targets, grouping, removals)


def prune_once(
    model_or_modules: Any,
    targets: Sequence[Target],
    grouping: Granularity,
    scope: str,
    scorer: Criterion,
    how_many: HowMany,
) -> None:
    """Score every target once, select with ``how_many`` per scope unit, write the masks.

    Every score is computed and every selection made before the first mask is written.
    """
    _write(targets, _step(model_or_modules, targets, grouping, scope, scorer, how_many))


def _current_masks(targets: Sequence[Target], grouping: Granularity) -> list[NewMasks]:
    bias = grouping.masks_bias
    return [
        (
            target.mask.clone(),
            None if not bias or target.bias_mask is None else target.bias_mask.clone(),
        )
        for target in targets
    ]


def _keyed(targets: Sequence[Target], new: Sequence[NewMasks]) -> dict[str, torch.Tensor]:
    masks = {}
    for target, (weight_mask, bias_mask) in zip(targets, new):
        masks[target.key()] = weight_mask
        if bias_mask is not None:
            masks[target.key("bias_mask")] = bias_mask
    return masks


@torch.no_grad()
def _write(targets: Sequence[Target], new: Sequence[NewMasks]) -> None:
    for target, (weight_mask, bias_mask) in zip(targets, new):
        target.mask.copy_(weight_mask)
        if bias_mask is not None and target.bias_mask is not None:
            target.bias_mask.copy_(bias_mask)


def _write_masks(targets: Sequence[Target], masks: dict[str, torch.Tensor]) -> int:
    """Copy ``masks`` (keyed as :func:`compute_masks` keys them) in; weights newly masked."""
    live: dict[str, torch.Tensor] = {}
    weight_keys = set()
    for target in targets:
        live[target.key()] = target.mask
        weight_keys.add(target.key())
        if target.bias_mask is not None:
            live[target.key("bias_mask")] = target.bias_mask
    for key, mask in masks.items():
        if key not in live or mask.shape != live[key].shape or mask.dtype != torch.bool:
            raise MaskError(f"no mask {key!r} of shape {tuple(mask.shape)} in the model")
    before = sum(int(live[key].sum()) for key in masks if key in weight_keys)
    with torch.no_grad():
        for key, mask in masks.items():
            live[key].copy_(mask)
    return before - sum(int(live[key].sum()) for key in masks if key in weight_keys)


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
    criterion: str | Criterion = "magnitude",
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


def _checked_scores(scorer: Criterion, target: Target) -> torch.Tensor:
    scores = scorer(target.module, target.weight_name)
    if not isinstance(scores, torch.Tensor):
        try:
            scores = torch.as_tensor(scores)
        except (TypeError, ValueError, RuntimeError):
            raise InputTypeError(
                f"the criterion returned {type(scores).__name__} for {target.name}; return a "
                "tensor (or array) of scores of the weight's shape"
            ) from None
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


def _after_removals(
    targets: Sequence[Target], grouping: Granularity, removals: Sequence[torch.Tensor]
) -> list[NewMasks]:
    """New masks without the removed groups (and their biases for output units)."""
    new: list[NewMasks] = []
    for target, removed in zip(targets, removals):
        mask = target.mask
        if grouping.kind in ("weight", "n:m"):
            new.append((mask & ~removed.reshape(mask.shape), None))
            continue
        group_size = mask.numel() // max(removed.numel(), 1)
        expanded = removed[:, None].expand(removed.numel(), group_size)
        weight_mask = mask & ~grouping.from_groups(expanded, mask.shape, target.conv_groups)
        bias_mask = target.bias_mask
        if grouping.masks_bias and bias_mask is not None:
            new.append((weight_mask, bias_mask & ~removed))
        else:
            new.append((weight_mask, None))
    return new
