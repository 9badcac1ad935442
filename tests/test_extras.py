"""Optional extras: one message names every missing package and the one install line."""

import importlib.util
import tomllib
from pathlib import Path

import pytest

from pypaddle._core import extras
from pypaddle.errors import ConfigError, MissingExtraError

PYPROJECT = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())


def hide(monkeypatch, *modules):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name in modules else real(name)
    )


def test_every_missing_package_in_one_message(monkeypatch):
    hide(monkeypatch, "onnx", "onnxruntime", "ray")
    with pytest.raises(MissingExtraError) as caught:
        extras.require("onnx", "ray", what="this command")
    message = str(caught.value)
    assert message.startswith("this command needs onnx, onnxruntime, ray, which are not installed")
    assert message.endswith("pip install 'pypaddle[onnx,ray]'")
    assert isinstance(caught.value, ConfigError)


def test_one_missing_package(monkeypatch):
    hide(monkeypatch, "numba")
    with pytest.raises(MissingExtraError, match=r"needs numba, which is not installed.*\[fast\]'$"):
        extras.require("fast", "onnx", what="it")


def test_nothing_missing_passes(monkeypatch):
    hide(monkeypatch)
    assert extras.missing(*[name for name in extras.EXTRAS if not extras.missing(name)]) == {}


def test_unknown_extra_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown extras"):
        extras.require("gpus", what="x")


def test_the_table_matches_pyproject():
    declared = PYPROJECT["project"]["optional-dependencies"]
    for extra, modules in extras.EXTRAS.items():
        packages = " ".join(declared[extra]).lower()
        assert all(module in packages for module in modules), extra


def test_what_demo_and_run_need_is_core():
    core = " ".join(PYPROJECT["project"]["dependencies"])
    for package in ("torch", "networkx", "numpy", "scipy", "typer", "rich", "matplotlib"):
        assert package in core
    assert "scikit-learn" in core
    # The old extra names still install (as nothing more than the core).
    for old in ("cli", "plot", "data"):
        assert PYPROJECT["project"]["optional-dependencies"][old] == []


def test_ray_backend_names_the_extra(monkeypatch, tmp_path):
    from pypaddle.experiments.backends import run_ray

    hide(monkeypatch, "ray")
    with pytest.raises(MissingExtraError, match=r"--backend ray needs ray.*pypaddle\[ray\]"):
        run_ray([], tmp_path, workers=1, done=lambda *args: None)
    assert list(tmp_path.iterdir()) == []


def test_all_leaves_out_what_must_match_the_machine():
    # torchvision must match the installed torch build (pip would otherwise replace a CPU
    # torch by the index's CUDA build); triton has Linux wheels only.
    everything = PYPROJECT["project"]["optional-dependencies"]["all"][0]
    assert "vision" not in everything
    assert "gpu" not in everything
    dev = " ".join(PYPROJECT["project"]["optional-dependencies"]["dev"])
    assert "torchvision" not in dev
    assert "vision" not in dev
