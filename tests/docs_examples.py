"""Run the Python examples of a markdown page and check what they print.

A page's ```` ```python ```` blocks run in order in one namespace (so a later block can use
what an earlier one made), in a fresh temporary working directory. A python block followed
by a ```` ```text ```` block must print that text: compared as doctest compares, with
``...`` matching anything and runs of whitespace equal. An HTML comment
``<!-- docs-test: skip -->`` on the line before a block leaves that block out (for code that
needs a GPU, a cluster or a file the reader has); ``<!-- docs-test: slow -->`` anywhere on a
page marks the page's test slow.
"""

from __future__ import annotations

import contextlib
import doctest
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_FENCE = re.compile(
    r"^(?P<skip><!-- docs-test: skip -->\n)?```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^```[ \t]*$",
    flags=re.DOTALL | re.MULTILINE,
)
_CHECKER = doctest.OutputChecker()
_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


@dataclass
class Example:
    """One python block of a page and the output it must print (None: not checked)."""

    code: str
    expected: str | None
    line: int
    skip: bool


def examples(path: Path) -> list[Example]:
    """The python blocks of a markdown file, each with the text block after it, if any."""
    text = path.read_text(encoding="utf-8")
    blocks = list(_FENCE.finditer(text))
    found = []
    for index, block in enumerate(blocks):
        if block.group("lang") != "python":
            continue
        expected = None
        if index + 1 < len(blocks):
            following = blocks[index + 1]
            between = text[block.end() : following.start()]
            if following.group("lang") == "text" and not between.strip():
                expected = following.group("body")
        found.append(
            Example(
                code=block.group("body"),
                expected=expected,
                line=text.count("\n", 0, block.start()) + 1,
                skip=block.group("skip") is not None,
            )
        )
    return found


def is_slow(path: Path) -> bool:
    return "<!-- docs-test: slow -->" in path.read_text(encoding="utf-8")


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name


def run_page(path: Path, workdir: Path) -> int:
    """Run every example of ``path`` in ``workdir``; returns how many ran. Raises on a
    failing example or a wrong output, naming the file and line."""
    namespace: dict = {"__name__": "__docs__"}
    ran = 0
    previous = Path.cwd()
    os.chdir(workdir)
    try:
        for example in examples(path):
            if example.skip:
                continue
            where = f"{_shown(path)}:{example.line}"
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                exec(compile(example.code, where, "exec"), namespace)
            ran += 1
            if example.expected is not None:
                got = printed.getvalue()
                if not _CHECKER.check_output(example.expected, got, _FLAGS):
                    raise AssertionError(
                        f"{where}: the example printed\n{got}\nbut the page says\n"
                        f"{example.expected}"
                    )
    finally:
        os.chdir(previous)
    return ran
