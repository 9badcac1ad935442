"""The layer-level graph: one vertex per module or function call, edges along the dataflow."""

from __future__ import annotations

from typing import Any

from pypaddle.extract._trace import Trace
from pypaddle.graph import LayeredGraph

__all__ = ["layer_graph"]


def _shape(trace: Trace, values: list[int]) -> str:
    return ";".join(str(tuple(trace.tensors[value].shape[1:])) for value in values)


def layer_graph(trace: Trace) -> LayeredGraph:
    """Inputs, every recorded call and the output as vertices; an edge per tensor passed on."""
    graph = LayeredGraph()
    graph.graph.update(granularity="layer", tracer=trace.tracer)
    producer_name: dict[int, str] = {}
    count = len(trace.inputs)
    for position, value in enumerate(trace.inputs):
        name = "input" if count == 1 else f"input{position}"
        graph.add_node(name, kind="input", type="input", module="", shape=_shape(trace, [value]))
        producer_name[value] = name
    for op in trace.ops:
        attributes: dict[str, Any] = {
            "kind": op.kind,
            "type": op.type_name,
            "module": op.base if op.kind == "module" else "",
            "shape": _shape(trace, op.outputs),
        }
        if op.kind == "module":
            attributes["parameters"] = sum(p.numel() for p in op.target.parameters())
        graph.add_node(op.name, **attributes)
        graph.add_edges_from((producer_name[value], op.name) for value in op.inputs)
        for value in op.outputs:
            producer_name[value] = op.name
    graph.add_node(
        "output", kind="output", type="output", module="", shape=_shape(trace, trace.outputs)
    )
    graph.add_edges_from((producer_name[value], "output") for value in trace.outputs)
    for vertex, layer in graph.layer_of_vertex.items():
        graph.nodes[vertex]["layer"] = layer
    return graph
