"""Pruning speed on MaskedDeepFFN(784, 10, [1000, 1000]) (1.79M weights).

1. Global magnitude pruning of 50 %: ``pypaddle.prune.prune`` against
   ``torch.nn.utils.prune.global_unstructured`` with ``L1Unstructured`` on the same weights
   (same masks, checked), and against deepstruct's ``prune_network_by_saliency``.
2. 2:4 selection against ``torch.ao.pruning.WeightNormSparsifier`` with 1 x 4 blocks and 2
   zeros per block.
3. Half of the 2 x 4 blocks of every layer against the same sparsifier with 2 x 4 blocks
   (it scores blocks by L2 norm, pypaddle by L1; the work is the same).

Every pypaddle call starts from full masks (the refill is timed with it); every torch call
gets fresh modules around the same weight tensors, so both select from scratch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import nn
from torch.ao.pruning import WeightNormSparsifier
from torch.nn.utils import prune as torch_prune

import _deepstruct as deepstruct
from _table import Goal, Row, Table
from _timing import compare, time_once
from pypaddle.prune import prune
from pypaddle.sparse import MaskedDeepFFN, maskable_layers

SEED = 0


def _model() -> MaskedDeepFFN:
    torch.manual_seed(SEED)
    return MaskedDeepFFN(784, 10, [1000, 1000])


def _shells(model: MaskedDeepFFN) -> list[nn.Linear]:
    """nn.Linear modules holding the model's weight tensors themselves (nothing copied)."""
    shells = []
    for layer in maskable_layers(model):
        shell = nn.Linear(1, 1, bias=False)
        del shell.weight
        shell.weight = layer.weight
        shells.append(shell)
    return shells


def _fresh_shells(model: MaskedDeepFFN, count: int) -> Iterator[list[nn.Linear]]:
    return iter([_shells(model) for _ in range(count)])


def _refill(model: MaskedDeepFFN) -> None:
    with torch.no_grad():
        for layer in maskable_layers(model):
            layer.mask.fill_(True)
            layer.bias_mask.fill_(True)


def _pypaddle(model: MaskedDeepFFN, **options) -> Callable[[], None]:
    def call() -> None:
        _refill(model)
        prune(model, **options)

    return call


def _sparsifier(
    model: MaskedDeepFFN, count: int, **options
) -> tuple[Callable[[], None], list[nn.Sequential]]:
    """Sparsifiers prepared ahead on shells of the model's weights; the call runs step()."""
    prepared = []
    for _ in range(count):
        shells = nn.Sequential(*_shells(model))
        sparsifier = WeightNormSparsifier(**options)
        sparsifier.prepare(shells, [{"tensor_fqn": f"{i}.weight"} for i in range(len(shells))])
        prepared.append(sparsifier)
    sparsifiers = iter(prepared)
    return lambda: next(sparsifiers).step(), prepared


def run(table: Table, *, quick: bool) -> None:
    table.section("pruning MaskedDeepFFN(784, 10, [1000, 1000]): 1.79M weights")
    rounds = 5 if quick else 11
    calls = rounds + 3  # warm-up and calibration calls take from the same supply
    model = _model()

    shells = _fresh_shells(model, calls)

    def torch_global() -> list[nn.Linear]:
        modules = next(shells)
        torch_prune.global_unstructured(
            [(module, "weight") for module in modules],
            pruning_method=torch_prune.L1Unstructured,
            amount=0.5,
        )
        return modules

    ours = _pypaddle(model, amount=0.5)
    result = compare(ours, torch_global, rounds=rounds, warmup=1, number=1)
    check = _shells(model)
    torch_prune.global_unstructured(
        [(module, "weight") for module in check],
        pruning_method=torch_prune.L1Unstructured,
        amount=0.5,
    )
    same = all(
        torch.equal(module.weight_mask.bool(), layer.mask)
        for module, layer in zip(check, maskable_layers(model))
    )
    table.add(
        Row(
            "global magnitude 50%: pypaddle / torch global_unstructured",
            result.subject,
            result.reference,
            result.ratio,
            Goal(1.5, at_most=True),
            note="" if same else "WARNING: the masks differ from torch's",
        )
    )

    label = "global magnitude 50%: deepstruct / pypaddle"
    if quick:
        table.add(Row(label, result.subject, note="deepstruct: skipped (--quick)"))
    else:
        try:
            peer = deepstruct.ffn(784, 10, [1000, 1000])
            theirs = time_once(lambda: deepstruct.prune_by_magnitude(peer, 50))
        except deepstruct.Unavailable as error:
            table.add(Row(label, result.subject, note=f"deepstruct: not runnable here ({error})"))
        else:
            table.add(
                Row(
                    label,
                    result.subject,
                    theirs,
                    theirs / result.subject,
                    note="deepstruct timed once",
                )
            )

    for label, options, sparsifier_options in (
        (
            "2:4 selection: pypaddle / torch.ao WeightNormSparsifier",
            {"amount": None, "granularity": ("n:m", 2, 4)},
            {"sparsity_level": 1.0, "sparse_block_shape": (1, 4), "zeros_per_block": 2},
        ),
        (
            "50% of 2x4 blocks per layer: pypaddle / torch.ao sparsifier",
            {"amount": 0.5, "scope": "layer", "granularity": ("block", 2, 4)},
            {"sparsity_level": 0.5, "sparse_block_shape": (2, 4), "zeros_per_block": 8},
        ),
    ):
        reference, _ = _sparsifier(model, calls, **sparsifier_options)
        result = compare(_pypaddle(model, **options), reference, rounds=rounds, warmup=1, number=1)
        table.add(
            Row(label, result.subject, result.reference, result.ratio, Goal(1.0, at_most=True))
        )
