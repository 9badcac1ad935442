"""save / load / export_onnx of compacted models."""

from __future__ import annotations

import importlib.util
import io

import networkx as nx
import pytest
import torch
from torch import nn

from bad_values import assert_unchanged, snapshot
from pypaddle.deploy import CompactDAN, compact, export_onnx, load, save
from pypaddle.errors import ConfigError, InputTypeError
from pypaddle.sparse import MaskedConv2d, MaskedDeepDAN, MaskedDeepFFN, MaskedLinearLayer


def pruned_ffn() -> MaskedDeepFFN:
    torch.manual_seed(0)
    model = MaskedDeepFFN((1, 4, 4), 3, [12, 10], activation=nn.Sigmoid)
    model.layers_main_hidden[0].prune_neurons([0, 3, 5])
    model.layers_main_hidden[1].mask[:, 1::2] = False
    return model


def pruned_dan() -> MaskedDeepDAN:
    torch.manual_seed(0)
    graph = nx.gnp_random_graph(25, 0.25, seed=3, directed=True)
    structure = nx.DiGraph((u, v) for u, v in graph.edges if u < v)
    structure.add_nodes_from(range(25))
    model = MaskedDeepDAN(16, 3, structure)
    for layer in model.layers_main_hidden:
        layer.mask &= torch.rand(layer.mask.shape) < 0.5
    return model


def pruned_cnn() -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Unflatten(1, (1, 4, 4)),
        MaskedConv2d(1, 4, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        MaskedLinearLayer(64, 5),
        nn.LeakyReLU(0.2),
        MaskedLinearLayer(5, 3),
    )
    model[1].prune_output_channels([2])
    model[4].prune_neurons([1])
    return model


MAKERS = {"ffn": pruned_ffn, "dan": pruned_dan, "cnn": pruned_cnn}


@pytest.fixture(params=list(MAKERS))
def compacted(request):
    return compact(MAKERS[request.param]())


class TestSaveLoad:
    def test_round_trip_gives_the_same_outputs(self, compacted, tmp_path):
        path = tmp_path / "model.pt"
        save(compacted, path)
        loaded = load(path)
        assert type(loaded) is type(compacted)
        x = torch.randn(6, 16)
        torch.testing.assert_close(loaded(x), compacted(x), rtol=0, atol=0)
        assert loaded.state_dict().keys() == compacted.state_dict().keys()

    def test_dtype_survives(self, tmp_path):
        small = compact(pruned_ffn()).double()
        save(small, tmp_path / "m.pt")
        assert next(load(tmp_path / "m.pt").parameters()).dtype == torch.float64

    def test_dan_gathers_are_in_the_file(self, tmp_path):
        small = compact(pruned_dan())
        assert isinstance(small, CompactDAN)
        assert any(name is not None for name in small.index_names)
        save(small, tmp_path / "m.pt")
        content = torch.load(tmp_path / "m.pt", weights_only=True)
        assert any(key.startswith("index_") for key in content["state_dict"])

    @pytest.mark.parametrize("function", [torch.tanh, torch.relu, torch.nn.functional.gelu])
    def test_torch_function_activation_is_saved_by_name(self, function, tmp_path):
        # torch's built-in functions have the qualified name of an internal class
        torch.manual_seed(0)
        model = MaskedDeepFFN(4, 2, [6, 5], activation=function)
        model.layers_main_hidden[0].prune_neurons([1, 2])
        small = compact(model)
        save(small, tmp_path / "m.pt")
        loaded = load(tmp_path / "m.pt")
        assert loaded[2].function is function
        x = torch.randn(3, 4)
        torch.testing.assert_close(loaded(x), model(x))

    def test_lambda_activation_is_refused_with_advice(self, tmp_path):
        model = MaskedDeepFFN(4, 2, [6], activation=lambda x: x.clamp(0, 1))
        model.layers_main_hidden[0].prune_neurons([0])
        small = compact(model)
        with pytest.raises(ConfigError, match=r"torch\.save"):
            save(small, tmp_path / "m.pt")

    def test_custom_module_is_refused_with_advice(self, tmp_path):
        class Custom(nn.Module):
            def forward(self, x):
                return x

        with pytest.raises(ConfigError, match=r"torch\.save"):
            save(nn.Sequential(nn.Linear(2, 2), Custom()), tmp_path / "m.pt")

    def test_a_file_from_elsewhere_is_refused(self, tmp_path):
        torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
        with pytest.raises(ConfigError, match="not written by pypaddle"):
            load(tmp_path / "other.pt")

    def test_only_torch_and_pypaddle_classes_are_rebuilt(self, tmp_path):
        save(nn.Sequential(nn.Linear(2, 2)), tmp_path / "m.pt")
        content = torch.load(tmp_path / "m.pt", weights_only=True)
        content["architecture"]["children"][0]["class"] = "os.system"
        torch.save(content, tmp_path / "evil.pt")
        with pytest.raises(ConfigError, match="only torch and pypaddle"):
            load(tmp_path / "evil.pt")


class TestOnnx:
    @pytest.mark.slow
    @pytest.mark.parametrize("make", list(MAKERS.values()), ids=list(MAKERS))
    def test_onnxruntime_matches(self, make, tmp_path):
        runtime = pytest.importorskip("onnxruntime")
        pytest.importorskip("onnxscript")
        small = compact(make())
        path = tmp_path / "model.onnx"
        export_onnx(small, path, torch.randn(2, 16))
        session = runtime.InferenceSession(str(path))
        x = torch.randn(9, 16)  # another batch size than the example
        (out,) = session.run(None, {"input": x.numpy()})
        torch.testing.assert_close(torch.from_numpy(out), small(x).detach(), rtol=0, atol=1e-4)
        assert files_in(tmp_path) == ["model.onnx"]  # no temporary left behind

    def test_missing_onnx_says_what_to_install(self, monkeypatch, tmp_path):
        real = importlib.util.find_spec
        monkeypatch.setattr(
            importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else real(name)
        )
        with pytest.raises(ConfigError, match=r"pip install 'pypaddle\[onnx\]'"):
            export_onnx(nn.Linear(2, 2), tmp_path / "m.onnx", torch.randn(1, 2))

    def test_swapped_arguments_are_named(self, tmp_path):
        pytest.importorskip("onnxscript")
        with pytest.raises(InputTypeError, match=r"\(model, path, example_input\)"):
            export_onnx(nn.Linear(2, 2), torch.randn(1, 2), tmp_path / "m.onnx")
        assert not (tmp_path / "m.onnx").exists()


def files_in(folder):
    return sorted(path.name for path in folder.iterdir())


class TestAtomicWrites:
    """Finding 8 of issue 16: a save killed half way destroyed the previous file."""

    @pytest.mark.parametrize("failure", [OSError("disk full"), KeyboardInterrupt()])
    def test_a_save_failing_half_way_keeps_the_previous_file(self, failure, tmp_path, monkeypatch):
        path = tmp_path / "model.pt"
        save(compact(pruned_ffn()), path)
        before = path.read_bytes()
        real_save = torch.save

        def half(content, handle):
            real_save(content, handle)
            handle.truncate(len(before) // 3)
            raise failure

        monkeypatch.setattr(torch, "save", half)
        with pytest.raises(type(failure)):
            save(nn.Sequential(nn.Linear(2, 2)), path)
        assert path.read_bytes() == before
        assert files_in(tmp_path) == ["model.pt"]
        monkeypatch.undo()
        torch.testing.assert_close(
            load(path)(torch.ones(1, 16)), compact(pruned_ffn())(torch.ones(1, 16))
        )

    def test_a_refused_model_writes_nothing(self, tmp_path):
        class Custom(nn.Module):
            def forward(self, x):
                return x

        (tmp_path / "model.pt").write_bytes(b"old")
        with pytest.raises(ConfigError):
            save(nn.Sequential(Custom()), tmp_path / "model.pt")
        assert (tmp_path / "model.pt").read_bytes() == b"old"
        assert files_in(tmp_path) == ["model.pt"]

    def test_save_makes_missing_folders_and_keeps_the_file_mode(self, tmp_path):
        path = tmp_path / "a" / "b" / "model.pt"
        save(nn.Linear(2, 2), path)
        assert files_in(path.parent) == ["model.pt"]
        assert path.stat().st_mode & 0o044  # readable by others, unlike mkstemp's 0o600

    def test_a_file_object_is_written_directly(self, tmp_path):
        buffer = io.BytesIO()
        save(nn.Sequential(nn.Linear(2, 2)), buffer)
        buffer.seek(0)
        assert isinstance(load(buffer)[0], nn.Linear)

    def test_export_failing_half_way_keeps_the_previous_file(self, tmp_path, monkeypatch):
        pytest.importorskip("onnxscript")
        path = tmp_path / "model.onnx"
        path.write_bytes(b"old onnx")

        class HalfProgram:
            def save(self, destination):
                with open(destination, "wb") as handle:
                    handle.write(b"half")
                with open(f"{destination}.data", "wb") as handle:
                    handle.write(b"weights")
                raise OSError("disk full")

        monkeypatch.setattr(torch.onnx, "export", lambda *args, **kwargs: HalfProgram())
        with pytest.raises(OSError, match="disk full"):
            export_onnx(nn.Linear(2, 2), path, torch.randn(1, 2))
        assert path.read_bytes() == b"old onnx"
        assert files_in(tmp_path) == ["model.onnx"]

    def test_export_moves_every_file_it_wrote(self, tmp_path, monkeypatch):
        pytest.importorskip("onnxscript")

        class Program:
            def save(self, destination):
                with open(f"{destination}.data", "wb") as handle:
                    handle.write(b"weights")
                with open(destination, "wb") as handle:
                    handle.write(b"graph")

        monkeypatch.setattr(torch.onnx, "export", lambda *args, **kwargs: Program())
        export_onnx(nn.Linear(2, 2), tmp_path / "out" / "m.onnx", torch.randn(1, 2))
        assert files_in(tmp_path / "out") == ["m.onnx", "m.onnx.data"]
        assert (tmp_path / "out" / "m.onnx").read_bytes() == b"graph"

    def test_export_onto_a_folder_is_refused_before_exporting(self, tmp_path, monkeypatch):
        pytest.importorskip("onnxscript")
        calls = []
        monkeypatch.setattr(torch.onnx, "export", lambda *args, **kwargs: calls.append(args))
        (tmp_path / "m.onnx").mkdir()
        with pytest.raises(ConfigError, match="it is a folder"):
            export_onnx(nn.Linear(2, 2), tmp_path / "m.onnx", torch.randn(1, 2))
        assert calls == []


class TestOnnxBadValues:
    @pytest.mark.parametrize("model", [None, 3, "model", nn.Linear, torch.zeros(2), object()])
    def test_model_must_be_a_module(self, model, tmp_path):
        pytest.importorskip("onnxscript")
        with pytest.raises(InputTypeError, match="Module"):
            export_onnx(model, tmp_path / "m.onnx", torch.randn(1, 2))
        assert files_in(tmp_path) == []

    @pytest.mark.parametrize("path", [None, 3, b"m.onnx", ["m.onnx"], object()])
    def test_path_must_be_a_path_and_the_model_stays(self, path, tmp_path, monkeypatch):
        pytest.importorskip("onnxscript")
        monkeypatch.chdir(tmp_path)
        model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)).train()
        before = snapshot(model)
        with pytest.raises(InputTypeError):
            export_onnx(model, path, torch.randn(1, 2))
        assert_unchanged(before, model)
        assert files_in(tmp_path) == []
