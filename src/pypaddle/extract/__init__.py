"""Any PyTorch model to a graph (torch.fx, or hooks where fx cannot trace), at neuron,
channel or layer level."""

from pypaddle.extract.convert import to_graph

__all__ = ["to_graph"]
