"""Experiments: jobs that build, train, prune and report on models.

:func:`run_experiment` runs one experiment from a config (``pypaddle run``) with the engine
of :mod:`pypaddle.experiments.engine`; a sweep runs many (``pypaddle sweep``), and
:func:`run_demo` runs the built-in config ``demo`` (``pypaddle demo``). Components (data
sets, models, sparsification methods) are looked up in the registries of
:mod:`pypaddle.experiments.registry`. Nothing heavy is imported here beyond pypaddle
itself: rich, matplotlib, scikit-learn and Ray are imported by the functions that need them.
"""

from pypaddle.experiments.config import ExperimentConfig, load_config, parse_config
from pypaddle.experiments.demo import run_demo
from pypaddle.experiments.registry import DATA, METHODS, MODELS
from pypaddle.experiments.report import plot_accuracy_vs_density, results_table, write_results
from pypaddle.experiments.run import prepare, run_experiment

__all__ = [
    "DATA",
    "METHODS",
    "MODELS",
    "ExperimentConfig",
    "load_config",
    "parse_config",
    "plot_accuracy_vs_density",
    "prepare",
    "results_table",
    "run_demo",
    "run_experiment",
    "write_results",
]
