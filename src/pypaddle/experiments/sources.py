"""The data sets an experiment config can name in its ``[data]`` table.

Each builder takes its options and the experiment's seed and returns a
:class:`~pypaddle.data.Split`. Relative file names are resolved against the config file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from pypaddle.data import (
    LANDSCAPES,
    MNIST1D_DEFAULTS,
    FunctionDataset,
    Split,
    digits,
    load_idx,
    load_npz,
    load_vision,
    mnist1d,
)
from pypaddle.data.files import check_split
from pypaddle.data.vision import check_root
from pypaddle.errors import ConfigError
from pypaddle.experiments.options import option
from pypaddle.experiments.registry import DATA

__all__ = [
    "Cifar10Options",
    "Cifar100Options",
    "DigitsOptions",
    "FashionMnistOptions",
    "FunctionOptions",
    "IdxOptions",
    "Mnist1dOptions",
    "MnistOptions",
    "NpzOptions",
    "VisionOptions",
]

_TEST_FRACTION: dict[str, Any] = {
    "above": 0.0,
    "below": 1.0,
    "help": "fraction of the samples held out",
}


@dataclass(frozen=True)
class DigitsOptions:
    """Options of ``data.name = "digits"``: scikit-learn's bundled 8x8 digits."""

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
    """Options of ``data.name = "function"``: a function landscape to regress."""

    function: str | list[str] = option(
        "sphere",
        choices=tuple(LANDSCAPES),
        help="the landscape to regress, or a list of them (one output each)",
    )
    dimension: int = option(2, minimum=1, help="the number of inputs n")
    samples: int = option(1000, minimum=2, help="samples drawn, test ones included")
    low: float = option(-5.0, help="lower end of the box [low, high]^n the inputs are drawn from")
    high: float = option(5.0, help="upper end of that box (above low)")
    noise: float = option(
        0.0, minimum=0.0, help="standard deviation of Gaussian noise added to the targets"
    )
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


_IDX_HELP = " (gzipped or not; relative to the config file)"


@dataclass(frozen=True)
class IdxOptions:
    """Options of ``data.name = "idx"``: IDX image and label files (MNIST and relatives)."""

    train_images: str = option(path=True, help="IDX file of the training images" + _IDX_HELP)
    train_labels: str = option(path=True, help="IDX file of the training labels" + _IDX_HELP)
    test_images: str = option(path=True, help="IDX file of the test images" + _IDX_HELP)
    test_labels: str = option(path=True, help="IDX file of the test labels" + _IDX_HELP)
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
    """Options of ``data.name = "npz"``: arrays of a NumPy ``.npz`` archive."""

    path: str = option(path=True, help="the .npz archive (relative to the config file)")
    keys: list[str] = option(
        ["x_train", "y_train", "x_test", "y_test"],
        help="the archive's names of the train inputs, train labels, test inputs, test labels",
    )
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


_DEFAULTS = MNIST1D_DEFAULTS


@dataclass(frozen=True)
class Mnist1dOptions:
    """MNIST-1D's arguments, named as the ``mnist1d`` package names them; the paper's
    defaults. ``seed`` fixes the data set (42: the published one), not the experiment."""

    num_samples: int = option(
        _DEFAULTS["num_samples"],
        minimum=10,
        help="samples in all, num_samples // 10 of each of the 10 classes",
    )
    train_split: float = option(
        _DEFAULTS["train_split"],
        above=0.0,
        below=1.0,
        help="fraction of the shuffled samples that train; the rest test",
    )
    template_len: int = option(
        _DEFAULTS["template_len"],
        minimum=1,
        help="points a digit template is stretched to (plus the padding's high end)",
    )
    padding: list[int] = option(
        list(_DEFAULTS["padding"]),
        minimum=0,
        help="[low, high]: each template gets a random number of zeros in this range appended",
    )
    scale_coeff: float = option(
        _DEFAULTS["scale_coeff"],
        minimum=0.0,
        below=2.0,
        help="random amplitude scaling: a signal is multiplied by 1 + scale_coeff * (u - 0.5), "
        "u uniform in [0, 1)",
    )
    max_translation: int = option(
        _DEFAULTS["max_translation"],
        minimum=1,
        help="a signal is shifted circularly by a random 0 to max_translation - 1 points",
    )
    corr_noise_scale: float = option(
        _DEFAULTS["corr_noise_scale"],
        minimum=0.0,
        help="scale of the smoothed (correlated) Gaussian noise that fills a signal's zeros",
    )
    iid_noise_scale: float = option(
        _DEFAULTS["iid_noise_scale"],
        minimum=0.0,
        help="standard deviation of independent Gaussian noise added to every point",
    )
    shear_scale: float = option(
        _DEFAULTS["shear_scale"],
        minimum=0.0,
        help="a random linear trend of slope in [-shear_scale/2, shear_scale/2) is subtracted",
    )
    shuffle_seq: bool = option(
        _DEFAULTS["shuffle_seq"], help="permute the time steps (the same way in every sample)"
    )
    final_seq_length: int = option(
        _DEFAULTS["final_seq_length"],
        minimum=2,
        help="points of each signal after resampling: the number of features",
    )
    seed: int = option(
        _DEFAULTS["seed"],
        minimum=0,
        maximum=2**32 - 1,
        help="seed of the data set (42: the published one), not the experiment's",
    )

    def check(self, path: str) -> None:
        """Check the padding pair when the config is loaded."""
        if len(self.padding) != 2 or self.padding[0] > self.padding[1]:
            raise ConfigError(
                f"{path}.padding = {self.padding!r} must be [low, high] with low <= high"
            )


@DATA.add(
    "mnist1d",
    Mnist1dOptions,
    description="MNIST-1D (Greydanus & Kobak), generated offline: 40 features, 10 classes",
)
def _mnist1d(options: Mnist1dOptions, *, seed: int) -> Split:
    return mnist1d(
        num_samples=options.num_samples,
        train_split=options.train_split,
        template_len=options.template_len,
        padding=options.padding,
        scale_coeff=options.scale_coeff,
        max_translation=options.max_translation,
        corr_noise_scale=options.corr_noise_scale,
        iid_noise_scale=options.iid_noise_scale,
        shear_scale=options.shear_scale,
        shuffle_seq=options.shuffle_seq,
        final_seq_length=options.final_seq_length,
        seed=options.seed,
    )


_ROOT_HELP = "the folder holding the files in torchvision's layout (its root argument)"


def _first(split: Split, train: int | None, test: int | None) -> Split:
    """The first ``train`` / ``test`` samples of each part (None: all)."""
    return Split(
        split.x_train[:train], split.y_train[:train], split.x_test[:test], split.y_test[:test]
    )


@dataclass(frozen=True)
class VisionOptions:
    """The options of a torchvision data set read from ``root``; a subclass per data set."""

    dataset: ClassVar[str] = "mnist"
    root: str | None = option(None, path=True, help=_ROOT_HELP)
    download: bool = option(False, help="fetch missing files into root with torchvision")
    train_samples: int | None = option(None, minimum=1, help="use the first N (default: all)")
    test_samples: int | None = option(None, minimum=1, help="use the first N (default: all)")

    def check(self, path: str) -> None:
        """Refuse a root without the data set's files when the config is loaded."""
        try:
            check_root(self.dataset, self.root, download=self.download)
        except ConfigError as error:
            raise ConfigError(f"{path}: {error}") from None


@dataclass(frozen=True)
class MnistOptions(VisionOptions):
    """Options of ``data.name = "mnist"``: MNIST in torchvision's layout under ``root``."""

    dataset: ClassVar[str] = "mnist"


@dataclass(frozen=True)
class FashionMnistOptions(VisionOptions):
    """Options of ``data.name = "fashion_mnist"``: Fashion-MNIST under ``root``."""

    dataset: ClassVar[str] = "fashion_mnist"


@dataclass(frozen=True)
class Cifar10Options(VisionOptions):
    """Options of ``data.name = "cifar10"``: CIFAR-10 under ``root``."""

    dataset: ClassVar[str] = "cifar10"


@dataclass(frozen=True)
class Cifar100Options(VisionOptions):
    """Options of ``data.name = "cifar100"``: CIFAR-100 under ``root``."""

    dataset: ClassVar[str] = "cifar100"
    labels: str = option("fine", choices=("fine", "coarse"), help="100 fine or 20 coarse classes")


def _vision(options: VisionOptions, *, seed: int) -> Split:
    labels = options.labels if isinstance(options, Cifar100Options) else "fine"
    split = load_vision(options.dataset, options.root, download=options.download, labels=labels)
    return _first(split, options.train_samples, options.test_samples)


DATA.add("mnist", MnistOptions, description="MNIST from data.root (torchvision's layout)")(_vision)
DATA.add("fashion_mnist", FashionMnistOptions, description="Fashion-MNIST from data.root")(_vision)
DATA.add("cifar10", Cifar10Options, description="CIFAR-10 from data.root, 3x32x32")(_vision)
DATA.add("cifar100", Cifar100Options, description="CIFAR-100 from data.root, 3x32x32")(_vision)
