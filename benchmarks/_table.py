"""The printed table of benchmark rows: ratios, goals and whether they are met.

Every benchmark section is a function ``bench_*(table, *, quick)`` that adds ``Row`` s to
a ``Table``; ``run.py`` calls them in order.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Goal:
    """A bound on a row's ratio, or on pypaddle's own time when ``on_seconds``."""

    limit: float
    at_most: bool
    on_seconds: bool = False

    def met(self, row: Row) -> bool | None:
        value = row.pypaddle if self.on_seconds else row.ratio
        if value is None:
            return None
        return value <= self.limit if self.at_most else value >= self.limit

    def __str__(self) -> str:
        bound = "<=" if self.at_most else ">="
        return f"{bound} {self.limit:g} s" if self.on_seconds else f"{bound} {self.limit:g}x"


@dataclass(frozen=True)
class Row:
    """One result line; ``note`` explains numbers that are missing."""

    label: str
    pypaddle: float | None = None
    reference: float | None = None
    ratio: float | None = None
    goal: Goal | None = None
    note: str = ""
    tag: str = ""  # what ran, shown beside the label (e.g. the kernel ``auto`` chose)
    threads: int | None = None  # torch threads it ran with (set by ``Table.add``)

    @property
    def title(self) -> str:
        return f"{self.label}, {self.tag}" if self.tag else self.label


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} us"


class Table:
    """Prints rows as they come and a summary of the goals at the end."""

    layout = "{:<68} {:>10} {:>10} {:>8}  {:<9} {}"

    def __init__(self) -> None:
        self.rows: list[Row] = []
        self.threads: int | None = None  # the torch thread count rows are measured with
        print(
            self.layout.format(
                "benchmark (ratio = first / second)", "pypaddle", "other", "ratio", "goal", "met"
            )
        )
        print("-" * 114, flush=True)

    def section(self, title: str) -> None:
        print(f"[{title}]", flush=True)

    def add(self, row: Row) -> None:
        row = replace(row, threads=self.threads)
        self.rows.append(row)
        met = (
            "-" if row.goal is None else {True: "yes", False: "NO", None: "n/a"}[row.goal.met(row)]
        )
        ratio = "-" if row.ratio is None else f"{row.ratio:.2f}x"
        print(
            self.layout.format(
                row.title,
                _duration(row.pypaddle),
                _duration(row.reference),
                ratio,
                str(row.goal or "-"),
                met,
            )
        )
        if row.note:
            print(f"    {row.note}")
        sys.stdout.flush()

    def summary(self) -> None:
        judged = [row for row in self.rows if row.goal is not None]
        verdicts = [(row, row.goal.met(row)) for row in judged]
        met = sum(verdict is True for _, verdict in verdicts)
        print("-" * 114)
        print(f"goals met: {met} of {len(judged)}")
        for row, verdict in verdicts:
            if verdict is not True:
                state = "missed" if verdict is False else "not measured"
                at = "" if row.threads is None else f" at {row.threads} thread(s)"
                print(f"  {state}: {row.title}{at} (goal {row.goal})")

    def by_threads(self) -> None:
        """The ratios of every row measured at more than one thread count, side by side."""
        counts = sorted({row.threads for row in self.rows if row.threads is not None})
        if len(counts) < 2:
            return
        ratios: dict[str, dict[int, Row]] = {}
        for row in self.rows:
            if row.threads is not None and row.ratio is not None:
                ratios.setdefault(row.label, {})[row.threads] = row
        shared = {label: rows for label, rows in ratios.items() if len(rows) > 1}
        if not shared:
            return
        width = 30
        header = "".join(f"{f'{count} thread(s)':>{width}}" for count in counts)
        print(f"\nratios by torch thread count\n{'benchmark':<68}{header}  goal")
        for label, rows in shared.items():
            cells = []
            for count in counts:
                row = rows.get(count)
                if row is None:
                    cells.append(f"{'-':>{width}}")
                    continue
                met = "" if row.goal is None else (" ok" if row.goal.met(row) else " NO")
                cell = f"{row.ratio:.2f}x{met}" + (f" ({row.tag})" if row.tag else "")
                cells.append(f"{cell:>{width}}")
            goal = next((str(row.goal) for row in rows.values() if row.goal), "-")
            print(f"{label:<68}{''.join(cells)}  {goal}")
