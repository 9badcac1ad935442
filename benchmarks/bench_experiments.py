"""What the experiment engine costs on top of training: ``run_experiment`` vs a bare loop.

The same experiment (digits, LeNet-300-100 as ``MaskedDeepFFN(64, 10, [300, 100])``, 4
epochs, then 2 rounds of magnitude pruning with 2 epochs of retraining each) runs through
``run_experiment`` and as a hand-written loop over the same model, optimizer, batches and
pruning calls that writes nothing. The engine validates the config, evaluates before and
after every round, writes metrics.jsonl, summary.csv, result.json and a checkpoint with
masks per round (no plots): the first row. The second adds its default GraphML files
(the prior and the final structure, 30,000 and 15,000 edges), written by
``pypaddle.graph.write``.
"""

from __future__ import annotations

import tempfile

import torch

from _table import Goal, Row, Table
from _timing import compare
from pypaddle.experiments import prepare, run_experiment
from pypaddle.experiments._training import evaluate, train_epoch
from pypaddle.prune import prune

CONFIG = {
    "seed": 0,
    "model": {"name": "ffn", "hidden_layers": [300, 100]},
    "training": {"epochs": 4, "batch_size": 32, "learning_rate": 0.003},
    "sparsify": {"method": "iterative", "rounds": 2, "amount": 0.5, "retrain_epochs": 2},
    "evaluation": {"plots": False, "structures": "none"},
}


def _engine(structures: str) -> None:
    config = {**CONFIG, "evaluation": {**CONFIG["evaluation"], "structures": structures}}
    with tempfile.TemporaryDirectory() as folder:
        run_experiment(config, folder, quiet=True)


def _bare_loop() -> None:
    prepared = prepare(CONFIG)
    model, split = prepared.model.module, prepared.split
    batches = torch.Generator().manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the engine does
    try:
        for round_, epochs in enumerate((4, 2, 2)):
            if round_:
                prune(model, 0.5)
                model.apply_mask()
            optimizer = torch.optim.Adam(model.parameters(), lr=0.003)
            for _ in range(epochs):
                train_epoch(
                    model, optimizer, split.x_train, split.y_train, batch_size=32, generator=batches
                )
                evaluate(model, split.x_test, split.y_test, classification=True)
    finally:
        torch.set_num_threads(threads)


def run(table: Table, *, quick: bool) -> None:
    table.section("experiment engine: run_experiment vs a bare loop (digits, LeNet-300-100)")
    rounds = 3 if quick else 7
    for label, structures, goal in (
        ("run_experiment (no GraphML, no plots) / bare loop", "none", Goal(1.3, at_most=True)),
        ("run_experiment (+ prior and final GraphML) / bare loop", "final", None),
    ):
        result = compare(
            lambda structures=structures: _engine(structures),
            _bare_loop,
            rounds=rounds,
            warmup=1,
            number=1,
        )
        table.add(Row(label, result.subject, result.reference, result.ratio, goal))
