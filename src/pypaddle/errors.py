"""The exceptions pypaddle raises.

Every error is a :class:`PaddleError` and also the built-in error a Python user would
catch (``ValueError`` or ``TypeError``), and its message says what was wrong and how to
fix it.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "ExperimentError",
    "GraphFileError",
    "InputTypeError",
    "MaskError",
    "MissingExtraError",
    "ModelFileError",
    "PaddleError",
    "StructureError",
    "StructureWarning",
]


class PaddleError(Exception):
    """Base class of every error raised by pypaddle."""


class StructureError(PaddleError, ValueError):
    """A graph cannot serve as a structure (a cycle, no vertices, an undirected graph...)."""


class MaskError(PaddleError, ValueError):
    """A mask has the wrong shape or holds values that are not boolean-like."""


class ConfigError(PaddleError, ValueError):
    """An argument or configuration value is out of range or of the wrong kind."""


class InputTypeError(PaddleError, TypeError):
    """An argument has a type pypaddle cannot work with."""


class ExperimentError(PaddleError, RuntimeError):
    """Experiments failed while running (e.g. trials of a sweep); finished results are kept."""


class GraphFileError(PaddleError, ValueError):
    """A graph file cannot be read: corrupt, foreign, or of a format pypaddle does not know."""


class MissingExtraError(ConfigError):
    """A feature needs packages of an optional extra that are not installed; the message
    lists every missing package and the ``pip install 'pypaddle[...]'`` line for them."""


class ModelFileError(ConfigError):
    """A model file cannot be loaded: missing, corrupt, truncated, foreign, or naming
    something not registered as loadable (see :func:`pypaddle.deploy.register_loadable`).

    It is a :class:`ConfigError` (and a ``ValueError``), as load's errors were before.
    """


class StructureWarning(UserWarning):
    """A structure is valid but degenerate for learning (see
    :class:`~pypaddle.sparse.MaskedDeepDAN`): few sources for many inputs, depth far beyond
    width, vertices cut off from the inputs or the outputs. The message gives the numbers
    and what to do."""
