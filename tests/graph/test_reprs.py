"""Structures and their summaries show in Jupyter: a picture and an HTML table."""

import json
import math

import networkx as nx

from pypaddle.graph import (
    CachedLayeredGraph,
    GraphSummary,
    LayeredGraph,
    complete_layered,
    random_layered,
    summary,
)
from pypaddle.graph.drawing import png

PNG = b"\x89PNG\r\n\x1a\n"


class TestSummary:
    def test_is_still_a_dict(self):
        stats = summary(complete_layered([2, 3, 1]))
        assert isinstance(stats, dict)
        assert isinstance(stats, GraphSummary)
        assert stats["edges"] == 9
        assert stats.to_dict() == dict(stats)
        plain = {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in stats.items()}
        assert json.loads(json.dumps(plain))["vertices"] == 6
        assert repr(stats).startswith("{'vertices': 6, 'edges': 9")

    def test_printed_as_a_table_with_estimates_marked(self):
        stats = summary(complete_layered([2, 3, 1]))
        lines = str(stats).splitlines()
        assert lines[0].split() == ["measure", "value"]
        rows = {line[:24].strip(): line[24:].strip() for line in lines[2:]}
        assert rows["edges"] == "9"
        assert rows["layer widths"] == "2, 3, 1"
        assert rows["small world sigma"].startswith("~ ")
        assert not rows["clustering"].startswith("~")
        assert "estimates" not in rows
        assert len(rows) == len(stats) - 1

    def test_html_has_a_row_per_measure(self):
        stats = summary(complete_layered([2, 3, 1]))
        html = stats._repr_html_()
        assert html.startswith("<table>")
        assert html.count("<tr>") == len(stats)  # the header and every measure but estimates
        assert "layer widths" in html


class TestStructurePicture:
    def test_a_structure_is_a_png(self):
        structure = random_layered([4, 6, 2], density=0.5, seed=0)
        picture = structure._repr_png_()
        assert picture.startswith(PNG)
        assert picture == png(structure)

    def test_large_structures_draw_their_layer_graph(self):
        structure = random_layered([300, 300], density=0.01, seed=0)
        assert structure._repr_png_().startswith(PNG)

    def test_nothing_to_draw_falls_back_to_text(self):
        assert LayeredGraph()._repr_png_() is None
        cyclic = CachedLayeredGraph()
        nx.add_cycle(cyclic, [0, 1, 2])
        assert cyclic._repr_png_() is None
        assert cyclic.number_of_edges() == 3
