"""Pictures of structures: layers as columns, skip connections as arcs.

matplotlib is imported only when a picture is drawn; it is used through its object API
on the Agg canvas, so no global backend is touched and no display is needed.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from pypaddle._core.files import atomic_path, check_target
from pypaddle.errors import ConfigError
from pypaddle.graph.layering import edge_index, layer_array, layer_counts

__all__ = ["draw", "png"]

_CONSECUTIVE = "#5f6b7a"
_SKIP = "#e07b00"
_HIDDEN = "#4c78a8"
_SOURCE = "#2ca02c"
_SINK = "#d62728"
_ARC_POINTS = 16
_LAYER_BEND = 0.3  # arc bow per layer spanned in the layer-graph picture
# Layer graphs with more layers or layer pairs than this are drawn as a matrix.
_MAX_DISCS = 12
_MAX_ARCS = 30


def _matplotlib() -> tuple[Any, Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure

    return FigureCanvasAgg, LineCollection, Figure


def _arcs(start: np.ndarray, end: np.ndarray, bend: np.ndarray) -> np.ndarray:
    """Quadratic Bézier curves from ``start`` to ``end`` (rows of x, y), sampled densely.

    The control point sits above the chord's midpoint by ``bend``; returns an array of
    shape (curves, points, 2) for a LineCollection.
    """
    control = (start + end) / 2
    control[:, 1] += bend
    t = np.linspace(0.0, 1.0, _ARC_POINTS)[None, :, None]
    return (
        (1 - t) ** 2 * start[:, None, :]
        + 2 * (1 - t) * t * control[:, None, :]
        + t**2 * end[:, None, :]
    )


def _positions(layers: np.ndarray) -> np.ndarray:
    """Layer as x; within a layer, vertices spread evenly and centred on y = 0."""
    count = layers.size
    widths = np.bincount(layers)
    order = np.argsort(layers, kind="stable")
    rank = np.empty(count, dtype=np.int64)
    rank[order] = np.arange(count) - np.repeat(np.cumsum(widths) - widths, widths)
    height = max(int(widths.max()) - 1, 1)
    y = (rank - (widths[layers] - 1) / 2) / height
    return np.column_stack((layers.astype(float), -y))


def _edges(
    axes: Any,
    line_collection: Any,
    points: np.ndarray,
    sources: np.ndarray,
    targets: np.ndarray,
    distance: np.ndarray,
    widths: np.ndarray,
    bend: float,
) -> None:
    """Consecutive-layer edges as straight lines, skip edges as arcs in their own colour.

    An arc bows ``bend`` per layer it spans (at most 6 layers' worth), to alternating
    sides, so that skips neither hide behind the vertices between their ends nor run off
    the picture.
    """
    skip = distance > 1
    straight = np.stack((points[sources[~skip]], points[targets[~skip]]), axis=1)
    alpha = float(np.clip(12 / np.sqrt(max(straight.shape[0], 1)), 0.08, 0.8))
    axes.add_collection(
        line_collection(straight, colors=_CONSECUTIVE, linewidths=widths[~skip], alpha=alpha)
    )
    if skip.any():
        side = np.where(np.arange(int(skip.sum())) % 2 == 0, 1.0, -1.0)
        offsets = side * bend * np.minimum(distance[skip], 6)
        curves = _arcs(points[sources[skip]], points[targets[skip]], offsets)
        alpha = float(np.clip(8 / np.sqrt(curves.shape[0]), 0.15, 0.9))
        axes.add_collection(
            line_collection(curves, colors=_SKIP, linewidths=widths[skip], alpha=alpha)
        )


def draw(
    graph: nx.DiGraph,
    path: str | os.PathLike[str],
    *,
    max_vertices: int = 500,
    labels: bool | None = None,
    title: str | None = None,
) -> Path:
    """Save a PNG of a structure in a layered layout.

    Layers are columns (sources on the left), consecutive-layer edges grey lines, skip
    connections orange arcs; sources are green triangles, sinks red squares, vertices
    that are both (isolated) green with a red edge. Graphs with more than
    ``max_vertices`` vertices are drawn as their :func:`~pypaddle.graph.layer_graph`
    instead: one disc per layer sized by its width, edges labelled with their connection
    counts; when that has more than 12 layers or 30 layer pairs, as bars of the layer
    widths over the matrix of edge counts between layers.

    Parameters
    ----------
    graph : networkx.DiGraph
        A directed acyclic graph.
    path : str or path-like
        Where to write the picture: PNG unless the suffix names another format matplotlib
        writes (``.svg``, ``.pdf``, ...). Missing folders are made; the file is written
        under a temporary name and renamed into place, so it appears whole or not at all.
    max_vertices : int
        Largest graph drawn vertex by vertex.
    labels : bool or None
        Write the vertex labels; by default only for graphs of at most 40 vertices.
    title : str or None
        The title; by default the graph's size.

    Returns
    -------
    Path
        ``path``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from pypaddle.graph import random_layered
    >>> structure = random_layered([4, 6, 6, 2], density=0.4, skip_density=0.2, seed=0)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     png = draw(structure, pathlib.Path(folder) / "structure.png")
    ...     png.read_bytes()[:4]
    b'\\x89PNG'
    """
    if isinstance(max_vertices, bool) or not isinstance(max_vertices, int) or max_vertices < 1:
        raise ConfigError(f"max_vertices must be an int >= 1, got {max_vertices!r}")
    canvas, _, _ = _matplotlib()
    path = check_target(path)
    kind = path.suffix[1:].lower() or "png"
    if kind not in canvas.get_supported_filetypes():
        raise ConfigError(
            f"cannot draw into {str(path)!r}: matplotlib writes no {kind!r} files; use one of "
            f"{', '.join(sorted(canvas.get_supported_filetypes()))}"
        )
    figure = _picture(graph, max_vertices, labels, title)
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format=kind)
    return path


def png(graph: nx.DiGraph, *, max_vertices: int = 500) -> bytes:
    """The picture :func:`draw` makes, as PNG bytes (what a structure shows in Jupyter).

    Examples
    --------
    >>> from pypaddle.graph import complete_layered
    >>> png(complete_layered([2, 3, 1]))[:4]
    b'\\x89PNG'
    """
    buffer = io.BytesIO()
    _picture(graph, max_vertices, None, None).savefig(buffer, format="png")
    return buffer.getvalue()


def _picture(graph: nx.DiGraph, max_vertices: int, labels: bool | None, title: str | None) -> Any:
    """The figure of ``graph``: vertex by vertex, or its layer graph above ``max_vertices``."""
    canvas, line_collection, figure_class = _matplotlib()
    vertices, layers = layer_array(graph)
    count, size = len(vertices), graph.number_of_edges()
    summary_line = f"{count} vertices, {size} edges, {int(layers.max(initial=-1)) + 1} layers"
    if count > max_vertices:
        figure = _draw_layer_graph(graph, figure_class, line_collection)
        title = title or f"layer graph of a structure with {summary_line}"
    else:
        figure = _draw_vertices(graph, vertices, layers, labels, figure_class, line_collection)
        title = title or summary_line
    figure.axes[0].set_title(title)
    canvas(figure)
    return figure


def _figure(figure_class: Any, columns: int, rows: int) -> tuple[Any, Any]:
    width = float(np.clip(1.6 * columns + 2.5, 6, 20))
    height = float(np.clip(0.08 * rows + 3, 4, 11))
    figure = figure_class(figsize=(width, height), dpi=110, layout="constrained")
    axes = figure.add_subplot()
    for side in ("top", "right", "left"):
        axes.spines[side].set_visible(False)
    axes.set_yticks([])
    return figure, axes


def _draw_vertices(
    graph: nx.DiGraph,
    vertices: list,
    layers: np.ndarray,
    labels: bool | None,
    figure_class: Any,
    line_collection: Any,
) -> Any:
    count = len(vertices)
    widths = np.bincount(layers) if count else np.zeros(1, dtype=np.int64)
    figure, axes = _figure(figure_class, widths.size, int(widths.max()))
    if not count:
        axes.text(0.5, 0.5, "empty graph", ha="center", va="center", transform=axes.transAxes)
        return figure
    points = _positions(layers)
    sources, targets = edge_index(graph, dict(zip(vertices, range(count))))
    distance = layers[targets] - layers[sources]
    line_width = float(np.clip(40 / np.sqrt(max(sources.size, 1)), 0.3, 1.5))
    _edges(
        axes,
        line_collection,
        points,
        sources,
        targets,
        distance,
        np.full(sources.size, line_width),
        0.09,
    )
    in_degree = np.bincount(targets, minlength=count)
    out_degree = np.bincount(sources, minlength=count)
    is_source, is_sink = in_degree == 0, out_degree == 0
    # Marker area in points², so that the widest layer's markers just do not touch.
    spacing = figure.get_figheight() * 72 * 0.8 / max(int(widths.max()), 1)
    marker_size = float(np.clip((0.75 * spacing) ** 2, 6, 110))
    kinds = [
        (~is_source & ~is_sink, "o", _HIDDEN, _HIDDEN, "hidden"),
        (is_source & ~is_sink, ">", _SOURCE, _SOURCE, "source"),
        (is_sink & ~is_source, "s", _SINK, _SINK, "sink"),
        (is_source & is_sink, "D", _SOURCE, _SINK, "isolated (source and sink)"),
    ]
    for chosen, marker, face, edge, name in kinds:
        if chosen.any():
            axes.scatter(
                points[chosen, 0],
                points[chosen, 1],
                s=marker_size,
                marker=marker,
                c=face,
                edgecolors=edge,
                linewidths=1.2,
                zorder=3,
                label=f"{name}: {int(chosen.sum())}",
            )
    if labels or (labels is None and count <= 40):
        for (x, y), vertex in zip(points.tolist(), vertices):
            axes.annotate(
                str(vertex),
                (x, y),
                xytext=(0, 7),
                textcoords="offset points",
                ha="center",
                fontsize=7,
                zorder=4,
            )
    if (distance > 1).any():
        axes.plot([], [], color=_SKIP, label=f"skip edges: {int((distance > 1).sum())}")
    # At most ~20 tick labels, so that long chains of layers stay readable.
    step = -(-widths.size // 20)
    ticks = range(0, widths.size, step)
    axes.set_xticks(ticks)
    axes.set_xticklabels(
        [f"layer {layer}\nn={widths[layer]}" if step == 1 else str(layer) for layer in ticks]
    )
    if step > 1:
        axes.set_xlabel("layer")
    axes.autoscale_view()
    axes.margins(y=0.06)
    axes.set_xlim(-0.5, widths.size - 0.5)
    axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    return figure


def _layer_graph(graph: nx.DiGraph) -> nx.DiGraph:
    """:func:`pypaddle.graph.layer_graph` as a plain DiGraph (sizes and edge weights)."""
    widths, low, high, weights = layer_counts(graph)
    layers = nx.DiGraph()
    layers.add_nodes_from((layer, {"size": int(w)}) for layer, w in enumerate(widths.tolist()))
    layers.add_weighted_edges_from(zip(low.tolist(), high.tolist(), weights.tolist()))
    return layers


def _draw_layer_graph(graph: nx.DiGraph, figure_class: Any, line_collection: Any) -> Any:
    layers = _layer_graph(graph)
    count = layers.number_of_nodes()
    if count > _MAX_DISCS or layers.number_of_edges() > _MAX_ARCS:
        return _draw_layer_matrix(layers, figure_class)
    figure, axes = _figure(figure_class, count, 12)
    sizes = np.array([size for _, size in layers.nodes(data="size")], dtype=float)
    points = np.column_stack((np.arange(count, dtype=float), np.zeros(count)))
    edges = list(layers.edges(data="weight"))
    sources = np.array([u for u, _, _ in edges], dtype=np.int64)
    targets = np.array([v for _, v, _ in edges], dtype=np.int64)
    weights = np.array([w for _, _, w in edges], dtype=float)
    distance = targets - sources
    line_widths = 0.8 + 5 * np.log1p(weights) / np.log1p(max(weights.max(initial=1), 1))
    _edges(axes, line_collection, points, sources, targets, distance, line_widths, _LAYER_BEND)
    # Label each edge at its middle: an arc's midpoint is half its bend off the chord.
    skip = distance > 1
    side = np.where((np.cumsum(skip) - 1) % 2 == 0, 1.0, -1.0)
    label_y = np.where(skip, side * _LAYER_BEND * np.minimum(distance, 6) / 2, 0.0)
    for source, target, weight, gap, y in zip(sources, targets, weights, distance, label_y):
        axes.annotate(
            f"{int(weight):,}",
            ((source + target) / 2, y),
            ha="center",
            va="center",
            fontsize=8,
            color=_SKIP if gap > 1 else _CONSECUTIVE,
            bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none"},
            zorder=5,
        )
    scaled = 200 + 2200 * np.sqrt(sizes / max(sizes.max(initial=1), 1))
    axes.scatter(points[:, 0], points[:, 1], s=scaled, c=_HIDDEN, zorder=3, alpha=0.9)
    for layer, size in enumerate(sizes.astype(int)):
        axes.annotate(
            f"{size:,}",
            (layer, 0),
            ha="center",
            va="center",
            color="white",
            fontsize=9,
            fontweight="bold",
            zorder=4,
        )
    axes.set_xticks(range(count))
    axes.set_xticklabels([f"layer {layer}" for layer in range(count)])
    axes.set_xlabel("discs: vertices per layer; numbers on lines: edges between two layers")
    axes.set_xlim(-0.6, count - 0.4)
    reach = _LAYER_BEND * min(int(distance.max(initial=1)), 6) / 2
    axes.set_ylim(-reach - 0.2, reach + 0.2)
    return figure


def _draw_layer_matrix(layers: nx.DiGraph, figure_class: Any) -> Any:
    """Layer widths as bars over the matrix of edge counts between layers (log colours)."""
    from matplotlib import colormaps
    from matplotlib.colors import LogNorm

    count = layers.number_of_nodes()
    counts = np.zeros((count, count))
    edges = np.array(list(layers.edges(data="weight")), dtype=np.int64).reshape(-1, 3)
    counts[edges[:, 0], edges[:, 1]] = edges[:, 2]
    sizes = [size for _, size in layers.nodes(data="size")]
    side = float(np.clip(0.12 * count + 5, 6, 12))
    figure = figure_class(figsize=(side + 1.5, side + 1.5), dpi=110, layout="constrained")
    grid = figure.add_gridspec(2, 1, height_ratios=(1, 4))
    top = figure.add_subplot(grid[0])
    bottom = figure.add_subplot(grid[1], sharex=top)
    top.bar(range(count), sizes, width=0.8, color=_HIDDEN)
    top.set_ylabel("vertices in the layer")
    top.tick_params(labelbottom=False)
    cmap = colormaps["viridis"].with_extremes(bad="white")
    image = bottom.imshow(
        np.ma.masked_equal(counts, 0),
        cmap=cmap,
        norm=LogNorm(vmin=1, vmax=max(counts.max(), 2)),
        aspect="auto",
        interpolation="nearest",
    )
    if count <= 15:
        for source, target, weight in edges.tolist():
            bottom.annotate(
                f"{weight:,}",
                (target, source),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if weight < np.sqrt(counts.max()) else "black",
            )
    # The first diagonal above the main one holds consecutive layers; the cells to its
    # right are skip connections.
    diagonal = np.arange(count)
    bottom.plot(diagonal + 0.5, diagonal - 0.5, color=_SKIP, linewidth=1.8, drawstyle="steps-post")
    bottom.set_xlabel("target layer (cells right of the orange steps: skip connections)")
    bottom.set_ylabel("source layer")
    figure.colorbar(image, ax=[top, bottom], label="edges from source to target layer", shrink=0.8)
    return figure
