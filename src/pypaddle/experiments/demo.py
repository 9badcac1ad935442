"""The demo: a built-in experiment config, run by the engine of ``pypaddle run``.

``pypaddle demo`` runs :func:`run_demo`: the example ``demo`` shipped with the package
(:mod:`pypaddle.experiments.examples`; a small-world :class:`~pypaddle.sparse.MaskedDeepDAN`
on the digits, magnitude-pruned in rounds), with the demo's options written over its keys. Training,
pruning and every file written are those of :func:`~pypaddle.experiments.run_experiment`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pypaddle._core.checks import check_count, check_real
from pypaddle.errors import ConfigError
from pypaddle.experiments import examples
from pypaddle.experiments.config import ExperimentConfig, parse_config
from pypaddle.experiments.run import run_experiment

__all__ = ["builtin_config", "demo_config", "run_demo"]


def builtin_config(name: str = "demo") -> dict[str, Any]:
    """The example config ``name`` as a dict (a fresh copy, free to change).

    The files ship inside the package (:mod:`pypaddle.experiments.examples`); this is
    :func:`pypaddle.experiments.examples.table` under the name the demo has used since 0.4.

    Examples
    --------
    >>> table = builtin_config("demo")
    >>> table["model"]["structure"]["generator"], table["sparsify"]["rounds"]
    ('small_world_layered', 5)
    """
    return examples.table(name)


def demo_config(
    *,
    seed: int = 0,
    epochs: int | None = None,
    rounds: int | None = None,
    retrain_epochs: int | None = None,
    prune_fraction: float | None = None,
    batch_size: int | None = None,
    learning_rate: float | None = None,
) -> ExperimentConfig:
    """The demo's experiment: the built-in ``demo`` config with the given options over it.

    An option left ``None`` keeps the built-in value. Each maps onto one key: ``seed``,
    ``training.epochs``, ``training.batch_size``, ``training.learning_rate``,
    ``sparsify.rounds``, ``sparsify.retrain_epochs`` and ``sparsify.amount`` (the fraction
    of the still-active edges each round removes); ``rounds=0`` trains densely
    (``sparsify.method = "none"``).

    Raises
    ------
    ConfigError
        Naming the option, if one is out of range or of the wrong type.

    Examples
    --------
    >>> config = demo_config(seed=3, rounds=2)
    >>> config.seed, config.sparsify.name, config.sparsify.options.rounds
    (3, 'iterative', 2)
    >>> demo_config(rounds=0).sparsify.name
    'none'
    """
    table = builtin_config("demo")
    training, sparsify = table["training"], table["sparsify"]
    table["seed"] = check_count(seed, "seed", 0)
    if epochs is not None:
        training["epochs"] = check_count(epochs, "epochs", 1)
    if batch_size is not None:
        training["batch_size"] = check_count(batch_size, "batch_size", 1)
    if learning_rate is not None:
        training["learning_rate"] = check_real(
            learning_rate, "learning_rate", minimum=0.0, open_minimum=True
        )
    if retrain_epochs is not None:
        sparsify["retrain_epochs"] = check_count(retrain_epochs, "retrain_epochs", 0)
    if prune_fraction is not None:
        sparsify["amount"] = check_real(
            prune_fraction,
            "prune_fraction",
            minimum=0.0,
            maximum=1.0,
            open_minimum=True,
            open_maximum=True,
        )
    if rounds is not None:
        sparsify["rounds"] = check_count(rounds, "rounds", 0)
    if sparsify["rounds"] == 0:
        table["sparsify"] = {"method": "none"}
    return parse_config(table)


def run_demo(
    out_dir: str | Path = "demo-output",
    *,
    seed: int = 0,
    quiet: bool = False,
    epochs: int | None = None,
    rounds: int | None = None,
    retrain_epochs: int | None = None,
    prune_fraction: float | None = None,
    batch_size: int | None = None,
    learning_rate: float | None = None,
) -> list[dict[str, Any]]:
    """Train a small-world MaskedDeepDAN on the digits, prune it in rounds, report and save.

    Runs the built-in experiment ``demo`` (see :func:`demo_config`) with
    :func:`~pypaddle.experiments.run_experiment`; its values, which the options override:

    1. A seeded small-world layered graph (:func:`pypaddle.graph.small_world_layered`:
       4 layers of 64 vertices, ring lattices of 8 neighbours between consecutive layers,
       10% of the edges rewired to random later layers) and a
       :class:`~pypaddle.sparse.MaskedDeepDAN` from it: 64 inputs feed the sources, the
       sinks feed 10 outputs.
    2. Dense training for ``epochs`` = 30 epochs (Adam, learning rate 0.003, batches of 32)
       on a stratified 75/25 split of scikit-learn's digits (:func:`pypaddle.data.digits`).
    3. ``rounds`` = 5 times: mask the ``prune_fraction`` = 0.5 of the still-active *edge*
       weights with the smallest magnitude (one global threshold over the
       hidden-to-hidden layers, so the model's structure stays the pruned graph; the dense
       input and output layers are not pruned), then retrain for ``retrain_epochs`` = 10
       epochs with a fresh optimizer. Masked weights get zero gradient.

    Everything random is drawn from ``seed``; the caller's global torch random state and
    thread count are left as they were, and the same seed gives the same numbers.

    ``out_dir`` becomes an experiment folder, as ``pypaddle run`` writes it: ``result.json``
    (the rounds as JSON), ``summary.csv`` (one row per round), ``metrics.jsonl``,
    ``structures/prior.graphml`` and ``structures/round-R.graphml`` (the pruned structure
    after the last round, with the lattice coordinates as vertex attributes),
    ``plots/accuracy_vs_density.png`` and the other plots, ``checkpoints/round-R.pt`` and
    ``config.toml``. It may be new, empty or hold this same demo run (it is run again).
    Unless ``quiet``, shows progress bars and prints a table of the rounds (needs rich).

    Parameters
    ----------
    out_dir : str or Path
        Folder for the output files.
    seed : int
        Seed of everything random, >= 0.
    quiet : bool
        Print nothing (and do not import rich).
    epochs, rounds, retrain_epochs, prune_fraction, batch_size, learning_rate
        Overrides of the built-in config (``None``: its value); see :func:`demo_config`.

    Returns
    -------
    list of dict
        One record per round (round 0 is the dense model) as
        :func:`~pypaddle.experiments.run_experiment` returns them, with ``round``,
        ``edges`` (active edge weights), ``density`` (``edges`` over the structure's edge
        count), ``active_weights`` (of all masked layers, the dense input and output
        layers included), ``accuracy_before_retraining`` (``None`` for round 0),
        ``accuracy`` (held-out, after (re)training), ``train_loss`` and ``test_loss``.

    Raises
    ------
    ConfigError
        If an option is out of range, ``out_dir`` is a file or holds something else, or an
        optional dependency is missing (scikit-learn and matplotlib always; rich unless
        ``quiet``). Nothing is written then.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     results = run_demo(folder, quiet=True, epochs=2, rounds=1, retrain_epochs=1)
    >>> [(result["round"], result["edges"]) for result in results]
    [(0, 1527), (1, 763)]
    """
    config = demo_config(
        seed=seed,
        epochs=epochs,
        rounds=rounds,
        retrain_epochs=retrain_epochs,
        prune_fraction=prune_fraction,
        batch_size=batch_size,
        learning_rate=learning_rate,
    )
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"out_dir {str(out_dir)!r} is a file; give a folder (new or existing)")
    return run_experiment(config, out_dir, quiet=quiet)
