"""What the structure explains: a sweep's accuracy against the graph measures of its trials.

Every experiment records the measures of its prior and its final structure
(:func:`pypaddle.graph.graph_measures`, in ``result.json``). :func:`analyse_trials` relates
them to the held-out accuracy (the test loss when the task is not classification) over the
finished trials of a sweep:

- Spearman rank correlations of accuracy with each measure, with percentile bootstrap
  confidence intervals (trials resampled with replacement, seeded);
- a cross-validated regression of accuracy on the standardised measures, as Stier &
  Granitzer (2019) predict accuracy from structural properties: a ridge regression and a
  random forest (scikit-learn), folds that keep the seeds of one setting together (so
  the score is for settings the model has not seen), the out-of-fold R², and for the
  better model the measures that carry it: how much the out-of-fold R² drops when one
  measure is shuffled within the held-out fold (permutation importance);
- plots: accuracy against each measure (a point per setting, error bars over its seeds)
  and a clustering x path-length heatmap of accuracy in the style of You et al. (2020).

:func:`write_analysis` writes all of it into a folder (``analysis.json``,
``correlations.csv``, ``analysis.txt``, PNGs), replacing the folder as a whole. ``pypaddle
sweep`` writes ``SWEEP/analysis/`` after its trials; :func:`analyse_sweep` (``pypaddle
analyse SWEEP``) runs it again on the finished trials of a sweep folder, without training,
and never replaces an analysis already written unless asked (``force``).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pypaddle._core.checks import check_count
from pypaddle._core.files import atomic_write_text
from pypaddle._core.seeds import check_seed
from pypaddle.errors import ConfigError
from pypaddle.experiments.records import STRUCTURES, measures_record

__all__ = [
    "ANALYSIS_FOLDER",
    "FinishedTrial",
    "SweepAnalysis",
    "analyse_sweep",
    "analyse_trials",
    "finished_trials",
    "write_analysis",
]

ANALYSIS_FOLDER = "analysis"
"""The folder of a sweep that its analysis is written into."""
# Fewer trials than this with a value: no correlation, no regression.
MIN_TRIALS = 4
_FOLDS = 5
_PERMUTATIONS = 10


@dataclass(frozen=True)
class FinishedTrial:
    """A finished trial: its id, the values its sweep set, and its ``result.json``."""

    id: str
    overrides: dict[str, Any]
    result: dict[str, Any]

    @property
    def setting(self) -> str:
        """The values set other than ``seed``: trials of one setting differ only in seed."""
        shown = {k: v for k, v in self.overrides.items() if k != "seed"}
        return ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in shown.items()) or "all"


@dataclass
class SweepAnalysis:
    """The analysis of a sweep's finished trials (see :func:`analyse_trials`)."""

    target: str
    structure: str
    trials: int
    settings: int
    measures: list[str]
    correlations: list[dict[str, Any]]
    regression: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    # Per trial: setting, target, and the measures (for the plots).
    table: dict[str, list[Any]] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The analysis as JSON-ready data (NaN as None), without the per-trial table."""
        data = {
            "target": self.target,
            "structure": self.structure,
            "trials": self.trials,
            "settings": self.settings,
            "measures": self.measures,
            "correlations": self.correlations,
            "regression": self.regression,
            "notes": self.notes,
        }
        return json.loads(json.dumps(_nan_to_none(data)))

    def text(self) -> str:
        """A plain-text summary: the correlations, the regression, what was skipped."""
        lines = [
            f"{self.target} against the measures of the {self.structure} structure: "
            f"{self.trials} finished trials in {self.settings} settings"
        ]
        if self.correlations:
            lines.append(
                "Spearman rank correlation, 95% bootstrap interval "
                "(strongest first; * interval excludes 0):"
            )
            ranked = sorted(self.correlations, key=lambda c: -abs(_or(c["rho"], 0.0)))
            for entry in ranked:
                excludes = entry["low"] > 0 or entry["high"] < 0
                lines.append(
                    f"  {entry['measure']:<18} rho {_signed(entry['rho'])} "
                    f"[{_signed(entry['low'])}, {_signed(entry['high'])}]"
                    f"{' *' if excludes else ''}  (n={entry['trials']})"
                )
        regression = self.regression
        if regression.get("r2"):
            scores = ", ".join(f"{name} R² {_signed(r2)}" for name, r2 in regression["r2"].items())
            lines.append(
                f"cross-validated regression ({regression['folds']} folds, {regression['split']}):"
                f" {scores}"
            )
            carried = [
                f"{entry['measure']} {entry['r2_drop']:.2f}"
                for entry in regression["importance"]
                if entry["r2_drop"] >= 0.01
            ][:6]
            lines.append(
                f"  measures that carry it ({regression['best']}, drop in R² when shuffled): "
                + (", ".join(carried) or "none carries more than 0.01")
            )
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


def _or(value: float | None, default: float) -> float:
    return default if value is None or math.isnan(value) else value


def _signed(value: float | None) -> str:
    return "nan" if value is None or math.isnan(value) else f"{value:+.2f}"


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _nan_to_none(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_nan_to_none(item) for item in value]
    if isinstance(value, np.generic):
        return _nan_to_none(value.item())
    return value


def _target(trials: Sequence[FinishedTrial]) -> str:
    finals = [trial.result.get("final", {}) for trial in trials]
    return "accuracy" if all(final.get("accuracy") is not None for final in finals) else "test_loss"


def _table(
    trials: Sequence[FinishedTrial], structure: str, target: str
) -> tuple[dict[str, np.ndarray], np.ndarray, list[str]]:
    """Measures (name -> values over trials, NaN where missing), the target, the settings."""
    from pypaddle.graph.measures import MEASURES

    columns = {name: np.full(len(trials), np.nan) for name in MEASURES}
    for row, trial in enumerate(trials):
        values = (trial.result.get("measures") or {}).get(structure) or {}
        for name in MEASURES:
            value = values.get(name)
            if value is not None:
                columns[name][row] = float(value)
    y = np.array([_or(trial.result["final"].get(target), math.nan) for trial in trials])
    return columns, y, [trial.setting for trial in trials]


def _usable(columns: dict[str, np.ndarray], notes: list[str]) -> list[str]:
    """The measures that vary, have at least MIN_TRIALS values, and are no copy of another."""
    kept: list[str] = []
    for name, values in columns.items():
        finite = np.isfinite(values)
        if finite.sum() < MIN_TRIALS or np.ptp(values[finite]) == 0:
            continue
        copy = next(
            (other for other in kept if np.array_equal(values, columns[other], equal_nan=True)),
            None,
        )
        if copy is not None:
            notes.append(f"{name} equals {copy} on every trial: analysed once, as {copy}")
            continue
        kept.append(name)
    return kept


def _rank_rows(values: np.ndarray) -> np.ndarray:
    """Ranks (1 ..) along the last axis, ties given their average rank (as Spearman's rho
    needs), without a Python loop over rows."""
    order = np.argsort(values, axis=-1, kind="stable")
    ordered = np.take_along_axis(values, order, axis=-1)
    position = np.broadcast_to(np.arange(values.shape[-1]), values.shape)
    starts = np.ones(values.shape, dtype=bool)
    starts[..., 1:] = ordered[..., 1:] != ordered[..., :-1]
    ends = np.ones(values.shape, dtype=bool)
    ends[..., :-1] = starts[..., 1:]
    first = np.maximum.accumulate(np.where(starts, position, 0), axis=-1)
    last_reversed = np.where(ends, position, values.shape[-1] - 1)[..., ::-1]
    last = np.minimum.accumulate(last_reversed, axis=-1)[..., ::-1]
    ranks = np.empty(values.shape, dtype=np.float64)
    np.put_along_axis(ranks, order, (first + last) / 2 + 1, axis=-1)
    return ranks


def _pearson_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    x = x - x.mean(axis=-1, keepdims=True)
    y = y - y.mean(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (x * y).sum(axis=-1) / np.sqrt((x * x).sum(axis=-1) * (y * y).sum(axis=-1))


def spearman_interval(
    x: np.ndarray, y: np.ndarray, rng: np.random.Generator, *, resamples: int = 2000
) -> tuple[float, float, float]:
    """Spearman's rho of ``x`` and ``y`` and its 95% percentile bootstrap interval.

    Pairs are resampled with replacement; resamples where one side is constant (no rank
    correlation defined) are left out. NaN for fewer than :data:`MIN_TRIALS` pairs.

    Examples
    --------
    >>> x = np.arange(20.0)
    >>> rho, low, high = spearman_interval(x, x**3, np.random.default_rng(0))
    >>> rho, low, high
    (1.0, 1.0, 1.0)
    """
    if x.size < MIN_TRIALS:
        return math.nan, math.nan, math.nan
    rho = float(_pearson_rows(_rank_rows(x), _rank_rows(y)))
    index = rng.integers(x.size, size=(resamples, x.size))
    sampled = _pearson_rows(_rank_rows(x[index]), _rank_rows(y[index]))
    sampled = sampled[np.isfinite(sampled)]
    if not sampled.size:
        return rho, math.nan, math.nan
    low, high = np.percentile(sampled, [2.5, 97.5])
    return rho, float(low), float(high)


def _folds(settings: list[str], rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """A fold per trial: whole settings to one fold (shuffled, seeded), or trials if too few."""
    labels, groups = np.unique(settings, return_inverse=True)
    split = "by setting"
    if labels.size < 3:
        groups, split = np.arange(len(settings)), "by trial"
    count = int(groups.max()) + 1
    folds = min(_FOLDS, count)
    fold_of_group = rng.permutation(count) % folds
    return fold_of_group[groups], split


def _regression(
    x: np.ndarray, y: np.ndarray, names: list[str], settings: list[str], seed: int
) -> dict[str, Any]:
    """Out-of-fold R² of ridge and random forest; permutation importance for the better."""
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    fold, split = _folds(settings, rng)
    models = {
        "ridge": lambda: make_pipeline(StandardScaler(), Ridge(alpha=1.0)),
        "random_forest": lambda: RandomForestRegressor(
            n_estimators=50, min_samples_leaf=2, random_state=seed, n_jobs=1
        ),
    }
    total = float(((y - y.mean()) ** 2).sum())
    r2: dict[str, float] = {}
    drops: dict[str, np.ndarray] = {}
    for name, make in models.items():
        predicted = np.empty_like(y)
        lost = np.zeros(len(names))  # extra squared error when a measure is shuffled
        for k in np.unique(fold):
            test, train = fold == k, fold != k
            model = make().fit(x[train], y[train])
            predicted[test] = model.predict(x[test])
            error = ((predicted[test] - y[test]) ** 2).sum()
            for j in range(len(names)):
                shuffled = np.tile(x[test], (_PERMUTATIONS, 1))
                shuffled[:, j] = np.concatenate(
                    [rng.permutation(x[test][:, j]) for _ in range(_PERMUTATIONS)]
                )
                repeated = np.tile(y[test], _PERMUTATIONS)
                shuffled_error = ((model.predict(shuffled) - repeated) ** 2).sum()
                lost[j] += shuffled_error / _PERMUTATIONS - error
        r2[name] = 1 - float(((predicted - y) ** 2).sum()) / total
        drops[name] = lost / total
    best = max(r2, key=lambda name: r2[name])
    coefficients = make_pipeline(StandardScaler(), Ridge(alpha=1.0)).fit(x, y)[-1].coef_
    importance: list[dict[str, Any]] = [
        {
            "measure": measure,
            "r2_drop": float(drops[best][j]),
            "ridge_coefficient": float(coefficients[j]),
        }
        for j, measure in enumerate(names)
    ]
    importance.sort(key=lambda entry: -float(entry["r2_drop"]))
    return {
        "folds": int(fold.max()) + 1,
        "split": split,
        "r2": r2,
        "best": best,
        "importance": importance,
    }


def analyse_trials(
    trials: Sequence[FinishedTrial],
    *,
    structure: str = "prior",
    seed: int = 0,
    resamples: int = 2000,
) -> SweepAnalysis:
    """Relate the accuracy of finished trials to the measures of their structures.

    Parameters
    ----------
    trials : sequence of FinishedTrial
        The finished trials (see :func:`finished_trials`).
    structure : {"prior", "final"}
        Whose measures: the structure each trial was built from (what a sweep chooses; the
        default) or the one it ended with (after pruning).
    seed : int
        Seed of the bootstrap, the folds, the random forest and the permutations.
    resamples : int
        Bootstrap resamples per correlation.

    Returns
    -------
    SweepAnalysis
        ``correlations`` (one entry per measure that varies: ``rho``, ``low``, ``high``,
        ``trials``), ``regression`` (``r2`` per model, ``best``, ``importance``, or empty
        with a note saying why), ``notes`` on what was left out.

    Raises
    ------
    ConfigError
        ``structure``, ``seed`` or ``resamples`` is not allowed.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> trials = [
    ...     FinishedTrial(str(i), {"p": p}, {"final": {"accuracy": 0.5 + p},
    ...                   "measures": {"prior": {"clustering": p + rng.normal(0, 0.01)}}})
    ...     for i, p in enumerate(np.linspace(0, 0.4, 12))]
    >>> analysis = analyse_trials(trials)
    >>> analysis.correlations[0]["measure"], analysis.correlations[0]["rho"] > 0.9
    ('clustering', True)
    """
    if structure not in STRUCTURES:
        raise ConfigError(f"structure = {structure!r} is not allowed; allowed values: prior, final")
    seed = check_seed(seed)
    resamples = check_count(resamples, "resamples", minimum=1)
    target = _target(trials)
    columns, y, settings = _table(trials, structure, target)
    notes: list[str] = []
    measured = np.isfinite(y)
    if (~measured).any():
        notes.append(f"{int((~measured).sum())} trials without a {target}: left out")
    columns = {name: values[measured] for name, values in columns.items()}
    y, settings = y[measured], [s for s, keep in zip(settings, measured) if keep]
    names = _usable(columns, notes)
    if not names:
        notes.append(
            f"no measure of the {structure} structures varies over at least {MIN_TRIALS} "
            "trials: sweep over structures (generator, its parameters) to relate them to "
            f"{target}"
        )
    rng = np.random.default_rng(seed)
    correlations = []
    for name in names:
        finite = np.isfinite(columns[name])
        rho, low, high = spearman_interval(
            columns[name][finite], y[finite], rng, resamples=resamples
        )
        correlations.append(
            {"measure": name, "rho": rho, "low": low, "high": high, "trials": int(finite.sum())}
        )
    complete = [name for name in names if np.isfinite(columns[name]).all()]
    if len(complete) < len(names):
        left = sorted(set(names) - set(complete))
        notes.append(f"not in the regression (undefined on some trials): {', '.join(left)}")
    regression: dict[str, Any] = {}
    if not complete:
        pass
    elif y.size < MIN_TRIALS or np.ptp(y) == 0:
        notes.append(f"no regression: needs at least {MIN_TRIALS} trials whose {target} differs")
    else:
        features = np.column_stack([columns[name] for name in complete])
        regression = _regression(features, y, complete, settings, seed)
    return SweepAnalysis(
        target=target,
        structure=structure,
        trials=int(y.size),
        settings=len(set(settings)),
        measures=names,
        correlations=correlations,
        regression=regression,
        notes=notes,
        table={"setting": settings, target: y.tolist()}
        | {name: columns[name].tolist() for name in columns},
    )


# What write_analysis writes: the only files a folder it replaces may hold.
_ANALYSIS_FILES = frozenset(
    {
        "analysis.json",
        "correlations.csv",
        "analysis.txt",
        "accuracy_vs_measures.png",
        "clustering_path_length.png",
    }
)


def _check_replaceable(folder: Path) -> None:
    """Refuse to replace ``folder`` unless it is new, empty or holds an analysis only."""
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"analysis folder {str(folder)!r} is a file; give a folder with --out")
    foreign = (
        sorted(p.name for p in folder.iterdir() if p.name not in _ANALYSIS_FILES)
        if (folder.is_dir())
        else []
    )
    if foreign:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise ConfigError(
            f"{str(folder)!r} holds files that are not an analysis ({shown}); an analysis "
            "replaces only a folder of its own files: give a new or empty folder with --out "
            "(nothing was written)"
        )


@contextlib.contextmanager
def _replacing_folder(folder: Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``folder``; on success it becomes ``folder`` whole
    (an old ``folder`` is put back if that last step fails)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    try:
        yield temporary
        old = None
        if folder.exists():
            old = Path(
                tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".old", dir=folder.parent)
            )
            os.replace(folder, old / folder.name)
        try:
            os.replace(temporary, folder)
        except BaseException:
            if old is not None:
                os.replace(old / folder.name, folder)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def write_analysis(analysis: SweepAnalysis, folder: str | Path) -> list[Path]:
    """Write ``analysis`` into ``folder``, replacing it whole; return the files written.

    ``analysis.json`` (everything), ``correlations.csv`` (a row per measure),
    ``analysis.txt`` (:meth:`SweepAnalysis.text`), ``accuracy_vs_measures.png`` and, when
    clustering and path length both vary, ``clustering_path_length.png``. The files are
    written into a temporary folder that then takes ``folder``'s place, so a reader sees
    the old analysis or the new one, never a mix.
    """
    from pypaddle.experiments import plots

    folder = Path(folder)
    _check_replaceable(folder)
    names: list[str] = []
    with _replacing_folder(folder) as temporary:
        atomic_write_text(
            temporary / "analysis.json", json.dumps(analysis.to_dict(), indent=2) + "\n"
        )
        lines = ["measure,rho,ci_low,ci_high,trials"]
        for entry in analysis.correlations:
            cells = [entry["rho"], entry["low"], entry["high"]]
            lines.append(
                f"{entry['measure']},{','.join(f'{c:.6g}' for c in cells)},{entry['trials']}"
            )
        atomic_write_text(temporary / "correlations.csv", "\n".join(lines) + "\n")
        atomic_write_text(temporary / "analysis.txt", analysis.text() + "\n")
        names = ["analysis.json", "correlations.csv", "analysis.txt"]
        if analysis.measures:
            notes = {
                entry["measure"]: f"rho {_signed(entry['rho'])} "
                f"[{_signed(entry['low'])}, {_signed(entry['high'])}]"
                for entry in analysis.correlations
            }
            plots.plot_target_against_measures(
                analysis.table,
                analysis.measures,
                analysis.target,
                temporary / "accuracy_vs_measures.png",
                notes=notes,
            )
            names.append("accuracy_vs_measures.png")
        if {"clustering", "path_length"} <= set(analysis.measures):
            plots.plot_clustering_path_length(
                analysis.table, analysis.target, temporary / "clustering_path_length.png"
            )
            names.append("clustering_path_length.png")
    return [folder / name for name in names]


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(
            f"{str(path)!r} cannot be read as JSON ({error}); remove that trial's folder and "
            "run the sweep again to redo it"
        ) from None


def _fill_measures(result: dict[str, Any], trial_dir: Path) -> dict[str, Any]:
    """A result of an older pypaddle has no measures: take them from its saved structures."""
    if result.get("measures"):
        return result
    from pypaddle.graph import read

    structures = trial_dir / "structures"
    rounds = sorted(
        structures.glob("round-*.graphml"), key=lambda p: int(p.stem.split("-")[1] or 0)
    )
    prior = structures / "prior.graphml"
    return {
        **result,
        "measures": measures_record(
            read(prior) if prior.is_file() else None, read(rounds[-1]) if rounds else None
        ),
    }


def finished_trials(results_dir: str | Path) -> list[FinishedTrial]:
    """The finished trials of the sweep folder ``results_dir``, in the sweep's order.

    A sweep folder holds ``sweep.toml`` (its name and trials) and ``trials/ID/result.json``
    for each finished trial. Results written before experiments recorded graph measures
    get them from the trial's saved structures (``structures/*.graphml``), if any.

    Raises
    ------
    ConfigError
        ``results_dir`` is missing, not a sweep folder, or has no finished trial; each
        message names the folder and what to do.
    """
    from pypaddle.experiments.config import read_toml
    from pypaddle.experiments.trials import SWEEP_NAME

    folder = Path(results_dir)
    if not folder.is_dir():
        state = "is a file" if folder.exists() else "does not exist"
        raise ConfigError(
            f"results folder {str(folder)!r} {state}; give the folder a sweep wrote "
            "(pypaddle sweep FILE --out FOLDER)"
        )
    marker = folder / SWEEP_NAME
    if not marker.is_file():
        kind = (
            "an experiment folder (result.json), not a sweep's"
            if (folder / "result.json").is_file()
            else "no pypaddle sweep folder"
        )
        raise ConfigError(
            f"{str(folder)!r} is {kind}: it has no {SWEEP_NAME}; give the folder a sweep "
            "wrote (pypaddle sweep FILE --out FOLDER)"
        )
    listed = read_toml(marker).get("trials")
    if not isinstance(listed, dict):
        raise ConfigError(
            f"{str(marker)!r} lists no trials; give the folder a sweep wrote, or run the sweep "
            "again into a new folder"
        )
    trials = []
    for trial_id, overrides in listed.items():
        path = folder / "trials" / trial_id / "result.json"
        if path.is_file():
            result = _fill_measures(_read_json(path), path.parent)
            trials.append(FinishedTrial(trial_id, json.loads(overrides), result))
    if not trials:
        raise ConfigError(
            f"sweep folder {str(folder)!r} has no finished trial (none of its {len(listed)} "
            f"trials has a trials/ID/result.json); run the sweep first: pypaddle sweep "
            f"FILE --out {folder}"
        )
    return trials


def analyse_sweep(
    results_dir: str | Path,
    *,
    out: str | Path | None = None,
    force: bool = False,
    structure: str = "prior",
    seed: int = 0,
    resamples: int = 2000,
) -> SweepAnalysis:
    """Analyse the finished trials of a sweep folder again, without training anything.

    Writes into ``out`` (default ``RESULTS_DIR/analysis``) with :func:`write_analysis`.
    An ``out`` that already holds files is refused unless ``force`` (then it is replaced
    whole, once the new analysis is complete). The sweep folder is locked while it is
    read, so a sweep still writing into it is refused (run again when it is done).

    Raises
    ------
    ConfigError
        Not a sweep folder, no finished trial, ``out`` already written (without
        ``force``) or not a folder, or a bad option; nothing is written then.
    """
    from pypaddle.experiments._files import lock_folder

    if structure not in STRUCTURES:
        raise ConfigError(f"structure = {structure!r} is not allowed; allowed values: prior, final")
    seed = check_seed(seed)
    resamples = check_count(resamples, "resamples", minimum=1)
    folder = Path(results_dir)
    finished_trials(folder)  # every refusal before the lock (which makes a missing folder)
    target = Path(out) if out is not None else folder / ANALYSIS_FOLDER
    _check_replaceable(target)
    if target.is_dir() and any(target.iterdir()) and not force:
        raise ConfigError(
            f"{str(target)!r} already holds an analysis; pass --force to replace it or "
            "--out to write the new one elsewhere (nothing was written)"
        )
    with lock_folder(folder, what="sweep"):
        analysis = analyse_trials(
            finished_trials(folder), structure=structure, seed=seed, resamples=resamples
        )
        write_analysis(analysis, target)
    return analysis
