"""A sweep's report: a row per trial (with the graph measures of its structures), a row per
trial and round, one comparing plot, and the analysis of accuracy against the measures
(:mod:`pypaddle.experiments.analysis`)."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pypaddle._core.files import atomic_path, atomic_write_text
from pypaddle.experiments.analysis import (
    ANALYSIS_FOLDER,
    FinishedTrial,
    SweepAnalysis,
    analyse_trials,
    write_analysis,
)
from pypaddle.experiments.records import measure_columns

if TYPE_CHECKING:
    from rich.table import Table

    from pypaddle.experiments.trials import SweepSpec

__all__ = ["SweepReport", "plot_sweep", "write_sweep_report"]

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


@dataclass
class SweepReport:
    """What :func:`write_sweep_report` made: a rich table of the trials (None without rich)
    and the analysis of the finished trials (None without any)."""

    table: Table | None
    analysis: SweepAnalysis | None


def write_sweep_report(
    spec: SweepSpec,
    results: Sequence[Mapping[str, Any]],
    failures: Mapping[str, str],
    out_dir: Path,
) -> SweepReport:
    """Write ``trials.csv``, ``rounds.csv``, ``report.png`` and the analysis.

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
    return SweepReport(_table(spec, keys, trial_rows, len(results)), analysis)


def _table(
    spec: SweepSpec, keys: list[str], trial_rows: list[dict[str, Any]], done: int
) -> Table | None:
    try:
        from rich.table import Table
    except ImportError:  # pragma: no cover - rich comes with the cli extra
        return None
    table = Table(title=f"sweep {spec.name}: {done} of {len(spec.trials)} trials done")
    for column in ("trial", *keys, "density", "accuracy", "test_loss", "status"):
        table.add_column(column.rsplit(".", 1)[-1], justify="right")
    for row in trial_rows:
        row = {**row, "status": row["status"][:40]}
        table.add_row(
            *(
                f"{row[column]:.4g}"
                if isinstance(row.get(column), float)
                else str(row.get(column, ""))
                for column in ("trial", *keys, "density", "accuracy", "test_loss", "status")
            )
        )
    return table
