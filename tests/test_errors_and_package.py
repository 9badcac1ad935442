"""The error hierarchy and the package surface."""

from __future__ import annotations

import importlib.metadata
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import pypaddle
from pypaddle import errors

EXPECTED_BUILTIN = {
    "PaddleError": Exception,
    "StructureError": ValueError,
    "MaskError": ValueError,
    "ConfigError": ValueError,
    "GraphFileError": ValueError,
    "ModelFileError": ValueError,
    "MissingExtraError": ValueError,
    "InputTypeError": TypeError,
    "ExperimentError": RuntimeError,
}


class TestErrors:
    def test_all_lists_every_class(self):
        classes = {
            name
            for name, value in vars(errors).items()
            if inspect.isclass(value)
            and issubclass(value, BaseException)
            and not issubclass(value, Warning)
        }
        warning_classes = {
            name
            for name, value in vars(errors).items()
            if inspect.isclass(value) and issubclass(value, Warning)
        }
        assert classes == set(EXPECTED_BUILTIN)
        assert warning_classes == {"StructureWarning"}
        assert set(errors.__all__) == classes | warning_classes

    @pytest.mark.parametrize(("name", "builtin"), sorted(EXPECTED_BUILTIN.items()))
    def test_each_is_a_paddle_error_and_a_builtin(self, name, builtin):
        error_class = getattr(errors, name)
        assert issubclass(error_class, errors.PaddleError)
        assert issubclass(error_class, builtin)
        with pytest.raises(builtin, match="what went wrong"):
            raise error_class("what went wrong")

    def test_value_errors_are_not_type_errors(self):
        for name in ("StructureError", "MaskError", "ConfigError"):
            assert not issubclass(getattr(errors, name), TypeError)
        assert not issubclass(errors.InputTypeError, ValueError)

    def test_one_except_catches_all(self):
        caught = []
        for name in EXPECTED_BUILTIN:
            try:
                raise getattr(errors, name)(name)
            except errors.PaddleError as error:
                caught.append(str(error))
        assert caught == list(EXPECTED_BUILTIN)


class TestPackage:
    def test_version_matches_metadata(self):
        assert isinstance(pypaddle.__version__, str)
        assert pypaddle.__version__ == importlib.metadata.version("pypaddle")

    def test_subpackages(self):
        assert {"errors", "graph", "sparse", "util"} <= set(pypaddle.__all__)
        for name in pypaddle.__all__:
            assert hasattr(pypaddle, name)

    @pytest.mark.slow
    def test_import_is_light(self):
        heavy = ["matplotlib", "typer", "rich", "sklearn", "numba"]
        code = (
            "import sys, pypaddle, pypaddle.sparse, networkx\n"
            "pypaddle.sparse.MaskedDeepDAN(3, 2, networkx.DiGraph([(0, 1)]))\n"
            f"print(','.join(name for name in {heavy!r} if name in sys.modules))\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert result.stdout.strip() == ""

    def test_py_typed_shipped(self):
        assert (Path(pypaddle.__file__).parent / "py.typed").is_file()
