"""read / write given bad input: corrupt structures in files, bad paths, bad graphs.

Finding 11 of issue 16: JSON structures with dangling edges or duplicate ids were accepted
(networkx adds the missing vertex, or merges the duplicates, without a word).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import torch

from bad_values import NOT_COUNTS, assert_unchanged, snapshot
from pypaddle.errors import ConfigError, GraphFileError, InputTypeError, StructureError
from pypaddle.graph import CachedLayeredGraph, read, write

SUFFIXES = [".graphml", ".json"]


def files_in(folder):
    return sorted(path.name for path in folder.iterdir())


def node_link(nodes, edges, key="edges"):
    return json.dumps(
        {"directed": True, "multigraph": False, "graph": {}, "nodes": nodes, key: edges}
    )


def graphml(nodes, edges):
    body = "".join(f'<node id="{v}"/>' for v in nodes) + "".join(
        f'<edge source="{u}" target="{v}"/>' for u, v in edges
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<graphml xmlns="http://graphml.graphdrawing.org/xmlns">'
        f'<graph edgedefault="directed">{body}</graph></graphml>'
    )


def file_with(tmp_path, suffix, nodes, edges):
    path = tmp_path / f"g{suffix}"
    if suffix == ".json":
        path.write_text(
            node_link([{"id": v} for v in nodes], [{"source": u, "target": v} for u, v in edges])
        )
    else:
        path.write_text(graphml(nodes, edges))
    return path


class TestCorruptStructures:
    @pytest.mark.parametrize("suffix", SUFFIXES)
    @pytest.mark.parametrize(
        ("edges", "missing"), [([(0, 1), (1, 7)], "7"), ([(9, 0)], "9"), ([(5, 6)], "5")]
    )
    def test_dangling_edges_name_the_missing_vertex(self, tmp_path, suffix, edges, missing):
        path = file_with(tmp_path, suffix, [0, 1, 2], edges)
        with pytest.raises(GraphFileError, match=rf"no vertex '?{missing}'? in its vertex list"):
            read(path)

    @pytest.mark.parametrize("suffix", SUFFIXES)
    def test_duplicate_vertex_ids_are_named(self, tmp_path, suffix):
        path = file_with(tmp_path, suffix, [0, 1, 2, 1], [(0, 1)])
        with pytest.raises(GraphFileError, match=r"the vertex '?1'? more than once"):
            read(path)

    @pytest.mark.parametrize("suffix", SUFFIXES)
    def test_duplicate_edges_are_named(self, tmp_path, suffix):
        path = file_with(tmp_path, suffix, [0, 1], [(0, 1), (0, 1)])
        with pytest.raises(GraphFileError, match=r"edge '?0'? -> '?1'? more than once"):
            read(path)

    def test_links_key_is_checked_too(self, tmp_path):
        path = tmp_path / "g.json"
        path.write_text(node_link([{"id": 0}], [{"source": 0, "target": 3}], key="links"))
        with pytest.raises(GraphFileError, match="no vertex 3"):
            read(path)

    @pytest.mark.parametrize(
        ("nodes", "edges", "match"),
        [
            ("abc", [], "must be lists"),
            ([{"id": 0}], {"a": 1}, "must be lists"),
            ([0, 1], [], "not an object with an 'id'"),
            ([{"name": 0}], [], "not an object with an 'id'"),
            ([{"id": 0}, {"id": 1}], [[0, 1]], "'source' and 'target'"),
            ([{"id": 0}, {"id": 1}], [{"source": 0}], "'source' and 'target'"),
            ([{"id": [0]}], [], r"vertex id \[0\]"),
            ([{"id": {"a": 0}}], [], "vertex id"),
            ([{"id": 0}], [{"source": 0, "target": [1]}], "vertex id"),
        ],
    )
    def test_malformed_node_link(self, tmp_path, nodes, edges, match):
        path = tmp_path / "g.json"
        path.write_text(node_link(nodes, edges))
        with pytest.raises(GraphFileError, match=match):
            read(path)

    def test_entity_expansion_is_refused(self, tmp_path):
        # "billion laughs": nine levels of ten-fold entities, 3 GB once expanded
        levels = ['<!ENTITY l0 "lollollollollollollollollollol">'] + [
            f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10)
        ]
        path = tmp_path / "laughs.graphml"
        path.write_text(
            f'<?xml version="1.0"?><!DOCTYPE g [{"".join(levels)}]>'
            '<graphml xmlns="http://graphml.graphdrawing.org/xmlns">'
            '<graph edgedefault="directed"><node id="&l9;"/></graph></graphml>'
        )
        with pytest.raises(GraphFileError, match="not a valid graphml"):
            read(path)

    @pytest.mark.parametrize("suffix", SUFFIXES)
    def test_a_sound_file_still_reads(self, tmp_path, suffix):
        graph = read(file_with(tmp_path, suffix, [0, 1, 2], [(0, 1), (1, 2), (0, 2)]))
        label = int if suffix == ".json" else str  # foreign GraphML ids stay strs
        assert sorted(graph.edges) == [
            (label(0), label(1)),
            (label(0), label(2)),
            (label(1), label(2)),
        ]
        assert list(graph) == [label(0), label(1), label(2)]


NOT_PATHS = [
    None,
    3,
    1.5,
    math.nan,
    True,
    b"g.json",
    ["g.json"],
    ("g.json",),
    {"p": 1},
    object(),
    np.str_,
    torch.tensor(1),
    nx.DiGraph(),
]


class TestBadPaths:
    @pytest.mark.parametrize("path", NOT_PATHS)
    def test_write_wants_a_path(self, tmp_path, path, monkeypatch):
        monkeypatch.chdir(tmp_path)
        graph = CachedLayeredGraph([(0, 1), (1, 2)])
        before = snapshot(graph)
        with pytest.raises(InputTypeError, match="file path"):
            write(graph, path)
        assert_unchanged(before, graph)
        assert files_in(tmp_path) == []

    @pytest.mark.parametrize("path", NOT_PATHS)
    def test_read_wants_a_path(self, path):
        with pytest.raises(InputTypeError, match="file path"):
            read(path)

    @pytest.mark.parametrize("suffix", SUFFIXES)
    def test_write_onto_a_folder(self, tmp_path, suffix):
        (tmp_path / f"g{suffix}").mkdir()
        with pytest.raises(ConfigError, match="it is a folder"):
            write(nx.DiGraph([(0, 1)]), tmp_path / f"g{suffix}")
        assert files_in(tmp_path) == [f"g{suffix}"]
        assert files_in(tmp_path / f"g{suffix}") == []

    @pytest.mark.parametrize("suffix", SUFFIXES)
    def test_write_under_a_file(self, tmp_path, suffix):
        (tmp_path / "file").write_text("x")
        with pytest.raises(ConfigError, match="is a file, not a folder"):
            write(nx.DiGraph([(0, 1)]), tmp_path / "file" / "sub" / f"g{suffix}")
        assert (tmp_path / "file").read_text() == "x"

    @pytest.mark.parametrize("suffix", SUFFIXES)
    def test_write_into_missing_folders_makes_them(self, tmp_path, suffix):
        path = write(nx.DiGraph([(0, 1)]), tmp_path / "a" / "b" / f"g{suffix}")
        assert files_in(path.parent) == [f"g{suffix}"]
        assert list(read(path).edges) == [(0, 1)]

    @pytest.mark.parametrize("suffix", SUFFIXES)
    def test_read_a_folder(self, tmp_path, suffix):
        (tmp_path / f"g{suffix}").mkdir()
        with pytest.raises(GraphFileError, match="is a folder"):
            read(tmp_path / f"g{suffix}")

    def test_save_method_checks_too(self, tmp_path):
        graph = CachedLayeredGraph([(0, 1)])
        with pytest.raises(InputTypeError):
            graph.save(3)
        (tmp_path / "g.json").mkdir()
        with pytest.raises(ConfigError):
            graph.save(tmp_path / "g.json")


def undirected():
    return nx.Graph([(0, 1)])


def multigraph():
    return nx.MultiDiGraph([(0, 1), (0, 1)])


def cyclic():
    return nx.DiGraph([(0, 1), (1, 0)])


def self_loop():
    return nx.DiGraph([(0, 0)])


def tuple_labels():
    return nx.DiGraph([((0, 1), (1, 2))])


def float_labels():
    return nx.DiGraph([(0.5, 1.5)])


def bool_labels():
    return nx.DiGraph([(True, False)])


def set_attribute():
    graph = nx.DiGraph([(0, 1)])
    graph.edges[0, 1]["weight"] = {1, 2}
    return graph


def tensor_attribute():
    graph = nx.DiGraph([(0, 1)])
    graph.nodes[0]["value"] = torch.tensor(1.0)
    return graph


BAD_GRAPHS = {
    undirected: StructureError,
    multigraph: StructureError,
    cyclic: StructureError,
    self_loop: StructureError,
    tuple_labels: InputTypeError,
    float_labels: InputTypeError,
    bool_labels: InputTypeError,
    set_attribute: InputTypeError,
    tensor_attribute: InputTypeError,
}


class TestBadGraphs:
    @pytest.mark.parametrize("graph", NOT_COUNTS)
    @pytest.mark.parametrize("suffix", SUFFIXES)
    def test_not_a_graph(self, tmp_path, graph, suffix):
        with pytest.raises(InputTypeError, match="networkx"):
            write(graph, tmp_path / f"g{suffix}")
        assert files_in(tmp_path) == []

    @pytest.mark.parametrize("make", list(BAD_GRAPHS), ids=lambda make: make.__name__)
    @pytest.mark.parametrize("suffix", SUFFIXES)
    def test_refused_before_writing_and_unchanged(self, tmp_path, make, suffix):
        graph = make()
        before = snapshot(graph)
        (tmp_path / f"g{suffix}").write_text("old")
        with pytest.raises(BAD_GRAPHS[make]):
            write(graph, tmp_path / f"g{suffix}")
        assert_unchanged(before, graph)
        assert (tmp_path / f"g{suffix}").read_text() == "old"
        assert files_in(tmp_path) == [f"g{suffix}"]


def test_paths_may_be_any_path_like(tmp_path):
    class Custom:
        def __fspath__(self):
            return str(tmp_path / "g.json")

    path = write(nx.DiGraph([(0, 1)]), Custom())
    assert path == Path(tmp_path / "g.json")
    assert list(read(Custom()).edges) == [(0, 1)]
