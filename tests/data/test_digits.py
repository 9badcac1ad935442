import math
import sys

import numpy as np
import pytest
import torch

from pypaddle.data import Split, digits
from pypaddle.errors import ConfigError, PaddleError

SAMPLES = 1797


class TestDigits:
    @pytest.mark.slow
    def test_shapes_and_dtypes(self):
        split = digits()
        assert isinstance(split, Split)
        assert split.x_train.shape == (1347, 64)
        assert split.x_test.shape == (450, 64)
        assert split.y_train.shape == (1347,)
        assert split.y_test.shape == (450,)
        assert split.x_train.dtype == split.x_test.dtype == torch.float32
        assert split.y_train.dtype == split.y_test.dtype == torch.int64
        assert (split.num_features, split.num_classes) == (64, 10)

    def test_features_are_scaled_to_unit_interval(self):
        split = digits()
        features = torch.cat([split.x_train, split.x_test])
        assert float(features.min()) == 0.0
        assert float(features.max()) == 1.0
        # The raw pixels are integers 0..16, so every scaled value is a multiple of 1/16.
        assert torch.equal(features * 16, (features * 16).round())

    def test_split_is_a_stratified_partition_of_the_data(self):
        from sklearn.datasets import load_digits

        features, labels = load_digits(return_X_y=True)
        split = digits(seed=3)
        rows = torch.cat(
            [
                torch.cat([split.x_train, split.y_train[:, None].float()], 1),
                torch.cat([split.x_test, split.y_test[:, None].float()], 1),
            ]
        ).numpy()
        expected = np.hstack([features / 16.0, labels[:, None]]).astype(np.float32)
        assert rows.shape == (SAMPLES, 65)
        unique_rows, counts = np.unique(rows, axis=0, return_counts=True)
        expected_rows, expected_counts = np.unique(expected, axis=0, return_counts=True)
        np.testing.assert_array_equal(unique_rows, expected_rows)
        np.testing.assert_array_equal(counts, expected_counts)
        # Stratified: each class keeps its share of the test set to within one sample.
        share = np.bincount(labels, minlength=10) * 450 / SAMPLES
        test_counts = np.bincount(split.y_test.numpy(), minlength=10)
        assert np.all(np.abs(test_counts - share) <= 1)

    def test_same_seed_same_split(self):
        first, second = digits(seed=7), digits(seed=7)
        for a, b in zip(first, second):
            assert torch.equal(a, b)

    def test_other_seed_other_split(self):
        assert not torch.equal(digits(seed=0).y_train, digits(seed=1).y_train)

    def test_test_fraction(self):
        split = digits(test_fraction=0.5)
        assert split.x_test.shape[0] == math.ceil(SAMPLES * 0.5)
        assert split.x_train.shape[0] + split.x_test.shape[0] == SAMPLES

    @pytest.mark.parametrize("test_fraction", [0, 1, 1.5, -0.1, "0.2", True, None])
    def test_bad_test_fraction(self, test_fraction):
        with pytest.raises(ConfigError, match="test_fraction") as error:
            digits(test_fraction=test_fraction)
        assert isinstance(error.value, ValueError)

    def test_missing_scikit_learn_says_what_to_install(self, monkeypatch):
        monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
        with pytest.raises(PaddleError, match=r"pypaddle\[data\]"):
            digits()
