"""Sparse kernels for unstructured sparsity, chosen per layer by measuring them.

Whether a sparse matrix product beats the dense one depends on the density, the shape,
the batch size and the machine: on one CPU core a 4096 x 4096 layer at 10 % density runs
about twice as fast as CSR, while a 1024 x 1024 layer at 20 % density runs twice as slow
at batch 1 (the dense weight fits in cache) and faster at batch 16. No fixed threshold is
right everywhere, so :func:`sparse_plan` times both kernels on each layer's own weights
at the batch size it will serve, and :func:`to_sparse` uses the sparse kernel only where
it was measurably faster (by ``min_speedup``). The sparse kernel is
``torch.addmm(bias, W_csr, x^T)`` with a CSR weight whose indices are int32 (about 1.3x
faster than int64 on this machine's MKL).
"""

from __future__ import annotations

import copy
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pypaddle._core.checks import check_count, check_real
from pypaddle._core.reports import Report, TableCells
from pypaddle.errors import ConfigError, InputTypeError, StructureError
from pypaddle.kinds import register_kind
from pypaddle.sparse.dan import MaskedDeepDAN
from pypaddle.sparse.masked import MaskableModule

__all__ = ["KernelChoice", "SparseLinear", "SparsePlan", "sparse_plan", "to_sparse"]

Rule = Callable[[float, int, int, int], bool]


class SparseLinear(nn.Module):
    """An inference-only linear layer with a CSR weight: ``x @ W^T + b``.

    The weight and bias are buffers (not trained). Made by :func:`to_sparse`, or from a
    dense (masked) weight with :meth:`from_dense`.
    """

    weight: torch.Tensor
    bias: torch.Tensor

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        if not isinstance(weight, torch.Tensor) or weight.layout != torch.sparse_csr:
            raise InputTypeError(
                f"SparseLinear needs a CSR weight [out, in], got {_describe(weight)}; build "
                "one from a dense weight with SparseLinear.from_dense(weight, bias)"
            )
        _check_bias(bias, weight)
        super().__init__()
        self.out_features, self.in_features = weight.shape
        self.register_buffer("weight", weight)
        if bias is None:
            bias = torch.zeros(self.out_features, dtype=weight.dtype, device=weight.device)
        self.register_buffer("bias", bias.detach().clone().unsqueeze(1))

    @classmethod
    def from_dense(cls, weight: torch.Tensor, bias: torch.Tensor | None = None) -> SparseLinear:
        """Keep the nonzero entries of ``weight [out, in]`` in CSR form (int32 indices)."""
        if (
            not isinstance(weight, torch.Tensor)
            or weight.layout != torch.strided
            or weight.dim() != 2
            or not weight.is_floating_point()
        ):
            raise InputTypeError(
                f"SparseLinear.from_dense needs a dense floating-point weight [out, in], got "
                f"{_describe(weight)}; pass e.g. layer.weight of an nn.Linear"
            )
        _check_bias(bias, weight)
        with warnings.catch_warnings():  # "CSR support is in beta": said once is enough
            warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta")
            csr = weight.detach().to_sparse_csr()
            compact = torch.sparse_csr_tensor(
                csr.crow_indices().to(torch.int32),
                csr.col_indices().to(torch.int32),
                csr.values(),
                csr.shape,
                check_invariants=False,  # built by torch itself just above
            )
        return cls(compact, None if bias is None else bias.detach())

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if input.is_floating_point() and input.dtype != self.bias.dtype:
            input = input.to(self.bias.dtype)
        rows = input.reshape(-1, self.in_features)
        out = torch.addmm(self.bias, self.weight, rows.t()).t()
        return out.reshape(*input.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        density = self.weight.values().numel() / max(self.out_features * self.in_features, 1)
        return f"in_features={self.in_features}, out_features={self.out_features}, " + (
            f"density={density:.4g}"
        )


def _describe(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {value.layout} {value.dtype} tensor of shape {tuple(value.shape)}"
    text = repr(value)
    return text if len(text) <= 60 else f"a {type(value).__name__}"


def _check_bias(bias: object, weight: torch.Tensor) -> None:
    """A bias is None or a floating-point tensor of ``out`` entries."""
    if bias is None:
        return
    if not isinstance(bias, torch.Tensor) or not bias.is_floating_point():
        raise InputTypeError(
            f"bias must be a floating-point tensor [out] or None, got {_describe(bias)}"
        )
    if bias.shape != weight.shape[:1]:
        raise ConfigError(
            f"bias must have shape ({weight.shape[0]},) to match a weight of shape "
            f"{tuple(weight.shape)}, got {tuple(bias.shape)}"
        )


# A linear layer to extraction, compaction and counting (its CSR weight read densely).
register_kind(SparseLinear, "linear", builtin=True)


@dataclass(frozen=True)
class KernelChoice:
    """The kernel chosen for one linear layer, and the times it was chosen by."""

    name: str
    out_features: int
    in_features: int
    density: float
    batch_size: int
    dense_seconds: float | None
    sparse_seconds: float | None
    sparse: bool

    @property
    def speedup(self) -> float | None:
        """Dense over sparse time (None when the rule did not measure)."""
        if self.dense_seconds is None or self.sparse_seconds is None:
            return None
        return self.dense_seconds / self.sparse_seconds

    def to_dict(self) -> dict[str, Any]:
        """Plain data: the fields and the speed-up."""
        return {**asdict(self), "speedup": self.speedup}


def _microseconds(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds * 1e6:.1f}"


class SparsePlan(Report, list[KernelChoice]):
    """What :func:`sparse_plan` chose: a list of :class:`KernelChoice`, one per linear layer.

    A report: :meth:`to_dict` gives plain data, ``str()`` (or :meth:`to_table`) a text
    table, and Jupyter shows it as an HTML table. It is a list, so it can be edited and
    handed to :func:`to_sparse` as ``plan``.
    """

    def to_dict(self) -> dict[str, Any]:
        """Plain data: ``{"layers": [choice dicts], "sparse": how many chose sparse}``."""
        return {
            "layers": [choice.to_dict() for choice in self],
            "sparse": sum(choice.sparse for choice in self),
        }

    def table_cells(self) -> TableCells:
        """One row per layer: shape, density, batch, times in microseconds, the kernel."""
        rows = [
            [
                choice.name or "(model)",
                f"{choice.out_features}x{choice.in_features}",
                f"{choice.density:.4f}",
                str(choice.batch_size),
                _microseconds(choice.dense_seconds),
                _microseconds(choice.sparse_seconds),
                "" if choice.speedup is None else f"{choice.speedup:.2f}",
                "sparse" if choice.sparse else "dense",
            ]
            for choice in self
        ]
        return TableCells(
            ["layer", "shape", "density", "batch", "dense us", "sparse us", "speedup", "kernel"],
            rows,
            align="llrrrrrl",
        )


def _masked_weight(layer: nn.Linear) -> tuple[torch.Tensor, torch.Tensor | None]:
    with torch.no_grad():
        if isinstance(layer, MaskableModule):
            return layer.masked_weight().detach(), layer.masked_bias()
        return layer.weight.detach(), layer.bias


def _median_seconds(first: Callable[[], object], second: Callable[[], object], rounds: int):
    """Median seconds per call of two functions, timed in alternating blocks."""
    for _ in range(2):
        first(), second()
    start = time.perf_counter()
    first()
    once = max(time.perf_counter() - start, 1e-7)
    calls = max(1, int(2e-3 / once))
    times: tuple[list[float], list[float]] = ([], [])
    for round_ in range(rounds):
        order = (0, 1) if round_ % 2 == 0 else (1, 0)
        for which in order:
            function = (first, second)[which]
            start = time.perf_counter()
            for _ in range(calls):
                function()
            times[which].append((time.perf_counter() - start) / calls)
    return statistics.median(times[0]), statistics.median(times[1])


@torch.no_grad()
def _time_kernels(
    weight: torch.Tensor, bias: torch.Tensor | None, batch_size: int, rounds: int
) -> tuple[float, float]:
    """Seconds per call of the dense and the CSR product of ``weight`` at ``batch_size``."""
    sparse_layer = SparseLinear.from_dense(weight, bias)
    rows = torch.randn(batch_size, weight.shape[1], dtype=weight.dtype, device=weight.device)
    return _median_seconds(lambda: F.linear(rows, weight, bias), lambda: sparse_layer(rows), rounds)


def _linear_layers(model: nn.Module) -> list[tuple[str, nn.Linear]]:
    if isinstance(model, MaskedDeepDAN) or any(
        isinstance(module, MaskedDeepDAN) for module in model.modules()
    ):
        raise StructureError(
            "a MaskedDeepDAN runs its hidden layers in one kernel, so they cannot be "
            "swapped one by one; compact it first (pypaddle.deploy.compact) and convert "
            "the result: to_sparse(compact(model))"
        )
    return [
        (name, module)
        for name, module in model.named_modules()
        if type(module) is not SparseLinear and isinstance(module, nn.Linear)
    ]


def _check_options(
    caller: str,
    model: object,
    batch_size: object,
    rule: object,
    min_speedup: object,
    rounds: object,
) -> tuple[int, float, int]:
    if not isinstance(model, nn.Module):
        raise InputTypeError(
            f"{caller} needs a torch.nn.Module, got {type(model).__name__}; pass the model itself"
        )
    batch_size = check_count(batch_size, "batch_size", 1)
    if not callable(rule) and not (isinstance(rule, str) and rule == "measure"):
        raise ConfigError(
            f"rule must be 'measure' or a callable (density, out_features, in_features, "
            f"batch_size) -> bool, got {rule!r}"
        )
    min_speedup = check_real(min_speedup, "min_speedup", minimum=0.0, open_minimum=True)
    rounds = check_count(rounds, "rounds", 1)
    return batch_size, min_speedup, rounds


def _check_plan(plan: object, model: nn.Module) -> list[KernelChoice]:
    """The plan as a list, if every choice is a KernelChoice naming a linear layer of ``model``."""
    if isinstance(plan, (str, bytes)) or not isinstance(plan, (list, tuple)):
        raise InputTypeError(
            f"plan must be a list of KernelChoice from sparse_plan, got {_describe(plan)}"
        )
    layers = dict(model.named_modules())
    for choice in plan:
        if not isinstance(choice, KernelChoice):
            raise InputTypeError(
                f"plan must hold KernelChoice objects (from sparse_plan), got {_describe(choice)}"
            )
        if choice.sparse and not isinstance(layers.get(choice.name), nn.Linear):
            raise ConfigError(
                f"the plan names {choice.name!r}, which is no linear layer of this "
                f"{type(model).__name__}; make the plan for this model with sparse_plan(model)"
            )
    return list(plan)


def sparse_plan(
    model: nn.Module,
    batch_size: int = 1,
    *,
    rule: str | Rule = "measure",
    min_speedup: float = 1.1,
    rounds: int = 5,
) -> SparsePlan:
    """Choose dense or sparse (CSR) for every linear layer of ``model``.

    ``rule="measure"`` times both kernels on the layer's own weights for an input of
    ``batch_size`` rows and picks sparse where it is at least ``min_speedup`` times faster,
    so a layer never gets a kernel measured slower than dense. A callable
    ``rule(density, out_features, in_features, batch_size) -> bool`` decides without
    timing. A masked layer's density is its mask's; a plain ``nn.Linear``'s is the share of
    nonzero weights (e.g. after :func:`compact`).

    Raises
    ------
    InputTypeError
        If ``model`` is not a module.
    ConfigError
        If ``batch_size`` or ``rounds`` is not an int >= 1, ``min_speedup`` not a finite
        number > 0, or ``rule`` neither ``"measure"`` nor a callable.
    StructureError
        If the model holds a :class:`MaskedDeepDAN` (compact it first).
    """
    batch_size, min_speedup, rounds = _check_options(
        "sparse_plan", model, batch_size, rule, min_speedup, rounds
    )
    choices = []
    for name, layer in _linear_layers(model):
        weight, bias = _masked_weight(layer)
        density = int(torch.count_nonzero(weight)) / max(weight.numel(), 1)
        out_features, in_features = weight.shape
        dense_seconds = sparse_seconds = None
        if isinstance(rule, str):  # "measure", checked above
            dense_seconds, sparse_seconds = _time_kernels(weight, bias, batch_size, rounds)
            sparse = dense_seconds >= min_speedup * sparse_seconds
        else:
            sparse = bool(rule(density, out_features, in_features, batch_size))
        choices.append(
            KernelChoice(
                name,
                out_features,
                in_features,
                density,
                batch_size,
                dense_seconds,
                sparse_seconds,
                sparse,
            )
        )
    return SparsePlan(choices)


def to_sparse(
    model: nn.Module,
    batch_size: int = 1,
    *,
    rule: str | Rule = "measure",
    min_speedup: float = 1.1,
    plan: list[KernelChoice] | None = None,
) -> nn.Module:
    """A copy of ``model`` for inference whose linear layers use CSR kernels where faster.

    Each (masked) ``nn.Linear`` for which :func:`sparse_plan` (or the given ``plan``)
    chose sparse is replaced by a :class:`SparseLinear` holding the masked weight in CSR
    form; the others stay as they are. ``model`` itself is not changed. Convolutions are
    left dense (torch has no CPU sparse convolution that beats them). A
    :class:`MaskedDeepDAN` must be compacted first.

    Raises the errors of :func:`sparse_plan`, and, for a ``plan`` that is not a list of
    :class:`KernelChoice` naming linear layers of ``model``, ``InputTypeError`` or
    ``ConfigError``; nothing is changed then.

    Examples
    --------
    >>> import torch
    >>> from pypaddle.sparse import MaskedDeepFFN
    >>> model = MaskedDeepFFN(64, 4, [64])
    >>> model.layers_main_hidden[0].mask &= torch.rand(64, 64) < 0.05
    >>> fast = to_sparse(model, batch_size=8, rule=lambda density, *shape: density < 0.1)
    >>> type(fast.layers_main_hidden[0]).__name__, type(fast.layer_out).__name__
    ('SparseLinear', 'MaskedLinearLayer')
    >>> x = torch.randn(8, 64)
    >>> torch.allclose(fast(x), model(x), atol=1e-5)
    True
    """
    _check_options("to_sparse", model, batch_size, rule, min_speedup, 1)
    if plan is None:
        plan = sparse_plan(model, batch_size, rule=rule, min_speedup=min_speedup)
    else:
        plan = _check_plan(plan, model)
        _linear_layers(model)  # a DAN is refused with or without a plan
    result = copy.deepcopy(model)
    layers = dict(result.named_modules())
    for choice in plan:
        if not choice.sparse:
            continue
        weight, bias = _masked_weight(layers[choice.name])
        replacement = SparseLinear.from_dense(weight, bias)
        if choice.name == "":
            return replacement
        parent_name, _, child = choice.name.rpartition(".")
        setattr(layers[parent_name], child, replacement)
    return result
