"""pypaddle graph stats / draw through typer's CliRunner."""

from __future__ import annotations

import json

import networkx as nx
import pytest

typer_testing = pytest.importorskip("typer.testing")

from pypaddle.cli import app  # noqa: E402
from pypaddle.graph import random_layered, summary, write  # noqa: E402

runner = typer_testing.CliRunner()


@pytest.fixture
def structure_file(tmp_path):
    structure = random_layered([4, 6, 6, 2], density=0.4, skip_density=0.2, seed=0)
    return structure, write(structure, tmp_path / "structure.graphml")


class TestStats:
    def test_table(self, structure_file):
        structure, path = structure_file
        result = runner.invoke(app, ["graph", "stats", str(path)])
        assert result.exit_code == 0, result.output
        rows = {
            line.split("│")[1].strip(): line.split("│")[2].strip()
            for line in result.output.splitlines()
            if line.count("│") == 3
        }
        assert rows["vertices"] == "18"
        assert rows["edges"] == str(structure.number_of_edges())
        assert rows["layer widths"] == "4, 6, 6, 2"
        assert rows["small world sigma"].startswith("~ ")
        assert not rows["clustering"].startswith("~")

    def test_json_matches_summary(self, structure_file):
        structure, path = structure_file
        result = runner.invoke(app, ["graph", "stats", str(path), "--json", "--seed", "3"])
        assert result.exit_code == 0, result.output
        printed = json.loads(result.output)
        expected = summary(structure, seed=3)
        assert printed["skip_histogram"] == {
            str(k): v for k, v in expected["skip_histogram"].items()
        }
        assert printed["clustering"] == pytest.approx(expected["clustering"])
        assert printed["estimates"] == expected["estimates"]

    def test_json_has_no_nan(self, tmp_path):
        path = write(nx.DiGraph(), tmp_path / "empty.json")
        result = runner.invoke(app, ["graph", "stats", str(path), "--json"])
        assert result.exit_code == 0, result.output
        printed = json.loads(result.output, parse_constant=pytest.fail)  # strict: no NaN
        assert printed["clustering"] is None
        assert printed["density"] is None
        assert printed["in_degree"] == dict.fromkeys(("mean", "std", "min", "max"))

    def test_corrupt_file(self, tmp_path):
        path = tmp_path / "bad.json"
        path.write_text("{not json")
        result = runner.invoke(app, ["graph", "stats", str(path)])
        assert result.exit_code == 2
        assert "error:" in result.output
        assert "not a valid json graph file" in result.output

    def test_missing_file(self, tmp_path):
        result = runner.invoke(app, ["graph", "stats", str(tmp_path / "nothing.json")])
        assert result.exit_code == 2
        assert "Error" in result.output  # typer's own message, boxed by rich


class TestDraw:
    def test_writes_png(self, structure_file, tmp_path):
        _, path = structure_file
        out = tmp_path / "out.png"
        result = runner.invoke(app, ["graph", "draw", str(path), str(out)])
        assert result.exit_code == 0, result.output
        assert out.read_bytes()[:4] == b"\x89PNG"
        assert f"wrote {out}" in result.output

    def test_layer_graph_option(self, structure_file, tmp_path, monkeypatch):
        import pypaddle.graph.drawing as drawing

        drawn = []
        real = drawing._draw_layer_graph
        monkeypatch.setattr(drawing, "_draw_layer_graph", lambda *a: drawn.append(1) or real(*a))
        _, path = structure_file
        out = tmp_path / "out.png"
        result = runner.invoke(app, ["graph", "draw", str(path), str(out), "--max-vertices", "5"])
        assert result.exit_code == 0, result.output
        assert drawn == [1]

    def test_unknown_suffix(self, tmp_path):
        path = tmp_path / "g.txt"
        path.write_text("0 1")
        result = runner.invoke(app, ["graph", "draw", str(path), str(tmp_path / "o.png")])
        assert result.exit_code == 2
        assert "suffix '.txt'" in result.output
        assert not (tmp_path / "o.png").exists()
