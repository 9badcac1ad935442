"""``torchrun --nproc-per-node N -m pypaddle.experiments.distributed EXPERIMENT.toml OUT``.

Every process reads the config to learn its device (one GPU each, ``cuda:LOCAL_RANK``,
over NCCL; or the CPU over gloo), then joins the group. Rank 0 checks the config and
claims the folder; the others wait for it, then all train.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pypaddle.errors import ExperimentError
from pypaddle.experiments.config import load_config
from pypaddle.experiments.devices import rank_device, resolve_device
from pypaddle.experiments.distributed import process_group
from pypaddle.experiments.run import claim_folder, train_rank


def main(arguments: list[str]) -> None:  # pragma: no cover - run by torchrun
    import torch.distributed as dist

    config_path, out_dir = arguments
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    out = Path(out_dir)
    config = claim_folder(config_path, out).config if rank == 0 else None
    wanted = resolve_device(load_config(config_path).training.device, "training.device")
    device = rank_device(wanted, local_rank, local_world)
    shared = [config.to_dict() if config is not None else None]
    with process_group(rank, world, device):
        dist.broadcast_object_list(shared, src=0)
        (table,) = shared
        if table is None:
            raise ExperimentError("rank 0 sent no config; see its error above")
        train_rank(rank, world, table, out)
        dist.barrier()


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
