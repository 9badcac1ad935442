"""scikit-learn's bundled handwritten digits as a seeded train/test split of tensors."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from pypaddle.errors import ConfigError

__all__ = ["Split", "digits"]


class Split(NamedTuple):
    """A train/test split of features and integer class labels.

    Unpacks like a tuple: ``x_train, y_train, x_test, y_test = split``.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    @property
    def num_features(self) -> int:
        """Number of features per sample (all dimensions but the first, multiplied)."""
        return int(self.x_train[:1].numel())

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one sample, e.g. ``(64,)`` or ``(1, 28, 28)``."""
        return tuple(self.x_train.shape[1:])

    @property
    def is_classification(self) -> bool:
        """True if the targets are integer class labels, False for float regression targets."""
        return not self.y_train.is_floating_point()

    @property
    def num_classes(self) -> int:
        """Number of classes (the largest label plus one)."""
        return int(max(self.y_train.max(), self.y_test.max())) + 1

    @property
    def num_outputs(self) -> int:
        """Outputs a model needs: the classes, or the width of the regression targets."""
        if self.is_classification:
            return self.num_classes
        return int(self.y_train[:1].numel())


def digits(*, test_fraction: float = 0.25, seed: int = 0) -> Split:
    """The 8x8 handwritten digits (1797 samples, 64 features, 10 classes), split for training.

    The data ships with scikit-learn, so nothing is downloaded. Pixel intensities (0 to 16)
    are scaled to ``[0, 1]`` as ``float32``; labels are ``int64``. The split is stratified
    by class and fixed by ``seed``: the same seed always gives the same tensors.

    Parameters
    ----------
    test_fraction : float
        Fraction of the samples held out for testing, in ``(0, 1)``.
    seed : int
        Seed of the shuffle before splitting.

    Returns
    -------
    Split
        ``(x_train, y_train, x_test, y_test)``: features of shape ``[n, 64]`` and labels of
        shape ``[n]``.

    Raises
    ------
    ConfigError
        If ``test_fraction`` is not in ``(0, 1)``, or scikit-learn is not installed
        (install it with ``pip install 'pypaddle[data]'``).

    Examples
    --------
    >>> from pypaddle.data import digits
    >>> x_train, y_train, x_test, y_test = digits(test_fraction=0.25, seed=0)
    >>> x_train.shape, x_test.shape, y_train.dtype
    (torch.Size([1347, 64]), torch.Size([450, 64]), torch.int64)
    >>> float(x_train.min()), float(x_train.max())
    (0.0, 1.0)
    """
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float)):
        raise ConfigError(f"test_fraction must be a float in (0, 1), got {test_fraction!r}")
    if not 0.0 < test_fraction < 1.0:
        raise ConfigError(f"test_fraction must be in (0, 1), got {test_fraction}")
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError:
        raise ConfigError(
            "pypaddle.data.digits needs scikit-learn, which is not installed; "
            "install it with: pip install 'pypaddle[data]'"
        ) from None

    features, labels = load_digits(return_X_y=True)
    features = (features / 16.0).astype(np.float32)
    labels = labels.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        features, labels, test_size=test_fraction, random_state=seed, stratify=labels
    )
    return Split(
        torch.from_numpy(np.ascontiguousarray(x_train)),
        torch.from_numpy(np.ascontiguousarray(y_train)),
        torch.from_numpy(np.ascontiguousarray(x_test)),
        torch.from_numpy(np.ascontiguousarray(y_test)),
    )
