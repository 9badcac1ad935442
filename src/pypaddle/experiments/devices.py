"""Where an experiment computes: its device, its precision and its CPU threads.

``[training] device``, ``precision`` and ``threads`` are checked twice. When the config is
read, only their form (:func:`check_device_name`: a device string torch knows and
experiments run on). Before anything is written or trained, against this machine
(:func:`placement`): CUDA asked for where torch sees none, a GPU index beyond the visible
ones, bf16 on a GPU without it and more threads than the machine has cores are each a
:class:`~pypaddle.errors.ConfigError` that names the value and what would work here. A
sweep checks this once per trial on the machine the trial runs on.

Trials of a local sweep are spread over the visible GPUs (:func:`spread_device`), and
data-parallel processes take one GPU each (:func:`rank_device`) and talk over NCCL on
GPUs, gloo on CPUs (:func:`ddp_backend`).

Examples
--------
>>> here = placement("cpu", "bf16", 1)
>>> here.device, here.precision, here.threads
(device(type='cpu'), 'bf16', 1)
>>> placement("auto", "32", 1).device.type in ("cpu", "cuda")
True
>>> ddp_backend(torch.device("cpu")), ddp_backend(torch.device("cuda", 1))
('gloo', 'nccl')
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from pypaddle.errors import ConfigError

__all__ = [
    "DEVICE_FORMS",
    "PRECISIONS",
    "Placement",
    "autocast",
    "check_device_name",
    "ddp_backend",
    "placement",
    "rank_device",
    "resolve_device",
    "spread_device",
    "visible_gpus",
]

DEVICE_FORMS = ("auto", "cpu", "cuda", "cuda:N")
"""The forms a device name may take in a config (``cuda:N`` with N a visible GPU)."""

PRECISIONS = ("32", "bf16")
"""The training precisions: float32, or bfloat16 autocast."""
_FORMS_TEXT = "'auto' (CUDA when available), 'cpu', 'cuda' or 'cuda:N' (N: a visible GPU)"


def check_device_name(value: str, key: str = "device") -> str:
    """``value`` if it is one of ``auto``, ``cpu``, ``cuda``, ``cuda:N`` (N >= 0).

    Only the form is checked (a config may be read on a machine other than the one it runs
    on); :func:`resolve_device` checks it against this machine.

    Examples
    --------
    >>> check_device_name("cuda:1")
    'cuda:1'
    >>> check_device_name("gpu", "training.device")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pypaddle.errors.ConfigError: training.device = 'gpu' is not a device torch knows; give ...
    """
    if not isinstance(value, str):
        raise ConfigError(f"{key} = {value!r} must be a string: {_FORMS_TEXT}")
    if value == "auto":
        return value
    try:
        device = torch.device(value)
    except (RuntimeError, ValueError):
        raise ConfigError(
            f"{key} = {value!r} is not a device torch knows; give {_FORMS_TEXT}"
        ) from None
    if device.type not in ("cpu", "cuda") or (device.type == "cpu" and device.index is not None):
        raise ConfigError(
            f"{key} = {value!r} is a device experiments do not run on; give {_FORMS_TEXT}"
        )
    return value


def _visible() -> str:
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        return "torch sees no CUDA GPU here" + (
            " (this torch is built without CUDA)" if torch.version.cuda is None else ""
        )
    names = ", ".join(f"cuda:{index}" for index in range(count))
    return f"{count} GPU{'s' if count > 1 else ''} {'are' if count > 1 else 'is'} visible ({names})"


def resolve_device(name: str, key: str = "device") -> torch.device:
    """The torch device ``name`` means on this machine; ``auto`` is ``cuda:0`` when torch
    sees a GPU, else the CPU. Asking for a GPU that is not there is a ConfigError that says
    what is visible and what to give instead.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    check_device_name(name, key)
    available = torch.cuda.is_available()
    if name == "auto":
        return torch.device("cuda", 0) if available else torch.device("cpu")
    device = torch.device(name)
    if device.type == "cpu":
        return device
    if not available:
        raise ConfigError(
            f"{key} = {name!r} asks for a CUDA GPU, but {_visible()}; give 'cpu', or 'auto' "
            "(CUDA when available), or run where torch.cuda.is_available() is True"
        )
    index = 0 if device.index is None else device.index
    if index >= torch.cuda.device_count():
        raise ConfigError(
            f"{key} = {name!r} names GPU {index}, but {_visible()}; give one of them, or "
            "'cuda' / 'auto' for the first"
        )
    return torch.device("cuda", index)


def _check_precision(precision: str, device: torch.device, key: str) -> None:
    if precision not in PRECISIONS:
        allowed = ", ".join(repr(value) for value in PRECISIONS)
        raise ConfigError(f"{key} = {precision!r} is not allowed; allowed values: {allowed}")
    # The check torch's own CUDA autocast makes (it refuses bfloat16 where this is False).
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError(
            f"{key} = 'bf16', but {device} does not compute in bfloat16 "
            "(torch.cuda.is_bf16_supported() is False); give precision = '32', or a GPU that "
            "does (Ampere or newer)"
        )


def _check_threads(threads: int, key: str) -> None:
    cores = os.cpu_count() or 1
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= cores:
        raise ConfigError(
            f"{key} = {threads!r} is not a thread count for this machine: it has {cores} "
            f"core{'s' if cores > 1 else ''} (os.cpu_count()); give 1 to {cores}"
        )


@dataclass(frozen=True)
class Placement:
    """A checked device, precision (``"32"`` or ``"bf16"``) and torch thread count."""

    device: torch.device
    precision: str = "32"
    threads: int = 1

    def autocast(self) -> contextlib.AbstractContextManager[None]:
        """The autocast scope of this precision on this device (none for ``"32"``)."""
        return autocast(self.device, self.precision)

    @contextlib.contextmanager
    def threads_scope(self) -> Iterator[None]:
        """Run a block on :attr:`threads` torch threads; the caller's count is restored."""
        before = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            yield
        finally:
            torch.set_num_threads(before)


def placement(
    device: str, precision: str = "32", threads: int = 1, *, section: str = "training"
) -> Placement:
    """Check ``device``, ``precision`` and ``threads`` against this machine.

    Every check runs before the caller does anything, so a refused placement leaves
    nothing behind; errors name the key as ``section.device`` and so on.
    """
    resolved = resolve_device(device, f"{section}.device")
    _check_precision(precision, resolved, f"{section}.precision")
    _check_threads(threads, f"{section}.threads")
    return Placement(resolved, precision, threads)


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[None]:
    """``torch.autocast`` to bfloat16 on ``device`` for ``"bf16"``; nothing for ``"32"``.

    Masked layers compute with their masked weights under it: a masked weight contributes
    exactly zero, in bfloat16 as in float32.

    Examples
    --------
    >>> from pypaddle.sparse import MaskedLinear
    >>> layer = MaskedLinear(4, 2)
    >>> with autocast(torch.device("cpu"), "bf16"):
    ...     layer(torch.ones(1, 4)).dtype
    torch.bfloat16
    """
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def rank_device(device: torch.device, local_rank: int, world: int) -> torch.device:
    """The device of data-parallel process ``local_rank`` on its machine: one GPU each
    (``cuda:local_rank``) when ``device`` is a GPU, else the CPU.

    A run of ``world`` processes on one machine needs that many visible GPUs.

    Examples
    --------
    >>> rank_device(torch.device("cpu"), 1, 2)
    device(type='cpu')
    """
    if device.type != "cuda":
        return device
    count = visible_gpus()
    if world > count:
        raise ConfigError(
            f"{world} data-parallel processes on GPUs need {world} visible GPUs (one each), "
            f"but {_visible()}; give --nproc {count}, or device = 'cpu'"
        )
    return torch.device("cuda", local_rank)


def visible_gpus() -> int:
    """How many CUDA GPUs torch sees here (0 without CUDA)."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def spread_device(name: str, index: int, gpus: int) -> str | None:
    """The GPU trial ``index`` of a local sweep runs on, among ``gpus`` visible ones.

    A trial that asks for a GPU without naming one (``cuda``, or ``auto`` while there is
    a GPU) gets ``cuda:(index mod gpus)``, so the trials are spread over every GPU; any
    other keeps its device (None).

    Examples
    --------
    >>> [spread_device("auto", index, 2) for index in range(3)]
    ['cuda:0', 'cuda:1', 'cuda:0']
    >>> spread_device("cpu", 1, 2), spread_device("cuda:1", 0, 2), spread_device("auto", 0, 0)
    (None, None, None)
    """
    if gpus > 0 and name in ("auto", "cuda"):
        return f"cuda:{index % gpus}"
    return None


def ddp_backend(device: torch.device) -> str:
    """The process-group backend for data-parallel training on ``device``: NCCL between
    GPUs, gloo between CPU processes."""
    return "nccl" if device.type == "cuda" else "gloo"
