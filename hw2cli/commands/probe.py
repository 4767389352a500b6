"""`hw2 probe NAME`: the report's theory answers (Q2.1, Q2.4) as measurements with verdicts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from hw2cli.commands._choices import Device
from hw2cli.commands._shared import (
    check_outputs,
    threads_option,
    use_threads,
    user_errors,
    write_json_then_exit,
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

_PLOT = typer.Option(None, "--plot", help="Write the probe's figure to this PNG.")
_JSON = typer.Option(None, "--json", help="Write the measurements and verdicts as JSON.")
_DEVICE = typer.Option(Device.auto, "--device", help="Where to run.")
_SEED = typer.Option(
    0, "--seed", min=0, max=2**32 - 1, help="Seed of the random inputs, initialisation and batches."
)
_QUICK = typer.Option(False, "--quick", help="Tiny sizes (seconds; for tests and smoke runs).")
_QUIET = typer.Option(False, "--quiet", "-q", help="No progress bar.")
_THREADS = threads_option()
_STEPS = typer.Option(None, "--steps", help="Training steps per model.", show_default="500 (--quick: 20)")
_TXT = typer.Option(
    None, "--txt-file", help="UTF-8 text to train on.", show_default="Grimm's fairy tales, downloaded once"
)


def _run(make: Callable, plot: Path | None, json_path: Path | None, quiet: bool, threads: int) -> None:
    """Call the probe with a progress reporter, print its tables, write the PNG and JSON."""
    use_threads(threads)
    from rich.console import Console

    from hw2cli.common.progress import RichReporter
    from hw2cli.probe import render

    with RichReporter(quiet) as reporter:
        result = make(reporter)
    render.render(result, Console())
    from hw2cli.probe.plot import plot as draw

    outputs = {"plot": (plot, lambda path: draw(result, path))}
    write_json_then_exit(json_path, lambda: render.to_json(result), result.interrupted, outputs=outputs)


def _training_sizes(quick: bool, steps: int | None) -> dict:
    from hw2cli.probe.common import check_positive

    check_positive(steps=steps)
    if quick:
        return dict(train_steps=steps or 20, block_size=16, batch_size=8)
    return dict(train_steps=steps or 500, block_size=64, batch_size=32)


@app.command("attention-cost")
@user_errors
def attention_cost(
    n: str | None = typer.Option(
        None,
        "--n",
        help="Sequence lengths, powers of two.",
        show_default="64,...,4096 (CPU), ...,16384 (GPU); --quick: 16,...,128",
    ),
    n_embd: int = typer.Option(128, "--n-embd", help="Width of the attention layer."),
    n_head: int = typer.Option(4, "--n-head", help="Heads of the attention layer."),
    plot: Path | None = _PLOT,
    json_path: Path | None = _JSON,
    device: Device = _DEVICE,
    seed: int = _SEED,
    quick: bool = _QUICK,
    quiet: bool = _QUIET,
    threads: int = _THREADS,
) -> None:
    """Q2.1a: time and measured peak memory of attention against n, with fitted log-log slopes."""
    check_outputs(plot=plot, json=json_path)
    from hw2cli.probe import attention_cost as probe
    from hw2cli.probe.common import check_positive, parse_sizes

    check_positive(n_embd=n_embd, n_head=n_head)
    ns = parse_sizes(n, "--n") if n else (list(probe.QUICK_N) if quick else None)
    _run(
        lambda rep: probe.attention_cost(ns, n_embd, n_head, device.value, seed, rep),
        plot,
        json_path,
        quiet,
        threads,
    )


@app.command("softmax-scale")
@user_errors
def softmax_scale(
    dk: str | None = typer.Option(
        None, "--dk", help="Head sizes d_k, powers of two.", show_default="16,...,1024; --quick: 16,64,256"
    ),
    steps: int | None = _STEPS,
    txt_file: Path | None = _TXT,
    plot: Path | None = _PLOT,
    json_path: Path | None = _JSON,
    device: Device = _DEVICE,
    seed: int = _SEED,
    quick: bool = _QUICK,
    quiet: bool = _QUIET,
    threads: int = _THREADS,
) -> None:
    """Q2.1c: softmax saturation and gradient with and without 1/sqrt(d_k), and two short trainings."""
    check_outputs(plot=plot, json=json_path)
    from hw2cli.probe import softmax_scale as probe
    from hw2cli.probe.common import parse_sizes

    dks = parse_sizes(dk, "--dk") if dk else (list(probe.QUICK_DK) if quick else None)
    sizes = _training_sizes(quick, steps)
    txt = None if txt_file is None else str(txt_file)
    _run(
        lambda rep: probe.softmax_scale(
            dks, txt_file=txt, device=device.value, seed=seed, reporter=rep, **sizes
        ),
        plot,
        json_path,
        quiet,
        threads,
    )


@app.command("positions")
@user_errors
def positions(
    steps: int | None = _STEPS,
    txt_file: Path | None = _TXT,
    plot: Path | None = _PLOT,
    json_path: Path | None = _JSON,
    device: Device = _DEVICE,
    seed: int = _SEED,
    quick: bool = _QUICK,
    quiet: bool = _QUIET,
    threads: int = _THREADS,
) -> None:
    """Q2.4a/b: permutation equivariance, NoPE vs learned vs RoPE, and length extrapolation."""
    check_outputs(plot=plot, json=json_path)
    from hw2cli.probe import positions as probe

    sizes = _training_sizes(quick, steps)
    txt = None if txt_file is None else str(txt_file)
    _run(
        lambda rep: probe.positions(
            txt_file=txt, device=device.value, seed=seed, reporter=rep, windows=16 if quick else 64, **sizes
        ),
        plot,
        json_path,
        quiet,
        threads,
    )


@app.command("receptive-field")
@user_errors
def receptive_field(
    samples: int | None = typer.Option(
        None, "--samples", help="Random inputs averaged.", show_default="32 (--quick: 4)"
    ),
    length: int | None = typer.Option(
        None, "--length", help="GPT sequence length.", show_default="64 (--quick: 16)"
    ),
    plot: Path | None = _PLOT,
    json_path: Path | None = _JSON,
    device: Device = _DEVICE,
    seed: int = _SEED,
    quick: bool = _QUICK,
    quiet: bool = _QUIET,
    threads: int = _THREADS,
) -> None:
    """Q2.1b: gradient receptive fields of the padding-bench CNN and the GPT, layer by layer."""
    check_outputs(plot=plot, json=json_path)
    from hw2cli.probe import receptive_field as probe
    from hw2cli.probe.common import check_positive

    check_positive(samples=samples, length=length)
    samples = samples or (4 if quick else 32)
    length = length or (16 if quick else 64)
    _run(
        lambda rep: probe.receptive_field(samples, length, device.value, seed, rep),
        plot,
        json_path,
        quiet,
        threads,
    )


@app.command("heads")
@user_errors
def heads(
    n_heads: str | None = typer.Option(
        None, "--heads", help="Head counts to train (width 48).", show_default="1,2,4,8; --quick: 1,2"
    ),
    steps: int | None = _STEPS,
    txt_file: Path | None = _TXT,
    plot: Path | None = _PLOT,
    json_path: Path | None = _JSON,
    device: Device = _DEVICE,
    seed: int = _SEED,
    quick: bool = _QUICK,
    quiet: bool = _QUIET,
    threads: int = _THREADS,
) -> None:
    """Q2.1d: 1, 2, 4, 8 heads at the same width: validation loss and how differently the heads attend."""
    check_outputs(plot=plot, json=json_path)
    from hw2cli.probe import heads as probe
    from hw2cli.probe.common import parse_sizes

    counts = parse_sizes(n_heads, "--heads", power_of_two=False) if n_heads else ([1, 2] if quick else None)
    sizes = _training_sizes(quick, steps)
    txt = None if txt_file is None else str(txt_file)
    _run(
        lambda rep: probe.heads(
            counts,
            txt_file=txt,
            device=device.value,
            seed=seed,
            reporter=rep,
            windows=8 if quick else 32,
            **sizes,
        ),
        plot,
        json_path,
        quiet,
        threads,
    )
