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


# ----------------------------------------------------------------------------- gpt (Q2.2-Q2.9)


# ----------------------------------------------------------------------------- report
