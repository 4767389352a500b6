"""`hw2 padding-bench` and `hw2 padding-bench preview` (homework Q1.1)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hw2cli.commands._options import JsonOut, PlotOut, Quiet, flag_notes, takes
from hw2cli.commands._runner import run_command
from hw2cli.commands._shared import PlainUsage, user_errors
from hw2cli.common.errors import Hw2Error
from hw2cli.padding.options import PaddingOptions, PreviewOptions

app = typer.Typer(
    subcommand_metavar="[COMMAND [ARGS]...]",  # the table runs without a subcommand
    help="Padding and translation invariance (Q1.1): train Net1/Net2 with six paddings, print Tables 1 and 2.",
)

CSV_HELP = "Write one CSV line per (conv type, round)."
CsvOut = Annotated[Path | None, typer.Option("--csv", metavar="PATH", help=CSV_HELP, show_default=False)]
UNSHIFTED_HELP = "Add a row with the accuracy on the test set before its 16-pixel shift."
Unshifted = Annotated[bool, typer.Option("--unshifted", help=UNSHIFTED_HELP)]
VERBOSE_HELP = "Also print the trainer used and its throughput."
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help=VERBOSE_HELP)]


def _csv(result, path: Path) -> None:
    from hw2cli.common.io import atomic_write_text
    from hw2cli.padding.render import to_csv

    atomic_write_text(path, to_csv(result))


def _plot(result, path: Path) -> None:
    from hw2cli.padding.plot import plot_accuracy

    if result.outcomes:
        plot_accuracy(result, path)


def _exit_2_if_a_worker_failed(result) -> None:
    if result.error:
        raise Hw2Error(f"{result.error}; the {result.rounds_done} finished round(s) were written")


@app.callback(invoke_without_command=True)
@user_errors
@takes(PaddingOptions)
def padding_bench(
    ctx: typer.Context,
    opts: PaddingOptions,
    json_path: JsonOut = None,
    csv_path: CsvOut = None,
    plot: PlotOut = None,
    unshifted: Unshifted = False,
    verbose: Verbose = False,
    quiet: Quiet = False,
) -> None:
    """Train every conv type's networks and print the table of the report.

    Each network trains for at most --epochs epochs (early stopping after 9 epochs without a
    better validation loss). Validation accuracy is that of the last epoch trained (as the
    course code reports it); test accuracy is that of the kept weights (lowest validation loss)
    on the shifted test set. --seed draws the data; round m is initialised with seed m - 1.
    --device auto trains the rounds batched on a GPU, one process per core on the CPU.
    """
    if ctx.invoked_subcommand is not None:
        return
    from hw2cli.padding import render
    from hw2cli.padding.bench import run_padding_bench

    run_command(
        lambda reporter: run_padding_bench(opts, reporter),
        render,
        json_path=json_path,
        outputs={"csv": (csv_path, _csv), "plot": (plot, _plot)},
        quiet=quiet,
        progress=flag_notes(PaddingOptions),
        show={"unshifted": unshifted, "verbose": verbose},
        then=_exit_2_if_a_worker_failed,
    )


@app.command("preview", cls=PlainUsage)
@user_errors
@takes(PreviewOptions)
def padding_preview(opts: PreviewOptions) -> None:
    """Write enlarged PNG examples of each class from the training and test sets."""
    from hw2cli.padding import render
    from hw2cli.padding.preview import write_previews

    run_command(lambda reporter: write_previews(opts), render, quiet=True)
