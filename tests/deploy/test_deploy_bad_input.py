"""Every bad input to count, compact, sparse_plan, to_sparse and SparseLinear gets a pypaddle
error naming the value, and the model handed in is left as it was."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from bad_values import NOT_COUNTS, NOT_FINITE_REALS, assert_unchanged, snapshot, value_id
from pypaddle.deploy import KernelChoice, SparseLinear, compact, count, sparse_plan, to_sparse
from pypaddle.errors import ConfigError, InputTypeError, StructureError
from pypaddle.sparse import MaskedDeepFFN, MaskedLinearLayer

NOT_MODULES = [None, 3, "model", object(), nn.Linear, torch.randn(2, 2), lambda x: x, [nn.ReLU()]]
NOT_INPUTS = [None, 3, "x", [[1.0, 2.0]], np.ones((1, 4)), {"x": 1}, (), (None,), object()]
NOT_BATCH_SIZES = [*NOT_COUNTS, 0]
NOT_SPEEDUPS = [*NOT_FINITE_REALS, 0, 0.0, -1.5, np.float64(-2.0)]
NOT_RULES = [None, 3, "", "measured", "dense", b"measure", ["measure"], np.array([1, 2])]


def _model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(MaskedLinearLayer(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 2))
    model[0].mask[:3, :] = False
    model.train()
    model[1].eval()  # mixed modes must stay mixed
    return model


def _sparse_everything(density, out_features, in_features, batch_size):
    return True


class TestCount:
    @pytest.mark.parametrize("model", NOT_MODULES, ids=value_id)
    def test_not_a_module(self, model):
        with pytest.raises(InputTypeError, match=r"torch\.nn\.Module"):
            count(model, torch.randn(2, 4))

    def test_count_none(self):
        with pytest.raises(InputTypeError, match="NoneType"):
            count(None, torch.randn(2, 4))

    @pytest.mark.parametrize("example_input", NOT_INPUTS, ids=value_id)
    def test_bad_example_input(self, example_input):
        model = _model()
        before = snapshot(model)
        with pytest.raises(InputTypeError, match="example_input must be a tensor"):
            count(model, example_input)
        assert_unchanged(before, model)

    @pytest.mark.parametrize(
        "example_input",
        [torch.randn(2, 5), torch.randn(2, 3, 4, 2), torch.zeros(2, 0), torch.randn(4)],
        ids=lambda value: str(tuple(value.shape)),
    )
    def test_example_input_the_model_refuses(self, example_input):
        model = _model()
        before = snapshot(model)
        with pytest.raises(ConfigError, match="forward failed on the example input") as caught:
            count(model, example_input)
        assert isinstance(
            caught.value.__cause__, (RuntimeError, ValueError)
        )  # the model's own error
        assert_unchanged(before, model)

    def test_a_packed_sequence_is_one_argument(self):
        rnn = nn.GRU(3, 4)
        packed = nn.utils.rnn.pack_sequence([torch.randn(5, 3), torch.randn(3, 3)])
        assert count(rnn, packed).macs == 4 * (12 * 3 + 12 * 4)  # mean length 8 / 2


class TestCompact:
    @pytest.mark.parametrize("model", NOT_MODULES, ids=value_id)
    def test_not_a_module(self, model):
        with pytest.raises(InputTypeError, match=r"torch\.nn\.Module"):
            compact(model)

    @pytest.mark.parametrize(
        "model",
        [
            nn.Sequential(MaskedLinearLayer(4, 4), nn.Softmax(1), nn.Linear(4, 2)),
            nn.Sequential(MaskedLinearLayer(4, 4), nn.GroupNorm(2, 4), nn.Linear(4, 2)),
            nn.Sequential(
                MaskedLinearLayer(4, 4),
                nn.BatchNorm1d(4, track_running_stats=False),
                nn.Linear(4, 2),
            ),
            nn.Sequential(MaskedLinearLayer(4, 4), nn.PReLU(4), nn.Linear(4, 2)),
            nn.ModuleList([MaskedLinearLayer(4, 4)]),
            MaskedDeepFFN(4, 2, [3], activation=nn.Softmax(1)),
        ],
        ids=[
            "softmax",
            "group-norm",
            "batch-statistics",
            "prelu-per-neuron",
            "module-list",
            "ffn-softmax",
        ],
    )
    def test_refused_models_are_left_as_they_were(self, model):
        before = snapshot(model)
        with pytest.raises(StructureError):
            compact(model)
        assert_unchanged(before, model)

    def test_a_norm_without_statistics_after_the_last_layer_is_kept(self):
        model = nn.Sequential(MaskedLinearLayer(4, 4), nn.BatchNorm1d(4, track_running_stats=False))
        model[0].mask[:, 0] = False
        with pytest.warns(UserWarning, match="removed no neuron"):
            small = compact(model)
        x = torch.randn(5, 4)
        assert torch.allclose(small(x), model(x), atol=1e-6)


class TestSparsePlan:
    @pytest.mark.parametrize("model", NOT_MODULES, ids=value_id)
    def test_not_a_module(self, model):
        with pytest.raises(InputTypeError, match=r"torch\.nn\.Module"):
            sparse_plan(model, rule=_sparse_everything)

    @pytest.mark.parametrize("batch_size", NOT_BATCH_SIZES, ids=value_id)
    def test_bad_batch_size(self, batch_size):
        model = _model()
        before = snapshot(model)
        with pytest.raises(ConfigError, match="batch_size must be an int >= 1"):
            sparse_plan(model, batch_size, rule=_sparse_everything)
        assert_unchanged(before, model)

    @pytest.mark.parametrize("rounds", [*NOT_COUNTS, 0], ids=value_id)
    def test_bad_rounds(self, rounds):
        model = _model()
        before = snapshot(model)
        with pytest.raises(ConfigError, match="rounds must be an int >= 1"):
            sparse_plan(model, rounds=rounds)
        assert_unchanged(before, model)

    @pytest.mark.parametrize("min_speedup", NOT_SPEEDUPS, ids=value_id)
    def test_bad_min_speedup(self, min_speedup):
        model = _model()
        before = snapshot(model)
        with pytest.raises(ConfigError, match="min_speedup must be a finite real number"):
            sparse_plan(model, min_speedup=min_speedup)
        assert_unchanged(before, model)

    @pytest.mark.parametrize("rule", NOT_RULES, ids=value_id)
    def test_bad_rule(self, rule):
        model = _model()
        before = snapshot(model)
        with pytest.raises(ConfigError, match="rule must be 'measure' or a callable"):
            sparse_plan(model, rule=rule)
        assert_unchanged(before, model)

    def test_numpy_counts_are_counts(self):
        plan = sparse_plan(_model(), np.int64(4), rule=_sparse_everything, rounds=np.int32(1))
        assert [choice.batch_size for choice in plan] == [4, 4]


class TestToSparse:
    @pytest.mark.parametrize("model", NOT_MODULES, ids=value_id)
    def test_not_a_module(self, model):
        with pytest.raises(InputTypeError, match=r"torch\.nn\.Module"):
            to_sparse(model, rule=_sparse_everything)

    @pytest.mark.parametrize("min_speedup", NOT_SPEEDUPS, ids=value_id)
    def test_bad_min_speedup(self, min_speedup):
        model = _model()
        before = snapshot(model)
        with pytest.raises(ConfigError, match="min_speedup"):
            to_sparse(model, min_speedup=min_speedup)
        assert_unchanged(before, model)

    def test_nan_min_speedup_is_refused(self):
        with pytest.raises(ConfigError, match=r"min_speedup.*nan"):
            to_sparse(_model(), min_speedup=math.nan)

    @pytest.mark.parametrize("batch_size", NOT_BATCH_SIZES, ids=value_id)
    def test_bad_batch_size(self, batch_size):
        model = _model()
        before = snapshot(model)
        with pytest.raises(ConfigError, match="batch_size"):
            to_sparse(model, batch_size, rule=_sparse_everything)
        assert_unchanged(before, model)

    @pytest.mark.parametrize("rule", NOT_RULES, ids=value_id)
    def test_bad_rule(self, rule):
        model = _model()
        before = snapshot(model)
        with pytest.raises(ConfigError, match="rule"):
            to_sparse(model, rule=rule)
        assert_unchanged(before, model)

    @pytest.mark.parametrize(
        ("plan", "error"),
        [
            ("plan", InputTypeError),
            (3, InputTypeError),
            ({"0": True}, InputTypeError),
            ([("0", True)], InputTypeError),
            ([None], InputTypeError),
            ([KernelChoice("9", 6, 4, 0.5, 1, None, None, True)], ConfigError),
            ([KernelChoice("1", 6, 6, 1.0, 1, None, None, True)], ConfigError),  # a BatchNorm
        ],
        ids=["str", "int", "dict", "tuples", "none", "unknown-layer", "not-linear"],
    )
    def test_bad_plan(self, plan, error):
        model = _model()
        before = snapshot(model)
        with pytest.raises(error, match="plan"):
            to_sparse(model, plan=plan)
        assert_unchanged(before, model)

    def test_a_plan_is_checked_before_anything_is_replaced(self):
        model = _model()
        good = KernelChoice("0", 6, 4, 0.5, 1, None, None, True)
        bad = KernelChoice("2", 6, 6, 1.0, 1, None, None, True)  # a ReLU
        with pytest.raises(ConfigError, match="'2'"):
            to_sparse(model, plan=[good, bad])


DENSE = torch.randn(3, 4)
with warnings.catch_warnings():  # "CSR support is in beta"
    warnings.simplefilter("ignore")
    CSR = DENSE.to_sparse_csr()


class TestSparseLinear:
    @pytest.mark.parametrize(
        "weight", [None, 3, "w", DENSE, DENSE.numpy(), [[1.0]], DENSE.to_sparse()], ids=value_id
    )
    def test_constructor_needs_a_csr_weight(self, weight):
        with pytest.raises(InputTypeError, match="CSR weight"):
            SparseLinear(weight, None)

    @pytest.mark.parametrize(
        "weight",
        [
            None,
            3,
            "w",
            DENSE.numpy(),
            torch.randn(4),
            torch.randn(2, 3, 4),
            torch.ones(3, 4, dtype=torch.int64),
            CSR,
            nn.Linear(4, 3),
        ],
        ids=value_id,
    )
    def test_from_dense_needs_a_dense_matrix(self, weight):
        with pytest.raises(InputTypeError, match="from_dense needs a dense floating-point"):
            SparseLinear.from_dense(weight)

    @pytest.mark.parametrize(
        ("bias", "error"),
        [
            (torch.randn(4), ConfigError),
            (torch.randn(3, 1), ConfigError),
            (torch.randn(()), ConfigError),
            (torch.ones(3, dtype=torch.int64), InputTypeError),
            (np.zeros(3), InputTypeError),
            ([0.0, 0.0, 0.0], InputTypeError),
            (0.0, InputTypeError),
        ],
        ids=value_id,
    )
    def test_bias_must_fit(self, bias, error):
        with pytest.raises(error, match="bias"):
            SparseLinear.from_dense(DENSE, bias)
        with pytest.raises(error, match="bias"):
            SparseLinear(CSR, bias)
