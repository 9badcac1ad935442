"""Measure the CPU DAN kernels' costs and print them next to the cost model's constants.

``kernel="auto"`` picks the compiled (numba) or the torch kernel for a DAN's hidden layers
by two estimates (``_dan_numba.cost`` and ``_dan_kernel.cpu_cost``), whose constants are
measured on one machine. This script measures them again, on several seeded graphs, at 1
thread and at every core: a training step (forward + backward, batch 256) with each
kernel, minus the same step of a dense net with the same first layer (layer 0, the output
layer and autograd cost the same whichever kernel runs the hidden layers), gives each
kernel's seconds for the hidden layers. From these:

- compiled: seconds per active entry and sample at 1 thread (``ENTRY_SECONDS``), and the
  speed-up its blocks of samples reach at every core, as the fraction of a core each
  block after the first adds (``BLOCK_EFFICIENCY``), on the graphs whose work is shared;
- torch: seconds per packed entry and sample, and per layer (``PACKED_ENTRY_SECONDS``,
  ``LAYER_SECONDS``), a least-squares fit at 1 thread, and the speed-up of its BLAS
  products at every core (``BLAS_EFFICIENCY``), on the graphs where they are most of it.

Then, for every graph and thread count, which kernel was faster and which ``auto`` picks.
Run it on a quiet machine: ``python benchmarks/calibrate_kernels.py [--quick]``.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import networkx as nx
import numpy as np
import torch
from torch import nn

from _structures import layered_random_dag, oriented_newman_watts_strogatz
from _timing import Timed, train_step
from pypaddle.errors import StructureWarning
from pypaddle.sparse import MaskedDeepDAN
from pypaddle.sparse import _dan_kernel as torch_kernel
from pypaddle.sparse import _dan_numba as compiled

FEATURES, OUTPUTS, BATCH, SEED = 784, 10, 256, 0

GRAPHS: dict[str, Callable[[], nx.DiGraph]] = {
    "8 x 256, 30 %": lambda: layered_random_dag(8, 256, density=0.3, seed=SEED),
    "8 x 256, 30 % + 5 % skips": lambda: layered_random_dag(
        8, 256, density=0.3, skip_density=0.05, seed=SEED
    ),
    "16 x 64, 20 % + 5 % skips": lambda: layered_random_dag(
        16, 64, density=0.2, skip_density=0.05, seed=SEED
    ),
    "4 x 512, 10 %": lambda: layered_random_dag(4, 512, density=0.1, seed=SEED),
    "NWS(200, 4, 0.5)": lambda: oriented_newman_watts_strogatz(200, 4, 0.5, seed=SEED),
}


@dataclass(frozen=True)
class Measured:
    """Seconds of the hidden layers per training step with each kernel."""

    graph: str
    threads: int
    active: int
    packed: int
    layers: int
    blocks: int
    compiled: float
    torch: float
    auto: str


def best_time(function: Timed, repeats: int) -> float:
    """The fastest of ``repeats`` blocks of calls (seconds per call): on a shared machine a
    burst of load only ever makes a block slower, so the fastest block is the cost."""
    function()
    start = time.perf_counter()
    function()
    number = max(1, math.ceil(0.02 / max(time.perf_counter() - start, 1e-9)))
    best = math.inf
    gc.collect()
    gc.disable()
    try:
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(number):
                function()
            best = min(best, (time.perf_counter() - start) / number)
    finally:
        gc.enable()
    return best


def _hidden_seconds(model: MaskedDeepDAN, inputs: torch.Tensor, repeats: int) -> dict[str, float]:
    width = model.layer_widths[0]
    torch.manual_seed(SEED)
    dense = nn.Sequential(nn.Linear(FEATURES, width), nn.ReLU(), nn.Linear(width, OUTPUTS))
    base = best_time(train_step(dense, inputs), repeats)
    seconds = {}
    for kernel in ("compiled", "torch"):
        model.kernel = kernel
        seconds[kernel] = max(best_time(train_step(model, inputs), repeats) - base, 0.0)
    model.kernel = "auto"
    return seconds


def measure(thread_counts: list[int], repeats: int) -> list[Measured]:
    inputs = torch.randn(BATCH, FEATURES, generator=torch.Generator().manual_seed(SEED))
    rows = []
    for name, build in GRAPHS.items():
        torch.manual_seed(SEED)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", StructureWarning)  # NWS: deep and narrow, on purpose
            model = MaskedDeepDAN(FEATURES, OUTPUTS, build())
        edges = model._active_edges()
        plan = model.plan
        active = int(edges[0][-1])
        for threads in thread_counts:
            torch.set_num_threads(threads)
            seconds = _hidden_seconds(model, inputs, repeats)
            rows.append(
                Measured(
                    graph=name,
                    threads=threads,
                    active=active,
                    packed=plan.blocks[-1][1] - plan.blocks[0][1],
                    layers=len(plan.writes) - 1,
                    blocks=compiled.blocks(BATCH, threads, active),
                    compiled=seconds["compiled"],
                    torch=seconds["torch"],
                    auto="compiled" if compiled.preferred(plan, edges, BATCH, threads) else "torch",
                )
            )
            print(
                f"  {name:28s} {threads} thread(s): compiled {seconds['compiled'] * 1e3:6.2f} ms,"
                f" torch {seconds['torch'] * 1e3:6.2f} ms",
                flush=True,
            )
    return rows


def report(rows: list[Measured]) -> None:
    one = [row for row in rows if row.threads == 1]
    many = [row for row in rows if row.threads > 1]
    print("\nconstant                        measured             model")
    entry = [row.compiled / (row.active * BATCH) for row in one]
    print(
        f"ENTRY_SECONDS                   {statistics.median(entry):.3g}"
        f" (graphs {min(entry):.3g} - {max(entry):.3g})   {compiled.ENTRY_SECONDS:.3g}"
    )
    # torch kernel, 1 thread: seconds = packed entries * batch * a + layers * b
    design = np.array([[row.packed * BATCH, row.layers] for row in one], dtype=float)
    target = np.array([row.torch for row in one])
    (packed_seconds, layer_seconds), *_ = np.linalg.lstsq(design, target, rcond=None)
    print(
        f"PACKED_ENTRY_SECONDS            {packed_seconds:.3g}"
        f"                {torch_kernel.PACKED_ENTRY_SECONDS:.3g}"
    )
    print(
        f"LAYER_SECONDS                   {layer_seconds:.3g}"
        f"                {torch_kernel.LAYER_SECONDS:.3g}"
    )
    by_graph = {row.graph: row for row in one}
    shared = [row for row in many if row.blocks > 1]
    if shared:
        gains = [
            (by_graph[row.graph].compiled / row.compiled - 1)
            / (min(row.blocks, os.cpu_count() or 1) - 1)
            for row in shared
        ]
        print(
            f"BLOCK_EFFICIENCY                {statistics.median(gains):.2f}"
            f" (graphs {min(gains):.2f} - {max(gains):.2f})   {compiled.BLOCK_EFFICIENCY:.2f}"
        )
    if many:
        # Only the BLAS part divides over the threads: the calls per layer stay.
        blas = [
            ((by_graph[row.graph].torch - layer_seconds * row.layers)
             / (row.torch - layer_seconds * row.layers) - 1)
            / (min(row.threads, os.cpu_count() or 1) - 1)
            for row in many
            if row.torch - layer_seconds * row.layers > 0.2 * row.torch
        ]  # fmt: skip
        if blas:
            print(
                f"BLAS_EFFICIENCY                 {statistics.median(blas):.2f}"
                f" (graphs {min(blas):.2f} - {max(blas):.2f})   {torch_kernel.BLAS_EFFICIENCY:.2f}"
            )
    print("\ngraph                         threads  compiled / torch  faster     auto picks")
    for row in rows:
        faster = "compiled" if row.compiled < row.torch else "torch"
        flag = "" if faster == row.auto else "  <- differs"
        ratio = row.compiled / row.torch if row.torch > 0 else float("inf")
        print(f"{row.graph:30s} {row.threads:5d}  {ratio:14.2f}x  {faster:9s}  {row.auto}{flag}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (10, not 30)")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    counts = [1] if cores == 1 else [1, cores]
    print(f"torch {torch.__version__}, {cores} cores, batch {BATCH}; hidden-layer seconds per step")
    report(measure(counts, repeats=10 if args.quick else 30))


if __name__ == "__main__":
    main()
