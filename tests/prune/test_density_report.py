"""report(): density per masked weight and overall, as data and as a table."""

from __future__ import annotations

import torch

from pypaddle.prune import prune, report
from pypaddle.sparse import MaskedDeepFFN, MaskedLinear


class TestReport:
    def test_data(self):
        torch.manual_seed(0)
        model = MaskedDeepFFN(10, 2, [20])
        prune(model, 0.5, scope="layer")
        data = report(model).to_dict()
        assert [layer["name"] for layer in data["layers"]] == [
            "layers_main_hidden.0",
            "layer_out",
        ]
        assert [layer["shape"] for layer in data["layers"]] == [(20, 10), (2, 20)]
        assert [layer["active"] for layer in data["layers"]] == [100, 20]
        assert [layer["density"] for layer in data["layers"]] == [0.5, 0.5]
        assert (data["active"], data["total"], data["density"]) == (120, 240, 0.5)

    def test_table_has_a_line_per_layer_and_a_total(self):
        layer = MaskedLinear(4, 5)
        layer.mask[:, 0] = False
        result = report([layer])
        assert result.sparsity == 0.25
        lines = str(result).splitlines()
        assert lines[0].split() == ["layer", "shape", "active", "total", "density"]
        assert lines[2].split() == ["[0]", "5x4", "15", "20", "0.7500"]
        assert lines[-1].split() == ["total", "15", "20", "0.7500"]

    def test_the_shared_report_interface(self):
        layer = MaskedLinear(4, 5)
        layer.mask[:, 0] = False
        result = report([layer])
        assert result.to_table() == str(result)
        assert str(result).splitlines()[1] == "-" * len(str(result).splitlines()[0])
        html = result._repr_html_()
        assert html.startswith("<table>")
        assert html.count("<tr>") == 3
        assert '<td style="text-align: right">0.7500</td>' in html
