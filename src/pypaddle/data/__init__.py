"""Built-in data sets that need no download."""

from pypaddle.data.digits import Split, digits

__all__ = ["Split", "digits"]
