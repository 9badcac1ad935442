"""pypaddle: sparse neural networks as graphs.

Build masked PyTorch models from networkx structures, sparsify them at every order, and
read their structure back as graphs for network-science analysis.
"""

__version__ = "0.4.0"
"""The version of this pypaddle, as ``MAJOR.MINOR.PATCH``."""

from pypaddle import data, deploy, errors, experiments, extract, graph, kinds, prune, sparse, util  # noqa: E402

__all__ = [
    "__version__",
    "data",
    "deploy",
    "errors",
    "experiments",
    "extract",
    "graph",
    "kinds",
    "prune",
    "sparse",
    "util",
]
