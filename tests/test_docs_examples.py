"""Every code example of the documentation site runs, and prints what its page says."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from docs_examples import ROOT, examples, is_slow, run_page

PAGES = sorted((ROOT / "docs").rglob("*.md"))


def _param(path: Path):
    marks = [pytest.mark.slow] if is_slow(path) else []
    if path.name == "migrating.md":  # shows 0.3's README example and the warning it now gives
        marks.append(pytest.mark.filterwarnings("ignore::pypaddle.errors.StructureWarning"))
    return pytest.param(path, id=str(path.relative_to(ROOT / "docs")), marks=marks)


def test_pages_have_examples():
    with_examples = [page for page in PAGES if examples(page)]
    assert len(with_examples) >= 10
    names = {page.relative_to(ROOT / "docs").as_posix() for page in with_examples}
    assert {"getting-started.md", "how-to/pruning.md", "how-to/graphs.md"} <= names


@pytest.mark.parametrize("page", [_param(page) for page in PAGES])
def test_page_examples_run(page, tmp_path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # run_page raises on an example that fails or prints other than its text block.
    assert run_page(page, tmp_path) == len(examples(page))


def test_wrong_output_is_reported(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("```python\nprint(1 + 1)\n```\n\n```text\n3\n```\n")
    with pytest.raises(AssertionError, match=r"page.md:1: the example printed\n2"):
        run_page(page, tmp_path)


def test_skip_marker_and_ellipsis(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "<!-- docs-test: skip -->\n```python\nraise SystemExit\n```\n\n"
        "```python\nprint('a long line')\n```\n\n```text\na ... line\n```\n"
    )
    assert [example.skip for example in examples(page)] == [True, False]
    assert run_page(page, tmp_path) == 1


def _toml_blocks():
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for number, block in enumerate(re.findall(r"^```toml\n(.*?)^```", text, re.S | re.M)):
            yield pytest.param(block, id=f"{page.relative_to(ROOT / 'docs')}-{number}")


@pytest.mark.parametrize("block", list(_toml_blocks()))
def test_config_examples_are_valid(block):
    """Every TOML block on a page is a valid experiment config or sweep (nothing runs)."""
    from pypaddle.experiments import examples, parse_config
    from pypaddle.experiments.sweep import parse_sweep

    table = tomllib.loads(block)
    if "sweep" in table:
        spec = parse_sweep(table, base=examples.folder())
        assert spec.trials
    else:
        parse_config(table)
