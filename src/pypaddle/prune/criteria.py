"""Importance criteria: how much each weight matters, as a tensor of the weight's shape.

A criterion is any callable ``(module, name) -> Tensor`` returning one score per entry of
``module.<name>``; low scores are removed first. The built-in ones are selected by name in
:func:`pypaddle.prune.prune` and take their options as keywords:

=============  ======================================================  ==================
name           score of weight ``w``                                   options
=============  ======================================================  ==================
magnitude      ``|w|``                                                 (none)
random         uniform in [0, 1)                                       seed, generator
snip           ``|g * w|``, ``g`` the gradient of the loss on a batch  inputs, targets,
                                                                       loss_fn, model
taylor         ``0.5 * F * w**2`` with ``F`` the diagonal empirical    inputs, targets,
               Fisher (mean squared gradient over mini-batches,        loss_fn, model,
               per sample by default): Optimal Brain Damage saliency   batch_size
synflow        ``|dR/dw * w|`` for ``R`` the summed output of the      iterations,
               network with every parameter made positive on an        input_shape, model
               all-ones input (data-free), pruned over ``iterations``
               rounds with an exponential schedule, as in its paper
=============  ======================================================  ==================

Criteria that run the model (snip, taylor, synflow) compute every score in one
``prepare`` call and leave the model as it was, on success and on error: every parameter,
``.grad``, buffer (batch-norm running statistics included), train / eval mode, hook and
``requires_grad`` flag. The contract every criterion follows is :class:`Criterion`.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import nn

from pypaddle._core.checks import check_count, check_widths
from pypaddle._core.seeds import torch_generator
from pypaddle.errors import ConfigError, InputTypeError, PaddleError
from pypaddle.prune._targets import Target, gradients, root_model

__all__ = [
    "CRITERIA",
    "SNIP",
    "Criterion",
    "Magnitude",
    "Random",
    "SynFlow",
    "Taylor",
    "resolve_criterion",
]


@runtime_checkable
class Criterion(Protocol):
    """What a pruning criterion is: ``(module, name) -> scores`` of the weight's shape.

    :func:`~pypaddle.prune.prune` (and :func:`~pypaddle.prune.compute_masks`, the
    schedules and :func:`~pypaddle.prune.importance`) call it once for every masked weight,
    ``module.<name>``, and remove the lowest scores first. Any callable of this signature
    is a criterion (a function, a ``functools.partial``, an object); the scores must be a
    tensor (or array) of the weight's shape, with no NaN at an active weight.

    Two hooks are optional and looked up on the criterion:

    ``prepare(model_or_modules, targets) -> None``
        Called once before the scores of a pruning step are asked for, with what was
        given to ``prune`` and the list of :class:`~pypaddle.prune.Target` (module,
        weight and mask names) about to be scored: the place to run the model once and
        keep every score. It must leave the model as it was.
    ``iterations: int``
        Prune in that many rounds (>= 1), scoring again before each, with the kept
        groups decaying geometrically (:func:`~pypaddle.prune.round_amounts`), as SynFlow
        does. Absent means 1.

    Examples
    --------
    A criterion that ranks each weight against the mean magnitude of its own layer, so
    that layers of different scales compete on equal terms in a global threshold:

    >>> import torch
    >>> from pypaddle.prune import Criterion, prune
    >>> from pypaddle.sparse import MaskedDeepFFN
    >>> class RelativeMagnitude:
    ...     def prepare(self, model_or_modules, targets):
    ...         self.means = {
    ...             (id(t.module), t.weight_name): t.weight.detach().abs().mean() for t in targets
    ...         }
    ...     def __call__(self, module, name):
    ...         weight = getattr(module, name).detach()
    ...         return weight.abs() / self.means[(id(module), name)]
    >>> criterion: Criterion = RelativeMagnitude()
    >>> isinstance(criterion, Criterion)
    True
    >>> _ = torch.manual_seed(0)
    >>> model = MaskedDeepFFN(8, 2, [16])
    >>> prune(model, 0.5, criterion=criterion)
    80
    """

    def __call__(self, module: nn.Module, name: str, /) -> torch.Tensor: ...


Scores = Criterion


class Magnitude:
    """``|w|``: the classic magnitude criterion."""

    def __call__(self, module: nn.Module, name: str) -> torch.Tensor:
        return getattr(module, name).detach().abs()


class Random:
    """Uniform random scores from ``generator`` (or a generator seeded with ``seed``)."""

    def __init__(self, *, seed: int | None = None, generator: torch.Generator | None = None):
        self.generator = torch_generator(seed, generator)

    def __call__(self, module: nn.Module, name: str) -> torch.Tensor:
        weight = getattr(module, name)
        device = self.generator.device
        scores = torch.rand(weight.shape, generator=self.generator, device=device)
        return scores.to(weight.device)


class _ModelScores:
    """A criterion that runs the model once in :meth:`prepare` and then looks scores up."""

    what = "criterion"

    def __init__(self, model: nn.Module | None) -> None:
        self.model = model
        self._scores: dict[tuple[int, str], torch.Tensor] = {}

    def prepare(self, model_or_modules: Any, targets: Sequence[Target]) -> None:
        model = self.model if self.model is not None else root_model(model_or_modules, self.what)
        if not isinstance(model, nn.Module):
            raise InputTypeError(
                f"{self.what}: model must be a torch.nn.Module, got {type(model).__name__}"
            )
        inside = {id(module) for module in model.modules()}
        outside = [target.name for target in targets if id(target.module) not in inside]
        if outside:
            raise ConfigError(
                f"{self.what}: the model it runs does not contain {', '.join(outside[:3])}, "
                "which are being pruned; pass the model that holds them (model=...)"
            )
        weights = [target.weight for target in targets]
        with _left_as_it_was(model, targets):
            scores = self._compute(model, targets, weights)
        self._scores = {
            (id(target.module), target.weight_name): score for target, score in zip(targets, scores)
        }

    def _compute(
        self, model: nn.Module, targets: Sequence[Target], weights: list[torch.Tensor]
    ) -> list[torch.Tensor]:
        raise NotImplementedError

    def __call__(self, module: nn.Module, name: str) -> torch.Tensor:
        try:
            return self._scores[(id(module), name)]
        except KeyError:
            raise ConfigError(
                f"the {self.what} scores were computed for other modules; call prepare() with "
                "the modules being pruned first"
            ) from None


@contextlib.contextmanager
def _left_as_it_was(model: nn.Module, targets: Sequence[Target]) -> Iterator[None]:
    """Run the model for scores, then put back everything running it may have changed.

    Buffers (batch-norm running statistics and their counters), train / eval modes,
    ``requires_grad`` flags and ``.grad`` are restored in ``finally``; the weights being
    scored are made to require gradients meanwhile, so frozen weights can be scored too.
    """
    modules = list(model.modules())
    buffers = [
        (module, name, buffer, buffer.detach().clone())
        for module in modules
        for name, buffer in module._buffers.items()
        if buffer is not None
    ]
    modes = [module.training for module in modules]
    parameters = list(model.parameters())
    leaves = [target.leaf()[0] for target in targets]
    flags = [(tensor, tensor.requires_grad, tensor.grad) for tensor in [*parameters, *leaves]]
    try:
        for leaf in leaves:
            if leaf.is_leaf and not leaf.requires_grad:
                leaf.requires_grad_(True)
        yield
    finally:
        with torch.no_grad():
            for module, name, buffer, saved in buffers:
                if module._buffers.get(name) is not buffer:
                    module._buffers[name] = buffer
                if not torch.equal(buffer, saved):
                    buffer.copy_(saved)
        for module, training in zip(modules, modes):
            module.training = training
        for tensor, requires_grad, grad in flags:
            if tensor.is_leaf and tensor.requires_grad != requires_grad:
                tensor.requires_grad_(requires_grad)
            if tensor.grad is not grad:
                tensor.grad = grad


def _batch(inputs: Any, targets: Any, loss_fn: Any, what: str) -> tuple[torch.Tensor, Any]:
    if inputs is None or (targets is None and loss_fn is F.cross_entropy):
        raise ConfigError(
            f"the {what} criterion needs data: pass inputs=... and targets=... (a batch and "
            "its labels), and loss_fn=... if the loss is not cross-entropy"
        )
    if not isinstance(inputs, torch.Tensor):
        raise InputTypeError(f"{what}: inputs must be a tensor, got {type(inputs).__name__}")
    if inputs.dim() == 0 or inputs.shape[0] == 0:
        raise ConfigError(
            f"{what}: inputs must be a batch of at least one sample (dim 0 the samples), got "
            f"a tensor of shape {tuple(inputs.shape)}"
        )
    if inputs.is_floating_point() and not bool(inputs.isfinite().all()):
        raise ConfigError(
            f"{what}: inputs hold NaN or infinite values, which give no usable gradient; "
            "clean the batch first (e.g. torch.nan_to_num)"
        )
    if isinstance(targets, torch.Tensor) and (
        targets.dim() == 0 or targets.shape[0] != inputs.shape[0]
    ):
        raise ConfigError(
            f"{what}: targets of shape {tuple(targets.shape)} do not match the "
            f"{inputs.shape[0]} samples of inputs; give one target per sample"
        )
    if not callable(loss_fn):
        raise InputTypeError(
            f"{what}: loss_fn must be callable (output, targets) -> loss, got {loss_fn!r}"
        )
    return inputs, targets


def _loss(
    model: nn.Module,
    loss_fn: Callable[..., torch.Tensor],
    inputs: torch.Tensor,
    targets: Any,
    what: str,
) -> torch.Tensor:
    """The loss on a batch; a model or loss that fails is a ConfigError naming the step."""
    step = "running the model on the inputs"
    try:
        output = model(inputs)
        step = "computing loss_fn(output, targets)"
        loss = loss_fn(output, targets)
    except PaddleError:
        raise
    except (RuntimeError, ValueError, TypeError, IndexError) as error:
        raise ConfigError(
            f"{what}: {step} failed ({type(error).__name__}: {error}); check inputs, targets "
            "and loss_fn"
        ) from error
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise ConfigError(
            f"{what}: loss_fn must return a single-number tensor, got "
            f"{tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__}"
        )
    return loss.reshape(())


def _gradients(
    model: nn.Module,
    pruned: Sequence[Target],
    loss_fn: Callable[..., torch.Tensor],
    inputs: torch.Tensor,
    targets: Any,
    what: str,
) -> list[torch.Tensor | None]:
    """Gradients of the loss w.r.t. the weights of ``pruned``, leaving every ``.grad``
    untouched."""
    with torch.enable_grad():
        loss = _loss(model, loss_fn, inputs, targets, what)
        if not loss.requires_grad:
            raise ConfigError(
                f"{what}: the loss does not depend on the weights being scored (it needs no "
                "gradient); check that loss_fn uses the model's output"
            )
        return gradients(loss, pruned)


def _zeros_for_unused(
    gradients: Iterable[torch.Tensor | None], weights: list[torch.Tensor]
) -> list[torch.Tensor]:
    return [
        torch.zeros_like(weight) if gradient is None else gradient
        for gradient, weight in zip(gradients, weights)
    ]


class _DataScores(_ModelScores):
    """A criterion scored from the gradients of a loss on a batch of data."""

    def __init__(
        self,
        *,
        inputs: torch.Tensor | None = None,
        targets: Any = None,
        loss_fn: Callable[..., torch.Tensor] = F.cross_entropy,
        model: nn.Module | None = None,
    ) -> None:
        super().__init__(model)
        self.inputs, self.targets = _batch(inputs, targets, loss_fn, self.what)
        self.loss_fn = loss_fn


class SNIP(_DataScores):
    """``|g * w|``: connection sensitivity on one batch (Lee et al., 2019)."""

    what = "snip"

    def _compute(
        self, model: nn.Module, targets: Sequence[Target], weights: list[torch.Tensor]
    ) -> list[torch.Tensor]:
        found = _gradients(model, targets, self.loss_fn, self.inputs, self.targets, self.what)
        return [
            (gradient * weight).detach().abs()
            for gradient, weight in zip(_zeros_for_unused(found, weights), weights)
        ]


class Taylor(_DataScores):
    """``0.5 * F * w**2``: Optimal Brain Damage saliency with a diagonal empirical Fisher.

    ``F`` is the mean over mini-batches of ``batch_size`` samples of the squared gradient
    of the (mean) loss of that mini-batch; ``batch_size=1`` gives the per-sample empirical
    Fisher.
    """

    what = "taylor"

    def __init__(
        self,
        *,
        inputs: torch.Tensor | None = None,
        targets: Any = None,
        loss_fn: Callable[..., torch.Tensor] = F.cross_entropy,
        model: nn.Module | None = None,
        batch_size: int = 1,
    ) -> None:
        super().__init__(inputs=inputs, targets=targets, loss_fn=loss_fn, model=model)
        self.batch_size = check_count(batch_size, "taylor: batch_size", 1)

    def _compute(
        self, model: nn.Module, targets: Sequence[Target], weights: list[torch.Tensor]
    ) -> list[torch.Tensor]:
        fisher = [torch.zeros_like(weight) for weight in weights]
        starts = range(0, self.inputs.shape[0], self.batch_size)
        for start in starts:
            chunk = slice(start, start + self.batch_size)
            labels = None if self.targets is None else self.targets[chunk]
            found = _gradients(model, targets, self.loss_fn, self.inputs[chunk], labels, self.what)
            for total, gradient in zip(fisher, _zeros_for_unused(found, weights)):
                total.add_(gradient.detach().square())
        count = max(len(starts), 1)
        return [
            0.5 * (total / count) * weight.detach().square()
            for total, weight in zip(fisher, weights)
        ]


class SynFlow(_ModelScores):
    """``|dR/dw * w|`` with ``R = sum(f(1))`` on a copy of the model whose parameters are
    made positive (Tanaka et al., 2020). Data-free; pruned over ``iterations`` rounds.

    The copy runs in float64 and in eval mode; ``input_shape`` is the shape of one sample
    (read from ``model.input_shape`` when the model has it).
    """

    what = "synflow"

    def __init__(
        self,
        *,
        iterations: int = 100,
        input_shape: Sequence[int] | None = None,
        model: nn.Module | None = None,
    ) -> None:
        super().__init__(model)
        self.iterations = check_count(iterations, "synflow: iterations", 1)
        self.input_shape = (
            None if input_shape is None else check_widths(input_shape, "synflow: input_shape")
        )

    def _compute(
        self, model: nn.Module, targets: Sequence[Target], weights: list[torch.Tensor]
    ) -> list[torch.Tensor]:
        shape = self.input_shape or getattr(model, "input_shape", None)
        if shape is None:
            raise ConfigError(
                "synflow feeds an all-ones sample through the model but cannot tell its "
                "shape; pass input_shape=(features,) (or the shape of one sample)"
            )
        memo: dict[int, Any] = {}
        linear = copy.deepcopy(model, memo).double().eval()
        with torch.no_grad():
            for parameter in linear.parameters():
                parameter.abs_()
                parameter.requires_grad_(True)
        copied = [target._replace(module=memo[id(target.module)]) for target in targets]
        copies = [target.weight for target in copied]
        device = copies[0].device
        ones = torch.ones(1, *shape, dtype=torch.float64, device=device)
        with torch.enable_grad():
            flow = _loss(linear, lambda output, _: output.sum(), ones, None, self.what)
            found = gradients(flow, copied)
        return [
            (gradient * weight).detach().abs().to(original.dtype)
            for gradient, weight, original in zip(_zeros_for_unused(found, copies), copies, weights)
        ]


CRITERIA: dict[str, type] = {
    "magnitude": Magnitude,
    "random": Random,
    "snip": SNIP,
    "taylor": Taylor,
    "synflow": SynFlow,
}
"""The built-in criteria by the name :func:`~pypaddle.prune.prune` takes."""


def resolve_criterion(criterion: Any, options: dict[str, Any]) -> Scores:
    """A scoring callable from a built-in name (with its options) or a user callable."""
    if isinstance(criterion, str):
        if criterion not in CRITERIA:
            raise ConfigError(
                f"unknown criterion {criterion!r}; valid: {', '.join(CRITERIA)}, or any callable "
                "(module, name) -> scores"
            )
        factory = CRITERIA[criterion]
        accepted = [
            name
            for name, parameter in inspect.signature(factory).parameters.items()
            if parameter.kind is inspect.Parameter.KEYWORD_ONLY
        ]
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise ConfigError(
                f"the {criterion} criterion takes no option {', '.join(unknown)}; "
                f"it accepts: {', '.join(accepted) or 'no options'}"
            )
        return factory(**options)
    if callable(criterion):
        if options:
            raise ConfigError(
                f"options {', '.join(sorted(options))} were given with a callable criterion; "
                "bind them into the callable instead (e.g. functools.partial)"
            )
        return criterion
    raise InputTypeError(
        f"criterion must be one of {', '.join(CRITERIA)} or a callable (module, name) -> "
        f"scores, got {criterion!r}"
    )
