"""One interface for every report pypaddle returns: plain data, a text table, an HTML table.

A report class derives from :class:`Report` and says two things: :meth:`Report.to_dict`
(plain data: numbers, strings, lists and dicts, ready for ``json.dumps``) and
:meth:`Report.table_cells` (a header, the rows and the closing rows such as a total, as
strings, with the alignment of each column). :class:`Report` then gives ``str(report)``
and :meth:`Report.to_table` (a fixed-width table) and ``_repr_html_`` (the same table in
HTML, which Jupyter shows).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Report", "TableCells", "html_table", "text_table"]


@dataclass(frozen=True)
class TableCells:
    """A table as strings: header, body rows and closing rows (a total), and per column
    ``"l"`` (left) or ``"r"`` (right, for numbers) in ``align``."""

    header: Sequence[str]
    rows: Sequence[Sequence[str]]
    footer: Sequence[Sequence[str]] = ()
    align: str = ""

    def alignment(self, column: int) -> str:
        return self.align[column] if column < len(self.align) else "l"


def text_table(cells: TableCells) -> str:
    """A fixed-width table: the header, a rule, the rows, and a rule before the footer.

    Examples
    --------
    >>> print(text_table(TableCells(["layer", "params"], [["fc", "12"]], [["total", "12"]], "lr")))
    layer  params
    -------------
    fc         12
    -------------
    total      12
    """
    every = [cells.header, *cells.rows, *cells.footer]
    widths = [max(len(row[i]) for row in every) for i in range(len(cells.header))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(width) if cells.alignment(i) == "r" else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths))
        ).rstrip()

    lines = [line(cells.header)]
    rule = "-" * len(lines[0])
    lines.append(rule)
    lines.extend(line(row) for row in cells.rows)
    if cells.footer:
        lines.append(rule)
        lines.extend(line(row) for row in cells.footer)
    return "\n".join(lines)


def html_table(cells: TableCells) -> str:
    """The table as HTML (escaped; numbers right-aligned; the footer in ``<tfoot>``)."""

    def row(values: Sequence[str], tag: str) -> str:
        return (
            "<tr>"
            + "".join(
                f'<{tag} style="text-align: {"right" if cells.alignment(i) == "r" else "left"}">'
                f"{html.escape(value)}</{tag}>"
                for i, value in enumerate(values)
            )
            + "</tr>"
        )

    parts = ["<table>", "<thead>", row(cells.header, "th"), "</thead>", "<tbody>"]
    parts.extend(row(values, "td") for values in cells.rows)
    parts.append("</tbody>")
    if cells.footer:
        parts.extend(["<tfoot>", *(row(values, "td") for values in cells.footer), "</tfoot>"])
    parts.append("</table>")
    return "".join(parts)


class Report:
    """Base of pypaddle's reports: ``to_dict()``, ``str()`` / ``to_table()``, ``_repr_html_()``.

    Subclasses define :meth:`to_dict` and :meth:`table_cells`.
    """

    def to_dict(self) -> dict[str, Any]:
        """The report as plain data."""
        raise NotImplementedError

    def table_cells(self) -> TableCells:
        """The report's table, as strings."""
        raise NotImplementedError

    def to_table(self) -> str:
        """The report as a fixed-width text table."""
        return text_table(self.table_cells())

    def __str__(self) -> str:
        return self.to_table()

    def _repr_html_(self) -> str:
        return html_table(self.table_cells())
