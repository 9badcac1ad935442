"""Reading and writing structures losslessly: GraphML and JSON node-link, chosen by suffix.

What survives a round trip exactly: the vertices in insertion order, their labels (``int``
or ``str``; GraphML stores ids as text, so the label type is recorded in the file and
ints come back as ints), the edges, graph / vertex / edge attributes and the graph's
class (``DiGraph``, ``LayeredGraph`` or ``CachedLayeredGraph``). Every vertex's layer is
stored too, and checked against the edges on reading, which catches files edited by hand
into inconsistency.

What is refused, before anything is written: undirected graphs, multigraphs, self-loops,
cycles, labels other than ``int`` / ``str`` (tuples, floats, bools; relabel them, e.g.
with ``networkx.relabel_nodes(graph, str)``; numpy integers are written as ints and come
back as Python ints), and attribute values a
format cannot give back as they were. In GraphML these are values other than ``bool``,
``int``, ``float`` and ``str``, one name holding values of different types, and ints and
strs mixed as labels. In JSON they are tuples, sets, numpy values and other non-JSON
values (lists and dicts of JSON values are fine). The file is written to a temporary
file beside the target and renamed into place, so an error never leaves a half-written
file.
"""

from __future__ import annotations

import json
import math
import numbers
import os
from collections import Counter
from collections.abc import Hashable
from pathlib import Path
from typing import Any, cast
from xml.etree import ElementTree

import networkx as nx

from pypaddle._core.files import atomic_write_with, check_target
from pypaddle.errors import GraphFileError, InputTypeError, StructureError
from pypaddle.graph.layering import layer_array

__all__ = ["read", "write"]

_FORMAT = "pypaddle_format"
_LABEL_TYPE = "pypaddle_label_type"
_CLASS = "pypaddle_graph_class"
_LAYER = "pypaddle_layer"
_VERSION = 1
# The graph classes a file may name, by name. pypaddle.graph.layered adds LayeredGraph and
# CachedLayeredGraph when it is imported (as pypaddle.graph always is before this module):
# their save / load call this module, so this module does not import them.
GRAPH_CLASSES: dict[str, type[nx.DiGraph]] = {"DiGraph": nx.DiGraph}
_SUFFIXES = (".graphml", ".json")


def _path(path: Any, what: str) -> Path:
    if isinstance(path, bytes) or not isinstance(path, str | os.PathLike):
        raise InputTypeError(
            f"{what} needs a file path (str or os.PathLike) ending in .graphml or .json, got "
            f"{type(path).__name__} {path!r}"
        )
    return Path(path)


def _format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in _SUFFIXES:
        raise GraphFileError(
            f"cannot tell the format of {str(path)!r} from its suffix {suffix!r}; "
            "use .graphml (GraphML) or .json (node-link JSON)"
        )
    return suffix[1:]


# -- checks before writing -----------------------------------------------------------------
def _check_structure(graph: Any) -> None:
    if not isinstance(graph, nx.Graph):
        raise InputTypeError(f"write needs a networkx.DiGraph, got {type(graph).__name__}")
    if graph.is_multigraph():
        raise StructureError(
            f"cannot write a {type(graph).__name__}: parallel edges do not survive a round "
            "trip; collapse them with networkx.DiGraph(graph)"
        )
    if not graph.is_directed():
        raise StructureError(
            "cannot write an undirected graph as a structure; orient it first with "
            "pypaddle.graph.to_dag(graph)"
        )
    loops = list(nx.selfloop_edges(graph))
    if loops:
        raise StructureError(
            f"the graph has self-loops, e.g. {loops[0]!r}; a structure has none, so remove "
            "them with graph.remove_edges_from(networkx.selfloop_edges(graph))"
        )


def _plain_labels(graph: nx.DiGraph, suffix: str) -> tuple[str, dict[Hashable, int | str]]:
    """The label type to record and every label as the ``int`` or ``str`` to write.

    numpy integers (``add_nodes_from(np.arange(n))``, common with the original API) are
    written as ints and so come back as Python ints, which compare and hash equal.
    """
    plain: dict[Hashable, int | str] = {}
    for vertex in graph:
        if type(vertex) is int or type(vertex) is str:
            plain[vertex] = vertex
        elif isinstance(vertex, numbers.Integral) and not isinstance(vertex, bool):
            plain[cast(Hashable, vertex)] = int(vertex)
        else:
            raise InputTypeError(
                f"vertex label {vertex!r} of type {type(vertex).__name__} cannot be written: "
                "labels must be int or str; relabel the graph first, e.g. with "
                "networkx.relabel_nodes(graph, str) (each label becomes its text) or "
                "networkx.convert_node_labels_to_integers(graph)"
            )
    kinds = {type(label) for label in plain.values()}
    if kinds == {int, str}:
        if suffix == "graphml":
            raise InputTypeError(
                "GraphML stores vertex ids as text, so a graph mixing int and str labels "
                "cannot come back exactly; write it as .json or use one label type"
            )
        return "mixed", plain
    return ("int" if kinds == {int} else "str"), plain


_GRAPHML_TYPES = (bool, int, float, str)


def _check_attributes(items: Any, where: str, suffix: str, reserved: set[str]) -> None:
    """Every attribute value must come back as it was; GraphML wants one type per name."""
    types: dict[str, type] = {}
    for owner, data in items:
        for name, value in data.items():
            if not isinstance(name, str):
                raise InputTypeError(f"{where} attribute name {name!r} of {owner!r} is not a str")
            if name in reserved:
                raise InputTypeError(
                    f"{where} attribute {name!r} of {owner!r} is reserved by the file format; "
                    "rename it"
                )
            if suffix == "graphml":
                kind = type(value)
                if kind not in _GRAPHML_TYPES:
                    raise InputTypeError(
                        f"{where} attribute {name!r} of {owner!r} is a {kind.__name__}; GraphML "
                        "keeps only bool, int, float and str values: convert it or write .json"
                    )
                if types.setdefault(name, kind) is not kind:
                    raise InputTypeError(
                        f"{where} attribute {name!r} holds both {types[name].__name__} and "
                        f"{kind.__name__} values; GraphML keeps one type per attribute: make "
                        "them agree or write .json"
                    )
            else:
                _check_json_value(value, f"{where} attribute {name!r} of {owner!r}")


def _check_json_value(value: Any, where: str) -> None:
    kind = type(value)
    if value is None or kind in (bool, int, str):
        return
    if kind is float:
        if not math.isfinite(value):
            raise InputTypeError(f"{where} is {value!r}; JSON has no NaN or infinity")
        return
    if kind is list:
        for item in value:
            _check_json_value(item, where)
        return
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise InputTypeError(f"{where} has the dict key {key!r}; JSON keys are strs")
            _check_json_value(item, where)
        return
    raise InputTypeError(
        f"{where} is a {kind.__name__}, which JSON does not give back as it was; use "
        "None, bool, int, float, str, or lists and dicts of those"
    )


# -- writing -------------------------------------------------------------------------------
def write(graph: nx.DiGraph, path: str | os.PathLike[str]) -> Path:
    """Write a structure to ``path``: GraphML for ``.graphml``, node-link JSON for ``.json``.

    The graph must be a simple directed acyclic graph with ``int`` or ``str`` labels; see
    the module documentation for what survives a round trip through :func:`read` and what
    is refused. Nothing is written unless the whole graph can be written: the file is
    made beside ``path`` under a temporary name and renamed into place at the end.

    Parameters
    ----------
    graph : networkx.DiGraph
        The structure.
    path : str or path-like
        The file; its suffix chooses the format.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    StructureError
        An undirected graph, a multigraph, a self-loop, a cycle.
    InputTypeError
        A label or an attribute the format cannot give back exactly; a path that is not a
        str or path-like.
    GraphFileError
        An unknown suffix.
    ConfigError
        ``path`` is a folder, or one of its folders is a file (missing folders are made).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from pypaddle.graph import random_layered
    >>> graph = random_layered([3, 2], density=0.5, seed=0)
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> again = read(write(graph, folder / "structure.graphml"))
    >>> list(again.edges) == list(graph.edges), again.nodes[4] == graph.nodes[4]
    (True, True)
    """
    path = _path(path, "write")
    suffix = _format(path)
    check_target(path)
    _check_structure(graph)
    label_type, plain = _plain_labels(graph, suffix)
    vertices, layers = layer_array(graph)
    # node-link JSON keeps the label in "id" and an edge's ends in "source" / "target".
    vertex_reserved = {_LAYER, "id"} if suffix == "json" else {_LAYER}
    edge_reserved = {"source", "target"} if suffix == "json" else set()
    _check_attributes([("the graph", graph.graph)], "graph", suffix, {_FORMAT, _LABEL_TYPE, _CLASS})
    _check_attributes(graph.nodes(data=True), "vertex", suffix, vertex_reserved)
    _check_attributes(
        (((u, v), data) for u, v, data in graph.edges(data=True)), "edge", suffix, edge_reserved
    )

    class_name = next(
        (name for name, cls in reversed(GRAPH_CLASSES.items()) if type(graph) is cls), "DiGraph"
    )
    meta = {_FORMAT: _VERSION, _LABEL_TYPE: label_type, _CLASS: class_name}
    layer_of = dict(zip(vertices, layers.tolist()))
    nodes = [(plain[v], {**data, _LAYER: layer_of[v]}) for v, data in graph.nodes(data=True)]
    edges = [(plain[u], plain[v], data) for u, v, data in graph.edges(data=True)]
    if suffix == "json":
        payload = {
            "directed": True,
            "multigraph": False,
            "graph": {**graph.graph, **meta},
            "nodes": [{**data, "id": v} for v, data in nodes],
            "edges": [{**data, "source": u, "target": v} for u, v, data in edges],
        }
        text = json.dumps(payload, allow_nan=False)
        atomic_write_with(path, lambda handle: handle.write(text.encode()))
    else:
        copy = nx.DiGraph()
        copy.graph.update(graph.graph)
        copy.graph.update(meta)
        copy.add_nodes_from((str(v), data) for v, data in nodes)
        copy.add_edges_from((str(u), str(v), data) for u, v, data in edges)
        atomic_write_with(path, lambda handle: nx.write_graphml(copy, handle))
    return path


# -- reading -------------------------------------------------------------------------------
def read(path: str | os.PathLike[str]) -> nx.DiGraph:
    """Read a structure written by :func:`write` (or any GraphML / node-link JSON DAG).

    Returns the graph's original class (``CachedLayeredGraph`` unless it was written from a
    plain ``DiGraph`` or ``LayeredGraph``) with labels, attributes and vertex order as
    written. Files from other tools are read too when they hold a simple directed acyclic
    graph; their GraphML ids stay strs.

    Parameters
    ----------
    path : str or path-like
        A ``.graphml`` or ``.json`` file.

    Raises
    ------
    GraphFileError
        The file is not valid GraphML / node-link JSON, is undirected or a multigraph, has
        a cycle, lists a vertex or an edge twice, has an edge to or from a vertex it does
        not list, or its recorded labels or layers do not match its contents; ``path`` is a
        folder. It is a ``ValueError`` too.
    InputTypeError
        ``path`` is not a str or path-like.
    FileNotFoundError
        There is no file at ``path``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import networkx as nx
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "g.json"
    >>> graph = read(write(nx.DiGraph([(1, "b")]), path))
    >>> type(graph).__name__, list(graph.edges)
    ('DiGraph', [(1, 'b')])
    """
    path = _path(path, "read")
    suffix = _format(path)
    if path.is_dir():
        raise GraphFileError(f"{str(path)!r} is a folder; give the graph file in it")
    try:
        raw = _read_json(path) if suffix == "json" else _read_graphml(path)
    except GraphFileError:
        raise
    except (OSError, MemoryError):
        raise
    except Exception as error:  # every parser failure means the same: not our file
        raise GraphFileError(
            f"{str(path)!r} is not a valid {suffix} graph file ({type(error).__name__}: "
            f"{error}); write it with pypaddle.graph.write"
        ) from error
    return _finish(raw, path)


def _read_json(path: Path) -> nx.DiGraph:
    with open(path, encoding="utf-8") as handle:
        payload = json.load(handle)
    if not isinstance(payload, dict) or "nodes" not in payload:
        raise GraphFileError(f"{str(path)!r} is JSON but not a node-link graph (no 'nodes')")
    if not payload.get("directed", False) or payload.get("multigraph", False):
        raise GraphFileError(
            f"{str(path)!r} holds an undirected graph or a multigraph; a structure is a "
            "simple directed graph"
        )
    edges_key = "edges" if "edges" in payload else "links"
    nodes, edges = payload["nodes"], payload.get(edges_key, [])
    if not isinstance(nodes, list) or not isinstance(edges, list):
        raise GraphFileError(f"{str(path)!r}: 'nodes' and {edges_key!r} must be lists")
    if not all(isinstance(node, dict) and "id" in node for node in nodes):
        raise GraphFileError(f"{str(path)!r} has a vertex entry that is not an object with an 'id'")
    if not all(isinstance(edge, dict) and {"source", "target"} <= edge.keys() for edge in edges):
        raise GraphFileError(
            f"{str(path)!r} has an edge entry that is not an object with 'source' and 'target'"
        )
    _check_ids(
        path,
        [node["id"] for node in nodes],
        [(edge["source"], edge["target"]) for edge in edges],
    )
    return nx.node_link_graph(payload, directed=True, multigraph=False, edges=edges_key)


def _check_ids(path: Path, ids: list[Any], ends: list[tuple[Any, Any]]) -> None:
    """Every vertex id once, every edge between listed vertices and only once.

    networkx would silently merge duplicate vertices and edges and add the ends of dangling
    edges as new vertices; in a structure file each of these is a corruption.
    """
    for value in (*ids, *(end for pair in ends for end in pair)):
        if isinstance(value, list | dict):
            raise GraphFileError(f"{str(path)!r} has the vertex id {value!r}; ids are ints or strs")
    counts = Counter(ids)
    if len(counts) != len(ids):
        duplicate = next(vertex for vertex, count in counts.items() if count > 1)
        raise GraphFileError(f"{str(path)!r} lists the vertex {duplicate!r} more than once")
    dangling = next((pair for pair in ends if pair[0] not in counts or pair[1] not in counts), None)
    if dangling is not None:
        missing = dangling[0] if dangling[0] not in counts else dangling[1]
        raise GraphFileError(
            f"{str(path)!r} has the edge {dangling[0]!r} -> {dangling[1]!r}, but no vertex "
            f"{missing!r} in its vertex list; the file is corrupt"
        )
    edge_counts = Counter(ends)
    if len(edge_counts) != len(ends):
        twice = next(edge for edge, count in edge_counts.items() if count > 1)
        raise GraphFileError(
            f"{str(path)!r} lists the edge {twice[0]!r} -> {twice[1]!r} more than once; a "
            "structure is a simple graph"
        )


def _read_graphml(path: Path) -> nx.DiGraph:
    ids, ends = [], []
    for _, element in ElementTree.iterparse(path):
        tag = element.tag.rpartition("}")[2]
        if tag == "node":
            ids.append(element.get("id"))
        elif tag == "edge":
            ends.append((element.get("source"), element.get("target")))
    _check_ids(path, ids, ends)
    graph = nx.read_graphml(path, node_type=str)
    if graph.is_multigraph() or not graph.is_directed():
        raise GraphFileError(
            f"{str(path)!r} holds an undirected graph or a multigraph; a structure is a "
            "simple directed graph"
        )
    for key in ("node_default", "edge_default"):
        if not graph.graph.get(key):
            graph.graph.pop(key, None)
    return graph


def _finish(raw: nx.DiGraph, path: Path) -> nx.DiGraph:
    meta = {key: raw.graph.pop(key, None) for key in (_FORMAT, _LABEL_TYPE, _CLASS)}
    label_type = meta[_LABEL_TYPE]
    convert = _converter(label_type, path)
    cls = GRAPH_CLASSES.get(meta[_CLASS] or "CachedLayeredGraph")
    if cls is None:
        raise GraphFileError(f"{str(path)!r} names an unknown graph class {meta[_CLASS]!r}")
    try:
        labels = {vertex: convert(vertex) for vertex in raw}
    except (TypeError, ValueError):
        raise GraphFileError(
            f"{str(path)!r} records {label_type} labels but holds other ids; the file is corrupt"
        ) from None
    if len(set(labels.values())) != len(labels):
        raise GraphFileError(f"{str(path)!r} has vertex ids that collide once converted")
    stored_layers = {}
    graph = cls()
    graph.graph.update(raw.graph)
    for vertex, data in raw.nodes(data=True):
        data = dict(data)
        if _LAYER in data:
            stored_layers[labels[vertex]] = data.pop(_LAYER)
        graph.add_node(labels[vertex], **data)
    graph.add_edges_from((labels[u], labels[v], dict(d)) for u, v, d in raw.edges(data=True))
    if nx.number_of_selfloops(graph):
        raise GraphFileError(f"{str(path)!r} has self-loops; a structure has none")
    try:
        vertices, layers = layer_array(graph)
    except StructureError as error:
        raise GraphFileError(f"{str(path)!r} does not hold a DAG: {error}") from None
    if stored_layers and stored_layers != dict(zip(vertices, layers.tolist())):
        raise GraphFileError(
            f"{str(path)!r} records layers that do not match its edges; the file is corrupt"
        )
    return graph


def _converter(label_type: Any, path: Path) -> Any:
    def identity(vertex: Hashable) -> Hashable:
        return vertex

    def to_int(vertex: Hashable) -> int:
        if type(vertex) is int:
            return vertex
        # Written labels are str(int): anything else ("01", " 1", "1.0") is corrupt.
        if not isinstance(vertex, str) or str(int(vertex)) != vertex:
            raise ValueError(vertex)
        return int(vertex)

    def checked(kinds: tuple[type, ...]) -> Any:
        def check(vertex: Hashable) -> Hashable:
            if type(vertex) not in kinds:
                raise TypeError(vertex)
            return vertex

        return check

    if label_type is None:
        return identity
    if label_type == "int":
        return to_int
    if label_type == "str":
        return checked((str,))
    if label_type == "mixed":
        return checked((int, str))
    raise GraphFileError(f"{str(path)!r} records an unknown label type {label_type!r}")
