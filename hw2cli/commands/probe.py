"""`hw2 probe NAME`: the report's theory answers (Q2.1, Q2.4) as measurements with verdicts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from hw2cli.commands._options import JsonOut, PlotOut, Quiet, Threads, takes
from hw2cli.commands._runner import run_command
from hw2cli.commands._shared import user_errors
from hw2cli.probe.options import (
    AttentionCostOptions,
    HeadsOptions,
    PositionsOptions,
    ProbeOptions,
    ReceptiveFieldOptions,
    SoftmaxScaleOptions,
)


class _ProbeGroup(TyperGroup):
    """An unknown probe name is one line on stderr and exit code 2, like every other user error."""

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and not args[0].startswith("-") and self.get_command(ctx, args[0]) is None:
            names = ", ".join(self.list_commands(ctx))
            typer.echo(f"error: unknown probe {args[0]!r}; use one of {names}", err=True)
            raise typer.Exit(2)
        return super().resolve_command(ctx, args)


app = typer.Typer(
    cls=_ProbeGroup,
    no_args_is_help=True,
    help="Measure the report's answers to Q2.1 and Q2.4: a table, --plot PNG, --json, a verdict per claim.",
)


def _plot(result: Any, path: Path) -> None:
    from hw2cli.probe.plot import plot

    plot(result, path)


def _run(
    compute: Callable[[Any], Any],
    opts: ProbeOptions,
    json_path: Path | None,
    plot: Path | None,
    quiet: bool,
    threads: int | None,
) -> None:
    """The command flow of every probe: its text is an input no output may replace."""
    from hw2cli.probe import render

    txt = getattr(opts, "txt_file", None)
    run_command(
        compute,
        render,
        json_path=json_path,
        outputs={"plot": (plot, _plot)},
        inputs={"--txt-file": None if txt is None else Path(txt)},
        quiet=quiet,
        threads=threads,
    )


@app.command("attention-cost")
@user_errors
@takes(AttentionCostOptions)
def attention_cost(
    opts: AttentionCostOptions, json_path: JsonOut = None, plot: PlotOut = None, quiet: Quiet = False
) -> None:
    """Q2.1a: time and measured peak memory of attention against n, with fitted log-log slopes.

    On the CPU each point is timed on one thread in process CPU time (the fastest of 5+ calls).
    """
    from hw2cli.probe.attention_cost import attention_cost as probe

    _run(lambda reporter: probe(opts, reporter), opts, json_path, plot, quiet, None)


@app.command("softmax-scale")
@user_errors
@takes(SoftmaxScaleOptions)
def softmax_scale(
    opts: SoftmaxScaleOptions,
    json_path: JsonOut = None,
    plot: PlotOut = None,
    quiet: Quiet = False,
    threads: Threads = 0,
) -> None:
    """Q2.1c: softmax saturation and gradient with and without 1/sqrt(d_k), and short trainings."""
    from hw2cli.probe.softmax_scale import softmax_scale as probe

    _run(lambda reporter: probe(opts, reporter), opts, json_path, plot, quiet, threads)


@app.command("positions")
@user_errors
@takes(PositionsOptions)
def positions(
    opts: PositionsOptions,
    json_path: JsonOut = None,
    plot: PlotOut = None,
    quiet: Quiet = False,
    threads: Threads = 0,
) -> None:
    """Q2.4a/b: permutation equivariance, NoPE vs learned vs RoPE, and length extrapolation."""
    from hw2cli.probe.positions import positions as probe

    _run(lambda reporter: probe(opts, reporter), opts, json_path, plot, quiet, threads)


@app.command("receptive-field")
@user_errors
@takes(ReceptiveFieldOptions)
def receptive_field(
    opts: ReceptiveFieldOptions,
    json_path: JsonOut = None,
    plot: PlotOut = None,
    quiet: Quiet = False,
    threads: Threads = 0,
) -> None:
    """Q2.1b: gradient receptive fields of the padding-bench CNN and the GPT, layer by layer."""
    from hw2cli.probe.receptive_field import receptive_field as probe

    _run(lambda reporter: probe(opts, reporter), opts, json_path, plot, quiet, threads)


@app.command("heads")
@user_errors
@takes(HeadsOptions)
def heads(
    opts: HeadsOptions,
    json_path: JsonOut = None,
    plot: PlotOut = None,
    quiet: Quiet = False,
    threads: Threads = 0,
) -> None:
    """Q2.1d: 1, 2, 4, 8 heads at the same width: validation loss and how differently the heads attend."""
    from hw2cli.probe.heads import heads as probe

    _run(lambda reporter: probe(opts, reporter), opts, json_path, plot, quiet, threads)
