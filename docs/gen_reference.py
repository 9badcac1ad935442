"""Pages of the documentation that are generated from the code when the site is built.

Run by MkDocs as a hook (``hooks:`` in ``mkdocs.yml``): before the navigation is made, it
adds

- ``reference/api/<package>.md``: one page per public package or module of pypaddle, a
  mkdocstrings block for every name in its ``__all__`` (and for every name of a public
  submodule's ``__all__`` that the package does not re-export), so that a name added to an
  ``__all__`` appears in the reference without anyone editing a page;
- ``reference/configuration.md``: every key of an experiment config with its type, default,
  allowed values and help text, read from the option metadata of
  :mod:`pypaddle.experiments.options`, so that the reference cannot drift from the parser.

The tests import this module too (``tests/test_docs_reference.py``).
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import sys
import typing
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# The site documents the code of this checkout, whatever pypaddle the interpreter has installed.
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

import pypaddle  # noqa: E402

API_FOLDER = "reference/api"
CONFIG_PAGE = "reference/configuration.md"

# One page per entry of pypaddle.__all__ that is a module, in this order, then the rest.
PAGE_ORDER = (
    "sparse",
    "graph",
    "prune",
    "extract",
    "deploy",
    "data",
    "experiments",
    "kinds",
    "errors",
    "util",
    "cli",
)


def public_modules() -> list[str]:
    """Every public module of pypaddle (no part of its dotted name starts with ``_``)."""
    names = ["pypaddle"]
    for info in pkgutil.walk_packages(pypaddle.__path__, "pypaddle."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return names


def exported(module_name: str) -> list[str]:
    """The names in a module's ``__all__`` (empty if it has none)."""
    return list(getattr(importlib.import_module(module_name), "__all__", []))


def top_level_pages() -> list[str]:
    """The modules that get a page of their own: pypaddle's public subpackages and modules,
    in the order of :data:`PAGE_ORDER`, then any others by name."""
    names = {name.split(".")[1] for name in public_modules() if name.count(".") == 1}
    known = [name for name in PAGE_ORDER if name in names]
    return known + sorted(names - set(known))


def _covered_by(module: ModuleType, name: str, parent: ModuleType) -> bool:
    """Whether ``module.name`` is the very object the package ``parent`` exports."""
    target = getattr(module, name)
    return any(getattr(parent, other, None) is target for other in getattr(parent, "__all__", []))


def shadowed(package: str) -> set[str]:
    """Names a package exports that are also the names of its submodules.

    ``pypaddle.data`` exports the function ``digits`` from its submodule ``digits``; reading
    the source, griffe takes ``pypaddle.data.digits`` for the submodule and renders nothing
    for the function, so such names are documented under their submodule's path.
    """
    modules = set(public_modules())
    return {name for name in exported(package) if f"{package}.{name}" in modules}


def _uncovered(module_name: str, page_module: str) -> list[str]:
    """Names of ``module_name``'s ``__all__`` not already documented on ``page_module``'s page."""
    module = importlib.import_module(module_name)
    parent = importlib.import_module(page_module)
    hidden = shadowed(page_module)
    return [
        name
        for name in exported(module_name)
        if name in hidden or not _covered_by(module, name, parent)
    ]


def _block(identifier: str, members: list[str] | None = None, heading: int = 2) -> str:
    lines = [f"::: {identifier}", "    options:", f"      heading_level: {heading}"]
    if members is not None:
        lines.append("      members:")
        lines.extend(f"        - {member}" for member in members)
    return "\n".join(lines) + "\n"


def api_page(short: str) -> str:
    """The markdown of the API page of ``pypaddle.<short>``."""
    name = f"pypaddle.{short}"
    parts = [
        f"# `{name}`\n",
        "Generated from the docstrings; every name of the module's `__all__` is here.\n",
        _block(name, heading=2),
    ]
    submodules = [m for m in public_modules() if m.startswith(name + ".")]
    for submodule in submodules:
        missing = _uncovered(submodule, name)
        if missing:
            parts.append(
                f"## `{submodule}`\n\nNames of this module that `{name}` does not re-export "
                "(or that share their name with a submodule).\n"
            )
            parts.append(_block(submodule, members=missing, heading=3))
    return "\n".join(parts)


def api_index() -> str:
    """The landing page of the API reference: the package and its pages."""
    lines = [
        "# API reference",
        "",
        "Every public name of pypaddle: the names in the `__all__` of every public module,",
        "generated from their docstrings when the site is built. Import from the package",
        "(`from pypaddle.prune import prune`); a submodule's section lists only what its",
        "package does not re-export.",
        "",
        "| module | what it holds |",
        "|---|---|",
    ]
    for short in top_level_pages():
        module = importlib.import_module(f"pypaddle.{short}")
        summary = (module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else ""
        lines.append(f"| [`pypaddle.{short}`]({short}.md) | {summary} |")
    lines += ["", _block("pypaddle", members=["__version__"], heading=2)]
    return "\n".join(lines) + "\n"


def api_pages() -> dict[str, str]:
    """Every generated API page: its path under ``docs/`` -> its markdown."""
    pages = {f"{API_FOLDER}/index.md": api_index()}
    for short in top_level_pages():
        pages[f"{API_FOLDER}/{short}.md"] = api_page(short)
    return pages


# --- the configuration reference -------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _default_text(field: dataclasses.Field[Any]) -> str:
    from pypaddle.experiments.config import _toml_value

    if field.default is not dataclasses.MISSING:
        default = field.default
    elif field.default_factory is not dataclasses.MISSING:
        default = field.default_factory()
    else:
        return "required"
    if default is None:
        return "not set"
    return f"`{_cell(_toml_value(default))}`"


def _allowed_text(metadata: typing.Mapping[str, Any]) -> str:
    from pypaddle.experiments.config import _toml_value
    from pypaddle.experiments.options import _bounds_text

    choices = metadata.get("choices")
    if choices is not None:
        return ", ".join(f"`{_cell(_toml_value(choice))}`" for choice in choices)
    return _cell(_bounds_text(metadata))


def type_text(annotation: Any) -> str:
    """A type as TOML users read it: ``int``, ``list of int``, ``string or none``."""
    import types

    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_text(arg) for arg in typing.get_args(annotation))
    if origin is list:
        return f"list of {type_text(typing.get_args(annotation)[0])}"
    if origin is dict or annotation is dict:
        return "table"
    if annotation is type(None):
        return "not set"
    names = {int: "int", float: "float", bool: "bool", str: "string"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def options_table(cls: type, prefix: str, skip: tuple[str, ...] = ()) -> list[str]:
    """A markdown table of an options dataclass: key, type, default, allowed, help."""
    hints = typing.get_type_hints(cls)
    rows = [
        "| key | type | default | allowed | help |",
        "|---|---|---|---|---|",
    ]
    fields = [field for field in dataclasses.fields(cls) if field.name not in skip]
    for field in fields:
        metadata = field.metadata
        rows.append(
            f"| `{prefix}{field.name}` | {_cell(type_text(hints[field.name]))} | "
            f"{_default_text(field)} | {_allowed_text(metadata)} | "
            f"{_cell(str(metadata.get('help', '')))} |"
        )
    if not fields:
        rows.append("| (no keys) | | | | |")
    return rows


def config_reference() -> str:
    """The markdown of the configuration reference, read from the config's option classes."""
    from pypaddle.experiments import config
    from pypaddle.experiments.registry import DATA, METHODS, MODELS, Registry

    registries: dict[str, Registry] = {"data": DATA, "model": MODELS, "sparsify": METHODS}
    lines = [
        "# Configuration reference",
        "",
        "Every key of an experiment config (`pypaddle run`, `pypaddle.experiments.parse_config`),",
        "generated from the option metadata the parser checks against when the site is built.",
        "*type* is what the parser accepts (an int is accepted for a float), *allowed* the",
        "choices or bounds; a key left out takes its default. A wrong key, type or value is a",
        "`ConfigError` naming the key before anything trains.",
        "",
        "## Top level",
        "",
    ]
    top_keys = {field.name for field in dataclasses.fields(config._TopLevel)}
    lines += options_table(config._TopLevel, "")
    hints = typing.get_type_hints(config.ExperimentConfig)
    for field in dataclasses.fields(config.ExperimentConfig):
        if field.name in top_keys:
            continue
        annotation = hints[field.name]
        lines += ["", f"## `[{field.name}]`", ""]
        if annotation is config.Section:
            if field.name not in registries:
                raise RuntimeError(
                    f"the config section {field.name!r} chooses a component from a registry "
                    "this generator does not know; add it to `registries` in "
                    "docs/gen_reference.py"
                )
            registry = registries[field.name]
            default = config._DEFAULT_CHOICE.get(field.name)
            lines += [
                f"`{field.name}.{registry.key}` chooses one of the following "
                f'(default `"{default}"`); the other keys of the table belong to that choice.',
            ]
            for name in registry.names():
                component = registry.get(name, field.name)
                lines += [
                    "",
                    f'### `{registry.key} = "{name}"`',
                    "",
                    component.description,
                    "",
                ]
                lines += options_table(component.options, f"{field.name}.", skip=(registry.key,))
        elif dataclasses.is_dataclass(annotation):
            lines += options_table(typing.cast(type, annotation), f"{field.name}.")
        else:
            raise RuntimeError(f"the config field {field.name!r} has no options class")
    lines += sweep_reference()
    return "\n".join(lines) + "\n"


def sweep_reference() -> list[str]:
    """The ``[sweep]`` table of a sweep file (`pypaddle sweep`), from its option class."""
    from pypaddle.experiments import sweep

    lines = [
        "",
        "## Sweep files: `[sweep]`",
        "",
        "A sweep file (`pypaddle sweep`, `pypaddle.experiments.sweep.load_sweep`) has a",
        "`[sweep]` table and the experiment, either as a `base` file or inline as an",
        "`[experiment]` table. `sweep.grid` maps dotted config keys to lists of values (every",
        "combination runs); `sweep.random` maps them to one distribution each, drawn",
        "`samples` times per grid point: "
        + ", ".join(f"`{{ {name} = [...] }}`" for name in sweep.DISTRIBUTIONS)
        + ".",
        "",
    ]
    lines += options_table(sweep._SweepOptions, "sweep.")
    return lines


def generated_pages() -> dict[str, str]:
    """Every page this module writes: path under ``docs/`` -> markdown."""
    pages = api_pages()
    pages[CONFIG_PAGE] = config_reference()
    return pages


# --- a griffe extension: docstrings completed at import time --------------------------------


try:
    import griffe as _griffe
except ImportError:  # only the docs build needs it
    _griffe = None  # type: ignore[assignment]

if _griffe is not None:

    class RuntimeDocstrings(_griffe.Extension):
        """Use the imported docstring of a function whose source docstring is a template.

        ``prune`` and ``compute_masks`` share their parameter list: their source docstrings
        hold ``{options}``, filled in when the module is imported. Griffe reads source, so
        for these it takes the docstring from the imported function instead.
        """

        def on_function_instance(self, *, func: Any, **kwargs: Any) -> None:
            docstring = func.docstring
            if docstring is None or "{options}" not in docstring.value:
                return
            import inspect

            module = importlib.import_module(func.module.path)
            runtime = inspect.getdoc(getattr(module, func.name, None))
            if runtime:
                docstring.value = runtime


# --- the MkDocs hook -----------------------------------------------------------------------


def on_files(files: Any, config: Any) -> Any:
    """MkDocs hook: add the generated pages to the site's files."""
    from mkdocs.structure.files import File

    for path, content in generated_pages().items():
        existing = files.get_file_from_path(path)
        if existing is not None:
            files.remove(existing)
        files.append(File.generated(config, path, content=content))
    return files
