"""Turning masks into speed: FLOP counts, compaction, sparse kernels, saving and export.

- :func:`count` — parameters and multiply-accumulates, dense and effective, per layer.
- :func:`compact` — a smaller dense model computing the same function.
- :func:`to_sparse` — masked linear layers to sparse-kernel layers where that is faster.
- :func:`save` / :func:`load` — a compacted model as ``state_dict`` plus its architecture;
  load builds only what is registered (:func:`register_loadable`).
- :func:`export_onnx` — ONNX export (needs the ``onnx`` extra).
"""

from pypaddle.deploy.compact import CompactionWarning, compact
from pypaddle.deploy.count import Counts, LayerCount, count
from pypaddle.deploy.dan import CompactDAN
from pypaddle.deploy.export import export_onnx, load, register_loadable, save
from pypaddle.deploy.sparse_kernels import (
    KernelChoice,
    SparseLinear,
    SparsePlan,
    sparse_plan,
    to_sparse,
)

__all__ = [
    "CompactDAN",
    "CompactionWarning",
    "Counts",
    "KernelChoice",
    "LayerCount",
    "SparseLinear",
    "SparsePlan",
    "compact",
    "count",
    "export_onnx",
    "load",
    "register_loadable",
    "save",
    "sparse_plan",
    "to_sparse",
]
