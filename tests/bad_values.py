"""A catalogue of bad values, and a check that a refused call changed nothing.

Bad-input tests throw these at public functions and constructors and assert two things:
the error is the ``pypaddle.errors`` class the contract names, and the objects handed in
are exactly as they were (every parameter, buffer, mode, hook and graph attribute).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import networkx as nx
import numpy as np
import torch
from torch import nn

# Values that are not a count (an int >= 0): wrong types, NaN / inf, negative, fractional,
# huge and foreign objects. Numpy integers are counts and belong nowhere in here.
NOT_COUNTS: list[Any] = [
    -1,
    -(2**70),
    1.5,
    math.nan,
    math.inf,
    -math.inf,
    True,
    None,
    "3",
    b"3",
    [3],
    (3,),
    {"n": 3},
    np.float64(2.5),
    np.array([1, 2]),
    torch.tensor([1, 2]),
    object(),
    nn.Linear(1, 1),
]

# Values that are not a fraction in [0, 1].
NOT_FRACTIONS: list[Any] = [
    -0.1,
    1.5,
    2,
    math.nan,
    math.inf,
    -math.inf,
    np.float64(math.nan),
    np.float32(1.5),
    True,
    None,
    "0.5",
    [0.5],
    torch.tensor([0.5, 0.5]),
    object(),
]

# Values that are not a finite real number.
NOT_FINITE_REALS: list[Any] = [
    math.nan,
    math.inf,
    -math.inf,
    np.float64(math.nan),
    np.float32(math.inf),
    None,
    "1.0",
    [1.0],
    True,
    object(),
]

# Values that are not a seed (an int >= 0 or None).
NOT_SEEDS: list[Any] = [-1, 1.5, math.nan, "0", [0], True, object()]


def value_id(value: Any) -> str:
    """A test id for ``value`` that is the same in every process (no addresses), so that
    pytest-xdist workers collect the same tests."""
    if isinstance(value, torch.Tensor):
        return f"tensor{tuple(value.shape)}"
    if isinstance(value, np.ndarray):
        return f"ndarray{value.shape}"
    text = repr(value)
    return type(value).__name__ if " at 0x" in text or len(text) > 40 else text


def snapshot(*objects: Any) -> list[Any]:
    """Everything a call could change in ``objects``: tensors, modes, hooks, graph data."""
    return [_state(obj) for obj in objects]


def assert_unchanged(before: list[Any], *objects: Any) -> None:
    """Assert that ``objects`` are as :func:`snapshot` saw them."""
    after = snapshot(*objects)
    assert len(before) == len(after)
    for old, new in zip(before, after):
        _assert_equal(old, new, "")


def _state(obj: Any) -> Any:
    if isinstance(obj, nn.Module):
        return {
            "tensors": {
                name: tensor.detach().clone()
                for name, tensor in [*obj.named_parameters(), *obj.named_buffers()]
            },
            "grads": {
                name: None if p.grad is None else p.grad.detach().clone()
                for name, p in obj.named_parameters()
            },
            "modes": [module.training for module in obj.modules()],
            "hooks": [
                (
                    len(module._forward_hooks),
                    len(module._forward_pre_hooks),
                    len(module._backward_hooks),
                )
                for module in obj.modules()
            ],
            "attributes": sorted(obj.__dict__),
        }
    if isinstance(obj, nx.Graph):
        return {
            "type": type(obj),
            "graph": copy.deepcopy(obj.graph),
            "nodes": copy.deepcopy(list(obj.nodes(data=True))),
            "edges": copy.deepcopy(list(obj.edges(data=True))),
        }
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone()
    return copy.deepcopy(obj)


def _assert_equal(old: Any, new: Any, where: str) -> None:
    if isinstance(old, torch.Tensor):
        assert isinstance(new, torch.Tensor), where
        assert old.shape == new.shape, where
        assert old.dtype == new.dtype, where
        assert torch.equal(old, new) or (
            old.is_floating_point()
            and torch.equal(old.isnan(), new.isnan())
            and torch.equal(old.nan_to_num(), new.nan_to_num())
        ), f"{where} changed"
    elif isinstance(old, dict):
        assert old.keys() == new.keys(), f"{where} keys changed"
        for key in old:
            _assert_equal(old[key], new[key], f"{where}.{key}")
    elif isinstance(old, (list, tuple)):
        assert len(old) == len(new), f"{where} length changed"
        for i, (a, b) in enumerate(zip(old, new)):
            _assert_equal(a, b, f"{where}[{i}]")
    elif isinstance(old, float) and math.isnan(old):
        assert isinstance(new, float), f"{where} changed: {old!r} -> {new!r}"
        assert math.isnan(new), f"{where} changed: {old!r} -> {new!r}"
    else:
        assert old == new, f"{where} changed: {old!r} -> {new!r}"
