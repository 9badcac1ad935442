"""Output folders of experiments and sweeps: what may be written where."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pypaddle.errors import ConfigError

__all__ = ["check_output_folder"]


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
    if not folder.exists() or not any(folder.iterdir()):
        return
    marker_path = folder / marker
    if not marker_path.is_file():
        raise ConfigError(
            f"output folder {str(folder)!r} is not empty and holds no pypaddle {what} "
            f"(no {marker}); choose a new folder with --out, nothing was written"
        )
    old = marker_path.read_text()
    if old != expected:
        raise ConfigError(
            f"output folder {str(folder)!r} holds a different {what} ({differs(old)}); "
            "choose a new folder with --out, nothing was overwritten"
        )
