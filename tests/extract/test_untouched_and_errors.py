"""The model is left exactly as it was, and bad input gets a clear pypaddle error."""

from __future__ import annotations

import networkx as nx
import pytest
import torch
from models import to_graph_with_tuples as to_graph
from torch import nn

from pypaddle.errors import ConfigError, InputTypeError, PaddleError
from pypaddle.extract import register_rule
from pypaddle.sparse import MaskedLinearLayer


class Recorded(nn.Module):
    """Batch norm, dropout, a masked layer, a user hook and a forward that sets an attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3)
        self.norm = nn.BatchNorm2d(3)
        self.drop = nn.Dropout(0.5)
        self.linear = MaskedLinearLayer(12, 4)
        self.linear.mask[:, :5] = False
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        self.last_shape = x.shape
        y = self.drop(torch.relu(self.norm(self.conv(x))))
        return self.linear(y.flatten(1))


def snapshot(model: nn.Module) -> dict:
    return {
        "state": {key: value.clone() for key, value in model.state_dict().items()},
        "objects": {key: id(value) for key, value in model.state_dict(keep_vars=True).items()},
        "versions": {key: value._version for key, value in model.named_buffers()},
        "attributes": {name: dict(module.__dict__) for name, module in model.named_modules()},
        "training": [module.training for module in model.modules()],
        "hooks": [(len(m._forward_hooks), len(m._forward_pre_hooks)) for m in model.modules()],
    }


def assert_unchanged(model: nn.Module, before: dict) -> None:
    after = snapshot(model)
    assert after["objects"] == before["objects"]
    assert after["state"].keys() == before["state"].keys()
    for key, value in before["state"].items():
        assert torch.equal(after["state"][key], value), key
    assert after["versions"] == before["versions"]
    assert after["training"] == before["training"]
    assert after["hooks"] == before["hooks"]
    for name, attributes in before["attributes"].items():
        now = after["attributes"][name]
        assert now.keys() == attributes.keys(), name
        assert all(now[key] is value for key, value in attributes.items()), name
    assert "forward" not in model.__dict__


@pytest.mark.parametrize("tracer", ["fx", "hooks"])
@pytest.mark.parametrize("granularity", ["neuron", "channel", "layer"])
def test_the_model_is_left_exactly_as_it_was(tracer, granularity):
    torch.manual_seed(0)
    model = Recorded()
    model.train()
    model.linear.eval()  # mixed modes stay mixed
    seen = []
    model.conv.register_forward_hook(lambda module, args, out: seen.append(out.shape))
    model(torch.randn(2, 1, 4, 4))  # warm the masked layer's caches, as a user would
    before = snapshot(model)
    graph = to_graph(model, torch.randn(2, 1, 4, 4), granularity=granularity, tracer=tracer)
    assert graph.graph["tracer"] == tracer
    assert_unchanged(model, before)
    assert model.calls == 1  # the counter the forward bumped is restored
    assert len(seen) == 2  # the user's hook is still registered (and ran, as on any call)
    if granularity == "neuron":
        # 16 inputs, 3 x 2 x 2 conv outputs, 4 outputs; the mask hides 5 of 12 inputs.
        assert graph.number_of_nodes() == 16 + 12 + 4
        assert graph.number_of_edges() == 12 * 9 + 4 * 7


def test_batch_norm_statistics_do_not_move():
    model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3)).train()
    mean = model[1].running_mean.clone()
    to_graph(model, torch.randn(4, 3) * 10 + 5)
    assert torch.equal(model[1].running_mean, mean)
    assert int(model[1].num_batches_tracked) == 0


class TestWrongInput:
    @pytest.mark.parametrize("tracer", ["auto", "hooks"])
    def test_wrong_shape_shows_the_models_error_and_where(self, tracer):
        model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
        before = snapshot(model)
        with pytest.raises(ConfigError, match=r"in module '0'.*mat1 and mat2") as caught:
            to_graph(model, torch.randn(1, 5), tracer=tracer)
        assert "(1, 5)" in str(caught.value)
        assert isinstance(caught.value.__cause__, RuntimeError)
        assert_unchanged(model, before)

    @pytest.mark.parametrize("tracer", ["auto", "hooks"])
    def test_failure_in_a_function_names_it(self, tracer):
        class Cat(nn.Module):
            def forward(self, x):
                return torch.cat([x, x[:, :, :1]], dim=1)

        with pytest.raises(ConfigError, match=r"in 'cat'.*Sizes of tensors must match"):
            to_graph(Cat(), torch.randn(1, 2, 3), tracer=tracer)

    def test_failure_in_the_models_own_code_says_after_what(self):
        class Checked(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.fc = nn.Linear(3, 3)

            def forward(self, x):
                y = self.fc(x)
                if y.shape[0] != 4:
                    raise ValueError("this model wants batches of 4")
                return y

        with pytest.raises(ConfigError, match=r"own code after module 'fc'.*batches of 4"):
            to_graph(Checked(), torch.randn(1, 3), tracer="hooks")

    def test_example_input_must_be_tensors(self):
        with pytest.raises(InputTypeError, match="example_input must be a tensor"):
            to_graph(nn.Linear(2, 2), [[1.0, 2.0]])
        with pytest.raises(InputTypeError, match=r"model must be a torch\.nn\.Module"):
            to_graph(lambda x: x, torch.randn(1, 2))
        with pytest.raises(ConfigError, match="batch dimension"):
            to_graph(nn.Linear(2, 2), torch.tensor(1.0))

    def test_options_are_checked(self):
        with pytest.raises(ConfigError, match="granularity must be one of"):
            to_graph(nn.Linear(2, 2), torch.randn(1, 2), granularity="weights")
        with pytest.raises(InputTypeError, match="threshold"):
            to_graph(nn.Linear(2, 2), torch.randn(1, 2), threshold="0.1")
        with pytest.raises(ConfigError, match="tracer must be"):
            to_graph(nn.Linear(2, 2), torch.randn(1, 2), tracer="jit")


class TestUnsupported:
    def test_unknown_layer_is_named_with_the_granularity_that_works(self):
        model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Upsample(scale_factor=2))
        before = snapshot(model)
        for granularity in ("neuron", "channel"):
            with pytest.raises(ConfigError, match=r"module '1' \(Upsample\).*granularity='layer'"):
                to_graph(model, torch.randn(1, 1, 5, 5), granularity=granularity)
        graph = to_graph(model, torch.randn(1, 1, 5, 5), granularity="layer")
        assert list(nx.topological_sort(graph)) == ["input", "0", "1", "output"]
        assert_unchanged(model, before)

    def test_linear_on_a_sequence_works_at_neuron_level_only(self):
        model = nn.Sequential(nn.Linear(3, 2))
        with pytest.raises(ConfigError, match="granularity='neuron' or 'layer'"):
            to_graph(model, torch.randn(1, 4, 3), granularity="channel")
        assert to_graph(model, torch.randn(1, 4, 3)).number_of_edges() == 4 * 6

    def test_weights_computed_from_the_input_are_refused(self):
        class Attention(nn.Module):
            def forward(self, x):
                return torch.nn.functional.linear(x, x[0])

        with pytest.raises(ConfigError, match=r"'linear'.*weight from the input"):
            to_graph(Attention(), torch.randn(3, 3))

    def test_reducing_the_batch_is_refused_below_layer_level(self):
        class Total(nn.Module):
            def forward(self, x):
                return x.sum(0, keepdim=True) * 2

        with pytest.raises(ConfigError, match="batch dimension"):
            to_graph(Total(), torch.randn(3, 2))
        assert to_graph(Total(), torch.randn(3, 2), granularity="layer").number_of_nodes() == 4


class TestOutputs:
    @pytest.mark.parametrize(
        "result", [None, "text", {"logits": 1.0}, (1, 2)], ids=["None", "str", "dict", "ints"]
    )
    @pytest.mark.parametrize("tracer", ["auto", "hooks"])
    def test_non_tensor_outputs_are_refused(self, result, tracer):
        class Odd(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.linear = nn.Linear(2, 2)

            def forward(self, x):
                self.linear(x)
                return result

        model = Odd()
        before = snapshot(model)
        with pytest.raises(InputTypeError, match="not tensors") as caught:
            to_graph(model, torch.randn(1, 2), tracer=tracer)
        assert isinstance(caught.value, PaddleError)
        assert_unchanged(model, before)

    def test_tuple_and_dict_outputs_all_count(self):
        class Two(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.a, self.b = nn.Linear(2, 3), nn.Linear(2, 1)

            def forward(self, x):
                return {"a": self.a(x), "b": (self.b(x),)}

        graph = to_graph(Two(), torch.randn(1, 2))
        outputs = {v for v, role in graph.nodes(data="role") if role == "output"}
        assert outputs == {("a", 0), ("a", 1), ("a", 2), ("b", 0)}


def test_data_dependent_forward_falls_back_to_hooks():
    class Branchy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(3, 2), nn.Linear(3, 2)

        def forward(self, x):
            return self.a(x) if x.sum() > 0 else self.b(x)

    x = torch.ones(1, 3)
    graph = to_graph(Branchy(), x)
    assert graph.graph["tracer"] == "hooks"
    assert {v[0] for v in graph} == {"input", "a"}
    with pytest.raises(ConfigError, match=r"torch\.fx cannot trace Branchy"):
        to_graph(Branchy(), x, tracer="fx")


class TestRegisterRule:
    def test_a_registered_module_becomes_a_leaf_with_that_rule(self):
        class Gauss(nn.Module):
            def forward(self, x):
                return torch.special.ndtr(x)

        class Shifted(Gauss):
            pass

        model = nn.Sequential(nn.Linear(3, 2), Shifted(), nn.Linear(2, 1))
        with pytest.raises(ConfigError, match="register_rule"):
            to_graph(model, torch.randn(1, 3))
        register_rule(Gauss, "transparent")
        try:
            graph = to_graph(model, torch.randn(1, 3))  # the subclass follows its base
            assert {(u[0], v[0]) for u, v in graph.edges} == {("input", "0"), ("0", "2")}
            layers = to_graph(model, torch.randn(1, 3), granularity="layer")
            assert layers.nodes["1"]["type"] == "Shifted"
        finally:
            register_rule(Gauss, None)
        with pytest.raises(ConfigError, match="has no neuron-level rule"):
            to_graph(model, torch.randn(1, 3))

    def test_bad_registrations_are_refused(self):
        with pytest.raises(ConfigError, match="rule must be one of"):
            register_rule(nn.Identity, "magic")
        with pytest.raises(InputTypeError, match=r"nn\.Module class"):
            register_rule(len, "transparent")


def test_an_elementwise_function_of_one_tensor_stays_transparent():
    class Swish(nn.Module):
        def forward(self, x):
            return x * torch.sigmoid(x)

    graph = to_graph(nn.Sequential(nn.Linear(3, 2), Swish(), nn.Linear(2, 1)), torch.randn(1, 3))
    assert graph.number_of_nodes() == 3 + 2 + 1
    assert graph.number_of_edges() == 6 + 2
