"""The example configs that ship with pypaddle, the demo's among them.

Each example is a TOML file in this package: an experiment (``pypaddle run NAME``) or a
sweep (``pypaddle sweep NAME``). ``pypaddle examples`` lists them and
``pypaddle examples NAME > my.toml`` writes one out to edit. Run by name, an experiment's
relative file names (say, the IDX files of ``mnist_idx``) are read from the working
directory, and its results go to ``runs/NAME`` there; a sweep run by name finds its base
experiment among the examples.

Examples
--------
>>> from pypaddle.experiments import examples
>>> "first_experiment" in examples.names()
True
>>> examples.kind("sweep_priors"), examples.kind("demo")
('sweep', 'experiment')
>>> examples.table("demo")["model"]["structure"]["generator"]
'small_world_layered'
"""

from __future__ import annotations

import copy
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

from pypaddle.errors import ConfigError

__all__ = ["description", "folder", "kind", "locate", "named", "names", "table", "text"]


def folder() -> Path:
    """The folder holding the example TOML files (inside the installed package)."""
    return Path(__file__).resolve().parent


def names() -> tuple[str, ...]:
    """The names of the examples, sorted (a name is its file name without ``.toml``)."""
    return tuple(sorted(path.stem for path in folder().glob("*.toml")))


def _checked(name: object) -> str:
    if isinstance(name, str) and name.removesuffix(".toml") in names():
        return name.removesuffix(".toml")
    allowed = ", ".join(names())
    raise ConfigError(
        f"no example named {name!r}; the examples are: {allowed} (`pypaddle examples` lists "
        "them with what they do)"
    )


@cache
def _text(name: str) -> str:
    return (folder() / f"{name}.toml").read_text(encoding="utf-8")


def text(name: str) -> str:
    """The TOML text of example ``name``, comments included (what ``pypaddle examples NAME``
    prints).

    Raises
    ------
    ConfigError
        If there is no example of that name (the message lists them).
    """
    return _text(_checked(name))


def table(name: str, *, expect: str | None = None) -> dict[str, Any]:
    """Example ``name`` as a dict, as read from its TOML file; a fresh copy, free to change.

    With ``expect`` (``"experiment"`` or ``"sweep"``), an example of the other kind is
    refused with the command that runs it.
    """
    name = _checked(name)
    if expect is not None and kind(name) != expect:
        article, command = (
            ("an", "pypaddle sweep") if expect == "experiment" else ("a", "pypaddle run")
        )
        raise ConfigError(
            f"the example {name!r} is not {article} {expect}; run it with: {command} {name}"
        )
    return copy.deepcopy(_table(name))


def named(argument: str | Path) -> str | None:
    """The example ``argument`` names, or ``None``: a path that exists is a file, not a name.

    ``"first_experiment"`` and ``"first_experiment.toml"`` both name that example, unless a
    file of that name is in the working directory.

    Examples
    --------
    >>> named("demo"), named("no_such_example")
    ('demo', None)
    """
    if Path(argument).exists():
        return None
    stem = str(argument).removesuffix(".toml")
    return stem if stem in names() else None


@cache
def _table(name: str) -> dict[str, Any]:
    return tomllib.loads(_text(name))


def kind(name: str) -> str:
    """``"sweep"`` if example ``name`` is a sweep (it has a ``[sweep]`` table), else
    ``"experiment"``."""
    return "sweep" if "sweep" in _table(_checked(name)) else "experiment"


def description(name: str) -> str:
    """What example ``name`` does: the first comment line of its file."""
    for line in _text(_checked(name)).splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip()
    return ""


def locate(argument: str | Path, *, expect: str) -> tuple[dict[str, Any], Path, Path]:
    """What the command line's ``argument`` names, an example or a TOML file, as
    ``(table, base, parent)``: its table, the folder its relative file names are read
    from, and the folder its results go under by default (``runs`` for an experiment,
    ``sweeps`` for a sweep).

    For an example, an experiment's relative file names are the user's (the working
    folder) and a sweep's base experiment is another example (found beside it); results go
    into the working folder. For a file, both are next to it.

    Examples
    --------
    >>> table, base, parent = locate("sweep_priors", expect="sweep")
    >>> table["sweep"]["name"], base == folder(), parent.as_posix()
    ('rewiring', True, 'sweeps')
    """
    from pypaddle.experiments.config import read_toml

    results = "runs" if expect == "experiment" else "sweeps"
    example = named(argument)
    if example is not None:
        base = Path.cwd() if expect == "experiment" else folder()
        return table(example, expect=expect), base, Path(results)
    path = Path(argument)
    return read_toml(path), path.resolve().parent, path.parent / results
