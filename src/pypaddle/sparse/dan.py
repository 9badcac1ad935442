"""A masked network whose neurons and connections follow a directed acyclic graph."""

from __future__ import annotations

import operator
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import networkx as nx
import numpy as np
import torch
from torch import nn
from torch.nn.modules import module as torch_modules

from pypaddle.errors import (
    ConfigError,
    InputTypeError,
    MaskError,
    StructureError,
    StructureWarning,
)
from pypaddle.graph import CachedLayeredGraph
from pypaddle.sparse import _dan_numba as compiled
from pypaddle.sparse import _dan_triton as gpu
from pypaddle.sparse._arguments import check_flag
from pypaddle.sparse._common import (
    MaskedModel,
    attribute_alias,
    check_size,
    flatten_input,
    renamed_keywords,
    resolve_activation,
    resolve_input_shape,
)
from pypaddle.sparse._dan_init import check_init, initial_values, structure_problems
from pypaddle.sparse._dan_kernel import FAST_ACTIVATIONS, DanSinks
from pypaddle.sparse._dan_layer import DanLayer, pack_per_layer_entries
from pypaddle.sparse._dan_plan import DanPlan
from pypaddle.sparse._structure import (
    input_vertex,
    mask_edges,
    output_vertex,
    structure_from_positions,
)
from pypaddle.sparse.masked import MaskedLinearLayer
from pypaddle.sparse.masked import _as_bool_mask as as_bool_mask

__all__ = ["KERNELS", "MaskedDeepDAN"]

KERNELS = ("auto", "compiled", "torch", "modules", "triton")
"""What can run a DAN's hidden layers (``MaskedDeepDAN(kernel=...)``)."""

_MISSING = object()

# The packed mask buffers -> the packed parameters they mask.
_PACKED_MASKS = {"hidden_mask": "hidden_weight", "hidden_bias_mask": "hidden_bias"}


class MaskedDeepDAN(MaskedModel):
    """A network with one neuron per vertex of a DAG and one weight per edge.

    Semantics (see DESIGN.md): every input feature feeds every source vertex; vertex ``v``
    computes ``act(norm?(b_v + sum over edges u -> v of w_uv * h_u))``, so skip connections
    are summed before the activation like any other incoming edge; every sink (out-degree
    0), whatever its layer, feeds every output. An isolated vertex is both a source and a
    sink: it reads every input and feeds every output.

    The graph is compiled once: the vertices of layer ``L`` form one masked linear layer that
    reads the concatenated activations of the layers from the lowest one with an edge into
    ``L`` up to ``L - 1``; its mask holds exactly the graph's edges. The layers' weights,
    biases and masks are packed into ``hidden_weight``, ``hidden_bias``, ``hidden_mask``
    and ``hidden_bias_mask`` (layer blocks one after another), and ``layers_main_hidden[i]``
    is a :class:`~pypaddle.sparse.MaskedLinearLayer` whose tensors are views into them, so
    a deep graph costs autograd and the optimizer two parameters, not two per layer.
    ``forward`` never touches networkx. The structure is not modified.

    Parameters
    ----------
    input_shape : int or tuple of int
        Number of input features, or the shape of one input sample.
        (Formerly ``size_input``; that keyword still works, with a DeprecationWarning.)
    num_classes : int
        Number of outputs. (Formerly ``size_output``, likewise.)
    structure : networkx.DiGraph
        Any directed acyclic graph with at least one vertex (e.g. a
        :class:`~pypaddle.graph.CachedLayeredGraph`). Labels may be any hashables.
    use_layer_norm : bool
        Normalise each layer's pre-activations with a ``LayerNorm`` (the same as
        ``normalization="layer"``).
    activation : nn.Module, nn.Module class or callable
        The activation of every vertex (``nn.ReLU`` by default).
    kernel : {"auto", "compiled", "torch", "modules", "triton"}
        What runs the hidden layers (also settable later as ``model.kernel``).
        ``"compiled"``: a numba-compiled loop over the active edges (CPU, float32 or
        float64; ``pip install 'pypaddle[fast]'``), on torch's threads (one block of
        samples each; the same thread count gives bit-identical results). ``"triton"``:
        the same idea on a GPU, every layer in one launch over blocks of the batch (CUDA
        tensors of a floating dtype; ``pip install 'pypaddle[gpu]'``; on CPU tensors only
        under Triton's interpreter, ``TRITON_INTERPRET=1``, for testing). ``"torch"``:
        one autograd node running one matrix product per layer, on any device and
        dtype. ``"modules"``: layer by layer with ordinary autograd, which is also what
        activations other than ReLU/tanh/sigmoid/identity, layer norm, tracing and
        ``torch.compile`` get. ``"auto"`` picks by an estimate of the costs: compiled or
        torch on the CPU, at torch's thread count (the compiled loop for deep, narrow or
        sparse graphs; BLAS for wide, dense layers, and for small batches on many
        threads), triton or torch on CUDA (likewise); and the module path while a hidden
        layer has forward hooks (the kernels run the layers without calling them, so
        only that path calls their hooks). All give the same outputs and gradients.
    normalization : {None, "layer", "batch"}
        What normalises the pre-activations of every layer, if anything: ``"layer"`` a
        ``LayerNorm`` over the layer's vertices; ``"batch"`` a ``BatchNorm1d``, which
        normalises each vertex on its own over the batch, with a learned scale and shift
        per vertex, also where a layer holds a single vertex (whose ``LayerNorm`` output
        is a constant). Either runs the hidden layers on the module path (``kernel`` is
        then ignored: no kernel normalises), and ``compact`` keeps every vertex of a
        normalised layer. Measured on the 32 x 16 small-world DAN of ``init`` (one seed,
        15 epochs): none 82 %, ``"layer"`` 80 %, ``"batch"`` 32 % (batch norm in deep
        nets without shortcuts blows gradients up at the start, Yang et al. 2019); the
        per-vertex init, not a normalisation, is what makes deep graphs train here.
    init : {"fan_in", "legacy"}
        How the hidden weights start. ``"fan_in"`` (the default): He initialisation per
        vertex, each vertex's incoming weights drawn uniformly with standard deviation
        ``gain / sqrt(fan_in)``, where ``fan_in`` counts the vertex's *active* inputs
        (its edges; every input feature for a source) and ``gain`` suits the activation
        (``sqrt(2)`` for ReLU, GELU, ELU; ``5/3`` for tanh; 1 for sigmoid and identity;
        see :func:`~pypaddle.sparse.activation_gain`), and entries that are no edge at 0.
        It keeps the signal's power from layer to layer, so deep graphs train: on the
        digits a 32 x 16 layered small-world DAN reaches ~80 % where the legacy start
        gives 14 % to 86 % depending on the seed (``benchmarks/deep_dan_init.py``).
        ``"legacy"``: the start of earlier releases, ``U(-b, b)`` with ``b = 1 /
        sqrt(fan_in)``, the same numbers for the same torch seed. Biases start at
        ``U(-b, b)`` and the output layer as ``nn.Linear`` does, either way.

    Warns
    -----
    StructureWarning
        Once per model, when the structure is degenerate for learning, with the numbers
        and what to do: fewer sources than the outputs and than the input features / 8
        (``INPUTS_PER_SOURCE``), a bottleneck; more than ``DEPTH_PER_WIDTH`` (4) times as
        many layers as vertices per layer, at ``MIN_WARNED_DEPTH`` (16) layers or more;
        vertices that no input reaches or that reach no output.
        :meth:`structure_problems` lists the same for the current masks.

    Examples
    --------
    >>> import networkx as nx, torch
    >>> structure = nx.DiGraph([("a", "b"), ("b", "c"), ("a", "c")])
    >>> model = MaskedDeepDAN(4, 2, structure)
    >>> model(torch.randn(3, 4)).shape
    torch.Size([3, 2])
    >>> sorted(model.generate_structure().edges)
    [('a', 'b'), ('a', 'c'), ('b', 'c')]
    """

    hidden_weight: nn.Parameter
    hidden_bias: nn.Parameter
    hidden_mask: torch.Tensor
    hidden_bias_mask: torch.Tensor
    sink_index: torch.Tensor
    layers_main_hidden: nn.ModuleList
    layer_norms: nn.ModuleList
    activation: nn.Module
    layer_out: MaskedLinearLayer

    size_input = attribute_alias("in_features")
    size_output = attribute_alias("num_classes")

    @renamed_keywords(size_input="input_shape", size_output="num_classes")
    def __init__(
        self,
        input_shape: int | Sequence[int],
        num_classes: int,
        structure: nx.DiGraph,
        *,
        use_layer_norm: bool = False,
        activation: Any = nn.ReLU,
        kernel: str = "auto",
        init: str = "fan_in",
        normalization: str | None = None,
    ) -> None:
        super().__init__()
        # Everything is checked, and the plan made, before the first attribute is set.
        shape, features = resolve_input_shape(input_shape)
        num_classes = check_size(num_classes, "num_classes")
        _check_kernel(kernel)
        use_layer_norm = check_flag(use_layer_norm, "use_layer_norm")
        normalization = _check_normalization(normalization, use_layer_norm)
        activation_module = resolve_activation(activation)
        init = check_init(init)
        plan = DanPlan.from_structure(structure, features)

        self.input_shape = shape
        self.in_features = features
        self.num_classes = num_classes
        self.use_layer_norm = normalization == "layer"
        self.normalization = normalization
        self._plan = plan
        self.layer_widths = plan.widths
        self._vertex_data = [(vertex, dict(data)) for vertex, data in structure.nodes(data=True)]

        # Every vertex starts for its activation over its *active* fan-in (see init).
        mask = plan.edge_mask()
        weight, bias = initial_values(plan, mask, activation_module, init)
        self.init = init
        self.hidden_weight = nn.Parameter(weight)
        self.hidden_bias = nn.Parameter(bias)
        self.register_buffer("hidden_mask", mask)
        self.register_buffer("hidden_bias_mask", torch.ones(plan.vertices, dtype=torch.bool))
        self.layers_main_hidden = nn.ModuleList(
            DanLayer(self, layer) for layer in range(len(plan.widths))
        )
        self.layer_norms = nn.ModuleList(
            _NORMALIZATIONS[normalization](width) for width in plan.widths
        )
        self.activation = activation_module
        self.kernel = kernel
        self.register_buffer("sink_index", torch.tensor(plan.sinks), persistent=False)
        self.layer_out = MaskedLinearLayer(len(plan.sinks), num_classes)
        problems = self.structure_problems()
        if problems:
            warnings.warn(
                "this structure is degenerate for learning: " + "; ".join(problems),
                StructureWarning,
                stacklevel=3,  # the caller of __init__ (through renamed_keywords)
            )

    def structure_problems(self) -> list[str]:
        """Why this net's structure, with its current masks, is degenerate for learning.

        One sentence per problem, with the numbers and what to do (empty when there is
        none): the checks behind the :class:`~pypaddle.errors.StructureWarning` of the
        constructor, run on the masks as they are now (after pruning, vertices may be
        cut off from the inputs or the outputs).

        Examples
        --------
        >>> import warnings, networkx as nx
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     chain = MaskedDeepDAN(64, 10, nx.path_graph(3, create_using=nx.DiGraph))
        >>> [problem.split(" (")[0] for problem in chain.structure_problems()]
        ['64 input features and 10 outputs pass through 1 source vertex']
        """
        return structure_problems(
            self._plan, self.num_classes, self.hidden_mask, self.layer_out.mask
        )

    @property
    def plan(self) -> DanPlan:
        """The layout of the hidden layers (read-only), computed once from the structure.

        Which label each vertex position has, which positions form each layer and which
        earlier ones it reads, where each layer's block lies in the packed tensors, and
        which vertices are sources and sinks: see :class:`~pypaddle.sparse.DanPlan`. It is
        the structure's layout, not its current masks: pruning leaves it as it is.

        Examples
        --------
        >>> import networkx as nx
        >>> model = MaskedDeepDAN(4, 2, nx.DiGraph([("a", "b"), ("b", "c"), ("a", "c")]))
        >>> model.plan.labels, model.plan.writes, model.plan.reads
        (('a', 'b', 'c'), ((0, 1), (1, 2), (2, 3)), ((0, 0), (0, 1), (0, 2)))
        """
        return self._plan

    @property
    def kernel(self) -> str:
        """What runs the hidden layers: "auto", "compiled", "torch", "modules" or "triton"."""
        return self.__dict__["_kernel"]

    @kernel.setter
    def kernel(self, kernel: str) -> None:
        _check_kernel(kernel)
        self.__dict__["_kernel"] = kernel

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        features = flatten_input(input, self.in_features)
        weight, bias = self._packed_parameters()
        dtype = weight.dtype
        if not features.is_floating_point():
            raise InputTypeError(
                f"MaskedDeepDAN takes floating-point input, got {features.dtype}; convert "
                f"it first, e.g. input.to({dtype})"
            )
        features = features.to(dtype)
        kernel = self._kernel_for(features)
        if kernel == "modules":
            return self._forward_by_modules(features)
        derived = self._followed("hidden_mask", checked=True)
        bias_values = _values(
            self._followed("hidden_bias_mask", checked=True),
            self._packed("hidden_bias_mask"),
            dtype,
        )
        activation = FAST_ACTIVATIONS[type(self.activation)]
        first_values = self._first_mask_values(derived, dtype)
        if kernel == "torch":
            hidden_values = self._hidden_mask_values(derived, dtype)
            sinks = DanSinks.apply(
                self._plan,
                activation,
                self.sink_index,
                features,
                weight,
                first_values,
                hidden_values,
                bias,
                bias_values,
            )
        else:
            # These kernels read the active edges of layers 1.. and the mask of layer 0 only.
            arguments = (self.sink_index, features, weight, first_values, bias, bias_values)
            if kernel == "compiled":
                edges = self._active_edges(checked=True)
                sinks = compiled.CompiledDanSinks.apply(self._plan, activation, edges, *arguments)
            else:
                packed = self._triton_edges(features.device)
                sinks = gpu.TritonDanSinks.apply(self._plan, activation, packed, *arguments)
        return self.layer_out(sinks)

    def _packed_parameters(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``hidden_weight`` and ``hidden_bias``, from ``_parameters`` where they are there
        (one dict lookup, not nn.Module's attribute lookup), else as attributes: torch's
        pruning, parametrizations and weight norm replace a parameter by a computed one."""
        weight = self._parameters.get("hidden_weight")
        bias = self._parameters.get("hidden_bias")
        weight = self.hidden_weight if weight is None else weight
        bias = self.hidden_bias if bias is None else bias
        # The kernels index these by the plan: another size would read past their ends.
        for name, tensor, size in (
            ("hidden_weight", weight, self._plan.blocks[-1][1]),
            ("hidden_bias", bias, self._plan.vertices),
        ):
            if tuple(tensor.shape) != (size,):
                raise ConfigError(
                    f"the packed {name} has become a tensor of shape {tuple(tensor.shape)}, "
                    f"but the model needs one of shape ({size},); change its values in place "
                    f"(model.{name}.data[...] = ..., or copy_) rather than giving it new data"
                )
        return weight, bias

    def _first_mask_values(self, derived: dict, dtype: torch.dtype) -> torch.Tensor | None:
        """Layer 0's block of the packed mask as 0/1 values of ``dtype`` (None if all True),
        kept in ``derived`` (the values that follow ``hidden_mask``)."""
        return _values(derived, self._packed("hidden_mask"), dtype, slice(0, self._first_block))

    def _hidden_mask_values(self, derived: dict, dtype: torch.dtype) -> torch.Tensor | None:
        """The blocks of the packed mask after layer 0's, likewise."""
        return _values(derived, self._packed("hidden_mask"), dtype, slice(self._first_block, None))

    @property
    def _first_block(self) -> int:
        """Where layer 0's block ends in the packed tensors."""
        return self._plan.blocks[0][1]

    def _kernel_for(self, features: torch.Tensor) -> str:
        """Which of "compiled", "triton", "torch" or "modules" runs the hidden layers (see
        ``kernel``).

        Unless it is "modules", the packed masks have been compared with the copies their
        cached values were made from (see :meth:`packed_mask_values`).
        """
        kernel = self.kernel
        if (
            kernel == "modules"
            or type(self.activation) not in FAST_ACTIVATIONS
            or self.normalization is not None
            or torch.jit.is_tracing()
            or torch.compiler.is_compiling()
        ):
            return "modules"
        if kernel == "auto" and self._layers_have_hooks():
            return "modules"
        if kernel == "triton":
            _check_triton_runs(features)
        self._follow_packed_masks()  # the one comparison of this forward
        if kernel in ("torch", "triton"):
            return kernel
        if kernel == "auto" and features.device.type == "cuda":
            return self._chosen(features, self._triton_preferred, "triton")
        if compiled.supports(features):
            if kernel == "compiled":
                return "compiled"
            return self._chosen(features, self._compiled_preferred, "compiled")
        if kernel == "compiled":
            raise ConfigError(
                "kernel='compiled' needs numba (pip install 'pypaddle[fast]') and a float32 "
                f"or float64 input on the CPU; got {features.dtype} on {features.device}"
                + (
                    ""
                    if compiled.available()
                    else ", and numba is not installed or fails to import"
                )
            )
        return "torch"

    def _chosen(
        self, features: torch.Tensor, preferred: Callable[[torch.Tensor], bool], kernel: str
    ) -> str:
        """``kernel`` if ``preferred(features)`` says its estimate beats the torch kernel's,
        else "torch"; the answer is kept with the masks it was made for, per batch size,
        thread count, device and dtype, so that a forward does not rerun the cost models."""
        derived = self._followed("hidden_mask", checked=True)
        key = ("auto", features.shape[0], torch.get_num_threads(), features.device, features.dtype)
        choice = derived.get(key)
        if choice is None:
            choice = derived[key] = kernel if preferred(features) else "torch"
        return choice

    def _compiled_preferred(self, features: torch.Tensor) -> bool:
        """Whether the compiled kernel's cost estimate beats the torch kernel's."""
        edges = self._active_edges(checked=True)
        return compiled.preferred(self._plan, edges, features.shape[0])

    def _triton_preferred(self, features: torch.Tensor) -> bool:
        """Whether the Triton kernel can run on ``features`` and its cost estimate wins."""
        if gpu.unsupported(features) is not None:
            return False
        return gpu.preferred(
            self._plan,
            self._triton_edges(features.device),
            features.shape[0],
            multiprocessors=gpu.multiprocessors(features.device),
        )

    def _triton_edges(self, device: torch.device) -> gpu.TritonEdges:
        """The Triton kernel's packed active edges on ``device``, rebuilt after mask edits."""
        derived = self._followed("hidden_mask", checked=True)
        key = ("triton", device)
        if key not in derived:
            derived[key] = gpu.triton_edges(self._plan, self._active_edges(checked=True), device)
        return derived[key]

    def _layers_have_hooks(self) -> bool:
        """Whether a hidden layer has forward (pre-)hooks, or torch has global ones, which
        only the module path calls.

        Reads the hook tables of each layer's ``__dict__`` (gathered once per set of
        layers: a module's ``__dict__`` is never replaced, its hook tables may be), so that
        a forward of a deep graph does not walk hundreds of modules through nn.Module.
        """
        if torch_modules._global_forward_hooks or torch_modules._global_forward_pre_hooks:
            return True
        layers = list(self.layers_main_hidden._modules.values())
        cached = self.__dict__.get("_hook_tables")
        if cached is None or cached[0] != layers:  # compares the layers by identity first
            cached = self.__dict__["_hook_tables"] = (
                layers,
                [layer.__dict__ for layer in layers if layer is not None],
            )
        tables = cached[1]
        return any(map(_FORWARD_HOOKS, tables)) or any(map(_FORWARD_PRE_HOOKS, tables))

    # -- what follows the masks ---------------------------------------------------------------
    def _followed(
        self, name: str, region: tuple[int, int] | None = None, *, checked: bool = False
    ) -> dict[Any, Any]:
        """The values derived from the packed mask buffer ``name``, valid for its contents.

        Each derived value (0/1 values per dtype, the compiled kernel's active edges) is
        kept with a copy of the mask it was made from, and all are dropped as soon as the
        mask differs from that copy, however it was edited: in place, through a layer's
        view, through ``.data`` or a numpy array sharing its memory (which torch's version
        counter does not see), swapped by ``.to()`` or loaded. The comparison is one pass
        over the mask's bytes, cheap beside the kernel. With ``region`` only that range of
        the mask is compared (a layer reading its own block); with ``checked`` none is,
        because the caller just compared it.
        """
        mask = self._packed(name)
        followers = self.__dict__.setdefault("_mask_followers", {})
        entry = followers.get(name)
        if entry is not None and entry[0] is mask:
            if checked:
                return entry[2]
            start, end = (0, mask.numel()) if region is None else region
            if _same_contents(mask, entry[1], start, end):
                return entry[2]
        expected = self._plan.blocks[-1][1] if name == "hidden_mask" else self._plan.vertices
        if mask.dtype != torch.bool or tuple(mask.shape) != (expected,):
            raise MaskError(
                f"the packed {name} has become a {mask.dtype} tensor of shape "
                f"{tuple(mask.shape)}, but the model needs a bool one of shape ({expected},); "
                f"edit masks in place (model.{name}[...] = ..., layer.set_mask(...)) rather "
                f"than giving them new data"
            )
        followers[name] = (mask, mask.detach().clone(), {})
        return followers[name][2]

    def _follow_packed_masks(self) -> None:
        """Compare both packed masks with the copies their derived values were made from
        (see :meth:`_followed`), dropping what no longer holds.

        On the CPU each is compared as bytes; on a GPU both in one reduction read back
        once, so that a forward waits for the device once rather than per mask.
        """
        names = tuple(_PACKED_MASKS)
        masks = [self._packed(name) for name in names]
        if not _compared_on_device(masks[0]):
            for name in names:
                self._followed(name)
            return
        followers = self.__dict__.get("_mask_followers", {})
        entries = [followers.get(name) for name in names]
        comparable = all(
            entry is not None
            and entry[0] is mask
            and (entry[1].shape, entry[1].dtype, entry[1].device)
            == (mask.shape, mask.dtype, mask.device)
            for mask, entry in zip(masks, entries)
        )
        if not comparable:
            for name in names:
                self._followed(name)
            return
        copies = [entry[1] for entry in entries if entry is not None]
        differs = _changed(masks, copies)
        for name, changed in zip(names, differs):
            if changed:
                del followers[name]
        for name in names:
            self._followed(name, checked=True)

    def packed_mask_values(
        self,
        name: str,
        dtype: torch.dtype,
        region: tuple[int, int] | None = None,
        *,
        checked: bool = False,
    ) -> torch.Tensor | None:
        """The packed mask buffer ``name`` as 0/1 values of ``dtype`` (None if all True).

        Cached while the mask's contents stay the same, whatever path edits it (see
        :meth:`_followed`; ``region`` and ``checked`` say what to compare). Tracing and
        compiling get the plain conversion.
        """
        if torch.jit.is_tracing() or torch.compiler.is_compiling():
            return self._packed(name).to(dtype)
        return _values(self._followed(name, region, checked=checked), self._packed(name), dtype)

    def _packed(self, name: str) -> torch.Tensor:
        mask = self._buffers[name]
        assert mask is not None  # the packed masks are never None
        return mask

    def _active_edges(self, *, checked: bool = False) -> compiled.ActiveEdges:
        """The compiled kernel's CSR index of the active edges, rebuilt after mask edits."""
        derived = self._followed("hidden_mask", checked=checked)
        if "edges" not in derived:
            derived["edges"] = compiled.active_edges(self._plan, self.hidden_mask)
        return derived["edges"]

    def _load_from_state_dict(
        self,
        state_dict: dict,
        prefix: str,
        local_metadata: dict,
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        # A state_dict from before the hidden layers were packed loads too.
        pack_per_layer_entries(state_dict, prefix, self.layers_main_hidden)
        # The packed masks are checked before anything is loaded, so that a bad one leaves
        # the model as it was (MaskedModel checks the masks its layers own, layer_out's).
        # Where the packed weight does not fit either, the entries are of another model:
        # torch's error names them all.
        for name, weight in _PACKED_MASKS.items():
            key, given = prefix + name, state_dict.get(prefix + weight)
            if key not in state_dict:
                continue
            if isinstance(given, torch.Tensor) and given.shape != self.get_parameter(weight).shape:
                continue
            state_dict[key] = as_bool_mask(
                state_dict[key], self._packed(name).shape, f"state_dict entry {key!r}"
            )
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state.pop("_mask_followers", None)
        state.pop("_hook_tables", None)
        return state

    def _forward_by_modules(self, features: torch.Tensor) -> torch.Tensor:
        """Layer by layer with ordinary autograd: any activation, layer norm, module hooks."""
        blocks = [features]
        for layer, norm, first in zip(
            self.layers_main_hidden, self.layer_norms, self._plan.first_blocks
        ):
            reads = blocks[first] if first == len(blocks) - 1 else torch.cat(blocks[first:], 1)
            blocks.append(self.activation(norm(layer(reads))))
        if self._plan.sinks_are_last_layer:
            sinks = blocks[-1]
        else:
            sinks = torch.cat(blocks[1:], 1).index_select(1, self.sink_index)
        return self.layer_out(sinks)

    @property
    def num_vertices(self) -> int:
        """Number of vertices (hidden neurons)."""
        return self._plan.vertices

    def generate_structure(
        self, include_input: bool = False, include_output: bool = False
    ) -> CachedLayeredGraph:
        """The structure as a graph, built from the current masks.

        An untouched model gives back the structure it was built from: the same labels
        (in the same order, with their attributes) and the same edges. After masking it
        gives the surviving subgraph (every vertex stays; a vertex whose edges are all
        masked is isolated). ``include_input`` adds vertices ``("input", i)`` with their
        edges to the sources, ``include_output`` adds ``("output", j)`` with the edges from
        the sinks; these carry a ``role`` attribute (``"input"`` / ``"output"``).
        """
        plan = self._plan
        labels: list[Any] = list(plan.labels)
        vertices: list[tuple[Any, dict]] = []
        edges = []
        mask = self.hidden_mask.detach().cpu().numpy()
        if include_input:
            labels += [input_vertex(i) for i in range(self.in_features)]
            vertices += [(label, {"role": "input"}) for label in labels[plan.vertices :]]
            first_mask = self.hidden_mask[: plan.blocks[0][1]].view(plan.widths[0], plan.features)
            edges.append(mask_edges(first_mask, plan.vertices, 0))
        vertices += [(vertex, dict(data)) for vertex, data in self._vertex_data]
        first = plan.blocks[0][1]
        edges.append(plan.edges_at(np.flatnonzero(mask[first:]) + first))
        if include_output:
            output_start = len(labels)
            labels += [output_vertex(j) for j in range(self.num_classes)]
            vertices += [(label, {"role": "output"}) for label in labels[output_start:]]
            out_targets, out_sources = self.layer_out.mask.detach().cpu().nonzero(as_tuple=True)
            sink_positions = np.asarray(plan.sinks, dtype=np.int64)
            edges.append((sink_positions[out_sources.numpy()], out_targets.numpy() + output_start))
        taken = set(plan.labels)
        clash = [label for label in labels[plan.vertices :] if label in taken]
        if clash:
            raise StructureError(
                f"the structure already has a vertex labelled {clash[0]!r}, which "
                "generate_structure uses for an input or output; relabel the structure's "
                "vertices (e.g. with networkx.relabel_nodes) to include inputs and outputs"
            )
        return structure_from_positions(vertices, labels, edges)


# A module's forward hooks and forward pre-hooks, read from its __dict__.
_FORWARD_HOOKS = operator.itemgetter("_forward_hooks")
_FORWARD_PRE_HOOKS = operator.itemgetter("_forward_pre_hooks")

_NORMALIZATIONS: dict[str | None, Any] = {
    None: lambda width: nn.Identity(),
    "layer": nn.LayerNorm,
    "batch": nn.BatchNorm1d,
}


def _check_normalization(normalization: Any, use_layer_norm: bool) -> str | None:
    if normalization not in ("layer", "batch", None) or isinstance(normalization, bool):
        raise ConfigError(
            f"unknown normalization {normalization!r}; choose None, 'layer' (LayerNorm per "
            "layer) or 'batch' (BatchNorm per vertex, for deep narrow graphs)"
        )
    if use_layer_norm and normalization not in (None, "layer"):
        raise ConfigError(
            f"use_layer_norm=True and normalization={normalization!r} ask for two "
            "normalisations; give one of them"
        )
    return "layer" if use_layer_norm else normalization


def _check_kernel(kernel: Any) -> None:
    if not isinstance(kernel, str) or kernel not in KERNELS:
        choices = ", ".join(map(repr, KERNELS))
        raise ConfigError(f"unknown kernel {kernel!r}; choose one of {choices}")


def _check_triton_runs(features: torch.Tensor) -> None:
    reason = gpu.unsupported(features)
    if reason is not None:
        raise ConfigError(
            f"kernel='triton' cannot run on this {features.dtype} input on {features.device}: "
            f"{reason}; use kernel='torch' (any device), 'compiled' (CPU) or 'auto' (picks "
            "one that runs)"
        )


def _compared_on_device(mask: torch.Tensor) -> bool:
    """Whether ``mask`` is compared by a reduction on its device (off the CPU), rather than
    as bytes on the host."""
    return mask.device.type != "cpu"


def _changed(masks: Sequence[torch.Tensor], copies: Sequence[torch.Tensor]) -> list[bool]:
    """Whether each mask differs from its copy (same shapes, dtypes and device), computed
    in one reduction on the device and read back once."""
    return torch.stack([(mask != copy).any() for mask, copy in zip(masks, copies)]).tolist()


def _values(
    derived: dict, mask: torch.Tensor, dtype: torch.dtype, part: slice | None = None
) -> torch.Tensor | None:
    """``mask`` (or its ``part``) as 0/1 values of ``dtype`` (None if all True), kept in
    ``derived``."""
    key: Any = dtype if part is None else (part.start, part.stop, dtype)
    values = derived.get(key, _MISSING)
    if values is _MISSING:
        chosen = mask if part is None else mask[part]
        values = derived[key] = None if bool(chosen.all()) else chosen.to(dtype)
    return values


def _same_contents(mask: torch.Tensor, copy: torch.Tensor, start: int, end: int) -> bool:
    """Whether ``mask[start:end]`` equals ``copy[start:end]`` (1-d tensors of one dtype).

    On the CPU the bytes are compared through numpy, without a torch call (a small mask
    by copying its bytes out, which is one ``memcmp``; a large one in place, eight bytes
    at a time): a fraction of what ``torch.equal`` costs, so that checking a mask every
    forward stays cheap. Elsewhere by ``torch.equal``.
    """
    if mask.shape != copy.shape or mask.dtype != copy.dtype or mask.device != copy.device:
        return False
    if mask.device.type != "cpu" or not mask.is_contiguous():
        return torch.equal(mask[start:end], copy[start:end])
    ours = mask.detach().numpy()[start:end].view(np.uint8)
    theirs = copy.numpy()[start:end].view(np.uint8)
    if ours.size <= _BYTES_COPIED:
        return ours.tobytes() == theirs.tobytes()
    bulk = ours.size - ours.size % 8
    return np.array_equal(ours[:bulk].view(np.uint64), theirs[:bulk].view(np.uint64)) and (
        np.array_equal(ours[bulk:], theirs[bulk:])
    )


# Masks up to this many bytes are compared by copying them out (see _same_contents).
_BYTES_COPIED = 1 << 16
