"""Crash-safe files: every file appears whole or not at all (write a temporary, then rename)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from pypaddle.errors import ConfigError, InputTypeError

__all__ = [
    "atomic_files",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_with",
    "check_target",
]


def _file_mode() -> int:
    # mkstemp makes files only the owner can read; give them the usual mode instead.
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def check_target(path: Any) -> Path:
    """``path`` as a Path a file can be written to, or a clear error before anything changes.

    Missing folders are fine (the writers make them); a folder at ``path`` itself or a file
    where a folder of ``path`` should be is a ConfigError naming both.
    """
    if isinstance(path, bytes) or not isinstance(path, str | os.PathLike):
        raise InputTypeError(f"a file path must be a str or os.PathLike, got {path!r}")
    path = Path(path)
    if str(path) in ("", ".") or path.is_dir():
        raise ConfigError(f"cannot write the file {str(path)!r}: it is a folder; name a file")
    for folder in path.parents:
        if folder.exists():
            if not folder.is_dir():
                raise ConfigError(
                    f"cannot write {str(path)!r}: {str(folder)!r} is a file, not a folder; "
                    "choose a path in a folder"
                )
            break
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is renamed onto ``path``.

    ``os.replace`` is atomic on POSIX and Windows, so a reader (or a resumed sweep after a
    crash) sees the old file or the new one, never half of one. On an error the temporary
    file is removed. Missing folders are made; a ``path`` that is a folder or lies under a
    file is a ConfigError (see :func:`check_target`).
    """
    path = check_target(path)
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


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically; return ``path``."""
    with atomic_path(path) as temporary:
        temporary.write_text(text)
    return Path(path)


def atomic_write_with(path: str | os.PathLike[str], write: Callable[[BinaryIO], Any]) -> Path:
    """Call ``write(handle)`` on a temporary binary file, then rename it onto ``path``."""
    with atomic_path(path) as temporary, temporary.open("wb") as handle:
        write(handle)
    return Path(path)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; return ``path``."""
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)
    return Path(path)


@contextlib.contextmanager
def atomic_files(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield ``path``'s name inside a temporary folder beside it, for writers that may add
    files of their own next to it (ONNX's external weights).

    On success every file written into the folder is moved beside ``path``, ``path``
    itself last, so it appears whole and only once what it refers to is in place; on an
    error the folder is removed and ``path`` is as it was.
    """
    path = check_target(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent))
    try:
        yield folder / path.name
        written = sorted(
            (item for item in folder.iterdir() if item.is_file()),
            key=lambda f: f == folder / path.name,
        )
        for item in written:
            with open(item, "rb") as handle:
                os.fsync(handle.fileno())
            os.chmod(item, _file_mode())
            os.replace(item, path.parent / item.name)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
