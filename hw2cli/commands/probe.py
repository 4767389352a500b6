"""`hw2 probe NAME`: the report's theory answers (Q2.1, Q2.4) as measurements with verdicts, one
command per entry of hw2cli.probe.registry."""

import inspect
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from hw2cli.commands._options import JsonOut, PlotOut, Quiet, Threads, flag_notes, takes
from hw2cli.commands._runner import run_command
from hw2cli.commands._shared import user_errors
from hw2cli.probe.options import ProbeOptions
from hw2cli.probe.registry import PROBES, Probe


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


def _command(probe: Probe) -> Any:
    """The command of one probe; its text is an input no output may replace."""

    def command(
        opts: ProbeOptions,
        json_path: JsonOut = None,
        plot: PlotOut = None,
        quiet: Quiet = False,
        threads: Threads = 0,
    ) -> None:
        from hw2cli.gpt.options import TrainOptions
        from hw2cli.probe import render

        txt = getattr(opts, "txt_file", None)
        run_command(
            lambda reporter: probe.function()(opts, reporter),
            render,
            json_path=json_path,
            outputs={"plot": (plot, render.plot)},
            inputs={"--txt-file": None if txt is None else Path(txt)},
            quiet=quiet,
            threads=threads if probe.threads else None,
            progress=flag_notes(TrainOptions),  # the notes of its GPT trainings name their options
        )

    if not probe.threads:
        params = inspect.signature(command).parameters.values()
        command.__signature__ = inspect.Signature([p for p in params if p.name != "threads"])
    command.__name__ = probe.name.replace("-", "_")
    return user_errors(takes(probe.options)(command))


for _probe in PROBES:
    app.command(_probe.name, help=_probe.help)(_command(_probe))
