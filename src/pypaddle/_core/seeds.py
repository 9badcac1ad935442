"""One seed rule for numpy and torch: an int seed (or None for fresh entropy) gives a
generator; a generator given is used as it is; giving a seed and a generator is an error."""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING, Any

import numpy as np

from pypaddle.errors import ConfigError

if TYPE_CHECKING:
    import torch

__all__ = ["SEED_LIMIT", "Seed", "check_seed", "numpy_generator", "torch_generator"]

# Int seeds, in configs and in code alike: [0, 2**63). numpy takes any int >= 0 and torch
# any in [0, 2**64); 2**63 is where both agree and where TOML's 64-bit integers end.
SEED_LIMIT = 2**63

Seed = int | np.random.Generator | np.random.SeedSequence | None
_SEED_TYPES = (int, np.integer, np.random.Generator, np.random.SeedSequence, type(None))


def check_seed(value: Any, name: str = "seed") -> int:
    """``value`` as an int, if it is a seed a config may hold: an int in [0, 2**63).

    numpy integers are accepted, bools are not.

    Examples
    --------
    >>> check_seed(np.int64(7))
    7
    >>> check_seed(2**70)
    Traceback (most recent call last):
    ...
    pypaddle.errors.ConfigError: seed must be an int in [0, 2**63), got 1180591620717411303424
    """
    if not isinstance(value, bool):
        try:
            number = operator.index(value)
        except TypeError:
            pass
        else:
            if 0 <= number < SEED_LIMIT:
                return number
    raise ConfigError(f"{name} must be an int in [0, 2**63), got {value!r}")


def numpy_generator(seed: Seed) -> np.random.Generator:
    """The numpy Generator for ``seed`` (an int in [0, 2**63), a SeedSequence, a Generator
    or None)."""
    if isinstance(seed, bool) or not isinstance(seed, _SEED_TYPES):
        raise ConfigError(
            f"seed must be an int, a numpy Generator or SeedSequence, or None; got {seed!r}"
        )
    if isinstance(seed, (int, np.integer)):
        seed = check_seed(seed)
    return np.random.default_rng(seed)


def torch_generator(seed: Any = None, generator: torch.Generator | None = None) -> torch.Generator:
    """The torch Generator random choices draw from: ``generator`` if given, else a new one
    seeded by ``seed`` (an int in [0, 2**63), or fresh entropy for None)."""
    import torch

    if generator is not None and seed is not None:
        raise ConfigError("give a seed or a generator, not both")
    if generator is not None:
        if not isinstance(generator, torch.Generator):
            raise ConfigError(f"generator must be a torch.Generator, got {generator!r}")
        return generator
    made = torch.Generator()
    if seed is None:
        made.seed()
        return made
    made.manual_seed(check_seed(seed))
    return made
