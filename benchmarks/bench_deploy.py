"""Speed from sparsity: compaction, sparse kernels, and Torch-Pruning on a small CNN.

1. ``MaskedDeepFFN(784, 10, [2000, 2000])`` with 90 % of the neurons of each hidden layer
   pruned, inference at batch 256: the compacted model against a dense ``nn.Linear``
   stack of the full sizes. The row's ratio is the measured speed-up over the FLOP bound
   (dense / remaining multiply-accumulates); goal >= 0.7.
2. ``to_sparse`` on 4096 x 4096 layers at 10 %, 5 % and 1 % density (90/95/99 % sparse),
   batch 1 and 64: the CSR kernel's speed-up over the dense product, beside the FLOP
   bound, and the kernel ``sparse_plan`` chose, which must never be more than 10 % slower
   than dense (goal >= 0.9x).
3. A small CNN with half of its channels pruned by L1 norm: pypaddle (masked convolutions
   -> ``compact``) against Torch-Pruning (``DependencyGraph`` removing the same channels):
   the same outputs, and the latency ratio (goal <= 1.05: equal or better).
"""

from __future__ import annotations

import importlib.metadata

import torch
from torch import nn

import pypaddle.sparse
from _dense import mlp
from _table import Goal, Row, Table
from _timing import compare
from pypaddle.deploy import compact, count, sparse_plan, to_sparse
from pypaddle.deploy.sparse_kernels import SparseLinear
from pypaddle.sparse import MaskedDeepFFN, MaskedLinearLayer

SEED = 0


def _inference(model: nn.Module, inputs: torch.Tensor):
    def step() -> torch.Tensor:
        with torch.no_grad():
            return model(inputs)

    return step


# -- 1. compaction of a neuron-pruned FFN ----------------------------------------------
def bench_compact_ffn(table: Table, *, quick: bool) -> None:
    table.section("deploy 1. compact: FFN 784-2000-2000-10, 90% hidden neurons pruned, batch 256")
    torch.manual_seed(SEED)
    generator = torch.Generator().manual_seed(SEED)
    model = MaskedDeepFFN(784, 10, [2000, 2000]).eval()
    for layer in model.layers_main_hidden:
        pruned = torch.randperm(layer.out_features, generator=generator)[
            : layer.out_features * 9 // 10
        ]
        layer.prune_neurons(pruned)
    inputs = torch.randn(256, 784, generator=generator)
    small = compact(model).eval()
    # A pruned neuron's outgoing weights only ever multiply zeros: the MACs that remain are
    # those of the compacted model.
    bound = count(model, inputs[:1]).macs / count(small, inputs[:1]).macs
    with torch.no_grad():
        error = float((small(inputs) - model(inputs)).abs().max())
    dense = mlp([784, 2000, 2000, 10]).eval()
    result = compare(
        _inference(small, inputs), _inference(dense, inputs), rounds=11 if quick else 31
    )
    speedup = 1 / result.ratio
    table.add(
        Row(
            f"compact speed-up {speedup:.1f}x / FLOP bound {bound:.1f}x",
            result.subject,
            result.reference,
            speedup / bound,
            Goal(0.7, at_most=False),
            note=f"compact vs dense nn.Linear stack; max |compact - masked| = {error:.1e}",
        )
    )
    masked = compare(
        _inference(small, inputs), _inference(model, inputs), rounds=7 if quick else 15
    )
    table.add(
        Row(
            "compact / masked model (same function)", masked.subject, masked.reference, masked.ratio
        )
    )


# -- 2. sparse kernels on 4096 x 4096 ----------------------------------------------------
def bench_sparse_kernels(table: Table, *, quick: bool) -> None:
    table.section("deploy 2. to_sparse: one 4096 x 4096 layer, CSR vs dense")
    generator = torch.Generator().manual_seed(SEED)
    size = 4096
    for density in (0.10, 0.05, 0.01):
        layer = MaskedLinearLayer(size, size).eval()
        layer.mask &= torch.rand(size, size, generator=generator) < density
        for batch in (1, 64):
            inputs = torch.randn(batch, size, generator=generator)
            dense = nn.Linear(size, size).eval()
            with torch.no_grad():
                dense.weight.copy_(layer.masked_weight())
                dense.bias.copy_(layer.bias)
            csr = SparseLinear.from_dense(layer.masked_weight(), layer.bias)
            rounds = 5 if quick else 11
            raw = compare(_inference(csr, inputs), _inference(dense, inputs), rounds=rounds)
            (choice,) = sparse_plan(layer, batch, rounds=3 if quick else 5)
            chosen = to_sparse(layer, plan=[choice]) if choice.sparse else dense
            picked = compare(_inference(chosen, inputs), _inference(dense, inputs), rounds=rounds)
            label = f"{100 - density * 100:.0f}% sparse, batch {batch}"
            table.add(
                Row(
                    f"{label}: CSR speed-up (FLOP bound {1 / density:.0f}x)",
                    raw.subject,
                    raw.reference,
                    1 / raw.ratio,
                )
            )
            kind = "CSR" if choice.sparse else "dense"
            table.add(
                Row(
                    f"{label}: to_sparse's choice ({kind}) vs dense",
                    picked.subject,
                    picked.reference,
                    1 / picked.ratio,
                    Goal(0.9, at_most=False),
                )
            )


# -- 3. Torch-Pruning on a small CNN ----------------------------------------------------
def _cnn(conv: type[nn.Module]) -> nn.Sequential:
    return nn.Sequential(
        conv(3, 32, 3, padding=1),
        nn.ReLU(),
        conv(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        conv(64, 64, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, 10),
    )


def _weakest_filters(conv: nn.Conv2d, fraction: float) -> list[int]:
    norms = conv.weight.detach().abs().flatten(1).sum(1)
    return norms.argsort()[: int(conv.out_channels * fraction)].tolist()


def bench_torch_pruning(table: Table, *, quick: bool) -> None:
    table.section("deploy 3. vs Torch-Pruning: CNN 3-32-64-64, half the channels pruned, batch 64")
    label = "CNN inference: pypaddle compact / Torch-Pruning"
    masked_conv = getattr(pypaddle.sparse, "MaskedConv2d", None)
    try:
        import torch_pruning as tp
    except ImportError:
        table.add(Row(label, note="Torch-Pruning: not installed (make bench installs it)"))
        return
    if masked_conv is None:
        table.add(Row(label, note="pypaddle: no masked convolutions in this build"))
        return
    torch.manual_seed(SEED)
    reference = _cnn(nn.Conv2d).eval()
    inputs = torch.randn(64, 3, 32, 32, generator=torch.Generator().manual_seed(SEED))
    convs = [0, 2, 5]
    pruned = {i: _weakest_filters(reference[i], 0.5) for i in convs}

    theirs = _cnn(nn.Conv2d).eval()
    theirs.load_state_dict(reference.state_dict())
    graph = tp.DependencyGraph().build_dependency(theirs, example_inputs=inputs[:1])
    for i in convs:
        group = graph.get_pruning_group(theirs[i], tp.prune_conv_out_channels, idxs=pruned[i])
        group.prune()

    ours = _cnn(masked_conv).eval()
    ours.load_state_dict(reference.state_dict(), strict=False)
    for i in convs:
        ours[i].prune_output_channels(pruned[i])
    small = compact(ours).eval()

    with torch.no_grad():
        error = float((small(inputs) - theirs(inputs)).abs().max())
    widths = [small[i].out_channels for i in convs], [theirs[i].out_channels for i in convs]
    rounds = 11 if quick else 31
    result = compare(_inference(small, inputs), _inference(theirs, inputs), rounds=rounds)
    version = importlib.metadata.version("torch-pruning")
    table.add(
        Row(
            label,
            result.subject,
            result.reference,
            result.ratio,
            Goal(1.05, at_most=True),
            note=f"Torch-Pruning {version}; channels {widths[0]} vs {widths[1]}; "
            f"max |difference| = {error:.1e}",
        )
    )


def run(table: Table, *, quick: bool) -> None:
    """All deploy sections (see the module docstring)."""
    bench_compact_ffn(table, quick=quick)
    bench_sparse_kernels(table, quick=quick)
    bench_torch_pruning(table, quick=quick)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = Table()
    run(results, quick=args.quick)
    results.summary()
