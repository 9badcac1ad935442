"""Typed, validated option tables: TOML tables -> frozen dataclasses, errors that name the key.

Every config section is a frozen dataclass whose fields carry their constraints in
``dataclasses.field(metadata=...)`` (made by :func:`option`). :func:`parse_options` checks a
table against it: unknown keys, missing keys, wrong types and values out of range raise a
:class:`~pypaddle.errors.ConfigError` that names the key (dotted, from the top of the
file), the bad value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pypaddle.errors import ConfigError

__all__ = ["option", "options_to_dict", "parse_options"]

INT_LIMIT = 2**63


def option(
    default: Any = dataclasses.MISSING,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    above: float | None = None,
    below: float | None = None,
    choices: tuple[Any, ...] | None = None,
    path: bool | tuple[str, ...] = False,
    check: Callable[[Any, str], Any] | None = None,
    help: str = "",
) -> Any:
    """A dataclass field with bounds (inclusive ``minimum``/``maximum``, exclusive ``above``/
    ``below``) or a tuple of allowed ``choices``; lists are checked element by element.
    A ``path`` option is a file name, resolved against the config file's folder; for a
    table option, ``path`` names the keys of the table that hold file names. ``check``
    is one of :mod:`pypaddle._core`'s checks, called as ``check(value, key)`` after the
    type and bounds (e.g. :func:`~pypaddle._core.seeds.check_seed`)."""
    metadata = {
        "path": path,
        "minimum": minimum,
        "maximum": maximum,
        "above": above,
        "below": below,
        "choices": choices,
        "check": check,
        "help": help,
    }
    if isinstance(default, (list, dict)):
        frozen = default
        return dataclasses.field(default_factory=lambda: type(frozen)(frozen), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _describe(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in typing.get_args(annotation))
    if origin is list:
        return f"a list of {_describe(typing.get_args(annotation)[0])}s"
    if origin is dict or annotation is dict:
        return "a table"
    if annotation is type(None):
        return "none (leave the key out)"
    return {int: "an int", float: "a float", bool: "true or false", str: "a string"}.get(
        annotation, str(annotation)
    )


def _matches(value: Any, annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(annotation))
    if origin is list:
        item = typing.get_args(annotation)[0]
        return isinstance(value, list) and all(_matches(element, item) for element in value)
    if origin is dict or annotation is dict:
        return isinstance(value, dict)
    if annotation is Any:
        return True
    if annotation is type(None):
        return value is None
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, annotation)


def _bounds_text(metadata: Mapping[str, Any]) -> str:
    parts = []
    for name, symbol in (("minimum", ">="), ("above", ">"), ("maximum", "<="), ("below", "<")):
        if metadata.get(name) is not None:
            parts.append(f"{symbol} {metadata[name]}")
    return " and ".join(parts)


def _meaning(metadata: Mapping[str, Any]) -> str:
    """The option's help text, as the end of an error message about it."""
    return f" ({metadata['help']})" if metadata.get("help") else ""


def _check_value(value: Any, metadata: Mapping[str, Any], key: str) -> None:
    values = value if isinstance(value, list) else [value]
    choices = metadata.get("choices")
    for element in values:
        if choices is not None and element not in choices:
            allowed = ", ".join(repr(choice) for choice in choices)
            raise ConfigError(
                f"{key} = {element!r} is not allowed; allowed values: {allowed}"
                + _meaning(metadata)
            )
        huge = isinstance(element, int) and not -INT_LIMIT <= element < INT_LIMIT
        if huge and metadata.get("check") is None:
            raise ConfigError(
                f"{key} = {element!r} is out of range; integers in a config are 64-bit, "
                "in [-2**63, 2**63)"
            )
        if isinstance(element, (int, float)) and not isinstance(element, bool):
            if isinstance(element, float) and not math.isfinite(element):
                raise ConfigError(
                    f"{key} = {element!r} is not allowed; give a finite number" + _meaning(metadata)
                )
            low, high = metadata.get("minimum"), metadata.get("maximum")
            above, below = metadata.get("above"), metadata.get("below")
            if (
                (low is not None and element < low)
                or (high is not None and element > high)
                or (above is not None and element <= above)
                or (below is not None and element >= below)
            ):
                raise ConfigError(
                    f"{key} = {element!r} is out of range; allowed: {_bounds_text(metadata)}"
                    + _meaning(metadata)
                )


def parse_options(
    cls: type,
    table: Any,
    path: str,
    *,
    ignore: tuple[str, ...] = (),
    base: Path | None = None,
) -> Any:
    """Check ``table`` against the dataclass ``cls`` and build it.

    ``path`` is the table's dotted key (``"training"``, ``""`` for the top level) used in
    messages; keys in ``ignore``
    are skipped (e.g. the ``name`` that chose ``cls``). Relative ``path`` options are made
    absolute against ``base`` (the config file's folder). Ints are accepted for float fields
    and converted, so ``learning_rate = 1`` means ``1.0``.

    Examples
    --------
    >>> @dataclasses.dataclass(frozen=True)
    ... class Training:
    ...     epochs: int = option(10, minimum=1)
    ...     optimizer: str = option("adam", choices=("adam", "sgd"))
    >>> parse_options(Training, {"epochs": 3}, "training")
    Training(epochs=3, optimizer='adam')
    >>> parse_options(Training, {"optimizer": "lbfgs"}, "training")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pypaddle.errors.ConfigError: training.optimizer = 'lbfgs' is not allowed; allowed values: ...
    """
    if not isinstance(table, dict):
        raise ConfigError(f"{path} must be a table (a [{path}] section), got {table!r}")
    path = f"{path}." if path else ""
    hints = typing.get_type_hints(cls)
    fields = {field.name: field for field in dataclasses.fields(cls)}
    for key in table:
        if key not in fields and key not in ignore:
            allowed = ", ".join(sorted((*fields, *ignore)))
            raise ConfigError(f"{path}{key} is not a known key; allowed keys: {allowed}")
    values = {}
    for name, field in fields.items():
        key = f"{path}{name}"
        if name not in table:
            if (
                field.default is dataclasses.MISSING
                and field.default_factory is dataclasses.MISSING
            ):
                raise ConfigError(f"{key} is missing; give {_describe(hints[name])}")
            continue
        value = table[name]
        if not _matches(value, hints[name]):
            raise ConfigError(
                f"{key} = {value!r} has the wrong type; give {_describe(hints[name])}"
                + _meaning(field.metadata)
            )
        _check_value(value, field.metadata, key)
        if field.metadata.get("check") is not None:
            value = field.metadata["check"](value, key)
        if hints[name] is float:
            value = float(value)
        paths = field.metadata.get("path")
        if paths and base is not None:
            if isinstance(value, str):
                value = str((base / value).resolve())
            elif isinstance(value, dict) and isinstance(paths, tuple):
                value = {
                    k: str((base / v).resolve()) if k in paths and isinstance(v, str) else v
                    for k, v in value.items()
                }
        values[name] = value
    return cls(**values)


def options_to_dict(options: Any) -> dict[str, Any]:
    """The fields of an options dataclass as a plain dict (``None`` values left out)."""
    return {
        field.name: getattr(options, field.name)
        for field in dataclasses.fields(options)
        if getattr(options, field.name) is not None
    }
