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
:meth:`prepare` call and never leave gradients, hooks or changed weights behind.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pypaddle._core.seeds import torch_generator
from pypaddle.errors import ConfigError, InputTypeError
from pypaddle.prune._targets import Target, gradients, root_model

__all__ = ["CRITERIA", "SNIP", "Magnitude", "Random", "SynFlow", "Taylor", "resolve_criterion"]

Scores = Callable[[nn.Module, str], torch.Tensor]


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
        weights = [target.weight for target in targets]
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


def _batch(inputs: Any, targets: Any, loss_fn: Any, what: str) -> tuple[torch.Tensor, Any]:
    if inputs is None or (targets is None and loss_fn is F.cross_entropy):
        raise ConfigError(
            f"the {what} criterion needs data: pass inputs=... and targets=... (a batch and "
            "its labels), and loss_fn=... if the loss is not cross-entropy"
        )
    if not isinstance(inputs, torch.Tensor):
        raise InputTypeError(f"{what}: inputs must be a tensor, got {type(inputs).__name__}")
    return inputs, targets


def _gradients(
    model: nn.Module,
    pruned: Sequence[Target],
    loss_fn: Callable[..., torch.Tensor],
    inputs: torch.Tensor,
    targets: Any,
) -> list[torch.Tensor | None]:
    """Gradients of the loss w.r.t. the weights of ``pruned``, leaving every ``.grad``
    untouched."""
    with torch.enable_grad():
        return gradients(loss_fn(model(inputs), targets), pruned)


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

    def _compute(self, model, targets, weights):
        found = _gradients(model, targets, self.loss_fn, self.inputs, self.targets)
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
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"taylor: batch_size must be a positive int, got {batch_size!r}")
        self.batch_size = batch_size

    def _compute(self, model, targets, weights):
        fisher = [torch.zeros_like(weight) for weight in weights]
        starts = range(0, self.inputs.shape[0], self.batch_size)
        for start in starts:
            chunk = slice(start, start + self.batch_size)
            labels = None if self.targets is None else self.targets[chunk]
            found = _gradients(model, targets, self.loss_fn, self.inputs[chunk], labels)
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
        if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
            raise ConfigError(f"synflow: iterations must be a positive int, got {iterations!r}")
        self.iterations = iterations
        self.input_shape = input_shape

    def _compute(self, model, targets, weights):
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
        copied = [target._replace(module=memo[id(target.module)]) for target in targets]
        copies = [target.weight for target in copied]
        device = copies[0].device
        with torch.enable_grad():
            flow = linear(torch.ones(1, *shape, dtype=torch.float64, device=device)).sum()
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
