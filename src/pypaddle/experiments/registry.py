"""Named components an experiment config can choose: data sets, models, sparsification methods.

A :class:`Registry` maps a name (``data.name = "digits"``) to a :class:`Component`: an
options dataclass (validated by :func:`~pypaddle.experiments.options.parse_options`) and a
``build`` function. Adding a component is one decorated function::

    @MODELS.add("mlp2", Mlp2Options, description="...")
    def _build_mlp2(options, *, split, seed): ...

The built-in components are registered by :mod:`pypaddle.experiments.sources`,
:mod:`pypaddle.experiments.models` and :mod:`pypaddle.experiments.methods`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pypaddle.errors import ConfigError
from pypaddle.experiments.options import parse_options

__all__ = ["DATA", "METHODS", "MODELS", "Component", "Registry"]


@dataclass(frozen=True)
class Component:
    """One choice of a registry: its name, options dataclass, builder and a one-line summary."""

    name: str
    options: type
    build: Callable[..., Any]
    description: str


class Registry:
    """Components of one kind, chosen in a config table by the ``key`` entry.

    Examples
    --------
    >>> import dataclasses
    >>> shapes = Registry("shape", key="name")
    >>> @dataclasses.dataclass(frozen=True)
    ... class Square:
    ...     side: float = 1.0
    >>> @shapes.add("square", Square, description="a square")
    ... def area(options):
    ...     return options.side**2
    >>> component, options = shapes.parse({"name": "square", "side": 3}, "shape")
    >>> component.build(options)
    9.0
    >>> shapes.parse({"name": "circle"}, "shape")
    Traceback (most recent call last):
    ...
    pypaddle.errors.ConfigError: shape.name = 'circle' is not allowed; allowed values: 'square'
    """

    def __init__(self, kind: str, *, key: str) -> None:
        self.kind = kind
        self.key = key
        self._components: dict[str, Component] = {}

    def add(
        self, name: str, options: type, *, description: str = ""
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Register the decorated builder under ``name`` with its options dataclass."""

        def register(build: Callable[..., Any]) -> Callable[..., Any]:
            self._components[name] = Component(name, options, build, description)
            return build

        return register

    def names(self) -> list[str]:
        """The registered names, in registration order."""
        return list(self._components)

    def __contains__(self, name: object) -> bool:
        return name in self._components

    def get(self, name: Any, path: str) -> Component:
        """The component ``name``; a ConfigError naming ``path.key`` and the choices if none."""
        if not isinstance(name, str) or name not in self._components:
            allowed = ", ".join(repr(choice) for choice in self._components)
            raise ConfigError(
                f"{path}.{self.key} = {name!r} is not allowed; allowed values: {allowed}"
            )
        return self._components[name]

    def parse(
        self, table: Any, path: str, *, default: str | None = None, base: Path | None = None
    ) -> tuple[Component, Any]:
        """Choose the component named by ``table[key]`` and validate the rest of ``table``.

        An options dataclass with a ``check(path)`` method gets it called after the types
        and ranges are checked."""
        if not isinstance(table, dict):
            raise ConfigError(f"{path} must be a table (a [{path}] section), got {table!r}")
        name = table.get(self.key, default)
        if name is None:
            raise ConfigError(
                f"{path}.{self.key} is missing; allowed values: "
                + ", ".join(repr(choice) for choice in self._components)
            )
        component = self.get(name, path)
        options = parse_options(component.options, table, path, ignore=(self.key,), base=base)
        check = getattr(options, "check", None)
        if check is not None:  # checks across keys, e.g. a structure's parameters
            check(path)
        return component, options


DATA = Registry("data", key="name")
"""Data sets: ``build(options, *, seed) -> pypaddle.data.Split``."""

MODELS = Registry("model", key="name")
"""Models: ``build(options, *, split, seed) -> BuiltModel``."""

METHODS = Registry("sparsification method", key="method")
"""Sparsification methods: ``build(options) -> Sparsifier``."""
