"""MNIST-1D: generated offline with the paper's arguments, no network, no random state changed."""

from __future__ import annotations

import random
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from bad_values import NOT_COUNTS, NOT_FINITE_REALS, value_id
from pypaddle.data import MNIST1D_DEFAULTS, mnist1d
from pypaddle.errors import ConfigError, MissingExtraError
from pypaddle.experiments import parse_config, prepare

mnist1d_package = pytest.importorskip("mnist1d.data")


def test_defaults_are_the_papers():
    arguments = mnist1d_package.get_dataset_args(as_dict=True)
    arguments.pop("url")
    arguments["padding"] = tuple(arguments["padding"])
    assert arguments == MNIST1D_DEFAULTS


@pytest.mark.slow
def test_default_dataset_is_the_packages():
    """The paper's data set: what make_dataset gives for get_dataset_args(), as tensors."""
    expected = mnist1d_package.make_dataset(mnist1d_package.get_dataset_args())
    split = mnist1d()
    assert np.array_equal(split.x_train.numpy(), expected["x"].astype(np.float32))
    assert np.array_equal(split.x_test.numpy(), expected["x_test"].astype(np.float32))
    assert np.array_equal(split.y_train.numpy(), expected["y"])
    assert np.array_equal(split.y_test.numpy(), expected["y_test"])
    assert split.x_train.shape == (4000, 40)
    assert split.x_test.shape == (1000, 40)
    assert split.x_train.dtype == torch.float32
    assert split.y_train.dtype == torch.int64
    assert split.num_classes == 10
    assert torch.bincount(torch.cat([split.y_train, split.y_test])).tolist() == [500] * 10
    features = torch.cat([split.x_train, split.x_test]).double()
    assert abs(float(features.mean())) < 1e-6
    assert abs(float(features.std()) - 1) < 1e-3


def test_arguments_reach_the_generator():
    split = mnist1d(num_samples=105, train_split=0.6, final_seq_length=24, seed=3)
    assert split.x_train.shape == (60, 24)
    assert split.x_test.shape == (40, 24)
    other = mnist1d(num_samples=105, train_split=0.6, final_seq_length=24, seed=4)
    assert not torch.equal(split.x_train, other.x_train)
    shuffled = mnist1d(num_samples=100, shuffle_seq=True)
    assert not torch.equal(shuffled.x_train, mnist1d(num_samples=100).x_train)


def test_no_global_random_state_changes():
    np.random.seed(7)  # noqa: NPY002 (the global state is what is checked)
    random.seed(7)
    numpy_state, python_state = np.random.get_state(), random.getstate()  # noqa: NPY002
    mnist1d(num_samples=50, seed=11)
    after = np.random.get_state()  # noqa: NPY002
    assert after[0] == numpy_state[0]
    assert np.array_equal(after[1], numpy_state[1])
    assert after[2:] == numpy_state[2:]
    assert random.getstate() == python_state


def test_tensors_are_fresh_copies():
    first = mnist1d(num_samples=50)
    first.x_train.zero_()
    assert float(mnist1d(num_samples=50).x_train.abs().sum()) > 0


def test_no_network_while_generating(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("MNIST-1D generation tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    split = mnist1d(num_samples=60, seed=5)
    assert split.x_train.shape == (48, 40)


@pytest.mark.slow
def test_no_network_from_a_fresh_import(tmp_path):
    """Importing mnist1d (it imports requests) and generating touch no socket."""
    script = textwrap.dedent(
        """
        import socket
        def refuse(*args, **kwargs):
            raise SystemExit("network used")
        socket.socket.connect = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse
        from pypaddle.data import mnist1d
        print(tuple(mnist1d(num_samples=40).x_test.shape))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(8, 40)"
    assert list(tmp_path.iterdir()) == []  # no cached pickle written


def test_missing_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mnist1d.data", None)
    sys.modules["pypaddle.data.mnist1d"]._generate.cache_clear()
    with pytest.raises(MissingExtraError, match=r"pip install 'pypaddle\[mnist1d\]'"):
        mnist1d(num_samples=30, seed=12345)


def test_absent_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mnist1d", None)
    sys.modules["pypaddle.data.mnist1d"]._generate.cache_clear()
    with pytest.raises(MissingExtraError, match=r"needs mnist1d, which is not installed"):
        mnist1d(num_samples=30, seed=12345)


@pytest.mark.parametrize(
    "name", ["num_samples", "template_len", "max_translation", "final_seq_length"]
)
@pytest.mark.parametrize("bad", NOT_COUNTS, ids=value_id)
def test_bad_counts(name, bad):
    with pytest.raises(ConfigError, match=name):
        mnist1d(**{name: bad})


@pytest.mark.parametrize(
    "name",
    ["train_split", "scale_coeff", "corr_noise_scale", "iid_noise_scale", "shear_scale"],
)
@pytest.mark.parametrize("bad", NOT_FINITE_REALS, ids=value_id)
def test_bad_reals(name, bad):
    with pytest.raises(ConfigError, match=name):
        mnist1d(**{name: bad})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_samples": 9}, "num_samples must be an int >= 10"),
        ({"train_split": 0.0}, "train_split"),
        ({"train_split": 1.0}, "leaves 100 for training and 0 for testing"),
        ({"num_samples": 10, "train_split": 0.05}, "leaves 0 for training"),
        ({"scale_coeff": 2.0}, "scale_coeff"),
        ({"corr_noise_scale": -0.1}, "corr_noise_scale"),
        ({"padding": (5, 2)}, "low <= high"),
        ({"padding": (1, 2, 3)}, "pair of ints"),
        ({"padding": "36"}, "pair of ints"),
        ({"padding": (-1, 2)}, r"padding\[0\]"),
        ({"seed": 2**32}, r"\[0, 2\*\*32\)"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.0}, "seed"),
        ({"seed": True}, "seed"),
        ({"shuffle_seq": "yes"}, "shuffle_seq"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        mnist1d(**{"num_samples": 100, **kwargs})


class TestConfig:
    def test_source_with_defaults(self):
        config = parse_config({"data": {"name": "mnist1d"}})
        assert config.to_dict()["data"] == {
            "name": "mnist1d",
            **{k: list(v) if isinstance(v, tuple) else v for k, v in MNIST1D_DEFAULTS.items()},
        }

    def test_prepare_builds_a_dan_on_it(self):
        config = {
            "seed": 1,
            "data": {"name": "mnist1d", "num_samples": 200},
            "model": {"name": "ffn", "hidden_layers": [8]},
        }
        prepared = prepare(config)
        assert prepared.split.x_train.shape == (160, 40)
        assert prepared.model.module(prepared.split.x_test).shape == (40, 10)
        # The data set is fixed by data.seed, not by the experiment's seed.
        other = prepare({**config, "seed": 2})
        assert torch.equal(prepared.split.x_train, other.split.x_train)

    @pytest.mark.parametrize(
        ("data", "match"),
        [
            ({"num_samples": 5}, "data.num_samples = 5 is out of range"),
            ({"padding": [3]}, r"data.padding = \[3\] must be \[low, high\]"),
            ({"padding": [4, 3]}, "low <= high"),
            ({"seed": 2**32}, "data.seed"),
            ({"url": "https://example.org"}, "data.url is not a known key"),
            ({"train_split": 1}, "data.train_split = 1 is out of range"),
        ],
    )
    def test_bad_config(self, data, match):
        with pytest.raises(ConfigError, match=match):
            parse_config({"data": {"name": "mnist1d", **data}})
