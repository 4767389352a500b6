"""`hw2 padding-bench` and `hw2 padding-bench preview` (homework Q1.1)."""

from __future__ import annotations

from pathlib import Path

import typer

from hw2cli.commands._choices import Device, Net, Precision
from hw2cli.commands._shared import check_outputs, user_errors, write_json_then_exit
from hw2cli.common.errors import Hw2Error

app = typer.Typer(
    subcommand_metavar="[preview OUT_DIR]",
    help="Padding and translation invariance (Q1.1): train Net1/Net2 with six paddings, print Tables 1 and 2.",
)


@app.callback(invoke_without_command=True)
@user_errors
def padding_bench(
    ctx: typer.Context,
    net: Net = typer.Option(
        Net.net1,
        "--net",
        case_sensitive=False,
        help="net1 (global max pool: Table 1) or net2 (flatten + linear: Table 2).",
    ),
    conv_types: str | None = typer.Option(
        None,
        "--conv-types",
        help="Comma-separated subset of valid,replicate,reflect,circular,sconv,fconv (default: all).",
    ),
    rounds: int = typer.Option(
        10,
        "--rounds",
        min=1,
        max=1000,
        help="Networks per conv type; round m is initialised with seed m - 1.",
    ),
    epochs: int = typer.Option(
        50,
        "--epochs",
        min=1,
        max=10_000,
        help="Most epochs per network (early stopping after 9 epochs without a better validation loss).",
    ),
    device: Device = typer.Option(
        Device.auto,
        "--device",
        help="auto: the rounds train batched on a GPU, one process per core on the CPU.",
    ),
    precision: Precision = typer.Option(
        Precision.fp32, "--precision", help="Autocast precision (bf16 is slow on CPUs without AVX-512 bf16)."
    ),
    seed: int = typer.Option(0, "--seed", min=0, max=2**32 - 1, help="Seed of the data sets."),
    independent_val: bool = typer.Option(
        False,
        "--independent-val",
        help=(
            "Draw the validation set from its own seed. By default, as in the course code, it is the "
            "first 1,000 training images."
        ),
    ),
    unshifted: bool = typer.Option(
        False, "--unshifted", help="Add a row with the accuracy on the test set before its 16-pixel shift."
    ),
    workers: int = typer.Option(
        0,
        "--workers",
        min=0,
        max=1024,
        help="CPU worker processes (0: one per core); the numbers do not depend on it.",
    ),
    json_path: Path | None = typer.Option(
        None, "--json", help="Write every per-round number and the settings as JSON."
    ),
    csv_path: Path | None = typer.Option(None, "--csv", help="Write one CSV line per (conv type, round)."),
    plot: Path | None = typer.Option(
        None,
        "--plot",
        help="Write a PNG of the test accuracy per conv type (mean ± std; shifted and unshifted).",
    ),
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Also print the trainer used and its throughput."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Train every conv type's networks and print the table of the report.

    Validation accuracy is that of the last epoch trained (as the course code reports it);
    test accuracy is that of the kept weights (lowest validation loss) on the shifted test set.
    """
    # Long only by its option declarations (each with help and range); the body is a few calls.
    if ctx.invoked_subcommand is not None:
        return
    from hw2cli.common.io import atomic_write_text
    from hw2cli.common.progress import RichReporter
    from hw2cli.padding.bench import parse_conv_types, run_padding_bench
    from hw2cli.padding.render import render, to_csv, to_json

    types = parse_conv_types(conv_types)
    check_outputs(json=json_path, csv=csv_path, plot=plot)
    with RichReporter(quiet) as reporter:
        result = run_padding_bench(
            net=net.value,
            conv_types=types,
            rounds=rounds,
            epochs=epochs,
            device=device.value,
            precision=precision.value,
            seed=seed,
            independent_val=independent_val,
            workers=workers,
            reporter=reporter,
        )
    render(result, unshifted=unshifted, verbose=verbose)
    from hw2cli.padding.plot import plot_accuracy

    write_json_then_exit(
        json_path,
        lambda: to_json(result),
        result.interrupted,
        outputs={
            "csv": (csv_path, lambda p: atomic_write_text(p, to_csv(result))),
            "plot": (plot if result.outcomes else None, lambda p: plot_accuracy(result, p)),
        },
    )
    if result.error:
        raise Hw2Error(f"{result.error}; the {result.rounds_done} finished round(s) were written")


@app.command("preview")
@user_errors
def padding_preview(
    out_dir: Path = typer.Argument(..., help="Folder for the PNG files."),
    seed: int = typer.Option(0, "--seed", min=0, max=2**32 - 1, help="Seed of the data sets."),
    per_class: int = typer.Option(4, "--per-class", min=1, max=32, help="Examples per image (1-32)."),
) -> None:
    """Write enlarged PNG examples of each class from the training and test sets."""
    from hw2cli.padding.preview import write_previews

    for path in write_previews(out_dir, seed=seed, per_class=per_class):
        typer.echo(str(path))
