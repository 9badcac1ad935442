"""The README: its quickstart runs and prints what it says, and it renders on PyPI.

The examples that used to live in the README are on the documentation pages now and run in
``tests/test_docs_examples.py``.
"""

from __future__ import annotations

import re

from docs_examples import ROOT, examples, run_page

README = ROOT / "README.md"
TEXT = README.read_text(encoding="utf-8")


def test_readme_starts_with_the_two_commands():
    first_block = re.search(r"```bash\n(.*?)```", TEXT, flags=re.DOTALL)
    assert first_block is not None
    assert TEXT.index(first_block.group(0)) < TEXT.index("\n## ")
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert commands == ["make demo", "make test"]


def test_readme_is_short_and_links_into_the_docs():
    assert len(TEXT) < 9000
    for section in ("## Install", "## Quickstart", "## Features", "## Documentation"):
        assert section in TEXT
    assert "download.pytorch.org/whl/cpu" in TEXT
    assert "innvariant.github.io/pypaddle/reference/api/" in TEXT


def test_readme_images_and_links_are_absolute():
    """PyPI renders the README without the repository: every image and link is a URL."""
    targets = re.findall(r"\]\(([^)]+)\)", TEXT)
    assert targets
    assert [target for target in targets if not target.startswith("https://")] == []
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", TEXT)
    assert images
    for image in images:
        assert image.startswith("https://raw.githubusercontent.com/innvariant/pypaddle/main/docs/")
        assert (ROOT / "docs" / image.rsplit("/", 1)[1]).is_file()


def test_quickstart_runs_and_prints_what_it_says(tmp_path):
    quickstart = examples(README)
    assert len(quickstart) == 1
    assert quickstart[0].expected is not None
    assert len(quickstart[0].code.splitlines()) <= 25
    assert run_page(README, tmp_path) == 1
