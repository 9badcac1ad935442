"""Bad input to the ``pypaddle`` command and the config loaders (issue 16, finding 11).

Every case asserts the error class (loaders) or the exit status and a one-line message
without a traceback (the command), and that nothing was written.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

typer_testing = pytest.importorskip("typer.testing")

from pypaddle.cli import app  # noqa: E402
from pypaddle.errors import ConfigError  # noqa: E402
from pypaddle.experiments import parse_config  # noqa: E402
from pypaddle.experiments.config import to_toml  # noqa: E402
from pypaddle.experiments.sweep import parse_sweep  # noqa: E402
from pypaddle.graph import random_layered, write  # noqa: E402

runner = typer_testing.CliRunner()

BASE = {
    "name": "bad",
    "model": {"name": "ffn", "hidden_layers": [4]},
    "training": {"epochs": 1},
    "evaluation": {"plots": False, "checkpoints": False},
}
DAN = {
    "name": "bad",
    "model": {
        "name": "dan",
        "structure": {"generator": "watts_strogatz", "n": 8, "k": 2, "p": 0.2},
    },
    "training": {"epochs": 1},
    "evaluation": {"plots": False},
}


def _with(base: dict, dotted: str, value: object) -> dict:
    config = {key: dict(value) if isinstance(value, dict) else value for key, value in base.items()}
    table = config
    *parents, last = dotted.split(".")
    for part in parents:
        table[part] = dict(table.get(part, {}))
        table = table[part]
    table[last] = value
    return config


# (dotted key, bad value) for an FFN experiment: wrong types, NaN / inf, negative, zero,
# fractional, huge, empty.
BAD_KEYS = [
    ("seed", -1),
    ("seed", 2**70),
    ("seed", 1.5),
    ("seed", "0"),
    ("seed", True),
    ("seed", math.nan),
    ("name", 3),
    ("training.epochs", 0),
    ("training.epochs", -1),
    ("training.epochs", 1.5),
    ("training.epochs", "ten"),
    ("training.epochs", 2**70),
    ("training.epochs", math.inf),
    ("training.batch_size", 0),
    ("training.batch_size", 2**64),
    ("training.learning_rate", math.nan),
    ("training.learning_rate", math.inf),
    ("training.learning_rate", -0.1),
    ("training.learning_rate", 0),
    ("training.learning_rate", "fast"),
    ("training.learning_rate", 2**1100),
    ("training.momentum", 1.0),
    ("training.weight_decay", -1e-3),
    ("training.optimizer", "lbfgs"),
    ("model.hidden_layers", [0]),
    ("model.hidden_layers", [-1]),
    ("model.hidden_layers", [1.5]),
    ("model.hidden_layers", "8"),
    ("model.hidden_layers", [2**70]),
    ("model.name", "resnet"),
    ("data.test_fraction", 0),
    ("data.test_fraction", 1),
    ("data.test_fraction", math.nan),
    ("data.test_fraction", -0.25),
    ("data.name", "imagenet"),
    ("sparsify.method", "magic"),
    ("evaluation.plots", "yes"),
    ("evaluation.structures", "all"),
    ("training", 3),
    ("unknown", 1),
]
# Structure generator arguments of a DAN (the generator checks them).
BAD_STRUCTURES = [
    ("n", [1, "a"]),
    ("n", -3),
    ("n", 1.5),
    ("n", "x"),
    ("p", math.nan),
    ("p", math.inf),
    ("p", 1.5),
    ("k", -2),
    ("generator", "nope"),
]


def _files(folder) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


def assert_refused(result, code: int = 2) -> str:
    """The one line of a refused command (status ``code``, no traceback)."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: ")
    return lines[0]


class TestConfigLoader:
    @pytest.mark.parametrize(("key", "value"), BAD_KEYS)
    def test_bad_values_are_config_errors(self, key, value):
        with pytest.raises(ConfigError, match=key.split(".")[-1]):
            parse_config(_with(BASE, key, value))

    @pytest.mark.parametrize("table", [None, 3, "x", [1], [{"seed": 0}]])
    def test_a_config_must_be_a_table(self, table):
        with pytest.raises(ConfigError, match="must be a table"):
            parse_config(table)


def _write_config(folder, config) -> str:
    path = folder / "e.toml"
    path.write_text(to_toml(config))
    return str(path)


class TestRun:
    @pytest.mark.parametrize(("key", "value"), BAD_KEYS)
    def test_bad_values(self, tmp_path, key, value):
        path = _write_config(tmp_path, _with(BASE, key, value))
        line = assert_refused(runner.invoke(app, ["run", path, "--out", str(tmp_path / "out")]))
        assert key.split(".")[-1] in line
        assert _files(tmp_path) == ["e.toml"]

    @pytest.mark.parametrize(("key", "value"), BAD_STRUCTURES)
    def test_bad_structure_arguments(self, tmp_path, key, value):
        path = _write_config(tmp_path, _with(DAN, f"model.structure.{key}", value))
        line = assert_refused(runner.invoke(app, ["run", path, "--out", str(tmp_path / "out")]))
        assert "model.structure" in line
        assert _files(tmp_path) == ["e.toml"]

    @pytest.mark.parametrize(
        ("content", "message"),
        [
            (b"\xff\xfe\x00binary", "is not a text file in UTF-8"),
            (b"[training\nepochs = 1", "is not valid TOML"),
            (b"epochs = = 1", "is not valid TOML"),
            (b"[training]\nepochs = 1\n[training]\nepochs = 2", "is not valid TOML"),
        ],
    )
    def test_unreadable_configs(self, tmp_path, content, message):
        (tmp_path / "e.toml").write_bytes(content)
        for command in ("run", "sweep"):
            line = assert_refused(runner.invoke(app, [command, str(tmp_path / "e.toml")]))
            assert message in line
        assert _files(tmp_path) == ["e.toml"]

    def test_a_folder_or_a_missing_file_as_config(self, tmp_path):
        (tmp_path / "e.toml").mkdir()
        for command in ("run", "sweep"):
            line = assert_refused(runner.invoke(app, [command, str(tmp_path / "e.toml")]))
            assert "is a folder; give the TOML file in it" in line
            line = assert_refused(runner.invoke(app, [command, str(tmp_path / "none.toml")]))
            assert "does not exist" in line
        assert _files(tmp_path) == ["e.toml"]

    @pytest.mark.parametrize("out", ["afile", "afile/x", "afile/x/y"])
    def test_out_at_or_under_a_file(self, tmp_path, out):
        path = _write_config(tmp_path, BASE)
        (tmp_path / "afile").write_text("mine")
        line = assert_refused(runner.invoke(app, ["run", path, "--out", str(tmp_path / out)]))
        assert "afile' is a file" in line
        assert _files(tmp_path) == ["afile", "e.toml"]
        assert (tmp_path / "afile").read_text() == "mine"

    @pytest.mark.parametrize("name", ["../../x", "/abs/x", "..", "", "a/../../b"])
    def test_names_that_leave_the_folder(self, tmp_path, name):
        path = _write_config(tmp_path, _with(BASE, "name", name))
        line = assert_refused(runner.invoke(app, ["run", path]))
        assert f"name {name!r} would write outside" in line
        assert _files(tmp_path) == ["e.toml"]

    def test_debug_shows_the_traceback(self, tmp_path):
        path = _write_config(tmp_path, _with(BASE, "training.epochs", 0))
        result = runner.invoke(app, ["--debug", "run", path, "--out", str(tmp_path / "o")])
        assert isinstance(result.exception, ConfigError)
        assert "training.epochs = 0 is out of range" in str(result.exception)
        assert _files(tmp_path) == ["e.toml"]


def _npz(folder, **arrays) -> dict:
    path = folder / "data.npz"
    np.savez(path, **arrays)
    return _with(BASE, "data", {"name": "npz", "path": str(path)})


GOOD = {
    "x_train": np.ones((6, 3)),
    "y_train": np.array([0, 1, 2, 0, 1, 2]),
    "x_test": np.ones((2, 3)),
    "y_test": np.array([0, 1]),
}
BAD_NPZ = [
    ({"y_train": np.array([0, 1, 2])}, "x_train holds 6 samples but y_train 3 labels"),
    ({"y_train": np.array([0, 1, 2, 0, 1, -1])}, "negative class labels"),
    ({"x_train": np.full((6, 3), np.nan)}, "x_train holds 18 NaN or infinite values"),
    ({"x_test": np.array([[1.0, np.inf, 0.0]] * 2)}, "x_test holds 2 NaN or infinite"),
    ({"x_train": np.full((6, 3), 1e300)}, "too large for float32"),
    ({"y_train": np.array([0.0, 1, 2, 0, 1, np.nan])}, "y_train holds 1 NaN"),
    ({"x_train": np.ones(6)}, "x_train has shape (6,)"),
    ({"y_train": np.zeros((6, 2), dtype=int)}, "y_train has shape (6, 2)"),
    ({"x_test": np.ones((2, 4))}, "give train and test samples of one shape"),
    ({"x_train": np.ones((0, 3)), "y_train": np.zeros(0, dtype=int)}, "holds no samples"),
    ({"y_test": np.array([0.5, 1.5])}, "both hold integer class labels or both"),
    ({"x_train": np.array(["a"] * 6)}, "holds <U1 values; give numbers"),
    ({"y_train": np.array([2**64 - 1] * 6, dtype=np.uint64)}, "holds values above"),
]


class TestNpzData:
    @pytest.mark.parametrize(("change", "message"), BAD_NPZ)
    def test_refused_before_the_folder_is_made(self, tmp_path, change, message):
        config = _npz(tmp_path, **{**GOOD, **change})
        path = _write_config(tmp_path, config)
        line = assert_refused(runner.invoke(app, ["run", path, "--out", str(tmp_path / "out")]))
        assert message in line
        assert "data.npz" in line
        assert _files(tmp_path) == ["data.npz", "e.toml"]

    def test_missing_array(self, tmp_path):
        config = _npz(tmp_path, x_train=GOOD["x_train"], y_train=GOOD["y_train"])
        line = assert_refused(runner.invoke(app, ["run", _write_config(tmp_path, config)]))
        assert "has no array 'x_test'" in line
        assert _files(tmp_path) == ["data.npz", "e.toml"]

    def test_not_an_archive(self, tmp_path):
        config = _npz(tmp_path, **GOOD)
        (tmp_path / "data.npz").write_bytes(b"PK\x03\x04 broken")
        line = assert_refused(runner.invoke(app, ["run", _write_config(tmp_path, config)]))
        assert "is not a readable .npz archive" in line


def _sweep(random: dict | None = None, **sweep: object) -> dict:
    table = {"name": "s", **sweep}
    if random is not None:
        table["random"] = random
    return {"sweep": table, "experiment": BASE}


BAD_SWEEPS = [
    (_sweep({"seed": {"uniform": ["a", "b"]}}), r"sweep\.random\.seed\.uniform\[0\] must be"),
    (_sweep({"seed": {"uniform": [0, "b"]}}), r"uniform\[1\] must be a finite real"),
    (_sweep({"seed": {"uniform": [0, math.inf]}}), r"must be a finite real number"),
    (_sweep({"seed": {"uniform": [-math.inf, 0]}}), r"must be a finite real number"),
    (_sweep({"seed": {"uniform": [math.nan, 1]}}), r"must be a finite real number"),
    (_sweep({"seed": {"uniform": [True, 2]}}), r"must be a finite real number"),
    (_sweep({"seed": {"int_uniform": [0.5, 3]}}), r"int_uniform\[0\] must be an int"),
    (_sweep({"seed": {"int_uniform": [0, 3.5]}}), r"int_uniform\[1\] must be an int"),
    (_sweep({"seed": {"int_uniform": [0, 2**70]}}), r"int_uniform\[1\] must be an int"),
    (_sweep({"seed": {"int_uniform": [3, 3]}}), r"low < high"),
    (_sweep({"seed": {"int_uniform": [0, 1, 2]}}), r"must be \[low, high\]"),
    (_sweep({"seed": {"int_uniform": "0, 3"}}), r"must be \[low, high\]"),
    (_sweep({"seed": {"log_uniform": [0, 1]}}), r"log_uniform needs low > 0"),
    (_sweep({"seed": {"log_uniform": [-1, 1]}}), r"log_uniform needs low > 0"),
    (_sweep({"seed": {"choice": []}}), r"choice must be a non-empty list"),
    (_sweep({"seed": {"choice": 3}}), r"choice must be a non-empty list"),
    (_sweep({"seed": {"normal": [0, 1]}}), r"must be one of"),
    (_sweep({"seed": {"uniform": [0, 1], "choice": [1]}}), r"must be one of"),
    (_sweep({"seed": 3}), r"must be one of"),
    (_sweep(grid={"seed": []}), r"must be a non-empty list"),
    (_sweep(grid={"seed": "0"}), r"must be a non-empty list"),
    (_sweep(grid={"seed": [-1]}), r"seed = -1 is out of range"),
    (_sweep(grid={"seed": [2**70]}), r"seed must be an int in \[0, 2\*\*63\)"),
    (_sweep(grid={"training.epochs": [1, "x"]}), r"trial 1 .*has the wrong type"),
    (_sweep(grid={"seed": list(range(400)), "training.epochs": list(range(1, 401))}), "trials"),
    (_sweep({"seed": {"int_uniform": [0, 9]}}, samples=0), r"sweep\.samples = 0"),
    (_sweep({"seed": {"int_uniform": [0, 9]}}, samples=10**6), r"at most 100000"),
    (_sweep({"seed": {"int_uniform": [0, 9]}}, samples=2**70), r"sweep\.samples"),
    (_sweep(workers=0), r"sweep\.workers = 0"),
    (_sweep(workers=1.5), r"sweep\.workers = 1\.5 has the wrong type"),
    (_sweep(seed=-1), r"sweep\.seed = -1"),
    (_sweep(seed=2**64), r"sweep\.seed must be an int in \[0, 2\*\*63\)"),
]


class TestSweeps:
    @pytest.mark.parametrize(("table", "message"), BAD_SWEEPS)
    def test_refused_at_load_time(self, table, message):
        with pytest.raises(ConfigError, match=message):
            parse_sweep(table)

    @pytest.mark.parametrize(("table", "message"), BAD_SWEEPS[:12])
    def test_the_command_answers_in_one_line(self, tmp_path, table, message):
        path = tmp_path / "s.toml"
        path.write_text(_sweep_toml(table))
        assert_refused(runner.invoke(app, ["sweep", str(path), "--out", str(tmp_path / "out")]))
        assert _files(tmp_path) == ["s.toml"]

    def test_name_that_leaves_the_folder(self, tmp_path):
        path = tmp_path / "s.toml"
        path.write_text(_sweep_toml(_sweep(grid={"seed": [0]}), name="../x"))
        line = assert_refused(runner.invoke(app, ["sweep", str(path)]))
        assert "sweep name '../x' would write outside" in line
        assert _files(tmp_path) == ["s.toml"]


def _sweep_toml(table: dict, name: str | None = None) -> str:
    sweep = dict(table["sweep"])
    if name is not None:
        sweep["name"] = name
    lines = ["[sweep]"]
    for key, value in sweep.items():
        if isinstance(value, dict):
            continue
        lines.append(to_toml({key: value}).strip())
    for key in ("grid", "random"):
        if key in sweep:
            lines.append(f"[sweep.{key}]")
            lines += [to_toml({k: v}).strip() for k, v in sweep[key].items()]
    experiment = to_toml(table["experiment"])
    body = "\n".join(
        f"[experiment.{line[1:-1]}]" if line.startswith("[") else line
        for line in experiment.splitlines()
    )
    return "\n".join(lines) + "\n[experiment]\n" + body + "\n"


class TestGraph:
    @pytest.fixture
    def graph(self, tmp_path):
        return write(random_layered([3, 3], density=0.5, seed=0), tmp_path / "g.graphml")

    @pytest.mark.parametrize("out", ["missing/x.png", "g.graphml/x.png"])
    def test_draw_into_a_missing_folder(self, tmp_path, graph, out):
        before = _files(tmp_path)
        line = assert_refused(
            runner.invoke(app, ["graph", "draw", str(graph), str(tmp_path / out)])
        )
        assert "make it first" in line
        assert _files(tmp_path) == before

    @pytest.mark.parametrize(
        "content", [b"\xff\xfe\x00binary", b"<graphml", b"", b"<?xml version='1.0'?><x/>"]
    )
    def test_stats_of_a_corrupt_file(self, tmp_path, content):
        (tmp_path / "bad.graphml").write_bytes(content)
        assert_refused(runner.invoke(app, ["graph", "stats", str(tmp_path / "bad.graphml")]))
