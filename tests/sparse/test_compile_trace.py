"""Masked models under torch.jit.trace and torch.compile give the eager outputs.

torch.compile runs with the ``aot_eager`` backend: it captures the graph with dynamo and
AOT autograd as inductor would, without spending a minute generating C++ per model.
"""

from __future__ import annotations

import warnings

import networkx as nx
import pytest
import torch
from torch import nn

from pypaddle.deploy import compact
from pypaddle.errors import StructureWarning
from pypaddle.sparse import MaskedConv2d, MaskedDeepDAN, MaskedDeepFFN, MaskedLinearLayer


def small_world_dan(**options) -> MaskedDeepDAN:
    graph = nx.watts_strogatz_graph(24, 4, 0.3, seed=1)
    structure = nx.DiGraph((min(u, v), max(u, v)) for u, v in graph.edges)
    structure.add_nodes_from(range(24))
    torch.manual_seed(0)
    # oriented by label, the small world is 17 layers of 1.4 vertices: degenerate on purpose
    with pytest.warns(StructureWarning, match="layers deep"):
        model = MaskedDeepDAN(12, 3, structure, **options)
    for layer in model.layers_main_hidden:
        layer.mask &= torch.rand(layer.mask.shape) < 0.6
    return model


def pruned_ffn() -> MaskedDeepFFN:
    torch.manual_seed(0)
    model = MaskedDeepFFN(12, 3, [16, 8])
    model.layers_main_hidden[0].prune_neurons([0, 5])
    model.layers_main_hidden[1].mask[:, ::3] = False
    return model


def pruned_cnn() -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Unflatten(1, (3, 2, 2)),
        MaskedConv2d(3, 6, 3, padding=1),
        nn.ReLU(),
        MaskedConv2d(6, 4, 2),
        nn.Flatten(),
        MaskedLinearLayer(4, 3),
    )
    model[1].prune_output_channels([2])
    model[3].mask[:, :, 0] = False
    return model


MODELS = {
    "cnn": pruned_cnn,
    "compact-cnn": lambda: compact(pruned_cnn()),
    "ffn": pruned_ffn,
    "dan": small_world_dan,
    "dan-layer-norm": lambda: small_world_dan(use_layer_norm=True, activation=nn.GELU),
    "compact-dan": lambda: compact(small_world_dan()),
}


@pytest.fixture(params=list(MODELS))
def model(request):
    return MODELS[request.param]()


def test_trace_equals_eager(model):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.13 deprecates trace
        traced = torch.jit.trace(model, (torch.randn(4, 12),), check_trace=False)
    x = torch.randn(7, 12)  # another batch size than the example
    torch.testing.assert_close(traced(x), model(x), rtol=0, atol=1e-6)


@pytest.mark.slow
def test_compile_equals_eager_forward_and_backward(model):
    compiled = torch.compile(model, backend="aot_eager")
    x = torch.randn(5, 12)
    torch.testing.assert_close(compiled(x), model(x), rtol=0, atol=1e-6)
    compiled(x).square().sum().backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad()
    model(x).square().sum().backward()
    for name, parameter in model.named_parameters():
        torch.testing.assert_close(grads[name], parameter.grad, rtol=1e-5, atol=1e-6)


def test_compiled_model_sees_a_mask_edit():
    model = pruned_ffn()
    compiled = torch.compile(model, backend="aot_eager")
    x = torch.randn(3, 12)
    compiled(x)
    model.layer_out.mask[1] = False
    model.layer_out.bias_mask[1] = False
    assert torch.equal(compiled(x)[:, 1], torch.zeros(3))
