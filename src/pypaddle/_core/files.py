"""Crash-safe files: every file appears whole or not at all (write a temporary, then rename)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "atomic_write_with"]


def _file_mode() -> int:
    # mkstemp makes files only the owner can read; give them the usual mode instead.
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is renamed onto ``path``.

    ``os.replace`` is atomic on POSIX and Windows, so a reader (or a resumed sweep after a
    crash) sees the old file or the new one, never half of one. On an error the temporary
    file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The temporary keeps the suffix, so writers that infer the format from it still work.
    handle, temporary = tempfile.mkstemp(
        prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent
    )
    os.close(handle)
    try:
        yield Path(temporary)
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.chmod(temporary, _file_mode())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)
        raise


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically; return ``path``."""
    with atomic_path(path) as temporary:
        temporary.write_text(text)
    return Path(path)


def atomic_write_with(path: str | Path, write: Callable[[BinaryIO], Any]) -> Path:
    """Call ``write(handle)`` on a temporary binary file, then rename it onto ``path``."""
    with atomic_path(path) as temporary, temporary.open("wb") as handle:
        write(handle)
    return Path(path)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; return ``path``."""
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)
    return Path(path)
