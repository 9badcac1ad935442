"""Issue 16 for the masked layers: masks honoured however edited, masks checked on load.

Finding 7: a mask edited through ``.data`` or ``.numpy()`` after a forward was ignored by
masked linear, conv and recurrent layers (and the DAN's torch and module paths), because
the mask values were cached by the mask's version counter, which those edits bypass.
Every test here builds a fresh layer from the edited layer's ``state_dict`` and asserts
that both compute the same thing.
"""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest
import torch

from pypaddle.errors import ConfigError, MaskError
from pypaddle.sparse import (
    MaskedConv1d,
    MaskedConv2d,
    MaskedDeepDAN,
    MaskedDeepFFN,
    MaskedGRU,
    MaskedLinearLayer,
    MaskedLSTM,
    MaskedRNN,
)


def _first(output):
    return output[0] if isinstance(output, tuple) else output


def _load(module):
    fresh = MAKERS[type(module)](seed=99)
    fresh.load_state_dict(module.state_dict())
    return fresh


MAKERS = {
    MaskedLinearLayer: lambda seed=0: (torch.manual_seed(seed), MaskedLinearLayer(6, 4))[1],
    MaskedConv1d: lambda seed=0: (torch.manual_seed(seed), MaskedConv1d(3, 4, 3))[1],
    MaskedConv2d: lambda seed=0: (torch.manual_seed(seed), MaskedConv2d(3, 4, 3, groups=1))[1],
    MaskedRNN: lambda seed=0: (torch.manual_seed(seed), MaskedRNN(5, 4, num_layers=2))[1],
    MaskedGRU: lambda seed=0: (torch.manual_seed(seed), MaskedGRU(5, 4, bidirectional=True))[1],
    MaskedLSTM: lambda seed=0: (torch.manual_seed(seed), MaskedLSTM(5, 4, proj_size=2))[1],
}
INPUTS = {
    MaskedLinearLayer: (3, 6),
    MaskedConv1d: (2, 3, 9),
    MaskedConv2d: (2, 3, 7, 7),
    MaskedRNN: (7, 2, 5),
    MaskedGRU: (7, 2, 5),
    MaskedLSTM: (7, 2, 5),
}


def _input(module):
    return torch.randn(*INPUTS[type(module)], generator=torch.Generator().manual_seed(3))


def _mask_name(module):
    return module.masked_parameters()[0][1]


def _edit_in_place(module, name):
    module.get_buffer(name).view(-1)[::2] = False


def _edit_data(module, name):
    module.get_buffer(name).data.view(-1)[::2] = False


def _edit_numpy(module, name):
    module.get_buffer(name).numpy().reshape(-1)[::2] = False


def _edit_new_data(module, name):
    mask = module.get_buffer(name)
    new = mask.clone()
    new.view(-1)[::2] = False
    mask.data = new


def _edit_load_state_dict(module, name):
    state = module.state_dict()
    state[name] = state[name].clone()
    state[name].view(-1)[::2] = False
    module.load_state_dict(state)


def _edit_set_mask(module, name):
    weight = {mask: weight for weight, mask in module.masked_parameters()}[name]
    new = module.get_buffer(name).clone()
    new.view(-1)[::2] = False
    module.set_mask(new, weight)


EDITS = {
    "in place": _edit_in_place,
    ".data": _edit_data,
    ".numpy()": _edit_numpy,
    "mask.data = new": _edit_new_data,
    "load_state_dict": _edit_load_state_dict,
    "set_mask": _edit_set_mask,
}


@pytest.mark.parametrize("edit", list(EDITS))
@pytest.mark.parametrize("make", list(MAKERS.values()), ids=[c.__name__ for c in MAKERS])
def test_a_mask_edited_after_a_forward_is_honoured(make, edit):
    module = make()
    x = _input(module)
    before = _first(module(x)).detach()  # a forward first: nothing may be kept from it
    density = module.density
    EDITS[edit](module, _mask_name(module))
    assert module.density < density
    after = _first(module(x)).detach()
    assert not torch.equal(after, before)
    torch.testing.assert_close(after, _first(_load(module)(x)), rtol=0, atol=0)


@pytest.mark.parametrize("edit", [".data", ".numpy()"])
@pytest.mark.parametrize("make", list(MAKERS.values()), ids=[c.__name__ for c in MAKERS])
def test_every_mask_of_a_module_is_honoured(make, edit):
    module = make()
    x = _input(module)
    module(x)
    for _, name in module.masked_parameters():
        EDITS[edit](module, name)
    torch.testing.assert_close(_first(module(x)), _first(_load(module)(x)), rtol=0, atol=0)


@pytest.mark.parametrize("make", list(MAKERS.values()), ids=[c.__name__ for c in MAKERS])
def test_a_mask_made_full_again_through_data_is_honoured(make):
    module = make()
    x = _input(module)
    dense = _first(module(x)).detach()
    module.get_buffer(_mask_name(module)).view(-1)[::2] = False
    module(x)
    module.get_buffer(_mask_name(module)).data.fill_(True)
    torch.testing.assert_close(_first(module(x)), dense, rtol=0, atol=0)


def test_bias_mask_edited_through_data_is_honoured():
    layer = MAKERS[MaskedLinearLayer]()
    x = _input(layer)
    layer(x)
    layer.bias_mask.data[1] = False
    out = layer(x)
    torch.testing.assert_close(out[:, 1], x @ layer.weight[1].detach(), rtol=0, atol=1e-6)
    torch.testing.assert_close(out, _load(layer)(x), rtol=0, atol=0)


def test_gradient_follows_a_mask_edited_through_numpy():
    layer = MAKERS[MaskedLinearLayer]()
    x = _input(layer)
    layer(x).sum().backward()
    layer.zero_grad()
    layer.mask.numpy()[0, :] = False
    layer(x).sum().backward()
    assert layer.weight.grad[0].tolist() == [0.0] * 6
    assert bool((layer.weight.grad[1:] != 0).all())


def test_model_of_layers_honours_data_edits():
    torch.manual_seed(0)
    model = MaskedDeepFFN(6, 3, [5, 4])
    x = torch.randn(4, 6)
    model(x)
    model.layers_main_hidden[1].mask.data[:, 0] = False
    model.layer_out.mask.numpy()[2] = False
    fresh = MaskedDeepFFN(6, 3, [5, 4])
    fresh.load_state_dict(model.state_dict())
    torch.testing.assert_close(model(x), fresh(x), rtol=0, atol=0)


@pytest.mark.parametrize("kernel", ["torch", "modules"])
def test_dan_paths_honour_data_and_numpy_edits(kernel):
    structure = nx.DiGraph([(0, 2), (1, 2), (0, 3), (2, 4), (3, 4), (1, 4)])
    torch.manual_seed(0)
    model = MaskedDeepDAN(3, 2, structure, kernel=kernel)
    x = torch.randn(5, 3)
    model(x)
    model.hidden_mask.data[0] = False
    model.layers_main_hidden[-1].mask.numpy()[0, 0] = False
    fresh = MaskedDeepDAN(3, 2, structure, kernel=kernel)
    fresh.load_state_dict(model.state_dict())
    torch.testing.assert_close(model(x), fresh(x), rtol=0, atol=0)


# -- load_state_dict checks masks as assignment does (finding 6) ------------------------
BAD_MASK_VALUES = [0.5, 7.0, math.nan, -1.0, math.inf]


@pytest.mark.parametrize("value", BAD_MASK_VALUES)
@pytest.mark.parametrize("make", list(MAKERS.values()), ids=[c.__name__ for c in MAKERS])
def test_load_state_dict_refuses_masks_that_are_not_boolean(make, value):
    from bad_values import assert_unchanged, snapshot

    module = make()
    other = make(seed=5)
    name = _mask_name(module)
    state = other.state_dict()
    state[name] = state[name].to(torch.float32)
    state[name].view(-1)[0] = value
    before = snapshot(module)
    with pytest.raises(MaskError) as info:
        module.load_state_dict(state)
    assert name in str(info.value)
    assert_unchanged(before, module)


@pytest.mark.parametrize("make", list(MAKERS.values()), ids=[c.__name__ for c in MAKERS])
def test_load_state_dict_refuses_a_mask_of_the_wrong_shape_naming_both(make):
    from bad_values import assert_unchanged, snapshot

    module = make()
    name = _mask_name(module)
    state = make(seed=5).state_dict()
    shape = tuple(state[name].shape)
    wrong = (shape[0] + 1, *shape[1:])
    state[name] = torch.ones(wrong, dtype=torch.bool)
    before = snapshot(module)
    with pytest.raises(MaskError) as info:
        module.load_state_dict(state, strict=False)
    assert str(wrong) in str(info.value)
    assert str(shape) in str(info.value)
    assert_unchanged(before, module)


def test_load_state_dict_accepts_zero_one_masks_and_converts_them():
    layer = MaskedLinearLayer(3, 2)
    state = layer.state_dict()
    state["mask"] = torch.tensor([[1.0, 0.0, 1.0], [0, 1, 1]])
    state["bias_mask"] = np.array([0, 1]) == 1
    state["bias_mask"] = torch.as_tensor(state["bias_mask"])
    layer.load_state_dict(state)
    assert layer.mask.dtype == torch.bool
    assert layer.mask.tolist() == [[True, False, True], [False, True, True]]
    assert layer.bias_mask.tolist() == [False, True]


@pytest.mark.parametrize("bad", [torch.tensor([0.5, 1.0]), torch.ones(3, dtype=torch.bool)])
def test_load_state_dict_checks_the_bias_mask(bad):
    from bad_values import assert_unchanged, snapshot

    layer = MaskedLinearLayer(3, 2)
    state = MaskedLinearLayer(3, 2).state_dict()
    state["bias_mask"] = bad
    before = snapshot(layer)
    with pytest.raises(MaskError):
        layer.load_state_dict(state)
    assert_unchanged(before, layer)


def test_a_model_refusing_a_mask_loads_nothing():
    from bad_values import assert_unchanged, snapshot

    torch.manual_seed(0)
    model = MaskedDeepFFN(6, 3, [5, 4])
    state = MaskedDeepFFN(6, 3, [5, 4]).state_dict()
    state["layer_out.mask"] = torch.full((3, 4), 0.5)
    before = snapshot(model)
    with pytest.raises(MaskError):
        model.load_state_dict(state)
    assert_unchanged(before, model)


# -- recompute_mask(theta) is checked (finding 6) ---------------------------------------
@pytest.mark.parametrize("theta", [math.nan, -0.1, math.inf, -math.inf, "0.1", None, True])
@pytest.mark.parametrize("make", list(MAKERS.values()), ids=[c.__name__ for c in MAKERS])
def test_recompute_mask_refuses_a_bad_theta(make, theta):
    from bad_values import assert_unchanged, snapshot

    module = make()
    before = snapshot(module)
    with pytest.raises(ConfigError) as info:
        module.recompute_mask(theta)
    assert "theta" in str(info.value)
    assert_unchanged(before, module)


def test_recompute_mask_of_a_model_refuses_nan_before_any_layer():
    from bad_values import assert_unchanged, snapshot

    model = MaskedDeepFFN(6, 3, [5, 4])
    before = snapshot(model)
    with pytest.raises(ConfigError):
        model.recompute_mask(math.nan)
    assert_unchanged(before, model)


def test_recompute_mask_accepts_numpy_theta():
    layer = MaskedLinearLayer(3, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.1, 0.5, 0.0], [1.0, -0.2, 0.3]]))
    layer.recompute_mask(np.float32(0.25))
    assert layer.mask.tolist() == [[False, True, False], [True, False, True]]
