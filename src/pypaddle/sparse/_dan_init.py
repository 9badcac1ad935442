"""How a graph-built net starts: per-vertex initialisation, and what makes a structure
degenerate for learning (the checks behind :class:`~pypaddle.errors.StructureWarning`).

Both read only the :class:`~pypaddle.sparse.DanPlan` (and, for the checks, the current
masks), so they are pure functions of tensors and arrays: no Python loop per edge.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import sparse
from scipy.sparse import csgraph
from torch import nn

from pypaddle.errors import ConfigError
from pypaddle.sparse._dan_plan import DanPlan

__all__ = [
    "DEPTH_PER_WIDTH",
    "INITS",
    "INPUTS_PER_SOURCE",
    "MIN_WARNED_DEPTH",
    "activation_gain",
    "initial_values",
    "structure_problems",
    "weight_scale",
]

INITS = ("fan_in", "legacy")
"""The initialisations of a graph-built net: ``"fan_in"`` (the default) and ``"legacy"``."""

INPUTS_PER_SOURCE = 8
"""A structure is warned as a bottleneck when it has fewer sources than the outputs and
than the input features divided by this."""

DEPTH_PER_WIDTH = 4.0
"""A structure is warned as too deep when its depth exceeds this many times its mean
layer width (vertices / layers) ..."""

MIN_WARNED_DEPTH = 16
"""... and it has at least this many layers (shallow nets of narrow layers are fine)."""

# Gains for activations torch.nn.init.calculate_gain does not name: GELU, SiLU and ELU
# pass about half of a centred input's power, like ReLU.
_RELU_LIKE = (nn.ReLU, nn.GELU, nn.SiLU, nn.ELU, nn.CELU, nn.Softplus, nn.Mish)


def activation_gain(activation: nn.Module) -> float:
    """The gain that keeps a signal's power through ``activation``, as in He et al. 2015.

    ``sqrt(2)`` for ReLU and its smooth relatives (GELU, SiLU, ELU, ...), ``5 / 3`` for
    tanh, ``sqrt(2 / (1 + a²))`` for LeakyReLU of slope ``a``, ``3 / 4`` for SELU and 1
    for sigmoid, identity and anything else (the values of
    :func:`torch.nn.init.calculate_gain`).

    Examples
    --------
    >>> [round(activation_gain(f), 4) for f in (nn.ReLU(), nn.Tanh(), nn.Identity())]
    [1.4142, 1.6667, 1.0]
    """
    if isinstance(activation, _RELU_LIKE):
        return math.sqrt(2.0)
    if isinstance(activation, nn.LeakyReLU):
        return nn.init.calculate_gain("leaky_relu", activation.negative_slope)
    if isinstance(activation, nn.Tanh):
        return nn.init.calculate_gain("tanh")
    if isinstance(activation, nn.SELU):
        return nn.init.calculate_gain("selu")
    return 1.0


def initial_values(
    plan: DanPlan, mask: torch.Tensor, activation: nn.Module, init: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """The packed hidden weight and bias a new DAN starts with (see ``init`` there).

    ``"fan_in"``: vertex ``v``'s incoming weights are drawn uniformly with standard
    deviation ``gain / sqrt(fan_in(v))``, where ``fan_in`` counts its active inputs only
    (its edges; all input features for a source) and ``gain`` is
    :func:`activation_gain`; entries of the packed blocks that are no edge are 0.
    ``"legacy"``: the start of earlier releases, ``U(-b, b)`` with ``b = 1 /
    sqrt(fan_in(v))``, drawn over the whole packed blocks. Biases start at ``U(-b, b)``
    either way, and both draw the same numbers from the torch random state, so the
    ``"fan_in"`` weights are the legacy ones times ``gain * sqrt(3)`` on the edges.
    """
    bound = torch.from_numpy(1 / np.sqrt(np.maximum(plan.fan_in(), 1)))
    row_length = torch.from_numpy(np.repeat(plan.columns, plan.widths))
    weight = torch.empty(mask.numel()).uniform_(-1, 1)
    bias = torch.empty(plan.vertices).uniform_(-1, 1).mul_(bound)
    weight.mul_(weight_scale(bound, activation, init).repeat_interleave(row_length))
    return (weight, bias) if init == "legacy" else (weight.mul_(mask), bias)


def weight_scale(bound: torch.Tensor, activation: nn.Module, init: str) -> torch.Tensor:
    """What a vertex's ``U(-1, 1)`` weights are multiplied by, given ``bound = 1 /
    sqrt(fan_in)``: ``bound`` itself (``"legacy"``) or ``bound * gain * sqrt(3)``
    (``"fan_in"``: standard deviation ``gain / sqrt(fan_in)``, as ``U(-a, a)`` has
    ``a / sqrt(3)``). The one rule of :func:`initial_values` and of a layer's reset."""
    if init == "legacy":
        return bound
    return bound * (activation_gain(activation) * math.sqrt(3.0))


def check_init(init: object) -> str:
    if not isinstance(init, str) or init not in INITS:
        raise ConfigError(
            f"unknown init {init!r}; choose 'fan_in' (per-vertex He initialisation, the "
            "default) or 'legacy' (the uniform 1 / sqrt(fan-in) start of pypaddle 0.4)"
        )
    return init


def structure_problems(
    plan: DanPlan,
    num_classes: int,
    hidden_mask: torch.Tensor,
    output_mask: torch.Tensor,
) -> list[str]:
    """Why a structure (with its current masks) is degenerate for learning, one line each.

    Three checks, each documented with its threshold on :class:`MaskedDeepDAN`:

    - fewer sources than ``min(num_classes, features / INPUTS_PER_SOURCE)``: every input
      reaches the rest of the net through the sources, so they bound the rank of what it
      can tell apart;
    - depth above ``DEPTH_PER_WIDTH`` times the mean layer width, with at least
      ``MIN_WARNED_DEPTH`` layers: a long chain of narrow layers;
    - vertices that no input reaches or that reach no output through active (unmasked)
      connections: they take weights and compute, but nothing they do reaches the loss.
    """
    problems = []
    sources, features, layers = plan.widths[0], plan.features, len(plan.widths)
    if sources < min(num_classes, features / INPUTS_PER_SOURCE):
        problems.append(
            f"{features} input features and {num_classes} outputs pass through "
            f"{sources} source vertex{'es' if sources != 1 else ''} (vertices without "
            "incoming edges), a bottleneck the net cannot learn around; orient the graph "
            "so that more vertices are sources (order='random' or order='degree' in "
            "pypaddle.graph's generators and to_dag) or use a layered prior"
        )
    mean_width = plan.vertices / layers
    if layers >= MIN_WARNED_DEPTH and layers > DEPTH_PER_WIDTH * mean_width:
        problems.append(
            f"the structure is {layers} layers deep but only {mean_width:.1f} vertices wide "
            f"on average (more than {DEPTH_PER_WIDTH:g}x its width): signals and gradients "
            "must cross a long chain of narrow layers; orient it otherwise (order='random') "
            "or use a wider, shallower prior (e.g. small_world_layered)"
        )
    unreached, dead = _cut_off(plan, hidden_mask, output_mask)
    if unreached or dead:
        problems.append(
            f"{unreached} of {plan.vertices} vertices are reached by no input and {dead} "
            "reach no output through active connections: their weights never affect the "
            "loss; prune them away or use a structure where every vertex lies on a path "
            "from the inputs to the outputs"
        )
    return problems


def _cut_off(
    plan: DanPlan, hidden_mask: torch.Tensor, output_mask: torch.Tensor
) -> tuple[int, int]:
    """How many vertices no input reaches, and how many reach no output (active edges)."""
    mask = hidden_mask.detach().cpu().numpy()
    count = plan.vertices
    first_end = plan.blocks[0][1]
    fed = mask[:first_end].reshape(plan.widths[0], plan.features).any(axis=1)
    entries = np.flatnonzero(mask[first_end:]) + first_end
    sources, targets = plan.edges_at(entries)
    feeding = output_mask.detach().cpu().numpy().any(axis=0)
    sinks = np.asarray(plan.sinks, dtype=np.int64)[feeding]
    # Vertex positions 0 .. count - 1, then the input (count) and the output (count + 1).
    rows = np.concatenate((sources, np.full(int(fed.sum()), count), sinks))
    columns = np.concatenate((targets, np.flatnonzero(fed), np.full(sinks.size, count + 1)))
    graph = sparse.csr_array(
        (np.ones(rows.size, dtype=np.int8), (rows, columns)), shape=(count + 2, count + 2)
    )
    from_input = csgraph.breadth_first_order(graph, count, directed=True)[0]
    to_output = csgraph.breadth_first_order(graph.T.tocsr(), count + 1, directed=True)[0]
    return count - int((from_input < count).sum()), count - int((to_output < count).sum())
