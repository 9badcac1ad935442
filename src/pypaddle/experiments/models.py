"""The models an experiment config can name in its ``[model]`` table, and DAN structures.

A model builder returns a :class:`BuiltModel`: the module, the structure it was built
from (if any) and the masked layers whose mask entries are that structure's edges.
A DAN's structure comes from ``structure = {graphml = "file.graphml"}`` or from a
generator, ``structure = {generator = "watts_strogatz", n = 64, k = 4, p = 0.3}``; the
names in :data:`STRUCTURES` are the choices. An undirected (or cyclic) generated graph is
oriented by label: every edge points from the smaller vertex label to the larger.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
from torch import nn

from pypaddle.data import Split
from pypaddle.errors import ConfigError, StructureError
from pypaddle.experiments.options import option
from pypaddle.experiments.registry import MODELS
from pypaddle.graph import CachedLayeredGraph
from pypaddle.sparse import MaskableModule, MaskedDeepDAN, MaskedDeepFFN

__all__ = ["ACTIVATIONS", "STRUCTURES", "BuiltModel", "DanOptions", "FfnOptions", "structure"]

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
}


def _small_world_layered(
    layers: int = 4, width: int = 64, neighbours: int = 8, p: float = 0.1, *, seed: int = 0
) -> nx.DiGraph:
    from pypaddle.experiments.demo import _small_world_layered as build

    return build(layers, width, neighbours, p, seed=seed)


STRUCTURES: dict[str, Callable[..., nx.Graph]] = {
    "erdos_renyi": nx.gnp_random_graph,
    "watts_strogatz": nx.watts_strogatz_graph,
    "newman_watts_strogatz": nx.newman_watts_strogatz_graph,
    "barabasi_albert": nx.barabasi_albert_graph,
    "random_regular": nx.random_regular_graph,
    "small_world_layered": _small_world_layered,
}
"""Structure generators by name: keyword parameters from the config, ``seed`` from the run."""


def _orient_by_label(graph: nx.Graph) -> CachedLayeredGraph:
    dag = CachedLayeredGraph()
    dag.add_nodes_from(graph.nodes(data=True))
    ordered = sorted(graph.nodes)
    rank = dict(zip(ordered, range(len(ordered))))
    dag.add_edges_from((u, v) if rank[u] < rank[v] else (v, u) for u, v in graph.edges if u != v)
    return dag


def check_generator(table: dict[str, Any], path: str) -> tuple[str, dict[str, Any]]:
    """Check a ``{generator = ..., **parameters}`` table; return the name and parameters."""
    name = table.get("generator")
    if name not in STRUCTURES:
        raise ConfigError(
            f"{path}.generator = {name!r} is not allowed; allowed values: "
            + ", ".join(repr(choice) for choice in STRUCTURES)
            + " (or give graphml = 'file.graphml' instead)"
        )
    parameters = {key: value for key, value in table.items() if key != "generator"}
    accepted = {
        key: parameter
        for key, parameter in inspect.signature(STRUCTURES[name]).parameters.items()
        if key != "create_using" and parameter.kind is not inspect.Parameter.VAR_KEYWORD
    }
    for key in parameters:
        if key not in accepted:
            raise ConfigError(
                f"{path}.{key} is not a parameter of {name}; allowed keys: {', '.join(accepted)}"
            )
    missing = [
        key
        for key, parameter in accepted.items()
        if parameter.default is inspect.Parameter.empty and key not in parameters
    ]
    if missing:
        raise ConfigError(f"{path}.{missing[0]} is missing; {name} needs {', '.join(missing)}")
    return name, parameters


def structure(table: dict[str, Any], *, seed: int, path: str = "model.structure") -> nx.DiGraph:
    """Build the structure a ``{graphml = ...}`` or ``{generator = ..., **parameters}`` names.

    A generator's ``seed`` defaults to the experiment's. Raises ConfigError naming the
    key for an unknown generator or parameter, and StructureError for a cyclic GraphML file.

    Examples
    --------
    >>> graph = structure({"generator": "watts_strogatz", "n": 10, "k": 2, "p": 0.0}, seed=0)
    >>> sorted(graph.edges)[:3], nx.is_directed_acyclic_graph(graph)
    ([(0, 1), (0, 9), (1, 2)], True)
    """
    if "graphml" in table:
        if set(table) != {"graphml"}:
            raise ConfigError(f"{path}: a graphml structure takes no other keys, got {table}")
        try:
            graph = nx.read_graphml(table["graphml"])
        except FileNotFoundError:
            raise ConfigError(f"{path}.graphml = {table['graphml']!r} does not exist") from None
        except Exception as error:  # networkx raises many kinds for a foreign file
            raise ConfigError(f"{path}.graphml: cannot read it as GraphML ({error})") from None
        if not graph.is_directed():
            raise StructureError(f"{path}.graphml holds an undirected graph; a DAG is needed")
        if not nx.is_directed_acyclic_graph(graph):
            cycle = [u for u, _ in nx.find_cycle(graph)]
            raise StructureError(
                f"{path}.graphml = {table['graphml']!r} has a cycle {' -> '.join(cycle)}; "
                "a structure must be acyclic"
            )
        return graph
    name, parameters = check_generator(table, path)
    generator = STRUCTURES[name]
    parameters.setdefault("seed", seed)
    try:
        graph = generator(**parameters)
    except (nx.NetworkXError, TypeError, ValueError) as error:
        raise ConfigError(f"{path}: {name}({parameters}) failed: {error}") from None
    if graph.is_directed() and nx.is_directed_acyclic_graph(graph):
        return graph
    return _orient_by_label(graph)


@dataclass
class BuiltModel:
    """A model and, if it was built from one, its structure and the layers holding its edges."""

    module: nn.Module
    structure: nx.DiGraph | None = None
    structure_layers: list[MaskableModule] = field(default_factory=list)


@dataclass(frozen=True)
class FfnOptions:
    hidden_layers: list[int] = option([100], minimum=1)  # noqa: RUF009 (a field)
    activation: str = option("relu", choices=tuple(ACTIVATIONS))
    use_layer_norm: bool = False


@MODELS.add("ffn", FfnOptions, description="MaskedDeepFFN: a masked feed-forward network")
def _ffn(options: FfnOptions, *, split: Split, seed: int) -> BuiltModel:
    model = MaskedDeepFFN(
        split.input_shape,
        split.num_outputs,
        options.hidden_layers,
        use_layer_norm=options.use_layer_norm,
        activation=ACTIVATIONS[options.activation],
    )
    return BuiltModel(model, model.generate_structure(), list(model.layers_main_hidden[1:]))


@dataclass(frozen=True)
class DanOptions:
    structure: dict = option(  # noqa: RUF009 (a field)
        {"generator": "watts_strogatz", "n": 64, "k": 4, "p": 0.3}, path=("graphml",)
    )
    activation: str = option("relu", choices=tuple(ACTIVATIONS))
    use_layer_norm: bool = False

    def check(self, path: str) -> None:
        """Check the structure table when the config is loaded (a GraphML file is read)."""
        if "graphml" not in self.structure:
            check_generator(self.structure, f"{path}.structure")
        else:
            structure(self.structure, seed=0, path=f"{path}.structure")


@MODELS.add("dan", DanOptions, description="MaskedDeepDAN: one neuron per vertex of a DAG")
def _dan(options: DanOptions, *, split: Split, seed: int) -> BuiltModel:
    graph = structure(options.structure, seed=seed)
    model = MaskedDeepDAN(
        split.input_shape,
        split.num_outputs,
        graph,
        use_layer_norm=options.use_layer_norm,
        activation=ACTIVATIONS[options.activation],
    )
    return BuiltModel(model, graph, list(model.layers_main_hidden[1:]))
