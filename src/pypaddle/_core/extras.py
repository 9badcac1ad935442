"""The optional extras of pypaddle and the one check that names everything missing.

What ``pypaddle demo`` and ``pypaddle run`` need is a core dependency; the extras hold
what only some features need. :func:`require` checks every package of the extras a
feature needs at once, so that one message lists all that is missing and the one
``pip install`` line that brings it.
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Callable

from pypaddle.errors import MissingExtraError

__all__ = ["EXTRAS", "missing", "require", "usable"]

# extra -> the modules it installs (import names).
EXTRAS: dict[str, tuple[str, ...]] = {
    "onnx": ("onnx", "onnxscript", "onnxruntime"),
    "ray": ("ray",),
    "fast": ("numba",),
    "mnist1d": ("mnist1d",),
    "vision": ("torchvision",),
    "tensorboard": ("tensorboard",),
}


def missing(*extras: str) -> dict[str, list[str]]:
    """The modules of each extra that cannot be imported (extras with none left out).

    Examples
    --------
    >>> missing("fast", "ray") in ({}, {"fast": ["numba"]}, {"ray": ["ray"]},
    ...                            {"fast": ["numba"], "ray": ["ray"]})
    True
    """
    absent = {
        extra: [module for module in EXTRAS[extra] if importlib.util.find_spec(module) is None]
        for extra in extras
    }
    return {extra: modules for extra, modules in absent.items() if modules}


def require(*extras: str, what: str) -> None:
    """Raise :class:`~pypaddle.errors.MissingExtraError` unless every module of ``extras``
    is installed; the message lists all that is missing and the install line for them.

    ``what`` names the feature in the message, e.g. ``"ONNX export"``.
    """
    unknown = [extra for extra in extras if extra not in EXTRAS]
    if unknown:
        raise ValueError(f"unknown extras {unknown}; known: {sorted(EXTRAS)}")
    absent = missing(*extras)
    if absent:
        modules = [module for names in absent.values() for module in names]
        raise MissingExtraError(
            f"{what} needs {', '.join(modules)}, which {'is' if len(modules) == 1 else 'are'} "
            f"not installed; install everything it needs with: "
            f"pip install 'pypaddle[{','.join(absent)}]'"
        )


def usable(module: str, load: Callable[[], object], *, fallback: str) -> bool:
    """Whether the optional ``module`` is installed and ``load()`` (which imports what
    needs it) works.

    An installed module that fails to load (say, built for another numpy) is not usable:
    a ``RuntimeWarning`` names the error and ``fallback``, what runs instead.
    """
    if importlib.util.find_spec(module) is None:
        return False
    try:
        load()
    except Exception as error:  # any failure of a broken install, not only ImportError
        warnings.warn(
            f"{module} is installed but cannot be used ({type(error).__name__}: {error}); "
            f"{fallback}",
            RuntimeWarning,
            stacklevel=3,
        )
        return False
    return True
