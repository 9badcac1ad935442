"""pypaddle speed benchmarks: ratios against dense PyTorch and against deepstruct 0.10.

What is measured (CPU, batch 256, seeded inputs, at each thread count asked for):

1. ``MaskedDeepFFN(784, 10, [300, 100])`` forward+backward against an ``nn.Sequential``
   of ``nn.Linear`` / ``nn.ReLU`` of the same sizes (the cost of the masks).
2. ``MaskedDeepDAN`` forward+backward on a layered random DAG of 8 x 256 vertices (30 %
   density between consecutive layers) against a dense MLP of the same widths, and on
   the same DAG plus 5 % skip edges from every earlier layer against a dense network
   whose layers read the concatenation of all earlier layers.
3. Against deepstruct on a Newman-Watts-Strogatz(200, 4, 0.5) graph oriented from lower
   to higher label (about 200 layers deep): DAN forward+backward, DAN construction, and
   ``generate_structure()`` of ``MaskedDeepFFN(784, 10, [1000, 1000])``; plus pypaddle's
   DAN against a dense MLP of the same layer widths, for context.
4. The layer index of complete layered graphs (4 x 200 and 4 x 400 vertices):
   ``pypaddle.graph.layer_index`` against deepstruct's ``build_layer_index``.

Every row prints a ratio (first named / second named) with its goal and whether the goal
is met; the absolute medians per call are printed beside. Pairs are timed in interleaved
rounds with the garbage collector off; the ratio is the median of the per-round ratios.
deepstruct runs too slow to repeat are timed once; ``--quick`` skips the slowest of them.

Every section runs with 1 torch thread and with one per core (``--threads 1,all``, the
default; the sections whose time is Python's own run once, at the first count), and the
ratios measured at more than one thread count are printed side by side at the end.

Run with ``make bench`` (installs deepstruct without its dependencies) or
``python benchmarks/run.py [--quick] [--threads 1,all] [--only dan,deepstruct]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import warnings
from collections.abc import Callable, Iterator

import networkx as nx
import torch

import _deepstruct as deepstruct
import bench_cells
import bench_deploy
import bench_experiments
import bench_extract
import bench_prune
import bench_rnn
import pypaddle
from _dense import ConcatMLP, mlp
from _structures import complete_layered_graph, layered_random_dag, oriented_newman_watts_strogatz
from _table import Goal, Row, Table
from _timing import compare, median_time, time_once, train_step
from pypaddle.errors import StructureWarning
from pypaddle.graph import layer_index
from pypaddle.sparse import MaskedDeepDAN, MaskedDeepFFN

BATCH = 256
FEATURES = 784
OUTPUTS = 10
SEED = 0


def _inputs() -> torch.Tensor:
    return torch.randn(BATCH, FEATURES, generator=torch.Generator().manual_seed(SEED))


def _not_runnable(
    label: str, reason: str, *, goal: Goal | None = None, pypaddle: float | None = None
) -> Row:
    return Row(label, pypaddle, goal=goal, note=f"deepstruct: not runnable here ({reason})")


def _kernel(model: MaskedDeepDAN, inputs: torch.Tensor) -> str:
    """Which kernel ``kernel="auto"`` runs the DAN's hidden layers with on ``inputs``."""
    return f"{model._kernel_for(inputs)} kernel"


def _edges(graph: nx.DiGraph) -> str:
    return f" ({graph.number_of_edges() / 1000:.0f}k edges)"


def _fresh(make: Callable[[], nx.DiGraph], count: int) -> Iterator[nx.DiGraph]:
    """``count`` graphs made ahead of time, so that making them is not timed."""
    return iter([make() for _ in range(count)])


# -- 1. masked feed-forward network against nn.Linear ------------------------------------
def bench_ffn(table: Table, *, quick: bool = False) -> None:
    table.section("1. masked FFN vs dense, forward+backward, batch 256")
    inputs = _inputs()
    torch.manual_seed(SEED)
    masked = MaskedDeepFFN(FEATURES, OUTPUTS, [300, 100])
    dense = mlp([FEATURES, 300, 100, OUTPUTS])
    result = compare(train_step(masked, inputs), train_step(dense, inputs))
    table.add(
        Row(
            "FFN 784-300-100-10: masked / nn.Linear stack",
            result.subject,
            result.reference,
            result.ratio,
            Goal(1.10, at_most=True),
        )
    )


# -- 2. DAN on layered random DAGs against dense networks --------------------------------
def bench_layered_dan(table: Table, *, quick: bool = False) -> None:
    table.section("2. MaskedDeepDAN on a layered random DAG 8 x 256, forward+backward, batch 256")
    inputs = _inputs()
    widths = [256] * 8
    cases = [
        (
            "DAN 8x256 30%{edges}: pypaddle / dense MLP",
            0.0,
            mlp([FEATURES, *widths, OUTPUTS]),
        ),
        (
            "DAN 8x256 + skips{edges}: pypaddle / concat MLP",
            0.05,
            ConcatMLP(FEATURES, OUTPUTS, widths),
        ),
    ]
    for label, skip_density, dense in cases:
        structure = layered_random_dag(8, 256, density=0.3, skip_density=skip_density, seed=SEED)
        torch.manual_seed(SEED)
        model = MaskedDeepDAN(FEATURES, OUTPUTS, structure)
        if model.layer_widths != tuple(widths):
            raise AssertionError(f"the DAG has layers {model.layer_widths}, not 8 x 256")
        result = compare(train_step(model, inputs), train_step(dense, inputs))
        table.add(
            Row(
                label.format(edges=_edges(structure)),
                result.subject,
                result.reference,
                result.ratio,
                Goal(1.3, at_most=True),
                tag=_kernel(model, inputs),
            )
        )


# -- 3. against deepstruct on a deep small-world graph -----------------------------------
def bench_deepstruct_dan(table: Table, *, quick: bool) -> None:
    table.section("3. vs deepstruct: Newman-Watts-Strogatz(200, 4, 0.5), oriented low -> high")
    inputs = _inputs()
    structure = oriented_newman_watts_strogatz(200, 4, 0.5, seed=SEED)
    torch.manual_seed(SEED)
    model = MaskedDeepDAN(FEATURES, OUTPUTS, structure)
    depth = len(model.layer_widths)
    step = train_step(model, inputs)

    label = f"DAN fwd+bwd, {depth} layers: deepstruct / pypaddle"
    tag = _kernel(model, inputs)
    goal = Goal(40, at_most=False)
    torch_kernel = MaskedDeepDAN(FEATURES, OUTPUTS, structure, kernel="torch")
    torch_label = f"DAN fwd+bwd, {depth} layers, torch kernel: deepstruct / pypaddle"
    try:
        torch.manual_seed(SEED)
        peer = deepstruct.dan(FEATURES, OUTPUTS, deepstruct.layered_graph(structure))
        peer_step = train_step(peer, inputs)
        deepstruct.checked("MaskedDeepDAN forward+backward", peer_step)
    except deepstruct.Unavailable as error:
        ours = median_time(step, repeats=7)
        table.add(_not_runnable(label, str(error), goal=goal, pypaddle=ours))
    else:
        result = compare(step, peer_step)
        table.add(Row(label, result.subject, result.reference, 1 / result.ratio, goal, tag=tag))
        result = compare(train_step(torch_kernel, inputs), peer_step)
        table.add(Row(torch_label, result.subject, result.reference, 1 / result.ratio))

    dense = mlp([FEATURES, *model.layer_widths, OUTPUTS])
    result = compare(step, train_step(dense, inputs))
    table.add(
        Row(
            "DAN fwd+bwd: pypaddle / dense MLP, same widths",
            result.subject,
            result.reference,
            result.ratio,
            tag=tag,
        )
    )

    label = "DAN construction: deepstruct / pypaddle"
    rounds, number = 7, 3
    count = 1 + rounds * number  # one warm-up call, then the timed rounds
    graphs = _fresh(structure.copy, count)

    def build() -> MaskedDeepDAN:
        return MaskedDeepDAN(FEATURES, OUTPUTS, next(graphs))

    try:
        peer_graphs = _fresh(lambda: deepstruct.layered_graph(structure), count + 1)
        deepstruct.dan(FEATURES, OUTPUTS, next(peer_graphs))  # fails here if it cannot run
    except deepstruct.Unavailable as error:
        ours = median_time(build, repeats=rounds, number=number)
        table.add(_not_runnable(label, str(error), pypaddle=ours))
    else:
        result = compare(
            build,
            lambda: deepstruct.dan(FEATURES, OUTPUTS, next(peer_graphs)),
            rounds=rounds,
            warmup=1,
            number=number,
        )
        table.add(Row(label, result.subject, result.reference, 1 / result.ratio))

    label = "FFN 1000-1000 generate_structure: deepstruct / pypaddle"
    goal = Goal(8, at_most=False)
    torch.manual_seed(SEED)
    ffn = MaskedDeepFFN(FEATURES, OUTPUTS, [1000, 1000])
    ours = median_time(ffn.generate_structure, repeats=3 if quick else 5, number=1)
    if quick:
        table.add(Row(label, ours, goal=goal, note="deepstruct: skipped (--quick)"))
        return
    try:
        peer_ffn = deepstruct.ffn(FEATURES, OUTPUTS, [1000, 1000])
        theirs = time_once(lambda: deepstruct.generate_structure(peer_ffn))
    except deepstruct.Unavailable as error:
        table.add(_not_runnable(label, str(error), goal=goal, pypaddle=ours))
    else:
        table.add(Row(label, ours, theirs, theirs / ours, goal, note="deepstruct timed once"))


# -- 4. layer index of complete layered graphs -------------------------------------------
def bench_layer_index(table: Table, *, quick: bool) -> None:
    table.section("4. layer index of complete layered graphs")
    for width in (200, 400):
        _layer_index_case(table, complete_layered_graph(4, width), width, quick=quick)


def _layer_index_case(table: Table, graph: nx.DiGraph, width: int, *, quick: bool) -> None:
    label = f"layer index 4x{width}{_edges(graph)}: deepstruct / pypaddle"
    goal = Goal(20, at_most=False)
    ours = median_time(lambda: layer_index(graph), repeats=7)
    big = width == 400
    peer_layers = {}

    def peer_index() -> None:
        peer_layers["last"] = deepstruct.build_layer_index(graph)[0]

    if big and quick:
        table.add(Row(label, ours, goal=goal, note="deepstruct: skipped (--quick)"))
    else:
        try:
            if big:  # tens of seconds: once
                theirs = time_once(peer_index)
            else:
                theirs = median_time(peer_index, repeats=1 if quick else 3, warmup=0, number=1)
        except deepstruct.Unavailable as error:
            table.add(_not_runnable(label, str(error), goal=goal, pypaddle=ours))
        else:
            note = "deepstruct timed once" if big else ""
            if peer_layers["last"] != layer_index(graph)[0]:
                note = "WARNING: the two layer indices differ"
            table.add(Row(label, ours, theirs, theirs / ours, goal, note=note))
    if big:
        goal = Goal(0.5, at_most=True, on_seconds=True)
        table.add(Row(f"layer index 4x{width}: pypaddle time", ours, goal=goal))


SECTIONS: dict[str, Callable[..., None]] = {
    "ffn": bench_ffn,
    "dan": bench_layered_dan,
    "deepstruct": bench_deepstruct_dan,
    "layer-index": bench_layer_index,
    "prune": bench_prune.run,
    "rnn": bench_rnn.run,
    "cells": bench_cells.run,
    "deploy": bench_deploy.run,
    "experiments": bench_experiments.run,
    "extract": bench_extract.run,
}
# Sections whose time is in torch's (or the compiled DAN kernel's) arithmetic: they run at
# every thread count asked for. The others are Python-bound and run once, at the first.
THREADED = ("ffn", "dan", "deepstruct", "rnn", "cells")


def thread_counts(text: str) -> list[int]:
    """``"1,all"`` -> ``[1, cores]``: torch thread counts, ``all`` for every core."""
    cores = os.cpu_count() or 1
    counts = []
    for part in text.split(","):
        part = part.strip()
        count = cores if part == "all" else int(part) if part.isdigit() else 0
        if not 1 <= count <= cores:
            raise argparse.ArgumentTypeError(
                f"thread count {part!r} is not a whole number from 1 to {cores} (the cores "
                "of this machine) or 'all'"
            )
        if count not in counts:
            counts.append(count)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the slowest deepstruct runs")
    parser.add_argument(
        "--threads",
        type=thread_counts,
        default="1,all",
        help="comma-separated torch thread counts, 'all' for every core (default: 1,all)",
    )
    parser.add_argument(
        "--only",
        metavar="SECTIONS",
        help=f"comma-separated sections to run, of: {', '.join(SECTIONS)} (default: all)",
    )
    args = parser.parse_args(argv)
    chosen = list(SECTIONS) if args.only is None else args.only.split(",")
    unknown = [name for name in chosen if name not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")

    # The benchmark graphs are what they are: a DAN's warnings about learning do not apply.
    warnings.filterwarnings("ignore", category=StructureWarning)
    try:
        peer = f"deepstruct {deepstruct.version()}"
    except deepstruct.Unavailable as error:
        peer = f"deepstruct: not runnable here ({error})"
    counts = ", ".join(map(str, args.threads))
    print(
        f"pypaddle {pypaddle.__version__} | torch {torch.__version__} with {counts} "
        f"thread(s) (of {os.cpu_count()} cores) | Python {platform.python_version()} | {peer}"
    )
    print(
        "times are medians per call; a pair is timed in interleaved rounds and its ratio is "
        "the median of the per-round ratios\n"
    )
    table = Table()
    for index, threads in enumerate(args.threads):
        torch.set_num_threads(threads)
        table.threads = threads
        sections = [name for name in chosen if index == 0 or name in THREADED]
        if not sections:
            continue
        print(f"\n=== torch with {threads} thread(s) ===", flush=True)
        for name in sections:
            SECTIONS[name](table, quick=args.quick)
    table.summary()
    table.by_threads()
    return 0


if __name__ == "__main__":
    sys.exit(main())
