"""Saving, loading and ONNX export of compacted models.

A saved model is one ``torch.save`` file holding plain data: the architecture as a
description of nested modules (a registered name and constructor arguments, read from the
modules' attributes) and the ``state_dict``. Loading reads it with
``torch.load(weights_only=True)``, so no pickled code runs, and builds only what is
registered as loadable (:func:`register_loadable`): every name in the file is looked up
in that table; nothing the file names is imported, nothing outside the table is called,
and the arguments must be plain data and known to the constructor. The shapes the
architecture implies are checked against the weights before anything is allocated.
Files are written atomically: a temporary file beside the target, renamed into place.
"""

from __future__ import annotations

import inspect
import io
import os
import pickle
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parameter import is_lazy

from pypaddle._core import extras
from pypaddle._core.files import atomic_files, atomic_write_with, check_target
from pypaddle.deploy._loadable import name_of, register_loadable, registered
from pypaddle.deploy._modes import evaluating
from pypaddle.deploy.dan import CompactDAN
from pypaddle.errors import ConfigError, InputTypeError, ModelFileError
from pypaddle.sparse._common import _Function

__all__ = ["export_onnx", "load", "register_loadable", "save"]

FORMAT = "pypaddle.deploy/1"
_SKIPPED_ARGUMENTS = {"self", "device", "dtype"}
_KEYS = {"format", "architecture", "dtype", "state_dict"}
_DTYPES = {
    str(dtype).removeprefix("torch."): dtype
    for dtype in (
        torch.float16,
        torch.bfloat16,
        torch.float32,
        torch.float64,
        torch.complex64,
        torch.complex128,
    )
}
# Deeper than any real model's nesting of Sequentials; a crafted file stops here.
_MAX_DEPTH = 100


# -- describing (saving) ----------------------------------------------------------------
def _plain(value: Any, what: str) -> Any:
    """``value`` as lists, numbers, strings and None, or a ConfigError."""
    if isinstance(value, (tuple, list)):
        return [_plain(item, what) for item in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ConfigError(f"cannot describe {what}={value!r} for saving")


def _constructor_arguments(cls: type) -> dict[str, inspect.Parameter]:
    """The named constructor arguments a description may give (not device and dtype)."""
    return {
        name: parameter
        for name, parameter in inspect.signature(cls).parameters.items()
        if name not in _SKIPPED_ARGUMENTS
        and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
    }


def describe(module: nn.Module) -> dict[str, Any]:
    """The architecture of ``module`` as nested plain data (see :func:`save`)."""
    if isinstance(module, _Function):
        function = module.function
        name = name_of(function)
        if name is None:
            raise ConfigError(
                f"the activation {function!r} is not registered as loadable, so it cannot be "
                "saved by name; use an nn.Module activation (nn.ReLU, ...), register the "
                "function with pypaddle.deploy.register_loadable, or torch.save the model"
            )
        return {"function": name}
    cls = type(module)
    name = name_of(cls)
    if name is None:
        raise ConfigError(
            f"{cls.__name__} is not a module pypaddle registered as loadable, so save cannot "
            "describe it; register the class with pypaddle.deploy.register_loadable, or save "
            "the model with torch.save(model) instead"
        )
    if isinstance(module, nn.Sequential):
        return {"class": name, "children": [describe(child) for child in module]}
    if isinstance(module, CompactDAN):
        return {
            "class": name,
            "arguments": module.config(),
            "activation": describe(module.activation),
            "norms": [describe(norm) for norm in module.norms],
        }
    arguments = {}
    for argument, parameter in _constructor_arguments(cls).items():
        if not hasattr(module, argument):
            if parameter.default is parameter.empty:
                raise ConfigError(
                    f"cannot describe {cls.__name__}: it has no attribute {argument!r} for "
                    "its constructor argument of that name; save it with torch.save instead"
                )
            continue
        value = getattr(module, argument)
        if argument == "bias" and (value is None or isinstance(value, torch.Tensor)):
            value = value is not None
        arguments[argument] = _plain(value, f"{cls.__name__}.{argument}")
    return {"class": name, "arguments": arguments}


# -- building (loading) -----------------------------------------------------------------
class _Builder:
    """Checks a description from ``path`` and builds it from registered objects only."""

    def __init__(self, path: str, *, quiet: bool = False) -> None:
        self.path = path
        self.quiet = quiet  # the build on the meta device repeats the real one's warnings

    def fail(self, where: str, what: str) -> ModelFileError:
        return ModelFileError(f"{self.path!r} is not a model file load can build: {where} {what}")

    def build(self, node: Any, where: str = "the architecture", depth: int = 0) -> nn.Module:
        if depth > _MAX_DEPTH:
            raise self.fail(where, f"nests modules more than {_MAX_DEPTH} deep")
        if not isinstance(node, dict) or not all(isinstance(key, str) for key in node):
            raise self.fail(where, f"is a {type(node).__name__}, not a module description")
        if "function" in node:
            self.keys(node, {"function"}, {"function"}, where)
            return _Function(self.lookup(node["function"], where, want_class=False))
        if "class" not in node:
            raise self.fail(where, "names neither a 'class' nor a 'function'")
        cls = self.lookup(node["class"], where, want_class=True)
        where = f"{where} ({node['class']})"
        if issubclass(cls, nn.Sequential):
            self.keys(node, {"class", "children"}, {"class"}, where)
            children = self.sequence(node.get("children", []), f"{where}.children")
            return self.call(
                cls,
                [self.build(child, f"{where}.children[{i}]", depth + 1) for i, child in children],
                {},
                where,
            )
        if issubclass(cls, CompactDAN):
            fields = {"class", "arguments", "activation", "norms"}
            self.keys(node, fields, fields, where)
            arguments = self.arguments(cls, node.get("arguments", {}), where)
            norms = self.sequence(node.get("norms", []), f"{where}.norms")
            modules = {
                "activation": self.build(node.get("activation"), f"{where}.activation", depth + 1),
                "norms": [self.build(n, f"{where}.norms[{i}]", depth + 1) for i, n in norms],
            }
            return self.call(cls, [], {**arguments, **modules}, where)
        self.keys(node, {"class", "arguments"}, {"class"}, where)
        arguments = self.arguments(cls, node.get("arguments", {}), where)
        # Sizes and the like were tuples before they became lists in the file.
        arguments = {
            name: tuple(value) if isinstance(value, list) else value
            for name, value in arguments.items()
        }
        return self.call(cls, [], arguments, where)

    def keys(self, node: dict[str, Any], allowed: set[str], needed: set[str], where: str) -> None:
        unknown = sorted(set(node) - allowed)
        if unknown:
            raise self.fail(where, f"has the unknown entries {unknown}")
        missing = sorted(needed - set(node))
        if missing:
            raise self.fail(where, f"lacks the entries {missing}")

    def sequence(self, value: Any, where: str) -> list[tuple[int, Any]]:
        if not isinstance(value, list):
            raise self.fail(where, f"is a {type(value).__name__}, not a list")
        return list(enumerate(value))

    def lookup(self, name: Any, where: str, *, want_class: bool) -> Any:
        if not isinstance(name, str):
            raise self.fail(where, f"names {name!r}, which is not a str")
        thing = registered(name)
        if thing is None:
            raise self.fail(
                where,
                f"names {name!r}, which is not registered as loadable; load rebuilds only "
                "torch and pypaddle modules and what you register with "
                "pypaddle.deploy.register_loadable (nothing was imported or run)",
            )
        if isinstance(thing, type) is not want_class:
            kind = "module class" if want_class else "function"
            raise self.fail(where, f"names {name!r} where a {kind} belongs")
        return thing

    def arguments(self, cls: type, arguments: Any, where: str) -> dict[str, Any]:
        if not isinstance(arguments, dict):
            raise self.fail(f"{where}.arguments", f"is a {type(arguments).__name__}, not a dict")
        known = _constructor_arguments(cls)
        for name, value in arguments.items():
            if name not in known:
                raise self.fail(
                    where, f"gives the argument {name!r}, which {cls.__name__} does not take"
                )
            self.plain(value, f"{where}.arguments[{name!r}]", 0)
        return dict(arguments)

    def plain(self, value: Any, where: str, depth: int) -> None:
        if value is None or type(value) in (bool, int, float, str):
            return
        if type(value) is list and depth < _MAX_DEPTH:
            for item in value:
                self.plain(item, where, depth + 1)
            return
        raise self.fail(
            where, f"is a {type(value).__name__}; arguments are numbers, strs, None and lists"
        )

    def call(self, cls: type, args: list[Any], kwargs: dict[str, Any], where: str) -> nn.Module:
        try:
            with warnings.catch_warnings():
                if self.quiet:
                    warnings.simplefilter("ignore")
                return cls(*args, **kwargs)
        except Exception as error:  # the constructor refused the file's arguments
            raise self.fail(where, f"cannot be built from its arguments: {error}") from error


def _check_state(model: nn.Module, state: Mapping[str, torch.Tensor], builder: _Builder) -> None:
    """The architecture's tensors must be the file's, by name and shape."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unknown = sorted(set(state) - set(expected))
    if missing or unknown:
        raise builder.fail(
            "the weights",
            f"do not fit the architecture: missing {missing[:5]}, unexpected {unknown[:5]}",
        )
    for key, tensor in expected.items():
        if is_lazy(tensor):
            continue
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise builder.fail(
                f"the weight {key!r}",
                f"has the shape {tuple(state[key].shape)}; the architecture says "
                f"{tuple(tensor.shape)}",
            )


def _check_compact_dan(model: CompactDAN, builder: _Builder) -> None:
    """Each layer reads earlier blocks only, and its gather indices lie in them."""
    widths = [model.size_input]
    for position, (size_in, size_out, first, last, *_) in enumerate(model.layer_specs):
        where = f"the CompactDAN layer {position}"
        if not 0 <= first <= last <= position:
            raise builder.fail(where, f"reads the blocks {first} to {last} of {position + 1}")
        reads = sum(widths[first : last + 1])
        name = model.index_names[position]
        if name is not None:
            index = model.get_buffer(name)
            if index.numel() and not (int(index.min()) >= 0 and int(index.max()) < reads):
                raise builder.fail(where, f"gathers columns outside the {reads} it reads")
        elif size_in != reads:
            raise builder.fail(where, f"has {size_in} inputs but reads {reads} columns")
        widths.append(size_out)


def _model_path(path: Any, what: str) -> str:
    if isinstance(path, bytes) or not isinstance(path, str | os.PathLike):
        raise InputTypeError(f"{what} needs a file path (str or os.PathLike), got {path!r}")
    return os.fspath(path)


def _is_file_object(thing: Any, method: str) -> bool:
    return isinstance(thing, io.IOBase) or (
        not isinstance(thing, str | os.PathLike) and hasattr(thing, method)
    )


def _read(source: Any, name: str, map_location: Any) -> Any:
    try:
        with warnings.catch_warnings():
            # torch warns about pickle protocols of files it then refuses anyway
            warnings.filterwarnings("ignore", "Detected pickle protocol", UserWarning)
            return torch.load(source, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        raise ModelFileError(
            f"{name!r} is not a model file written by pypaddle.deploy.save: torch's weights-only "
            "reader refused it (it is no torch file, or it holds pickled code, which load "
            "never runs)"
        ) from None
    except Exception as error:  # a truncated zip, an empty file, ...
        reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
        raise ModelFileError(
            f"{name!r} cannot be read as a torch file ({type(error).__name__}: {reason}); "
            "it is truncated, corrupt or not a model file written by pypaddle.deploy.save"
        ) from error


def _check_map_location(map_location: Any) -> None:
    if map_location is None or callable(map_location) or isinstance(map_location, dict):
        return
    if isinstance(map_location, torch.device):
        return
    if isinstance(map_location, str):
        try:
            torch.device(map_location)
        except RuntimeError:
            raise ConfigError(
                f"map_location={map_location!r} is not a device; give e.g. 'cpu' or 'cuda:0'"
            ) from None
        return
    raise InputTypeError(
        "map_location must be None, a device, a str, a dict or a function (as in torch.load), "
        f"got {map_location!r}"
    )


# -- public functions -------------------------------------------------------------------
def save(model: nn.Module, path: str | os.PathLike) -> None:
    """Save ``model`` (e.g. from :func:`compact`) as its architecture plus its state_dict.

    The file loads with :func:`load` and nothing else from pypaddle's side; the weights
    load with ``torch.load(weights_only=True)``. Only modules and activation functions
    registered as loadable can be described: pypaddle's layers and compacted models,
    ``torch.nn``'s modules and torch's element-wise functions, and what you register with
    :func:`register_loadable`; save any other model with ``torch.save``. The file is
    written beside ``path`` under a temporary name and renamed into place (missing folders
    are made), so a save that fails or is killed half way leaves the previous file as it
    was. A binary file object given as ``path`` is written to directly.

    Raises
    ------
    InputTypeError
        ``model`` is no ``nn.Module`` or ``path`` no path.
    ConfigError
        A module or activation that is not registered as loadable, or whose constructor
        arguments are not plain data; ``path`` is a folder or lies under a file. Nothing is
        written.

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
    if not _is_file_object(path, "write"):
        _model_path(path, "save")
    parameter = next(model.parameters(), None)
    dtype = str(parameter.dtype).removeprefix("torch.") if parameter is not None else None
    content = {
        "format": FORMAT,
        "architecture": describe(model),
        "dtype": dtype,
        "state_dict": {key: value.cpu() for key, value in model.state_dict().items()},
    }
    if _is_file_object(path, "write"):
        torch.save(content, path)
    else:
        atomic_write_with(path, lambda handle: torch.save(content, handle))


def load(path: str | os.PathLike, *, map_location: Any = None) -> nn.Module:
    """The model :func:`save` wrote to ``path``, in eval mode.

    Builds only what is registered as loadable (see :func:`register_loadable`); nothing
    the file names is imported. Every name, argument and weight shape is checked before
    the model is built.

    Raises
    ------
    ModelFileError
        ``path`` is missing, a folder, truncated, corrupt, not written by :func:`save`,
        names something not registered as loadable, or gives arguments or weights that do
        not fit. It is a ``ConfigError`` and a ``ValueError`` too.
    InputTypeError
        ``path`` is not a path.

    Examples
    --------
    >>> import tempfile, torch
    >>> from pathlib import Path
    >>> path = Path(tempfile.mkdtemp()) / "model.pt"
    >>> save(torch.nn.Sequential(torch.nn.Linear(3, 2)), path)
    >>> load(path)
    Sequential(
      (0): Linear(in_features=3, out_features=2, bias=True)
    )
    """
    _check_map_location(map_location)
    if _is_file_object(path, "read"):
        name = repr(path)
        source: Any = path
    else:
        name = source = _model_path(path, "load")
        if not Path(source).exists():
            raise ModelFileError(f"{name!r}: no such file; give the path save wrote to")
        if not Path(source).is_file():
            raise ModelFileError(f"{name!r} is a folder or a device, not a model file")
    content = _read(source, name, map_location)
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        raise ModelFileError(
            f"{name!r} was not written by pypaddle.deploy.save (expected format {FORMAT!r})"
        )
    builder = _Builder(name)
    if set(content) != _KEYS:
        raise builder.fail("the file", f"holds the entries {sorted(content)}, not {sorted(_KEYS)}")
    dtype, state = content["dtype"], content["state_dict"]
    if dtype is not None and (not isinstance(dtype, str) or dtype not in _DTYPES):
        raise builder.fail("the dtype", f"{dtype!r} is none of {sorted(_DTYPES)}")
    if not isinstance(state, dict) or not all(
        isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in state.items()
    ):
        raise builder.fail("the state_dict", "is not a dict of names to tensors")
    # Build once without memory: a crafted file cannot make us allocate more than it holds.
    with torch.device("meta"):
        skeleton = _Builder(name, quiet=True).build(content["architecture"])
    _check_state(skeleton, state, builder)
    model = builder.build(content["architecture"])
    try:
        if dtype is not None:
            model.to(_DTYPES[dtype])
        model.load_state_dict(state)
    except Exception as error:
        raise builder.fail("the weights", f"do not load: {error}") from error
    for module in model.modules():
        if isinstance(module, CompactDAN):
            _check_compact_dan(module, builder)
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
    With ``dynamic_batch`` the batch dimension may vary. The file (and the weights file
    torch writes beside it for models over 2 GB) is written under a temporary name and
    renamed into place.
    """
    extras.require("onnx", what="ONNX export")
    if not isinstance(model, nn.Module):
        raise InputTypeError(f"export_onnx needs a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(path, str | os.PathLike) or not isinstance(example_input, torch.Tensor):
        raise InputTypeError(
            "export_onnx takes (model, path, example_input): a file path and an input tensor, "
            f"got a {type(path).__name__} and a {type(example_input).__name__}"
        )
    check_target(path)  # a folder or a path under a file: say so before the slow export
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
        if program is None:  # torch returns None only for dynamo=False
            raise ConfigError("torch.onnx.export returned no program; update torch")
        with atomic_files(path) as target:
            program.save(os.fspath(target))
