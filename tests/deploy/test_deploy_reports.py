"""count's Counts and sparse_plan's SparsePlan share the report interface: to_dict, a text
table (str / to_table) and an HTML table for Jupyter."""

from __future__ import annotations

import json

import torch
from torch import nn

from pypaddle._core.reports import Report
from pypaddle.deploy import KernelChoice, SparsePlan, count, sparse_plan, to_sparse
from pypaddle.sparse import MaskedLinearLayer


def _model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(MaskedLinearLayer(4, 3), nn.ReLU(), nn.Linear(3, 2))
    model[0].mask[:, :2] = False
    return model


class TestCounts:
    def test_data_table_and_html_say_the_same(self):
        counts = count(_model(), torch.randn(1, 4))
        assert isinstance(counts, Report)
        data = counts.to_dict()
        assert data == counts.as_dict()
        assert json.loads(json.dumps(data)) == data
        assert data["layers"][0] == {
            "name": "0",
            "kind": "MaskedLinearLayer",
            "params": 15,
            "active_params": 9,
            "macs": 12,
            "effective_macs": 6,
        }
        assert str(counts) == counts.to_table() == counts.table()
        lines = str(counts).splitlines()
        assert lines[0].split() == [
            "layer",
            "kind",
            "params",
            "active",
            "MACs",
            "effective",
            "MACs",
        ]
        assert lines[2].split() == ["0", "MaskedLinearLayer", "15", "9", "12", "6"]
        assert lines[-1].split() == ["total", "23", "17", "18", "12"]
        assert set(lines[1]) == set(lines[-2]) == {"-"}
        html = counts._repr_html_()
        assert html.startswith("<table>")
        assert html.endswith("</table>")
        assert html.count("<tr>") == 1 + 2 + 1  # header, two layers, total
        assert '<td style="text-align: right">23</td>' in html

    def test_thousands_are_separated(self):
        counts = count(nn.Linear(100, 100), torch.randn(1, 100))
        assert str(counts).splitlines()[-1].split() == [
            "total",
            "10,100",
            "10,100",
            "10,000",
            "10,000",
        ]


class TestSparsePlan:
    def test_a_plan_is_a_list_and_a_report(self):
        plan = sparse_plan(_model(), 3, rule=lambda density, *shape: density < 0.6)
        assert isinstance(plan, SparsePlan)
        assert isinstance(plan, list)
        assert [choice.sparse for choice in plan] == [True, False]
        assert plan == [
            KernelChoice("0", 3, 4, 0.5, 3, None, None, True),
            KernelChoice("2", 2, 3, 1.0, 3, None, None, False),
        ]
        data = plan.to_dict()
        assert json.loads(json.dumps(data)) == data
        assert data["sparse"] == 1
        assert data["layers"][0]["name"] == "0"
        assert data["layers"][0]["speedup"] is None
        lines = str(plan).splitlines()
        assert lines[0].split() == [
            "layer", "shape", "density", "batch", "dense", "us", "sparse", "us", "speedup", "kernel"
        ]  # fmt: skip
        assert lines[2].split() == ["0", "3x4", "0.5000", "3", "sparse"]
        assert lines[3].split() == ["2", "2x3", "1.0000", "3", "dense"]
        assert plan._repr_html_().count("<tr>") == 3

    def test_a_measured_plan_shows_its_times(self):
        plan = sparse_plan(_model(), 2, rounds=1)
        row = str(plan).splitlines()[2].split()
        assert len(row) == 8  # times and the speed-up are shown
        assert float(row[6]) == round(plan[0].speedup, 2)

    def test_to_sparse_takes_the_plan(self):
        model = _model()
        plan = sparse_plan(model, rule=lambda density, *shape: density < 0.6)
        fast = to_sparse(model, plan=plan)
        assert type(fast[0]).__name__ == "SparseLinear"
        x = torch.randn(2, 4)
        assert torch.allclose(fast(x), model(x), atol=1e-6)
