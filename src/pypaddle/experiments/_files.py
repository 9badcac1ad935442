"""Output folders of experiments and sweeps: what may be written where, and by whom.

A folder has one writer at a time: :func:`lock_folder` takes an exclusive lock on the
folder itself (``flock`` on its directory handle), which the operating system drops when
the holding process ends, however it ends (``kill -9`` included), so a crashed writer
never leaves a folder locked. Names from configs become folders only through
:func:`named_folder`, which keeps them inside the folder they are resolved from.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Callable
from pathlib import Path, PurePosixPath, PureWindowsPath

from pypaddle.errors import ConfigError

__all__ = ["FolderLock", "check_output_folder", "lock_folder", "named_folder"]

LOG = logging.getLogger("pypaddle.experiments")
# Where the folder lock lives on systems without flock (Windows): a file in the folder.
LOCK_FILE = ".pypaddle-lock"

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


def named_folder(parent: Path, name: str, *, what: str) -> Path:
    """``parent / name``, if ``name`` (from a config) names a folder inside ``parent``.

    Refuses absolute names, drive letters, ``..`` anywhere and empty names, for POSIX and
    Windows spellings alike, so that a config's name can never make pypaddle write
    outside the folder it is resolved from.

    Examples
    --------
    >>> named_folder(Path("runs"), "priors", what="experiment").as_posix()
    'runs/priors'
    >>> named_folder(Path("runs"), "../../x", what="experiment")
    Traceback (most recent call last):
    ...
    pypaddle.errors.ConfigError: experiment name '../../x' would write outside runs; give a plain name (letters, digits, - and _) or choose the folder with --out
    """  # noqa: E501
    posix, windows = PurePosixPath(name), PureWindowsPath(name)
    if (
        not name.strip()
        or "\x00" in name
        or posix.is_absolute()
        or windows.anchor
        or ".." in posix.parts
        or ".." in windows.parts
        or name.strip() in (".", "./")
    ):
        raise ConfigError(
            f"{what} name {name!r} would write outside {parent}; give a plain name "
            "(letters, digits, - and _) or choose the folder with --out"
        )
    return parent / name


def _check_writable(folder: Path) -> None:
    """Refuse a folder that cannot be made: under a file, or in a folder we cannot write."""
    ancestor = folder
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if ancestor != folder and not ancestor.is_dir():
        raise ConfigError(
            f"output folder {str(folder)!r} cannot be made: {str(ancestor)!r} is a file; "
            "give a folder path, nothing was written"
        )
    if ancestor.is_dir() and not os.access(ancestor, os.W_OK | os.X_OK):
        raise ConfigError(
            f"output folder {str(folder)!r} cannot be written: no permission in "
            f"{str(ancestor)!r}; choose another folder with --out, nothing was written"
        )


def check_output_folder(
    folder: Path, marker: str, expected: str, *, what: str, differs: Callable[[str], str]
) -> None:
    """Refuse a folder that holds something other than this experiment (or sweep).

    ``marker`` is the file (e.g. ``config.toml``) whose text identifies the folder's
    content; the folder may be missing, empty, or hold a marker equal to ``expected``.
    ``differs(old_text)`` describes how an existing marker differs, for the message.
    """
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"output folder {str(folder)!r} is a file; give a folder")
    _check_writable(folder)
    if not folder.exists() or not any(p.name != LOCK_FILE for p in folder.iterdir()):
        return
    marker_path = folder / marker
    if not marker_path.is_file():
        raise ConfigError(
            f"output folder {str(folder)!r} is not empty and holds no pypaddle {what} "
            f"(no {marker}); choose a new folder with --out, nothing was written"
        )
    try:
        old = marker_path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(
            f"output folder {str(folder)!r}: its {marker} cannot be read ({error}); choose a "
            "new folder with --out, nothing was written"
        ) from None
    if old != expected:
        raise ConfigError(
            f"output folder {str(folder)!r} holds a different {what} ({differs(old)}); "
            "choose a new folder with --out, nothing was overwritten"
        )


class FolderLock:
    """The exclusive lock on an output folder, held until :meth:`release` or process exit.

    Use it as a context manager, or call :meth:`release`. A lock that is never released
    is dropped by the operating system when the process ends.
    """

    def __init__(self, folder: Path, handle: int | None) -> None:
        self.folder = folder
        self._handle = handle

    @property
    def held(self) -> bool:
        """Whether this object still holds the lock."""
        return self._handle is not None

    def release(self) -> None:
        """Drop the lock (closing the handle releases it); a second call does nothing."""
        handle, self._handle = self._handle, None
        if handle is not None:
            os.close(handle)

    def __enter__(self) -> FolderLock:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def _holder(handle: int) -> int | None:
    """The pid holding a flock on ``handle``'s file, from /proc/locks (Linux), if known."""
    status = os.fstat(handle)
    device = f"{os.major(status.st_dev):02x}:{os.minor(status.st_dev):02x}:{status.st_ino}"
    try:
        with open("/proc/locks") as locks:
            for line in locks:
                fields = line.split()
                if "->" not in fields and fields[1:2] == ["FLOCK"] and fields[5:6] == [device]:
                    return int(fields[4])
    except (OSError, ValueError):
        return None
    return None


def _refuse(folder: Path, pid: int | None, what: str) -> ConfigError:
    holder = f"process {pid}" if pid is not None else "another process"
    return ConfigError(
        f"output folder {str(folder)!r} is in use by another pypaddle {what} ({holder}); "
        "wait for it to end or choose another folder with --out, nothing was written"
    )


def _lock_handle(folder: Path, what: str) -> int | None:
    if fcntl is None:  # pragma: no cover - Windows: lock a file in the folder
        import msvcrt

        handle = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT)
        try:
            msvcrt.locking(handle, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined,unused-ignore]
        except OSError:
            os.close(handle)
            raise _refuse(folder, None, what) from None
        return handle
    handle = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        if error.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
            pid = _holder(handle)
            os.close(handle)
            raise _refuse(folder, pid, what) from None
        # A file system without locks (some network mounts): run unguarded, but say so.
        os.close(handle)
        LOG.warning("cannot lock %s (%s); make sure no other run writes into it", folder, error)
        return None
    return handle


def lock_folder(folder: str | Path, *, what: str = "run") -> FolderLock:
    """Make ``folder`` if it is missing and take its exclusive lock, or refuse.

    A folder in use by another process raises :class:`~pypaddle.errors.ConfigError`
    naming the folder and, where the system tells (Linux), the holder's pid; nothing is
    written then. ``what`` ("run", "sweep") names the kind of writer in messages.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as parent:
    ...     with lock_folder(Path(parent) / "out") as lock:
    ...         lock.held
    True
    """
    folder = Path(folder)
    _check_writable(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(
            f"output folder {str(folder)!r} cannot be made ({error.strerror or error}); "
            "choose another folder with --out"
        ) from None
    return FolderLock(folder, _lock_handle(folder, what))
