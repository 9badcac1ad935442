"""The example configs under examples/ are valid (they are checked, not trained)."""

from pathlib import Path

import pytest

from pypaddle.experiments import load_config
from pypaddle.experiments.sweep import load_sweep

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FILES = sorted(EXAMPLES.glob("*.toml"))


def test_there_are_examples():
    assert {path.name for path in FILES} >= {"first_experiment.toml", "sweep_priors.toml"}


@pytest.mark.parametrize("path", FILES, ids=[path.name for path in FILES])
def test_example_is_valid(path):
    if "[sweep]" in path.read_text():
        spec = load_sweep(path)
        assert len(spec.trials) >= 2
    else:
        config = load_config(path)
        assert config.training.epochs >= 1


def test_first_experiment_as_documented():
    config = load_config(EXAMPLES / "first_experiment.toml")
    assert config.model.options.structure["generator"] == "small_world_layered"
    assert (config.sparsify.name, config.sparsify.options.rounds) == ("iterative", 4)
    spec = load_sweep(EXAMPLES / "sweep_priors.toml")
    assert [trial.overrides for trial in spec.trials][:2] == [
        {"model.structure.p": 0.0, "seed": 0},
        {"model.structure.p": 0.0, "seed": 1},
    ]
