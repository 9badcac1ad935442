"""The demo job: train, prune and retrain a small-world MaskedDeepDAN on the digits.

``pypaddle demo`` runs :func:`run_demo`; see its docstring for what it does and writes.
"""

from __future__ import annotations

import importlib.util
import numbers
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import torch

from pypaddle._core.checks import check_count
from pypaddle.data import Split, digits
from pypaddle.errors import ConfigError
from pypaddle.experiments._progress import _console, _Progress, _progress_bars, _single_thread
from pypaddle.experiments._training import accuracy, train_epoch
from pypaddle.experiments.report import plot_accuracy_vs_density, results_table, write_results
from pypaddle.graph import CachedLayeredGraph
from pypaddle.prune import prune
from pypaddle.sparse import MaskedDeepDAN, MaskedLinearLayer, maskable_layers

__all__ = ["run_demo"]

# The structure: 4 layers of 64 neurons, each wired to a window of 8 neighbours in the next
# layer, one edge in ten rewired to a random later layer. It reaches ~97% on the digits.
_LAYERS = 4
_WIDTH = 64
_NEIGHBOURS = 8
_REWIRE_PROBABILITY = 0.1

GRAPHML_NAME = "pruned_structure.graphml"
PLOT_NAME = "accuracy_vs_density.png"


def _small_world_layered(
    layers: int, width: int, neighbours: int, rewire_probability: float, *, seed: int
) -> CachedLayeredGraph:
    """A layered Watts–Strogatz graph: ring lattices between layers, rewired to skip ahead.

    Vertex ``(l, i)`` is labelled ``l * width + i`` and is joined to ``(l + 1, (i + j) mod
    width)`` for the ``neighbours`` offsets ``j`` centred on 0. Each edge is rewired with
    probability ``rewire_probability`` to a vertex drawn uniformly from all later layers,
    which turns it into a long-range skip connection (or a random edge into the next
    layer, from the last-but-one layer). Vertices carry their lattice coordinates as
    ``lattice_layer`` and ``lattice_index`` (plain ints, so the graph writes to GraphML).

    Examples
    --------
    >>> graph = _small_world_layered(3, 4, 2, 0.0, seed=0)
    >>> sorted(graph.successors(0)), graph.nodes[5]
    ([4, 7], {'lattice_layer': 1, 'lattice_index': 1})
    """
    rng = np.random.default_rng(seed)
    source_layer = np.repeat(np.arange(layers - 1), width * neighbours)
    source_index = np.tile(np.repeat(np.arange(width), neighbours), layers - 1)
    offsets = np.tile(np.arange(neighbours) - neighbours // 2, (layers - 1) * width)
    sources = source_layer * width + source_index
    targets = (source_layer + 1) * width + (source_index + offsets) % width
    rewired = rng.random(sources.size) < rewire_probability
    later_vertices = (layers - 1 - source_layer[rewired]) * width
    targets[rewired] = (source_layer[rewired] + 1) * width + rng.integers(0, later_vertices)

    graph = CachedLayeredGraph()
    labels = np.arange(layers * width)
    graph.add_nodes_from(
        (label, {"lattice_layer": layer, "lattice_index": index})
        for label, layer, index in zip(
            labels.tolist(), (labels // width).tolist(), (labels % width).tolist()
        )
    )
    graph.add_edges_from(zip(sources.tolist(), targets.tolist()))
    return graph


def _edge_layers(model: MaskedDeepDAN) -> list[MaskedLinearLayer]:
    """The layers whose mask entries are the structure's edges (not input or output)."""
    return list(model.layers_main_hidden[1:])


def _active_edges(model: MaskedDeepDAN) -> int:
    return sum(layer.num_active_weights for layer in _edge_layers(model))


def _prune_edges_by_magnitude(model: MaskedDeepDAN, fraction: float) -> None:
    """Mask the ``fraction`` of active edge weights with the smallest magnitude, globally.

    :func:`pypaddle.prune.prune` over the edge layers with one global ranking; masked
    weights stay masked and are zeroed. The dense input and output layers are not pruned.
    """
    layers = _edge_layers(model)
    prune(layers, fraction, criterion="magnitude", scope="global")
    for layer in layers:
        layer.apply_mask()


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _train_and_prune(
    split: Split,
    structure: nx.DiGraph,
    *,
    seed: int,
    epochs: int,
    rounds: int,
    retrain_epochs: int,
    prune_fraction: float,
    batch_size: int,
    learning_rate: float,
    progress: _Progress,
) -> tuple[MaskedDeepDAN, list[dict[str, Any]]]:
    """The experiment itself, without files or printing: the final model and one dict per round."""
    structure_edges = structure.number_of_edges()
    batches = torch.Generator().manual_seed(seed)
    results: list[dict[str, Any]] = []
    with torch.random.fork_rng(devices=[]), _single_thread():
        torch.manual_seed(seed)
        model = MaskedDeepDAN(split.num_features, split.num_classes, structure)

        def train(description: str, count: int) -> float | None:
            optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
            task = progress.add(description, count)
            loss = None
            for _ in range(count):
                loss = train_epoch(
                    model,
                    optimizer,
                    split.x_train,
                    split.y_train,
                    batch_size=batch_size,
                    generator=batches,
                )
                progress.advance(task, loss)
            return loss

        for round_ in range(rounds + 1):
            if round_ == 0:
                before = None
                loss = train("round 0: dense", epochs)
            else:
                _prune_edges_by_magnitude(model, prune_fraction)
                before = accuracy(model, split.x_test, split.y_test)
                density = _active_edges(model) / structure_edges
                loss = train(f"round {round_}: {100 * density:5.1f}%", retrain_epochs)
            edges = _active_edges(model)
            results.append(
                {
                    "round": round_,
                    "edges": edges,
                    "density": edges / structure_edges,
                    "active_weights": sum(
                        layer.num_active_weights for layer in maskable_layers(model)
                    ),
                    "accuracy_before_retraining": before,
                    "accuracy": accuracy(model, split.x_test, split.y_test),
                    "train_loss": loss,
                }
            )
    return model, results


def run_demo(
    out_dir: str | Path = "demo-output",
    *,
    seed: int = 0,
    quiet: bool = False,
    epochs: int = 30,
    rounds: int = 5,
    retrain_epochs: int = 10,
    prune_fraction: float = 0.5,
    batch_size: int = 32,
    learning_rate: float = 3e-3,
) -> list[dict[str, Any]]:
    """Train a small-world MaskedDeepDAN on the digits, prune it in rounds, report and save.

    1. Build a seeded small-world layered graph (4 layers of 64 vertices, ring lattices of
       8 neighbours between consecutive layers, 10% of the edges rewired to random later
       layers) and a :class:`~pypaddle.sparse.MaskedDeepDAN` from it: 64 inputs feed the
       sources, the sinks feed 10 outputs.
    2. Train it densely for ``epochs`` epochs (Adam, no weight decay) on a stratified 75/25
       split of scikit-learn's digits (:func:`pypaddle.data.digits`).
    3. ``rounds`` times: mask the ``prune_fraction`` of the still-active *edge* weights
       with the smallest magnitude (one global threshold over the hidden-to-hidden layers,
       so the model's structure stays the pruned graph; the dense input and output layers
       are not pruned), then retrain for ``retrain_epochs`` epochs with a fresh optimizer.
       Masked weights get zero gradient, so retraining respects the masks.

    Everything random is drawn from ``seed`` (the graph, the split, the initial weights,
    the batches); the caller's global torch random state is left as it was. Training runs
    on one torch thread (the model is too small to gain from more; the caller's setting is
    restored), so the same seed gives the same numbers whatever the number of cores.

    Writes into ``out_dir`` (created if needed): ``pruned_structure.graphml`` (the final
    ``model.generate_structure()``, integer vertex labels, with the lattice coordinates as
    vertex attributes), ``accuracy_vs_density.png``, ``results.json`` and ``results.csv``.
    Unless ``quiet``, shows progress bars and prints a table of the rounds (needs rich).

    Parameters
    ----------
    out_dir : str or Path
        Folder for the output files.
    seed : int
        Seed of everything random, >= 0.
    quiet : bool
        Print nothing (and do not import rich).
    epochs : int
        Epochs of dense training, >= 1.
    rounds : int
        Pruning rounds after the dense training, >= 0.
    retrain_epochs : int
        Epochs of retraining after each pruning round, >= 0.
    prune_fraction : float
        Fraction of the active edge weights each round removes, in ``(0, 1)``.
    batch_size : int
        Samples per mini-batch, >= 1.
    learning_rate : float
        Adam's learning rate, > 0.

    Returns
    -------
    list of dict
        One dict per round (round 0 is the dense model) with ``round``, ``edges`` (active
        edge weights), ``density`` (``edges`` over the structure's edge count),
        ``active_weights`` (active weights of all masked layers, the dense input and
        output layers included),
        ``accuracy_before_retraining`` (``None`` for round 0), ``accuracy`` (held-out, after
        (re)training) and ``train_loss`` (mean over the last epoch, ``None`` if none ran).

    Raises
    ------
    ConfigError
        If an option is out of range, ``out_dir`` is a file, or an optional dependency is
        missing (scikit-learn and matplotlib always; rich unless ``quiet``). Nothing is
        written then.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     results = run_demo(folder, quiet=True, epochs=2, rounds=1, retrain_epochs=1)
    >>> [(result["round"], result["edges"]) for result in results]
    [(0, 1527), (1, 763)]
    """
    seed = check_count(seed, "seed", 0)
    epochs = check_count(epochs, "epochs", 1)
    rounds = check_count(rounds, "rounds", 0)
    retrain_epochs = check_count(retrain_epochs, "retrain_epochs", 0)
    batch_size = check_count(batch_size, "batch_size", 1)
    if not (_is_real(prune_fraction) and 0.0 < prune_fraction < 1.0):
        raise ConfigError(f"prune_fraction must be a float in (0, 1), got {prune_fraction!r}")
    if not (_is_real(learning_rate) and learning_rate > 0.0):
        raise ConfigError(f"learning_rate must be a float > 0, got {learning_rate!r}")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"out_dir {str(out_dir)!r} is a file; give a folder (new or existing)")
    if importlib.util.find_spec("matplotlib") is None:
        raise ConfigError(
            "the demo's plot needs matplotlib, which is not installed; install it with: "
            "pip install 'pypaddle[plot]'"
        )
    console = _console(quiet)

    split = digits(test_fraction=0.25, seed=seed)
    structure = _small_world_layered(_LAYERS, _WIDTH, _NEIGHBOURS, _REWIRE_PROBABILITY, seed=seed)
    with _progress_bars(console) as progress:
        model, results = _train_and_prune(
            split,
            structure,
            seed=seed,
            epochs=epochs,
            rounds=rounds,
            retrain_epochs=retrain_epochs,
            prune_fraction=prune_fraction,
            batch_size=batch_size,
            learning_rate=learning_rate,
            progress=progress,
        )

    out_dir.mkdir(parents=True, exist_ok=True)
    pruned = model.generate_structure()
    pruned.graph.update({"seed": seed, "rounds": rounds, "density": results[-1]["density"]})
    graphml_path = out_dir / GRAPHML_NAME
    nx.write_graphml(pruned, graphml_path)
    title = f"Magnitude pruning of a small-world DAN on digits (seed {seed})"
    plot_path = plot_accuracy_vs_density(results, out_dir / PLOT_NAME, title=title)
    data_paths = write_results(results, out_dir)

    if console is not None:
        console.print(results_table(results, title=title))
        for path in (graphml_path, plot_path, *data_paths):
            console.print(f"wrote {path}")
    return results
