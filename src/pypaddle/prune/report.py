"""How dense every masked weight of a model is: a table to print and the data behind it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from torch import nn

from pypaddle._core.reports import Report, TableCells
from pypaddle.prune._targets import collect_targets

__all__ = ["DensityReport", "LayerDensity", "report"]


@dataclass(frozen=True)
class LayerDensity:
    """The active and total weights of one masked weight."""

    name: str
    shape: tuple[int, ...]
    active: int
    total: int

    @property
    def density(self) -> float:
        return self.active / self.total if self.total else 0.0


@dataclass(frozen=True)
class DensityReport(Report):
    """Density per masked weight and overall: :meth:`to_dict` gives the data, ``str()`` /
    :meth:`to_table` a text table and ``_repr_html_`` the same table in HTML (the interface
    every pypaddle report shares)."""

    layers: tuple[LayerDensity, ...]

    @property
    def active(self) -> int:
        return sum(layer.active for layer in self.layers)

    @property
    def total(self) -> int:
        return sum(layer.total for layer in self.layers)

    @property
    def density(self) -> float:
        return self.active / self.total if self.total else 0.0

    @property
    def sparsity(self) -> float:
        return 1.0 - self.density

    def to_dict(self) -> dict[str, Any]:
        """Plain data: ``{"layers": [{name, shape, active, total, density}], "active",
        "total", "density"}``."""
        return {
            "layers": [{**asdict(layer), "density": layer.density} for layer in self.layers],
            "active": self.active,
            "total": self.total,
            "density": self.density,
        }

    def table_cells(self) -> TableCells:
        """The table: a row per masked weight (name, shape, active, total, density), a total."""
        rows = [
            [
                layer.name,
                "x".join(map(str, layer.shape)),
                str(layer.active),
                str(layer.total),
                f"{layer.density:.4f}",
            ]
            for layer in self.layers
        ]
        total = ["total", "", str(self.active), str(self.total), f"{self.density:.4f}"]
        return TableCells(["layer", "shape", "active", "total", "density"], rows, [total], "llrrr")


def report(model_or_modules: nn.Module | Iterable[nn.Module]) -> DensityReport:
    """The density of every masked weight of a model (or list of masked modules).

    Examples
    --------
    >>> from pypaddle.sparse import MaskedDeepFFN
    >>> model = MaskedDeepFFN(4, 2, [3])
    >>> model.layers_main_hidden[0].mask[0] = False
    >>> print(report(model))
    layer                 shape  active  total  density
    ---------------------------------------------------
    layers_main_hidden.0  3x4         8     12   0.6667
    layer_out             2x3         6      6   1.0000
    ---------------------------------------------------
    total                            14     18   0.7778
    >>> report(model).to_dict()["density"]
    0.7777777777777778
    """
    return DensityReport(
        tuple(
            LayerDensity(
                target.name,
                tuple(target.weight.shape),
                int(target.mask.sum()),
                target.mask.numel(),
            )
            for target in collect_targets(model_or_modules)
        )
    )
