"""Selection: turn scores into the weights (or groups of weights) to remove.

Every granularity is a reshaping of a weight-shaped tensor into ``[groups, group size]``
and back, so scores, masks and removals of any granularity go through the same two
vectorised steps: reduce scores per group, pick the lowest-scored active groups.

Tie rule
--------
Among equal scores, the group that comes *first* is removed first: modules in the order
they were given (model order for a model), then the row-major order of the groups within
a weight. Selection finds the k-th smallest score with one ``torch.kthvalue`` over all
scores, removes every active group scored below it and, of those scored exactly at it,
the first ones in that order.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from pypaddle.errors import ConfigError, InputTypeError

__all__ = [
    "GRANULARITIES",
    "Granularity",
    "check_amount",
    "count_to_remove",
    "lowest",
    "parse_granularity",
]

GRANULARITIES = (
    "weight",
    "neuron",
    "input",
    "channel",
    "filter",
    "kernel",
    '("block", h, w)',
    '("n:m", n, m)',
)
"""The groups pruning removes (the orders of sparsity), as ``granularity`` takes them."""


@dataclass(frozen=True)
class Granularity:
    """How the weights of one masked parameter form groups that are removed together.

    ``kind`` is one of ``weight``, ``neuron``, ``input``, ``channel``, ``filter``,
    ``kernel``, ``block`` (with ``shape`` = ``(h, w)``) or ``n:m`` (with ``shape`` =
    ``(n, m)``). Blocks and N:M groups are laid over the weight seen as a matrix
    ``[outputs, everything else]`` (for a convolution: a filter per row).
    """

    kind: str
    shape: tuple[int, int] = (1, 1)

    @property
    def masks_bias(self) -> bool:
        """Whether removing a group removes an output unit, and with it its bias."""
        return self.kind in ("neuron", "channel", "filter")

    @property
    def is_n_m(self) -> bool:
        return self.kind == "n:m"

    def check(self, weight_shape: torch.Size, where: str) -> None:
        """Raise ConfigError if this granularity cannot group a weight of this shape."""
        rows = weight_shape[0]
        columns = math.prod(weight_shape[1:])
        if self.kind == "block":
            height, width = self.shape
            if rows % height or columns % width:
                raise ConfigError(
                    f"blocks of {height} x {width} do not tile the weight of {where}, seen as "
                    f"a {rows} x {columns} matrix: {rows % height} row(s) and {columns % width} "
                    "column(s) would be left at the border as partial blocks, which pypaddle "
                    f"does not prune; choose a block shape that divides {rows} x {columns}"
                )
        elif self.kind == "n:m":
            _n, m = self.shape
            if columns % m:
                raise ConfigError(
                    f"groups of {m} consecutive weights do not tile the rows of {where} "
                    f"({columns} weights per output): the last {columns % m} of each row would "
                    "form a partial group, which pypaddle does not prune; choose an m that "
                    f"divides {columns}"
                )
        elif self.kind == "input" and len(weight_shape) < 2:
            raise ConfigError(f"{where} has a 1-D weight, which has no inputs to prune")

    def to_groups(self, tensor: torch.Tensor, conv_groups: int = 1) -> torch.Tensor:
        """``tensor`` (of the weight's shape) as ``[groups, group size]``.

        ``conv_groups`` is a grouped convolution's ``groups``: its weight
        ``[out, in / groups, ...]`` reads input channel ``g * in / groups + j`` in column
        ``j`` of the filters of group ``g``, so the inputs are numbered that way.
        """
        shape = tensor.shape
        if self.kind == "weight":
            return tensor.reshape(-1, 1)
        if self.kind in ("neuron", "channel", "filter"):
            return tensor.reshape(shape[0], -1)
        if self.kind == "input":
            per_group = tensor.reshape(conv_groups, shape[0] // conv_groups, shape[1], -1)
            return per_group.movedim(2, 1).reshape(conv_groups * shape[1], -1)
        if self.kind == "kernel":
            return tensor.reshape(shape[0] * (shape[1] if tensor.dim() > 1 else 1), -1)
        if self.kind == "block":
            height, width = self.shape
            rows, columns = shape[0], math.prod(shape[1:])
            blocks = tensor.reshape(rows // height, height, columns // width, width)
            return blocks.permute(0, 2, 1, 3).reshape(-1, height * width)
        # n:m
        return tensor.reshape(-1, self.shape[1])

    def from_groups(
        self, groups: torch.Tensor, shape: torch.Size, conv_groups: int = 1
    ) -> torch.Tensor:
        """The inverse of :meth:`to_groups`."""
        if self.kind == "input":
            moved = (conv_groups, shape[1], shape[0] // conv_groups, -1)
            return groups.reshape(moved).movedim(1, 2).reshape(shape)
        if self.kind == "block":
            height, width = self.shape
            rows, columns = shape[0], math.prod(shape[1:])
            blocks = groups.reshape(rows // height, columns // width, height, width)
            return blocks.permute(0, 2, 1, 3).reshape(shape)
        return groups.reshape(shape)

    def __str__(self) -> str:
        if self.kind in ("block", "n:m"):
            return f'("{self.kind}", {self.shape[0]}, {self.shape[1]})'
        return f'"{self.kind}"'


def _positive(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ConfigError(f"{what} must be a positive int, got {value!r}")
    return int(value)


def parse_granularity(granularity: Any) -> Granularity:
    """A :class:`Granularity` from a name or a ``("block", h, w)`` / ``("n:m", n, m)`` tuple."""
    if isinstance(granularity, Granularity):
        return granularity
    valid = ", ".join(GRANULARITIES)
    if isinstance(granularity, str):
        if granularity in ("block", "n:m"):
            raise ConfigError(
                f'the "{granularity}" granularity needs its shape: give ("block", h, w) or '
                '("n:m", n, m)'
            )
        if granularity not in GRANULARITIES:
            raise ConfigError(f"unknown granularity {granularity!r}; valid: {valid}")
        return Granularity(granularity)
    if isinstance(granularity, Sequence) and len(granularity) == 3:
        kind, first, second = granularity
        if kind == "block":
            return Granularity("block", (_positive(first, "h"), _positive(second, "w")))
        if kind == "n:m":
            n, m = _positive(first, "n"), _positive(second, "m")
            if n > m:
                raise ConfigError(
                    f"N:M keeps n out of every m weights, so n <= m is needed; got n={n}, m={m}"
                )
            return Granularity("n:m", (n, m))
    raise ConfigError(f"unknown granularity {granularity!r}; valid: {valid}")


def check_amount(amount: Any) -> float | int:
    """``amount`` if it is a fraction in [0, 1] or a non-negative count, else an error."""
    if isinstance(amount, bool) or not isinstance(amount, numbers.Real):
        raise InputTypeError(
            f"amount must be a float in [0, 1] (a fraction) or an int >= 0 (a count), "
            f"got {amount!r}"
        )
    if isinstance(amount, numbers.Integral):
        if amount < 0:
            raise ConfigError(f"amount as a count must be >= 0, got {amount}")
        return int(amount)
    if not 0.0 <= float(amount) <= 1.0:
        raise ConfigError(f"amount as a fraction must be in [0, 1], got {amount}")
    return float(amount)


def count_to_remove(amount: float | int, active: int, what: str) -> int:
    """How many of ``active`` units ``amount`` removes, rounded as torch.nn.utils.prune does."""
    count = amount if isinstance(amount, int) else round(amount * active)
    if count > active:
        raise ConfigError(
            f"amount={amount} asks to remove {count} {what}, but only {active} are still "
            f"active; give at most {active} (or a fraction)"
        )
    return count


def lowest(scores: torch.Tensor, active: torch.Tensor, count: int) -> torch.Tensor:
    """Bool vector marking the ``count`` active entries with the lowest scores.

    One ``kthvalue`` over all entries (inactive ones scored ``+inf``), then ties at the
    threshold are resolved by position: the first ones are taken (see the module's tie
    rule). ``scores`` and ``active`` are 1-D; ``count`` is at most ``active.sum()``.
    """
    chosen = torch.zeros_like(active)
    if count <= 0:
        return chosen
    ranked = scores.masked_fill(~active, math.inf)
    threshold = ranked.kthvalue(count).values
    chosen = ranked < threshold
    missing = count - int(chosen.sum())
    if missing > 0:
        at_threshold = (ranked == threshold) & active
        if int(at_threshold.sum()) > missing:
            at_threshold &= at_threshold.cumsum(0) <= missing
        chosen |= at_threshold
    return chosen
