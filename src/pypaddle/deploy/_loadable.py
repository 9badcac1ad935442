"""What :func:`pypaddle.deploy.load` may build: an explicit table of names to objects.

A saved model names its modules (and activation functions) by the strings of this table;
loading looks the names up here and nowhere else. Nothing a file names is imported, and
nothing that is not in the table is ever called, so a crafted file cannot reach
``subprocess.Popen`` through a torch re-export or run a module planted on ``sys.path``.

The table holds pypaddle's own layers and compacted models, the public module classes of
``torch.nn`` and the element-wise torch functions that serve as activations: everything
:func:`pypaddle.deploy.save` writes. Users add their own with :func:`register_loadable`.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from typing import Any, TypeVar, overload

import torch
import torch.nn.functional as F
from torch import nn

from pypaddle.errors import ConfigError, InputTypeError

__all__ = ["register_loadable"]

Loadable = TypeVar("Loadable", bound=Callable[..., Any])

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")

# name -> class or function, and back (the first name an object was registered under is
# the one save writes).
_BY_NAME: dict[str, Any] = {}
_NAME_OF: dict[Any, str] = {}

# torch.nn's containers of modules are not built from arguments; Sequential has its own
# description (its children), the others cannot be described.
_NOT_BUILT_FROM_ARGUMENTS = {"Module", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict"}


def default_name(thing: Any) -> str:
    """The name ``thing`` is saved under unless registered with another one.

    It is the import path (``torch.nn.modules.linear.Linear``), written by earlier versions
    of :func:`pypaddle.deploy.save` too. Torch's built-in functions carry the qualified
    name of an internal class (``torch.tanh.__qualname__`` is
    ``_VariableFunctionsClass.tanh``), so their plain name in their module is used.
    """
    module = getattr(thing, "__module__", None) or ""
    name = getattr(thing, "__name__", "")
    if name and getattr(sys.modules.get(module), name, None) is thing:
        return f"{module}.{name}"
    return f"{module}.{getattr(thing, '__qualname__', name)}"


@overload
def register_loadable(thing: Loadable, *, name: str | None = None) -> Loadable: ...


@overload
def register_loadable(
    thing: None = None, *, name: str | None = None
) -> Callable[[Loadable], Loadable]: ...


def register_loadable(
    thing: Loadable | None = None, *, name: str | None = None
) -> Loadable | Callable[[Loadable], Loadable]:
    """Let :func:`pypaddle.deploy.save` write, and :func:`pypaddle.deploy.load` build, ``thing``.

    ``load`` builds only what is registered: pypaddle's layers and compacted models, the
    module classes of ``torch.nn`` and torch's element-wise activation functions. Register
    your own ``nn.Module`` class (its constructor arguments must be attributes of the same
    name holding plain data: numbers, strings, bools, None, lists of those) or activation
    function to save and load models that use it; the constructor must work under
    ``torch.device("meta")`` too (load builds every architecture once there, without
    memory, to check its shapes against the weights). Registering is a promise that calling
    ``thing`` with the arguments of any file you load is harmless, so register only what
    you wrote or trust.

    Use it as a function or as a decorator, with or without ``name``.

    Parameters
    ----------
    thing : nn.Module subclass or function
        A module class, or a function of one tensor used as an activation.
    name : str, optional
        The name written into files; by default the import path
        (``"mypackage.layers.Block"``). Give a stable name to keep files loadable when the
        class moves. Registering the same object under the same name again does nothing.

    Returns
    -------
    ``thing`` (or, without it, a decorator that registers and returns its argument).

    Raises
    ------
    InputTypeError
        ``thing`` is neither an ``nn.Module`` subclass nor a function, or ``name`` is no str.
    ConfigError
        ``name`` is not a dotted name, or is registered for another object already.

    Examples
    --------
    >>> import tempfile, pathlib, torch
    >>> from pypaddle.deploy import load, register_loadable, save
    >>> @register_loadable(name="examples.Scale")
    ... class Scale(torch.nn.Module):
    ...     def __init__(self, factor: float) -> None:
    ...         super().__init__()
    ...         self.factor = factor
    ...     def forward(self, x):
    ...         return self.factor * x
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "model.pt"
    >>> save(torch.nn.Sequential(torch.nn.Linear(2, 2), Scale(3.0)), path)
    >>> load(path)[1].factor
    3.0
    """
    if name is not None and not isinstance(name, str):
        raise InputTypeError(
            f"register_loadable(name=...) must be a str such as 'mypackage.Block', got "
            f"{type(name).__name__} {name!r}"
        )
    if thing is None:

        def decorate(thing: Loadable) -> Loadable:
            return register_loadable(thing, name=name)

        return decorate
    _check_loadable(thing)
    key = default_name(thing) if name is None else name
    if not _NAME.fullmatch(key):
        raise ConfigError(
            f"cannot register {thing!r} as {key!r}: a loadable name is a dotted Python name "
            "such as 'mypackage.layers.Block'; give one with name=... (a class or function "
            "defined inside a function has none of its own)"
        )
    registered = _BY_NAME.get(key)
    if registered is not None and registered is not thing:
        raise ConfigError(
            f"the loadable name {key!r} is registered for {registered!r} already; register "
            f"{thing!r} under another name with register_loadable(..., name=...)"
        )
    _BY_NAME[key] = thing
    _NAME_OF.setdefault(thing, key)
    return thing


def _check_loadable(thing: Any) -> None:
    if isinstance(thing, type):
        if not issubclass(thing, nn.Module):
            raise InputTypeError(
                f"register_loadable takes nn.Module subclasses and activation functions; "
                f"{thing.__qualname__} is a class but not an nn.Module"
            )
        return
    function_types = (type(len), type(_check_loadable), type(torch.tanh))
    if not isinstance(thing, function_types):
        raise InputTypeError(
            "register_loadable takes nn.Module subclasses and activation functions, got "
            f"{type(thing).__name__} {thing!r}; register a module's class, not an instance"
        )


def registered(name: str) -> Any:
    """The object registered under ``name``, or None."""
    return _BY_NAME.get(name)


def name_of(thing: Any) -> str | None:
    """The name ``thing`` is saved under, or None if it is not registered."""
    try:
        return _NAME_OF.get(thing)
    except TypeError:  # unhashable
        return None


def _register_builtins() -> None:
    import torch.nn.modules as torch_modules

    from pypaddle.deploy.dan import CompactDAN
    from pypaddle.sparse.conv import MaskedConv1d, MaskedConv2d
    from pypaddle.sparse.deep_rnn import MaskedGRULayer, MaskedLSTMLayer, MaskedRecurrentLayer
    from pypaddle.sparse.masked import MaskedLinearLayer

    for name in sorted(torch_modules.__all__):
        cls = getattr(torch_modules, name)
        if (
            isinstance(cls, type)
            and issubclass(cls, nn.Module)
            and name not in _NOT_BUILT_FROM_ARGUMENTS
        ):
            register_loadable(cls)
    for cls in (
        MaskedLinearLayer,
        MaskedConv1d,
        MaskedConv2d,
        MaskedRecurrentLayer,
        MaskedGRULayer,
        MaskedLSTMLayer,
        CompactDAN,
    ):
        register_loadable(cls)
    # Element-wise functions of one tensor: what serves as an activation.
    for function in (
        torch.relu,
        torch.sigmoid,
        torch.tanh,
        torch.sin,
        torch.cos,
        torch.exp,
        torch.abs,
        torch.square,
        torch.sqrt,
        torch.erf,
        torch.atan,
        torch.sinh,
        torch.cosh,
        torch.asinh,
        torch.neg,
        torch.sign,
        torch.log1p,
        torch.expm1,
        torch.selu,
        torch.celu,
        F.relu,
        F.relu6,
        F.elu,
        F.selu,
        F.celu,
        F.gelu,
        F.silu,
        F.mish,
        F.leaky_relu,
        F.hardtanh,
        F.hardswish,
        F.hardsigmoid,
        F.hardshrink,
        F.softshrink,
        F.softplus,
        F.softsign,
        F.tanhshrink,
        F.logsigmoid,
        F.sigmoid,
        F.tanh,
    ):
        register_loadable(function)


_register_builtins()
