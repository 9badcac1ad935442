"""A masked feed-forward network."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch
from torch import nn

from pypaddle.errors import ConfigError
from pypaddle.graph import CachedLayeredGraph
from pypaddle.sparse._arguments import check_flag
from pypaddle.sparse._common import (
    MaskedModel,
    attribute_alias,
    check_size,
    flatten_input,
    renamed_keywords,
    resolve_activation,
    resolve_input_shape,
)
from pypaddle.sparse._structure import (
    input_vertex,
    mask_edges,
    output_vertex,
    structure_from_positions,
)
from pypaddle.sparse.masked import MaskedLinearLayer

__all__ = ["MaskedDeepFFN"]


class MaskedDeepFFN(MaskedModel):
    """A feed-forward network of :class:`MaskedLinearLayer` s.

    ``input -> [masked linear -> layer norm? -> activation] * len(hidden_layers) -> masked
    linear -> output``. The input may have any shape; it is flattened per sample.

    Parameters
    ----------
    input_shape : int or tuple of int
        Number of input features, or the shape of one input sample (e.g. ``(1, 28, 28)``).
        (Formerly ``size_input``; that keyword still works, with a DeprecationWarning.)
    num_classes : int
        Number of outputs. (Formerly ``size_output``, likewise.)
    hidden_layers : sequence of int
        Width of each hidden layer; at least one, none zero.
    use_layer_norm : bool
        Put a ``LayerNorm`` after each hidden linear layer, before the activation.
    activation : nn.Module, nn.Module class or callable
        The hidden activation (``nn.ReLU`` by default).

    Examples
    --------
    >>> import torch
    >>> model = MaskedDeepFFN((1, 28, 28), 10, [100, 100])
    >>> model(torch.randn(5, 1, 28, 28)).shape
    torch.Size([5, 10])
    >>> structure = model.generate_structure()
    >>> structure.number_of_nodes(), structure.number_of_edges()
    (200, 10000)
    """

    size_input = attribute_alias("in_features")
    size_output = attribute_alias("num_classes")

    @renamed_keywords(size_input="input_shape", size_output="num_classes")
    def __init__(
        self,
        input_shape: int | Sequence[int],
        num_classes: int,
        hidden_layers: Sequence[int],
        *,
        use_layer_norm: bool = False,
        activation: Any = nn.ReLU,
    ) -> None:
        super().__init__()
        shape, features = resolve_input_shape(input_shape)
        num_classes = check_size(num_classes, "num_classes")
        if isinstance(hidden_layers, int) or not isinstance(hidden_layers, Sequence):
            raise ConfigError(
                f"hidden_layers must be a sequence of positive ints, got {hidden_layers!r}; "
                "e.g. [100, 100]"
            )
        if len(hidden_layers) == 0:
            raise ConfigError(
                "hidden_layers is empty; give at least one hidden layer width, e.g. [100]"
            )
        widths = [check_size(width, "every hidden layer width") for width in hidden_layers]

        self.input_shape = shape
        self.in_features = features
        self.num_classes = num_classes
        self.hidden_widths = tuple(widths)
        self.use_layer_norm = check_flag(use_layer_norm, "use_layer_norm")
        activation_module = resolve_activation(activation)  # checked before any weight is drawn
        sizes = [features, *widths]
        self.layers_main_hidden = nn.ModuleList(
            MaskedLinearLayer(size_in, size_out) for size_in, size_out in zip(sizes, widths)
        )
        self.layer_norms = nn.ModuleList(
            nn.LayerNorm(width) if self.use_layer_norm else nn.Identity() for width in widths
        )
        self.layer_out = MaskedLinearLayer(widths[-1], num_classes)
        self.activation = activation_module

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        hidden = flatten_input(input, self.in_features, type(self).__name__)
        for layer, norm in zip(self.layers_main_hidden, self.layer_norms):
            hidden = self.activation(norm(layer(hidden)))
        return self.layer_out(hidden)

    @property
    def _hidden_layers(self) -> list[MaskedLinearLayer]:
        return [cast(MaskedLinearLayer, layer) for layer in self.layers_main_hidden]

    def generate_structure(
        self, include_input: bool = False, include_output: bool = False
    ) -> CachedLayeredGraph:
        """The network's structure as a graph, built from the current masks.

        Hidden neurons are vertices ``0 .. sum(hidden_layers) - 1``, numbered layer by layer;
        an edge ``u -> v`` stands for an unmasked weight. A neuron whose connections are all
        masked stays as an isolated vertex. ``include_input`` adds vertices
        ``("input", i)`` with their edges into the first hidden layer, ``include_output``
        adds ``("output", j)`` with the edges from the last hidden layer. Every vertex
        carries a ``role`` attribute: ``"input"``, ``"hidden"`` or ``"output"``.
        """
        hidden_count = sum(self.hidden_widths)
        labels: list[Any] = list(range(hidden_count))
        vertices: list[tuple[Any, dict]] = []
        edges = []
        if include_input:
            labels += [input_vertex(i) for i in range(self.in_features)]
            vertices += [(label, {"role": "input"}) for label in labels[hidden_count:]]
            edges.append(mask_edges(self._hidden_layers[0].mask, hidden_count, 0))
        vertices += [(label, {"role": "hidden"}) for label in range(hidden_count)]
        offset = 0
        for previous, layer in zip(self.hidden_widths, self._hidden_layers[1:]):
            edges.append(mask_edges(layer.mask, offset, offset + previous))
            offset += previous
        if include_output:
            output_start = len(labels)
            labels += [output_vertex(j) for j in range(self.num_classes)]
            vertices += [(label, {"role": "output"}) for label in labels[output_start:]]
            edges.append(mask_edges(self.layer_out.mask, offset, output_start))
        return structure_from_positions(vertices, labels, edges)
