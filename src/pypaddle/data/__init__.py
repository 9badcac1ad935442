"""Data sets that need no download, and loaders for the data a user has on disk."""

from pypaddle.data.digits import Split, digits
from pypaddle.data.files import load_idx, load_npz, load_plain_pickle
from pypaddle.data.functions import LANDSCAPES, FunctionDataset
from pypaddle.data.mnist1d import MNIST1D_DEFAULTS, mnist1d
from pypaddle.data.vision import (
    VISION_DATASETS,
    cifar10,
    cifar100,
    fashion_mnist,
    load_vision,
    mnist,
)

__all__ = [
    "LANDSCAPES",
    "MNIST1D_DEFAULTS",
    "VISION_DATASETS",
    "FunctionDataset",
    "Split",
    "cifar10",
    "cifar100",
    "digits",
    "fashion_mnist",
    "load_idx",
    "load_npz",
    "load_plain_pickle",
    "load_vision",
    "mnist",
    "mnist1d",
]
