"""draw(): a PNG in layered layout, with sources, sinks and skips in their colours."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pytest

import pypaddle.graph.drawing as drawing
from pypaddle.errors import ConfigError, StructureError
from pypaddle.graph import complete_layered, draw, layer_graph, random_layered

image = pytest.importorskip("matplotlib.image")
colors = pytest.importorskip("matplotlib.colors")


def pixels_like(path, colour, tolerance=0.06):
    """Number of pixels within ``tolerance`` of ``colour`` in every channel."""
    rgb = image.imread(path)[..., :3]
    target = np.array(colors.to_rgb(colour))
    return int((np.abs(rgb - target) < tolerance).all(axis=-1).sum())


class TestDraw:
    def test_writes_a_png_with_marked_sources_sinks_and_skips(self, tmp_path):
        structure = random_layered([4, 6, 6, 2], density=0.4, skip_density=0.3, seed=0)
        path = draw(structure, tmp_path / "g.png")
        assert path == tmp_path / "g.png"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert pixels_like(path, drawing._SOURCE) > 100
        assert pixels_like(path, drawing._SINK) > 100
        assert pixels_like(path, drawing._SKIP) > 100
        assert pixels_like(path, drawing._HIDDEN) > 100

    def test_no_skip_colour_without_skips(self, tmp_path):
        path = draw(complete_layered([3, 5, 2]), tmp_path / "g.png")
        assert pixels_like(path, drawing._SKIP) == 0
        assert pixels_like(path, drawing._SOURCE) > 100

    def test_big_graph_becomes_its_layer_graph(self, tmp_path, monkeypatch):
        drawn = []
        real = drawing._draw_layer_graph
        monkeypatch.setattr(drawing, "_draw_layer_graph", lambda *a: drawn.append(a[0]) or real(*a))
        structure = random_layered([30, 40, 30], density=0.2, skip_density=0.1, seed=0)
        draw(structure, tmp_path / "small.png")
        assert drawn == []
        draw(structure, tmp_path / "big.png", max_vertices=50)
        assert drawn == [structure]
        # one disc per layer, no per-vertex source or sink markers
        assert pixels_like(tmp_path / "big.png", drawing._SOURCE) == 0
        assert pixels_like(tmp_path / "big.png", drawing._HIDDEN) > 1000

    @pytest.mark.slow
    def test_many_layers_become_a_matrix(self, tmp_path, monkeypatch):
        drawn = []
        real = drawing._draw_layer_matrix
        monkeypatch.setattr(
            drawing, "_draw_layer_matrix", lambda *a: drawn.append(a[0]) or real(*a)
        )
        structure = random_layered([20] * 15, density=0.1, skip_density=0.02, seed=0)
        path = draw(structure, tmp_path / "matrix.png", max_vertices=100)
        assert len(drawn) == 1
        assert sorted(drawn[0].edges) == sorted(layer_graph(structure).edges)
        assert pixels_like(path, drawing._HIDDEN) > 1000  # the bars of the layer widths
        assert pixels_like(path, drawing._SKIP) > 100  # the line marking where skips start

    def test_layer_labels_and_long_chains(self, tmp_path):
        chain = nx.DiGraph(nx.path_graph(60, create_using=nx.DiGraph))
        chain.add_edge(0, 59)
        path = draw(chain, tmp_path / "chain.png", labels=True, title="a chain")
        assert pixels_like(path, drawing._SKIP) > 50

    def test_empty_graph(self, tmp_path):
        assert draw(nx.DiGraph(), tmp_path / "empty.png").exists()

    def test_cycle_writes_nothing(self, tmp_path):
        with pytest.raises(StructureError, match="cycle"):
            draw(nx.DiGraph([(0, 1), (1, 0)]), tmp_path / "g.png")
        assert list(tmp_path.iterdir()) == []

    @pytest.mark.parametrize("value", [0, 2.5, True])
    def test_bad_max_vertices(self, tmp_path, value):
        with pytest.raises(ConfigError, match="max_vertices"):
            draw(nx.DiGraph([(0, 1)]), tmp_path / "g.png", max_vertices=value)


class TestDrawWrites:
    def test_missing_folders_are_made(self, tmp_path):
        path = draw(complete_layered([2, 2]), tmp_path / "new" / "deeper" / "g.png")
        assert path.read_bytes()[:4] == b"\x89PNG"
        assert sorted(p.name for p in path.parent.iterdir()) == ["g.png"]

    def test_the_suffix_chooses_the_format(self, tmp_path):
        assert draw(complete_layered([2, 2]), tmp_path / "g.svg").read_text().count("<svg") == 1
        assert draw(complete_layered([2, 2]), tmp_path / "g").read_bytes()[:4] == b"\x89PNG"

    def test_an_unknown_format_is_refused_before_drawing(self, tmp_path):
        with pytest.raises(ConfigError, match="no 'xyz' files"):
            draw(complete_layered([2, 2]), tmp_path / "g.xyz")
        assert list(tmp_path.iterdir()) == []

    def test_a_folder_or_a_file_as_folder_is_refused(self, tmp_path):
        (tmp_path / "g.png").mkdir()
        with pytest.raises(ConfigError, match="it is a folder"):
            draw(complete_layered([2, 2]), tmp_path / "g.png")
        (tmp_path / "file").write_text("x")
        with pytest.raises(ConfigError, match="is a file, not a folder"):
            draw(complete_layered([2, 2]), tmp_path / "file" / "g.png")

    def test_a_drawing_failing_half_way_keeps_the_previous_file(self, tmp_path, monkeypatch):
        figure = pytest.importorskip("matplotlib.figure")
        path = draw(complete_layered([2, 2]), tmp_path / "g.png")
        before = path.read_bytes()

        def half(self, target, **kwargs):
            Path(target).write_bytes(b"\x89PNG half")
            raise OSError("disk full")

        monkeypatch.setattr(figure.Figure, "savefig", half)
        with pytest.raises(OSError, match="disk full"):
            draw(complete_layered([3, 3]), path)
        assert path.read_bytes() == before
        assert [p.name for p in tmp_path.iterdir()] == ["g.png"]
