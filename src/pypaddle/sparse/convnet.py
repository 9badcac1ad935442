"""A small masked conv net for images: masked conv blocks and a masked classifier head.

``MaskedConvNet`` takes a VGG-style list of blocks (an int is a conv block with that many
output channels, ``"M"`` a 2x2 max pooling, ``"A"`` a 2x2 average pooling); the presets
:func:`masked_lenet5` and :func:`masked_vgg` give the classic shapes, so that pruning
experiments on images need no hand-written model.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from itertools import pairwise
from typing import Any, cast

import torch
from torch import nn

from pypaddle._core.checks import check_real
from pypaddle.errors import ConfigError
from pypaddle.sparse._arguments import check_flag, check_tensor_input
from pypaddle.sparse._common import MaskedModel, check_size, resolve_activation
from pypaddle.sparse.conv import MaskedConv2d
from pypaddle.sparse.masked import MaskedLinearLayer

__all__ = ["VGG_BLOCKS", "MaskedConvNet", "masked_lenet5", "masked_vgg"]

Block = int | str

#: The VGG configurations (Simonyan & Zisserman, table 1): A = 11, B = 13, D = 16, E = 19.
VGG_BLOCKS: dict[int, tuple[Block, ...]] = {
    11: (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    13: (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    16: (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    19: (
        *(64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M"),
        *(512, 512, 512, 512, "M", 512, 512, 512, 512, "M"),
    ),
}
"""The convolution blocks of VGG 11, 13, 16 and 19: channels, ``"M"`` for max pooling."""
_POOLS = {"M": nn.MaxPool2d, "A": nn.AvgPool2d}


class MaskedConvNet(MaskedModel):
    """Masked conv blocks, then a masked fully connected classifier.

    Parameters
    ----------
    input_shape : (channels, height, width)
        The shape of one image.
    num_classes : int
        Number of outputs.
    blocks : sequence of int or str
        An int ``c`` is a :class:`~pypaddle.sparse.MaskedConv2d` to ``c`` channels
        (``kernel_size``, ``padding``), optionally batch norm, then the activation;
        ``"M"`` / ``"A"`` is a 2x2 max / average pooling.
    hidden_layers : sequence of int
        Widths of the masked linear layers between the flattened features and the output.
    kernel_size : int
        Of every conv.
    padding : int, "same", or a sequence of them (one per conv)
        ``"same"`` (the default) keeps the image size.
    batch_norm : bool
        A ``BatchNorm2d`` after every conv.
    activation : nn.Module, class or callable
        After every conv and hidden linear layer (``nn.ReLU`` by default).

    Examples
    --------
    >>> import torch
    >>> model = MaskedConvNet((1, 12, 12), 3, [4, "M", 8, "M"], hidden_layers=[16])
    >>> model(torch.randn(2, 1, 12, 12)).shape
    torch.Size([2, 3])
    >>> model.feature_shape
    (8, 3, 3)
    >>> [type(layer).__name__ for layer in model.masked_convs()]
    ['MaskedConv2d', 'MaskedConv2d']
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        blocks: Sequence[Block],
        *,
        hidden_layers: Sequence[int] = (),
        kernel_size: int = 3,
        padding: int | str | Sequence[int | str] = "same",
        batch_norm: bool = False,
        activation: Any = nn.ReLU,
    ) -> None:
        super().__init__()
        if not _is_sequence(input_shape) or len(input_shape) != 3:
            raise ConfigError(f"input_shape must be (channels, height, width), got {input_shape!r}")
        channels, height, width = (check_size(size, "input_shape") for size in input_shape)
        self.input_shape = (channels, height, width)
        self.num_classes = check_size(num_classes, "num_classes")
        kernel_size = check_size(kernel_size, "kernel_size")
        if not _is_sequence(blocks):
            raise ConfigError(
                f"blocks must be a sequence of ints (conv channels) and 'M' / 'A' (pooling), "
                f"got {blocks!r}"
            )
        if not _is_sequence(hidden_layers):
            raise ConfigError(
                f"hidden_layers must be a sequence of layer widths, got {hidden_layers!r}"
            )
        hidden_widths = [check_size(size, "every hidden layer width") for size in hidden_layers]
        batch_norm = check_flag(batch_norm, "batch_norm")
        resolve_activation(activation)  # checked before anything is built
        for index, block in enumerate(blocks):
            if isinstance(block, str) and block not in _POOLS:
                raise ConfigError(
                    f"block {index} is {block!r}; a block is an int (conv channels), "
                    "'M' (max pooling) or 'A' (average pooling)"
                )
            if not isinstance(block, str):
                check_size(block, f"block {index} (conv output channels)")
        conv_count = sum(1 for block in blocks if not isinstance(block, str))
        paddings = _paddings(padding, conv_count)

        # The geometry first, so that a bad one is refused before any weight is drawn.
        plan: list[tuple[int, int, int | str]] = []  # (in channels, out channels, padding)
        for index, block in enumerate(blocks):
            if isinstance(block, str):
                height, width = height // 2, width // 2
            else:
                out = check_size(block, f"block {index} (conv output channels)")
                pad = paddings.pop(0)
                plan.append((channels, out, pad))
                shrink = 0 if pad == "same" else kernel_size - 1 - 2 * int(pad)
                channels, height, width = out, height - shrink, width - shrink
            if height <= 0 or width <= 0:
                raise ConfigError(
                    f"the image shrinks to nothing at block {index} ({block!r}) for input "
                    f"shape {self.input_shape}; give a larger input, fewer pooling blocks or "
                    "padding='same'"
                )
        features: list[nn.Module] = []
        convs = iter(plan)
        for block in blocks:
            if isinstance(block, str):
                features.append(_POOLS[block](2))
                continue
            size_in, size_out, pad = next(convs)
            features.append(MaskedConv2d(size_in, size_out, kernel_size, padding=pad))
            if batch_norm:
                features.append(nn.BatchNorm2d(size_out))
            features.append(resolve_activation(activation))
        self.features = nn.Sequential(*features)
        self.feature_shape = (channels, height, width)

        sizes = [channels * height * width, *hidden_widths]
        classifier: list[nn.Module] = []
        for size_in, size_out in pairwise(sizes):
            classifier += [MaskedLinearLayer(size_in, size_out), resolve_activation(activation)]
        classifier.append(MaskedLinearLayer(sizes[-1], self.num_classes))
        self.classifier = nn.Sequential(*classifier)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        check_tensor_input(input, type(self).__name__)
        if input.dim() != 4 or tuple(input.shape[1:]) != self.input_shape:
            raise ConfigError(
                f"the model takes images [batch, {', '.join(map(str, self.input_shape))}], "
                f"got an input of shape {tuple(input.shape)}"
            )
        dtype = cast(MaskedLinearLayer, self.classifier[-1]).weight.dtype
        if input.is_floating_point() and input.dtype != dtype:
            input = input.to(dtype)
        return self.classifier(self.features(input).flatten(1))

    def masked_convs(self) -> list[MaskedConv2d]:
        """The masked convolutions, input side first."""
        return [layer for layer in self.features if isinstance(layer, MaskedConv2d)]


def _is_sequence(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def _paddings(padding: Any, count: int) -> list[int | str]:
    """One padding per conv from a single value or a sequence of ``count`` values."""
    if isinstance(padding, (int, str)):
        values = [padding] * count
    elif _is_sequence(padding):
        values = list(padding)
    else:
        raise ConfigError(
            f"padding must be an int >= 0, 'same', or one of them per conv, got {padding!r}"
        )
    if len(values) != count:
        raise ConfigError(f"padding gives {len(values)} values for {count} convs; give one each")
    for value in values:
        if value != "same" and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ConfigError(f"a padding must be a non-negative int or 'same', got {value!r}")
    return values


def masked_lenet5(
    input_shape: Sequence[int] = (1, 28, 28), num_classes: int = 10, **options: Any
) -> MaskedConvNet:
    """LeNet-5's shape: 5x5 convs to 6 and 16 channels with 2x2 max pooling, then 120, 84.

    The first conv pads by 2 (as the usual 28x28 version does), the second not, so a 28x28
    digit gives 16 x 5 x 5 features.

    Examples
    --------
    >>> import torch
    >>> model = masked_lenet5()
    >>> model.feature_shape
    (16, 5, 5)
    >>> model(torch.randn(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """
    options.setdefault("hidden_layers", (120, 84))
    options.setdefault("padding", (2, 0))
    return MaskedConvNet(input_shape, num_classes, [6, "M", 16, "M"], kernel_size=5, **options)


def masked_vgg(
    depth: int = 11,
    input_shape: Sequence[int] = (3, 32, 32),
    num_classes: int = 10,
    *,
    width: float = 1.0,
    batch_norm: bool = True,
    **options: Any,
) -> MaskedConvNet:
    """A VGG (depth 11, 13, 16 or 19) of 3x3 masked convs, channels scaled by ``width``.

    On 32x32 images the five poolings leave 1x1 features, so the head is one masked
    linear layer unless ``hidden_layers`` is given; ``width=0.25`` gives a net small
    enough for a CPU.

    Examples
    --------
    >>> import torch
    >>> model = masked_vgg(11, width=0.125)
    >>> [conv.out_channels for conv in model.masked_convs()]
    [8, 16, 32, 32, 64, 64, 64, 64]
    >>> model(torch.randn(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    """
    if isinstance(depth, bool) or not isinstance(depth, Hashable) or depth not in VGG_BLOCKS:
        raise ConfigError(f"VGG depth must be one of {sorted(VGG_BLOCKS)}, got {depth!r}")
    width = check_real(width, "width (the factor on every conv's channels)", minimum=0.0)
    if width == 0:
        raise ConfigError("width must be a positive number, got 0")
    blocks = [
        block if isinstance(block, str) else max(1, round(block * width))
        for block in VGG_BLOCKS[depth]
    ]
    return MaskedConvNet(input_shape, num_classes, blocks, batch_norm=batch_norm, **options)
