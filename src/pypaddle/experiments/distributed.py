"""Data-parallel experiments: ``pypaddle run --nproc N`` on CPU with DDP and gloo.

:func:`run_distributed` starts ``N`` processes with ``torch.multiprocessing``; each
joins a gloo process group on localhost, builds the same data and model from the config
(same seed, so the same initial weights; DDP broadcasts rank 0's anyway), and trains its
slice of every batch under ``DistributedDataParallel``, which averages the gradients.
After every mask change (a pruning round, a RigL step) the masks of rank 0 are broadcast,
so every rank holds the same masks; each round's record lists every rank's mask and weight
digests to show it. Only rank 0 evaluates into files and writes the output folder.

The same engine runs under ``torchrun`` (which sets ``RANK``, ``WORLD_SIZE``,
``MASTER_ADDR`` and ``MASTER_PORT``)::

    torchrun --nproc-per-node 2 -m pypaddle.experiments.distributed EXPERIMENT.toml OUT
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

import torch

__all__ = ["run_distributed"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _worker(rank: int, config: dict[str, Any], out_dir: str, world: int, port: int) -> None:
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ["MASTER_PORT"] = str(port)
    _run_rank(config, Path(out_dir), rank, world)


def _run_rank(config: dict[str, Any], out_dir: Path, rank: int, world: int) -> None:
    import torch.distributed as dist

    from pypaddle.experiments._progress import _Progress, _single_thread
    from pypaddle.experiments.run import execute, prepare

    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        with _single_thread():
            prepared = prepare(config)
            torch.manual_seed(prepared.config.seed)
            execute(prepared, out_dir, _Progress(), rank=rank, world=world)
        dist.barrier()
    finally:
        dist.destroy_process_group()


def run_distributed(config: dict[str, Any], out_dir: Path, nproc: int) -> list[dict[str, Any]]:
    """Train ``config`` in ``nproc`` processes; return the round records rank 0 wrote."""
    import multiprocessing

    import torch.multiprocessing as mp

    # A fork server that imported pypaddle once starts the processes faster than spawn.
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    if method == "forkserver":
        multiprocessing.get_context(method).set_forkserver_preload(["pypaddle.experiments.run"])
    mp.start_processes(
        _worker,
        args=(config, str(out_dir), nproc, _free_port()),
        nprocs=nproc,
        join=True,
        start_method=method,
    )
    return json.loads((out_dir / "result.json").read_text())["rounds"]


def _main(arguments: list[str]) -> None:  # pragma: no cover - run by torchrun
    from pypaddle.experiments.run import claim_folder

    config_path, out_dir = arguments
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    out = Path(out_dir)
    config = claim_folder(config_path, out).config if rank == 0 else None
    import torch.distributed as dist

    # Rank 0 checks and claims the folder; the others wait for it, then all train.
    dist.init_process_group("gloo", rank=rank, world_size=world)
    shared = [config.to_dict() if config is not None else None]
    dist.broadcast_object_list(shared, src=0)
    dist.destroy_process_group()
    _run_rank(shared[0], out, rank, world)


if __name__ == "__main__":  # pragma: no cover
    _main(sys.argv[1:])
