"""The models an experiment config can name in its ``[model]`` table, and DAN structures.

A model builder returns a :class:`BuiltModel`: the module, the structure it was built
from (if any) and the masked layers whose mask entries are that structure's edges.
A DAN's structure comes from ``structure = {graphml = "file.graphml"}`` (or ``.json``,
read by :func:`pypaddle.graph.read`) or from a generator, ``structure = {generator =
"watts_strogatz", n = 64, k = 4, p = 0.3}``: the priors of :mod:`pypaddle.graph` in
:data:`STRUCTURES`, or any networkx generator as ``"networkx.<name>"``. An undirected
(or cyclic) graph is oriented into a DAG by the table's ``order`` key, the choice of
:func:`pypaddle.graph.to_dag`: ``"label"`` (the default: every edge points from the
smaller label to the larger), ``"random"`` (seeded by the run), ``"degree"`` (hubs
become sources) or an explicit list of every vertex. The layered priors
(``random_layered``, ``complete_layered``, ``small_world_layered``) are DAGs by
construction and take no ``order``. A prior that cannot give a connected DAG (its
vertices would have no edges at all, e.g. ``erdos_renyi`` with ``p = 0`` or
``watts_strogatz`` with ``k < 2``) is refused with a :class:`~pypaddle.errors.ConfigError`
naming the value.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import networkx as nx
import torch
from torch import nn

from pypaddle.data import Split
from pypaddle.errors import ConfigError, GraphFileError, InputTypeError
from pypaddle.experiments.options import option
from pypaddle.experiments.registry import MODELS
from pypaddle.graph import (
    barabasi_albert,
    complete_layered,
    erdos_renyi,
    random_layered,
    small_world_layered,
    to_dag,
    watts_strogatz,
    ws_flex,
)
from pypaddle.graph import read as read_structure
from pypaddle.sparse import (
    DeepCellDAN,
    MaskableModule,
    MaskedConvNet,
    MaskedDeepDAN,
    MaskedDeepFFN,
    MaskedGRU,
    MaskedLinearLayer,
    MaskedLSTM,
    MaskedRNN,
    RelationalCNN,
    RelationalMLP,
    conv_bn_relu_cell,
    masked_lenet5,
    masked_vgg,
    matched_width,
    separable_conv_cell,
)

__all__ = [
    "ACTIVATIONS",
    "STRUCTURES",
    "BuiltModel",
    "CellsOptions",
    "CnnOptions",
    "DanOptions",
    "FfnOptions",
    "RelationalCnnOptions",
    "RelationalMlpOptions",
    "RnnOptions",
    "SequenceClassifier",
    "relational_graph",
    "structure",
]

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
}
"""Activation modules by the name a config gives (``model.activation``)."""

_ACTIVATION_HELP = "the activation of the hidden layers"
_STRUCTURE_HELP = (
    "the DAG the model is built on: {graphml = 'file'} or {generator = '...', and its "
    "parameters} (a generator's seed defaults to the experiment's)"
)


STRUCTURES: dict[str, Callable[..., nx.Graph]] = {
    "erdos_renyi": erdos_renyi,
    "watts_strogatz": watts_strogatz,
    "barabasi_albert": barabasi_albert,
    "random_layered": random_layered,
    "complete_layered": complete_layered,
    "small_world_layered": small_world_layered,
    "ws_flex": ws_flex,
}
"""Structure generators by name: keyword parameters from the config, ``seed`` from the run.

Besides these, ``"networkx.<name>"`` names any graph generator of networkx (e.g.
``"networkx.random_geometric_graph"``); its graph is oriented by the table's ``order``
(default ``"label"``), as :func:`pypaddle.graph.to_dag` orients it.
"""


def _generator(name: Any) -> Callable[..., nx.Graph] | None:
    if name in STRUCTURES:
        return STRUCTURES[name]
    if isinstance(name, str) and name.startswith("networkx."):
        function = getattr(nx, name.removeprefix("networkx."), None)
        module = getattr(function, "__module__", "") or ""
        if callable(function) and module.startswith("networkx.generators"):
            return function
    return None


def _takes_order(name: str) -> bool:
    """Whether the ``order`` key of a generator table is allowed: any generator whose graph
    may be undirected (networkx's), and the priors of pypaddle.graph that take ``order``."""
    generator = _generator(name)
    return name.startswith("networkx.") or (
        generator is not None and "order" in inspect.signature(generator).parameters
    )


def _check_connectable(name: str, graph: nx.Graph, parameters: dict[str, Any], path: str) -> None:
    """Refuse a prior whose parameters give vertices without a single edge between them.

    Such a graph is never connected: a network built on it is one layer of unconnected
    neurons, not the structure the sweep meant to study.
    """
    vertices = graph.number_of_nodes()
    if vertices < 2 or graph.number_of_edges() > 0:
        return
    # Parameters that can never give an edge: (the key, when it is at fault, the remedy).
    never = {
        "erdos_renyi": (
            "p",
            lambda value: value == 0,
            "use p > 0 (from ln(n) / n on the graph is connected almost surely)",
        ),
        "watts_strogatz": (
            "k",
            lambda value: value < 2,
            "use k >= 2 (each vertex joins k // 2 ring neighbours on each side)",
        ),
        "small_world_layered": (
            "layers",
            lambda value: value < 2,
            "use layers >= 2 (edges run between lattice layers)",
        ),
    }
    if name in never:
        key, at_fault, fix = never[name]
        if key in parameters and at_fault(parameters[key]):
            raise ConfigError(
                f"{path}.{key} = {parameters[key]!r} cannot give a connected DAG: {name} "
                f"makes {vertices} vertices without a single edge; {fix}"
            )
    shown = {k: v for k, v in parameters.items() if k != "seed"}
    raise ConfigError(
        f"{path}: {name}({shown}) gave {vertices} vertices without a single edge (seed "
        f"{parameters.get('seed')!r}), so no connected DAG; choose parameters that give "
        "edges (a denser or larger graph)"
    )


_ORDER_PARAMETER = inspect.Parameter("order", inspect.Parameter.KEYWORD_ONLY, default="label")


def check_generator(table: dict[str, Any], path: str) -> tuple[str, dict[str, Any]]:
    """Check a ``{generator = ..., **parameters}`` table; return the name and parameters."""
    name = table.get("generator")
    generator = _generator(name)
    if generator is None or not isinstance(name, str):
        raise ConfigError(
            f"{path}.generator = {name!r} is not allowed; allowed values: "
            + ", ".join(repr(choice) for choice in STRUCTURES)
            + ", 'networkx.<any networkx graph generator>' (or give graphml = 'file.graphml')"
        )
    parameters = {key: value for key, value in table.items() if key != "generator"}
    accepted = {
        key: parameter
        for key, parameter in inspect.signature(generator).parameters.items()
        if key != "create_using" and parameter.kind is not inspect.Parameter.VAR_KEYWORD
    }
    if _takes_order(name):
        accepted.setdefault("order", _ORDER_PARAMETER)
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
    key for an unknown generator or parameter, and GraphFileError (a ValueError) for a
    GraphML file that is not a DAG.

    Examples
    --------
    >>> table = {"generator": "networkx.watts_strogatz_graph", "n": 10, "k": 2, "p": 0.0}
    >>> dag = structure(table, seed=0)
    >>> sorted(dag.edges)[:3], nx.is_directed_acyclic_graph(dag)
    ([(0, 1), (0, 9), (1, 2)], True)
    """
    if "graphml" in table:
        if set(table) != {"graphml"}:
            raise ConfigError(f"{path}: a graphml structure takes no other keys, got {table}")
        try:
            return read_structure(table["graphml"])
        except FileNotFoundError:
            raise ConfigError(f"{path}.graphml = {table['graphml']!r} does not exist") from None
        except GraphFileError as error:
            raise type(error)(f"{path}.graphml: {error}") from None
    name, parameters = check_generator(table, path)
    generator = _generator(name)
    if generator is None:  # pragma: no cover - check_generator refused it already
        raise ConfigError(f"{path}.generator = {name!r} is not allowed")
    takes_seed = "seed" in inspect.signature(generator).parameters
    if takes_seed:
        parameters.setdefault("seed", seed)
    # networkx's generators take no order: their graph is oriented here, as to_dag does.
    order = parameters.pop("order", "label") if name.startswith("networkx.") else None
    try:
        generated = generator(**parameters)
    except (nx.NetworkXError, TypeError, ValueError) as error:
        raise ConfigError(f"{path}: {name}({parameters}) failed: {error}") from None
    _check_connectable(name, generated, parameters, path)
    if order is None and generated.is_directed() and nx.is_directed_acyclic_graph(generated):
        return generated
    try:
        return to_dag(generated, order="label" if order is None else order, seed=seed)
    except (ConfigError, InputTypeError) as error:
        raise ConfigError(f"{path}.order = {order!r}: {error}") from None


def _check_structure(table: dict[str, Any], path: str) -> None:
    if "graphml" not in table:
        check_generator(table, path)
    else:
        structure(table, seed=0, path=path)


@dataclass
class BuiltModel:
    """A model and, if it was built from one, its structure and the layers holding its edges.

    ``current_structure`` reads the structure back from the masks (after pruning: the
    surviving graph); None for models that are not graph-shaped. ``prior_problems`` says
    why the structure the model was built from is degenerate for learning (the text of
    its :class:`~pypaddle.errors.StructureWarning`, one entry per problem; empty when
    none), and ``structure_problems`` says it for the current masks.
    """

    module: nn.Module
    structure: nx.DiGraph | None = None
    structure_layers: list[MaskableModule] = field(default_factory=list)
    current_structure: Callable[[], nx.DiGraph] | None = None
    prior_problems: list[str] = field(default_factory=list)
    structure_problems: Callable[[], list[str]] | None = None


def _edge_layers(layers: nn.ModuleList) -> list[MaskableModule]:
    """The masked layers whose mask entries are the structure's edges."""
    return [cast(MaskableModule, layer) for layer in layers]


@dataclass(frozen=True)
class FfnOptions:
    """Options of ``model.name = "ffn"``: a :class:`~pypaddle.sparse.MaskedDeepFFN`."""

    hidden_layers: list[int] = option(
        [100], minimum=1, help="the width of each hidden layer, in order"
    )
    activation: str = option("relu", choices=tuple(ACTIVATIONS), help=_ACTIVATION_HELP)
    use_layer_norm: bool = option(
        False, help="a LayerNorm after each hidden linear layer, before the activation"
    )


@MODELS.add("ffn", FfnOptions, description="MaskedDeepFFN: a masked feed-forward network")
def _ffn(options: FfnOptions, *, split: Split, seed: int) -> BuiltModel:
    model = MaskedDeepFFN(
        split.input_shape,
        split.num_outputs,
        options.hidden_layers,
        use_layer_norm=options.use_layer_norm,
        activation=ACTIVATIONS[options.activation],
    )
    return BuiltModel(
        model,
        model.generate_structure(),
        _edge_layers(model.layers_main_hidden[1:]),
        model.generate_structure,
    )


@dataclass(frozen=True)
class DanOptions:
    """Options of ``model.name = "dan"``: a :class:`~pypaddle.sparse.MaskedDeepDAN` built
    from ``structure``."""

    structure: dict = option(
        {"generator": "watts_strogatz", "n": 64, "k": 4, "p": 0.3},
        path=("graphml",),
        help=_STRUCTURE_HELP + ", one neuron per vertex",
    )
    activation: str = option(
        "relu", choices=tuple(ACTIVATIONS), help="the activation of every vertex"
    )
    use_layer_norm: bool = option(
        False,
        help="a LayerNorm over each layer's pre-activations (the same as normalization = 'layer')",
    )
    normalization: str = option(
        "none",
        choices=("none", "layer", "batch"),
        help="'batch': BatchNorm per vertex, for deep narrow graphs (runs the module path)",
    )
    init: str = option(
        "fan_in",
        choices=("fan_in", "legacy"),
        help="'fan_in': He per vertex over its active fan-in; 'legacy': the old uniform start",
    )

    def check(self, path: str) -> None:
        """Check the structure table when the config is loaded (a GraphML file is read)."""
        _check_structure(self.structure, f"{path}.structure")


@MODELS.add("dan", DanOptions, description="MaskedDeepDAN: one neuron per vertex of a DAG")
def _dan(options: DanOptions, *, split: Split, seed: int) -> BuiltModel:
    graph = structure(options.structure, seed=seed)
    model = MaskedDeepDAN(
        split.input_shape,
        split.num_outputs,
        graph,
        use_layer_norm=options.use_layer_norm,
        activation=ACTIVATIONS[options.activation],
        init=options.init,
        normalization=None if options.normalization == "none" else options.normalization,
    )
    return BuiltModel(
        model,
        graph,
        _edge_layers(model.layers_main_hidden[1:]),
        model.generate_structure,
        model.structure_problems(),
        model.structure_problems,
    )


def _image_shape(split: Split, model: str) -> tuple[int, int, int]:
    shape = split.input_shape
    if len(shape) != 3:
        raise ConfigError(
            f"a {model} model needs images [channels, height, width], but the data's samples "
            f"have shape {shape}; for the digits set data.image = true"
        )
    return shape


@dataclass(frozen=True)
class CnnOptions:
    """Options of ``model.name = "cnn"``: a :class:`~pypaddle.sparse.MaskedConvNet` or a preset."""

    preset: str = option(
        "custom",
        choices=("custom", "lenet5", "vgg11", "vgg13", "vgg16"),
        help="'custom': built from blocks, hidden_layers and kernel_size; 'lenet5' and the "
        "VGGs have their fixed layout",
    )
    blocks: list[int | str] = option([16, "M", 32, "M"], help='channels, or "M"/"A" pooling')
    hidden_layers: list[int] = option(
        [64], minimum=1, help="widths of the classifier's hidden layers after the convs (custom)"
    )
    kernel_size: int = option(3, minimum=1, help="side of the square conv kernels (custom)")
    batch_norm: bool = option(False, help="a BatchNorm after each conv (custom and VGG)")
    width: float = option(0.25, above=0.0, help="channel scale of the VGG presets")
    activation: str = option(
        "relu", choices=tuple(ACTIVATIONS), help="the activation after every conv and hidden layer"
    )


@MODELS.add("cnn", CnnOptions, description="MaskedConvNet: masked conv blocks and a classifier")
def _cnn(options: CnnOptions, *, split: Split, seed: int) -> BuiltModel:
    shape = _image_shape(split, "cnn")
    activation = ACTIVATIONS[options.activation]
    if options.preset == "lenet5":
        model = masked_lenet5(shape, split.num_outputs, activation=activation)
    elif options.preset.startswith("vgg"):
        model = masked_vgg(
            int(options.preset[3:]),
            shape,
            split.num_outputs,
            width=options.width,
            batch_norm=options.batch_norm,
            activation=activation,
        )
    else:
        model = MaskedConvNet(
            shape,
            split.num_outputs,
            options.blocks,
            hidden_layers=options.hidden_layers,
            kernel_size=options.kernel_size,
            batch_norm=options.batch_norm,
            activation=activation,
        )
    return BuiltModel(model)


class SequenceClassifier(nn.Module):
    """A masked recurrent net reading each sample as ``steps`` rows, then a masked linear head.

    The features of a sample (any shape) are flattened and cut into ``steps`` equal rows
    (an 8x8 digit: 8 steps of 8 pixels); the head reads the last step's output.
    """

    def __init__(
        self, recurrent: nn.Module, steps: int, features: int, hidden: int, outputs: int
    ) -> None:
        super().__init__()
        self.steps, self.features = steps, features
        self.recurrent = recurrent
        self.head = MaskedLinearLayer(hidden, outputs)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        sequence = input.reshape(input.shape[0], self.steps, self.features)
        output, _ = self.recurrent(sequence.to(self.head.weight.dtype))
        return self.head(output[:, -1])


_RECURRENT = {"lstm": MaskedLSTM, "gru": MaskedGRU, "rnn": MaskedRNN}


@dataclass(frozen=True)
class RnnOptions:
    """Options of ``model.name = "rnn"``: a masked LSTM, GRU or RNN reading samples row by row."""

    cell: str = option(
        "lstm", choices=tuple(_RECURRENT), help="the recurrent layer: LSTM, GRU or a plain RNN"
    )
    hidden_size: int = option(
        64, minimum=1, help="units of the recurrent state (the head reads it)"
    )
    num_layers: int = option(1, minimum=1, help="recurrent layers stacked on each other")
    steps: int = option(8, minimum=1, help="the features of a sample are read as this many rows")


@MODELS.add("rnn", RnnOptions, description="MaskedLSTM/GRU/RNN reading samples row by row")
def _rnn(options: RnnOptions, *, split: Split, seed: int) -> BuiltModel:
    features, rest = divmod(split.num_features, options.steps)
    if rest:
        raise ConfigError(
            f"model.steps = {options.steps} does not divide the {split.num_features} features "
            "of a sample; give a divisor"
        )
    recurrent = _RECURRENT[options.cell](
        features, options.hidden_size, num_layers=options.num_layers, batch_first=True
    )
    model = SequenceClassifier(
        recurrent, options.steps, features, options.hidden_size, split.num_outputs
    )
    return BuiltModel(model)


_CELLS = {"conv_bn_relu": conv_bn_relu_cell, "separable_conv": separable_conv_cell}


@dataclass(frozen=True)
class CellsOptions:
    """Options of ``model.name = "cells"``: a :class:`~pypaddle.sparse.DeepCellDAN`."""

    structure: dict = option(
        {"generator": "watts_strogatz", "n": 16, "k": 4, "p": 0.75},
        path=("graphml",),
        help=_STRUCTURE_HELP + ", one conv cell per vertex",
    )
    cell: str = option(
        "conv_bn_relu",
        choices=tuple(_CELLS),
        help="the cell of every vertex: conv, BatchNorm, ReLU or a separable conv (RandWire's)",
    )
    kernel_size: int = option(3, minimum=1, help="side of each cell's square conv kernel")
    output_channels: int = option(
        32, minimum=1, help="channels of the masked 1x1 conv that merges the sinks' outputs"
    )

    def check(self, path: str) -> None:
        """Check the structure table when the config is loaded, as a DAN's."""
        _check_structure(self.structure, f"{path}.structure")


@MODELS.add("cells", CellsOptions, description="DeepCellDAN: one conv cell per vertex")
def _cells(options: CellsOptions, *, split: Split, seed: int) -> BuiltModel:
    shape = _image_shape(split, "cells")
    graph = structure(options.structure, seed=seed)
    model = DeepCellDAN(
        split.num_outputs,
        shape[0],
        functools.partial(_CELLS[options.cell], kernel_size=options.kernel_size),
        graph,
        output_channels=options.output_channels,
    )
    return BuiltModel(model, graph, current_structure=model.cell_structure)


# -- relational networks (You et al. 2020) ------------------------------------------------
def relational_graph(table: dict[str, Any], *, seed: int, path: str = "model.graph") -> nx.Graph:
    """The undirected relational graph a ``{generator = ..., **parameters}`` table names.

    Any generator a structure may name (``"ws_flex"``, ``"watts_strogatz"``,
    ``"networkx.<name>"``, ...); a directed result gives its undirected skeleton. A
    generator's ``seed`` defaults to the experiment's.

    Examples
    --------
    >>> graph = relational_graph({"generator": "ws_flex", "n": 16, "k": 4.5, "p": 0.0}, seed=0)
    >>> graph.is_directed(), graph.number_of_nodes(), graph.number_of_edges()
    (False, 16, 36)
    """
    name, parameters = check_generator(table, path)
    generator = _generator(name)
    if generator is None:  # pragma: no cover - check_generator refused it already
        raise ConfigError(f"{path}.generator = {name!r} is not allowed")
    if "seed" in inspect.signature(generator).parameters:
        parameters.setdefault("seed", seed)
    if name.startswith("networkx."):
        parameters.pop("order", None)  # an orientation means nothing to the skeleton
    try:
        generated = generator(**parameters)
    except (nx.NetworkXError, TypeError, ValueError) as error:
        raise ConfigError(f"{path}: {name}({parameters}) failed: {error}") from None
    return nx.Graph(generated)


def _relational_built(model: RelationalMLP | RelationalCNN) -> BuiltModel:
    """A relational model's structure is its relational graph, oriented by label so that it
    is a DAG (GraphML, drawings); its undirected measures are You et al.'s C and L."""
    return BuiltModel(
        model,
        to_dag(model.graph),
        _edge_layers(nn.ModuleList(model.relational_layers)),
        lambda: to_dag(model.relational_graph()),
    )


_GRAPH_DEFAULT = {"generator": "ws_flex", "n": 16, "k": 6.0, "p": 0.3}
_GRAPH_HELP = "the relational graph: {generator = 'ws_flex', n = ..., k = ..., p = ...} or any"
_WIDTH_HELP = "units per hidden layer (with match_width: the width of the dense baseline)"
_MATCH_HELP = "choose the width at which the model has the dense baseline's parameter count"
_UNEVEN_HELP = "allow widths that the node count does not divide (the first nodes own one more)"


@dataclass(frozen=True)
class RelationalMlpOptions:
    """Options of ``model.name = "relational_mlp"``: a
    :class:`~pypaddle.sparse.RelationalMLP` on the graph that the ``graph`` table names
    (its undirected skeleton; seeded by the experiment unless the table gives a seed),
    ``width`` units per hidden layer or, with ``match_width``, the width at which it has
    the parameter count of the dense MLP that is ``width`` wide."""

    graph: dict = option(_GRAPH_DEFAULT, help=_GRAPH_HELP + " structure generator")
    width: int = option(64, minimum=1, help=_WIDTH_HELP)
    layers: int = option(3, minimum=1, help="relational layers (rounds of message exchange)")
    match_width: bool = option(False, help=_MATCH_HELP)
    uneven: bool = option(False, help=_UNEVEN_HELP)
    activation: str = option("relu", choices=tuple(ACTIVATIONS), help=_ACTIVATION_HELP)
    use_layer_norm: bool = option(
        False, help="a LayerNorm after each hidden layer, before the activation"
    )

    def check(self, path: str) -> None:
        """Check the graph table when the config is loaded."""
        check_generator(self.graph, f"{path}.graph")


@MODELS.add(
    "relational_mlp",
    RelationalMlpOptions,
    description="RelationalMLP: hidden layers exchange messages on a graph (You et al. 2020)",
)
def _relational_mlp(options: RelationalMlpOptions, *, split: Split, seed: int) -> BuiltModel:
    graph = relational_graph(options.graph, seed=seed)
    width = options.width
    if options.match_width:
        width = matched_width(
            graph,
            width,
            inputs=split.num_features,
            outputs=split.num_outputs,
            layers=options.layers,
            norm=options.use_layer_norm,
            uneven=options.uneven,
        )
    model = RelationalMLP(
        split.input_shape,
        split.num_outputs,
        graph,
        width,
        layers=options.layers,
        uneven=options.uneven,
        use_layer_norm=options.use_layer_norm,
        activation=ACTIVATIONS[options.activation],
    )
    return _relational_built(model)


@dataclass(frozen=True)
class RelationalCnnOptions:
    """Options of ``model.name = "relational_cnn"``: a
    :class:`~pypaddle.sparse.RelationalCNN` on the ``graph`` table's graph, with the keys
    of ``relational_mlp`` and the conv's ``kernel_size``, ``pool_after`` and
    ``batch_norm``; it needs images (``data.image = true`` for the digits)."""

    graph: dict = option(_GRAPH_DEFAULT, help=_GRAPH_HELP + " structure generator")
    width: int = option(32, minimum=1, help=_WIDTH_HELP)
    layers: int = option(3, minimum=1, help="relational convs (rounds of message exchange)")
    kernel_size: int = option(3, minimum=1, help="side of every conv's square kernel")
    pool_after: list[int] = option([], minimum=0, help="relational layers followed by 2x2 pooling")
    batch_norm: bool = option(False, help="a BatchNorm after every conv, before the activation")
    match_width: bool = option(False, help=_MATCH_HELP)
    uneven: bool = option(False, help=_UNEVEN_HELP)
    activation: str = option(
        "relu", choices=tuple(ACTIVATIONS), help="the activation after every conv"
    )

    def check(self, path: str) -> None:
        """Check the graph table when the config is loaded."""
        check_generator(self.graph, f"{path}.graph")


@MODELS.add(
    "relational_cnn",
    RelationalCnnOptions,
    description="RelationalCNN: conv channels exchange messages on a graph (You et al. 2020)",
)
def _relational_cnn(options: RelationalCnnOptions, *, split: Split, seed: int) -> BuiltModel:
    shape = _image_shape(split, "relational_cnn")
    graph = relational_graph(options.graph, seed=seed)
    width = options.width
    if options.match_width:
        width = matched_width(
            graph,
            width,
            inputs=shape[0],
            outputs=split.num_outputs,
            layers=options.layers,
            kernel_size=options.kernel_size,
            norm=options.batch_norm,
            uneven=options.uneven,
        )
    model = RelationalCNN(
        shape,
        split.num_outputs,
        graph,
        width,
        layers=options.layers,
        kernel_size=options.kernel_size,
        pool_after=options.pool_after,
        batch_norm=options.batch_norm,
        uneven=options.uneven,
        activation=ACTIVATIONS[options.activation],
    )
    return _relational_built(model)
