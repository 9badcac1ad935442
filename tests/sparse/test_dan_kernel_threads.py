"""The compiled DAN kernel on several threads (issue 13, "All cores").

The batch is cut into one block of samples per torch thread and every block runs the
whole graph on its own thread; gradients are the blocks' partial sums added in block
order. Checked here: the same outputs and gradients as the torch kernel at 1, 2 and 3
threads on random DAGs with skip connections, bit-identical repeats at a fixed thread
count, the blocks themselves, and how ``kernel="auto"`` weighs the thread count.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import networkx as nx
import numpy as np
import pytest
import torch
from torch import nn

import pypaddle.sparse._dan_kernel as torch_kernel
import pypaddle.sparse._dan_numba as compiled
from pypaddle.sparse import MaskedDeepDAN

pytestmark = pytest.mark.skipif(not compiled.available(), reason="numba is not installed")

THREAD_COUNTS = [1, 2, 3]
BATCH = 70  # 3 threads: blocks of 16, 32 and 22 samples (bounds at multiples of 16)


@pytest.fixture(autouse=True)
def _restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _share_any_work(monkeypatch, request):
    """The graphs here are small: share their work between threads all the same."""
    if request.node.name != "test_too_little_work_is_not_shared":
        monkeypatch.setattr(compiled, "MIN_SHARED_SECONDS", 0.0)


OPENMP = compiled._openmp() is not None
"""Whether the blocks run on a team of torch's OpenMP runtime here (GNU OpenMP, Linux)."""


@pytest.fixture(params=["openmp", "python threads"])
def runner(request, monkeypatch):
    """Every check once with the blocks on torch's OpenMP team (where torch has GNU
    OpenMP) and once on the pool of Python threads (everywhere else)."""
    if request.param == "openmp" and not OPENMP:
        pytest.skip("torch does not run on GNU OpenMP here")
    if request.param == "python threads":
        monkeypatch.setattr(compiled, "_openmp", lambda: None)
    return request.param


def layered_with_skips(widths, density, skip_density, seed):
    """Consecutive layers joined with ``density``, every earlier layer with ``skip_density``;
    every vertex after the first layer keeps an edge from the layer before it."""
    rng = np.random.default_rng(seed)
    starts = np.cumsum([0, *widths])
    structure = nx.DiGraph()
    structure.add_nodes_from(range(int(starts[-1])))
    for layer in range(1, len(widths)):
        for earlier in range(layer):
            chance = density if earlier == layer - 1 else skip_density
            block = rng.random((widths[earlier], widths[layer])) < chance
            if earlier == layer - 1:
                block[rng.integers(widths[earlier], size=widths[layer]), range(widths[layer])] = 1
            sources, targets = np.nonzero(block)
            structure.add_edges_from(
                zip((sources + starts[earlier]).tolist(), (targets + starts[layer]).tolist())
            )
    return structure


def random_dag(seed):
    """A random DAG (G(n, p) oriented low -> high) with an isolated vertex: sinks in several
    layers, not contiguous, and skips of every length."""
    graph = nx.gnp_random_graph(45, 0.12, seed=seed)
    structure = nx.DiGraph()
    structure.add_nodes_from(range(46))
    structure.add_edges_from((min(u, v), max(u, v)) for u, v in graph.edges)
    return structure


STRUCTURES = {
    "layered+skips": lambda: layered_with_skips([12, 10, 14, 9, 11], 0.4, 0.15, seed=1),
    "gnp": lambda: random_dag(seed=2),
    "gnp-2": lambda: random_dag(seed=7),
}


def _run(structure, kernel, threads, activation=nn.ReLU, dtype=torch.float64, prune=True):
    """Output, input gradient, weight and bias gradients of one training step."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = MaskedDeepDAN(6, 3, structure, activation=activation, kernel=kernel).to(dtype)
    if prune:
        model.layers_main_hidden[2].mask[:, ::2] = False
        model.layers_main_hidden[1].prune_neurons([0])
    x = torch.randn(BATCH, 6, generator=torch.Generator().manual_seed(1), dtype=dtype)
    x.requires_grad_(True)
    output = model(x)
    (output.square().sum() + output.sum()).backward()
    assert model._kernel_for(x.detach()) == kernel
    return output.detach(), x.grad, model.hidden_weight.grad, model.hidden_bias.grad


@pytest.mark.usefixtures("runner")
class TestAgainstTheTorchKernel:
    @pytest.mark.parametrize("threads", THREAD_COUNTS)
    @pytest.mark.parametrize("name", list(STRUCTURES))
    def test_outputs_and_every_gradient(self, name, threads):
        structure = STRUCTURES[name]()
        expected = _run(structure, "torch", threads)
        got = _run(structure, "compiled", threads)
        for what, ours, theirs in zip(("output", "input", "weight", "bias"), got, expected):
            torch.testing.assert_close(ours, theirs, msg=lambda text, what=what: f"{what}: {text}")

    @pytest.mark.parametrize("threads", [2, 3])
    @pytest.mark.parametrize("activation", [nn.Tanh, nn.Sigmoid, nn.Identity])
    def test_every_activation(self, activation, threads):
        structure = STRUCTURES["layered+skips"]()
        expected = _run(structure, "torch", threads, activation)
        got = _run(structure, "compiled", threads, activation)
        for ours, theirs in zip(got, expected):
            torch.testing.assert_close(ours, theirs)

    @pytest.mark.parametrize("threads", [2, 3])
    def test_float32(self, threads):
        structure = STRUCTURES["gnp"]()
        expected = _run(structure, "torch", threads, dtype=torch.float32)
        got = _run(structure, "compiled", threads, dtype=torch.float32)
        for ours, theirs in zip(got, expected):
            torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)

    def test_masked_entries_get_exactly_zero_gradient_on_every_thread_count(self):
        structure = STRUCTURES["layered+skips"]()
        for threads in THREAD_COUNTS:
            torch.set_num_threads(threads)
            torch.manual_seed(0)
            model = MaskedDeepDAN(6, 3, structure, kernel="compiled").double()
            model.layers_main_hidden[2].mask[:, ::2] = False
            model.layers_main_hidden[3].prune_neurons([1])
            model(torch.randn(BATCH, 6, dtype=torch.float64)).sum().backward()
            assert bool((model.hidden_weight.grad[~model.hidden_mask] == 0).all())
            assert bool((model.hidden_bias.grad[~model.hidden_bias_mask] == 0).all())

    def test_one_block_per_thread_and_the_small_batch_rule(self):
        structure = STRUCTURES["gnp"]()
        torch.set_num_threads(3)
        model = MaskedDeepDAN(6, 3, structure, kernel="compiled").double()
        for batch in (1, 15, 16, 40, 48, 70):
            x = torch.randn(batch, 6, dtype=torch.float64, requires_grad=True)
            model(x).sum().backward()
            reference = MaskedDeepDAN(6, 3, structure, kernel="torch").double()
            reference.load_state_dict(model.state_dict())
            torch.testing.assert_close(model(x), reference(x))


@pytest.mark.usefixtures("runner")
class TestDeterminism:
    @pytest.mark.parametrize("threads", [1, 2, 3])
    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    def test_two_runs_are_bit_identical(self, threads, dtype):
        structure = STRUCTURES["layered+skips"]()
        first = _run(structure, "compiled", threads, dtype=dtype)
        second = _run(structure, "compiled", threads, dtype=dtype)
        for one, other in zip(first, second):
            assert torch.equal(one, other)

    def test_the_blocks_run_on_as_many_threads(self, monkeypatch, runner):
        seen = []
        in_team, in_blocks = compiled._in_team, compiled._in_blocks

        def team_spy(task, record, count):
            ran = in_team(task, record, count)
            seen.append(("openmp", count, ran))
            return ran

        def blocks_spy(function, count, arguments):
            seen.append(("python threads", count, True))
            in_blocks(function, count, arguments)

        monkeypatch.setattr(compiled, "_in_team", team_spy)
        monkeypatch.setattr(compiled, "_in_blocks", blocks_spy)
        _run(STRUCTURES["gnp"](), "compiled", 3)
        if runner == "openmp":
            assert seen == [("openmp", 3, True)] * 2  # forward and backward
        else:
            assert seen == [("openmp", 3, False), ("python threads", 3, True)] * 2
            assert compiled._pool(2)._max_workers >= 2

    @pytest.mark.skipif(not OPENMP, reason="torch does not run on GNU OpenMP here")
    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    def test_openmp_and_python_threads_agree(self, monkeypatch, dtype):
        # The same blocks and the same loops, compiled into two callers: sums may differ
        # in the last bits (a process always takes the same one of the two).
        structure = STRUCTURES["layered+skips"]()
        on_team = _run(structure, "compiled", 3, dtype=dtype)
        monkeypatch.setattr(compiled, "_openmp", lambda: None)
        on_pool = _run(structure, "compiled", 3, dtype=dtype)
        for one, other in zip(on_team, on_pool):
            torch.testing.assert_close(one, other)

    def test_python_threads_may_run_models_at_once(self):
        torch.set_num_threads(2)
        structure = STRUCTURES["layered+skips"]()
        torch.manual_seed(0)
        models = [MaskedDeepDAN(6, 3, structure, kernel="compiled") for _ in range(5)]
        for model in models[1:]:
            model.load_state_dict(models[0].state_dict())
        x = torch.randn(BATCH, 6, generator=torch.Generator().manual_seed(1))
        results = [None] * len(models)

        def work(index):
            output = models[index](x)
            output.sum().backward()
            results[index] = (output.detach(), models[index].hidden_weight.grad)

        work(0)  # alone first
        workers = [threading.Thread(target=work, args=(index,)) for index in range(1, 5)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        for result in results[1:]:
            assert all(torch.equal(one, other) for one, other in zip(result, results[0]))


class TestWhereTheBlocksRun:
    """torch's OpenMP team where torch runs on a GNU OpenMP this process has loaded, the
    pool of Python threads wherever that cannot be told for sure."""

    def test_no_team_without_openmp_in_torch(self, monkeypatch):
        monkeypatch.setattr(torch._C, "has_openmp", False)
        assert compiled._openmp.__wrapped__() is None

    def test_no_team_where_the_loaded_libraries_cannot_be_read(self, monkeypatch):
        def unreadable(*args, **kwargs):
            raise OSError("no /proc here")

        monkeypatch.setattr(torch._C, "has_openmp", True)
        monkeypatch.setattr("builtins.open", unreadable)
        assert compiled._openmp.__wrapped__() is None

    def test_a_library_path_with_spaces(self, monkeypatch, tmp_path):
        if not OPENMP:
            pytest.skip("torch does not run on GNU OpenMP here")
        with open("/proc/self/maps") as maps:
            real = [line for line in maps if "/libgomp" in line]
        if not real:
            pytest.skip("torch has not loaded GNU OpenMP here")
        folder = tmp_path / "with spaces"
        folder.mkdir()
        library = folder / "libgomp.so.1"
        library.symlink_to(real[0].split(maxsplit=5)[5].strip())
        maps = tmp_path / "maps"
        maps.write_text(f"0-1 r-xp 0 0:0 1 {library}\n")
        real_open = open
        monkeypatch.setattr(
            "builtins.open",
            lambda path, *args, **kwargs: real_open(
                maps if path == "/proc/self/maps" else path, *args, **kwargs
            ),
        )
        assert compiled._openmp.__wrapped__() is not None

    def test_no_team_when_two_runtimes_are_loaded(self, monkeypatch, tmp_path):
        maps = tmp_path / "maps"
        maps.write_text("0-1 r-xp 0 0:0 1 /a/libgomp.so.1\n0-1 r-xp 0 0:0 1 /b/libgomp.so.1\n")
        real_open = open
        monkeypatch.setattr(torch._C, "has_openmp", True)
        monkeypatch.setattr(
            "builtins.open",
            lambda path, *args, **kwargs: real_open(
                maps if path == "/proc/self/maps" else path, *args, **kwargs
            ),
        )
        assert compiled._openmp.__wrapped__() is None

    def test_nothing_runs_on_a_team_where_there_is_none(self, monkeypatch):
        monkeypatch.setattr(compiled, "_openmp", lambda: None)
        assert compiled._in_team(None, [0] * 6, 2) is False


class TestForkedChildren:
    """GNU OpenMP cannot start a team in a child forked from a process that ran one."""

    def test_a_forked_child_runs_its_blocks_on_python_threads(self):
        script = textwrap.dedent(
            """
            import multiprocessing, torch, networkx as nx
            from pypaddle.sparse import MaskedDeepDAN, _dan_numba as compiled
            compiled.MIN_SHARED_SECONDS = 0.0
            torch.set_num_threads(2)
            graph = nx.gnp_random_graph(40, 0.15, seed=0)
            structure = nx.DiGraph((min(u, v), max(u, v)) for u, v in graph.edges)
            model = MaskedDeepDAN(6, 3, structure, kernel="compiled").double()
            x = torch.randn(70, 6, dtype=torch.float64)
            model(x).sum().backward()  # the parent runs its blocks (on its team, on Linux)
            expected = model.hidden_weight.grad.clone()

            def step(queue):
                model.zero_grad()
                model(x).sum().backward()
                queue.put(model.hidden_weight.grad.tolist())

            context = multiprocessing.get_context("fork")
            queue = context.Queue()
            child = context.Process(target=step, args=(queue,))
            child.start()
            grad = torch.tensor(queue.get(timeout=60), dtype=torch.float64)
            child.join(timeout=60)
            assert child.exitcode == 0, child.exitcode
            torch.testing.assert_close(grad, expected)
            print("child ok")
            """
        )
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert "child ok" in done.stdout

    def test_the_child_flag_turns_the_team_off(self, monkeypatch):
        monkeypatch.setattr(compiled, "_FORKED", [True])
        assert compiled._in_team(None, [0] * 6, 2) is False


@pytest.mark.usefixtures("runner")
def test_activations_saved_in_another_layout(runner):
    # A saved-tensor hook may hand the activations back column-major.
    def column_major(tensor):
        return tensor.t().contiguous().t() if tensor.dim() == 2 else tensor

    results = []
    for kernel in ("compiled", "torch"):
        with torch.autograd.graph.saved_tensors_hooks(lambda tensor: tensor, column_major):
            results.append(_run(STRUCTURES["gnp"](), kernel, 2))
    for ours, theirs in zip(*results):
        torch.testing.assert_close(ours, theirs)


class TestBlocks:
    @pytest.mark.parametrize(
        ("batch", "threads", "count"),
        [(1, 4, 1), (15, 4, 1), (16, 4, 1), (32, 4, 2), (70, 3, 3), (256, 2, 2), (256, 64, 16)],
    )
    def test_one_block_per_thread_of_at_least_the_alignment(self, batch, threads, count):
        assert compiled.blocks(batch, threads) == count

    @pytest.mark.parametrize(("batch", "count"), [(70, 3), (256, 2), (256, 3), (100, 6), (17, 1)])
    def test_bounds_cover_the_batch_in_aligned_near_equal_blocks(self, batch, count):
        bounds = compiled.block_bounds(batch, count)
        assert bounds.tolist()[0] == 0
        assert bounds.tolist()[-1] == batch
        assert len(bounds) == count + 1
        sizes = np.diff(bounds)
        assert (sizes > 0).all()
        assert (bounds[1:-1] % compiled.BLOCK_ALIGN == 0).all()
        assert sizes.max() - sizes.min() <= compiled.BLOCK_ALIGN + batch % compiled.BLOCK_ALIGN

    def test_too_little_work_is_not_shared(self):
        enough = int(compiled.MIN_SHARED_SECONDS / compiled.ENTRY_SECONDS / 256) + 1
        assert compiled.blocks(256, 4, active=enough) == 4
        assert compiled.blocks(256, 4, active=enough // 2) == 1
        assert compiled.blocks(256, 4) == 4

    def test_torch_threads_are_the_default(self, monkeypatch):
        monkeypatch.setattr(torch, "get_num_threads", lambda: 5)
        assert compiled.threads() == 5
        assert compiled.blocks(256) == 5


class TestAutoWeighsTheThreads:
    """The cost model (no clock): BLAS divides over the threads, the compiled loop over the
    blocks a batch makes; the torch kernel's calls per layer and the compiled loop's
    launches stay."""

    @staticmethod
    def model_and_edges(widths, density, seed=0):
        model = MaskedDeepDAN(8, 2, layered_with_skips(widths, density, 0.0, seed))
        return model, model._active_edges()

    def test_costs_scale_as_documented(self, monkeypatch):
        model, edges = self.model_and_edges([64] * 4, 0.5)
        monkeypatch.setattr(torch_kernel, "cores", lambda: 8)
        plan, active = model.plan, int(edges[0][-1])
        packed = plan.blocks[-1][1] - plan.blocks[0][1]
        layers = len(plan.widths) - 1
        for threads in (1, 2, 8, 16):
            blas = 1 + torch_kernel.BLAS_EFFICIENCY * (min(threads, 8) - 1)
            assert torch_kernel.cpu_cost(plan, 256, threads) == pytest.approx(
                torch_kernel.PACKED_ENTRY_SECONDS * packed * 256 / blas
                + torch_kernel.LAYER_SECONDS * layers
            )
        assert compiled.cost(edges, 256, 1) == pytest.approx(compiled.ENTRY_SECONDS * active * 256)
        for threads in (2, 4, 16):
            count = compiled.blocks(256, threads)
            shared = 1 + compiled.BLOCK_EFFICIENCY * (min(count, 8) - 1)
            assert compiled.cost(edges, 256, threads) == pytest.approx(
                compiled.ENTRY_SECONDS * active * 256 / shared + compiled.LAUNCH_SECONDS
            )
        # A batch of 16 is one block: no thread helps the compiled loop.
        assert compiled.cost(edges, 16, 4) == compiled.cost(edges, 16, 1)

    @pytest.mark.parametrize(
        ("workers", "speedup"), [(1, 1.0), (2, 1.5), (4, 2.5), (8, 4.5), (9, 4.5)]
    )
    def test_each_thread_after_the_first_adds_a_fraction_of_a_core(
        self, monkeypatch, workers, speedup
    ):
        monkeypatch.setattr(torch_kernel, "cores", lambda: 8)
        assert torch_kernel.speedup(workers, 0.5) == pytest.approx(speedup)

    def test_a_small_batch_on_many_threads_goes_to_blas(self, monkeypatch):
        monkeypatch.setattr(torch_kernel, "cores", lambda: 16)
        # Few wide layers at 19 %, where the compiled loop wins on one thread.
        model, edges = self.model_and_edges([225] * 3, 0.19)
        x = torch.randn(32, 8)  # two blocks at most
        assert compiled.preferred(model.plan, edges, 32, 1)
        assert not compiled.preferred(model.plan, edges, 32, 16)
        monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
        assert model._kernel_for(x) == "compiled"
        monkeypatch.setattr(torch, "get_num_threads", lambda: 16)
        assert model._kernel_for(x) == "torch"

    @pytest.mark.filterwarnings("ignore::pypaddle.errors.StructureWarning")  # a chain, on purpose
    def test_a_deep_narrow_graph_stays_compiled_on_any_thread_count(self, monkeypatch):
        model = MaskedDeepDAN(8, 2, nx.path_graph(60, create_using=nx.DiGraph))
        x = torch.randn(256, 8)
        for threads in (1, 2, 4, 16):
            monkeypatch.setattr(torch, "get_num_threads", lambda threads=threads: threads)
            assert model._kernel_for(x) == "compiled"

    def test_wide_dense_layers_stay_with_blas_on_any_thread_count(self, monkeypatch):
        model, _ = self.model_and_edges([128] * 3, 0.9)
        x = torch.randn(256, 8)
        for threads in (1, 2, 4, 16):
            monkeypatch.setattr(torch, "get_num_threads", lambda threads=threads: threads)
            assert model._kernel_for(x) == "torch"
