"""Pruning quality on the digits with fixed seeds: MaskedDeepFFN(64, 10, [300, 100]).

Dense, IMP and RigL all train for the same 15 epochs of Adam (lr 3e-3, batch 64); the
assertions leave margins well beyond what seeds or thread counts change.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from pypaddle.data import digits
from pypaddle.experiments._training import accuracy, train_epoch
from pypaddle.prune import LotteryTicket, RigL, prune, prune_iteratively
from pypaddle.sparse import MaskedDeepFFN

pytestmark = pytest.mark.slow

EPOCHS = 15
BATCH = 64
LEARNING_RATE = 3e-3


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Small matrices gain nothing from threads, and on a busy machine threads spin."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data():
    return digits(seed=0)


def _fresh() -> MaskedDeepFFN:
    torch.manual_seed(0)
    return MaskedDeepFFN(64, 10, [300, 100])


def _train(model: MaskedDeepFFN, data, epochs: int = EPOCHS) -> None:
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    generator = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        train_epoch(
            model, optimizer, data.x_train, data.y_train, batch_size=BATCH, generator=generator
        )


@pytest.fixture(scope="module")
def dense(data):
    model = _fresh()
    _train(model, data)
    return model


@pytest.fixture(scope="module")
def dense_accuracy(dense, data):
    score = accuracy(dense, data.x_test, data.y_test)
    assert score > 0.95
    return score


def test_iterative_magnitude_pruning_to_90_percent_stays_within_2_points(data, dense_accuracy):
    model = _fresh()
    ticket = LotteryTicket(model)
    prune_iteratively(model, 0.1, 3, train=lambda round_: _train(model, data), ticket=ticket)
    _train(model, data)
    assert model.density == pytest.approx(0.1, abs=1e-4)
    assert accuracy(model, data.x_test, data.y_test) >= dense_accuracy - 0.02


def test_random_pruning_at_95_percent_is_clearly_worse_than_magnitude(data, dense):
    scores = {}
    for criterion, options in (("magnitude", {}), ("random", {"seed": 0})):
        model = copy.deepcopy(dense)
        prune(model, 0.95, criterion=criterion, **options)
        _train(model, data, epochs=2)
        scores[criterion] = accuracy(model, data.x_test, data.y_test)
    assert scores["magnitude"] >= scores["random"] + 0.2


def test_rigl_at_90_percent_stays_within_3_points(data, dense_accuracy):
    model = _fresh()
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    steps = EPOCHS * -(-data.y_train.numel() // BATCH)
    rigl = RigL(
        model,
        optimizer,
        0.1,
        end_step=int(0.75 * steps),
        update_frequency=10,
        distribution="erk",
        seed=0,
    )
    generator = torch.Generator().manual_seed(0)
    for _ in range(EPOCHS):
        model.train()
        for batch in torch.randperm(data.y_train.numel(), generator=generator).split(BATCH):
            inputs, labels = data.x_train[batch], data.y_train[batch]
            loss = F.cross_entropy(model(inputs), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            rigl.step(lambda inputs=inputs, labels=labels: F.cross_entropy(model(inputs), labels))
    assert model.density == pytest.approx(0.1, abs=2e-3)
    assert accuracy(model, data.x_test, data.y_test) >= dense_accuracy - 0.03
