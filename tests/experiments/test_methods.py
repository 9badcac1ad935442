"""The sparsification methods of the [sparsify] table, run end to end on tiny models."""

import json

import pytest
import torch

from pypaddle.errors import ConfigError
from pypaddle.experiments import parse_config, prepare, run_experiment
from pypaddle.prune import RigL
from pypaddle.sparse import maskable_layers

BASE = {
    "seed": 2,
    "model": {"name": "ffn", "hidden_layers": [32, 16]},
    "training": {"epochs": 2, "batch_size": 64, "learning_rate": 0.01},
    "evaluation": {"plots": False, "structures": "none"},
}


def run(tmp_path, sparsify, **training):
    config = {**BASE, "sparsify": sparsify, "training": {**BASE["training"], **training}}
    return config, run_experiment(config, tmp_path, quiet=True)


def checkpoint(tmp_path, round_):
    return torch.load(tmp_path / "checkpoints" / f"round-{round_}.pt", weights_only=True)["model"]


def test_iterative_to_a_target_density(tmp_path):
    _, rounds = run(tmp_path, {"method": "iterative", "rounds": 3, "density": 0.125})
    assert [r["density"] for r in rounds] == pytest.approx([1, 0.5, 0.25, 0.125], abs=0.01)


def test_one_shot_by_neurons_masks_whole_rows(tmp_path):
    run(tmp_path, {"method": "one_shot", "amount": 0.5, "granularity": "neuron", "scope": "layer"})
    state = checkpoint(tmp_path, 1)
    mask = state["layers_main_hidden.0.mask"]
    rows = mask.all(dim=1) | ~mask.any(dim=1)
    assert bool(rows.all())
    assert int(mask.any(dim=1).sum()) == 16


def test_snip_needs_no_extra_config(tmp_path):
    _, rounds = run(tmp_path, {"method": "one_shot", "amount": 0.75, "criterion": "snip"})
    assert rounds[1]["density"] == pytest.approx(0.25, abs=0.01)


def test_lottery_rewinds_survivors_to_their_initial_values(tmp_path):
    config, rounds = run(tmp_path, {"method": "lottery", "rounds": 1, "retrain_epochs": 0})
    initial = prepare(config).model.module.state_dict()
    trained, rewound = checkpoint(tmp_path, 0), checkpoint(tmp_path, 1)
    weight = "layers_main_hidden.0.weight"
    kept = rewound["layers_main_hidden.0.mask"]
    assert torch.equal(rewound[weight][kept], initial[weight][kept])
    assert not torch.equal(trained[weight][kept], initial[weight][kept])
    assert float(rewound[weight][~kept].abs().sum()) == 0.0
    assert rounds[1]["density"] == pytest.approx(0.5, abs=0.01)


def test_lottery_retrains_as_long_as_the_first_round_by_default(tmp_path):
    _, rounds = run(tmp_path, {"method": "lottery", "rounds": 1})
    assert [r["epochs"] for r in rounds] == [2, 2]


def test_gradual_prunes_while_training(tmp_path):
    _, rounds = run(
        tmp_path, {"method": "gradual", "sparsity": 0.8, "end": 0.5, "frequency": 2}, epochs=4
    )
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    densities = [json.loads(line)["density"] for line in lines[:4]]
    assert densities == sorted(densities, reverse=True)
    assert densities[0] < 1.0
    assert rounds[-1]["density"] == pytest.approx(0.2, abs=0.01)


@pytest.mark.parametrize("method", ["set", "rigl"])
def test_dynamic_sparsity_moves_connections_at_a_fixed_density(tmp_path, method):
    sparsify = {"method": method, "density": 0.2, "update_frequency": 5, "distribution": "uniform"}
    config, rounds = run(tmp_path, sparsify)
    assert rounds[0]["density"] == pytest.approx(0.2, abs=0.01)
    # The masks the method started from, rebuilt the same way the run built them.
    model = prepare(config).model.module
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    RigL(maskable_layers(model), optimizer, 0.2, end_step=10, distribution="uniform", seed=2)
    final = checkpoint(tmp_path, 0)
    for name, mask in model.state_dict().items():
        if name.endswith("mask") and "bias" not in name:
            assert int(final[name].sum()) == int(mask.sum())
    assert any(
        not torch.equal(final[name], mask)
        for name, mask in model.state_dict().items()
        if name.endswith("mask")
    )


@pytest.mark.parametrize(
    ("sparsify", "message"),
    [
        (
            {"method": "one_shot", "granularity": ["n:m", 3, 2]},
            r"sparsify\.granularity = \['n:m', 3, 2\]: N:M",
        ),
        ({"method": "one_shot", "granularity": "rows"}, r"sparsify\.granularity = 'rows'"),
        ({"method": "iterative", "amount": 0.5, "density": 0.1}, "both given"),
        ({"method": "gradual", "start": 0.8, "end": 0.5}, r"sparsify\.start = 0\.8 must be below"),
        ({"method": "rigl", "distribution": "normal"}, r"sparsify\.distribution = 'normal'"),
        ({"method": "one_shot", "criterion": "hessian"}, r"allowed values: 'magnitude', 'random'"),
    ],
)
def test_bad_method_options(sparsify, message):
    with pytest.raises(ConfigError, match=message):
        parse_config({"sparsify": sparsify})
