"""A catalogue of bad values thrown at every public function and class of pypaddle.prune.

Each case asserts the pypaddle.errors class and that the model (or what else was handed
in) is exactly as it was. Numpy scalars are accepted wherever Python numbers are.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from bad_values import NOT_COUNTS, NOT_FINITE_REALS, NOT_FRACTIONS, NOT_SEEDS, assert_unchanged
from bad_values import snapshot as take_snapshot
from pypaddle.errors import ConfigError, InputTypeError, PaddleError
from pypaddle.prune import (
    SET,
    GradualPruning,
    LotteryTicket,
    RigL,
    compute_masks,
    cubic_sparsity,
    importance,
    layer_densities,
    prune,
    prune_iteratively,
    report,
    reset_optimizer_state,
    round_amounts,
)
from pypaddle.prune.criteria import SNIP, Random, SynFlow, Taylor
from pypaddle.sparse import MaskedDeepFFN, MaskedLinear


def _ffn() -> MaskedDeepFFN:
    torch.manual_seed(0)
    return MaskedDeepFFN(8, 4, [8])


def assert_refused(error: type[PaddleError], call: Callable[[], Any], *objects: Any) -> None:
    """``call()`` raises ``error`` (a pypaddle error) and leaves ``objects`` unchanged.

    Only modules are compared (a foreign object handed in is not a model to protect).
    """
    objects = tuple(obj for obj in objects if isinstance(obj, nn.Module))
    before = take_snapshot(*objects)
    with pytest.raises(error):
        call()
    assert_unchanged(before, *objects)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


# Amounts: neither a fraction in [0, 1] nor a count up to the active weights. A non-number
# is an InputTypeError, a number out of range a ConfigError.
BAD_AMOUNTS: list[Any] = [
    *(value for value in NOT_FRACTIONS if not isinstance(value, int) or isinstance(value, bool)),
    -1,
    -(2**70),
    2**70,
    10**6,
    np.int64(-3),
    np.int64(10**6),
    np.float64(-0.5),
    b"1",
    {"amount": 0.5},
    nn.Linear(1, 1),
]
BAD_SCOPES: list[Any] = ["Global", "", "layers", None, 1, ["global"], object(), b"global"]
BAD_GRANULARITIES: list[Any] = [
    "neurons",
    "",
    "block",
    "n:m",
    None,
    3,
    math.nan,
    object(),
    ("block", 0, 2),
    ("block", 2.5, 2),
    ("block", -2, 2),
    ("block", math.nan, 2),
    ("block", 3, 3),  # does not tile an 8 x 8 weight
    ("block", True, 2),
    ("block", 2),
    ("n:m", 3, 2),
    ("n:m", 0, 4),
    ("n:m", 2, 3),  # 3 does not divide 8
    ("pairs", 2, 2),
    {"block": (2, 2)},
]
BAD_CRITERIA: list[tuple[Any, type[PaddleError]]] = [
    ("Magnitude", ConfigError),
    ("", ConfigError),
    ("l1", ConfigError),
    (3, InputTypeError),
    (None, InputTypeError),
    (object(), InputTypeError),
    (["magnitude"], InputTypeError),
    (math.nan, InputTypeError),
]
FOREIGN_MODELS: list[tuple[Any, type[PaddleError]]] = [
    ("model", InputTypeError),
    (3, InputTypeError),
    (None, InputTypeError),
    (math.nan, InputTypeError),
    (torch.zeros(3), InputTypeError),
    ([3], InputTypeError),
    ([nn.Linear(2, 2), "x"], InputTypeError),
    (nn.ReLU(), ConfigError),  # a module with nothing to prune
    (nn.Linear(3, 2), ConfigError),
    ([], ConfigError),
    ([nn.Linear(2, 2)], ConfigError),
]


def _amount_error(value: Any) -> type[PaddleError]:
    return ConfigError if _is_number(value) else InputTypeError


PRUNERS = {"prune": prune, "compute_masks": compute_masks}


@pytest.mark.parametrize("function", PRUNERS.values(), ids=PRUNERS.keys())
class TestPruneAndComputeMasks:
    @pytest.mark.parametrize("amount", BAD_AMOUNTS)
    def test_amount(self, function, amount):
        model = _ffn()
        assert_refused(_amount_error(amount), lambda: function(model, amount), model)

    @pytest.mark.parametrize("amount", BAD_AMOUNTS)
    def test_amount_per_layer(self, function, amount):
        model = _ffn()
        call = lambda: function(model, amount, scope="layer", granularity="neuron")  # noqa: E731
        assert_refused(_amount_error(amount), call, model)

    @pytest.mark.parametrize("scope", BAD_SCOPES)
    def test_scope(self, function, scope):
        model = _ffn()
        assert_refused(ConfigError, lambda: function(model, 0.5, scope=scope), model)

    @pytest.mark.parametrize("granularity", BAD_GRANULARITIES)
    def test_granularity(self, function, granularity):
        model = _ffn()
        assert_refused(ConfigError, lambda: function(model, 0.5, granularity=granularity), model)

    @pytest.mark.parametrize(("criterion", "error"), BAD_CRITERIA)
    def test_criterion(self, function, criterion, error):
        model = _ffn()
        assert_refused(error, lambda: function(model, 0.5, criterion=criterion), model)

    @pytest.mark.parametrize(("model", "error"), FOREIGN_MODELS)
    def test_foreign_models(self, function, model, error):
        assert_refused(error, lambda: function(model, 0.5), model)

    @pytest.mark.parametrize("seed", NOT_SEEDS)
    def test_random_seed(self, function, seed):
        model = _ffn()
        assert_refused(
            ConfigError, lambda: function(model, 0.5, criterion="random", seed=seed), model
        )

    @pytest.mark.parametrize(
        "options",
        [
            {"colour": "red"},
            {"seed": 0},  # magnitude takes none
            {"inputs": torch.ones(2, 8)},
        ],
    )
    def test_unknown_options(self, function, options):
        model = _ffn()
        assert_refused(ConfigError, lambda: function(model, 0.5, **options), model)

    def test_options_with_a_callable_criterion(self, function):
        model = _ffn()
        call = lambda: function(model, 0.5, criterion=lambda m, n: m.weight.abs(), seed=1)  # noqa: E731
        assert_refused(ConfigError, call, model)

    @pytest.mark.parametrize(
        ("inputs", "targets", "error"),
        [
            (None, torch.zeros(2, dtype=torch.long), ConfigError),
            ([[1.0] * 8], torch.zeros(1, dtype=torch.long), InputTypeError),
            (np.ones((2, 8), dtype=np.float32), torch.zeros(2, dtype=torch.long), InputTypeError),
            (torch.ones(0, 8), torch.zeros(0, dtype=torch.long), ConfigError),
            (torch.tensor(1.0), torch.zeros(1, dtype=torch.long), ConfigError),
            (torch.full((2, 8), math.inf), torch.zeros(2, dtype=torch.long), ConfigError),
            (torch.full((2, 8), math.nan), torch.zeros(2, dtype=torch.long), ConfigError),
            (torch.ones(2, 8), torch.zeros(3, dtype=torch.long), ConfigError),
            (torch.ones(2, 8), None, ConfigError),  # cross-entropy needs targets
            (torch.ones(2, 5), torch.zeros(2, dtype=torch.long), ConfigError),  # wrong width
            (torch.ones(2, 8), torch.full((2,), 9), ConfigError),  # class 9 of 4
        ],
    )
    @pytest.mark.parametrize("criterion", ["snip", "taylor"])
    def test_data(self, function, criterion, inputs, targets, error):
        model = _ffn()
        call = lambda: function(model, 0.5, criterion=criterion, inputs=inputs, targets=targets)  # noqa: E731
        assert_refused(error, call, model)

    @pytest.mark.parametrize(
        ("options", "error"),
        [
            ({"loss_fn": "mse"}, InputTypeError),
            ({"loss_fn": lambda output, target: output}, ConfigError),  # not one number
            ({"loss_fn": lambda output, target: torch.tensor(1.0)}, ConfigError),  # no grad
            ({"model": "model"}, InputTypeError),
            ({"model": nn.Linear(8, 4)}, ConfigError),  # does not hold the pruned layers
        ],
    )
    def test_snip_options(self, function, options, error):
        model = _ffn()
        data = {"inputs": torch.ones(2, 8), "targets": torch.zeros(2, dtype=torch.long)}
        assert_refused(
            error, lambda: function(model, 0.5, criterion="snip", **data, **options), model
        )

    def test_data_criteria_need_the_model(self, function):
        model = _ffn()
        data = {"inputs": torch.ones(2, 8), "targets": torch.zeros(2, dtype=torch.long)}
        layers = list(model.layers_main_hidden)
        assert_refused(ConfigError, lambda: function(layers, 0.5, criterion="snip", **data), model)

    @pytest.mark.parametrize(
        "options",
        [
            {"iterations": value}
            for value in [*NOT_COUNTS, 0]
            if not isinstance(value, np.ndarray)  # an array is not a count either
        ]
        + [{"input_shape": value} for value in [(), (0,), (8.5,), "8", 8, (math.nan,), [-1]]]
        + [{"input_shape": (5,)}],  # a shape the model cannot take
    )
    def test_synflow_options(self, function, options):
        model = _ffn()
        assert_refused(
            ConfigError, lambda: function(model, 0.5, criterion="synflow", **options), model
        )

    @pytest.mark.parametrize("batch_size", [*NOT_COUNTS, 0])
    def test_taylor_batch_size(self, function, batch_size):
        model = _ffn()
        data = {"inputs": torch.ones(2, 8), "targets": torch.zeros(2, dtype=torch.long)}
        call = lambda: function(model, 0.5, criterion="taylor", batch_size=batch_size, **data)  # noqa: E731
        assert_refused(ConfigError, call, model)

    @pytest.mark.parametrize(
        ("scores", "error"),
        [
            (lambda module, name: torch.ones(3), ConfigError),  # wrong shape (MaskError)
            (lambda module, name: torch.full_like(module.weight, math.nan), ConfigError),
            (lambda module, name: "high", InputTypeError),
        ],
    )
    def test_bad_scores(self, function, scores, error):
        model = _ffn()
        before = take_snapshot(model)
        with pytest.raises(PaddleError):
            function(model, 0.5, criterion=scores)
        assert_unchanged(before, model)

    def test_n_m_with_an_amount(self, function):
        model = _ffn()
        assert_refused(ConfigError, lambda: function(model, 0.5, granularity=("n:m", 2, 4)), model)

    @pytest.mark.parametrize("flag", [0, 1, "True", None, np.bool_(False)])
    def test_prune_outputs(self, function, flag):
        model = _ffn()
        assert_refused(InputTypeError, lambda: function(model, 1, prune_outputs=flag), model)

    @pytest.mark.parametrize(
        ("amount", "granularity"),
        [
            (np.float64(0.5), "weight"),
            (np.float32(0.25), "neuron"),
            (np.int64(3), "weight"),
            (np.int32(1), "input"),
            (np.float64(0.5), ("block", np.int64(2), np.int64(2))),
            (None, ("n:m", np.int64(2), np.int64(4))),
        ],
    )
    def test_numpy_scalars_are_accepted(self, function, amount, granularity):
        model, twin = _ffn(), _ffn()
        plain = amount.item() if isinstance(amount, np.generic) else amount
        plain_granularity = (
            tuple(int(v) if isinstance(v, np.integer) else v for v in granularity)
            if isinstance(granularity, tuple)
            else granularity
        )
        got = function(model, amount, granularity=granularity)
        expected = function(twin, plain, granularity=plain_granularity)
        if isinstance(got, dict):
            assert got.keys() == expected.keys()
            assert all(torch.equal(got[key], expected[key]) for key in got)
        else:
            assert got == expected


class TestImportance:
    @pytest.mark.parametrize(("model", "error"), FOREIGN_MODELS)
    def test_foreign_models(self, model, error):
        assert_refused(error, lambda: importance(model), model)

    @pytest.mark.parametrize(("criterion", "error"), BAD_CRITERIA)
    def test_criterion(self, criterion, error):
        model = _ffn()
        assert_refused(error, lambda: importance(model, criterion), model)


class TestPruneIteratively:
    @pytest.mark.parametrize("density", NOT_FRACTIONS)
    def test_density(self, density):
        model = _ffn()
        assert_refused(ConfigError, lambda: prune_iteratively(model, density, 2), model)

    @pytest.mark.parametrize("rounds", [*NOT_COUNTS, 0])
    def test_rounds(self, rounds):
        model = _ffn()
        assert_refused(ConfigError, lambda: prune_iteratively(model, 0.5, rounds), model)

    @pytest.mark.parametrize("scope", BAD_SCOPES)
    def test_scope(self, scope):
        model = _ffn()
        assert_refused(ConfigError, lambda: prune_iteratively(model, 0.5, 2, scope=scope), model)

    @pytest.mark.parametrize("granularity", [*BAD_GRANULARITIES, ("n:m", 2, 4)])
    def test_granularity(self, granularity):
        model = _ffn()
        call = lambda: prune_iteratively(model, 0.5, 2, granularity=granularity)  # noqa: E731
        assert_refused(ConfigError, call, model)

    @pytest.mark.parametrize(("criterion", "error"), BAD_CRITERIA)
    def test_criterion(self, criterion, error):
        model = _ffn()
        assert_refused(error, lambda: prune_iteratively(model, 0.5, 2, criterion=criterion), model)

    @pytest.mark.parametrize(("model", "error"), FOREIGN_MODELS)
    def test_foreign_models(self, model, error):
        assert_refused(error, lambda: prune_iteratively(model, 0.5, 2), model)

    @pytest.mark.parametrize("ticket", ["x", 0, object(), nn.Linear(2, 2), [None]])
    def test_ticket(self, ticket):
        model = _ffn()
        assert_refused(
            InputTypeError, lambda: prune_iteratively(model, 0.5, 2, ticket=ticket), model
        )

    @pytest.mark.parametrize("train", ["train", 3, object()])
    def test_train(self, train):
        model = _ffn()
        assert_refused(InputTypeError, lambda: prune_iteratively(model, 0.5, 2, train=train), model)

    def test_numpy_scalars_are_accepted(self):
        model, twin = _ffn(), _ffn()
        got = prune_iteratively(model, np.float32(0.25), np.int64(2))
        assert got == prune_iteratively(twin, 0.25, 2)


class TestGradualPruning:
    @pytest.mark.parametrize("name", ["final_sparsity", "initial_sparsity"])
    @pytest.mark.parametrize("value", NOT_FRACTIONS)
    def test_fractions(self, name, value):
        model = _ffn()
        options = {"final_sparsity": 0.5, "end_step": 10, name: value}
        assert_refused(ConfigError, lambda: GradualPruning(model, **options), model)

    @pytest.mark.parametrize("name", ["end_step", "start_step", "frequency"])
    @pytest.mark.parametrize("value", NOT_COUNTS)
    def test_counts(self, name, value):
        model = _ffn()
        options = {"end_step": 10, name: value}
        assert_refused(ConfigError, lambda: GradualPruning(model, 0.5, **options), model)

    def test_end_before_start_and_no_frequency(self):
        model = _ffn()
        assert_refused(
            ConfigError, lambda: GradualPruning(model, 0.5, end_step=2, start_step=3), model
        )
        assert_refused(
            ConfigError, lambda: GradualPruning(model, 0.5, end_step=2, frequency=0), model
        )

    @pytest.mark.parametrize("scope", BAD_SCOPES)
    def test_scope(self, scope):
        model = _ffn()
        assert_refused(
            ConfigError, lambda: GradualPruning(model, 0.5, end_step=4, scope=scope), model
        )

    @pytest.mark.parametrize("granularity", [*BAD_GRANULARITIES, ("n:m", 2, 4)])
    def test_granularity(self, granularity):
        model = _ffn()
        call = lambda: GradualPruning(model, 0.5, end_step=4, granularity=granularity)  # noqa: E731
        assert_refused(ConfigError, call, model)

    @pytest.mark.parametrize(("criterion", "error"), BAD_CRITERIA)
    def test_criterion(self, criterion, error):
        model = _ffn()
        assert_refused(
            error, lambda: GradualPruning(model, 0.5, end_step=4, criterion=criterion), model
        )

    @pytest.mark.parametrize(("model", "error"), FOREIGN_MODELS)
    def test_foreign_models(self, model, error):
        assert_refused(error, lambda: GradualPruning(model, 0.5, end_step=4), model)

    @pytest.mark.parametrize("step", [step for step in NOT_COUNTS if step is not None])
    def test_steps_asked_about(self, step):
        model = _ffn()
        schedule = GradualPruning(model, 0.5, end_step=4)
        assert_refused(ConfigError, lambda: schedule.sparsity(step), model)
        assert_refused(ConfigError, lambda: schedule.is_pruning_step(step), model)

    def test_numpy_scalars_are_accepted(self):
        model = _ffn()
        schedule = GradualPruning(
            model, np.float64(0.5), end_step=np.int64(2), frequency=np.int32(1)
        )
        for _ in range(3):
            schedule.step()
        assert model.density == 0.5


class TestCubicSparsity:
    @pytest.mark.parametrize("step", NOT_COUNTS)
    def test_step(self, step):
        with pytest.raises(ConfigError):
            cubic_sparsity(step, 0.5, 0, 10)

    @pytest.mark.parametrize("sparsity", NOT_FRACTIONS)
    def test_sparsity(self, sparsity):
        with pytest.raises(ConfigError):
            cubic_sparsity(5, sparsity, 0, 10)
        with pytest.raises(ConfigError):
            cubic_sparsity(5, 0.5, 0, 10, sparsity)

    @pytest.mark.parametrize(("start", "end"), [(5, 4), (-1, 4), (0, math.nan), (0.5, 4)])
    def test_steps(self, start, end):
        with pytest.raises(ConfigError):
            cubic_sparsity(2, 0.5, start, end)

    def test_numpy_scalars(self):
        assert cubic_sparsity(np.int64(50), np.float64(0.9), 0, np.int32(100)) == 0.7875


DYNAMIC = {"SET": SET, "RigL": RigL}


def _optimizer(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)


@pytest.mark.parametrize("method", DYNAMIC.values(), ids=DYNAMIC.keys())
class TestDynamicSparsity:
    # None keeps the masks the model has, so it is not among them
    @pytest.mark.parametrize(
        "density", [*(value for value in NOT_FRACTIONS if value is not None), 0.0, np.float64(0)]
    )
    def test_density(self, method, density):
        model = _ffn()
        optimizer = _optimizer(model)
        assert_refused(ConfigError, lambda: method(model, optimizer, density, end_step=10), model)

    @pytest.mark.parametrize("drop_fraction", NOT_FRACTIONS)
    def test_drop_fraction(self, method, drop_fraction):
        model = _ffn()
        optimizer = _optimizer(model)
        call = lambda: method(model, optimizer, 0.5, end_step=10, drop_fraction=drop_fraction)  # noqa: E731
        assert_refused(ConfigError, call, model)

    @pytest.mark.parametrize("name", ["end_step", "update_frequency"])
    @pytest.mark.parametrize("value", [*NOT_COUNTS, 0])
    def test_counts(self, method, name, value):
        model = _ffn()
        optimizer = _optimizer(model)
        options = {"end_step": 10, name: value}
        assert_refused(ConfigError, lambda: method(model, optimizer, 0.5, **options), model)

    @pytest.mark.parametrize("distribution", ["ERK", "", None, 3, ["erk"], object()])
    def test_distribution(self, method, distribution):
        model = _ffn()
        optimizer = _optimizer(model)
        for density in (0.5, None):
            call = lambda density=density: method(  # noqa: E731
                model, optimizer, density, end_step=10, distribution=distribution
            )
            assert_refused(ConfigError, call, model)

    @pytest.mark.parametrize("seed", NOT_SEEDS)
    def test_seed(self, method, seed):
        model = _ffn()
        optimizer = _optimizer(model)
        assert_refused(
            ConfigError, lambda: method(model, optimizer, 0.5, end_step=10, seed=seed), model
        )

    @pytest.mark.parametrize("generator", ["g", 0, np.random.default_rng(0)])
    def test_generator(self, method, generator):
        model = _ffn()
        optimizer = _optimizer(model)
        call = lambda: method(model, optimizer, 0.5, end_step=10, generator=generator)  # noqa: E731
        assert_refused(ConfigError, call, model)

    @pytest.mark.parametrize("optimizer", [None, "sgd", object(), torch.optim.SGD])
    def test_optimizer(self, method, optimizer):
        model = _ffn()
        assert_refused(InputTypeError, lambda: method(model, optimizer, 0.5, end_step=10), model)

    @pytest.mark.parametrize(("model", "error"), FOREIGN_MODELS)
    def test_foreign_models(self, method, model, error):
        optimizer = _optimizer(_ffn())
        assert_refused(error, lambda: method(model, optimizer, 0.5, end_step=10), model)

    def test_denser_than_the_model(self, method):
        model = _ffn()
        with torch.no_grad():
            model.layer_out.mask[:, :6] = False
        optimizer = _optimizer(model)
        assert_refused(ConfigError, lambda: method(model, optimizer, 0.9, end_step=10), model)

    @pytest.mark.parametrize("step", [step for step in NOT_COUNTS if step is not None])
    def test_steps_asked_about(self, method, step):
        model = _ffn()
        dst = method(model, _optimizer(model), 0.5, end_step=10, seed=0)
        assert_refused(ConfigError, lambda: dst.fraction(step), model)
        assert_refused(ConfigError, lambda: dst.is_update_step(step), model)

    def test_numpy_scalars_are_accepted(self, method):
        model, twin = _ffn(), _ffn()
        method(
            model,
            _optimizer(model),
            np.float64(0.5),
            end_step=np.int64(10),
            update_frequency=np.int32(2),
            drop_fraction=np.float32(0.25),
            seed=np.int64(3),
        )
        method(twin, _optimizer(twin), 0.5, end_step=10, update_frequency=2, seed=3)
        assert torch.equal(model.layer_out.mask, twin.layer_out.mask)


class TestRigLStep:
    @pytest.mark.parametrize("closure", [None, "loss", 3])
    def test_closure(self, closure):
        model = _ffn()
        rigl = RigL(model, _optimizer(model), 0.5, end_step=10, update_frequency=1, seed=0)
        error = ConfigError if closure is None else InputTypeError
        assert_refused(error, lambda: rigl.step(closure), model)
        assert rigl.step_count == 0


class TestLotteryTicket:
    @pytest.mark.parametrize("model", ["model", None, 3, [nn.Linear(2, 2)], torch.zeros(2)])
    def test_foreign_models(self, model):
        with pytest.raises(InputTypeError):
            LotteryTicket(model)


class TestReport:
    @pytest.mark.parametrize(("model", "error"), FOREIGN_MODELS)
    def test_foreign_models(self, model, error):
        assert_refused(error, lambda: report(model), model)


class TestLayerDensities:
    @pytest.mark.parametrize("density", NOT_FRACTIONS)
    def test_density(self, density):
        with pytest.raises(ConfigError):
            layer_densities([(4, 4)], density)

    @pytest.mark.parametrize(
        "shapes", [[(4, 0)], [(4, -1)], [(4, 2.5)], [()], "44", 4, None, [None], [(math.nan, 2)]]
    )
    def test_shapes(self, shapes):
        with pytest.raises(PaddleError):
            layer_densities(shapes, 0.5, "erk")

    @pytest.mark.parametrize("distribution", ["ERK", "", None, 3, object()])
    def test_distribution(self, distribution):
        with pytest.raises(ConfigError):
            layer_densities([(4, 4)], 0.5, distribution)

    def test_numpy_scalars(self):
        shapes = [(np.int64(300), np.int64(64)), (100, 300)]
        assert layer_densities(shapes, np.float64(0.1), "erk") == layer_densities(
            [(300, 64), (100, 300)], 0.1, "erk"
        )


class TestResetOptimizerState:
    def _setup(self) -> tuple[MaskedLinear, torch.optim.Optimizer]:
        layer = MaskedLinear(3, 2)
        optimizer = torch.optim.Adam(layer.parameters())
        layer(torch.ones(1, 3)).sum().backward()
        optimizer.step()
        return layer, optimizer

    @pytest.mark.parametrize(
        ("positions", "error"),
        [
            (torch.ones(3, 2, dtype=torch.bool), ConfigError),
            (torch.ones(2, 3), InputTypeError),
            ([[True] * 3] * 2, InputTypeError),
            (None, InputTypeError),
        ],
    )
    def test_positions(self, positions, error):
        layer, optimizer = self._setup()
        state = {k: v.clone() for k, v in optimizer.state[layer.weight].items()}
        with pytest.raises(error):
            reset_optimizer_state(optimizer, layer.weight, positions)
        for key, value in state.items():
            assert torch.equal(optimizer.state[layer.weight][key], value)

    @pytest.mark.parametrize("optimizer", [None, "adam", object()])
    def test_optimizer(self, optimizer):
        layer, _ = self._setup()
        with pytest.raises(InputTypeError):
            reset_optimizer_state(optimizer, layer.weight, torch.ones(2, 3, dtype=torch.bool))

    @pytest.mark.parametrize("parameter", [None, "weight", np.ones((2, 3))])
    def test_parameter(self, parameter):
        _, optimizer = self._setup()
        with pytest.raises(InputTypeError):
            reset_optimizer_state(optimizer, parameter, torch.ones(2, 3, dtype=torch.bool))


class TestCriteriaConstructors:
    @pytest.mark.parametrize("seed", NOT_SEEDS)
    def test_random_seed(self, seed):
        with pytest.raises(ConfigError):
            Random(seed=seed)

    @pytest.mark.parametrize("generator", ["g", 1, np.random.default_rng(0)])
    def test_random_generator(self, generator):
        with pytest.raises(ConfigError):
            Random(generator=generator)

    @pytest.mark.parametrize("inputs", [None, [1.0], np.ones((2, 2)), torch.ones(0, 2)])
    @pytest.mark.parametrize("factory", [SNIP, Taylor])
    def test_data_inputs(self, factory, inputs):
        with pytest.raises(PaddleError):
            factory(inputs=inputs, targets=torch.zeros(2, dtype=torch.long))

    @pytest.mark.parametrize("batch_size", [*NOT_COUNTS, 0])
    def test_taylor_batch_size(self, batch_size):
        with pytest.raises(ConfigError):
            Taylor(inputs=torch.ones(2, 2), targets=torch.zeros(2), batch_size=batch_size)

    @pytest.mark.parametrize("iterations", [*NOT_COUNTS, 0])
    def test_synflow_iterations(self, iterations):
        with pytest.raises(ConfigError):
            SynFlow(iterations=iterations)

    @pytest.mark.parametrize("value", NOT_FINITE_REALS)
    def test_synflow_input_shape(self, value):
        with pytest.raises(ConfigError):
            SynFlow(input_shape=(value,))

    def test_numpy_scalars(self):
        taylor = Taylor(inputs=torch.ones(2, 2), targets=torch.zeros(2), batch_size=np.int64(2))
        assert taylor.batch_size == 2
        assert SynFlow(iterations=np.int64(3), input_shape=(np.int64(4),)).input_shape == [4]


class TestRoundAmountsNaN:
    @pytest.mark.parametrize("keep", NOT_FINITE_REALS)
    def test_keep(self, keep):
        with pytest.raises(ConfigError):
            round_amounts(keep, 2)
