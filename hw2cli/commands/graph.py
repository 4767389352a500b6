"""`hw2 graph powers|laplacian|check` (homework Q3.1)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import typer

from hw2cli.commands._choices import MatrixKind
from hw2cli.commands._shared import check_outputs, user_errors, write_json_then_exit

app = typer.Typer(
    help="Adjacency, walk-count, degree and Laplacian matrices of small graphs.", no_args_is_help=True
)

_EDGES_HELP = "Edge-list file: one `u v` or `u v weight` per line, # comments, blank lines ignored."
_MATRIX_HELP = (
    "Dense adjacency matrix file instead of EDGES: rows of numbers, or a nested list [[0,1],[1,0]]; "
    "nodes are 1..n."
)


def _graph_command(
    compute: Callable, quiet: bool, json_path: Path | None, npz_path: Path | None, inputs: dict | None = None
) -> None:
    """The flow shared by `graph powers` and `graph laplacian`: check the output paths, run
    ``compute(reporter)``, print the result, then write --json / --npz."""
    from hw2cli.common.progress import RichReporter
    from hw2cli.graph import render
    from hw2cli.graph.io import write_npz

    check_outputs(json=json_path, npz=npz_path, inputs=inputs)
    try:
        with RichReporter(quiet) as reporter:
            result = compute(reporter)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(130) from None
    render.render(result)
    write_json_then_exit(
        json_path,
        lambda: render.to_json(result),
        outputs={"npz": (npz_path, lambda p: write_npz(p, result.graph.nodes, render.to_npz(result)))},
    )


@app.command("powers")
@user_errors
def graph_powers(
    edges: Path | None = typer.Argument(None, help=_EDGES_HELP, show_default=False),
    matrix: Path | None = typer.Option(None, "--matrix", help=_MATRIX_HELP),
    directed: bool = typer.Option(False, "--directed", help="Treat `u v` as the edge u -> v only."),
    max_power: int = typer.Option(2, "--max-power", min=1, max=20, help="Print A, A^2 ... A^N (1 to 20)."),
    walks: tuple[str, str] | None = typer.Option(
        None, "--walks", metavar="I J", help="List every walk from node I to node J."
    ),
    length: int = typer.Option(
        2, "--length", min=1, max=20, help="Length (number of steps) of the walks listed by --walks."
    ),
    max_walks: int = typer.Option(
        1000,
        "--max-walks",
        min=1,
        max=1_000_000,
        help=(
            "List walks only when there are at most this many; each listed walk is one line of output "
            "and about 13 bytes of --json per node (length 8: 115 bytes; 1,000,000 such walks: 115 MB)."
        ),
    ),
    json_path: Path | None = typer.Option(
        None, "--json", help="Write the matrices with their node order as JSON."
    ),
    npz_path: Path | None = typer.Option(
        None, "--npz", help="Write the matrices as sparse arrays in a .npz file."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display."),
) -> None:
    """Adjacency matrix A and its powers: entry (i, j) of A^k counts the walks of length k from i to j."""
    from hw2cli.graph.walks import run_powers

    _graph_command(
        lambda reporter: run_powers(edges, matrix, directed, max_power, walks, length, max_walks, reporter),
        quiet,
        json_path,
        npz_path,
        {"EDGES": edges, "--matrix": matrix},
    )


@app.command("laplacian")
@user_errors
def graph_laplacian(
    edges: Path | None = typer.Argument(None, help=_EDGES_HELP, show_default=False),
    matrix: Path | None = typer.Option(None, "--matrix", help=_MATRIX_HELP),
    directed: bool = typer.Option(
        False, "--directed", help="Treat `u v` as the edge u -> v only (D = out-degree)."
    ),
    normalized: bool = typer.Option(
        False, "--normalized", help="Also print I - D^-1/2 A D^-1/2 and its eigenvalues."
    ),
    features: Path | None = typer.Option(
        None,
        "--features",
        help="Node-feature table X (CSV or whitespace, one row per node, node order): print L·X.",
    ),
    eigs: int | None = typer.Option(
        None,
        "--eigs",
        min=0,
        max=1_000_000,
        help="Only the K smallest eigenvalues (sparse solver; 0: none). Default: all up to 2000 nodes, none beyond.",
    ),
    json_path: Path | None = typer.Option(
        None, "--json", help="Write the matrices, eigenvalues and components as JSON."
    ),
    npz_path: Path | None = typer.Option(
        None, "--npz", help="Write the matrices as sparse arrays in a .npz file."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display."),
) -> None:
    """Degree matrix D, Laplacian L = D - A, its eigenvalues and the connected components."""
    from hw2cli.graph.laplacian import run_laplacian

    _graph_command(
        lambda reporter: run_laplacian(edges, matrix, directed, normalized, features, eigs, reporter),
        quiet,
        json_path,
        npz_path,
        {"EDGES": edges, "--matrix": matrix, "--features": features},
    )


@app.command("check")
@user_errors
def graph_check(
    edges: Path = typer.Argument(..., help=_EDGES_HELP, show_default=False),
    matrix: Path = typer.Option(
        ...,
        "--matrix",
        help="The hand-written matrix to check: rows of numbers, or [[0,1],[1,0]], in node order.",
    ),
    kind: MatrixKind = typer.Option(..., "--kind", help="Which matrix it is (power: A^k, see --power)."),
    power: int | None = typer.Option(
        None, "--power", min=1, max=20, help="For --kind power: the exponent k of A^k (default 2)."
    ),
    directed: bool = typer.Option(False, "--directed", help="Treat `u v` as the edge u -> v only."),
    json_path: Path | None = typer.Option(None, "--json", help="Write the comparison as JSON."),
) -> None:
    """Compare a hand-computed matrix with the right one; exit 1 if anything is wrong."""
    from hw2cli.graph import render
    from hw2cli.graph.check import run_check

    check_outputs(json=json_path, inputs={"EDGES": edges, "--matrix": matrix})
    result = run_check(edges, matrix, kind.value, power, directed)
    render.render(result)
    write_json_then_exit(json_path, lambda: render.to_json(result))
    if not result.ok:
        raise typer.Exit(1)
