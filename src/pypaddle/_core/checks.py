"""Argument checks shared by every subpackage: counts, probabilities, fractions, reals.

Each returns the value as a plain Python number (numpy scalars are accepted wherever the
matching Python number is) or raises :class:`~pypaddle.errors.ConfigError` naming the
argument, the allowed range and the value given. Booleans are never numbers here.
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Sequence
from typing import Any

from pypaddle.errors import ConfigError

__all__ = ["check_count", "check_fraction", "check_probability", "check_real", "check_widths"]


def check_count(value: Any, name: str, minimum: int = 0) -> int:
    """``value`` as an int, if it is an integer (not a bool) of at least ``minimum``."""
    if isinstance(value, bool):
        raise ConfigError(f"{name} must be an int >= {minimum}, got {value!r}")
    try:
        number = operator.index(value)
    except TypeError:
        raise ConfigError(f"{name} must be an int >= {minimum}, got {value!r}") from None
    if number < minimum:
        raise ConfigError(f"{name} must be an int >= {minimum}, got {number}")
    return number


def check_real(
    value: Any,
    name: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    open_minimum: bool = False,
    open_maximum: bool = False,
) -> float:
    """``value`` as a finite float within the given bounds (closed unless said open)."""
    low = "(" if open_minimum else "["
    high = ")" if open_maximum else "]"
    wanted = (
        f"a finite real number in {low}{'-inf' if minimum is None else minimum}, "
        f"{'inf' if maximum is None else maximum}{high}"
    )
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(f"{name} must be {wanted}, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ConfigError(f"{name} must be {wanted}, got {value!r}")
    too_low = minimum is not None and (number <= minimum if open_minimum else number < minimum)
    too_high = maximum is not None and (number >= maximum if open_maximum else number > maximum)
    if too_low or too_high:
        raise ConfigError(f"{name} must be {wanted}, got {value!r}")
    return number


def check_probability(value: Any, name: str) -> float:
    """``value`` as a float, if it is a real number in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= float(value) <= 1:
        raise ConfigError(f"{name} must be a probability in [0, 1], got {value!r}")
    return float(value)


def check_fraction(value: Any, name: str, *, open_minimum: bool = False) -> float:
    """``value`` as a float in [0, 1] (or (0, 1] with ``open_minimum``), e.g. a density."""
    return check_real(value, name, minimum=0.0, maximum=1.0, open_minimum=open_minimum)


def check_widths(widths: Any, name: str = "widths") -> list[int]:
    """Layer widths as a list of ints, if they form a non-empty sequence of counts >= 1."""
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence) or not widths:
        raise ConfigError(f"{name} must be a non-empty sequence of ints >= 1, got {widths!r}")
    return [check_count(width, f"{name}[{i}]", 1) for i, width in enumerate(widths)]
