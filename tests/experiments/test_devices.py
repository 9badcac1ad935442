"""Devices, precision and threads of experiments (issue 13), tested on the CPU.

A GPU machine is simulated where the choice depends on it: ``torch.cuda.is_available``
and ``torch.cuda.device_count`` are monkeypatched; nothing here touches CUDA itself.
"""

import copy
import importlib.machinery
import json
import re
import types

import pytest
import torch
import torch.nn.functional as F

from bad_values import NOT_COUNTS, value_id
from pypaddle.errors import ConfigError
from pypaddle.experiments import backends, parse_config, run_experiment
from pypaddle.experiments._training import evaluate, train_epoch
from pypaddle.experiments.devices import (
    Placement,
    autocast,
    check_device_name,
    ddp_backend,
    placement,
    rank_device,
    resolve_device,
    spread_device,
)
from pypaddle.experiments.engine import load_checkpoint
from pypaddle.experiments.run import prepare
from pypaddle.experiments.sweep import parse_sweep, run_sweep
from pypaddle.sparse import MaskedDeepDAN, MaskedLinear

CPU = torch.device("cpu")


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)


@pytest.fixture
def two_gpus(monkeypatch):
    """A machine that looks like it has two GPUs (nothing may compute on them)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)


def _files(folder):
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


class TestConfigKeys:
    def test_defaults(self):
        training = parse_config({}).training
        assert (training.device, training.precision, training.threads) == ("auto", "32", 1)
        assert parse_config({}).to_dict()["training"]["device"] == "auto"

    @pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:0", "cuda:7"])
    def test_device_forms_are_read_anywhere(self, device):
        # Read on a machine without these GPUs: only the form is checked here.
        assert parse_config({"training": {"device": device}}).training.device == device

    @pytest.mark.parametrize(
        ("device", "message"),
        [
            ("gpu", "is not a device torch knows"),
            ("CUDA", "is not a device torch knows"),
            ("cuda:-1", "is not a device torch knows"),
            ("cuda:x", "is not a device torch knows"),
            (" cuda", "is not a device torch knows"),
            ("", "is not a device torch knows"),
            ("mps", "is a device experiments do not run on"),
            ("meta", "is a device experiments do not run on"),
            ("cpu:0", "is a device experiments do not run on"),
        ],
    )
    def test_unknown_devices(self, device, message):
        with pytest.raises(ConfigError, match=message) as error:
            parse_config({"training": {"device": device}})
        assert f"training.device = {device!r}" in str(error.value)
        assert "'auto'" in str(error.value)
        assert "'cuda:N'" in str(error.value)

    @pytest.mark.parametrize("value", [3, 1.5, True, ["cpu"], {"type": "cpu"}], ids=value_id)
    def test_device_must_be_a_string(self, value):
        with pytest.raises(ConfigError, match=r"training.device .* has the wrong type"):
            parse_config({"training": {"device": value}})

    @pytest.mark.parametrize("value", ["16", "fp16", "bf", 32, "float32", None], ids=value_id)
    def test_precision(self, value):
        with pytest.raises(ConfigError, match=re.escape("training.precision")):
            parse_config({"training": {"precision": value}})

    @pytest.mark.parametrize("value", [0, *NOT_COUNTS], ids=value_id)
    def test_threads_are_counts_of_at_least_one(self, value):
        with pytest.raises(ConfigError, match=re.escape("training.threads")):
            parse_config({"training": {"threads": value}})


class TestResolve:
    def test_auto_is_the_cpu_without_cuda(self, no_gpu):
        assert resolve_device("auto") == CPU
        assert placement("auto").device == CPU

    def test_auto_is_the_first_gpu_with_cuda(self, two_gpus):
        assert resolve_device("auto") == torch.device("cuda", 0)

    def test_gpu_indices(self, two_gpus):
        assert resolve_device("cuda") == torch.device("cuda", 0)
        assert resolve_device("cuda:1") == torch.device("cuda", 1)
        with pytest.raises(ConfigError) as error:
            resolve_device("cuda:2", "training.device")
        message = str(error.value)
        assert "training.device = 'cuda:2' names GPU 2, but 2 GPUs are visible" in message
        assert "(cuda:0, cuda:1)" in message

    @pytest.mark.parametrize("device", ["cuda", "cuda:0", "cuda:1"])
    def test_cuda_without_cuda(self, no_gpu, device):
        with pytest.raises(ConfigError) as error:
            resolve_device(device, "training.device")
        message = str(error.value)
        assert f"training.device = {device!r} asks for a CUDA GPU" in message
        assert "torch sees no CUDA GPU here" in message
        assert "give 'cpu', or 'auto'" in message

    def test_bf16_on_a_gpu_without_it(self, two_gpus, monkeypatch):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: False)
        with pytest.raises(
            ConfigError, match=re.escape("training.precision = 'bf16', but cuda:1 does")
        ):
            placement("cuda:1", "bf16")
        assert placement("cuda:1", "32").device == torch.device("cuda", 1)

    def test_bf16_on_the_cpu(self):
        assert placement("cpu", "bf16") == Placement(CPU, "bf16", 1)

    def test_threads_up_to_the_cores(self, monkeypatch):
        monkeypatch.setattr("os.cpu_count", lambda: 4)
        assert placement("cpu", "32", 4).threads == 4
        for threads in (0, 5, 64):
            with pytest.raises(ConfigError) as error:
                placement("cpu", "32", threads)
            assert f"training.threads = {threads} is not a thread count" in str(error.value)
            assert "it has 4 cores (os.cpu_count()); give 1 to 4" in str(error.value)

    def test_threads_scope_restores_the_count(self):
        before = torch.get_num_threads()
        with Placement(CPU, threads=1).threads_scope():
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == before

    def test_check_device_name_refuses_non_strings(self):
        with pytest.raises(ConfigError, match="device = 0 must be a string"):
            check_device_name(0)


class TestRefusedBeforeAnyWork:
    """A placement this machine cannot give is refused before anything is written."""

    @pytest.mark.parametrize(
        ("training", "message"),
        [
            ({"device": "cuda"}, "asks for a CUDA GPU"),
            ({"device": "cuda:3"}, "asks for a CUDA GPU"),
            ({"threads": 100_000}, "is not a thread count for this machine"),
        ],
    )
    def test_run_writes_nothing(self, tmp_path, tiny_config, no_gpu, training, message):
        config = {**tiny_config, "training": {**tiny_config["training"], **training}}
        new, empty = tmp_path / "new", tmp_path / "empty"
        empty.mkdir()
        for folder in (new, empty):
            with pytest.raises(ConfigError, match=message):
                run_experiment(config, folder, quiet=True)
        assert not new.exists()
        assert _files(empty) == []

    @pytest.mark.parametrize(
        "device",
        ["gpu", "cuda:9", "cuda:-1", "", "mps", 0, 1.5, True, b"cuda", ["cpu"], object()],
        ids=value_id,
    )
    def test_bad_devices_given_to_run(self, tmp_path, tiny_config, no_gpu, device):
        before = copy.deepcopy(tiny_config)
        with pytest.raises(ConfigError, match=re.escape("training.device = ")):
            run_experiment(tiny_config, tmp_path / "out", quiet=True, device=device)
        assert tiny_config == before
        assert not (tmp_path / "out").exists()

    @pytest.mark.parametrize("threads", [0, 3, 100, *NOT_COUNTS], ids=value_id)
    def test_bad_thread_counts(self, tmp_path, tiny_config, monkeypatch, threads):
        monkeypatch.setattr("os.cpu_count", lambda: 2)
        config = {**tiny_config, "training": {**tiny_config["training"], "threads": threads}}
        before = copy.deepcopy(tiny_config)
        with pytest.raises(ConfigError, match=re.escape("training.threads")):
            run_experiment(config, tmp_path / "out", quiet=True)
        assert config["training"].pop("threads") is threads
        assert config == before
        assert not (tmp_path / "out").exists()

    def test_index_beyond_the_visible_gpus(self, tmp_path, tiny_config, two_gpus):
        config = {**tiny_config, "training": {**tiny_config["training"], "device": "cuda:2"}}
        with pytest.raises(ConfigError, match="names GPU 2, but 2 GPUs are visible"):
            run_experiment(config, tmp_path / "out", quiet=True)
        assert not (tmp_path / "out").exists()

    def test_device_given_to_run_replaces_the_config(self, tmp_path, tiny_config, no_gpu):
        with pytest.raises(ConfigError, match=re.escape("training.device = 'cuda'")):
            run_experiment(tiny_config, tmp_path / "out", quiet=True, device="cuda")
        with pytest.raises(ConfigError, match=re.escape("training.device = 'tpu'")):
            run_experiment(tiny_config, tmp_path / "out", quiet=True, device="tpu")
        with pytest.raises(ConfigError, match=re.escape("training.precision = 'fp8'")):
            run_experiment(tiny_config, tmp_path / "out", quiet=True, precision="fp8")
        assert not (tmp_path / "out").exists()

    def test_nproc_on_one_named_gpu(self, tmp_path, tiny_config, two_gpus):
        config = {**tiny_config, "training": {**tiny_config["training"], "device": "cuda:1"}}
        with pytest.raises(ConfigError, match="names one GPU, but --nproc 2 trains on one GPU"):
            run_experiment(config, tmp_path / "out", quiet=True, nproc=2)
        config["training"]["device"] = "cuda"
        with pytest.raises(ConfigError, match="3 data-parallel processes on GPUs need 3"):
            run_experiment(config, tmp_path / "out", quiet=True, nproc=3)
        assert not (tmp_path / "out").exists()

    def test_cli_names_the_device(self, tmp_path, no_gpu):
        from typer.testing import CliRunner

        from pypaddle.cli import app

        (tmp_path / "e.toml").write_text('[model]\nname = "ffn"\nhidden_layers = [4]\n')
        result = CliRunner().invoke(
            app, ["run", str(tmp_path / "e.toml"), "--device", "cuda:1", "--out", "o"]
        )
        assert result.exit_code == 2
        assert "training.device = 'cuda:1' asks for a CUDA GPU" in result.output
        assert not (tmp_path / "o").exists()


class TestTrainingOnTheDevice:
    def test_auto_trains_on_the_cpu(self, tmp_path, tiny_config, no_gpu):
        run_experiment(tiny_config, tmp_path, quiet=True)
        result = json.loads((tmp_path / "result.json").read_text())
        assert result["device"] == "cpu"
        assert result["config"]["training"]["device"] == "auto"

    def test_device_given_to_run_is_written(self, tmp_path, tiny_config):
        rounds = run_experiment(tiny_config, tmp_path, quiet=True, device="cpu", precision="bf16")
        result = json.loads((tmp_path / "result.json").read_text())
        assert result["config"]["training"]["device"] == "cpu"
        assert result["config"]["training"]["precision"] == "bf16"
        assert 'precision = "bf16"' in (tmp_path / "config.toml").read_text()
        assert 0.0 < rounds[-1]["accuracy"] <= 1.0

    def test_prepared_moves_model_and_data(self, tiny_config):
        prepared = prepare(tiny_config)
        weight = prepared.layers[0].weight
        moved = prepared.to(CPU)
        assert moved.layers[0].weight is weight
        assert moved.split.x_train.device == CPU
        assert type(moved.split) is type(prepared.split)
        assert moved.placement == Placement(CPU, "32", 1)

    def test_checkpoints_load_on_any_device(self, tmp_path, tiny_config):
        run_experiment(tiny_config, tmp_path, quiet=True)
        checkpoint = load_checkpoint(tmp_path / "checkpoints" / "round-2.pt")
        assert checkpoint["round"] == 2
        assert {tensor.device for tensor in checkpoint["model"].values()} == {CPU}
        model = prepare(tiny_config).model.module
        model.load_state_dict(checkpoint["model"])
        masks = [name for name in checkpoint["model"] if name.endswith("mask")]
        assert masks
        for name in masks:
            assert torch.equal(model.state_dict()[name], checkpoint["model"][name])
        meta = load_checkpoint(tmp_path / "checkpoints" / "round-2.pt", map_location="meta")
        assert {tensor.device.type for tensor in meta["model"].values()} == {"meta"}
        with pytest.raises(ConfigError, match="does not exist"):
            load_checkpoint(tmp_path / "checkpoints" / "round-9.pt")


class TestBfloat16:
    """Masks under bfloat16 autocast (CPU): masked weights stay exactly zero and the output
    is the masked computation, to bfloat16's tolerance."""

    def _masked_layer(self):
        torch.manual_seed(0)
        layer = MaskedLinear(32, 8)
        with torch.no_grad():
            layer.mask.copy_(torch.rand(8, 32) < 0.3)
        layer.apply_mask()
        return layer

    def test_output_is_the_masked_computation(self):
        layer = self._masked_layer()
        x = torch.randn(16, 32)
        with torch.no_grad():
            layer.weight.add_(1.0)  # masked weights with values: the mask must hide them
        with autocast(CPU, "bf16"):
            output = layer(x)
        assert output.dtype == torch.bfloat16
        masked = layer.weight * layer.mask
        in_bf16 = F.linear(x.bfloat16(), masked.bfloat16(), layer.bias.bfloat16())
        torch.testing.assert_close(output, in_bf16)
        in_float32 = F.linear(x, masked, layer.bias)
        torch.testing.assert_close(output.float(), in_float32, rtol=0.05, atol=0.05)
        unmasked = F.linear(x, layer.weight, layer.bias)
        assert (output.float() - unmasked).abs().max() > 1

    def test_masked_weights_stay_zero_in_training(self):
        layer = self._masked_layer()
        masked = ~layer.mask
        features, labels = torch.randn(64, 32), torch.randint(0, 8, (64,))
        optimizer = torch.optim.AdamW(layer.parameters(), lr=0.1, weight_decay=0.1)
        before = layer.weight.detach().clone()
        loss = train_epoch(
            layer,
            optimizer,
            features,
            labels,
            batch_size=16,
            generator=torch.Generator().manual_seed(0),
            precision="bf16",
        )
        assert loss > 0
        assert layer.weight.dtype == torch.float32
        assert torch.all(layer.weight[masked] == 0)
        assert not torch.equal(layer.weight[~masked], before[~masked])

    def test_bf16_training_differs_from_float32(self):
        losses = {}
        for precision in ("32", "bf16"):
            layer = self._masked_layer()
            optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
            features = torch.randn(64, 32, generator=torch.Generator().manual_seed(1))
            labels = torch.arange(64) % 8
            train_epoch(
                layer,
                optimizer,
                features,
                labels,
                batch_size=16,
                generator=torch.Generator().manual_seed(0),
                precision=precision,
            )
            losses[precision] = evaluate(
                layer, features, labels, classification=True, precision=precision
            )["loss"]
        assert losses["32"] != losses["bf16"]
        assert losses["32"] == pytest.approx(losses["bf16"], rel=0.05)

    @pytest.mark.parametrize("kernel", ["torch", "compiled", "modules"])
    def test_dan_under_bf16(self, kernel):
        import networkx as nx

        structure = nx.gnp_random_graph(20, 0.3, seed=1, directed=True)
        structure = nx.DiGraph([(u, v) for u, v in structure.edges if u < v])
        torch.manual_seed(0)
        model = MaskedDeepDAN(6, 3, structure, kernel=kernel)
        with torch.no_grad():
            model.hidden_mask[::3] = False
        x = torch.randn(8, 6)
        reference = model(x)
        with autocast(CPU, "bf16"):
            output = model(x)
        torch.testing.assert_close(output.float(), reference, rtol=5e-2, atol=5e-2)


class TestSpreadAndRay:
    def test_trials_spread_over_the_gpus(self, two_gpus):
        spec = parse_sweep(
            {"sweep": {"grid": {"seed": [0, 1, 2]}}, "experiment": {"model": {"name": "ffn"}}}
        )
        devices = backends.local_devices(spec.trials)
        assert [devices[trial.id] for trial in spec.trials] == ["cuda:0", "cuda:1", "cuda:0"]
        devices = backends.local_devices(spec.trials, "cpu")
        assert set(devices.values()) == {"cpu"}
        assert spread_device("cuda:1", 0, 2) is None

    def test_no_spreading_without_gpus(self, no_gpu):
        spec = parse_sweep(
            {"sweep": {"grid": {"seed": [0, 1]}}, "experiment": {"model": {"name": "ffn"}}}
        )
        assert set(backends.local_devices(spec.trials).values()) == {None}

    def test_local_sweep_checks_devices_first(self, tmp_path, no_gpu):
        spec = parse_sweep(
            {
                "sweep": {"grid": {"seed": [0, 1]}},
                "experiment": {"model": {"name": "ffn"}, "training": {"device": "cuda"}},
            }
        )
        with pytest.raises(
            ConfigError, match=re.escape("trial 0: training.device = 'cuda' asks for a")
        ):
            run_sweep(spec, tmp_path / "sweep", quiet=True)
        with pytest.raises(ConfigError, match="device = 'gpu' is not a device torch knows"):
            run_sweep(spec, tmp_path / "sweep", quiet=True, device="gpu")
        assert not (tmp_path / "sweep").exists()

    @pytest.mark.slow
    def test_the_pool_runs_trials_on_the_device_given(self, tmp_path):
        spec = parse_sweep(
            {
                "sweep": {"grid": {"seed": [0, 1]}},
                "experiment": {
                    "model": {"name": "ffn", "hidden_layers": [4]},
                    "training": {"epochs": 1, "device": "cuda"},
                    "evaluation": {"plots": False, "checkpoints": False},
                },
            }
        )
        results = run_sweep(spec, tmp_path, workers=1, quiet=True, device="cpu")
        assert [result["device"] for result in results] == ["cpu", "cpu"]
        for trial in spec.trials:
            written = (tmp_path / "trials" / trial.id / "config.toml").read_text()
            assert 'device = "cpu"' in written

    @pytest.mark.parametrize(
        "table",
        [{"gpus_per_trial": -1}, {"cpus_per_trial": 0}, {"gpus_per_trial": "1"}],
        ids=str,
    )
    def test_resources_are_checked(self, table):
        with pytest.raises(ConfigError, match=r"sweep\.[cg]pus_per_trial"):
            parse_sweep({"sweep": table, "experiment": {}})

    def _fake_ray(self, monkeypatch):
        calls = {}

        class Task:
            def __init__(self, function, options):
                calls["options"] = options
                calls["function"] = function
                calls.setdefault("arguments", [])

            def remote(self, *arguments):
                calls["arguments"].append(arguments)
                return len(calls["arguments"]) - 1

        fake = types.ModuleType("ray")
        # A module with a spec: pypaddle asks importlib whether Ray is installed.
        fake.__spec__ = importlib.machinery.ModuleSpec("ray", None)
        vars(fake).update(
            is_initialized=lambda: False,
            init=lambda address=None, **options: calls.update(init=(address, options)),
            shutdown=lambda: calls.update(shutdown=True),
            remote=lambda **options: lambda function: Task(function, options),
            wait=lambda references, num_returns: (references[:num_returns], references[1:]),
            get=lambda reference: {"result.json": b"{}"},
            cancel=lambda reference, force: None,
        )
        monkeypatch.setitem(__import__("sys").modules, "ray", fake)
        return calls

    @pytest.mark.parametrize(
        ("resources", "device", "expected"),
        [
            ({}, None, ({"num_cpus": 1.0, "num_gpus": 0.0, "max_retries": 2}, "cpu", 2)),
            (
                {"cpus_per_trial": 4, "gpus_per_trial": 0.5},
                None,
                ({"num_cpus": 4.0, "num_gpus": 0.5, "max_retries": 2}, None, 8),
            ),
            (
                {"cpus_per_trial": 0.25, "gpus_per_trial": 2},
                "cuda",
                ({"num_cpus": 0.25, "num_gpus": 2.0, "max_retries": 2}, "cuda", 1),
            ),
        ],
    )
    def test_ray_tasks_ask_for_what_the_sweep_says(
        self, tmp_path, monkeypatch, two_gpus, resources, device, expected
    ):
        calls = self._fake_ray(monkeypatch)
        spec = parse_sweep(
            {
                "sweep": {"grid": {"seed": [0, 1]}, **resources},
                "experiment": {"model": {"name": "ffn"}},
            }
        )
        finished = []
        (tmp_path / "trials").mkdir()
        backends.run_ray(
            spec.trials,
            tmp_path / "trials",
            workers=2,
            done=lambda trial, error: finished.append((trial.index, error)),
            cpus_per_trial=spec.cpus_per_trial,
            gpus_per_trial=spec.gpus_per_trial,
            device=device,
        )
        options, trial_device, cpus = expected
        assert calls["options"] == options
        assert calls["function"] is backends.trial_files
        assert calls["arguments"] == [(trial.config, trial_device) for trial in spec.trials]
        # A local Ray has room for the workers' trials at once.
        assert calls["init"] == (
            None,
            {"include_dashboard": False, "log_to_driver": False, "num_cpus": cpus},
        )
        assert sorted(finished) == [(0, None), (1, None)]
        assert all(
            (tmp_path / "trials" / trial.id / "result.json").is_file() for trial in spec.trials
        )

    def test_a_local_ray_without_gpus_refuses_gpu_trials(self, tmp_path, monkeypatch, no_gpu):
        calls = self._fake_ray(monkeypatch)
        spec = parse_sweep(
            {"sweep": {"grid": {"seed": [0]}, "gpus_per_trial": 1}, "experiment": {}}
        )
        with pytest.raises(ConfigError, match=re.escape("no GPU for a local Ray")):
            run_sweep(spec, tmp_path / "sweep", backend="ray", quiet=True)
        assert calls == {}
        assert not (tmp_path / "sweep").exists()
        # A cluster is asked as given: its GPUs are not this machine's.
        backends.run_ray(
            spec.trials,
            tmp_path,
            workers=1,
            done=lambda trial, error: None,
            address="ray://head:10001",
            gpus_per_trial=1,
        )
        assert calls["init"] == (
            "ray://head:10001",
            {"include_dashboard": False, "log_to_driver": False},
        )
        assert calls["options"]["num_gpus"] == 1

    def test_ray_refuses_a_gpu_trial_without_gpus(self, tmp_path, monkeypatch):
        calls = self._fake_ray(monkeypatch)
        spec = parse_sweep(
            {
                "sweep": {"grid": {"seed": [0]}},
                "experiment": {"model": {"name": "ffn"}, "training": {"device": "cuda:0"}},
            }
        )
        with pytest.raises(
            ConfigError, match=re.escape("sweep.gpus_per_trial = 0 asks Ray for no GPU")
        ):
            run_sweep(spec, tmp_path / "sweep", backend="ray", quiet=True)
        assert calls == {}
        assert not (tmp_path / "sweep").exists()

    def test_ray_refuses_a_numbered_gpu_past_the_first(self, tmp_path, monkeypatch):
        calls = self._fake_ray(monkeypatch)
        spec = parse_sweep(
            {
                "sweep": {"grid": {"seed": [0]}, "gpus_per_trial": 1},
                "experiment": {"model": {"name": "ffn"}, "training": {"device": "cuda:1"}},
            }
        )
        with pytest.raises(ConfigError, match=re.escape("numbered from cuda:0; use device 'cuda'")):
            backends.ray_devices(spec.trials, 1, address="ray://head:10001")
        with pytest.raises(ConfigError, match="numbered from cuda:0"):
            run_sweep(spec, tmp_path / "sweep", backend="ray", address="ray://h:1", quiet=True)
        assert calls == {}
        assert not (tmp_path / "sweep").exists()


class TestDistributed:
    @pytest.mark.slow
    def test_torchrun_on_cpus(self, tmp_path, tiny_config):
        import os
        import subprocess
        import sys
        from pathlib import Path

        from pypaddle.experiments.config import to_toml

        (tmp_path / "e.toml").write_text(to_toml(tiny_config))
        source = str(Path(__file__).resolve().parents[2] / "src")
        environment = {**os.environ, "PYTHONPATH": os.pathsep.join([source, *sys.path])}
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        command += ["--nproc-per-node", "2", "-m", "pypaddle.experiments.distributed"]
        command += [str(tmp_path / "e.toml"), str(tmp_path / "out")]
        finished = subprocess.run(command, env=environment, capture_output=True, timeout=600)
        assert finished.returncode == 0, finished.stderr.decode()[-2000:]
        result = json.loads((tmp_path / "out" / "result.json").read_text())
        assert result["device"] == "cpu"
        assert [len(record["mask_digests_per_rank"]) for record in result["rounds"]] == [2, 2, 2]
        for record in result["rounds"]:
            assert len(set(record["mask_digests_per_rank"])) == 1
            assert len(set(record["weight_digests_per_rank"])) == 1

    def test_backend_by_device(self):
        assert ddp_backend(CPU) == "gloo"
        assert ddp_backend(torch.device("cuda", 0)) == "nccl"
        assert ddp_backend(torch.device("cuda", 3)) == "nccl"

    def test_one_gpu_per_process(self, two_gpus):
        assert rank_device(torch.device("cuda", 0), 1, 2) == torch.device("cuda", 1)
        assert rank_device(CPU, 1, 2) == CPU
        with pytest.raises(ConfigError, match=r"need 3 visible GPUs .* give --nproc 2"):
            rank_device(torch.device("cuda", 0), 0, 3)

    def test_process_group_uses_the_backend(self, monkeypatch):
        import torch.distributed as dist

        from pypaddle.experiments.distributed import process_group

        joined = []
        monkeypatch.setattr(
            dist, "init_process_group", lambda backend, **kwargs: joined.append(backend)
        )
        monkeypatch.setattr(dist, "destroy_process_group", lambda: joined.append("left"))
        monkeypatch.setattr(torch.cuda, "set_device", lambda device: joined.append(str(device)))
        with process_group(0, 2):
            pass
        with process_group(1, 2, torch.device("cuda", 1)):
            pass
        assert joined == ["gloo", "left", "cuda:1", "nccl", "left"]
