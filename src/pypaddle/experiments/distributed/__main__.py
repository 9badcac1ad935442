"""``torchrun --nproc-per-node N -m pypaddle.experiments.distributed EXPERIMENT.toml OUT``.

Rank 0 checks the config and claims the folder; the others wait for it, then all train.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pypaddle.errors import ExperimentError
from pypaddle.experiments.distributed import process_group
from pypaddle.experiments.run import claim_folder, train_rank


def main(arguments: list[str]) -> None:  # pragma: no cover - run by torchrun
    import torch.distributed as dist

    config_path, out_dir = arguments
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    out = Path(out_dir)
    config = claim_folder(config_path, out).config if rank == 0 else None
    shared = [config.to_dict() if config is not None else None]
    with process_group(rank, world):
        dist.broadcast_object_list(shared, src=0)
        (table,) = shared
        if table is None:
            raise ExperimentError("rank 0 sent no config; see its error above")
        train_rank(rank, world, table, out)
        dist.barrier()


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
