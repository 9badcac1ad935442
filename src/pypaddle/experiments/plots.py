"""PNG plots of an experiment: learning curves, accuracy vs density, the structure, degrees.

The structure is drawn by :func:`pypaddle.graph.draw`.

All figures use matplotlib's object API on the Agg canvas (no global backend change, no
display needed); matplotlib is imported only here.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from pypaddle._core.files import atomic_path
from pypaddle.errors import ConfigError
from pypaddle.experiments.report import plot_accuracy_vs_density
from pypaddle.graph import draw

__all__ = [
    "check_matplotlib",
    "experiment_plots",
    "plot_clustering_path_length",
    "plot_degree_distributions",
    "plot_learning_curves",
    "plot_target_against_measures",
]

Records = Sequence[Mapping[str, Any]]


def check_matplotlib() -> None:
    """Raise ConfigError (saying what to install) if matplotlib is missing."""
    if importlib.util.find_spec("matplotlib") is None:
        raise ConfigError(
            "the plots need matplotlib, which is not installed; install it with: "
            "pip install 'pypaddle[plot]' (or set evaluation.plots = false)"
        )


def _figure(width: float = 7.5, height: float = 4.8, columns: int = 1) -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.subplots(1, columns, squeeze=False)[0]


def _save(figure: Any, path: Path) -> Path:
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png")
    return path


def plot_learning_curves(epochs: Records, path: str | Path, *, title: str = "") -> Path:
    """Train and test loss (and accuracy, if any) per epoch; rounds start at the dotted lines."""
    path = Path(path)
    with_accuracy = any(record.get("accuracy") is not None for record in epochs)
    figure, axes = _figure(columns=2 if with_accuracy else 1)
    x = [record["epoch_total"] for record in epochs]
    axes[0].plot(x, [record["train_loss"] for record in epochs], label="train loss")
    tested = [(r["epoch_total"], r["test_loss"]) for r in epochs if r["test_loss"] is not None]
    if tested:
        axes[0].plot(*zip(*tested), marker=".", label="test loss")
    axes[0].set_ylabel("loss")
    if with_accuracy:
        points = [
            (r["epoch_total"], 100 * r["accuracy"]) for r in epochs if r["accuracy"] is not None
        ]
        axes[1].plot(*zip(*points), marker=".", color="tab:green")
        axes[1].set_ylabel("held-out accuracy (%)")
    starts = [r["epoch_total"] - 0.5 for r in epochs if r["epoch"] == 1 and r["round"] > 0]
    for ax in axes:
        for start in starts:
            ax.axvline(start, color="grey", linestyle=":", linewidth=1)
        ax.set_xlabel("epoch (dotted: a pruning round starts)")
        ax.grid(True, alpha=0.3)
    axes[0].legend()
    figure.suptitle(title or "learning curves")
    return _save(figure, path)


def density_axis(axes: Any, densities: Sequence[float]) -> None:
    """A log-scale density axis in %, densest on the left, ticked at the given densities."""
    from matplotlib.ticker import NullLocator

    axes.set_xscale("log")
    ticks: list[float] = []
    for density in sorted(densities, reverse=True):
        if not ticks or ticks[-1] > 1.1 * density:  # one tick per visibly separate density
            ticks.append(float(f"{density:.3g}"))
    axes.set_xticks(ticks, [f"{tick:g}%" for tick in ticks])
    axes.xaxis.set_minor_locator(NullLocator())
    axes.invert_xaxis()
    axes.set_xlabel("density: weights kept, % (log scale)")


def _plot_loss_vs_density(rounds: Records, path: Path, *, title: str) -> Path:
    figure, (axes,) = _figure()
    densities = [100 * record["density"] for record in rounds]
    axes.plot(densities, [record["test_loss"] for record in rounds], marker="o")
    density_axis(axes, densities)
    axes.set_ylabel("test loss")
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    return _save(figure, path)


def plot_degree_distributions(
    graphs: Mapping[str, nx.DiGraph], path: str | Path, *, title: str = ""
) -> Path:
    """In- and out-degree histograms of each named graph (e.g. the prior and the pruned one)."""
    path = Path(path)
    figure, axes = _figure(9.0, 4.0, columns=2)
    for name, graph in graphs.items():
        for ax, degrees in zip(axes, (graph.in_degree(), graph.out_degree())):
            values = np.array([degree for _, degree in degrees], dtype=np.int64)
            counts = np.bincount(values) if values.size else np.zeros(1)
            ax.step(np.arange(counts.size), counts, where="mid", label=name)
    for ax, which in zip(axes, ("in-degree", "out-degree")):
        ax.set_xlabel(which)
        ax.set_ylabel("vertices")
        ax.grid(True, alpha=0.3)
        ax.legend()
    figure.suptitle(title or "degree distributions")
    return _save(figure, path)


def _draw_surviving(structure: nx.DiGraph, path: Path) -> Path:
    """Draw the structure without its isolated vertices (neurons pruning cut off)."""
    isolated = [vertex for vertex, degree in structure.degree() if degree == 0]
    kept = structure.subgraph(v for v in structure if v not in set(isolated)).copy()
    title = (
        f"{kept.number_of_nodes()} connected vertices, {kept.number_of_edges()} edges "
        f"({len(isolated)} isolated vertices not drawn)"
    )
    with atomic_path(path) as temporary:
        draw(kept if kept.number_of_nodes() else structure, temporary, title=title)
    return path


def experiment_plots(
    folder: Path,
    epochs: Records,
    rounds: Records,
    *,
    title: str,
    prior: nx.DiGraph | None,
    final: nx.DiGraph | None,
) -> list[Path]:
    """Write every plot an experiment has data for into ``folder``; return the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    written = [plot_learning_curves(epochs, folder / "learning_curves.png", title=title)]
    if all(record.get("accuracy") is not None for record in rounds):
        with atomic_path(folder / "accuracy_vs_density.png") as temporary:
            plot_accuracy_vs_density(rounds, temporary, title=title)
        written.append(folder / "accuracy_vs_density.png")
    else:
        written.append(_plot_loss_vs_density(rounds, folder / "loss_vs_density.png", title=title))
    if final is not None:
        written.append(_draw_surviving(final, folder / "structure.png"))
        graphs = {"after sparsification": final}
        if prior is not None:
            graphs = {"prior": prior, **graphs}
        written.append(plot_degree_distributions(graphs, folder / "degree_distribution.png"))
    return written


def _by_setting(table: Mapping[str, Sequence[Any]], column: str) -> dict[str, np.ndarray]:
    """The finite values of ``column`` per setting of ``table`` (a column dict with ``setting``)."""
    groups: dict[str, list[float]] = {}
    for setting, value in zip(table["setting"], table[column]):
        groups.setdefault(setting, [])
        if value is not None and np.isfinite(value):
            groups[setting].append(float(value))
    return {setting: np.array(values) for setting, values in groups.items()}


def _target_label(target: str) -> tuple[str, float]:
    return ("held-out accuracy (%)", 100.0) if target == "accuracy" else ("test loss", 1.0)


def plot_target_against_measures(
    table: Mapping[str, Sequence[Any]],
    measures: Sequence[str],
    target: str,
    path: str | Path,
    *,
    notes: Mapping[str, str] | None = None,
) -> Path:
    """Accuracy (or ``target``) against each measure: a point per setting at the means over
    its seeds, error bars one standard deviation over them (both axes); a panel per measure.

    ``table`` maps ``setting``, ``target`` and every measure to one value per trial;
    ``notes`` (measure -> text, e.g. its rank correlation) titles the panels.
    """
    path = Path(path)
    columns = min(4, len(measures))
    rows = -(-len(measures) // columns)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(3.4 * columns, 2.9 * rows), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    grid = figure.subplots(rows, columns, squeeze=False)
    label, scale = _target_label(target)
    targets = _by_setting(table, target)
    for axes, measure in zip(grid.flat, measures):
        values = _by_setting(table, measure)
        shown = [s for s in targets if values[s].size and targets[s].size]
        x = np.array([values[s].mean() for s in shown])
        y = np.array([targets[s].mean() for s in shown]) * scale
        axes.errorbar(
            x,
            y,
            xerr=[values[s].std() for s in shown],
            yerr=np.array([targets[s].std() for s in shown]) * scale,
            fmt="o",
            markersize=4,
            capsize=2,
            alpha=0.8,
        )
        axes.set_xlabel(measure.replace("_", " "))
        if notes and measure in notes:
            axes.set_title(notes[measure], fontsize=9)
        axes.grid(True, alpha=0.3)
    for axes in grid[:, 0]:
        axes.set_ylabel(label)
    for axes in grid.flat[len(measures) :]:
        axes.set_visible(False)
    figure.suptitle(f"{label} against the graph measures: mean per setting, bars: std over seeds")
    return _save(figure, path)


def plot_clustering_path_length(
    table: Mapping[str, Sequence[Any]], target: str, path: str | Path, *, bins: int = 8
) -> Path:
    """A heatmap of mean accuracy (or ``target``) over average clustering x average path
    length, in the style of You et al. (2020): the plane is cut into at most ``bins`` x
    ``bins`` cells, a cell's colour is the mean over the trials in it (blank: none), and
    each setting is a dot at its mean clustering and path length.
    """
    path = Path(path)
    clustering = np.array(table["clustering"], dtype=np.float64)
    length = np.array(table["path_length"], dtype=np.float64)
    values = np.array(table[target], dtype=np.float64)
    keep = np.isfinite(clustering) & np.isfinite(length) & np.isfinite(values)
    clustering, length, values = clustering[keep], length[keep], values[keep]
    label, scale = _target_label(target)
    count = max(1, min(bins, int(np.sqrt(max(values.size, 1)))))
    x_edges = np.linspace(clustering.min(), clustering.max(), count + 1)
    y_edges = np.linspace(length.min(), length.max(), count + 1)
    sums, _, _ = np.histogram2d(clustering, length, [x_edges, y_edges], weights=values)
    counts, _, _ = np.histogram2d(clustering, length, [x_edges, y_edges])
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, sums / counts, np.nan) * scale
    figure, (axes,) = _figure(6.4, 5.0)
    image = axes.pcolormesh(x_edges, y_edges, np.ma.masked_invalid(means.T), cmap="viridis")
    figure.colorbar(image, ax=axes, label=f"mean {label}")
    table_kept: dict[str, Sequence[Any]] = {
        "setting": [s for s, k in zip(table["setting"], keep) if k],
        "clustering": clustering.tolist(),
        "path_length": length.tolist(),
    }
    for setting, xs in _by_setting(table_kept, "clustering").items():
        ys = _by_setting(table_kept, "path_length")[setting]
        axes.plot(xs.mean(), ys.mean(), "o", color="white", markeredgecolor="black", ms=5)
    axes.set_xlabel("average clustering (undirected)")
    axes.set_ylabel("average path length (undirected)")
    axes.set_title(f"{label} over clustering x path length; dots: settings")
    return _save(figure, path)
