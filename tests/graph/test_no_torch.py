"""pypaddle.graph knows nothing of torch: it imports and runs without loading it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pypaddle.graph

GRAPH_FOLDER = Path(pypaddle.graph.__file__).parent


def test_no_module_imports_torch():
    for module in sorted(GRAPH_FOLDER.glob("*.py")):
        tree = ast.parse(module.read_text(), filename=str(module))
        imported = {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        }
        imported |= {
            node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
        }
        assert not {name for name in imported if name.split(".")[0] == "torch"}, module.name


def test_graph_runs_without_loading_torch():
    # pypaddle/__init__ imports the torch-based subpackages, so stand in an empty parent
    # package and import pypaddle.graph alone, then use it.
    script = f"""
import sys, types, tempfile, pathlib
package = types.ModuleType("pypaddle")
package.__path__ = [{str(GRAPH_FOLDER.parent)!r}]
sys.modules["pypaddle"] = package
import pypaddle.graph as graph
structure = graph.random_layered([3, 4, 2], density=0.5, skip_density=0.5, seed=0)
stats = graph.summary(structure)
folder = pathlib.Path(tempfile.mkdtemp())
again = graph.read(graph.write(structure, folder / "g.json"))
assert list(again.edges) == list(structure.edges)
graph.layer_graph(structure)
print(stats["vertices"], "torch" in sys.modules)
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.split() == ["9", "False"]
