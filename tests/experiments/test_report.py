import csv
import sys

import pytest
from rich.console import Console

from pypaddle.errors import ConfigError
from pypaddle.experiments import plot_accuracy_vs_density, results_table, write_results

RESULTS = [
    {"round": 0, "edges": 8, "density": 1.0, "accuracy_before_retraining": None, "accuracy": 0.9},
    {"round": 1, "edges": 4, "density": 0.5, "accuracy_before_retraining": 0.7, "accuracy": 0.85},
]


def render(table) -> str:
    console = Console(width=120, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(table)
    return console.export_text()


class TestResultsTable:
    def test_one_row_per_round_with_percentages(self):
        table = results_table(RESULTS, title="pruning")
        text = render(table)
        assert table.row_count == 2
        assert "pruning" in text
        rows = [line for line in text.splitlines() if "│" in line and "round" not in line]
        cells = [[cell.strip() for cell in row.split("│")[1:-1]] for row in rows]
        assert cells == [
            ["0", "8", "100.0%", "–", "90.0%"],
            ["1", "4", "50.0%", "70.0%", "85.0%"],
        ]


class TestWriteResults:
    def test_csv_and_json(self, tmp_path):
        json_path, csv_path = write_results(RESULTS, tmp_path, stem="rounds")
        assert (json_path.name, csv_path.name) == ("rounds.json", "rounds.csv")
        with csv_path.open() as handle:
            rows = list(csv.DictReader(handle))
        assert rows[0]["accuracy_before_retraining"] == ""
        assert rows[1] == {
            "round": "1",
            "edges": "4",
            "density": "0.5",
            "accuracy_before_retraining": "0.7",
            "accuracy": "0.85",
        }


class TestPlotAccuracyVsDensity:
    def test_writes_a_png(self, tmp_path):
        from matplotlib.image import imread

        path = plot_accuracy_vs_density(RESULTS, tmp_path / "plot.png", title="t")
        assert path == tmp_path / "plot.png"
        assert imread(path).shape == (576, 900, 4)

    def test_does_not_change_the_pyplot_backend(self, tmp_path):
        import matplotlib

        backend = matplotlib.get_backend()
        plot_accuracy_vs_density(RESULTS, tmp_path / "plot.png")
        assert matplotlib.get_backend() == backend

    def test_missing_matplotlib_says_what_to_install(self, monkeypatch, tmp_path):
        monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
        with pytest.raises(ConfigError, match=r"pypaddle\[plot\]"):
            plot_accuracy_vs_density(RESULTS, tmp_path / "plot.png")
        assert not (tmp_path / "plot.png").exists()
