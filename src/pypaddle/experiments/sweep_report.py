"""A sweep's report: a row per trial (with the graph measures of its structures), a row per
trial and round, one comparing plot, and the analysis of accuracy against the measures
(:mod:`pypaddle.experiments.analysis`)."""

from __future__ import annotations

import csv
import html
import io
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pypaddle._core.files import atomic_path, atomic_write_text
from pypaddle._core.reports import Report, TableCells
from pypaddle.experiments.analysis import (
    ANALYSIS_FOLDER,
    FinishedTrial,
    SweepAnalysis,
    analyse_trials,
    write_analysis,
)
from pypaddle.experiments.records import measure_columns

if TYPE_CHECKING:
    from pypaddle.experiments.trials import SweepSpec

__all__ = ["SweepResults", "plot_sweep", "write_sweep_report"]

_ROUND_COLUMNS = ("round", "density", "edges", "accuracy", "test_loss", "train_loss")


def _csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, fieldnames=list(columns), lineterminator="\n", extrasaction="ignore"
    )
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _label(row: Mapping[str, Any], keys: Sequence[str]) -> str:
    return ", ".join(f"{key.rsplit('.', 1)[-1]}={row[key]}" for key in keys) or "all trials"


def plot_sweep(rows: Sequence[Mapping[str, Any]], keys: Sequence[str], path: Path) -> Path:
    """Accuracy (or test loss) vs density: one line per setting of the swept ``keys`` other
    than ``seed``, the mean over seeds with a band from the lowest to the highest."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from pypaddle.experiments.plots import density_axis

    metric = "accuracy" if all(row.get("accuracy") is not None for row in rows) else "test_loss"
    # Trials of one setting differ only in their seed: average them round by round.
    groups: dict[str, dict[int, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
    shown = [key for key in keys if key != "seed"]
    for row in rows:
        point = (float(row["density"]), float(row[metric]))
        groups[_label(row, shown)][int(row["round"])].append(point)
    figure = Figure(figsize=(7.5, 4.8), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    scale = 100.0 if metric == "accuracy" else 1.0
    all_densities = []
    for label, by_round in groups.items():
        points = [np.array(by_round[round_]) for round_ in sorted(by_round)]
        densities = 100 * np.array([p[:, 0].mean() for p in points])
        values = [p[:, 1] * scale for p in points]
        all_densities += densities.tolist()
        axes.plot(densities, [v.mean() for v in values], marker="o", label=label)
        axes.fill_between(
            densities, [v.min() for v in values], [v.max() for v in values], alpha=0.2
        )
    density_axis(axes, all_densities)
    axes.set_ylabel("held-out accuracy (%)" if metric == "accuracy" else "test loss")
    axes.set_title("sweep: mean over seeds, band from lowest to highest")
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8)
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png")
    return path


_SHOWN = ("density", "accuracy", "test_loss", "status")


class SweepResults(list[dict[str, Any]], Report):
    """What :func:`~pypaddle.experiments.sweep.run_sweep` returns: the results of the
    finished trials (a list of their ``result.json`` dicts, as before), that is also a
    report.

    ``str(results)`` and Jupyter show a table with a row per trial (its swept values, final
    density, accuracy, test loss and status) and, below it in Jupyter, the summary of the
    analysis; :attr:`analysis` holds the analysis itself (``None`` without a finished
    trial) and :meth:`to_dict` both as plain data.
    """

    def __init__(
        self,
        results: Sequence[Mapping[str, Any]],
        *,
        title: str,
        keys: Sequence[str],
        rows: Sequence[Mapping[str, Any]],
        analysis: SweepAnalysis | None,
    ) -> None:
        super().__init__(dict(result) for result in results)
        self.title = title
        self.keys = list(keys)
        self.rows = [dict(row) for row in rows]
        self.analysis = analysis

    def to_dict(self) -> dict[str, Any]:
        """The title, a row per trial and the analysis, as plain data."""
        return {
            "title": self.title,
            "trials": self.rows,
            "analysis": None if self.analysis is None else self.analysis.to_dict(),
        }

    def table_cells(self) -> TableCells:
        """A row per trial: its number, swept values, density, accuracy, loss, status."""
        columns = ["trial", *self.keys, *_SHOWN]

        def cell(row: Mapping[str, Any], column: str) -> str:
            value = row.get(column, "")
            if isinstance(value, float):
                return f"{value:.4g}"
            return str(value)[:40] if column == "status" else str(value)

        return TableCells(
            [column.rsplit(".", 1)[-1] for column in columns],
            [[cell(row, column) for column in columns] for row in self.rows],
            align="r" * (len(columns) - 1) + "l",
        )

    def _repr_html_(self) -> str:
        parts = [f"<p><b>{html.escape(self.title)}</b></p>", super()._repr_html_()]
        if self.analysis is not None:
            parts.append(f"<pre>{html.escape(self.analysis.text())}</pre>")
        return "".join(parts)


def write_sweep_report(
    spec: SweepSpec,
    results: Sequence[Mapping[str, Any]],
    failures: Mapping[str, str],
    out_dir: Path,
) -> SweepResults:
    """Write ``trials.csv``, ``rounds.csv``, ``report.png`` and the analysis; return
    ``results`` as :class:`SweepResults` (a row per trial, the analysis).

    ``trials.csv`` has the graph measures of each trial's prior and final structure as
    columns ``prior.<measure>`` and ``final.<measure>`` (empty where undefined); the
    analysis of the finished trials (:func:`~pypaddle.experiments.analysis.analyse_trials`)
    replaces ``out_dir/analysis/`` as a whole.
    """
    keys = list(spec.swept_keys)
    by_id = {result["id"]: result for result in results}
    measured = any(result.get("measures") for result in results)
    trial_rows, round_rows = [], []
    for trial in spec.trials:
        row: dict[str, Any] = {"trial": trial.index, "id": trial.id, **trial.overrides}
        result = by_id.get(trial.id)
        if result is None:
            row["status"] = f"failed: {failures[trial.id]}" if trial.id in failures else "missing"
        else:
            row["status"] = "done"
            row.update({column: result["final"].get(column) for column in _ROUND_COLUMNS})
            # Why the trial's prior cannot learn, if it cannot (its StructureWarning).
            row["structure_problems"] = " | ".join(
                result.get("structure_problems", {}).get("prior", [])
            )
            for record in result["rounds"]:
                round_rows.append(
                    {**row, **{column: record.get(column) for column in _ROUND_COLUMNS}}
                )
            if measured:
                row.update(
                    {
                        column: "" if np.isnan(value) else f"{value:.10g}"
                        for column, value in measure_columns(result.get("measures") or {}).items()
                    }
                )
        trial_rows.append(row)
    columns = ["trial", "id", *keys, "status", *_ROUND_COLUMNS]
    measure_names = list(measure_columns({})) if measured else []
    atomic_write_text(
        out_dir / "trials.csv",
        _csv(trial_rows, [*columns, "structure_problems", *measure_names]),
    )
    atomic_write_text(out_dir / "rounds.csv", _csv(round_rows, columns))
    if round_rows:
        plot_sweep(round_rows, keys, out_dir / "report.png")
    finished = [
        FinishedTrial(trial.id, trial.overrides, dict(by_id[trial.id]))
        for trial in spec.trials
        if trial.id in by_id
    ]
    analysis = None
    if finished:
        analysis = analyse_trials(finished)
        write_analysis(analysis, out_dir / ANALYSIS_FOLDER)
    title = f"sweep {spec.name}: {len(results)} of {len(spec.trials)} trials done"
    return SweepResults(results, title=title, keys=keys, rows=trial_rows, analysis=analysis)
