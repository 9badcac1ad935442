"""Any PyTorch model to a graph, at neuron, channel or layer level."""

from __future__ import annotations

import numbers
from typing import Any

from torch import nn

from pypaddle._core.checks import check_real
from pypaddle.errors import ConfigError, InputTypeError
from pypaddle.extract._layers import layer_graph
from pypaddle.extract._trace import trace_model
from pypaddle.extract._units import unit_graph
from pypaddle.graph import LayeredGraph

__all__ = ["to_graph"]

_GRANULARITIES = ("neuron", "channel", "layer")


def to_graph(
    model: nn.Module,
    example_input: Any,
    *,
    granularity: str = "neuron",
    threshold: float | None = None,
    tracer: str = "auto",
) -> LayeredGraph:
    """The structure of ``model`` as a graph, read from one run on ``example_input``.

    The model is traced with ``torch.fx`` (leaf modules such as ``nn.Conv2d`` and every
    masked module stay whole); a model fx cannot trace (data-dependent control flow, a
    custom autograd kernel) is run once with forward hooks on its leaf modules and a
    ``TorchFunctionMode`` recording the torch functions between them. The model is left
    exactly as it was: weights, masks, buffers (batch-norm statistics included),
    ``forward``, hooks, attributes and training mode.

    Parameters
    ----------
    model : nn.Module
        Any module whose output is a tensor or a tuple, list or dict of tensors.
    example_input : Tensor or tuple of Tensor
        What to call the model with; the first dimension of every tensor is the batch.
    granularity : {"neuron", "channel", "layer"}
        ``"neuron"``: one vertex per input element and per output element of every weighted
        layer, pooling and reduction; an edge per connection that exists. ``"channel"``:
        convolutions as channel-to-channel graphs (an edge where a kernel has an active
        weight), linear layers as at neuron level. ``"layer"``: one vertex per module or
        function call, edges along the dataflow (a ResNet's skip connections show).
    threshold : float, optional
        Keep only weights with ``|w| > threshold``. A connection exists where the mask (of a
        masked module, or ``weight_mask`` of ``torch.nn.utils.prune``) is True and, with a
        threshold, the weight is large enough; without either, every structural connection.
    tracer : {"auto", "fx", "hooks"}
        ``"auto"`` tries fx and falls back to hooks.

    Returns
    -------
    LayeredGraph
        Neuron and channel level: vertices ``"module:index"`` (inputs are ``"input:i"``)
        with attributes ``module``, ``kind`` (class or function name), ``index``,
        ``position`` (the unit's coordinates in its sample, ``"c,h,w"``), ``channel`` where
        the tensor has channels, ``layer`` (the depth of the call that made the vertex:
        inputs 0, each weighted layer, window or merge one more than what it reads) and
        ``role`` (``"input"``, ``"hidden"``, ``"output"``); a DAN's vertices carry its own
        vertex ``label`` instead of a position. Layer level: vertices named after the calls
        (``"layer1.0.conv1"``, ``"add"``, ``"input"``, ``"output"``) with ``kind``,
        ``type``, ``module``, ``shape``, ``layer``. Labels are strings and attribute values
        ints and strings, so :func:`pypaddle.graph.write`, ``summary`` and ``draw`` take
        the graph as it is.

    Rules (neuron and channel level): element-wise layers (activations, batch and layer
    norm, dropout, softmax) are transparent; pooling connects each output to its window
    (at channel level it leaves channels as they are); ``flatten``, ``view``, ``permute``,
    indexing, padding and ``torch.cat`` move elements and keep their vertices; ``+``, ``*``
    and other broadcast element-wise functions merge: an output element stands for the
    vertices of all its operands, so a residual ``x + f(x)`` feeds both into the next layer.
    A ``MaskedDeepDAN`` is read from its ``generate_structure``. A custom layer gets one of
    these rules with :func:`~pypaddle.extract.register_rule`.

    Raises
    ------
    ConfigError
        If ``granularity`` or ``tracer`` is not one of the names above, ``threshold`` is
        NaN, infinite or negative, the model's forward fails on ``example_input`` (the
        message names the module or function where it failed and repeats the model's own
        error), or the model holds an operation with no rule at the asked granularity
        (named, with the granularity that works).
    InputTypeError
        If ``model`` is not a module, ``example_input`` not a tensor, ``threshold`` not a
        number, or the model's output holds something other than tensors.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 3))
    >>> graph = to_graph(model, torch.randn(1, 1, 4, 4))
    >>> graph.number_of_nodes(), graph.number_of_edges()  # 16 + 8 + 3 vertices
    (27, 96)
    >>> graph.nodes["0:5"]["position"], graph.nodes["0:5"]["role"]
    ('1,0,1', 'hidden')
    >>> sorted(to_graph(model, torch.randn(1, 1, 4, 4), granularity="channel").edges)[:2]
    [('0:0', '3:0'), ('0:0', '3:1')]
    """
    if not isinstance(granularity, str) or granularity not in _GRANULARITIES:
        raise ConfigError(
            f"granularity must be one of {', '.join(map(repr, _GRANULARITIES))}, "
            f"got {granularity!r}"
        )
    if threshold is not None:
        if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
            raise InputTypeError(
                f"threshold must be a number >= 0 or None, got {threshold!r}; "
                "pass e.g. threshold=1e-3 to keep only weights with |w| > 1e-3"
            )
        threshold = check_real(threshold, "threshold", minimum=0.0)
    trace = trace_model(model, example_input, tracer)
    if granularity == "layer":
        return layer_graph(trace)
    return unit_graph(trace, granularity, threshold)
