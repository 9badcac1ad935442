"""The ``pypaddle`` command: a thin shell over :mod:`pypaddle.experiments`.

Each subcommand parses its options and calls one library function inside
:func:`_answering`, which turns a :class:`~pypaddle.errors.PaddleError` into a one-line
message and exit status 2, any other error into a one-line message and exit status 1, and
Ctrl-C into a line and exit status 130; ``pypaddle --debug ...`` shows the traceback
instead. New subcommands are added to :data:`app` the same way: a function decorated
with ``@app.command()``, or a ``typer.Typer`` group added with ``app.add_typer``.

Examples
--------
From a shell::

    pypaddle demo --out demo-output --seed 0
    pypaddle demo --help
    pypaddle graph stats structure.graphml
    pypaddle graph draw structure.graphml structure.png
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

import pypaddle
import pypaddle.experiments.demo
from pypaddle.errors import ConfigError, PaddleError

__all__ = ["app", "main"]

app = typer.Typer(
    name="pypaddle",
    help="Sparse neural networks as graphs: build, prune and analyse masked PyTorch models.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
)
"""The ``pypaddle`` command as a Typer application (``pypaddle.cli.main`` runs it)."""


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"pypaddle {pypaddle.__version__}")
        raise typer.Exit()


# Set by the root callback on every invocation: show tracebacks instead of one line.
_DEBUG = False


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", callback=_print_version, is_eager=True
        ),
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the full traceback of an error.")
    ] = False,
) -> None:
    """Sparse neural networks as graphs: build, prune and analyse masked PyTorch models."""
    global _DEBUG
    _DEBUG = debug


def _fail(error: BaseException, code: int = 2, *, note: str = "") -> typer.Exit:
    message = str(error) if isinstance(error, PaddleError) else f"{type(error).__name__}: {error}"
    line = " ".join(part.strip() for part in message.splitlines()) or type(error).__name__
    typer.secho(f"error: {line}{note}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=code)


@contextlib.contextmanager
def _answering() -> Iterator[None]:
    """Turn errors into one line on stderr and an exit status (tracebacks with --debug)."""
    try:
        yield
    except typer.Exit:
        raise
    except KeyboardInterrupt as interrupt:
        if _DEBUG:
            raise
        typer.secho(f"interrupted: {interrupt or 'stopped'}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=130) from None
    except PaddleError as error:
        if _DEBUG:
            raise
        raise _fail(error) from None
    except Exception as error:
        if _DEBUG:
            raise
        note = " (pypaddle did not expect this error; --debug shows the traceback)"
        raise _fail(error, 1, note=note) from None


# The demo's options default to the values of its built-in config.
_DEMO = pypaddle.experiments.demo.builtin_config("demo")


@app.command()
def demo(
    out: Annotated[
        Path, typer.Option("--out", help="Folder for the results, GraphML, plots and checkpoints.")
    ] = Path("demo-output"),
    seed: Annotated[
        int,
        typer.Option(min=0, help="Seed of the graph, the data split, the weights, the batches."),
    ] = _DEMO["seed"],
    epochs: Annotated[int, typer.Option(min=1, help="Epochs of dense training.")] = _DEMO[
        "training"
    ]["epochs"],
    rounds: Annotated[
        int, typer.Option(min=0, help="Pruning rounds, each halving the edges.")
    ] = _DEMO["sparsify"]["rounds"],
    retrain_epochs: Annotated[
        int, typer.Option(min=0, help="Epochs of retraining after each pruning round.")
    ] = _DEMO["sparsify"]["retrain_epochs"],
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print nothing; only write the files.")
    ] = False,
) -> None:
    """Train a small-world sparse network on the digits, prune it in rounds, plot the result.

    Runs the built-in experiment `demo` with the engine of `pypaddle run`: a MaskedDeepDAN
    from a seeded small-world layered graph, trained on scikit-learn's bundled digits; each
    round removes half of its remaining edges by weight magnitude and retrains. Prints
    density against held-out accuracy and writes an experiment folder into `--out`: the
    results (`result.json`, `summary.csv`), the structures (GraphML), plots (PNG) and
    checkpoints.
    """
    with _answering():
        from pypaddle.experiments import run_demo

        run_demo(
            out, seed=seed, quiet=quiet, epochs=epochs, rounds=rounds, retrain_epochs=retrain_epochs
        )


def _log_to_stderr(quiet: bool) -> None:
    # --quiet swaps the progress bars for one plain log line per round or trial.
    if quiet:
        import logging

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")


@app.command()
def run(
    experiment: Annotated[
        str,
        typer.Argument(
            help="The experiment's TOML file, or the name of an example (`pypaddle examples`)."
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Output folder (default: runs/<name> next to the config; for an example, in "
            "the working directory).",
        ),
    ] = None,
    nproc: Annotated[
        int,
        typer.Option(
            min=1,
            help="Processes for data-parallel training (DDP: one GPU each over NCCL, or "
            "CPU processes over gloo).",
        ),
    ] = 1,
    device: Annotated[
        str | None,
        typer.Option(
            help="Train on `auto` (CUDA when available), `cpu`, `cuda` or `cuda:N` "
            "(default: training.device of the config)."
        ),
    ] = None,
    precision: Annotated[
        str | None,
        typer.Option(help="`32` or `bf16` (autocast; default: training.precision)."),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Log lines instead of progress bars and tables.")
    ] = False,
    no_tensorboard: Annotated[
        bool,
        typer.Option(
            "--no-tensorboard",
            help="Write no TensorBoard event files (by default <out>/tensorboard gets them as "
            "the config's evaluation.tensorboard says; unset: if the extra is installed).",
        ),
    ] = False,
) -> None:
    """Run one experiment: train, sparsify in rounds, write metrics, checkpoints, plots.

    The config is checked completely before anything trains. The output folder gets the
    resolved `config.toml`, `metrics.jsonl`, `summary.csv`, `result.json`, checkpoints
    with masks, the structures as GraphML, PNG plots and TensorBoard event files. A folder
    holding a different experiment is refused.
    """
    _log_to_stderr(quiet)
    with _answering():
        from pypaddle.experiments import examples, parse_config, run_experiment
        from pypaddle.experiments._files import named_folder

        table, base, parent = examples.locate(experiment, expect="experiment")
        config = parse_config(table, base=base)
        folder = out
        if folder is None:
            folder = named_folder(parent, config.name, what="experiment")
        run_experiment(
            config,
            folder,
            quiet=quiet,
            nproc=nproc,
            device=device,
            precision=precision,
            tensorboard=not no_tensorboard,
        )


@app.command()
def sweep(
    sweep_file: Annotated[
        str,
        typer.Argument(help="The sweep's TOML file, or the name of an example sweep."),
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Output folder (default: sweeps/<name> next to the file; for an example, in "
            "the working directory).",
        ),
    ] = None,
    backend: Annotated[
        str, typer.Option(help="Where trials run: `local` (process pool) or `ray`.")
    ] = "local",
    address: Annotated[
        str | None, typer.Option(help="Address of an existing Ray cluster (with --backend ray).")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Parallel trials (default: sweep.workers).")
    ] = None,
    device: Annotated[
        str | None,
        typer.Option(
            help="Train every trial on `auto`, `cpu`, `cuda` (local: trials spread over the "
            "GPUs) or `cuda:N` (default: each trial's training.device)."
        ),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Log lines instead of progress bars and tables.")
    ] = False,
) -> None:
    """Run many experiments: a grid or random space over any config key.

    Finished trials are kept and skipped when the sweep runs again; a killed sweep loses
    no finished trial. Writes `trials.csv`, `rounds.csv` and `report.png`.
    """
    _log_to_stderr(quiet)
    with _answering():
        from pypaddle.experiments import examples
        from pypaddle.experiments._files import named_folder
        from pypaddle.experiments.sweep import parse_sweep, run_sweep

        table, base, parent = examples.locate(sweep_file, expect="sweep")
        spec = parse_sweep(table, base=base)
        folder = out
        if folder is None:
            folder = named_folder(parent, spec.name, what="sweep")
        run_sweep(
            spec,
            folder,
            backend=backend,
            address=address,
            workers=workers,
            quiet=quiet,
            device=device,
        )


@app.command("examples")
def examples_command(
    name: Annotated[
        str | None,
        typer.Argument(help="An example to print (as TOML); without it, list the examples."),
    ] = None,
) -> None:
    """List the example configs, or print one to start from.

    `pypaddle examples` lists them; `pypaddle examples NAME > my.toml` writes one out to
    edit; `pypaddle run NAME` (or `pypaddle sweep NAME` for a sweep) runs one as it is.
    """
    with _answering():
        from pypaddle.experiments import examples

        if name is not None:
            typer.echo(examples.text(name), nl=False)
            return
        from rich.console import Console
        from rich.table import Table

        table = Table(
            title="pypaddle examples",
            caption="pypaddle examples NAME > my.toml writes one; pypaddle run NAME runs one",
        )
        for column in ("name", "kind", "what it does"):
            table.add_column(column)
        for example in examples.names():
            table.add_row(example, examples.kind(example), examples.description(example))
        Console().print(table)


@app.command()
def analyse(
    results_dir: Annotated[Path, typer.Argument(help="A sweep's output folder.")],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Folder for the analysis (default: RESULTS_DIR/analysis)."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an analysis already in the folder.")
    ] = False,
    structure: Annotated[
        str,
        typer.Option(help="Whose measures: `prior` (built from) or `final` (after pruning)."),
    ] = "prior",
    seed: Annotated[
        int, typer.Option(min=0, help="Seed of the bootstrap, folds and permutations.")
    ] = 0,
) -> None:
    """Analyse a finished sweep again, without training: accuracy against graph measures.

    Reads the finished trials of RESULTS_DIR and writes rank correlations with bootstrap
    intervals, a cross-validated regression of accuracy on the measures, and plots
    (`analysis.json`, `correlations.csv`, `analysis.txt`, PNGs) into `--out`. An analysis
    already written there is kept unless `--force` is given.
    """
    with _answering():
        from pypaddle.experiments.analysis import ANALYSIS_FOLDER, analyse_sweep

        analysis = analyse_sweep(results_dir, out=out, force=force, structure=structure, seed=seed)
    typer.echo(analysis.text())
    typer.echo(f"wrote {out if out is not None else results_dir / ANALYSIS_FOLDER}")


graph_app = typer.Typer(
    name="graph",
    help="Read, analyse and draw structures saved as GraphML or node-link JSON.",
    no_args_is_help=True,
)
app.add_typer(graph_app)

_GraphFile = Annotated[
    Path,
    typer.Argument(
        exists=True, dir_okay=False, help="A structure file: .graphml or .json (node-link)."
    ),
]


@graph_app.command("stats")
def graph_stats(
    file: _GraphFile,
    seed: Annotated[int, typer.Option(help="Seed of the samples and the null model.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Print the network-science summary of a structure (estimated values marked ~)."""
    import json

    with _answering():
        from pypaddle.graph import read, summary

        stats = summary(read(file), seed=seed)
    if as_json:
        # JSON has no NaN: undefined values (an empty graph, no paths) become null, also
        # inside in_degree / out_degree.
        def plain_value(value: object) -> object:
            if isinstance(value, dict):
                return {key: plain_value(item) for key, item in value.items()}
            return None if isinstance(value, float) and value != value else value

        plain = plain_value(stats.to_dict())
        typer.echo(json.dumps(plain, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{file.name}", caption="~ estimated from a seeded sample or null model")
    table.add_column("measure")
    table.add_column("value", overflow="fold")
    for row in stats.table_cells().rows:
        table.add_row(*row)
    Console().print(table)


@graph_app.command("draw")
def graph_draw(
    file: _GraphFile,
    out: Annotated[Path, typer.Argument(dir_okay=False, help="The PNG to write.")],
    max_vertices: Annotated[
        int, typer.Option(min=1, help="Above this many vertices, draw the layer graph.")
    ] = 500,
) -> None:
    """Draw a structure as a PNG: layers as columns, skip connections as arcs."""
    with _answering():
        from pypaddle.graph import draw, read

        if not out.parent.is_dir():
            raise ConfigError(
                f"cannot write {str(out)!r}: {str(out.parent)!r} is not a folder; make it first"
            )
        draw(read(file), out, max_vertices=max_vertices)
    typer.echo(f"wrote {out}")


def main() -> None:
    """Run the ``pypaddle`` command (the console script's entry point, and
    ``python -m pypaddle``)."""
    app(prog_name="pypaddle")


if __name__ == "__main__":  # pragma: no cover
    main()
