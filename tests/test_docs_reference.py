"""The reference parts of the documentation cannot drift from the code.

Every public name (every name in the ``__all__`` of every public module) has a docstring
and is on a page of the API reference; every config key is in the configuration
reference; every ``pypaddle.x.y`` a page names exists; and the site builds with
``mkdocs build --strict`` (slow), which fails on a broken link or cross-reference.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import re
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from docs_examples import ROOT

sys.path.insert(0, str(ROOT / "docs"))
import gen_reference

from test_architecture import DOTTED, option_classes, resolves

PUBLIC = [
    (module, name)
    for module in gen_reference.public_modules()
    for name in gen_reference.exported(module)
]


def _documented_objects() -> dict[int, str]:
    """id of every object an API page documents -> where, read from the pages' blocks."""
    found: dict[int, str] = {}
    block = re.compile(r"^::: (?P<identifier>\S+)\n(?P<options>(?: {4}.*\n)*)", re.MULTILINE)
    for page, text in gen_reference.api_pages().items():
        for match in block.finditer(text):
            module = importlib.import_module(match.group("identifier"))
            found[id(module)] = page
            members = re.findall(r"^ {8}- (\S+)$", match.group("options"), re.MULTILINE)
            # griffe renders no object for a name its package shares with a submodule
            hidden = set() if members else gen_reference.shadowed(module.__name__)
            for name in members or getattr(module, "__all__", []):
                if name not in hidden:
                    found[id(getattr(module, name))] = page
    return found


def test_every_public_name_is_in_the_api_reference():
    documented = _documented_objects()
    missing = [
        f"{module}.{name}"
        for module, name in PUBLIC
        if id(getattr(importlib.import_module(module), name)) not in documented
    ]
    assert missing == [], f"public names missing from the API reference: {missing}"
    assert len(PUBLIC) > 250


def test_every_public_name_has_a_docstring():
    griffe = pytest.importorskip("griffe")
    package = griffe.load("pypaddle", search_paths=[str(ROOT / "src")], resolve_aliases=True)
    undocumented = []
    for module, name in PUBLIC:
        path = f"{module}.{name}".removeprefix("pypaddle.")
        found = package[path]
        target = found.final_target if found.is_alias else found
        docstring = target.docstring.value.strip() if target.docstring else ""
        if not docstring:
            undocumented.append(f"{module}.{name}")
    assert undocumented == [], f"public names without a docstring: {undocumented}"


def test_every_config_key_is_in_the_configuration_reference():
    reference = gen_reference.config_reference()
    missing = []
    for cls in option_classes():
        for field in (field.name for field in dataclasses.fields(cls)):
            if not re.search(rf"`[a-z_.]*\b{field}` \|", reference):
                missing.append(f"{cls.__name__}.{field}")
    assert missing == []
    assert '| `training.optimizer` | string | `"adam"` | `"adam"`, `"adamw"`, `"sgd"` |' in (
        reference
    )


def test_every_config_key_has_help_text():
    """The reference's help column is read from ``option(..., help=...)``; a key without it
    would show an empty cell (and its ConfigErrors would not say what it means)."""
    classes = option_classes()
    assert len(classes) >= 15
    empty = sorted(
        f"{cls.__module__}.{cls.__name__}.{field.name}"
        for cls in classes
        for field in dataclasses.fields(cls)
        if not str(field.metadata.get("help", "")).strip()
    )
    assert empty == [], f"config keys without help text: {empty}"
    reference = gen_reference.config_reference()
    assert "| `training.epochs` | int | `10` | >= 1 | passes over the training set" in reference
    assert not re.search(r"^\| `[^`]+` \|.*\| *\|$", reference, re.MULTILINE)


def test_every_dotted_name_on_a_page_exists():
    pages = [*(ROOT / "docs").rglob("*.md"), ROOT / "CONTRIBUTING.md", ROOT / "CHANGELOG.md"]
    references = {match for page in pages for match in DOTTED.findall(page.read_text())}
    assert len(references) > 20
    assert sorted(reference for reference in references if not resolves(reference)) == []


def _mkdocs(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
        capture_output=True,
        text=True,
        cwd=config.parent,
        env=environment,
        check=False,
    )


def _inventory(site: Path) -> set[str]:
    data = (site / "objects.inv").read_bytes()
    body = zlib.decompress(data.split(b"\n", 4)[4]).decode()
    return {line.split(" ", 1)[0] for line in body.splitlines()}


@pytest.mark.slow
def test_site_builds_strictly_with_every_public_name(tmp_path):
    pytest.importorskip("mkdocstrings")
    result = _mkdocs(ROOT / "mkdocs.yml", tmp_path / "site")
    assert result.returncode == 0, result.stderr[-3000:]
    inventory = _inventory(tmp_path / "site")
    documented = {}
    for identifier in inventory:
        module, _, name = identifier.rpartition(".")
        try:
            documented[id(getattr(importlib.import_module(module), name))] = identifier
        except (ImportError, AttributeError, ValueError):
            continue
    missing = [
        f"{module}.{name}"
        for module, name in PUBLIC
        if id(getattr(importlib.import_module(module), name)) not in documented
        and f"{module}.{name}" not in inventory
    ]
    assert missing == []
    for page in ("getting-started", "reference/api/sparse", "reference/configuration"):
        assert (tmp_path / "site" / page / "index.html").is_file()


@pytest.mark.slow
def test_a_broken_cross_reference_fails_the_build_naming_it(tmp_path):
    pytest.importorskip("mkdocstrings")
    project = tmp_path / "project"
    shutil.copytree(ROOT / "docs", project / "docs", ignore=shutil.ignore_patterns("*.png"))
    shutil.copy(ROOT / "mkdocs.yml", project / "mkdocs.yml")
    for name in ("CHANGELOG.md", "CONTRIBUTING.md"):
        shutil.copy(ROOT / name, project / name)
    (project / "src").symlink_to(ROOT / "src")
    page = project / "docs" / "getting-started.md"
    page.write_text(page.read_text() + "\nSee [nothing][pypaddle.prune.no_such_function].\n")
    result = _mkdocs(project / "mkdocs.yml", tmp_path / "site")
    assert result.returncode != 0
    assert "pypaddle.prune.no_such_function" in result.stderr
