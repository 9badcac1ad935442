"""Data sets that need no download, and loaders for the data a user has on disk."""

from pypaddle.data.digits import Split, digits
from pypaddle.data.files import load_idx, load_npz
from pypaddle.data.functions import LANDSCAPES, FunctionDataset

__all__ = ["LANDSCAPES", "FunctionDataset", "Split", "digits", "load_idx", "load_npz"]
