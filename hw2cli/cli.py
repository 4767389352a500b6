"""The `hw2` command line: a Typer app of thin commands.

Each command parses its options, calls one library function of a subpackage
(``hw2cli.graph``, ``hw2cli.padding``, ``hw2cli.rotation``, ``hw2cli.gpt``) and hands the
result to that subpackage's ``render`` module. Heavy imports (torch above all) happen
inside the command bodies, so ``hw2 --help`` and ``hw2 graph ...`` start fast.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable, Optional

import typer

from hw2cli import __version__
from hw2cli.common.errors import Hw2Error

app = typer.Typer(
    name="hw2",
    help="Reproduce the experiments of the CNN / Transformer / graph homework from the shell.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
graph_app = typer.Typer(help="Adjacency, walk-count, degree and Laplacian matrices of small graphs.", no_args_is_help=True)
gpt_app = typer.Typer(help="Train a character-level micro-GPT on a book and sample from it.", no_args_is_help=True)
app.add_typer(graph_app, name="graph")
app.add_typer(gpt_app, name="gpt")


def user_errors(fn: Callable) -> Callable:
    """Turn Hw2Error into one line on stderr and exit code 2 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Hw2Error as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None

    return wrapper


def _version(value: bool) -> None:
    if value:
        typer.echo(f"hw2 {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Reproduce the experiments of the CNN / Transformer / graph homework from the shell."""


# ----------------------------------------------------------------------------- graph (Q3.1)


# ----------------------------------------------------------------------------- padding-bench (Q1.1)


# ----------------------------------------------------------------------------- rotate-eval (Q1.2)


@app.command("rotate-eval")
@user_errors
def rotate_eval(
    dataset: str = typer.Option("cifar10", "--dataset", help="cifar10, digits (offline, scikit-learn) or imagefolder:PATH (PATH/train and PATH/test, one sub-folder per class)."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Cache folder for CIFAR-10 (default: $HW2_CACHE_DIR, else ~/.cache/hw2)."),
    epochs: int = typer.Option(10, "--epochs", help="Training epochs per model."),
    angles: str = typer.Option("0:360:30", "--angles", help="Test angles in degrees: START:STOP:STEP (STOP included) and/or a comma list."),
    mode: str = typer.Option("both", "--mode", help="plain, augmented (random rotations in training) or both."),
    batch_size: int = typer.Option(64, "--batch-size", help="Training mini-batch size."),
    lr: float = typer.Option(1e-3, "--lr", help="Adam learning rate."),
    seed: int = typer.Option(0, "--seed", help="Seed for weights, batch order and random angles."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    precision: str = typer.Option("fp32", "--precision", help="fp32 or bf16 (autocast)."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the results as JSON here."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write the accuracy-against-angle plot (PNG) here."),
    preview: Optional[Path] = typer.Option(None, "--preview", help="Write a grid of rotated test images (PNG) here."),
    save_models: Optional[Path] = typer.Option(None, "--save-models", help="Save the trained models (safetensors + config.json) in this folder."),
    load_models: Optional[Path] = typer.Option(None, "--load-models", help="Load models saved with --save-models instead of training."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Accuracy of a small CNN on rotated test images, trained plain and with random rotations (Q1.2, Figures 1 and 2)."""
    from hw2cli.common.io import check_writable, write_json
    from hw2cli.common.progress import RichReporter

    for path, what in ((json_path, "--json file"), (plot, "--plot file"), (preview, "--preview file")):
        if path is not None:
            check_writable(path, what)
    from hw2cli.rotation import plot as rotation_plot
    from hw2cli.rotation import render as rotation_render
    from hw2cli.rotation.experiment import run_rotation_experiment

    with RichReporter(quiet) as reporter:
        result = run_rotation_experiment(
            dataset, data_dir=data_dir, epochs=epochs, angles=angles, mode=mode, batch_size=batch_size, lr=lr,
            seed=seed, device=device, precision=precision, save_models=save_models, load_models=load_models,
            preview_images=6 if preview is not None else 0, reporter=reporter,
        )
    rotation_render.render(result)
    if plot is not None and result.models:
        rotation_plot.save_accuracy_plot(result, plot)
    if preview is not None and result.preview is not None:
        rotation_plot.save_preview_grid(result, preview)
    if json_path is not None:
        write_json(json_path, rotation_render.to_json(result))
    if result.interrupted:
        raise typer.Exit(130)


# ----------------------------------------------------------------------------- gpt (Q2.2-Q2.9)


# ----------------------------------------------------------------------------- report
