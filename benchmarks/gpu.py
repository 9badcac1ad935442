"""pypaddle on a CUDA GPU: the goals of issue #13 for graph-built nets, in one run.

What is measured (forward+backward, float32, seeded inputs, one CUDA device; every call
ends with ``torch.cuda.synchronize()``, so a time is the latency of a training step's
forward and backward, launches included):

1. ``MaskedDeepDAN`` on a Newman-Watts-Strogatz(200, 4, 0.5) graph oriented from lower to
   higher label (about 200 layers deep), batch 256, against a dense MLP 784-200-10.
   Goal: at most 3x.
2. ``MaskedDeepDAN`` on a layered random DAG of 8 x 256 vertices (30 % density between
   consecutive layers) plus 5 % skip edges from every earlier layer, against the dense
   network whose layers read the concatenation of all earlier layers, at batch 256 and
   at batch 8192. Goal: at most 1.3x at both.

Each DAN runs with every kernel that can run (``torch``; ``triton`` when triton is
installed) and with ``auto``, whose choice is named; the goals are judged on ``auto``,
which is what a user gets. Before timing, every model's outputs and gradients under the
triton kernel are checked against the torch kernel on the GPU; a mismatch fails the run.

Run with ``python benchmarks/gpu.py [--quick] [--device cuda:N]``; without a CUDA device
it stops at once and says so.
"""

from __future__ import annotations

import argparse
import copy
import platform
import sys

import torch
from torch import nn

import pypaddle
from _dense import ConcatMLP, mlp
from _structures import layered_random_dag, oriented_newman_watts_strogatz
from _table import Goal, Row, Table
from _timing import compare, train_step
from pypaddle.sparse import MaskedDeepDAN
from pypaddle.sparse import _dan_triton as triton_kernel

FEATURES = 784
OUTPUTS = 10
SEED = 0
WIDTH = 256  # of the layered DAG, 8 layers
BATCHES = (256, 8192)  # of the layered DAG


def _inputs(batch: int, device: torch.device) -> torch.Tensor:
    generator = torch.Generator().manual_seed(SEED)
    return torch.randn(batch, FEATURES, generator=generator).to(device)


def kernels() -> list[str]:
    """The DAN kernels that can run on CUDA here."""
    return ["torch", "triton"] if triton_kernel.available() else ["torch"]


def check_kernels_agree(model: MaskedDeepDAN, inputs: torch.Tensor, label: str) -> bool:
    """Whether the triton kernel gives the torch kernel's outputs and gradients here."""
    results = []
    for kernel in ("torch", "triton"):
        twin = copy.deepcopy(model)
        twin.kernel = kernel
        x = inputs.detach().clone().requires_grad_()
        output = twin(x)
        (output * torch.linspace(-1, 1, OUTPUTS, device=x.device)).sum().backward()
        grads = [x.grad] + [parameter.grad for parameter in twin.parameters()]
        results.append((output.detach(), grads))
    (expected, expected_grads), (output, grads) = results
    worst = max(
        float(((got - want).abs() / (want.abs().max() + 1e-12)).max())
        for got, want in zip([output, *grads], [expected, *expected_grads])
    )
    agree = worst < 1e-3
    print(f"  {label}: largest difference {worst:.1e} of the largest value", flush=True)
    return agree


def bench_small_world(table: Table, device: torch.device, *, rounds: int) -> None:
    table.section("1. DAN on NWS(200, 4, 0.5), fwd+bwd, batch 256: pypaddle / dense MLP")
    inputs = _inputs(256, device)
    structure = oriented_newman_watts_strogatz(200, 4, 0.5, seed=SEED)
    torch.manual_seed(SEED)
    dense = mlp([FEATURES, 200, OUTPUTS]).to(device)
    torch.manual_seed(SEED)
    model = MaskedDeepDAN(FEATURES, OUTPUTS, structure).to(device)
    depth = len(model.layer_widths)
    _kernel_rows(
        table, model, dense, inputs, f"DAN {depth} layers", "dense MLP 784-200-10", 3.0, rounds
    )


def bench_layered_skips(table: Table, device: torch.device, *, rounds: int) -> None:
    structure = layered_random_dag(8, WIDTH, density=0.3, skip_density=0.05, seed=SEED)
    edges = structure.number_of_edges() / 1000
    for batch in BATCHES:
        table.section(f"2. DAN 8x{WIDTH} + 5% skips ({edges:.0f}k edges), fwd+bwd, batch {batch}")
        inputs = _inputs(batch, device)
        torch.manual_seed(SEED)
        dense = ConcatMLP(FEATURES, OUTPUTS, [WIDTH] * 8).to(device)
        torch.manual_seed(SEED)
        model = MaskedDeepDAN(FEATURES, OUTPUTS, structure).to(device)
        if model.layer_widths != (WIDTH,) * 8:
            raise AssertionError(f"the DAG has layers {model.layer_widths}, not 8 x {WIDTH}")
        name = f"DAN 8x{WIDTH}+skips"
        _kernel_rows(table, model, dense, inputs, name, "concat MLP", 1.3, rounds)


def _kernel_rows(
    table: Table,
    model: MaskedDeepDAN,
    dense: nn.Module,
    inputs: torch.Tensor,
    name: str,
    reference: str,
    limit: float,
    rounds: int,
) -> None:
    """One row per kernel, and one for "auto" (naming its choice) that carries the goal."""
    chosen = model._kernel_for(inputs)
    for kernel in [*kernels(), "auto"]:
        model.kernel = kernel
        result = compare(train_step(model, inputs), train_step(dense, inputs), rounds=rounds)
        label = f"{name}, {kernel} kernel" if kernel != "auto" else f"{name}, auto -> {chosen}"
        goal = Goal(limit, at_most=True) if kernel == "auto" else None
        table.add(
            Row(
                f"{label}: pypaddle / {reference}",
                result.subject,
                result.reference,
                result.ratio,
                goal,
            )
        )
    model.kernel = "auto"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="the CUDA device (default cuda)")
    parser.add_argument("--quick", action="store_true", help="fewer timing rounds")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print(
            "benchmarks/gpu.py needs a CUDA GPU, and torch sees none here "
            f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'no'}); "
            "run it on a machine with one, or run benchmarks/run.py for the CPU",
            file=sys.stderr,
        )
        return 2
    device = torch.device(args.device)
    torch.cuda.set_device(device)
    properties = torch.cuda.get_device_properties(device)
    triton_version = "not installed"
    if triton_kernel.available():
        import triton

        triton_version = triton.__version__
    print(
        f"pypaddle {pypaddle.__version__} | torch {torch.__version__} (CUDA "
        f"{torch.version.cuda}) | triton {triton_version} | Python "
        f"{platform.python_version()} | {properties.name}, "
        f"{properties.multi_processor_count} SMs | TF32 matmul "
        f"{'on' if torch.backends.cuda.matmul.allow_tf32 else 'off'}"
    )

    agree = True
    if triton_kernel.available():
        print("triton kernel against torch kernel on this GPU (outputs and all gradients):")
        torch.manual_seed(SEED)
        for label, structure in [
            ("NWS(200, 4, 0.5)", oriented_newman_watts_strogatz(200, 4, 0.5, seed=SEED)),
            (
                f"8x{WIDTH} + skips",
                layered_random_dag(8, WIDTH, density=0.3, skip_density=0.05, seed=SEED),
            ),
        ]:
            model = MaskedDeepDAN(FEATURES, OUTPUTS, structure).to(device)
            for batch in (1, 37, 256):
                agree &= check_kernels_agree(model, _inputs(batch, device), f"{label}, {batch}")
        if not agree:
            print("MISMATCH: the triton kernel disagrees with the torch kernel", file=sys.stderr)
            return 1
    print(
        "\ntimes are medians per call (forward+backward, synchronised); a pair is timed in "
        "interleaved rounds and its ratio is the median of the per-round ratios\n"
    )
    rounds = 9 if args.quick else 31
    table = Table()
    bench_small_world(table, device, rounds=rounds)
    bench_layered_skips(table, device, rounds=rounds)
    table.summary()
    return 0


if __name__ == "__main__":
    sys.exit(main())
