"""Run a model in eval mode and give every module back its own training flag."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """Every module of ``model`` in eval mode inside, each one's own flag restored after.

    ``model.train(was_training)`` would not do: it sets one flag for all submodules, so a
    batch norm the user had frozen in eval mode inside a training model would come back
    training.
    """
    flags = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in flags:
            module.training = training
