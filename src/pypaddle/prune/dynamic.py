"""Dynamic sparse training: SET and RigL move connections while the density stays fixed.

Both start from random masks of the requested density (``"uniform"``: the same density
in every layer; ``"erk"``: Erdős–Rényi-Kernel, denser where a layer has few weights for
its number of inputs and outputs) and, every ``update_frequency`` steps until
``end_step``, drop the active weights of smallest magnitude in each layer and grow as many
inactive ones: at random (SET) or where the dense gradient is largest (RigL). The
fraction moved decays from ``drop_fraction`` with a cosine. Grown weights start at zero,
the optimizer state of every moved weight is reset, and each layer keeps exactly its
number of active weights.

``density=None`` keeps the masks the model has and each layer's number of active weights:
the way to rewire a :class:`~pypaddle.sparse.MaskedDeepDAN`, whose layer matrices also
cover pairs of vertices that are not edges of its structure (a fresh DAN built from a
sparse graph is already sparse). Growing there adds edges from earlier to later layers,
so the structure stays acyclic; ``generate_structure()`` returns the rewired graph.

Call :meth:`step` after every ``optimizer.step()``; it also zeroes the masked weights so
momentum or weight decay can never move them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import nn

from pypaddle._core.checks import check_count, check_fraction, check_widths
from pypaddle._core.seeds import torch_generator
from pypaddle.errors import ConfigError, InputTypeError
from pypaddle.prune._targets import Target, collect_targets, gradients
from pypaddle.prune.schedules import _zero_masked
from pypaddle.prune.select import lowest

__all__ = ["DISTRIBUTIONS", "SET", "RigL", "layer_densities", "reset_optimizer_state"]

DISTRIBUTIONS = ("uniform", "erk")
"""How SET and RigL spread a density over layers: the same everywhere, or Erdős–Rényi-Kernel."""


def layer_densities(
    shapes: Sequence[Sequence[int]], density: float, distribution: str = "uniform"
) -> list[float]:
    """Density of each weight (given by shape) so that all of them hold ``density``.

    ``"erk"`` gives layer ``l`` the density ``eps * sum(shape) / prod(shape)`` (capped at
    1; layers that would exceed it are kept dense and ``eps`` is solved again for the rest).

    Examples
    --------
    >>> layer_densities([(100, 10), (10, 100)], 0.5)
    [0.5, 0.5]
    >>> [round(d, 3) for d in layer_densities([(300, 64), (100, 300), (10, 100)], 0.1, "erk")]
    [0.109, 0.077, 0.632]
    """
    _check_distribution(distribution)
    density = check_fraction(density, "density")
    if isinstance(shapes, (str, bytes)) or not isinstance(shapes, Sequence):
        raise InputTypeError(f"shapes must be a sequence of weight shapes, got {shapes!r}")
    shapes = [check_widths(shape, f"shapes[{i}]") for i, shape in enumerate(shapes)]
    if distribution == "uniform":
        return [density] * len(shapes)
    sizes = [math.prod(shape) for shape in shapes]
    raw = [sum(shape) / size for shape, size in zip(shapes, sizes)]
    dense: set[int] = set()
    while True:
        budget = density * sum(sizes) - sum(sizes[i] for i in dense)
        weighted = sum(raw[i] * sizes[i] for i in range(len(sizes)) if i not in dense)
        epsilon = budget / weighted if weighted else 0.0
        too_dense = {i for i in range(len(sizes)) if i not in dense and epsilon * raw[i] > 1}
        if not too_dense:
            break
        dense |= too_dense
    return [1.0 if i in dense else epsilon * raw[i] for i in range(len(sizes))]


def _check_distribution(distribution: Any) -> str:
    if not isinstance(distribution, str) or distribution not in DISTRIBUTIONS:
        raise ConfigError(
            f"unknown distribution {distribution!r}; valid: {', '.join(DISTRIBUTIONS)}"
        )
    return distribution


@torch.no_grad()
def reset_optimizer_state(
    optimizer: torch.optim.Optimizer,
    parameter: torch.Tensor,
    positions: torch.Tensor,
    *,
    cut: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> None:
    """Zero the optimizer's per-weight state (momentum, Adam moments...) at ``positions``.

    Every state tensor of the parameter's shape is edited in place; scalars such as Adam's
    step count are left alone. For a weight that is a view into a packed parameter (a
    MaskedDeepDAN layer), pass the packed parameter and the cut to the weight, as
    ``layer.parameter_leaf()`` returns them: ``positions`` are then the weight's. Such a
    view alone is refused (:class:`~pypaddle.errors.ConfigError`): the optimizer keeps no
    state for it, so there would be nothing to reset and the call would silently do nothing.
    """
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise InputTypeError(
            f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}"
        )
    if not isinstance(parameter, torch.Tensor):
        raise InputTypeError(f"parameter must be a tensor, got {type(parameter).__name__}")
    if not isinstance(positions, torch.Tensor) or positions.dtype != torch.bool:
        raise InputTypeError(
            f"positions must be a bool tensor (True where the state is reset), got {positions!r}"
        )
    if cut is not None and not callable(cut):
        raise InputTypeError(f"cut must be callable or None, got {cut!r}")
    shape = parameter.shape if cut is None else cut(parameter).shape
    if positions.shape != shape:
        raise ConfigError(
            f"positions of shape {tuple(positions.shape)} do not match the weight's shape "
            f"{tuple(shape)}; give one bool per weight"
        )
    if cut is None and parameter._is_view():
        raise ConfigError(
            "reset_optimizer_state got a view into a larger tensor (such as a MaskedDeepDAN "
            "layer's weight), and optimizer state belongs to that tensor, not to the view; "
            "pass the packed parameter and the cut to the view: leaf, cut = "
            "layer.parameter_leaf(); reset_optimizer_state(optimizer, leaf, positions, cut=cut)"
        )
    state = optimizer.state.get(parameter)
    if not state:
        return
    for value in state.values():
        if isinstance(value, torch.Tensor) and value.shape == parameter.shape:
            (value if cut is None else cut(value)).masked_fill_(positions, 0)


def _reset_state(optimizer: torch.optim.Optimizer, target: Target, positions: torch.Tensor) -> None:
    leaf, cut = target.leaf()
    reset_optimizer_state(optimizer, leaf, positions, cut=cut)


class _DynamicSparsity:
    """What SET and RigL share; they differ only in how they score the weights to grow."""

    def __init__(
        self,
        model: nn.Module | Iterable[nn.Module],
        optimizer: torch.optim.Optimizer,
        density: float | None,
        *,
        end_step: int,
        distribution: str = "uniform",
        drop_fraction: float = 0.3,
        update_frequency: int = 100,
        seed: int | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise InputTypeError(
                f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}"
            )
        self.density = (
            None if density is None else check_fraction(density, "density", open_minimum=True)
        )
        self.drop_fraction = check_fraction(drop_fraction, "drop_fraction")
        self.update_frequency = check_count(update_frequency, "update_frequency", 1)
        self.end_step = check_count(end_step, "end_step", 1)
        _check_distribution(distribution)
        self.model = model
        self.optimizer = optimizer
        self.targets = collect_targets(model)
        self.generator = torch_generator(seed, generator)
        self.step_count = 0
        if self.density is None:
            self.densities = [float(target.mask.float().mean()) for target in self.targets]
            self._keep_masks()
            return
        shapes = [tuple(target.weight.shape) for target in self.targets]
        self.densities = layer_densities(shapes, self.density, distribution)
        self._initial_masks()

    @torch.no_grad()
    def _keep_masks(self) -> None:
        """Start from the masks as they are (``density=None``)."""
        self.active_counts = [int(target.mask.sum()) for target in self.targets]
        for target in self.targets:
            _reset_state(self.optimizer, target, ~target.mask)
        _zero_masked(self.targets)

    @torch.no_grad()
    def _initial_masks(self) -> None:
        """Random masks with each layer's number of active weights, among active weights."""
        counts = []
        for target, density in zip(self.targets, self.densities):
            keep = round(density * target.mask.numel())
            active = int(target.mask.sum())
            if keep > active:
                raise ConfigError(
                    f"{target.name} has {active} active weights, fewer than the {keep} that "
                    f"density {density:.4g} needs; start from a denser model, or pass "
                    "density=None to keep every layer's active weights (as for a "
                    "MaskedDeepDAN built from a sparse graph)"
                )
            counts.append(keep)
        for target, keep in zip(self.targets, counts):
            mask = target.mask
            scores = self._random(mask)
            removed = lowest(scores.reshape(-1), mask.reshape(-1), int(mask.sum()) - keep)
            mask.logical_and_(~removed.reshape(mask.shape))
            _reset_state(self.optimizer, target, ~mask)
        self.active_counts = counts
        _zero_masked(self.targets)

    def _random(self, like: torch.Tensor) -> torch.Tensor:
        device = self.generator.device
        return torch.rand(like.shape, generator=self.generator, device=device).to(like.device)

    def fraction(self, step: int | None = None) -> float:
        """The fraction of active weights moved at ``step``: cosine decay to 0 at end_step."""
        step = self.step_count if step is None else check_count(step, "step")
        return (
            self.drop_fraction
            / 2
            * (1 + math.cos(math.pi * min(step, self.end_step) / self.end_step))
        )

    def is_update_step(self, step: int) -> bool:
        """Whether connections move at ``step``: every ``update_frequency``, before end_step."""
        step = check_count(step, "step")
        return 0 < step < self.end_step and step % self.update_frequency == 0

    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> None:
        """Count a step (call after ``optimizer.step()``); move connections on update steps."""
        step = self.step_count + 1
        if self.is_update_step(step):
            self._update(self._grow_scores(closure, step), self.fraction(step))
        self.step_count = step
        _zero_masked(self.targets)

    def _grow_scores(
        self, closure: Callable[[], torch.Tensor] | None, step: int
    ) -> list[torch.Tensor]:
        raise NotImplementedError

    @torch.no_grad()
    def _update(self, grow_scores: list[torch.Tensor], fraction: float) -> None:
        """Drop and grow in every layer: all of it chosen first, then written."""
        moves = []
        for target, scores in zip(self.targets, grow_scores):
            mask = target.mask.reshape(-1)
            count = round(fraction * int(mask.sum()))
            if count == 0:
                continue
            magnitude = target.weight.detach().abs().reshape(-1)
            if bool(magnitude[mask].isnan().any()):
                raise ConfigError(
                    f"{target.name} has NaN active weights, which cannot be ranked for "
                    "dropping; nothing was moved (check the learning rate or the data)"
                )
            dropped = lowest(magnitude, mask, count)
            candidates = ~mask | dropped
            if bool(scores.reshape(-1)[candidates].isnan().any()):
                raise ConfigError(
                    f"the grow scores of {target.name} are NaN (a NaN loss or gradient?); "
                    "nothing was moved"
                )
            grown = lowest(-scores.reshape(-1), candidates, count)
            moves.append((target, dropped, grown))
        for target, dropped, grown in moves:
            target.mask.reshape(-1).logical_and_(~dropped).logical_or_(grown)
            target.weight.view(-1).masked_fill_(grown, 0)
            moved = (dropped | grown).reshape(target.weight.shape)
            _reset_state(self.optimizer, target, moved)


class SET(_DynamicSparsity):
    """Sparse Evolutionary Training (Mocanu et al., 2018): grow at random.

    Examples
    --------
    >>> import torch
    >>> from pypaddle.sparse import MaskedDeepFFN
    >>> _ = torch.manual_seed(0)
    >>> model = MaskedDeepFFN(8, 2, [16])
    >>> optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    >>> dst = SET(model, optimizer, 0.25, end_step=10, update_frequency=2, seed=0)
    >>> for _ in range(10):
    ...     loss = model(torch.randn(4, 8)).square().mean()
    ...     optimizer.zero_grad(); loss.backward(); optimizer.step()
    ...     dst.step()
    >>> model.density
    0.25
    """

    def _grow_scores(
        self, closure: Callable[[], torch.Tensor] | None, step: int
    ) -> list[torch.Tensor]:
        return [self._random(target.mask) for target in self.targets]


class RigL(_DynamicSparsity):
    """Rigging the Lottery (Evci et al., 2020): grow where the dense gradient is largest.

    On update steps :meth:`step` needs ``closure``: a function that computes the loss of a
    batch (as for ``optimizer.step(closure)``). RigL evaluates it once with every weight
    unmasked (masked weights are zero, so the function is the same) to read the gradient
    of the connections that are not there yet, then puts the masks back. Nothing is left
    in ``.grad``.

    Examples
    --------
    >>> import torch
    >>> from pypaddle.sparse import MaskedDeepFFN
    >>> _ = torch.manual_seed(0)
    >>> model = MaskedDeepFFN(8, 2, [16])
    >>> optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    >>> rigl = RigL(model, optimizer, 0.25, end_step=10, update_frequency=2, distribution="erk")
    >>> inputs = torch.randn(4, 8)
    >>> for _ in range(10):
    ...     loss = model(inputs).square().mean()
    ...     optimizer.zero_grad(); loss.backward(); optimizer.step()
    ...     rigl.step(lambda: model(inputs).square().mean())
    >>> [layer.num_active_weights for layer in (model.layers_main_hidden[0], model.layer_out)]
    [23, 17]
    """

    def _grow_scores(
        self, closure: Callable[[], torch.Tensor] | None, step: int
    ) -> list[torch.Tensor]:
        if closure is None:
            raise ConfigError(
                f"RigL grows by the dense gradient at step {step}: call "
                "rigl.step(closure) with closure() returning the loss of a batch"
            )
        if not callable(closure):
            raise InputTypeError(f"RigL: closure must be callable, got {closure!r}")
        masks = [target.mask.clone() for target in self.targets]
        weights = [target.weight for target in self.targets]
        # The dense gradient is read with every mask open, so the masked weights are zeroed
        # first (the function stays the same); their old values come back on an error.
        hidden = [weight.detach()[~mask].clone() for weight, mask in zip(weights, masks)]
        failed = True
        try:
            with torch.no_grad():
                for target, mask in zip(self.targets, masks):
                    target.weight.masked_fill_(~mask, 0)
                    target.mask.fill_(True)
            with torch.enable_grad():
                loss = closure()
                if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
                    raise ConfigError(
                        "RigL: closure() must return the loss, a single-number tensor; got "
                        f"{type(loss).__name__}"
                    )
                found = gradients(loss.reshape(()), self.targets)
            failed = False
        finally:
            with torch.no_grad():
                for target, mask, values in zip(self.targets, masks, hidden):
                    target.mask.copy_(mask)
                    if failed:
                        target.weight.masked_scatter_(~mask, values)
        return [
            torch.zeros_like(weight) if gradient is None else gradient.detach().abs()
            for gradient, weight in zip(found, weights)
        ]
