"""Regression data sets sampled from function landscapes R^n -> R^m, seeded and savable."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from pypaddle._core.files import atomic_write_with
from pypaddle.data.digits import Split
from pypaddle.errors import ConfigError

__all__ = ["LANDSCAPES", "FunctionDataset"]


def _sphere(x: np.ndarray) -> np.ndarray:
    return (x**2).sum(axis=1)


def _rastrigin(x: np.ndarray) -> np.ndarray:
    return 10.0 * x.shape[1] + (x**2 - 10.0 * np.cos(2 * math.pi * x)).sum(axis=1)


def _rosenbrock(x: np.ndarray) -> np.ndarray:
    if x.shape[1] < 2:
        return (1.0 - x[:, 0]) ** 2
    return (100.0 * (x[:, 1:] - x[:, :-1] ** 2) ** 2 + (1.0 - x[:, :-1]) ** 2).sum(axis=1)


def _ackley(x: np.ndarray) -> np.ndarray:
    radius = np.sqrt((x**2).mean(axis=1))
    waves = np.cos(2 * math.pi * x).mean(axis=1)
    return -20.0 * np.exp(-0.2 * radius) - np.exp(waves) + 20.0 + math.e


def _styblinski_tang(x: np.ndarray) -> np.ndarray:
    return 0.5 * (x**4 - 16.0 * x**2 + 5.0 * x).sum(axis=1)


def _sine(x: np.ndarray) -> np.ndarray:
    return np.sin(x).sum(axis=1)


LANDSCAPES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "ackley": _ackley,
    "rastrigin": _rastrigin,
    "rosenbrock": _rosenbrock,
    "sine": _sine,
    "sphere": _sphere,
    "styblinski_tang": _styblinski_tang,
}
"""The named landscapes R^n -> R: each maps samples ``[N, n]`` to values ``[N]``."""


def _names(function: str | Sequence[str]) -> list[str]:
    names = [function] if isinstance(function, str) else list(function)
    if not names or not all(isinstance(name, str) for name in names):
        raise ConfigError(
            f"function must be a landscape name or a non-empty list of them, got {function!r}; "
            f"allowed names: {', '.join(LANDSCAPES)}"
        )
    unknown = [name for name in names if name not in LANDSCAPES]
    if unknown:
        raise ConfigError(
            f"unknown function landscape {unknown[0]!r}; allowed: {', '.join(LANDSCAPES)}"
        )
    return names


class FunctionDataset(torch.utils.data.Dataset):
    """Samples ``(x, f(x))`` of a landscape ``f: R^n -> R^m``, drawn uniformly from a box.

    ``function`` names one landscape of :data:`LANDSCAPES` (``m = 1``) or a list of them,
    one per output (``m = len(function)``). ``x`` is drawn uniformly from ``[low, high]^n``
    by a NumPy generator seeded with ``seed``, and Gaussian noise of standard deviation
    ``noise`` (from the same generator) is added to the targets; the same arguments always
    give the same tensors. Inputs and targets are ``float32`` tensors ``[samples, n]`` and
    ``[samples, m]``. Items are ``(x[i], y[i])`` pairs, so it works with a ``DataLoader``.

    Parameters
    ----------
    function : str or sequence of str
        Landscape name(s): ``ackley``, ``rastrigin``, ``rosenbrock``, ``sine``, ``sphere``,
        ``styblinski_tang``.
    dimension : int
        ``n``, the number of inputs (>= 1).
    samples : int
        Number of samples (>= 2).
    low, high : float
        The box the inputs are drawn from (``low < high``).
    noise : float
        Standard deviation of Gaussian noise added to the targets (>= 0).
    seed : int
        Seed of the sampling.

    Examples
    --------
    >>> data = FunctionDataset(["sphere", "sine"], dimension=3, samples=100, seed=0)
    >>> data.x.shape, data.y.shape, len(data)
    (torch.Size([100, 3]), torch.Size([100, 2]), 100)
    >>> bool(torch.allclose(data.y[:, 0], (data.x**2).sum(1)))
    True
    >>> x_train, y_train, x_test, y_test = data.split(test_fraction=0.2, seed=0)
    >>> x_train.shape, y_test.shape
    (torch.Size([80, 3]), torch.Size([20, 2]))
    """

    def __init__(
        self,
        function: str | Sequence[str] = "sphere",
        *,
        dimension: int = 2,
        samples: int = 1000,
        low: float = -5.0,
        high: float = 5.0,
        noise: float = 0.0,
        seed: int = 0,
    ) -> None:
        names = _names(function)
        if isinstance(dimension, bool) or not isinstance(dimension, int) or dimension < 1:
            raise ConfigError(f"dimension must be an int >= 1, got {dimension!r}")
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 2:
            raise ConfigError(f"samples must be an int >= 2, got {samples!r}")
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ConfigError(f"need finite low < high for the input box, got [{low}, {high}]")
        if not (math.isfinite(noise) and noise >= 0):
            raise ConfigError(f"noise must be a float >= 0, got {noise!r}")
        rng = np.random.default_rng(seed)
        x = rng.uniform(low, high, size=(samples, dimension))
        y = np.stack([LANDSCAPES[name](x) for name in names], axis=1)
        if noise > 0:
            y = y + rng.normal(0.0, noise, size=y.shape)
        self.x = torch.from_numpy(x.astype(np.float32))
        self.y = torch.from_numpy(y.astype(np.float32))
        self.metadata = {
            "function": names,
            "dimension": dimension,
            "samples": samples,
            "low": float(low),
            "high": float(high),
            "noise": float(noise),
            "seed": seed,
        }

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[index], self.y[index]

    def split(self, *, test_fraction: float = 0.25, seed: int = 0) -> Split:
        """A seeded random train/test split of the samples (targets stay float)."""
        if not 0.0 < test_fraction < 1.0:
            raise ConfigError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
        order = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))
        test_count = min(max(1, round(test_fraction * len(self))), len(self) - 1)
        test, train = order[:test_count], order[test_count:]
        return Split(self.x[train], self.y[train], self.x[test], self.y[test])

    def save(self, path: str | Path) -> Path:
        """Write the samples and how they were drawn to a ``.npz`` file; return its path."""
        x, y = self.x.numpy(), self.y.numpy()
        metadata = np.array(json.dumps(self.metadata))
        # written whole or not at all: a temporary file beside path, renamed into place
        return atomic_write_with(path, lambda handle: np.savez(handle, x=x, y=y, metadata=metadata))

    @classmethod
    def load(cls, path: str | Path) -> FunctionDataset:
        """Read a data set written by :meth:`save` (the exact tensors, not a re-sampling).

        Examples
        --------
        >>> import tempfile, pathlib
        >>> data = FunctionDataset("rastrigin", dimension=2, samples=10, seed=3)
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     loaded = FunctionDataset.load(data.save(pathlib.Path(folder) / "r.npz"))
        >>> bool(torch.equal(loaded.x, data.x)), loaded.metadata["function"]
        (True, ['rastrigin'])
        """
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"function data file {str(path)!r} does not exist")
        try:
            with np.load(path, allow_pickle=False) as archive:
                x, y = archive["x"], archive["y"]
                metadata = json.loads(str(archive["metadata"]))
        except (OSError, KeyError, ValueError) as error:
            raise ConfigError(
                f"{str(path)!r} is not a FunctionDataset file ({error}); write one with "
                "FunctionDataset.save"
            ) from None
        dataset = cls.__new__(cls)
        dataset.x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        dataset.y = torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32))
        dataset.metadata = metadata
        return dataset
