"""Masked recurrent nets against torch's: ``MaskedLSTM`` vs ``nn.LSTM``.

2 layers, input 64, hidden 128, batch 32 x 50 steps, forward+backward. With full masks
``MaskedLSTM`` runs torch's own forward; with partial masks it runs the same fused kernel
with ``weight * mask`` in place of the weights, so the extra cost is the masking.
"""

from __future__ import annotations

import torch
from torch import nn

from _table import Goal, Row, Table
from _timing import compare, train_step
from pypaddle.sparse import MaskedLSTM

STEPS, BATCH, FEATURES, HIDDEN, LAYERS = 50, 32, 64, 128, 2


def _output(result: tuple) -> torch.Tensor:
    """The outputs of an LSTM's (outputs, state)."""
    return result[0]


def run(table: Table, *, quick: bool) -> None:
    table.section(
        f"masked LSTM vs torch.nn.LSTM, {LAYERS} layers, batch {BATCH} x {STEPS} steps, "
        "forward+backward"
    )
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(STEPS, BATCH, FEATURES, generator=generator)
    torch.manual_seed(0)
    dense = nn.LSTM(FEATURES, HIDDEN, num_layers=LAYERS)
    masked = MaskedLSTM(FEATURES, HIDDEN, num_layers=LAYERS)
    masked.load_state_dict(dense.state_dict(), strict=False)
    rounds = 7 if quick else 21
    goal = Goal(3.0, at_most=True)
    result = compare(
        train_step(masked, inputs, _output), train_step(dense, inputs, _output), rounds=rounds
    )
    table.add(
        Row("MaskedLSTM full masks / nn.LSTM", result.subject, result.reference, result.ratio, goal)
    )
    for _, mask_name in masked.masked_parameters():
        mask = getattr(masked, mask_name)
        mask.copy_(torch.rand(mask.shape, generator=generator) < 0.1)
    result = compare(
        train_step(masked, inputs, _output), train_step(dense, inputs, _output), rounds=rounds
    )
    table.add(
        Row(
            "MaskedLSTM 10 % density / nn.LSTM",
            result.subject,
            result.reference,
            result.ratio,
            goal,
        )
    )
