"""The `hw2` command line: the Typer app, one family's commands (``hw2cli.commands.<family>``)
mounted per line. Heavy imports (torch) happen inside the command bodies, so ``hw2 --help``
and ``hw2 graph ...`` start fast."""

from __future__ import annotations

import typer

from hw2cli import __version__
from hw2cli.commands import examples, gpt, grade, graph, padding, probe, report, reproduce, rotation
from hw2cli.commands._shared import OneLineErrors, PlainUsage

app = typer.Typer(
    name="hw2",
    cls=OneLineErrors,  # usage errors: one line `error: ...`, exit 2 (docs/reliability.md)
    help="Reproduce the experiments of the CNN / Transformer / graph homework from the shell.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},  # inherited by every subcommand
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"hw2 {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Reproduce the experiments of the CNN / Transformer / graph homework from the shell."""
    from hw2cli.common.errors import show_warnings_as_one_line

    show_warnings_as_one_line()


# The table of contents, in the order of the homework.
app.add_typer(padding.app, name="padding-bench")  # Q1.1: Tables 1 and 2
app.command("rotate-eval")(rotation.rotate_eval)  # Q1.2: Figures 1 and 2
app.add_typer(gpt.app, name="gpt")  # Q2: micro-GPT, Figure 3, samples
app.add_typer(graph.app, name="graph")  # Q3.1: adjacency powers, Laplacian
app.add_typer(probe.app, name="probe")  # Q2.1, Q2.4: the report's theory answers, measured
app.command("reproduce")(reproduce.reproduce)  # every part of the report, then report.md
app.command("report", cls=PlainUsage)(report.report)  # a reproduce folder -> report.md
app.add_typer(grade.app, name="grade")  # a TA's autograder for students' gpt.py
app.command("examples", cls=PlainUsage)(examples.examples)  # the packaged example inputs, copied out
