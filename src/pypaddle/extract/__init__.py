"""Any PyTorch model to a graph (torch.fx, or hooks where fx cannot trace), at neuron,
channel or layer level."""

from pypaddle.extract._rules import register_rule
from pypaddle.extract.convert import to_graph

__all__ = ["register_rule", "to_graph"]
