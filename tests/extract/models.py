"""Models for the extraction tests (and its benchmark): no torchvision, no downloads.

Also the tests' helper that turns ``"module:index"`` labels into tuples.
"""

from __future__ import annotations

import networkx as nx
import torch
import torch.nn.functional as F
from torch import nn

from pypaddle.extract import to_graph


class BasicBlock(nn.Module):
    """ResNet's basic block: two 3x3 convolutions and a skip connection (projected when the
    shape changes)."""

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride, bias=False), nn.BatchNorm2d(channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity)


class ResNet18(nn.Module):
    """ResNet-18's layout: a 7x7 stem, four stages of two basic blocks, pooling, a classifier."""

    def __init__(self, classes: int = 1000, width: int = 64) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        stages, channels = [], width
        for stage in range(4):
            out = width * 2**stage
            stride = 1 if stage == 0 else 2
            stages.append(nn.Sequential(BasicBlock(channels, out, stride), BasicBlock(out, out)))
            channels = out
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def small_cnn() -> nn.Sequential:
    """Conv(1, 4, 3) - ReLU - Conv(4, 8, 3, stride 2) - ReLU - Linear, for 1 x 28 x 28 inputs."""
    return nn.Sequential(
        nn.Conv2d(1, 4, 3),
        nn.ReLU(),
        nn.Conv2d(4, 8, 3, stride=2),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8 * 12 * 12, 10),
    )


def split_labels(graph: nx.DiGraph) -> nx.DiGraph:
    """A copy of a neuron or channel graph with ``"module:index"`` labels as tuples
    ``(module, index)``, so tests can build the expected edge sets arithmetically."""

    def split(label: str) -> tuple[str, int]:
        name, _, index = label.rpartition(":")
        return name, int(index)

    return nx.relabel_nodes(graph, split)


def to_graph_with_tuples(*args, **options) -> nx.DiGraph:
    """``to_graph`` with ``(module, index)`` labels at neuron and channel level."""
    graph = to_graph(*args, **options)
    return graph if options.get("granularity") == "layer" else split_labels(graph)
