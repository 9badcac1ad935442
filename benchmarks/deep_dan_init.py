"""Deep graph-built nets and their start: legacy init against per-vertex He init.

Trains ``MaskedDeepDAN`` on a 32-layer x 16-wide layered small-world structure
(``small_world_layered(32, 16, neighbours, p)``) on the digits, 15 epochs of Adam at
1e-3 (batch 32), once with ``init="legacy"`` (``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``,
the start of earlier releases) and once with the default ``init="fan_in"`` (He per
vertex), over three seeds each, and prints the test accuracies. A few minutes on one core:

    PYTHONPATH=src python benchmarks/deep_dan_init.py            # the 32 x 16 nets
    PYTHONPATH=src python benchmarks/deep_dan_init.py --quick    # one seed, one structure
    PYTHONPATH=src python benchmarks/deep_dan_init.py --normalization layer  # + that row

Not part of ``make bench`` (it measures learning, not speed).
"""

from __future__ import annotations

import argparse
import warnings

import torch

from pypaddle.data import digits
from pypaddle.errors import StructureWarning
from pypaddle.graph import small_world_layered
from pypaddle.sparse import MaskedDeepDAN

EPOCHS, LEARNING_RATE, BATCH = 15, 1e-3, 32


def accuracy(init: str, seed: int, neighbours: int, p: float, normalization: str | None) -> float:
    """Test accuracy of a 32 x 16 small-world DAN trained from ``init``."""
    split = digits(seed=0)
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StructureWarning)
        model = MaskedDeepDAN(
            64,
            10,
            small_world_layered(32, 16, neighbours, p, seed=seed),
            init=init,
            normalization=normalization,
        )
    optimizer = torch.optim.Adam(model.parameters(), LEARNING_RATE)
    for _ in range(EPOCHS):
        order = torch.randperm(len(split.x_train))
        for start in range(0, len(order), BATCH):
            batch = order[start : start + BATCH]
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(
                model(split.x_train[batch]), split.y_train[batch]
            )
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        predicted = model(split.x_test).argmax(1)
    return float((predicted == split.y_test).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed, one structure")
    parser.add_argument(
        "--normalization", choices=("layer", "batch"), help="add fan_in with this normalization"
    )
    arguments = parser.parse_args()
    quick = arguments.quick
    variants: list[tuple[str, str | None]] = [("legacy", None), ("fan_in", None)]
    if arguments.normalization is not None:
        variants.append(("fan_in", arguments.normalization))
    torch.set_num_threads(1)
    structures = [(8, 0.1)] if quick else [(8, 0.1), (4, 0.1), (8, 0.0)]
    seeds = [0] if quick else [0, 1, 2]
    print(f"digits, 32 x 16 small_world_layered, {EPOCHS} epochs Adam {LEARNING_RATE}")
    print(f"{'neighbours, p':>14} {'init':>12}  test accuracy per seed        mean")
    for neighbours, p in structures:
        for init, normalization in variants:
            scores = [accuracy(init, seed, neighbours, p, normalization) for seed in seeds]
            name = init if normalization is None else f"{init}+{normalization}"
            shown = "  ".join(f"{score:5.1%}" for score in scores)
            mean = sum(scores) / len(scores)
            print(f"{f'{neighbours}, {p}':>14} {name:>12}  {shown:28} {mean:5.1%}", flush=True)


if __name__ == "__main__":
    main()
