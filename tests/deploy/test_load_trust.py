"""deploy.load builds only what is registered: crafted, corrupt and foreign files.

Finding 1 of issue 16: a plain-data file named ``subprocess.Popen`` through a torch
re-export, and load called it; a ``{"function": "some_module.f"}`` entry was imported
before any check. Finding 11: corrupt files gave raw tracebacks.
"""

from __future__ import annotations

import io
import math
import pickle
import sys
import zipfile

import networkx as nx
import pytest
import torch
from torch import nn

from bad_values import NOT_COUNTS, assert_unchanged, snapshot
from pypaddle.deploy import CompactDAN, compact, load, register_loadable, save
from pypaddle.errors import ConfigError, InputTypeError, ModelFileError, PaddleError
from pypaddle.sparse import MaskedDeepDAN

# subprocess.Popen as torch re-exports it (the first one the old load imported and called)
POPENS = [
    "torch.distributed.elastic.multiprocessing.subprocess_handler.subprocess_handler.Popen",
    "torch.distributed.elastic.multiprocessing.subprocess_handler.subprocess_handler"
    ".subprocess.Popen",
]


def saved_content(model: nn.Module, tmp_path) -> dict:
    save(model, tmp_path / "good.pt")
    return torch.load(tmp_path / "good.pt", weights_only=True)


def write_content(content, path):
    torch.save(content, path)
    # The file is plain data: torch's safe reader accepts it.
    torch.load(path, weights_only=True)
    return path


@pytest.fixture
def linear_content(tmp_path):
    return saved_content(nn.Sequential(nn.Linear(2, 2), nn.ReLU()), tmp_path)


class TestNothingNamedRuns:
    @pytest.mark.parametrize("popen", POPENS)
    def test_popen_through_a_torch_reexport_is_not_called(self, popen, tmp_path, linear_content):
        marker = tmp_path / "popen-ran"
        linear_content["architecture"]["children"][0] = {
            "class": popen,
            "arguments": {"args": ["touch", str(marker)]},
        }
        path = write_content(linear_content, tmp_path / "evil.pt")
        with pytest.raises(ModelFileError, match="not registered as loadable") as caught:
            load(path)
        assert popen in str(caught.value)
        assert str(path) in str(caught.value)
        assert not marker.exists()

    def test_a_function_in_a_planted_module_is_not_imported(
        self, tmp_path, monkeypatch, linear_content
    ):
        marker = tmp_path / "imported"
        planted = tmp_path / "planted"
        planted.mkdir()
        (planted / "pypaddle_planted_module.py").write_text(
            f"open({str(marker)!r}, 'w').close()\ndef f(x):\n    return x\n"
        )
        monkeypatch.syspath_prepend(str(planted))
        linear_content["architecture"]["children"][1] = {"function": "pypaddle_planted_module.f"}
        path = write_content(linear_content, tmp_path / "evil.pt")
        with pytest.raises(ModelFileError, match=r"pypaddle_planted_module\.f"):
            load(path)
        assert not marker.exists()
        assert "pypaddle_planted_module" not in sys.modules

    @pytest.mark.parametrize(
        "name",
        [
            "os.system",
            "builtins.eval",
            "builtins.exec",
            "subprocess.Popen",
            "torch.load",
            "torch.save",
            "torch.hub.load",
            "torch.nn.modules.module.Module",  # registered nowhere: not built from arguments
            "torch.nn.modules.container.ModuleList",
            "torch.nn.Linear",  # the class, but not under the name pypaddle saves it as
            "pypaddle.deploy.export.load",
            "",
            "..",
        ],
    )
    @pytest.mark.parametrize("kind", ["class", "function"])
    def test_unregistered_names_are_refused(self, name, kind, tmp_path, linear_content):
        entry = {"class": name, "arguments": {}} if kind == "class" else {"function": name}
        linear_content["architecture"]["children"][0] = entry
        with pytest.raises(ModelFileError, match="not registered as loadable"):
            load(write_content(linear_content, tmp_path / "evil.pt"))

    def test_a_function_where_a_class_belongs_is_refused(self, tmp_path, linear_content):
        linear_content["architecture"]["children"][0] = {"class": "torch.tanh", "arguments": {}}
        with pytest.raises(ModelFileError, match="module class belongs"):
            load(write_content(linear_content, tmp_path / "evil.pt"))
        linear_content["architecture"]["children"][0] = {
            "function": "torch.nn.modules.linear.Linear"
        }
        with pytest.raises(ModelFileError, match="function belongs"):
            load(write_content(linear_content, tmp_path / "evil.pt"))

    @pytest.mark.parametrize(
        ("arguments", "match"),
        [
            ({"in_features": 2, "out_features": 2, "device": "meta"}, "'device'"),
            ({"in_features": 2, "out_features": 2, "dtype": "float64"}, "'dtype'"),
            ({"in_features": 2, "out_features": 2, "evil": 1}, "'evil'"),
            ({"in_features": {"a": 1}, "out_features": 2}, "dict"),
            ({"in_features": torch.tensor(2), "out_features": 2}, "Tensor"),
            ({"in_features": 2.5, "out_features": 2}, "cannot be built"),
            ({"in_features": -2, "out_features": 2}, "cannot be built"),
            ({"in_features": "2", "out_features": 2}, "cannot be built"),
            ({"out_features": 2}, "cannot be built"),
            ([2, 2], "not a dict"),
        ],
    )
    def test_arguments_are_plain_known_and_checked(self, arguments, match, tmp_path):
        content = saved_content(nn.Sequential(nn.Linear(2, 2)), tmp_path)
        content["architecture"]["children"][0]["arguments"] = arguments
        with pytest.raises(ModelFileError, match=match):
            load(write_content(content, tmp_path / "evil.pt"))

    @pytest.mark.parametrize(
        "node",
        [
            None,
            7,
            "torch.nn.modules.linear.Linear",
            [],
            {},
            {"class": 3},
            {"class": "torch.nn.modules.linear.Linear", "arguments": {}, "extra": 1},
            {"function": "torch.tanh", "class": "torch.nn.modules.linear.Linear"},
            {"class": "torch.nn.modules.container.Sequential", "children": "abc"},
        ],
    )
    def test_malformed_descriptions(self, node, tmp_path, linear_content):
        linear_content["architecture"]["children"][0] = node
        with pytest.raises(ModelFileError):
            load(write_content(linear_content, tmp_path / "evil.pt"))

    def test_deep_nesting_is_refused(self, tmp_path, linear_content):
        node = linear_content["architecture"]
        for _ in range(150):
            node = {"class": "torch.nn.modules.container.Sequential", "children": [node]}
        linear_content["architecture"] = node
        with pytest.raises(ModelFileError, match="more than 100 deep"):
            load(write_content(linear_content, tmp_path / "deep.pt"))

    def test_huge_sizes_are_refused_before_allocating(self, tmp_path, linear_content):
        # 10**6 x 10**6 floats would be 4 TB; the weights in the file are 2 x 2
        linear_content["architecture"]["children"][0]["arguments"]["in_features"] = 10**6
        linear_content["architecture"]["children"][0]["arguments"]["out_features"] = 10**6
        with pytest.raises(ModelFileError, match=r"shape \(2, 2\).*\(1000000, 1000000\)"):
            load(write_content(linear_content, tmp_path / "huge.pt"))

    @pytest.mark.parametrize("dtype", ["float32; import os", "Tensor", "load", "int64", 32])
    def test_dtype_comes_from_a_fixed_table(self, dtype, tmp_path, linear_content):
        linear_content["dtype"] = dtype
        with pytest.raises(ModelFileError, match="dtype"):
            load(write_content(linear_content, tmp_path / "evil.pt"))

    def test_compact_dan_gathers_outside_its_input_are_refused(self, tmp_path):
        torch.manual_seed(0)
        graph = nx.gnp_random_graph(25, 0.25, seed=3, directed=True)
        structure = nx.DiGraph((u, v) for u, v in graph.edges if u < v)
        structure.add_nodes_from(range(25))
        model = MaskedDeepDAN(16, 3, structure)
        for layer in model.layers_main_hidden:
            layer.mask &= torch.rand(layer.mask.shape) < 0.5
        small = compact(model)
        assert isinstance(small, CompactDAN)
        content = saved_content(small, tmp_path)
        names = [
            key
            for key, value in content["state_dict"].items()
            if key.startswith("index_") and value.numel()
        ]
        assert names
        content["state_dict"][names[0]][0] = 10**6
        with pytest.raises(ModelFileError, match="gathers columns outside"):
            load(write_content(content, tmp_path / "evil.pt"))
        content = saved_content(small, tmp_path)
        content["architecture"]["arguments"]["layers"][1][2] = 5  # reads a later block
        with pytest.raises(ModelFileError, match="reads the blocks 5"):
            load(write_content(content, tmp_path / "evil.pt"))


def random_bytes(tmp_path):
    path = tmp_path / "random.pt"
    path.write_bytes(
        torch.randint(0, 256, (4096,), generator=torch.Generator().manual_seed(0))
        .to(torch.uint8)
        .numpy()
        .tobytes()
    )
    return path


def truncated(tmp_path):
    save(nn.Sequential(nn.Linear(20, 20)), tmp_path / "whole.pt")
    path = tmp_path / "truncated.pt"
    path.write_bytes((tmp_path / "whole.pt").read_bytes()[:-300])
    return path


def truncated_to_half(tmp_path):
    save(nn.Sequential(nn.Linear(20, 20)), tmp_path / "whole.pt")
    data = (tmp_path / "whole.pt").read_bytes()
    path = tmp_path / "half.pt"
    path.write_bytes(data[: len(data) // 2])
    return path


def empty(tmp_path):
    path = tmp_path / "empty.pt"
    path.write_bytes(b"")
    return path


class _RunsCode:
    marker = ""

    def __reduce__(self):
        return (open, (self.marker, "w"))


def pickle_with_code(tmp_path):
    _RunsCode.marker = str(tmp_path / "pickle-ran")
    path = tmp_path / "code.pt"
    torch.save({"format": "pypaddle.deploy/1", "architecture": _RunsCode()}, path)
    return path


def raw_pickle_with_code(tmp_path):
    _RunsCode.marker = str(tmp_path / "pickle-ran")
    path = tmp_path / "code.pkl"
    path.write_bytes(pickle.dumps(_RunsCode()))
    return path


def plain_state_dict(tmp_path):
    path = tmp_path / "state.pt"
    torch.save(nn.Linear(2, 2).state_dict(), path)
    return path


def json_file(tmp_path):
    path = tmp_path / "model.json"
    path.write_text('{"format": "pypaddle.deploy/1", "architecture": {}}')
    return path


def zip_of_something_else(tmp_path):
    path = tmp_path / "other.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", b"not a pickle")
    return path


def folder(tmp_path):
    return tmp_path


def missing(tmp_path):
    return tmp_path / "nothing" / "model.pt"


def wrong_format(tmp_path):
    path = tmp_path / "format.pt"
    torch.save({"format": "pypaddle.deploy/99"}, path)
    return path


def extra_entries(tmp_path):
    content = saved_content(nn.Linear(2, 2), tmp_path)
    content["hook"] = "os.system"
    path = tmp_path / "extra.pt"
    torch.save(content, path)
    return path


def weights_of_another_model(tmp_path):
    content = saved_content(nn.Sequential(nn.Linear(2, 2)), tmp_path)
    content["state_dict"] = nn.Sequential(nn.Linear(3, 2)).state_dict()
    path = tmp_path / "mismatch.pt"
    torch.save(content, path)
    return path


def missing_weights(tmp_path):
    content = saved_content(nn.Sequential(nn.Linear(2, 2)), tmp_path)
    del content["state_dict"]["0.bias"]
    path = tmp_path / "missing-weights.pt"
    torch.save(content, path)
    return path


def state_dict_of_strings(tmp_path):
    content = saved_content(nn.Sequential(nn.Linear(2, 2)), tmp_path)
    content["state_dict"] = {"0.weight": "zeros"}
    path = tmp_path / "strings.pt"
    torch.save(content, path)
    return path


def not_a_dict(tmp_path):
    path = tmp_path / "list.pt"
    torch.save([1, 2, 3], path)
    return path


BAD_FILES = [
    random_bytes,
    truncated,
    truncated_to_half,
    empty,
    pickle_with_code,
    raw_pickle_with_code,
    plain_state_dict,
    json_file,
    zip_of_something_else,
    folder,
    missing,
    wrong_format,
    extra_entries,
    weights_of_another_model,
    missing_weights,
    state_dict_of_strings,
    not_a_dict,
]


class TestCorruptAndForeignFiles:
    @pytest.mark.parametrize("make", BAD_FILES, ids=[make.__name__ for make in BAD_FILES])
    def test_answered_with_a_model_file_error_naming_the_path(self, make, tmp_path):
        path = make(tmp_path)
        with pytest.raises(ModelFileError) as caught:
            load(path)
        assert str(path) in str(caught.value)
        assert isinstance(caught.value, ConfigError)
        assert isinstance(caught.value, ValueError)
        assert not (tmp_path / "pickle-ran").exists()

    def test_the_refusal_of_code_gives_no_advice_to_run_it(self, tmp_path):
        with pytest.raises(ModelFileError) as caught:
            load(pickle_with_code(tmp_path))
        assert "weights_only=False" not in str(caught.value)
        assert "never runs" in str(caught.value)


class TestRegisterLoadable:
    def test_a_registered_module_round_trips(self, tmp_path):
        @register_loadable(name="tests.trust.Shift")
        class Shift(nn.Module):
            def __init__(self, offset: float, sizes: tuple = (1, 2)) -> None:
                super().__init__()
                self.offset = offset
                self.sizes = sizes

            def forward(self, x):
                return x + self.offset

        model = nn.Sequential(nn.Linear(2, 2), Shift(0.5, (3, 4)))
        save(model, tmp_path / "m.pt")
        loaded = load(tmp_path / "m.pt")
        assert type(loaded[1]) is Shift
        assert (loaded[1].offset, loaded[1].sizes) == (0.5, (3, 4))
        x = torch.randn(3, 2)
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)

    def test_a_registered_function_round_trips_under_its_name(self, tmp_path):
        def halve(x):
            return x / 2

        assert register_loadable(halve, name="tests.trust.halve") is halve
        model = nn.Sequential(nn.Linear(2, 2))
        from pypaddle.sparse._common import resolve_activation

        model.append(resolve_activation(halve))
        save(model, tmp_path / "m.pt")
        content = torch.load(tmp_path / "m.pt", weights_only=True)
        assert content["architecture"]["children"][1] == {"function": "tests.trust.halve"}
        assert load(tmp_path / "m.pt")[1].function is halve

    def test_a_local_class_needs_a_name(self):
        class Local(nn.Identity):
            pass

        with pytest.raises(ConfigError, match="name="):
            register_loadable(Local)

    def test_decorator_with_a_name(self):
        @register_loadable(name="tests.trust.Named")
        class Named(nn.Identity):
            pass

        assert Named.__name__ == "Named"
        # registering the same object under the same name again does nothing
        assert register_loadable(Named, name="tests.trust.Named") is Named

    def test_a_taken_name_is_refused(self):
        class First(nn.Identity):
            pass

        class Second(nn.Identity):
            pass

        register_loadable(First, name="tests.trust.Taken")
        with pytest.raises(ConfigError, match=r"registered for .*First"):
            register_loadable(Second, name="tests.trust.Taken")
        with pytest.raises(ConfigError, match="registered for"):
            register_loadable(Second, name="torch.nn.modules.linear.Linear")

    @pytest.mark.parametrize(
        "thing",
        [
            nn.Linear(2, 2),
            io.BytesIO,
            3,
            "torch.nn.Linear",
            None.__class__,
            len.__self__,
            [nn.Linear],
        ],
    )
    def test_only_module_classes_and_functions(self, thing):
        with pytest.raises(InputTypeError):
            register_loadable(thing)

    @pytest.mark.parametrize(
        "name", ["", "a b", "1abc", "a..b", "os.system;", ".a", 3, b"x", ["a"]]
    )
    def test_names_are_dotted_python_names(self, name):
        class Good(nn.Identity):
            pass

        with pytest.raises(PaddleError):
            register_loadable(Good, name=name)
        save_name = "tests.trust.after_refusal_" + str(id(Good))
        assert register_loadable(Good, name=save_name) is Good


NOT_PATHS = [None, 3, 1.5, math.nan, True, b"m.pt", ["m.pt"], ("m.pt",), {"p": 1}, object()]
NOT_MODULES = [
    *(v for v in NOT_COUNTS if not isinstance(v, nn.Module)),
    nn.Linear,
    "model",
    torch.zeros(2),
]
# None is no thing: register_loadable() without one is the decorator form
NOT_LOADABLE = [v for v in NOT_COUNTS if v is not None]


class TestBadValues:
    @pytest.mark.parametrize("model", NOT_MODULES)
    def test_save_wants_a_module(self, model, tmp_path):
        with pytest.raises(InputTypeError, match=r"torch\.nn\.Module"):
            save(model, tmp_path / "m.pt")
        assert list(tmp_path.iterdir()) == []

    @pytest.mark.parametrize("path", NOT_PATHS)
    def test_save_wants_a_path_and_leaves_the_model_alone(self, path, tmp_path, monkeypatch):
        monkeypatch.chdir(tmp_path)
        model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3)).train()
        before = snapshot(model)
        with pytest.raises(InputTypeError, match="file path"):
            save(model, path)
        assert_unchanged(before, model)
        assert list(tmp_path.iterdir()) == []

    def test_save_onto_a_folder_or_under_a_file(self, tmp_path):
        model = nn.Linear(2, 2)
        (tmp_path / "m.pt").mkdir()
        with pytest.raises(ConfigError, match="it is a folder"):
            save(model, tmp_path / "m.pt")
        (tmp_path / "file").write_text("x")
        with pytest.raises(ConfigError, match="is a file, not a folder"):
            save(model, tmp_path / "file" / "m.pt")
        assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "m.pt"]

    @pytest.mark.parametrize("path", NOT_PATHS)
    def test_load_wants_a_path(self, path):
        with pytest.raises(InputTypeError, match="file path"):
            load(path)

    @pytest.mark.parametrize(
        ("map_location", "error"),
        [
            (3, InputTypeError),
            ([1], InputTypeError),
            ("nowhere", ConfigError),
            (object(), InputTypeError),
        ],
    )
    def test_load_checks_map_location(self, map_location, error, tmp_path):
        save(nn.Linear(2, 2), tmp_path / "m.pt")
        with pytest.raises(error, match="map_location"):
            load(tmp_path / "m.pt", map_location=map_location)

    def test_map_location_still_works(self, tmp_path):
        save(nn.Linear(2, 2), tmp_path / "m.pt")
        assert load(tmp_path / "m.pt", map_location="cpu").weight.device.type == "cpu"
        assert load(tmp_path / "m.pt", map_location=torch.device("cpu")).weight.shape == (2, 2)

    @pytest.mark.parametrize(
        "thing", [*NOT_LOADABLE, "torch.nn.Linear", io.BytesIO, int, print.__call__]
    )
    def test_register_loadable_wants_a_module_class_or_function(self, thing):
        with pytest.raises(InputTypeError):
            register_loadable(thing)

    @pytest.mark.parametrize("name", [n for n in NOT_LOADABLE if not isinstance(n, str)])
    def test_register_loadable_wants_a_str_name(self, name):
        class Fine(nn.Identity):
            pass

        with pytest.raises(InputTypeError, match="name"):
            register_loadable(Fine, name=name)
        with pytest.raises(InputTypeError, match="name"):
            register_loadable(name=name)
