"""Experiment configs: a TOML file -> a validated :class:`ExperimentConfig`, and back.

A config has the top-level keys ``name``, ``seed`` and ``description`` and the tables
``[data]``, ``[model]``, ``[training]``, ``[sparsify]`` and ``[evaluation]``; every key
has a default except the files a data set needs. Everything is checked when the config is
loaded, before anything trains: an unknown key, a wrong type or a value out of range
raises a :class:`~pypaddle.errors.ConfigError` that names the key, the bad value and what
is allowed.

Examples
--------
>>> config = parse_config({"seed": 1, "model": {"name": "ffn", "hidden_layers": [32]}})
>>> config.model.name, config.model.options.hidden_layers, config.training.epochs
('ffn', [32], 10)
>>> parse_config({"training": {"epochs": "ten"}})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
pypaddle.errors.ConfigError: training.epochs = 'ten' has the wrong type; give an int (passes ...)
"""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pypaddle._core.seeds import check_seed
from pypaddle.errors import ConfigError
from pypaddle.experiments import methods, models, sources  # noqa: F401  (registers components)
from pypaddle.experiments.devices import PRECISIONS, check_device_name
from pypaddle.experiments.options import option, options_to_dict, parse_options
from pypaddle.experiments.registry import DATA, METHODS, MODELS, Component, Registry

__all__ = [
    "EvaluationOptions",
    "ExperimentConfig",
    "Section",
    "TrainingOptions",
    "load_config",
    "parse_config",
    "to_toml",
]


@dataclass(frozen=True)
class TrainingOptions:
    """The ``[training]`` table: optimizer, learning rate, epochs, batch size, device."""

    optimizer: str = option(
        "adam",
        choices=("adam", "adamw", "sgd"),
        help="the optimizer: Adam, AdamW with decoupled weight decay, or SGD; a fresh one "
        "each round",
    )
    learning_rate: float = option(1e-3, above=0.0, help="the optimizer's step size, lr")
    epochs: int = option(
        10,
        minimum=1,
        help="passes over the training set in round 0; later rounds train the method's "
        "retrain_epochs",
    )
    batch_size: int = option(
        32,
        minimum=1,
        help="training samples per optimizer step (shared out over the processes of "
        "data-parallel training)",
    )
    weight_decay: float = option(
        0.0,
        minimum=0.0,
        help="the optimizer's weight decay factor (decoupled for AdamW); 0: none",
    )
    momentum: float = option(
        0.0, minimum=0.0, below=1.0, help="SGD's momentum factor; 0: none (Adam ignores it)"
    )
    device: str = option(
        "auto",
        check=check_device_name,
        help="where to train: 'auto' (CUDA when available, else the CPU), 'cpu', 'cuda' or "
        "'cuda:N' (GPU N of the visible ones); data, model, masks and optimizer state go there",
    )
    precision: str = option(
        "32",
        choices=PRECISIONS,
        help="'32' (float32) or 'bf16' (bfloat16 autocast of forward and loss; weights, "
        "masks and optimizer state stay float32)",
    )
    threads: int = option(
        1,
        minimum=1,
        help="torch CPU threads while training (torch.set_num_threads), 1 to the machine's "
        "cores; 1 (small models gain nothing from more, and it keeps a run's numbers the "
        "same on every machine)",
    )


@dataclass(frozen=True)
class EvaluationOptions:
    """The ``[evaluation]`` table: what is evaluated and written during a run."""

    every_epoch: bool = option(True, help="evaluate on the test set after every epoch")
    checkpoints: bool = option(True, help="save the model with its masks after every round")
    structures: str = option(
        "final",
        choices=("rounds", "final", "none"),
        help="GraphML of the prior and of every round, of the last round, or none",
    )
    plots: bool = option(True, help="draw the PNG plots at the end")
    tensorboard: bool | None = option(
        None,
        help="TensorBoard event files in tensorboard/ (unset: if the tensorboard extra is "
        "installed)",
    )


@dataclass(frozen=True)
class Section:
    """A chosen component of a registry and its validated options."""

    component: Component
    options: Any
    key: str

    @property
    def name(self) -> str:
        return self.component.name

    def to_dict(self) -> dict[str, Any]:
        return {self.key: self.component.name, **options_to_dict(self.options)}


@dataclass(frozen=True)
class ExperimentConfig:
    """A whole experiment, validated; :meth:`to_dict` gives the resolved config."""

    name: str
    seed: int
    description: str
    data: Section
    model: Section
    training: TrainingOptions
    sparsify: Section
    evaluation: EvaluationOptions

    def to_dict(self) -> dict[str, Any]:
        """Every key with its value, defaults included (what ``config.toml`` holds)."""
        return {
            "name": self.name,
            "seed": self.seed,
            "description": self.description,
            "data": self.data.to_dict(),
            "model": self.model.to_dict(),
            "training": options_to_dict(self.training),
            "sparsify": self.sparsify.to_dict(),
            "evaluation": options_to_dict(self.evaluation),
        }


@dataclass(frozen=True)
class _TopLevel:
    name: str = option(
        "experiment",
        help="the experiment's name: the title of its results table and plots, kept in its results",
    )
    seed: int = option(
        0,
        minimum=0,
        check=check_seed,
        help="seeds everything random in a run: data split, structure generator, initial "
        "weights, batch order, random pruning",
    )
    description: str = option(
        "", help="free text kept with the config (config.toml); the run does not read it"
    )


_TABLES = ("data", "model", "training", "sparsify", "evaluation")
_DEFAULT_CHOICE = {"data": "digits", "model": "dan", "sparsify": "none"}


def _section(registry: Registry, table: Any, path: str, base: Path | None) -> Section:
    component, options = registry.parse(table, path, default=_DEFAULT_CHOICE[path], base=base)
    return Section(component, options, registry.key)


def parse_config(table: dict[str, Any], *, base: str | Path | None = None) -> ExperimentConfig:
    """Validate a config given as a dict (as :mod:`tomllib` reads it).

    ``base`` is the folder relative file names are resolved against (the config file's).
    """
    if not isinstance(table, dict):
        raise ConfigError(f"a config must be a table of keys, got {type(table).__name__}")
    base = Path(base) if base is not None else None
    top = parse_options(_TopLevel, table, "", ignore=_TABLES)
    return ExperimentConfig(
        name=top.name,
        seed=top.seed,
        description=top.description,
        data=_section(DATA, table.get("data", {}), "data", base),
        model=_section(MODELS, table.get("model", {}), "model", base),
        training=parse_options(TrainingOptions, table.get("training", {}), "training"),
        sparsify=_section(METHODS, table.get("sparsify", {}), "sparsify", base),
        evaluation=parse_options(EvaluationOptions, table.get("evaluation", {}), "evaluation"),
    )


def read_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file; a ConfigError names the file and the syntax error."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"config file {str(path)!r} is a folder; give the TOML file in it")
    if not path.is_file():
        raise ConfigError(
            f"config file {str(path)!r} does not exist; give a TOML file, or the name of an "
            "example (`pypaddle examples` lists them)"
        )
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{str(path)!r} is not valid TOML: {error}") from None
    except UnicodeDecodeError:
        raise ConfigError(
            f"{str(path)!r} is not a text file in UTF-8 (TOML files are); give the TOML file"
        ) from None
    except OSError as error:
        raise ConfigError(f"config file {str(path)!r} cannot be read: {error.strerror}") from None


def load_config(path: str | Path) -> ExperimentConfig:
    """Read and validate an experiment TOML file (relative file names: from its folder)."""
    path = Path(path)
    return parse_config(read_toml(path), base=path.resolve().parent)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return repr(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(element) for element in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise ConfigError(f"cannot write {value!r} ({type(value).__name__}) to TOML")


def _key(key: str) -> str:
    bare = key.replace("_", "").replace("-", "").isalnum() and key.isascii()
    return key if bare else json.dumps(key)


def to_toml(table: dict[str, Any]) -> str:
    """Write a config dict as TOML: scalars first, then one ``[section]`` per sub-table.

    Examples
    --------
    >>> print(to_toml({"seed": 0, "model": {"name": "dan", "structure": {"n": 4}}}), end="")
    seed = 0
    <BLANKLINE>
    [model]
    name = "dan"
    structure = { n = 4 }
    >>> tomllib.loads(to_toml({"a": {"b": [1.5, "x"]}}))
    {'a': {'b': [1.5, 'x']}}
    """
    lines = [f"{_key(key)} = {_toml_value(value)}" for key, value in table.items()]
    lines = [line for line, value in zip(lines, table.values()) if not isinstance(value, dict)]
    for key, value in table.items():
        if isinstance(value, dict):
            lines += ["", f"[{_key(key)}]"]
            lines += [f"{_key(k)} = {_toml_value(v)}" for k, v in value.items()]
    return "\n".join(lines) + "\n"
