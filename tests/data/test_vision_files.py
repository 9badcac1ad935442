"""MNIST, Fashion-MNIST, CIFAR-10/100 read from a root in torchvision's layout, on small files
the tests write in those formats; pickles that would run code are refused."""

from __future__ import annotations

import builtins
import collections
import gzip
import importlib.machinery
import os
import pickle
import re
import struct
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from pypaddle.data import VISION_DATASETS, cifar10, cifar100, fashion_mnist, load_vision, mnist
from pypaddle.data.files import load_plain_pickle
from pypaddle.data.vision import expected_files, missing_files
from pypaddle.errors import ConfigError, MissingExtraError
from pypaddle.experiments import load_config, parse_config, prepare, run_experiment

IDX_NAMES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
RECONSTRUCT = np.zeros(1).__reduce__()[0]


def write_idx(path: Path, array: np.ndarray, *, gz: bool) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, dtype=">i4").tobytes()
    raw = header + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.with_name(path.name + ".gz") if gz else path).write_bytes(
        gzip.compress(raw) if gz else raw
    )


def make_idx_root(root: Path, folder: str, *, gz: bool, train: int = 5, test: int = 3) -> dict:
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (train, 28, 28), dtype=np.uint8),
        "y_train": np.array([9, *range(train - 1)], dtype=np.uint8) % 10,
        "x_test": rng.integers(0, 256, (test, 28, 28), dtype=np.uint8),
        "y_test": np.arange(test, dtype=np.uint8),
    }
    for name, key in zip(IDX_NAMES, ("x_train", "y_train", "x_test", "y_test")):
        write_idx(root / folder / "raw" / name, arrays[key], gz=gz)
    return arrays


class Python2Pickler(pickle._Pickler):
    """Writes a pickle as CIFAR's files were written by Python 2: bytes as Python 2 strings,
    numpy's array reconstruction under its numpy 1 module name."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_bytes(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_bytes

    def save_global(self, obj: object, name: str | None = None) -> None:
        if obj is RECONSTRUCT:
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
            self.memoize(obj)
            return
        super().save_global(obj, name)


def python2_pickle(obj: object) -> bytes:
    import io

    buffer = io.BytesIO()
    Python2Pickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue()


def cifar_batch(samples: int, labels: dict[bytes, list[int]], seed: int) -> dict[bytes, object]:
    rng = np.random.default_rng(seed)
    return {
        b"batch_label": b"training batch 1 of 5",
        b"data": rng.integers(0, 256, (samples, 3072), dtype=np.uint8),
        b"filenames": [f"image_{index}.png".encode() for index in range(samples)],
        **labels,
    }


def make_cifar10_root(root: Path, *, protocol: int | None = None) -> list[dict]:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    names = [*(f"data_batch_{index}" for index in range(1, 6)), "test_batch"]
    batches = []
    for index, name in enumerate(names):
        batch = cifar_batch(2, {b"labels": [index, 9 - index]}, index)
        raw = python2_pickle(batch) if protocol is None else pickle.dumps(batch, protocol)
        (folder / name).write_bytes(raw)
        batches.append(batch)
    return batches


def make_cifar100_root(root: Path) -> list[dict]:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    batches = []
    for index, name in enumerate(("train", "test")):
        labels = {b"fine_labels": [99, index, 5], b"coarse_labels": [19, 0, index]}
        batch = cifar_batch(3, labels, index)
        (folder / name).write_bytes(python2_pickle(batch))
        batches.append(batch)
    return batches


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


class TestMnist:
    @pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
    @pytest.mark.parametrize(
        ("folder", "read"), [("MNIST", mnist), ("FashionMNIST", fashion_mnist)]
    )
    def test_reads_torchvision_layout(self, tmp_path, gz, folder, read):
        arrays = make_idx_root(tmp_path, folder, gz=gz)
        split = read(tmp_path)
        assert split.x_train.shape == (5, 1, 28, 28)
        assert split.x_test.shape == (3, 1, 28, 28)
        assert split.x_train.dtype == torch.float32
        assert split.y_train.dtype == torch.int64
        assert torch.equal(split.x_train[:, 0], torch.from_numpy(arrays["x_train"]).float() / 255)
        assert split.y_train.tolist() == [9, 0, 1, 2, 3]
        assert split.y_test.tolist() == [0, 1, 2]
        assert float(split.x_test.max()) <= 1.0
        assert float(split.x_test.min()) >= 0.0

    def test_plain_file_preferred_to_gzip(self, tmp_path):
        make_idx_root(tmp_path, "MNIST", gz=True)
        plain = make_idx_root(tmp_path / "other", "MNIST", gz=False, train=4)
        for name in IDX_NAMES[:2]:
            (tmp_path / "MNIST/raw" / name).write_bytes(
                (tmp_path / "other/MNIST/raw" / name).read_bytes()
            )
        split = mnist(tmp_path)
        assert split.x_train.shape[0] == 4
        assert torch.equal(split.x_train[:, 0], torch.from_numpy(plain["x_train"]).float() / 255)

    def test_images_and_labels_must_match(self, tmp_path):
        make_idx_root(tmp_path, "MNIST", gz=False)
        write_idx(tmp_path / "MNIST/raw" / IDX_NAMES[1], np.zeros(4, np.uint8), gz=False)
        with pytest.raises(ConfigError, match=r"holds 5 images but .* 4 labels"):
            mnist(tmp_path)

    def test_labels_beyond_the_classes_are_refused(self, tmp_path):
        make_idx_root(tmp_path, "MNIST", gz=False)
        write_idx(tmp_path / "MNIST/raw" / IDX_NAMES[3], np.array([0, 1, 12]), gz=False)
        with pytest.raises(ConfigError, match=r"range over \[0, 12\], but MNIST has 10 classes"):
            mnist(tmp_path)


class TestCifar:
    @pytest.mark.parametrize("protocol", [None, 2, 4, 5], ids=["python2", "p2", "p4", "p5"])
    def test_cifar10(self, tmp_path, protocol):
        batches = make_cifar10_root(tmp_path, protocol=protocol)
        split = cifar10(tmp_path)
        assert split.x_train.shape == (10, 3, 32, 32)
        assert split.x_test.shape == (2, 3, 32, 32)
        assert split.y_train.tolist() == [0, 9, 1, 8, 2, 7, 3, 6, 4, 5]
        assert split.y_test.tolist() == [5, 4]
        first = torch.from_numpy(batches[0][b"data"][0].reshape(3, 32, 32)).float() / 255
        assert torch.equal(split.x_train[0], first)
        last = torch.from_numpy(batches[5][b"data"][1].reshape(3, 32, 32)).float() / 255
        assert torch.equal(split.x_test[1], last)

    @pytest.mark.parametrize(
        ("labels", "train", "test"),
        [("fine", [99, 0, 5], [99, 1, 5]), ("coarse", [19, 0, 0], [19, 0, 1])],
    )
    def test_cifar100_fine_and_coarse(self, tmp_path, labels, train, test):
        make_cifar100_root(tmp_path)
        split = cifar100(tmp_path, labels=labels)
        assert split.x_train.shape == (3, 3, 32, 32)
        assert split.y_train.tolist() == train
        assert split.y_test.tolist() == test

    def test_not_a_batch(self, tmp_path):
        make_cifar10_root(tmp_path)
        path = tmp_path / "cifar-10-batches-py" / "test_batch"
        path.write_bytes(pickle.dumps({"data": np.zeros((2, 10), np.uint8), "labels": [0, 1]}))
        with pytest.raises(ConfigError, match=r"is not a CIFAR batch: .*\[samples, 3072\]"):
            cifar10(tmp_path)

    def test_label_count_must_match(self, tmp_path):
        make_cifar10_root(tmp_path)
        path = tmp_path / "cifar-10-batches-py" / "data_batch_3"
        path.write_bytes(pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [0]}))
        with pytest.raises(ConfigError, match="holds 2 images but its 'labels' is not a list"):
            cifar10(tmp_path)


class Evil:
    def __init__(self, function, *args):
        self.reduced = (function, args)

    def __reduce__(self):
        return self.reduced


class Custom:
    pass


def global_name(function: object) -> bytes:
    return pickle.GLOBAL + f"{function.__module__}\n{function.__name__}\n".encode()


def text(value: str) -> bytes:
    return pickle.BINUNICODE + struct.pack("<I", len(value)) + value.encode()


# (3,) of dtype "O", as the arguments of a call
SHAPE_AND_OBJECT_TYPE = pickle.MARK + pickle.BININT1 + b"\x03" + pickle.TUPLE1 + text("O")
# A dtype "V8" whose state (BUILD) sets the object flags (63) after numpy.dtype checked it.
FLAGGED_VOID = pickle.dumps(np.dtype("V8"), protocol=2).replace(b"K\x00tq", b"K?tq")
OBJECT_ARRAY_PICKLES = {
    # numpy's _reconstruct with a type string: no numpy.dtype call to check
    "reconstruct-O": pickle.PROTO
    + b"\x02"
    + global_name(RECONSTRUCT)
    + pickle.MARK
    + global_name(np.ndarray)
    + SHAPE_AND_OBJECT_TYPE[1:]
    + pickle.TUPLE
    + pickle.REDUCE
    + pickle.STOP,
    "ndarray-call": pickle.PROTO
    + b"\x02"
    + global_name(np.ndarray)
    + SHAPE_AND_OBJECT_TYPE
    + pickle.TUPLE
    + pickle.REDUCE
    + pickle.STOP,
    "ndarray-newobj": pickle.PROTO
    + b"\x02"
    + global_name(np.ndarray)
    + SHAPE_AND_OBJECT_TYPE
    + pickle.TUPLE
    + pickle.NEWOBJ
    + pickle.STOP,
    "ndarray-obj": pickle.PROTO
    + b"\x02"
    + pickle.MARK
    + global_name(np.ndarray)
    + SHAPE_AND_OBJECT_TYPE[1:]
    + pickle.OBJ
    + pickle.STOP,
    "flagged-dtype": FLAGGED_VOID,
    "array-of-flagged-dtype": pickle.dumps(np.zeros(1, "V8"), protocol=2).replace(
        b"K\x00tq", b"K?tq"
    ),
    "structured-with-object-field": pickle.dumps(
        np.zeros(2, dtype=[("x", "<f4"), ("o", "O")]), protocol=2
    ),
    "object-array-protocol-5": pickle.dumps(np.array([1, "a"], dtype=object), protocol=5),
    "object-array-inside-a-batch": pickle.dumps(
        {"data": np.zeros((1, 3), np.uint8), "labels": np.array([None], dtype=object)},
        protocol=2,
    ),
}


class TestPicklesRunNoCode:
    @pytest.mark.parametrize(
        ("payload", "named"),
        [
            (lambda marker: Evil(os.system, f"touch {marker}"), "system"),
            (lambda marker: Evil(builtins.eval, f"open({str(marker)!r}, 'w')"), "eval"),
            (lambda marker: Evil(builtins.exec, f"open({str(marker)!r}, 'w')"), "exec"),
            (lambda marker: Evil(Path.touch, Path(marker)), "getattr|touch|Path"),
            (lambda marker: {"data": collections.OrderedDict(a=1)}, "collections.OrderedDict"),
            (lambda marker: {"data": Custom()}, "Custom"),
            (
                lambda marker: {"data": np.array([marker, 1], dtype=object)},
                "an array of Python objects",
            ),
            (lambda marker: Evil(Evil(os.system, "true").reduced[0], "true"), "system"),
        ],
        ids=[
            "os.system",
            "eval",
            "exec",
            "Path.touch",
            "OrderedDict",
            "class",
            "objects",
            "nested",
        ],
    )
    @pytest.mark.parametrize("protocol", [2, 5])
    def test_refused_before_any_call(self, tmp_path, payload, named, protocol):
        marker = tmp_path / "ran"
        make_cifar10_root(tmp_path)
        path = tmp_path / "cifar-10-batches-py" / "data_batch_1"
        path.write_bytes(pickle.dumps(payload(str(marker)), protocol=protocol))
        before = tree(tmp_path)
        with pytest.raises(ConfigError, match=r"is refused: .*never code") as error:
            cifar10(tmp_path)
        assert re.search(f"it (calls|holds) [^ ]*({named})", str(error.value))
        assert not marker.exists()
        assert tree(tmp_path) == before

    @pytest.mark.parametrize("raw", OBJECT_ARRAY_PICKLES.values(), ids=OBJECT_ARRAY_PICKLES)
    def test_arrays_of_objects_refused_however_made(self, tmp_path, raw):
        path = tmp_path / "batch"
        path.write_bytes(raw)
        with pytest.raises(ConfigError) as error:
            load_plain_pickle(path)
        message = str(error.value)
        assert message.startswith(f"{str(path)!r} is refused: it holds an array of Python objects")
        assert "only arrays of numbers are plain data" in message

    def test_arrays_of_numbers_and_structured_numbers_still_load(self, tmp_path):
        path = tmp_path / "batch"
        structured = np.zeros(2, dtype=[("x", "<f4"), ("label", "u1")])
        for value in (np.zeros((2, 3), "V8"), structured, np.arange(4.0)):
            for protocol in (2, 5):
                path.write_bytes(pickle.dumps(value, protocol=protocol))
                loaded = load_plain_pickle(path)
                assert loaded.dtype == value.dtype
                assert loaded.tobytes() == value.tobytes()

    def test_no_state_is_set_on_an_allowed_function(self, tmp_path):
        # BUILD on _codecs.encode would set the attributes of pypaddle's own function.
        from pypaddle.data import files

        defaults = files._latin1.__defaults__
        raw = (
            b"\x80\x02c_codecs\nencode\nN}X\x0c\x00\x00\x00__defaults__"
            b"X\x04\x00\x00\x00utf8\x85s\x86b."
        )
        path = tmp_path / "batch"
        path.write_bytes(raw)
        with pytest.raises(ConfigError, match="is refused: it sets the state of function"):
            load_plain_pickle(path)
        assert files._latin1.__defaults__ == defaults

    @pytest.mark.parametrize(
        "raw",
        [b"\x80\x02cnumpy\nndarray\n.", b"\x80\x02]q\x00c_codecs\nencode\nq\x01a."],
        ids=["a class", "a function in a list"],
    )
    def test_an_allowed_callable_is_never_data(self, tmp_path, raw):
        path = tmp_path / "batch"
        path.write_bytes(raw)
        with pytest.raises(ConfigError, match=r"is refused: it gives .* as data"):
            load_plain_pickle(path)

    def test_codecs_only_for_latin1(self, tmp_path):
        path = tmp_path / "batch"
        # _codecs.encode is allowed for protocol 2's bytes, but only to latin1.
        raw = pickle.dumps(b"\xff", protocol=2).replace(b"latin1", b"rot_13")
        path.write_bytes(raw)
        with pytest.raises(ConfigError, match="'rot_13', not as latin1"):
            load_plain_pickle(path)
        path.write_bytes(pickle.dumps(b"\xff", protocol=2))
        assert load_plain_pickle(path) == b"\xff"

    @pytest.mark.parametrize(
        "raw", [b"", b"not a pickle", pickle.dumps([1, 2, 3])[:-3]], ids=["empty", "text", "cut"]
    )
    def test_damaged(self, tmp_path, raw):
        path = tmp_path / "batch"
        path.write_bytes(raw)
        with pytest.raises(ConfigError, match="batch"):
            load_plain_pickle(path)


class TestRootWithoutTheFiles:
    @pytest.mark.parametrize("dataset", VISION_DATASETS)
    def test_empty_root_names_files_and_fix(self, tmp_path, dataset):
        with pytest.raises(ConfigError) as error:
            load_vision(dataset, tmp_path)
        message = str(error.value)
        assert str(tmp_path) in message
        for path in expected_files(dataset, tmp_path):
            assert f"{path.parent.name}/{path.name}" in message
        assert "download = true" in message
        assert "pypaddle[vision]" in message
        assert list(tmp_path.iterdir()) == []

    def test_missing_root(self, tmp_path):
        root = tmp_path / "nothing"
        with pytest.raises(ConfigError, match="it does not exist"):
            mnist(root)
        assert not root.exists()

    def test_names_only_the_missing(self, tmp_path):
        make_idx_root(tmp_path, "MNIST", gz=True)
        (tmp_path / "MNIST/raw/t10k-labels-idx1-ubyte.gz").unlink()
        assert [p.name for p in missing_files("mnist", tmp_path)] == ["t10k-labels-idx1-ubyte"]
        with pytest.raises(ConfigError, match="it lacks t10k-labels-idx1-ubyte;"):
            mnist(tmp_path)

    def test_root_is_a_file(self, tmp_path):
        (tmp_path / "file").write_text("x")
        with pytest.raises(ConfigError, match="is a file"):
            cifar10(tmp_path / "file")

    @pytest.mark.parametrize("bad", [None, 3, ["a"]])
    def test_root_not_a_path(self, bad):
        with pytest.raises(ConfigError, match="root"):
            load_vision("mnist", bad)

    @pytest.mark.parametrize(
        ("dataset", "kwargs", "match"),
        [
            ("imagenet", {}, "is not one of"),
            ("mnist", {"download": "yes"}, "download must be True or False"),
            ("cifar100", {"labels": "medium"}, "must be 'fine'"),
        ],
    )
    def test_bad_arguments(self, tmp_path, dataset, kwargs, match):
        with pytest.raises(ConfigError, match=match):
            load_vision(dataset, tmp_path, **kwargs)


class TestDownload:
    def fake_torchvision(self, monkeypatch, calls):
        datasets = types.ModuleType("torchvision.datasets")

        class MNIST:
            def __init__(self, root, train, download):
                calls.append((root, train, download))
                if not (Path(root) / "MNIST").exists():
                    make_idx_root(Path(root), "MNIST", gz=True)

        datasets.MNIST = MNIST
        torchvision = types.ModuleType("torchvision")
        torchvision.__spec__ = importlib.machinery.ModuleSpec("torchvision", None)
        torchvision.datasets = datasets
        monkeypatch.setitem(sys.modules, "torchvision", torchvision)
        monkeypatch.setitem(sys.modules, "torchvision.datasets", datasets)

    def test_download_uses_torchvision_then_reads(self, tmp_path, monkeypatch):
        calls: list[tuple] = []
        self.fake_torchvision(monkeypatch, calls)
        root = tmp_path / "data"
        split = mnist(root, download=True)
        assert calls == [(str(root), True, True), (str(root), False, True)]
        assert split.x_train.shape == (5, 1, 28, 28)
        calls.clear()
        mnist(root, download=True)  # files there: nothing fetched
        assert calls == []

    def test_download_without_torchvision(self, tmp_path, monkeypatch):
        monkeypatch.setitem(sys.modules, "torchvision", None)
        root = tmp_path / "data"
        with pytest.raises(MissingExtraError, match=r"pip install 'pypaddle\[vision\]'"):
            cifar100(root, download=True)
        assert not root.exists()


def write_config(folder: Path, data: dict) -> Path:
    lines = ["[data]", *(f"{k} = {v!r}".replace("'", '"') for k, v in data.items())]
    lines = [line.replace("True", "true").replace("False", "false") for line in lines]
    lines += ["[model]", 'name = "ffn"', "hidden_layers = [8]", "[training]", "epochs = 1"]
    lines += ["[evaluation]", "plots = false", "checkpoints = false"]
    path = folder / "experiment.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


class TestConfigSources:
    def test_relative_root_from_the_config_folder(self, tmp_path):
        make_idx_root(tmp_path / "data", "FashionMNIST", gz=True)
        config = load_config(
            write_config(tmp_path, {"name": "fashion_mnist", "root": "data", "train_samples": 4})
        )
        assert config.data.options.root == str(tmp_path / "data")
        prepared = prepare(config)
        assert prepared.split.x_train.shape == (4, 1, 28, 28)
        assert prepared.split.x_test.shape == (3, 1, 28, 28)
        assert config.to_dict()["data"] == {
            "name": "fashion_mnist",
            "root": str(tmp_path / "data"),
            "download": False,
            "train_samples": 4,
        }

    def test_cifar100_coarse_in_a_config(self, tmp_path):
        make_cifar100_root(tmp_path)
        config = {"data": {"name": "cifar100", "root": str(tmp_path), "labels": "coarse"}}
        split = prepare({**config, "model": {"name": "ffn", "hidden_layers": [4]}}).split
        assert split.y_train.tolist() == [19, 0, 0]
        assert split.x_train.shape == (3, 3, 32, 32)

    @pytest.mark.parametrize("dataset", VISION_DATASETS)
    def test_refused_when_loaded(self, tmp_path, dataset):
        with pytest.raises(ConfigError, match=r"^data: the .* files are not in root") as error:
            load_config(write_config(tmp_path, {"name": dataset, "root": "nowhere"}))
        assert str(tmp_path / "nowhere") in str(error.value)
        assert "download = true" in str(error.value)

    def test_root_is_needed(self):
        with pytest.raises(ConfigError, match="root is not set"):
            parse_config({"data": {"name": "mnist"}})
        with pytest.raises(ConfigError, match="root is not set"):
            parse_config({"data": {"name": "mnist", "download": True}})

    def test_nothing_written_is_overwritten(self, tmp_path):
        make_idx_root(tmp_path / "data", "MNIST", gz=False)
        config = load_config(write_config(tmp_path, {"name": "mnist", "root": "data"}))
        out = tmp_path / "run"
        run_experiment(config, out, quiet=True)
        before = tree(out)
        for name in IDX_NAMES:
            (tmp_path / "data/MNIST/raw" / name).unlink()
        with pytest.raises(ConfigError, match="data: the MNIST files are not in root"):
            run_experiment(config, out, quiet=True)
        assert tree(out) == before
