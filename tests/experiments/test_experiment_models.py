"""Every model of the [model] table trains in the engine (tiny sizes, one short round)."""

import numpy as np
import pytest
import torch

from pypaddle.errors import ConfigError
from pypaddle.experiments import parse_config, prepare, run_experiment
from pypaddle.sparse import DeepCellDAN, MaskedConvNet, MaskedLSTM

IMAGES = {"name": "digits", "image": True}
SPARSIFY = {"method": "one_shot", "amount": 0.5, "retrain_epochs": 1}


def run(tmp_path, model, data=IMAGES):
    config = {
        "seed": 1,
        "data": data,
        "model": model,
        "training": {"epochs": 1, "batch_size": 128, "learning_rate": 0.01},
        "sparsify": SPARSIFY,
        "evaluation": {"plots": False, "checkpoints": False},
    }
    return config, run_experiment(config, tmp_path, quiet=True)


def test_cnn(tmp_path):
    model = {"name": "cnn", "blocks": [4, "M", 8], "hidden_layers": [16]}
    config, rounds = run(tmp_path, model)
    assert isinstance(prepare(config).model.module, MaskedConvNet)
    assert rounds[1]["density"] == pytest.approx(0.5, abs=0.01)
    assert rounds[1]["accuracy"] > 0.1


def test_cnn_preset_on_28x28_images(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "mnist-like.npz",
        x_train=rng.random((8, 1, 28, 28)),
        y_train=np.arange(8) % 3,
        x_test=rng.random((4, 1, 28, 28)),
        y_test=np.arange(4) % 3,
    )
    data = {"name": "npz", "path": str(tmp_path / "mnist-like.npz")}
    module = prepare({"data": data, "model": {"name": "cnn", "preset": "lenet5"}}).model.module
    assert module.feature_shape == (16, 5, 5)
    assert module(torch.zeros(2, 1, 28, 28)).shape == (2, 3)
    with pytest.raises(ConfigError, match=r"^model: the image shrinks to nothing"):
        prepare({"data": IMAGES, "model": {"name": "cnn", "preset": "lenet5"}})


def test_rnn_reads_rows(tmp_path):
    config, rounds = run(tmp_path, {"name": "rnn", "hidden_size": 16}, {"name": "digits"})
    module = prepare(config).model.module
    assert isinstance(module.recurrent, MaskedLSTM)
    assert module.recurrent.input_size == 8
    assert rounds[1]["density"] == pytest.approx(0.5, abs=0.01)


def test_cells_write_their_structure(tmp_path):
    model = {
        "name": "cells",
        "structure": {"generator": "watts_strogatz", "n": 6, "k": 2, "p": 0.5},
        "output_channels": 8,
    }
    config, rounds = run(tmp_path, model)
    assert isinstance(prepare(config).model.module, DeepCellDAN)
    assert (tmp_path / "structures" / "prior.graphml").is_file()
    assert (tmp_path / "structures" / "round-1.graphml").is_file()
    assert len(rounds) == 2


@pytest.mark.parametrize(
    ("model", "data", "message"),
    [
        ({"name": "cnn"}, "digits", r"a cnn model needs images .* data\.image = true"),
        ({"name": "rnn", "steps": 5}, "digits", r"model\.steps = 5 does not divide the 64"),
        ({"name": "cnn", "blocks": [4, 2.5]}, "digits", r"model\.blocks = \[4, 2\.5\]"),
        (
            {"name": "cells", "structure": {"generator": "erdos_renyi", "n": 4}},
            IMAGES,
            r"model\.structure\.p is missing",
        ),
    ],
)
def test_bad_models(model, data, message):
    with pytest.raises(ConfigError, match=message):
        prepare(
            parse_config(
                {"data": {"name": data} if isinstance(data, str) else data, "model": model}
            )
        )
