"""Experiments: jobs that build, train, prune and report on models.

Nothing heavy is imported here beyond pypaddle itself: rich, matplotlib and scikit-learn
are imported by the functions that need them.
"""

from pypaddle.experiments.demo import run_demo
from pypaddle.experiments.report import plot_accuracy_vs_density, results_table, write_results

__all__ = ["plot_accuracy_vs_density", "results_table", "run_demo", "write_results"]
