"""Saving, loading and ONNX export of compacted models.

A saved model is one ``torch.save`` file holding a plain dictionary: the architecture as
a description of nested modules (class path and constructor arguments, read from the
modules' attributes) and the ``state_dict``. Loading rebuilds the modules from the
description and loads the weights with ``torch.load(weights_only=True)``, so no pickled
code runs. Only classes of ``torch`` and ``pypaddle`` are rebuilt.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import warnings
from typing import Any

import torch
from torch import nn

from pypaddle.deploy._modes import evaluating
from pypaddle.deploy.dan import CompactDAN
from pypaddle.errors import ConfigError, InputTypeError
from pypaddle.sparse._common import _Function

__all__ = ["export_onnx", "load", "save"]

FORMAT = "pypaddle.deploy/1"
_TRUSTED = ("torch.", "pypaddle.")
_SKIPPED_ARGUMENTS = {"self", "device", "dtype"}


def _path_of(thing: Any) -> str:
    return f"{thing.__module__}.{thing.__qualname__}"


def _import(path: str) -> Any:
    if not path.startswith(_TRUSTED):
        raise ConfigError(
            f"the saved model names {path!r}; load rebuilds only torch and pypaddle modules"
        )
    module_name, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as error:
        raise ConfigError(f"cannot find {path!r} to rebuild the saved model: {error}") from None


def _plain(value: Any, what: str) -> Any:
    """``value`` as lists, numbers, strings and None, or a ConfigError."""
    if isinstance(value, (tuple, list)):
        return [_plain(item, what) for item in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ConfigError(f"cannot describe {what}={value!r} for saving")


def describe(module: nn.Module) -> dict[str, Any]:
    """The architecture of ``module`` as nested plain data (see :func:`save`)."""
    if isinstance(module, _Function):
        function = module.function
        path = _function_path(function)
        if path is None:
            raise ConfigError(
                f"the activation {function!r} is not a torch function, so it cannot be saved "
                "by name; use an nn.Module activation (nn.ReLU, ...) or torch.save the model"
            )
        return {"function": path}
    cls = type(module)
    path = _path_of(cls)
    if not path.startswith(_TRUSTED):
        raise ConfigError(
            f"{cls.__name__} is not a torch or pypaddle module, so save cannot describe it; "
            "save the model with torch.save(model) instead"
        )
    if isinstance(module, nn.Sequential):
        return {"class": path, "children": [describe(child) for child in module]}
    if isinstance(module, CompactDAN):
        return {
            "class": path,
            "arguments": module.config(),
            "activation": describe(module.activation),
            "norms": [describe(norm) for norm in module.norms],
        }
    arguments = {}
    for name, parameter in inspect.signature(cls.__init__).parameters.items():
        if name in _SKIPPED_ARGUMENTS or parameter.kind in (
            parameter.VAR_POSITIONAL,
            parameter.VAR_KEYWORD,
        ):
            continue
        if not hasattr(module, name):
            if parameter.default is parameter.empty:
                raise ConfigError(
                    f"cannot describe {cls.__name__}: it has no attribute {name!r} for its "
                    "constructor argument of that name; save it with torch.save instead"
                )
            continue
        value = getattr(module, name)
        if name == "bias" and (value is None or isinstance(value, torch.Tensor)):
            value = value is not None
        arguments[name] = _plain(value, f"{cls.__name__}.{name}")
    return {"class": path, "arguments": arguments}


def _function_path(function: Any) -> str | None:
    """The import path of a torch (or pypaddle) function, or None if it has none.

    Torch's built-in functions carry a qualified name of an internal class
    (``torch.tanh.__qualname__`` is ``_VariableFunctionsClass.tanh``), so the plain name in
    the function's module is tried too.
    """
    module = getattr(function, "__module__", None) or ""
    for name in (getattr(function, "__qualname__", None), getattr(function, "__name__", None)):
        path = f"{module}.{name}"
        if name and path.startswith(_TRUSTED) and _resolve_function(path) is function:
            return path
    return None


def _resolve_function(path: str) -> Any:
    module_name, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError):
        return None


def build(description: dict[str, Any]) -> nn.Module:
    """Modules (with fresh weights) from a :func:`describe` result."""
    if "function" in description:
        function = _resolve_function(description["function"])
        if function is None or not description["function"].startswith(_TRUSTED):
            raise ConfigError(f"cannot find the function {description['function']!r}")
        return _Function(function)
    cls = _import(description["class"])
    if issubclass(cls, nn.Sequential):
        return cls(*(build(child) for child in description["children"]))
    if issubclass(cls, CompactDAN):
        return cls(
            activation=build(description["activation"]),
            norms=[build(norm) for norm in description["norms"]],
            **description["arguments"],
        )
    arguments = {
        name: tuple(value) if isinstance(value, list) else value
        for name, value in description["arguments"].items()
    }
    return cls(**arguments)


def save(model: nn.Module, path: str | os.PathLike) -> None:
    """Save ``model`` (e.g. from :func:`compact`) as its architecture plus its state_dict.

    The file loads with :func:`load` and nothing else from pypaddle's side; the weights
    load with ``torch.load(weights_only=True)``. Modules other than torch's and
    pypaddle's cannot be described; save such a model with ``torch.save``.

    Examples
    --------
    >>> import tempfile, torch
    >>> from pathlib import Path
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Tanh())
    >>> path = Path(tempfile.mkdtemp()) / "model.pt"
    >>> save(model, path)
    >>> torch.equal(load(path)[0].weight, model[0].weight)
    True
    """
    if not isinstance(model, nn.Module):
        raise InputTypeError(f"save needs a torch.nn.Module, got {type(model).__name__}")
    parameter = next(model.parameters(), None)
    dtype = str(parameter.dtype).removeprefix("torch.") if parameter is not None else None
    torch.save(
        {
            "format": FORMAT,
            "architecture": describe(model),
            "dtype": dtype,
            "state_dict": {key: value.cpu() for key, value in model.state_dict().items()},
        },
        path,
    )


def load(path: str | os.PathLike, *, map_location: Any = None) -> nn.Module:
    """The model :func:`save` wrote to ``path``, in eval mode."""
    content = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        raise ConfigError(
            f"{os.fspath(path)!r} was not written by pypaddle.deploy.save "
            f"(expected format {FORMAT!r})"
        )
    model = build(content["architecture"])
    if content["dtype"] is not None:
        model.to(getattr(torch, content["dtype"]))
    model.load_state_dict(content["state_dict"])
    return model.eval()


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike,
    example_input: torch.Tensor,
    *,
    dynamic_batch: bool = True,
) -> None:
    """Write ``model`` as an ONNX file (input ``input``, output ``output``).

    Export a compacted model (:func:`compact`): it holds only standard operators. Needs
    the ``onnx`` extra (``pip install 'pypaddle[onnx]'``: onnx, onnxscript, onnxruntime).
    With ``dynamic_batch`` the batch dimension may vary.
    """
    missing = [name for name in ("onnx", "onnxscript") if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(
            f"ONNX export needs {' and '.join(missing)}, which is not installed; "
            "install the extra with pip install 'pypaddle[onnx]'"
        )
    if not isinstance(model, nn.Module):
        raise InputTypeError(f"export_onnx needs a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(path, str | os.PathLike) or not isinstance(example_input, torch.Tensor):
        raise InputTypeError(
            "export_onnx takes (model, path, example_input): a file path and an input tensor, "
            f"got a {type(path).__name__} and a {type(example_input).__name__}"
        )
    dynamic = ({0: torch.export.Dim("batch")},) if dynamic_batch else None
    with evaluating(model), warnings.catch_warnings():
        # torch's exporter trips over its own pytree deprecation; no user can fix that
        warnings.filterwarnings("ignore", r"`isinstance\(treespec, LeafSpec\)`", FutureWarning)
        program = torch.onnx.export(
            model,
            (example_input,),
            input_names=["input"],
            output_names=["output"],
            dynamo=True,
            dynamic_shapes=dynamic,
            verbose=False,
        )
        program.save(os.fspath(path))
