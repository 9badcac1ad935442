"""Progress bars (rich) that vanish when quiet."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pypaddle._core.reports import Report

__all__ = ["Progress", "progress_bars", "rich_console", "rich_table"]


class Progress:
    """Rich progress bars, or nothing at all when quiet (then rich is not imported)."""

    def __init__(self, progress: Any = None) -> None:
        self._progress = progress

    def add(self, description: str, total: int) -> Any:
        if self._progress is None:
            return None
        return self._progress.add_task(description, total=total, loss=math.nan)

    def advance(self, task: Any, loss: float) -> None:
        if self._progress is not None:
            self._progress.update(task, advance=1, loss=loss)


@contextmanager
def progress_bars(console: Any) -> Iterator[Progress]:
    if console is None:
        yield Progress()
        return
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as RichProgress

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("epochs  loss {task.fields[loss]:.3f}"),
        TimeElapsedColumn(),
    )
    with RichProgress(*columns, console=console) as progress:
        yield Progress(progress)


def rich_console(quiet: bool) -> Any:
    if quiet:
        return None
    from rich.console import Console

    return Console()


def rich_table(report: Report) -> Any:
    """A report's table (:meth:`~pypaddle._core.reports.Report.table_cells`) as a rich
    table, titled with the report's ``title`` when it has one."""
    from rich.table import Table

    cells = report.table_cells()
    table = Table(title=getattr(report, "title", None))
    for i, column in enumerate(cells.header):
        table.add_column(column, justify="right" if cells.alignment(i) == "r" else "left")
    for row in [*cells.rows, *cells.footer]:
        table.add_row(*row)
    return table
