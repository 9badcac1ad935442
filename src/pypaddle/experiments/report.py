"""Reporting per-round experiment results: a rich table, a plot, JSON and CSV files.

Each result is a flat dict of JSON-compatible values with at least ``round``, ``edges``,
``density`` (a fraction in ``[0, 1]``) and ``accuracy``, as :func:`~pypaddle.experiments.run_demo`
returns them. rich and matplotlib are imported only by the functions that need them.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pypaddle._core.files import atomic_write_text
from pypaddle.errors import ConfigError

if TYPE_CHECKING:
    from rich.table import Table

__all__ = ["plot_accuracy_vs_density", "results_table", "write_results"]

Results = Sequence[Mapping[str, Any]]


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def results_table(results: Results, *, title: str | None = None) -> Table:
    """A rich table of edges, density and held-out accuracy per round.

    Parameters
    ----------
    results : sequence of mappings
        One mapping per round with ``round``, ``density`` and (when known) ``edges`` and
        ``accuracy``; ``accuracy_before_retraining`` and ``test_loss`` are shown when present.
    title : str, optional
        The table's title.

    Examples
    --------
    >>> table = results_table([{"round": 0, "edges": 10, "density": 1.0, "accuracy": 0.9}])
    >>> table.row_count
    1
    """
    try:
        from rich.table import Table
    except ImportError:
        raise ConfigError(
            "results_table needs rich, which is not installed; "
            "install it with: pip install 'pypaddle[cli]'"
        ) from None
    table = Table(title=title)
    with_loss = any(result.get("test_loss") is not None for result in results)
    table.add_column("round", justify="right")
    table.add_column("edges", justify="right")
    table.add_column("density", justify="right")
    table.add_column("acc. after pruning", justify="right")
    table.add_column("held-out accuracy", justify="right", style="bold")
    if with_loss:
        table.add_column("test loss", justify="right")
    for result in results:
        cells = [
            str(result["round"]),
            str(result.get("edges", "–")),
            _percent(result["density"]),
            _percent(result.get("accuracy_before_retraining")),
            _percent(result.get("accuracy")),
        ]
        if with_loss:
            cells.append(
                f"{result['test_loss']:.4g}" if result.get("test_loss") is not None else "–"
            )
        table.add_row(*cells)
    return table


def plot_accuracy_vs_density(
    results: Results, path: str | Path, *, title: str = "Held-out accuracy vs density"
) -> Path:
    """Save a PNG of held-out accuracy against density (in %, log scale, densest on the left).

    Uses matplotlib's object API with the Agg canvas, so no global backend is changed and
    no display is needed.

    Parameters
    ----------
    results : sequence of mappings
        One mapping per round with ``round``, ``density`` and ``accuracy``.
    path : str or Path
        Where to write the PNG; its folder must exist.
    title : str
        The plot's title.

    Returns
    -------
    Path
        ``path``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> results = [{"round": 0, "density": 1.0, "accuracy": 0.97},
    ...            {"round": 1, "density": 0.5, "accuracy": 0.95}]
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     png = plot_accuracy_vs_density(results, pathlib.Path(folder) / "plot.png")
    ...     png.read_bytes()[:4]
    b'\\x89PNG'
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import FuncFormatter, NullLocator
    except ImportError:
        raise ConfigError(
            "plotting needs matplotlib, which is not installed; "
            "install it with: pip install 'pypaddle[plot]'"
        ) from None
    path = Path(path)
    densities = [100 * float(result["density"]) for result in results]
    accuracies = [100 * float(result["accuracy"]) for result in results]
    before = [
        (density, 100 * float(result["accuracy_before_retraining"]))
        for density, result in zip(densities, results)
        if result.get("accuracy_before_retraining") is not None
    ]

    figure = Figure(figsize=(7.5, 4.8), dpi=120, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.plot(
        densities, accuracies, marker="o", linewidth=2, color="tab:blue", label="after retraining"
    )
    for density, accuracy in zip(densities, accuracies):
        axes.annotate(
            f"{accuracy:.1f}%",
            (density, accuracy),
            textcoords="offset points",
            xytext=(0, 8),
            ha="center",
            fontsize=8,
            color="tab:blue",
        )
    if before:
        axes.plot(
            *zip(*before),
            marker="x",
            linestyle=":",
            color="tab:orange",
            label="right after pruning",
        )
    if accuracies:
        axes.axhline(accuracies[0], color="grey", linestyle="--", linewidth=1, label="dense model")
    low = min([*accuracies, *(accuracy for _, accuracy in before)], default=0.0)
    axes.set_ylim(max(0.0, low - 5), 104)
    axes.set_xscale("log")
    axes.set_xticks(densities)
    axes.set_xticklabels(
        [
            f"{density:.3g}%" + (f"\n{result['edges']} edges" if "edges" in result else "")
            for density, result in zip(densities, results)
        ]
    )
    axes.xaxis.set_minor_locator(NullLocator())
    axes.invert_xaxis()
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}%"))
    axes.set_xlabel("density: edges kept, % of the structure (log scale)")
    axes.set_ylabel("held-out accuracy")
    axes.set_title(title)
    axes.grid(True, which="major", alpha=0.3)
    axes.legend(loc="lower left")
    figure.savefig(path)
    return path


def write_results(results: Results, out_dir: str | Path, *, stem: str = "results") -> list[Path]:
    """Write ``results`` to ``<stem>.json`` and ``<stem>.csv`` in ``out_dir``; return both paths.

    The CSV has one row per round and the union of the keys as columns (in first-seen
    order); a missing or ``None`` value is an empty cell.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     paths = write_results([{"round": 0, "accuracy": 0.9}], folder)
    ...     [path.name for path in paths], paths[1].read_text().splitlines()
    (['results.json', 'results.csv'], ['round,accuracy', '0,0.9'])
    """
    out_dir = Path(out_dir)
    rows = [dict(result) for result in results]
    json_path = atomic_write_text(out_dir / f"{stem}.json", json.dumps(rows, indent=2) + "\n")
    columns = list(dict.fromkeys(key for row in rows for key in row))
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    csv_path = atomic_write_text(out_dir / f"{stem}.csv", table.getvalue())
    return [json_path, csv_path]
