"""Recording what a model computes: which module or function made which tensor from which.

Two tracers give the same record, a list of :class:`Op` in execution order:

- ``"fx"``: ``torch.fx`` symbolic tracing (leaf modules stay whole), then an interpreter
  runs the traced graph once on the example input to learn every shape.
- ``"hooks"``: for models fx cannot trace (data-dependent ``if``, custom autograd
  kernels...), the model runs once as it is, with forward hooks on its leaf modules
  (removed in ``finally``) and a ``TorchFunctionMode`` that records the torch functions
  called between them.

Either way the model runs once, in eval mode and under ``torch.no_grad()``, and is left as
it was: training flags are restored, and so are buffer values and attributes if a forward
changed them. Its own hooks run, as they would on any call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.fx as fx
from torch import nn
from torch.overrides import TorchFunctionMode

from pypaddle.errors import ConfigError, InputTypeError
from pypaddle.extract._rules import is_registered_leaf
from pypaddle.sparse.masked import MaskableModule

__all__ = ["Op", "Trace", "is_leaf", "tensors_in", "trace_model"]


@dataclass
class Op:
    """One call of a leaf module or a torch function on traced tensors."""

    name: str  # unique: the module's qualified name or the function's name, _1, _2 ... on reuse
    base: str  # the module's qualified name or the function's name, as called
    kind: str  # "module" or "function"
    target: Any  # the module, or the function / method called
    type_name: str  # module class name or function name
    args: tuple
    kwargs: dict
    inputs: list[int]  # value ids of the traced tensors among the arguments
    outputs: list[int]  # value ids of the tensors in the result, in flattening order
    result: Any
    bound: dict[int, int]  # id() of each traced tensor argument -> its value id

    def describe(self) -> str:
        """``module 'name' (Class)`` or ``function 'name' (torch function)``, for messages."""
        if self.kind == "module":
            return f"module {self.name!r} ({self.type_name})"
        return f"function {self.name!r} (torch {self.type_name})"


@dataclass
class Trace:
    """The record of one run: values are numbered tensors, ops connect them."""

    tracer: str
    inputs: list[int]
    outputs: list[int]
    ops: list[Op]
    tensors: dict[int, torch.Tensor] = field(default_factory=dict)
    producer: dict[int, int] = field(default_factory=dict)  # value id -> op position
    result: Any = None  # what the model returned

    @property
    def batch(self) -> int:
        return int(self.tensors[self.inputs[0]].shape[0])


def tensors_in(obj: Any) -> Iterator[torch.Tensor]:
    """The tensors in nested tuples, lists and dicts, in order."""
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (tuple, list)):
        for item in obj:
            yield from tensors_in(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from tensors_in(item)


def is_leaf(module: nn.Module) -> bool:
    """Leaf modules are recorded whole: torch.nn's own, masked modules, DAN models and
    modules given a kind (:func:`pypaddle.kinds.register_kind`, or
    :func:`~pypaddle.extract.register_rule`)."""
    if isinstance(module, MaskableModule) or is_registered_leaf(module):
        return True
    if isinstance(module, (nn.Sequential, nn.ModuleList, nn.ModuleDict)):
        return False
    origin = type(module).__module__
    return origin.startswith(("torch.nn", "torch.ao.nn"))


def _function_name(function: Any) -> str:
    name = function if isinstance(function, str) else getattr(function, "__name__", "call")
    name = name.strip("_") or "call"
    # A tensor property (x.mT) is fx's getattr and the function mode's __get__: one name.
    return "getattr" if name == "get" else name


class _Recorder:
    """Numbers tensors by identity and names ops uniquely."""

    def __init__(self, tracer: str) -> None:
        self.trace = Trace(tracer=tracer, inputs=[], outputs=[], ops=[])
        self.value_of: dict[int, int] = {}
        self.names: dict[str, int] = {}

    def new_values(self, result: Any) -> list[int]:
        ids = []
        for tensor in tensors_in(result):
            value = len(self.trace.tensors)
            self.trace.tensors[value] = tensor  # keeps it alive, so its id() stays unique
            self.value_of[id(tensor)] = value
            ids.append(value)
        return ids

    def known(self, args: Any) -> list[int]:
        ids = []
        for tensor in tensors_in(args):
            value = self.value_of.get(id(tensor))
            if value is not None and value not in ids:
                ids.append(value)
        return ids

    def unique(self, base: str) -> str:
        count = self.names.get(base, 0)
        self.names[base] = count + 1
        return base if count == 0 else f"{base}_{count}"

    def record(
        self, base: str, kind: str, target: Any, type_name: str, args: tuple, kwargs: dict, result
    ) -> None:
        inputs = self.known((args, kwargs))
        if not inputs or next(tensors_in(result), None) is None:
            return  # a constant, or a shape query: not part of the dataflow
        bound = {
            id(tensor): self.value_of[id(tensor)]
            for tensor in tensors_in((args, kwargs))
            if id(tensor) in self.value_of
        }
        outputs = self.new_values(result)
        position = len(self.trace.ops)
        name = self.unique(base)
        self.trace.ops.append(
            Op(name, base, kind, target, type_name, args, kwargs, inputs, outputs, result, bound)
        )
        for value in outputs:
            self.trace.producer[value] = position


class _LeafTracer(fx.Tracer):
    def is_leaf_module(self, module: nn.Module, qualified_name: str) -> bool:
        return is_leaf(module)


class _RecordingInterpreter(fx.Interpreter):
    def __init__(self, module: fx.GraphModule, recorder: _Recorder) -> None:
        super().__init__(module)
        self.recorder = recorder

    def run_node(self, node: fx.Node) -> Any:
        try:
            result = super().run_node(node)
        except Exception as error:
            where = f"module {node.target!r}" if node.op == "call_module" else repr(node.name)
            raise _ForwardFailed(where, error) from error
        if node.op == "placeholder":
            self.recorder.trace.inputs.extend(self.recorder.new_values(result))
        elif node.op == "output":
            self.recorder.trace.result = result
            self.recorder.trace.outputs.extend(self.recorder.known(result))
        elif node.op == "call_module":
            target = str(node.target)  # a module's qualified name
            module = self.fetch_attr(target)
            args, kwargs = self.fetch_args_kwargs_from_env(node)
            self.recorder.record(
                target, "module", module, type(module).__name__, args, kwargs, result
            )
        elif node.op in ("call_function", "call_method"):
            args, kwargs = self.fetch_args_kwargs_from_env(node)
            name = _function_name(node.target)
            self.recorder.record(name, "function", node.target, name, args, kwargs, result)
        return result


class _ForwardFailed(Exception):
    def __init__(self, where: str, error: Exception) -> None:
        super().__init__(where)
        self.where, self.error = where, error


class _FunctionRecorder(TorchFunctionMode):
    """Records torch functions called outside leaf modules; hooks say where leaves are."""

    def __init__(self, recorder: _Recorder) -> None:
        super().__init__()
        self.recorder = recorder
        self.leaf_stack: list[str] = []
        self.running: str | None = None  # the function being called, until it returns
        self.last = ""  # the last function or leaf module that returned

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.leaf_stack:
            return func(*args, **kwargs)
        name = _function_name(func)
        self.running = repr(name)
        result = func(*args, **kwargs)
        self.running = None
        if next(tensors_in(result), None) is not None:  # not a shape query
            self.last = repr(name)
        self.recorder.record(name, "function", func, name, args, kwargs, result)
        return result

    def where(self) -> str:
        """Where the forward failed: in a leaf module, in a function, or in between."""
        if self.leaf_stack:
            return f"module {self.leaf_stack[-1]!r}"
        if self.running:
            return self.running
        if self.last:
            return f"the model's own code after {self.last}"
        return "the model's own code"


def _trace_fx(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> Trace:
    tracer = _LeafTracer()
    graph = tracer.trace(model)
    module = fx.GraphModule(tracer.root, graph)
    recorder = _Recorder("fx")
    _RecordingInterpreter(module, recorder).run(*inputs)
    return recorder.trace


def _trace_hooks(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> Trace:
    recorder = _Recorder("hooks")
    mode = _FunctionRecorder(recorder)
    handles = []

    def before(name: str) -> Callable:
        def hook(module: nn.Module, args: tuple, kwargs: dict) -> None:
            mode.leaf_stack.append(name)

        return hook

    def after(name: str) -> Callable:
        def hook(module: nn.Module, args: tuple, kwargs: dict, result: Any) -> None:
            mode.leaf_stack.pop()
            mode.last = f"module {name!r}"
            if not mode.leaf_stack:
                recorder.record(name, "module", module, type(module).__name__, args, kwargs, result)

        return hook

    try:
        for qualified, module in model.named_modules():
            if is_leaf(module):
                name = qualified or type(module).__name__
                handles.append(module.register_forward_pre_hook(before(name), with_kwargs=True))
                handles.append(module.register_forward_hook(after(name), with_kwargs=True))
        recorder.trace.inputs.extend(recorder.new_values(inputs))
        with mode:
            try:
                result = model(*inputs)
            except Exception as error:
                raise _ForwardFailed(mode.where(), error) from error
    finally:
        for handle in handles:
            handle.remove()
    recorder.trace.result = result
    recorder.trace.outputs.extend(recorder.known(result))
    return recorder.trace


def _check_output(result: Any) -> None:
    leaves = list(_leaves(result))
    if not leaves or not all(isinstance(leaf, torch.Tensor) for leaf in leaves):
        kinds = sorted({type(leaf).__name__ for leaf in leaves}) or [type(result).__name__]
        raise InputTypeError(
            f"the model returned {type(result).__name__} holding {', '.join(kinds)}, not "
            "tensors; to_graph needs a model whose output is a tensor or a tuple, list or dict "
            "of tensors (wrap the model in a module that returns the tensors you want)"
        )


def _leaves(obj: Any) -> Iterator[Any]:
    if isinstance(obj, (tuple, list)):
        for item in obj:
            yield from _leaves(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from _leaves(item)
    else:
        yield obj


@contextlib.contextmanager
def _preserved(model: nn.Module) -> Iterator[None]:
    """Run the model in eval mode, then undo what the run changed.

    Eval mode keeps batch-norm statistics still (and accepts a batch of one); the flags are
    set and restored directly, without calling a user's ``train()`` override. Buffer values
    and rebound attributes are put back if a forward changed them anyway.
    """
    saved = []
    for module in model.modules():
        buffers = [
            (tensor, tensor.clone())
            for tensor in module._buffers.values()
            # a sparse buffer (a SparseLinear's CSR weight) cannot be compared; forwards
            # do not write into one
            if tensor is not None and tensor.layout == torch.strided
        ]
        saved.append((module, dict(module.__dict__), dict(module._buffers), buffers))
        module.training = False
    try:
        yield
    finally:
        with torch.no_grad():
            for module, attributes, buffer_slots, buffers in saved:
                for tensor, copy in buffers:
                    if not torch.equal(tensor, copy):
                        tensor.copy_(copy)
                module._buffers.clear()
                module._buffers.update(buffer_slots)
                for name in set(module.__dict__) - set(attributes):
                    del module.__dict__[name]
                for name, value in attributes.items():
                    if module.__dict__.get(name) is not value:
                        module.__dict__[name] = value


def _drop_dead_ops(trace: Trace) -> None:
    """Keep only the ops the output depends on (not, e.g., a ``x.sum() > 0`` test)."""
    live = [False] * len(trace.ops)
    pending = [trace.producer[value] for value in trace.outputs if value in trace.producer]
    while pending:
        position = pending.pop()
        if live[position]:
            continue
        live[position] = True
        pending.extend(
            trace.producer[value] for value in trace.ops[position].inputs if value in trace.producer
        )
    trace.ops = [op for op, keep in zip(trace.ops, live) if keep]
    trace.producer = {
        value: position for position, op in enumerate(trace.ops) for value in op.outputs
    }


def _example_inputs(example_input: Any) -> tuple[torch.Tensor, ...]:
    inputs = example_input if isinstance(example_input, (tuple, list)) else (example_input,)
    if not inputs or not all(isinstance(item, torch.Tensor) for item in inputs):
        raise InputTypeError(
            f"example_input must be a tensor or a tuple of tensors, got "
            f"{type(example_input).__name__}; pass e.g. torch.randn(1, 3, 32, 32)"
        )
    if any(item.dim() == 0 for item in inputs):
        raise ConfigError(
            "example_input needs a batch dimension first, got a 0-d tensor; "
            "pass e.g. x.unsqueeze(0)"
        )
    return tuple(inputs)


def _shapes(inputs: tuple[torch.Tensor, ...]) -> str:
    return ", ".join(str(tuple(item.shape)) for item in inputs)


def trace_model(model: nn.Module, example_input: Any, tracer: str = "auto") -> Trace:
    """Record ``model`` on ``example_input`` with ``tracer`` ("auto", "fx" or "hooks")."""
    if not isinstance(model, nn.Module):
        raise InputTypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(tracer, str) or tracer not in ("auto", "fx", "hooks"):
        raise ConfigError(f"tracer must be 'auto', 'fx' or 'hooks', got {tracer!r}")
    inputs = _example_inputs(example_input)
    fx_error: Exception | None = None
    try:
        with _preserved(model), torch.no_grad():
            if tracer != "hooks" and not is_leaf(model):
                try:
                    trace = _trace_fx(model, inputs)
                except _ForwardFailed:
                    raise
                except Exception as error:  # fx cannot trace it: fall back to hooks
                    if tracer == "fx":
                        raise ConfigError(
                            f"torch.fx cannot trace {type(model).__name__}: "
                            f"{type(error).__name__}: {error}; use tracer='hooks' or 'auto'"
                        ) from error
                    fx_error = error
                    trace = _trace_hooks(model, inputs)
            else:
                trace = _trace_hooks(model, inputs)
    except _ForwardFailed as failure:
        note = "" if fx_error is None else " (torch.fx could not trace it, so hooks were used)"
        raise ConfigError(
            f"the model's forward failed in {failure.where} on an example input of shape "
            f"{_shapes(inputs)}{note}: {type(failure.error).__name__}: {failure.error}; give an "
            "example input the model accepts (with a batch dimension first)"
        ) from failure.error
    _check_output(trace.result)
    _drop_dead_ops(trace)
    if not trace.outputs:
        raise InputTypeError(
            "the model's output does not depend on its input (it returned no tensor computed "
            "from example_input), so there is no structure to extract"
        )
    for value in (*trace.inputs, *trace.outputs):
        if trace.tensors[value].dim() == 0:
            raise ConfigError("the model's output has no batch dimension; to_graph needs one")
    return trace
