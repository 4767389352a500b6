"""`hw2 examples`: the example files that ship inside the package, copied out."""

from __future__ import annotations

import typer

from hw2cli.commands._options import takes
from hw2cli.commands._shared import user_errors
from hw2cli.common.examples import ExamplesOptions


@user_errors
@takes(ExamplesOptions)
def examples(opts: ExamplesOptions) -> None:
    """Copy the example graphs, the homework's hand-computed matrices and a SLURM script into a folder."""
    from hw2cli.common.examples import copy_examples

    result = copy_examples(opts)
    typer.echo(f"{len(result.files)} example files in {result.folder}: {', '.join(result.files)}")
