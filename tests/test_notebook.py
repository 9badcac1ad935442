"""The example notebook runs, and shows structures as pictures and reports as tables."""

import base64
import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "quickstart.ipynb"


def outputs(cell):
    text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
    data = {}
    for output in cell.outputs:
        data.update(output.get("data", {}))
    return text, data


def test_the_committed_notebook_has_no_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")


@pytest.mark.slow
def test_build_train_prune_analyse():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3").execute(
        cwd=str(NOTEBOOK.parent)
    )
    code = [outputs(cell) for cell in notebook.cells if cell.cell_type == "code"]
    _, structure = code[0]
    assert base64.b64decode(structure["image/png"])[:4] == b"\x89PNG"
    _, stats = code[1]
    assert stats["text/html"].startswith("<table>")
    assert "layer widths" in stats["text/html"]
    dense, _ = code[2]
    assert float(re.fullmatch(r"dense: ([\d.]+)% on the held-out digits\n", dense)[1]) > 80
    pruned, report = code[3]
    density, accuracy = re.fullmatch(r"at ([\d.]+)% density: ([\d.]+)%\n", pruned).groups()
    assert float(density) < 25
    assert float(accuracy) > 70
    assert "<table>" in report["text/html"]
    assert "layer_out" in report["text/html"]
    _, counts = code[4]
    assert "<table>" in counts["text/html"]
    _, picture = code[5]
    assert base64.b64decode(picture["image/png"])[:4] == b"\x89PNG"
    final, _ = code[6]
    before, after = map(int, re.match(r"(\d+) -> (\d+) edges;", final).groups())
    assert before == 255
    assert 0 < after < before
