import gzip

import numpy as np
import pytest
import torch

from pypaddle.data import LANDSCAPES, FunctionDataset, load_idx, load_npz
from pypaddle.errors import ConfigError


def write_idx(path, array, type_code, *, compress=False):
    header = bytes([0, 0, type_code, array.ndim]) + np.array(array.shape, ">i4").tobytes()
    raw = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


class TestLoadIdx:
    @pytest.mark.parametrize(
        ("dtype", "code"),
        [
            (np.uint8, 0x08),
            (np.int8, 0x09),
            (np.int16, 0x0B),
            (np.int32, 0x0C),
            (np.float32, 0x0D),
            (np.float64, 0x0E),
        ],
    )
    def test_every_type_round_trips(self, tmp_path, dtype, code):
        array = (np.arange(60).reshape(3, 4, 5) - 7).astype(dtype)
        tensor = load_idx(write_idx(tmp_path / "data-idx", array, code))
        assert tensor.shape == (3, 4, 5)
        np.testing.assert_array_equal(tensor.numpy(), array)
        assert tensor.numpy().dtype == np.dtype(dtype)

    def test_mnist_like_labels_and_gzip(self, tmp_path):
        labels = np.array([5, 0, 4, 1, 9], np.uint8)
        tensor = load_idx(write_idx(tmp_path / "labels.gz", labels, 0x08, compress=True))
        assert tensor.tolist() == [5, 0, 4, 1, 9]

    def test_missing_file(self, tmp_path):
        with pytest.raises(ConfigError, match="does not exist"):
            load_idx(tmp_path / "nope")

    def test_not_idx(self, tmp_path):
        path = tmp_path / "text"
        path.write_bytes(b"hello world")
        with pytest.raises(ConfigError, match="not an IDX file"):
            load_idx(path)

    def test_truncated_data(self, tmp_path):
        path = write_idx(tmp_path / "x", np.zeros((4, 4), np.uint8), 0x08)
        path.write_bytes(path.read_bytes()[:-3])
        with pytest.raises(ConfigError, match=r"13 data bytes.*shape \(4, 4\)"):
            load_idx(path)


class TestLoadNpz:
    def test_classification_and_regression(self, tmp_path):
        np.savez(
            tmp_path / "c.npz",
            x_train=np.ones((3, 2)),
            y_train=np.array([0, 2, 1]),
            x_test=np.zeros((1, 2)),
            y_test=np.array([1]),
        )
        split = load_npz(tmp_path / "c.npz")
        assert split.is_classification
        assert split.num_outputs == 3
        np.savez(
            tmp_path / "r.npz",
            a=np.ones((3, 2)),
            b=np.ones((3, 4)),
            c=np.ones((1, 2)),
            d=np.ones((1, 4)),
        )
        split = load_npz(tmp_path / "r.npz", keys=("a", "b", "c", "d"))
        assert not split.is_classification
        assert split.num_outputs == 4
        assert split.y_train.dtype == torch.float32

    def test_missing_key_names_what_is_there(self, tmp_path):
        np.savez(tmp_path / "c.npz", x=np.ones(3))
        with pytest.raises(ConfigError, match=r"no array 'x_train'; it holds \['x'\]"):
            load_npz(tmp_path / "c.npz")


class TestFunctionDataset:
    def test_values_are_the_landscapes(self):
        data = FunctionDataset(["rastrigin", "rosenbrock"], dimension=2, samples=50, seed=1)
        x = data.x.double().numpy()
        expected_rastrigin = 20 + (x**2 - 10 * np.cos(2 * np.pi * x)).sum(1)
        expected_rosenbrock = 100 * (x[:, 1] - x[:, 0] ** 2) ** 2 + (1 - x[:, 0]) ** 2
        np.testing.assert_allclose(data.y[:, 0].numpy(), expected_rastrigin, rtol=1e-5)
        np.testing.assert_allclose(data.y[:, 1].numpy(), expected_rosenbrock, rtol=1e-4)
        assert float(data.x.min()) >= -5
        assert float(data.x.max()) <= 5

    def test_minimum_of_every_landscape(self):
        zero = np.zeros((1, 3))
        assert LANDSCAPES["sphere"](zero)[0] == 0
        assert LANDSCAPES["rastrigin"](zero)[0] == 0
        assert abs(LANDSCAPES["ackley"](zero)[0]) < 1e-12
        assert LANDSCAPES["rosenbrock"](np.ones((1, 3)))[0] == 0

    def test_seeded(self):
        first = FunctionDataset("sine", samples=20, seed=4, noise=0.1)
        second = FunctionDataset("sine", samples=20, seed=4, noise=0.1)
        other = FunctionDataset("sine", samples=20, seed=5, noise=0.1)
        assert torch.equal(first.x, second.x)
        assert torch.equal(first.y, second.y)
        assert not torch.equal(first.x, other.x)

    def test_save_load_exact(self, tmp_path):
        data = FunctionDataset("ackley", dimension=4, samples=30, noise=0.5, seed=2)
        loaded = FunctionDataset.load(data.save(tmp_path / "a.npz"))
        assert torch.equal(loaded.x, data.x)
        assert torch.equal(loaded.y, data.y)
        assert loaded.metadata == data.metadata
        assert loaded.split(seed=1).x_test.shape == (8, 4)

    def test_save_failing_half_way_keeps_the_previous_file(self, tmp_path, monkeypatch):
        path = FunctionDataset("sphere", samples=10, seed=0).save(tmp_path / "a.npz")
        before = path.read_bytes()

        def half(handle, **arrays):
            handle.write(b"PK half an archive")
            raise OSError("disk full")

        monkeypatch.setattr(np, "savez", half)
        with pytest.raises(OSError, match="disk full"):
            FunctionDataset("sphere", samples=20, seed=1).save(path)
        assert path.read_bytes() == before
        assert [p.name for p in tmp_path.iterdir()] == ["a.npz"]

    def test_split_partitions_the_samples(self):
        data = FunctionDataset("sphere", samples=10, seed=0)
        split = data.split(test_fraction=0.3, seed=0)
        assert split.x_train.shape[0] == 7
        assert split.x_test.shape[0] == 3
        rows = {tuple(row) for row in torch.cat([split.x_train, split.x_test]).tolist()}
        assert rows == {tuple(row) for row in data.x.tolist()}

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"function": "cosh"}, "unknown function landscape 'cosh'; allowed: ackley"),
            ({"dimension": 0}, "dimension must be an int >= 1, got 0"),
            ({"low": 1.0, "high": 1.0}, "low < high"),
            ({"noise": -1.0}, "noise"),
        ],
    )
    def test_bad_arguments(self, kwargs, message):
        with pytest.raises(ConfigError, match=message):
            FunctionDataset(**kwargs)

    def test_load_foreign_file(self, tmp_path):
        np.savez(tmp_path / "x.npz", z=np.ones(2))
        with pytest.raises(ConfigError, match="not a FunctionDataset file"):
            FunctionDataset.load(tmp_path / "x.npz")


GOOD_NPZ = {
    "x_train": np.ones((6, 3)),
    "y_train": np.array([0, 1, 2, 0, 1, 2]),
    "x_test": np.ones((2, 3)),
    "y_test": np.array([0, 1]),
}


class TestLoadNpzRefuses:
    """Finding 9: npz data is checked when it is read, with the file and arrays named."""

    @pytest.mark.parametrize(
        ("change", "message"),
        [
            ({"y_train": np.arange(3)}, r"x_train holds 6 samples but y_train 3 labels"),
            ({"y_test": np.array([0, -1])}, r"y_test holds negative class labels"),
            ({"x_train": np.full((6, 3), np.nan)}, r"x_train holds 18 NaN or infinite"),
            ({"y_test": np.array([np.inf, 0.0])}, r"y_test holds 1 NaN or infinite"),
            ({"x_train": np.ones(6)}, r"x_train has shape \(6,\)"),
            ({"x_test": np.ones((2, 3, 1))}, r"train and test samples of one shape"),
            ({"y_train": np.ones((6, 2, 2))}, r"y_train has shape \(6, 2, 2\)"),
            ({"y_test": np.array([True, False])}, r"both hold integer class labels"),
            ({"x_test": np.ones((0, 3)), "y_test": np.zeros(0, int)}, r"x_test holds no"),
            ({"x_train": np.ones((6, 3), dtype=complex)}, r"holds complex128 values"),
            ({"y_train": np.array(["a"] * 6)}, r"holds <U1 values"),
        ],
    )
    def test_bad_arrays(self, tmp_path, change, message):
        np.savez(tmp_path / "d.npz", **{**GOOD_NPZ, **change})
        with pytest.raises(ConfigError, match=r"d\.npz'?: .*" + message):
            load_npz(tmp_path / "d.npz")

    @pytest.mark.parametrize("keys", [("a", "b"), "abcd", None, 3, ("a", "b", "c", 4)])
    def test_bad_keys(self, tmp_path, keys):
        np.savez(tmp_path / "d.npz", **GOOD_NPZ)
        with pytest.raises(ConfigError, match="must name 4 arrays"):
            load_npz(tmp_path / "d.npz", keys=keys)

    @pytest.mark.parametrize("content", [b"", b"PK\x03\x04", b"not a zip", b"\x93NUMPY"])
    def test_not_an_archive(self, tmp_path, content):
        (tmp_path / "d.npz").write_bytes(content)
        with pytest.raises(ConfigError, match=r"d\.npz"):
            load_npz(tmp_path / "d.npz")

    def test_object_arrays_are_not_unpickled(self, tmp_path):
        np.savez(tmp_path / "d.npz", **{**GOOD_NPZ, "x_test": np.array([{}, {}], dtype=object)})
        with pytest.raises(ConfigError, match=r"is not a readable \.npz archive"):
            load_npz(tmp_path / "d.npz")
