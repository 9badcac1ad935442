"""MNIST, Fashion-MNIST, CIFAR-10 and CIFAR-100 read from a local folder in torchvision's layout.

``root`` is the folder torchvision's dataset classes are given: it holds ``MNIST/raw/``,
``FashionMNIST/raw/`` (IDX files, plain or gzip'ed), ``cifar-10-batches-py/`` or
``cifar-100-python/`` (python pickles of plain data, read without running code). Nothing
is downloaded unless asked (``download=True``), which needs torchvision
(``pip install 'pypaddle[vision]'``) and then reads the files it fetched.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pypaddle._core import extras
from pypaddle.data.digits import Split
from pypaddle.data.files import check_split, load_idx, load_plain_pickle
from pypaddle.errors import ConfigError, MissingExtraError

__all__ = [
    "VISION_DATASETS",
    "check_root",
    "cifar10",
    "cifar100",
    "expected_files",
    "fashion_mnist",
    "load_vision",
    "missing_files",
    "mnist",
]


@dataclass(frozen=True)
class _Layout:
    title: str
    folder: str  # under root, as torchvision writes it
    train: tuple[str, ...]
    test: tuple[str, ...]
    torchvision: str  # the class of torchvision.datasets that downloads it
    idx: bool  # IDX files (may be gzip'ed), else python pickles


_IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
_IDX_TEST_FILES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

_LAYOUTS: dict[str, _Layout] = {
    "mnist": _Layout("MNIST", "MNIST/raw", _IDX_FILES, _IDX_TEST_FILES, "MNIST", True),
    "fashion_mnist": _Layout(
        "Fashion-MNIST", "FashionMNIST/raw", _IDX_FILES, _IDX_TEST_FILES, "FashionMNIST", True
    ),
    "cifar10": _Layout(
        "CIFAR-10",
        "cifar-10-batches-py",
        tuple(f"data_batch_{index}" for index in range(1, 6)),
        ("test_batch",),
        "CIFAR10",
        False,
    ),
    "cifar100": _Layout("CIFAR-100", "cifar-100-python", ("train",), ("test",), "CIFAR100", False),
}

VISION_DATASETS: tuple[str, ...] = tuple(_LAYOUTS)
"""The data sets :func:`load_vision` reads: ``mnist``, ``fashion_mnist``, ``cifar10``,
``cifar100``."""

_CIFAR_SIDE, _CIFAR_CHANNELS = 32, 3
_LABELS = {"fine": "fine_labels", "coarse": "coarse_labels"}
_CLASSES = {"mnist": 10, "fashion_mnist": 10, "cifar10": 10, "fine": 100, "coarse": 20}


def _layout(dataset: Any) -> _Layout:
    if not isinstance(dataset, str) or dataset not in _LAYOUTS:
        raise ConfigError(
            f"dataset = {dataset!r} is not one of {', '.join(map(repr, VISION_DATASETS))}"
        )
    return _LAYOUTS[dataset]


def _root(root: Any) -> Path:
    if root is None:
        raise ConfigError(
            "root is not set; give the folder that holds the data set in torchvision's layout "
            "(the folder torchvision's dataset classes are given), or the folder to download "
            "it into with download = true"
        )
    if not isinstance(root, (str, Path)):
        raise ConfigError(f"root must be a folder path (a string), got {root!r}")
    return Path(root)


def expected_files(dataset: str, root: str | Path) -> list[Path]:
    """The files :func:`load_vision` reads for ``dataset`` under ``root``, train files first.

    IDX files may also be gzip'ed (the same name with ``.gz``).

    Examples
    --------
    >>> [path.as_posix() for path in expected_files("cifar100", "data")]
    ['data/cifar-100-python/train', 'data/cifar-100-python/test']
    """
    layout, folder = _layout(dataset), _root(root) / _layout(dataset).folder
    return [folder / name for name in layout.train + layout.test]


def _present(path: Path, idx: bool) -> Path | None:
    """The file to read for an expected ``path``: the plain one, else its ``.gz``."""
    if path.is_file():
        return path
    gzipped = path.with_name(path.name + ".gz")
    return gzipped if idx and gzipped.is_file() else None


def missing_files(dataset: str, root: str | Path) -> list[Path]:
    """The :func:`expected_files` of ``dataset`` that are not under ``root`` (nor gzip'ed).

    Examples
    --------
    >>> [path.name for path in missing_files("mnist", "/nonexistent")]  # doctest: +ELLIPSIS
    ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', ...]
    """
    idx = _layout(dataset).idx
    return [path for path in expected_files(dataset, root) if _present(path, idx) is None]


def _missing_message(dataset: str, root: Path, missing: list[Path]) -> str:
    layout = _layout(dataset)
    gz = " (each plain or .gz)" if layout.idx else ""
    names = ", ".join(f"{layout.folder}/{name}" for name in layout.train + layout.test)
    lacking = ", ".join(path.name for path in missing)
    where = "does not exist" if not root.is_dir() else f"lacks {lacking}"
    return (
        f"the {layout.title} files are not in root = {str(root)!r}: it {where}; expected "
        f"{names}{gz} under it, as torchvision writes them. Give root = the folder that "
        f"holds {layout.folder.split('/')[0]}/, or set download = true to fetch them into "
        "root with torchvision (pip install 'pypaddle[vision]')"
    )


def check_root(dataset: str, root: str | Path | None, *, download: bool = False) -> None:
    """Refuse a ``root`` without the files of ``dataset``, unless they are to be downloaded.

    Raises
    ------
    ConfigError
        Naming the root, the files expected, and what to do (the folder that holds them,
        or ``download = true``).
    """
    path = _root(root)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"root = {str(path)!r} is a file; give the folder that holds the data")
    if download:
        return
    missing = missing_files(dataset, path)
    if missing:
        raise ConfigError(_missing_message(dataset, path, missing))


def _download(dataset: str, root: Path) -> None:
    layout = _layout(dataset)
    extras.require("vision", what=f"download = true ({layout.title})")
    try:
        import torchvision.datasets
    except Exception as error:  # installed, but built for another torch
        raise MissingExtraError(
            f"download = true fetches {layout.title} with torchvision, which cannot be "
            f"imported ({type(error).__name__}: {error}); install it with: pip install "
            f"'pypaddle[vision]', or put the files ({layout.folder}/...) under root = "
            f"{str(root)!r} yourself and set download = false"
        ) from None
    fetch = getattr(torchvision.datasets, layout.torchvision)
    root.mkdir(parents=True, exist_ok=True)
    for train in (True, False):
        try:
            fetch(str(root), train=train, download=True)
        except (OSError, RuntimeError, ValueError) as error:
            raise ConfigError(
                f"torchvision could not download {layout.title} into {str(root)!r}: {error}; "
                "check the connection, or put the files there yourself"
            ) from None


def _idx_part(dataset: str, images_path: Path, labels_path: Path) -> tuple[torch.Tensor, ...]:
    images, labels = load_idx(images_path), load_idx(labels_path)
    if images.dim() != 3 or images.dtype != torch.uint8:
        raise ConfigError(
            f"{str(images_path)!r} holds {images.dtype} of shape {tuple(images.shape)}; "
            f"{_layout(dataset).title} images are bytes of shape [samples, height, width]"
        )
    if labels.dim() != 1 or labels.dtype != torch.uint8:
        raise ConfigError(
            f"{str(labels_path)!r} holds {labels.dtype} of shape {tuple(labels.shape)}; "
            "labels are bytes of shape [samples]"
        )
    if images.shape[0] != labels.shape[0]:
        raise ConfigError(
            f"{str(images_path)!r} holds {images.shape[0]} images but {str(labels_path)!r} "
            f"{labels.shape[0]} labels; give the files of one data set"
        )
    return images.unsqueeze(1), labels.long()


def _entry(batch: Mapping[Any, Any], key: str) -> Any:
    for candidate in (key, key.encode("latin1")):
        if candidate in batch:
            return batch[candidate]
    return None


def _cifar_part(path: Path, label_key: str) -> tuple[torch.Tensor, ...]:
    batch = load_plain_pickle(path)
    data = _entry(batch, "data") if isinstance(batch, Mapping) else None
    labels = _entry(batch, label_key) if isinstance(batch, Mapping) else None
    features = _CIFAR_CHANNELS * _CIFAR_SIDE * _CIFAR_SIDE
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != features
    ):
        raise ConfigError(
            f"{str(path)!r} is not a CIFAR batch: it must hold 'data', bytes of shape "
            f"[samples, {features}], and {label_key!r}; give the data set's original file"
        )
    try:
        label_array = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        label_array = np.zeros(0, dtype=np.int64)
    if label_array.shape != (data.shape[0],):
        raise ConfigError(
            f"{str(path)!r} holds {data.shape[0]} images but its {label_key!r} is not a list "
            "of as many int labels; give the data set's original file"
        )
    images = torch.from_numpy(data.reshape(-1, _CIFAR_CHANNELS, _CIFAR_SIDE, _CIFAR_SIDE).copy())
    return images, torch.from_numpy(label_array)


def load_vision(
    dataset: str,
    root: str | Path | None,
    *,
    download: bool = False,
    labels: str = "fine",
) -> Split:
    """A torchvision data set read from ``root``: images ``float32`` in [0, 1], ``int64`` labels.

    ``dataset`` is one of :data:`VISION_DATASETS`. Images have shape ``[samples, 1, 28,
    28]`` (MNIST, Fashion-MNIST) or ``[samples, 3, 32, 32]`` (CIFAR), in the files' order;
    the official train and test parts are kept. ``labels`` chooses CIFAR-100's 100
    ``"fine"`` or 20 ``"coarse"`` classes. ``download=True`` first fetches missing files
    into ``root`` with torchvision's dataset class (the only path that touches the
    network); otherwise a root without the files is refused, naming them.

    Raises
    ------
    ConfigError
        If ``root`` lacks the files (naming the files and what to do), a file is not of
        its format, a pickle would run code, or labels are out of range.
    MissingExtraError
        If ``download=True`` needs torchvision and it is missing (naming the extra).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     load_vision("mnist", folder)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pypaddle.errors.ConfigError: the MNIST files are not in root = '...': it lacks train-images-idx3-ubyte, ...
    """  # noqa: E501
    layout = _layout(dataset)
    if not isinstance(download, (bool, np.bool_)):
        raise ConfigError(f"download must be True or False, got {download!r}")
    if labels not in _LABELS:
        raise ConfigError(f"labels = {labels!r} must be 'fine' (100 classes) or 'coarse' (20)")
    path = _root(root)
    check_root(dataset, path, download=bool(download))
    if download and missing_files(dataset, path):
        _download(dataset, path)
        check_root(dataset, path)
    files = [_present(file, layout.idx) or file for file in expected_files(dataset, path)]
    parts: list[tuple[torch.Tensor, ...]] = []
    if layout.idx:
        parts = [_idx_part(dataset, files[0], files[1]), _idx_part(dataset, files[2], files[3])]
    else:
        label_key = _LABELS[labels] if dataset == "cifar100" else "labels"
        batches = [_cifar_part(file, label_key) for file in files]
        train, test = batches[: len(layout.train)], batches[len(layout.train) :]
        parts = [
            (torch.cat([b[0] for b in train]), torch.cat([b[1] for b in train])),
            (torch.cat([b[0] for b in test]), torch.cat([b[1] for b in test])),
        ]
    classes = _CLASSES[labels if dataset == "cifar100" else dataset]
    for (_, part_labels), which in zip(parts, ("train", "test")):
        if (
            part_labels.numel()
            and not 0 <= int(part_labels.min()) <= int(part_labels.max()) < classes
        ):
            raise ConfigError(
                f"the {layout.title} {which} labels in {str(path)!r} range over "
                f"[{int(part_labels.min())}, {int(part_labels.max())}], but {layout.title} "
                f"has {classes} classes; give the data set's original files"
            )
    split = Split(
        parts[0][0].float().div_(255.0), parts[0][1], parts[1][0].float().div_(255.0), parts[1][1]
    )
    return check_split(split, source=f"{layout.title} in {str(path)!r}")


def mnist(root: str | Path, *, download: bool = False) -> Split:
    """MNIST from ``root/MNIST/raw/`` (torchvision's layout): 60000 + 10000 images 1x28x28.

    See :func:`load_vision`.
    """
    return load_vision("mnist", root, download=download)


def fashion_mnist(root: str | Path, *, download: bool = False) -> Split:
    """Fashion-MNIST from ``root/FashionMNIST/raw/``: 60000 + 10000 images 1x28x28.

    See :func:`load_vision`.
    """
    return load_vision("fashion_mnist", root, download=download)


def cifar10(root: str | Path, *, download: bool = False) -> Split:
    """CIFAR-10 from ``root/cifar-10-batches-py/``: 50000 + 10000 images 3x32x32.

    See :func:`load_vision`.
    """
    return load_vision("cifar10", root, download=download)


def cifar100(root: str | Path, *, download: bool = False, labels: str = "fine") -> Split:
    """CIFAR-100 from ``root/cifar-100-python/``: 50000 + 10000 images 3x32x32, 100 fine or
    20 coarse classes.

    See :func:`load_vision`.
    """
    return load_vision("cifar100", root, download=download, labels=labels)
