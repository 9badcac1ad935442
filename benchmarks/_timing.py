"""Timing helpers: warm-up, garbage collector off while timing, medians over repeats.

Two candidates are compared in interleaved rounds (the order alternates every round), so
that a burst of load on a shared machine hits both; the ratio is the median of the
per-round ratios.
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = ["Comparison", "compare", "median_time", "time_once", "train_step"]

Timed = Callable[[], Any]


def train_step(
    model: nn.Module,
    inputs: torch.Tensor,
    output: Callable[[Any], torch.Tensor] = lambda result: result,
) -> Timed:
    """One forward + backward pass of ``model`` on ``inputs`` (``output`` picks the tensor
    to sum from what the model returns), as a training loop runs it.

    The gradients are reset first the way a training loop resets them, by an optimizer
    over the model's parameters (``zero_grad(set_to_none=True)``, torch's default), not by
    ``model.zero_grad()``, which walks every submodule in Python: so a deep graph's
    hundreds of layer modules, which hold no parameters of their own, cost the same in
    every library timed here as in training. On a CUDA input the step waits for the device.
    """
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    synchronize = inputs.device.type == "cuda"

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        output(model(inputs)).sum().backward()
        if synchronize:
            torch.cuda.synchronize(inputs.device)

    return step


@dataclass(frozen=True)
class Comparison:
    """Median seconds per call of a subject and a reference, and subject / reference."""

    subject: float
    reference: float
    ratio: float


def _block(function: Timed, number: int) -> float:
    """Seconds per call over ``number`` back-to-back calls, collector off.

    Results stay alive until the clock has stopped, so freeing a large result (a graph
    with a million edges) is not charged to the call.
    """
    results = []
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(number):
            results.append(function())
        elapsed = time.perf_counter() - start
    finally:
        gc.enable()
    del results
    return elapsed / number


def _calls_per_block(function: Timed, block_seconds: float) -> int:
    """How many calls of ``function`` fill about ``block_seconds`` (at least one).

    Counted from the fastest of three calls: the first call after other work can take
    several times as long as the rest (measured: 2.6 ms, then 1.0 ms, then 0.6 ms for the
    200-layer DAN right after a deepstruct step), and a count made from it would give
    blocks so short that this cold start weighs on every call of them.
    """
    once = min(_block(function, 1) for _ in range(3))
    return max(1, math.ceil(block_seconds / max(once, 1e-9)))


def time_once(function: Timed) -> float:
    """Seconds for one call (for runs too slow to repeat)."""
    return _block(function, 1)


def median_time(
    function: Timed, *, repeats: int = 5, warmup: int = 1, number: int | None = None
) -> float:
    """Median seconds per call over ``repeats`` blocks of ``number`` calls after warm-up."""
    for _ in range(warmup):
        function()
    if number is None:
        number = _calls_per_block(function, 0.05)
    return statistics.median(_block(function, number) for _ in range(repeats))


def compare(
    subject: Timed,
    reference: Timed,
    *,
    rounds: int = 31,
    warmup: int = 2,
    number: int | None = None,
    block_seconds: float = 0.03,
) -> Comparison:
    """Time ``subject`` against ``reference`` in interleaved rounds.

    Each round times a block of calls of each, alternating which goes first: ``number``
    calls of both when given, otherwise as many calls of each as fill about
    ``block_seconds``. Calibrating each side on its own matters when their speeds differ
    a lot: a fast model timed one call at a time right after a slow one would always run
    with the caches the slow one left cold, which no real workload does.
    """
    for _ in range(warmup):
        subject()
        reference()
    if number is None:
        subject_number = _calls_per_block(subject, block_seconds)
        reference_number = _calls_per_block(reference, block_seconds)
    else:
        subject_number = reference_number = number
    subject_times, reference_times, ratios = [], [], []
    for round_ in range(rounds):
        if round_ % 2 == 0:
            subject_time = _block(subject, subject_number)
            reference_time = _block(reference, reference_number)
        else:
            reference_time = _block(reference, reference_number)
            subject_time = _block(subject, subject_number)
        subject_times.append(subject_time)
        reference_times.append(reference_time)
        ratios.append(subject_time / reference_time)
    return Comparison(
        subject=statistics.median(subject_times),
        reference=statistics.median(reference_times),
        ratio=statistics.median(ratios),
    )
