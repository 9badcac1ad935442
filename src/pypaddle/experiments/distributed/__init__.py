"""Data-parallel experiments: ``pypaddle run --nproc N`` with DDP, NCCL on GPUs, gloo on CPUs.

:func:`launch` starts ``N`` processes with ``torch.multiprocessing``; each joins a process
group on localhost (the backend :func:`~pypaddle.experiments.devices.ddp_backend` chooses
for the experiment's device: NCCL between GPUs, one GPU per process, ``cuda:RANK``; gloo
between CPU processes) and runs the function it is given (for ``pypaddle run``: build
the same data and model from the config, same seed, so the same initial weights; DDP
broadcasts rank 0's anyway, and train its slice of every batch under
``DistributedDataParallel``, which averages the gradients). :class:`Sync` is everything
the engine synchronises: after every mask change (a pruning round, a RigL step) the masks
of rank 0 are broadcast, so every rank holds the same masks; train losses are averaged;
each round's record lists every rank's mask and weight digests to show it. Only rank 0
evaluates into files and writes the output folder.

The same engine runs under ``torchrun`` (which sets ``RANK``, ``WORLD_SIZE``,
``MASTER_ADDR`` and ``MASTER_PORT``; see ``__main__.py``)::

    torchrun --nproc-per-node 2 -m pypaddle.experiments.distributed EXPERIMENT.toml OUT
"""

from __future__ import annotations

import inspect
import multiprocessing
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from pypaddle.experiments.devices import ddp_backend, rank_device
from pypaddle.sparse import maskable_layers

__all__ = ["Sync", "launch", "process_group"]


class Sync:
    """What data-parallel processes keep equal; for one process (the default) a no-op.

    Examples
    --------
    >>> alone = Sync()
    >>> alone.lead, alone.mean(0.25), alone.gather("a")
    (True, 0.25, ['a'])
    """

    def __init__(self, rank: int = 0, world: int = 1, device: torch.device | None = None) -> None:
        self.rank, self.world = rank, world
        # Where the collectives' tensors live: NCCL only moves tensors on the GPU.
        self.device = torch.device("cpu") if device is None else device

    @property
    def lead(self) -> bool:
        """Whether this is the first process, the one that writes files."""
        return self.rank == 0

    def wrap(self, model: nn.Module) -> nn.Module:
        """``model`` under DDP, without a buffer broadcast in every forward: masks are
        broadcast by :meth:`broadcast_masks` when they change. Alone: ``model`` itself."""
        if self.world == 1:
            return model
        ddp = nn.parallel.DistributedDataParallel
        options: dict[str, Any] = {}
        if self.device.type == "cuda":
            options["device_ids"] = [self.device.index]
        if "forward_sync_buffers" in inspect.signature(ddp).parameters:  # torch >= 2.13
            return ddp(model, forward_sync_buffers=False, **options)
        return ddp(model, broadcast_buffers=False, **options)

    def broadcast_masks(self, model: nn.Module) -> None:
        """Copy every mask of rank 0's ``model`` into the other ranks' (in place)."""
        if self.world == 1:
            return
        import torch.distributed as dist

        for layer in maskable_layers(model):
            for _, mask_name in layer.masked_parameters():
                mask = getattr(layer, mask_name)
                values = mask.to(torch.uint8)
                dist.broadcast(values, src=0)
                with torch.no_grad():
                    mask.copy_(values.bool())

    def mean(self, value: float) -> float:
        """The mean of ``value`` over the processes."""
        if self.world == 1:
            return value
        import torch.distributed as dist

        total = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(total)
        return float(total) / self.world

    def gather(self, value: str) -> list[str]:
        """``value`` of every process, by rank."""
        if self.world == 1:
            return [value]
        import torch.distributed as dist

        values: list[Any] = [None] * self.world
        dist.all_gather_object(values, value)
        return values


@contextmanager
def process_group(rank: int, world: int, device: torch.device | None = None) -> Iterator[None]:
    """Join the process group (``MASTER_ADDR`` and ``MASTER_PORT`` set) for a block: NCCL
    with ``device`` as this process's GPU when it is one, else gloo."""
    import torch.distributed as dist

    device = torch.device("cpu") if device is None else device
    if device.type == "cuda":
        # NCCL's collectives (and all_gather_object) run on the current GPU.
        torch.cuda.set_device(device)
    dist.init_process_group(ddp_backend(device), rank=rank, world_size=world)
    try:
        yield
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _worker(
    rank: int,
    function: Callable[..., None],
    args: tuple[Any, ...],
    world: int,
    port: int,
    device: torch.device,
) -> None:
    import torch.distributed as dist

    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ["MASTER_PORT"] = str(port)
    with process_group(rank, world, rank_device(device, rank, world)):
        function(rank, world, *args)
        dist.barrier()


def launch(
    function: Callable[..., None],
    args: tuple[Any, ...],
    nproc: int,
    *,
    preload: str = "",
    device: torch.device | None = None,
) -> None:
    """Run ``function(rank, nproc, *args)`` in ``nproc`` processes of one process group.

    On a GPU ``device`` each process takes one GPU (``cuda:rank``, see
    :func:`~pypaddle.experiments.devices.rank_device`; ``nproc`` must not exceed the
    visible GPUs) and the group is NCCL; on the CPU (the default) it is gloo.
    ``function`` must be importable by name (a module-level function), ``args``
    picklable; ``preload`` names a module a fork server imports once for all processes.
    Returns when every process has finished; a process that fails raises here.
    """
    device = torch.device("cpu") if device is None else device
    rank_device(device, 0, nproc)  # enough GPUs for every process, checked before any starts
    import torch.multiprocessing as mp

    # A fork server that imported pypaddle once starts the processes faster than spawn.
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    if method == "forkserver" and preload:
        multiprocessing.get_context(method).set_forkserver_preload([preload])
    mp.start_processes(
        _worker,
        args=(function, args, nproc, _free_port(), device),
        nprocs=nproc,
        join=True,
        start_method=method,
    )
