"""The data sets an experiment config can name in its ``[data]`` table.

Each builder takes its options and the experiment's seed and returns a
:class:`~pypaddle.data.Split`. Relative file names are resolved against the config file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pypaddle.data import LANDSCAPES, FunctionDataset, Split, digits, load_idx, load_npz
from pypaddle.data.files import check_split
from pypaddle.errors import ConfigError
from pypaddle.experiments.options import option
from pypaddle.experiments.registry import DATA

__all__ = ["DigitsOptions", "FunctionOptions", "IdxOptions", "NpzOptions"]

_TEST_FRACTION: dict[str, Any] = {
    "above": 0.0,
    "below": 1.0,
    "help": "fraction of the samples held out",
}


@dataclass(frozen=True)
class DigitsOptions:
    test_fraction: float = option(0.25, **_TEST_FRACTION)
    image: bool = option(False, help="samples as 1x8x8 images (for cnn and cells models)")


@DATA.add("digits", DigitsOptions, description="scikit-learn's bundled 8x8 digits, 10 classes")
def _digits(options: DigitsOptions, *, seed: int) -> Split:
    split = digits(test_fraction=options.test_fraction, seed=seed)
    if options.image:
        split = split._replace(
            x_train=split.x_train.reshape(-1, 1, 8, 8), x_test=split.x_test.reshape(-1, 1, 8, 8)
        )
    return split


@dataclass(frozen=True)
class FunctionOptions:
    function: str | list[str] = option("sphere", choices=tuple(LANDSCAPES))
    dimension: int = option(2, minimum=1)
    samples: int = option(1000, minimum=2)
    low: float = -5.0
    high: float = 5.0
    noise: float = option(0.0, minimum=0.0)
    test_fraction: float = option(0.25, **_TEST_FRACTION)
    path: str | None = option(None, path=True, help="a FunctionDataset.save file to use instead")


@DATA.add("function", FunctionOptions, description="a landscape R^n -> R^m, regression")
def _function(options: FunctionOptions, *, seed: int) -> Split:
    if options.path is not None:
        dataset = FunctionDataset.load(options.path)
    else:
        dataset = FunctionDataset(
            options.function,
            dimension=options.dimension,
            samples=options.samples,
            low=options.low,
            high=options.high,
            noise=options.noise,
            seed=seed,
        )
    return dataset.split(test_fraction=options.test_fraction, seed=seed)


@dataclass(frozen=True)
class IdxOptions:
    train_images: str = option(path=True)
    train_labels: str = option(path=True)
    test_images: str = option(path=True)
    test_labels: str = option(path=True)
    scale: float = option(255.0, above=0.0, help="pixel values are divided by this")


_IDX_NAMES = ("train_images", "train_labels", "test_images", "test_labels")


@DATA.add("idx", IdxOptions, description="IDX files (MNIST and relatives) the user has")
def _idx(options: IdxOptions, *, seed: int) -> Split:
    images = [load_idx(options.train_images), load_idx(options.test_images)]
    labels = [load_idx(options.train_labels), load_idx(options.test_labels)]
    for image, label, which in zip(images, labels, ("train", "test")):
        if image.shape[0] != label.shape[0]:
            raise ConfigError(
                f"{which}_images holds {image.shape[0]} samples but {which}_labels "
                f"{label.shape[0]}; give matching files"
            )
    images = [image.float() / options.scale for image in images]
    if images[0].dim() == 3:  # [N, H, W] -> [N, 1, H, W], the shape conv nets expect
        images = [image.unsqueeze(1) for image in images]
    split = Split(images[0], labels[0].long(), images[1], labels[1].long())
    return check_split(split, source="the IDX files", names=_IDX_NAMES)


@dataclass(frozen=True)
class NpzOptions:
    path: str = option(path=True)
    keys: list[str] = option(["x_train", "y_train", "x_test", "y_test"])
    scale: float = option(1.0, above=0.0, help="features are divided by this")


@DATA.add("npz", NpzOptions, description="a NumPy .npz archive with a train/test split")
def _npz(options: NpzOptions, *, seed: int) -> Split:
    if len(options.keys) != 4:
        raise ConfigError(
            f"keys = {options.keys!r} must name 4 arrays: x_train, y_train, x_test, y_test"
        )
    split = load_npz(options.path, keys=tuple(options.keys))
    return split._replace(
        x_train=split.x_train / options.scale, x_test=split.x_test / options.scale
    )
