"""The README's Python examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_readme_has_examples():
    assert len(BLOCKS) >= 2
    assert "pypaddle.sparse.MaskedDeepDAN(784, 10, pruned_structure)" in BLOCKS[0]


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_example_runs(block):
    namespace: dict = {}
    exec(compile(block, str(README), "exec"), namespace)
    assert "model" in namespace
