import pytest


@pytest.fixture
def tiny_config():
    """An experiment that trains in about a second: digits, a 16-unit FFN, two rounds."""
    return {
        "name": "tiny",
        "seed": 3,
        "model": {"name": "ffn", "hidden_layers": [16, 8]},
        "training": {"epochs": 2, "batch_size": 64, "learning_rate": 0.01},
        "sparsify": {"method": "iterative", "rounds": 2, "amount": 0.5, "retrain_epochs": 1},
        "evaluation": {"plots": False},
    }
