"""`hw2 graph powers|laplacian|check` (homework Q3.1)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hw2cli.commands._options import JsonOut, Quiet, takes
from hw2cli.commands._runner import run_command
from hw2cli.commands._shared import PlainUsage, user_errors
from hw2cli.graph.options import CheckOptions, LaplacianOptions, PowersOptions

app = typer.Typer(
    help="Adjacency, walk-count, degree and Laplacian matrices of small graphs.", no_args_is_help=True
)

NpzOut = Annotated[
    Path | None,
    typer.Option("--npz", metavar="PATH", help="Write the matrices as sparse arrays in a .npz file."),
]


def _write_npz(result, path: Path) -> None:
    from hw2cli.graph import render
    from hw2cli.graph.io import write_npz

    write_npz(path, result.graph.nodes, render.to_npz(result))


def _exit_1_if_wrong(result) -> None:
    if not result.ok:
        raise typer.Exit(1)


def _run(compute, opts, json_path: Path | None, npz: Path | None = None, quiet: bool = True) -> None:
    """Every graph command's flow: its input files named before any output is checked."""
    from hw2cli.graph import render

    inputs = {"EDGES": opts.edges, "--matrix": opts.matrix, "--features": getattr(opts, "features", None)}
    run_command(
        compute,
        render,
        json_path=json_path,
        outputs={"npz": (npz, _write_npz)},
        inputs={label: None if p is None else Path(p) for label, p in inputs.items()},
        quiet=quiet,
        then=_exit_1_if_wrong if isinstance(opts, CheckOptions) else None,
    )


@app.command("powers")
@user_errors
@takes(PowersOptions)
def graph_powers(
    opts: PowersOptions, json_path: JsonOut = None, npz: NpzOut = None, quiet: Quiet = False
) -> None:
    """Adjacency matrix A and its powers: entry (i, j) of A^k counts the walks of length k from i to j."""
    from hw2cli.graph.walks import run_powers

    _run(lambda reporter: run_powers(opts, reporter), opts, json_path, npz, quiet)


@app.command("laplacian")
@user_errors
@takes(LaplacianOptions)
def graph_laplacian(
    opts: LaplacianOptions, json_path: JsonOut = None, npz: NpzOut = None, quiet: Quiet = False
) -> None:
    """Degree matrix D, Laplacian L = D - A, its eigenvalues and the connected components."""
    from hw2cli.graph.laplacian import run_laplacian

    _run(lambda reporter: run_laplacian(opts, reporter), opts, json_path, npz, quiet)


@app.command("check", cls=PlainUsage)
@user_errors
@takes(CheckOptions)
def graph_check(opts: CheckOptions, json_path: JsonOut = None) -> None:
    """Compare a hand-computed matrix with the right one; exit 1 if anything is wrong."""
    from hw2cli.graph.check import run_check

    _run(lambda reporter: run_check(opts), opts, json_path)
