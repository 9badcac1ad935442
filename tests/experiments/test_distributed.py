"""Data-parallel training (DDP, gloo on CPU) with 2 processes."""

import json

import pytest
import torch

from pypaddle.errors import ConfigError
from pypaddle.experiments import prepare, run_experiment
from pypaddle.experiments.run import mask_digest
from pypaddle.prune import RigL
from pypaddle.sparse import maskable_layers


@pytest.mark.slow
def test_masks_and_weights_are_identical_on_every_rank(tmp_path, tiny_config):
    config = {**tiny_config, "model": {"name": "ffn", "hidden_layers": [16, 8]}}
    rounds = run_experiment(config, tmp_path, quiet=True, nproc=2)
    assert [record["density"] for record in rounds] == pytest.approx([1.0, 0.5, 0.25], abs=0.01)
    for record in rounds:
        masks, weights = record["mask_digests_per_rank"], record["weight_digests_per_rank"]
        assert len(masks) == 2
        assert masks[0] == masks[1]
        assert weights[0] == weights[1]
    assert len({record["mask_digest"] for record in rounds}) == 3
    # Both processes trained: the epochs' train losses are averages over the ranks.
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    epochs = [json.loads(line) for line in lines if '"event": "epoch"' in line]
    assert len(epochs) == 4
    assert all(record["train_loss"] > 0 for record in epochs)
    assert 0.0 < rounds[-1]["accuracy"] <= 1.0


def test_nproc_must_be_positive(tmp_path, tiny_config):
    with pytest.raises(ConfigError, match="nproc = 0 must be an int >= 1"):
        run_experiment(tiny_config, tmp_path, quiet=True, nproc=0)


@pytest.mark.slow
def test_rigl_moves_the_same_connections_on_every_rank(tmp_path, tiny_config):
    sparsify = {"method": "rigl", "density": 0.3, "update_frequency": 3, "end": 1.0}
    config = {**tiny_config, "sparsify": sparsify}
    (record,) = run_experiment(config, tmp_path, quiet=True, nproc=2)
    assert record["density"] == pytest.approx(0.3, abs=0.01)
    masks, weights = record["mask_digests_per_rank"], record["weight_digests_per_rank"]
    assert masks[0] == masks[1]
    assert weights[0] == weights[1]
    # RigL did move connections: the masks it started from (rebuilt as the run built them)
    # are not the ones it ended with.
    model = prepare(config).model.module
    optimizer = torch.optim.Adam(model.parameters())
    RigL(maskable_layers(model), optimizer, 0.3, end_step=10, distribution="erk", seed=3)
    assert mask_digest(maskable_layers(model)) != masks[0]
