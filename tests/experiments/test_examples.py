"""The example configs ship in the package: listed, printed, run by name from any folder."""

import subprocess
import sys
import tomllib

import pytest
from typer import testing as typer_testing

from pypaddle.cli import app
from pypaddle.errors import ConfigError
from pypaddle.experiments import examples, load_config, parse_config
from pypaddle.experiments.sweep import load_sweep, parse_sweep

runner = typer_testing.CliRunner()
NAMES = examples.names()


def test_the_examples_are_package_files():
    assert {"demo", "first_experiment", "sweep_priors", "mnist_idx"} <= set(NAMES)
    assert examples.folder().parent.name == "experiments"
    assert all((examples.folder() / f"{name}.toml").is_file() for name in NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_every_example_is_valid_and_described(name):
    description = examples.description(name)
    assert description, f"{name}.toml starts with no comment saying what it does"
    if examples.kind(name) == "sweep":
        spec = parse_sweep(examples.table(name, expect="sweep"), base=examples.folder())
        assert len(spec.trials) >= 2
    else:
        config = parse_config(examples.table(name, expect="experiment"), base=examples.folder())
        assert config.training.epochs >= 1


@pytest.mark.parametrize("name", NAMES)
def test_printed_text_is_the_file_and_loads_where_written(tmp_path, name):
    result = runner.invoke(app, ["examples", name])
    assert result.exit_code == 0, result.output
    assert result.stdout == (examples.folder() / f"{name}.toml").read_text()
    written = tmp_path / "my.toml"
    written.write_text(result.stdout)
    assert tomllib.loads(written.read_text()) == examples.table(name)
    if examples.kind(name) == "experiment":
        assert load_config(written).name == examples.table(name)["name"]


def test_first_experiment_as_documented():
    config = parse_config(examples.table("first_experiment"))
    assert config.model.options.structure["generator"] == "small_world_layered"
    assert (config.sparsify.name, config.sparsify.options.rounds) == ("iterative", 4)
    spec = load_sweep(examples.folder() / "sweep_priors.toml")
    assert [trial.overrides for trial in spec.trials][:2] == [
        {"model.structure.p": 0.0, "seed": 0},
        {"model.structure.p": 0.0, "seed": 1},
    ]


def test_listing_names_every_example_with_its_kind():
    result = runner.invoke(app, ["examples"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name in NAMES:
        line = next(line for line in result.stdout.splitlines() if f" {name} " in line)
        assert examples.kind(name) in line


class TestNames:
    def test_with_and_without_suffix(self):
        assert examples.named("first_experiment") == "first_experiment"
        assert examples.named("first_experiment.toml") == "first_experiment"
        assert examples.named("nothing") is None

    def test_an_existing_file_is_a_file_not_a_name(self, tmp_path, monkeypatch):
        monkeypatch.chdir(tmp_path)
        (tmp_path / "demo").write_text("name = 'mine'\n")
        assert examples.named("demo") is None

    @pytest.mark.parametrize("bad", ["tour", "", "../demo", 3, None])
    def test_unknown_names_list_the_examples(self, bad):
        with pytest.raises(ConfigError, match=r"no example named .*the examples are: .*demo"):
            examples.text(bad)

    def test_kind_mismatch_names_the_command(self):
        with pytest.raises(ConfigError, match="not an experiment; run it with: pypaddle sweep"):
            examples.table("sweep_priors", expect="experiment")
        with pytest.raises(ConfigError, match="not a sweep; run it with: pypaddle run demo"):
            examples.table("demo", expect="sweep")

    def test_table_is_a_fresh_copy(self):
        examples.table("demo")["training"]["epochs"] = 1
        assert examples.table("demo")["training"]["epochs"] != 1


class TestRunByName:
    def test_run_an_example_from_another_folder(self, tmp_path, monkeypatch):
        monkeypatch.chdir(tmp_path)
        result = runner.invoke(
            app, ["run", "function_regression", "--quiet"], env={"COLUMNS": "200"}
        )
        assert result.exit_code == 0, result.output
        folder = tmp_path / "runs" / "landscape"
        assert (folder / "result.json").is_file()
        assert not (examples.folder() / "runs").exists()

    def test_a_sweep_name_given_to_run_is_refused_in_one_line(self, tmp_path, monkeypatch):
        monkeypatch.chdir(tmp_path)
        result = runner.invoke(app, ["run", "sweep_priors"])
        assert result.exit_code == 2
        assert "run it with: pypaddle sweep sweep_priors" in result.output
        assert list(tmp_path.iterdir()) == []

    def test_neither_a_file_nor_an_example(self, tmp_path, monkeypatch):
        monkeypatch.chdir(tmp_path)
        result = runner.invoke(app, ["run", "no_such_thing"])
        assert result.exit_code == 2
        assert "does not exist; give a TOML file, or the name of an example" in result.output

    def test_an_example_sweep_finds_its_base_among_the_examples(self):
        spec = parse_sweep(examples.table("sweep_priors", expect="sweep"), base=examples.folder())
        base = examples.table("first_experiment")
        assert spec.trials[0].config["name"] == base["name"]
        assert spec.trials[0].config["model"]["structure"] == base["model"]["structure"] | {
            "p": 0.0
        }


def test_python_dash_m_is_the_command():
    result = subprocess.run(
        [sys.executable, "-m", "pypaddle", "--version"], capture_output=True, text=True, check=True
    )
    import pypaddle

    assert result.stdout == f"pypaddle {pypaddle.__version__}\n"
    listing = subprocess.run(
        [sys.executable, "-m", "pypaddle", "examples", "demo"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert listing.stdout == examples.text("demo")
