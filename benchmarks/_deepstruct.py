"""The peer library deepstruct 0.10, called through a thin adapter.

deepstruct pins an old torch, so it is installed without its dependencies. Whatever of it
cannot run here raises :class:`Unavailable` with the reason, and the benchmark prints
that reason instead of a number.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import warnings
from collections.abc import Hashable
from types import ModuleType
from typing import Any

import networkx as nx
from torch import nn

__all__ = [
    "Unavailable",
    "build_layer_index",
    "checked",
    "dan",
    "ffn",
    "generate_structure",
    "graph_transform",
    "layered_graph",
    "prune_by_magnitude",
    "version",
]


class Unavailable(RuntimeError):
    """deepstruct (or one part of it) cannot run here; the message says why."""


def _module(name: str) -> ModuleType:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return importlib.import_module(name)
    except Exception as error:
        raise Unavailable(f"import {name} failed: {type(error).__name__}: {error}") from None


def version() -> str:
    """The installed deepstruct version if its modules import, else Unavailable."""
    try:
        installed = importlib.metadata.version("deepstruct")
    except importlib.metadata.PackageNotFoundError:
        raise Unavailable("deepstruct is not installed (make bench installs it)") from None
    _module("deepstruct.graph")
    _module("deepstruct.sparse")
    return installed


def _run(what: str, function: Any, *args: Any) -> Any:
    try:
        with warnings.catch_warnings():
            # generate_structure and friends are marked deprecated in 0.10.
            warnings.simplefilter("ignore", DeprecationWarning)
            return function(*args)
    except Unavailable:
        raise
    except Exception as error:
        raise Unavailable(f"{what} failed: {type(error).__name__}: {error}") from None


def checked(what: str, function: Any) -> Any:
    """``function`` after one successful call (a failing call raises Unavailable)."""
    _run(what, function)
    return function


def layered_graph(structure: nx.DiGraph) -> nx.DiGraph:
    """A fresh deepstruct ``CachedLayeredGraph`` with the vertices and edges of ``structure``.

    Fresh, so that its cached layer index is computed (and timed) again.
    """
    graph = _module("deepstruct.graph").CachedLayeredGraph()
    graph.add_nodes_from(structure.nodes)
    graph.add_edges_from(structure.edges)
    return graph


def dan(size_input: int, size_output: int, structure: nx.DiGraph) -> nn.Module:
    """deepstruct's ``MaskedDeepDAN`` on a deepstruct graph (see :func:`layered_graph`)."""
    sparse = _module("deepstruct.sparse")
    return _run("MaskedDeepDAN", sparse.MaskedDeepDAN, size_input, size_output, structure)


def ffn(size_input: int, size_output: int, hidden_layers: list[int]) -> nn.Module:
    """deepstruct's ``MaskedDeepFFN``."""
    sparse = _module("deepstruct.sparse")
    return _run("MaskedDeepFFN", sparse.MaskedDeepFFN, size_input, size_output, hidden_layers)


def generate_structure(model: nn.Module) -> nx.DiGraph:
    """``model.generate_structure()`` of a deepstruct model."""
    return _run("generate_structure", model.generate_structure)


def graph_transform(example_input: Any) -> Any:
    """deepstruct's ``GraphTransform(example_input).transform`` (it patches the model)."""
    transform = _module("deepstruct.transform").GraphTransform(example_input)
    return lambda model: _run("GraphTransform", transform.transform, model)


def build_layer_index(
    graph: nx.DiGraph,
) -> tuple[dict[Hashable, int], dict[int, list[Hashable]]]:
    """deepstruct's ``build_layer_index`` (layer of every vertex, vertices of every layer)."""
    function = _module("deepstruct.graph").build_layer_index
    return _run("build_layer_index", function, graph)


def prune_by_magnitude(model: nn.Module, percent: float) -> None:
    """deepstruct's global magnitude pruning: mask ``percent`` % of the weights of ``model``."""
    pruning = _module("deepstruct.pruning")
    _run("prune_network_by_saliency", pruning.prune_network_by_saliency, model, percent)
