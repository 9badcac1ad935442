"""read / write: exact round trips, refused graphs, corrupt and foreign files."""

from __future__ import annotations

import json
import os
import stat

import networkx as nx
import numpy as np
import pytest

import pypaddle.graph.io as graph_io
from pypaddle.errors import GraphFileError, InputTypeError, StructureError
from pypaddle.graph import (
    CachedLayeredGraph,
    LayeredGraph,
    layer_index,
    random_layered,
    read,
    write,
)

SUFFIXES = [".graphml", ".json"]


def assert_same(read_back, original):
    """Same class, vertex order, labels and their types, attributes, edge order and layers."""
    assert type(read_back) is type(original)
    assert read_back.graph == original.graph
    assert list(read_back.nodes(data=True)) == list(original.nodes(data=True))
    assert [type(v) for v in read_back] == [type(v) for v in original]
    assert list(read_back.edges(data=True)) == list(original.edges(data=True))
    assert layer_index(read_back) == layer_index(original)


def files_in(folder):
    return sorted(path.name for path in folder.iterdir())


@pytest.fixture
def annotated():
    """Int labels inserted out of order, with graph, vertex and edge attributes."""
    graph = CachedLayeredGraph(name="annotated", seed=3)
    graph.add_node(5, kind="input", bias=0.25)
    graph.add_node(2, kind="hidden", active=True)
    graph.add_node(9)
    graph.add_edge(5, 2, weight=-1.5, kept=False)
    graph.add_edge(2, 9, weight=3.0, note=" spaced ")
    graph.add_edge(5, 9, weight=0.0, note="")
    return graph


class TestRoundTrip:
    @pytest.mark.parametrize("suffix", SUFFIXES)
    def test_int_labels_and_attributes(self, tmp_path, annotated, suffix):
        path = write(annotated, tmp_path / f"g{suffix}")
        assert path == tmp_path / f"g{suffix}"
        assert_same(read(path), annotated)

    @pytest.mark.parametrize("suffix", SUFFIXES)
    def test_str_labels(self, tmp_path, suffix):
        graph = nx.DiGraph([("b", "a"), ("a", "10"), ("b", "10")])
        graph.nodes["10"]["layer"] = 2
        assert_same(read(write(graph, tmp_path / f"g{suffix}")), graph)

    @pytest.mark.parametrize("suffix", SUFFIXES)
    @pytest.mark.parametrize("cls", [nx.DiGraph, LayeredGraph, CachedLayeredGraph])
    def test_graph_class_is_kept(self, tmp_path, suffix, cls):
        graph = cls([(0, 1)])
        assert type(read(write(graph, tmp_path / f"g{suffix}"))) is cls

    @pytest.mark.parametrize("suffix", SUFFIXES)
    def test_generated_structure_with_skips(self, tmp_path, suffix):
        graph = random_layered([4, 6, 6, 3], density=0.4, skip_density=0.3, seed=0)
        again = read(write(graph, tmp_path / f"g{suffix}"))
        assert_same(again, graph)
        assert again.vertices_by_layer == graph.vertices_by_layer

    @pytest.mark.parametrize("suffix", SUFFIXES)
    def test_empty_graph(self, tmp_path, suffix):
        assert_same(
            read(write(CachedLayeredGraph(), tmp_path / f"g{suffix}")), CachedLayeredGraph()
        )

    def test_mixed_labels_in_json(self, tmp_path):
        graph = nx.DiGraph([(1, "1"), ("1", 2)])
        assert_same(read(write(graph, tmp_path / "g.json")), graph)

    def test_json_keeps_nested_values(self, tmp_path):
        graph = nx.DiGraph()
        graph.add_node(0, shape=[3, 4], meta={"a": [1.5, None, "x"]}, flag=None)
        assert_same(read(write(graph, tmp_path / "g.json")), graph)

    @pytest.mark.parametrize("suffix", SUFFIXES)
    def test_numpy_int_labels_come_back_as_ints(self, tmp_path, suffix):
        graph = CachedLayeredGraph()
        graph.add_nodes_from(np.arange(1, 5))
        graph.add_edges_from([(np.int64(1), np.int64(3)), (np.int64(3), np.int64(4))])
        again = read(write(graph, tmp_path / f"g{suffix}"))
        assert list(again) == [1, 2, 3, 4]
        assert {type(v) for v in again} == {int}
        assert list(again.edges) == [(1, 3), (3, 4)]

    def test_file_gets_ordinary_permissions(self, tmp_path, annotated):
        path = write(annotated, tmp_path / "g.json")
        umask = os.umask(0)
        os.umask(umask)
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask

    def test_suffix_is_case_insensitive(self, tmp_path, annotated):
        assert_same(read(write(annotated, tmp_path / "G.GraphML")), annotated)


class TestOldApi:
    @pytest.mark.parametrize("suffix", SUFFIXES)
    def test_save_load(self, tmp_path, suffix):
        graph = CachedLayeredGraph()
        graph.add_nodes_from(np.arange(1, 7))
        graph.add_edges_from([(1, 3), (2, 4), (3, 4), (4, 5)])
        graph.save(tmp_path / f"g{suffix}")
        loaded = LayeredGraph.load(tmp_path / f"g{suffix}")
        assert type(loaded) is LayeredGraph
        assert list(loaded) == [1, 2, 3, 4, 5, 6]
        assert list(loaded.edges) == list(graph.edges)
        assert loaded.layer_of_vertex == graph.layer_of_vertex
        assert type(CachedLayeredGraph.load(tmp_path / f"g{suffix}")) is CachedLayeredGraph

    def test_load_accepts_str_path(self, tmp_path):
        CachedLayeredGraph([("a", "b")]).save(str(tmp_path / "g.graphml"))
        assert list(CachedLayeredGraph.load(str(tmp_path / "g.graphml")).edges) == [("a", "b")]


class TestRefused:
    """Nothing is written, and an older file at the path stays as it was."""

    @pytest.fixture
    def folder(self, tmp_path):
        (tmp_path / "g.graphml").write_text("old")
        (tmp_path / "g.json").write_text("old")
        return tmp_path

    def assert_refused(self, folder, graph, error, match, suffixes=SUFFIXES):
        for suffix in suffixes:
            with pytest.raises(error, match=match):
                write(graph, folder / f"g{suffix}")
            assert (folder / f"g{suffix}").read_text() == "old"
        assert files_in(folder) == ["g.graphml", "g.json"]

    def test_self_loop(self, folder):
        graph = nx.DiGraph([(0, 1), (1, 1)])
        self.assert_refused(folder, graph, StructureError, r"self-loops, e\.g\. \(1, 1\)")

    def test_multigraph(self, folder):
        self.assert_refused(
            folder, nx.MultiDiGraph([(0, 1), (0, 1)]), StructureError, "parallel edges"
        )

    def test_undirected(self, folder):
        self.assert_refused(folder, nx.Graph([(0, 1)]), StructureError, "to_dag")

    def test_cycle(self, folder):
        self.assert_refused(folder, nx.DiGraph([(0, 1), (1, 2), (2, 0)]), StructureError, "cycle")

    @pytest.mark.parametrize("label", [(0, 1), 1.5, True, frozenset({1})])
    def test_labels_that_do_not_come_back(self, folder, label):
        graph = nx.DiGraph([(label, "x")]) if label is not True else nx.DiGraph([(True, 2)])
        self.assert_refused(folder, graph, InputTypeError, "labels must be int or str")

    @pytest.mark.parametrize("suffix", SUFFIXES)
    def test_the_advice_for_tuple_labels_works(self, tmp_path, suffix):
        # generate_structure(include_input=True, include_output=True) labels its extra
        # vertices ("input", i) and ("output", j) beside the structure's own int labels
        graph = nx.DiGraph([(("input", 0), 0), (0, 1), (1, ("output", 0))])
        with pytest.raises(InputTypeError, match=r"relabel_nodes\(graph, str\)"):
            write(graph, tmp_path / f"g{suffix}")
        relabelled = nx.relabel_nodes(graph, str)
        write(relabelled, tmp_path / f"g{suffix}")
        assert list(read(tmp_path / f"g{suffix}").edges) == list(relabelled.edges)

    def test_mixed_labels_in_graphml(self, folder):
        graph = nx.DiGraph([(1, "a")])
        self.assert_refused(folder, graph, InputTypeError, "mixing int and str", [".graphml"])

    def test_not_a_graph(self, folder):
        self.assert_refused(folder, [(0, 1)], InputTypeError, "networkx.DiGraph")

    def test_values_graphml_cannot_keep(self, folder):
        graph = nx.DiGraph()
        graph.add_node(0, shape=(3, 4))
        self.assert_refused(folder, graph, InputTypeError, "GraphML keeps only", [".graphml"])
        graph = nx.DiGraph()
        graph.add_node(0, size=1)
        graph.add_node(1, size=1.5)
        self.assert_refused(folder, graph, InputTypeError, "both int and float", [".graphml"])

    @pytest.mark.parametrize(
        "value", [(1, 2), {1, 2}, np.float64(1.0), float("nan"), {1: "a"}, [np.int64(1)]]
    )
    def test_values_json_cannot_keep(self, folder, value):
        graph = nx.DiGraph()
        graph.add_edge(0, 1, value=value)
        self.assert_refused(folder, graph, InputTypeError, "attribute 'value'", [".json"])

    def test_reserved_names(self, folder):
        graph = nx.DiGraph()
        graph.add_node(0, id="x")
        self.assert_refused(folder, graph, InputTypeError, "'id' .* reserved", [".json"])
        graph = nx.DiGraph()
        graph.add_edge(0, 1, source="x")
        self.assert_refused(folder, graph, InputTypeError, "'source' .* reserved", [".json"])
        graph = nx.DiGraph()
        graph.add_node(0, pypaddle_layer=3)
        self.assert_refused(folder, graph, InputTypeError, "reserved")

    def test_unknown_suffix(self, tmp_path):
        with pytest.raises(GraphFileError, match=r"\.graphml .* \.json"):
            write(nx.DiGraph([(0, 1)]), tmp_path / "g.gml")
        assert files_in(tmp_path) == []

    def test_failure_while_writing_leaves_nothing(self, folder, monkeypatch, annotated):
        def broken(graph, handle):
            handle.write(b"<?xml half")
            raise OSError("disk full")

        monkeypatch.setattr(graph_io.nx, "write_graphml", broken)
        with pytest.raises(OSError, match="disk full"):
            write(annotated, folder / "g.graphml")
        assert (folder / "g.graphml").read_text() == "old"
        assert files_in(folder) == ["g.graphml", "g.json"]

    def test_the_graph_is_not_changed(self, folder, annotated):
        before = (list(annotated.nodes(data=True)), list(annotated.edges(data=True)))
        annotated.add_node((1, 2))
        with pytest.raises(InputTypeError):
            write(annotated, folder / "g.json")
        annotated.remove_node((1, 2))
        write(annotated, folder / "g.json")
        assert (list(annotated.nodes(data=True)), list(annotated.edges(data=True))) == before


class TestCorruptAndForeign:
    def assert_refused(self, path, match):
        with pytest.raises(GraphFileError, match=match) as caught:
            read(path)
        assert isinstance(caught.value, ValueError)

    @pytest.mark.parametrize("suffix", SUFFIXES)
    def test_truncated(self, tmp_path, annotated, suffix):
        path = write(annotated, tmp_path / f"g{suffix}")
        path.write_bytes(path.read_bytes()[:-40])
        self.assert_refused(path, "not a valid")

    @pytest.mark.parametrize("suffix", SUFFIXES)
    def test_binary_garbage(self, tmp_path, suffix):
        path = tmp_path / f"g{suffix}"
        path.write_bytes(bytes(range(256)))
        self.assert_refused(path, "not a valid")

    def test_json_that_is_not_a_graph(self, tmp_path):
        path = tmp_path / "g.json"
        path.write_text("[1, 2, 3]")
        self.assert_refused(path, "not a node-link graph")

    @pytest.mark.parametrize("suffix", SUFFIXES)
    def test_undirected_file(self, tmp_path, suffix):
        path = tmp_path / f"g{suffix}"
        if suffix == ".json":
            path.write_text(json.dumps(nx.node_link_data(nx.path_graph(3), edges="edges")))
        else:
            nx.write_graphml(nx.path_graph(3), path)
        self.assert_refused(path, "undirected graph or a multigraph")

    @pytest.mark.parametrize("suffix", SUFFIXES)
    def test_cyclic_file(self, tmp_path, suffix):
        path = tmp_path / f"g{suffix}"
        cycle = nx.DiGraph([(0, 1), (1, 0)])
        if suffix == ".json":
            path.write_text(json.dumps(nx.node_link_data(cycle, edges="edges")))
        else:
            nx.write_graphml(cycle, path)
        self.assert_refused(path, "does not hold a DAG")

    def test_self_loop_in_file(self, tmp_path):
        path = tmp_path / "g.json"
        path.write_text(json.dumps(nx.node_link_data(nx.DiGraph([(0, 0)]), edges="edges")))
        self.assert_refused(path, "self-loops")

    def test_edited_layers(self, tmp_path):
        path = write(nx.DiGraph([(0, 1), (1, 2)]), tmp_path / "g.json")
        payload = json.loads(path.read_text())
        payload["edges"] = payload["edges"][:1]
        path.write_text(json.dumps(payload))
        self.assert_refused(path, "layers that do not match")

    def test_labels_that_do_not_match_the_recorded_type(self, tmp_path):
        path = write(nx.DiGraph([(1, 2)]), tmp_path / "g.graphml")
        path.write_text(path.read_text().replace('id="2"', 'id="02"').replace('"2"', '"02"'))
        self.assert_refused(path, "records int labels")

    def test_unknown_class(self, tmp_path):
        path = write(nx.DiGraph([(1, 2)]), tmp_path / "g.json")
        path.write_text(path.read_text().replace('"DiGraph"', '"Spaceship"'))
        self.assert_refused(path, "unknown graph class 'Spaceship'")

    def test_unknown_suffix(self, tmp_path):
        path = tmp_path / "g.txt"
        path.write_text("0 1")
        self.assert_refused(path, "suffix '.txt'")

    def test_missing_file_is_an_os_error(self, tmp_path):
        with pytest.raises(FileNotFoundError):
            read(tmp_path / "nothing.json")

    def test_foreign_graphml(self, tmp_path):
        path = tmp_path / "foreign.graphml"
        foreign = nx.DiGraph([("n0", "n1"), ("n1", "n2")])
        foreign.nodes["n0"]["colour"] = "red"
        nx.write_graphml(foreign, path)
        graph = read(path)
        assert type(graph) is CachedLayeredGraph
        assert list(graph.edges) == [("n0", "n1"), ("n1", "n2")]
        assert graph.nodes["n0"] == {"colour": "red"}
        assert graph.num_layers == 3

    def test_foreign_json_with_links(self, tmp_path):
        path = tmp_path / "foreign.json"
        path.write_text(json.dumps(nx.node_link_data(nx.DiGraph([(0, 1)]), edges="links")))
        assert list(read(path).edges) == [(0, 1)]
