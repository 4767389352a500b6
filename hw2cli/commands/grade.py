"""`hw2 grade gpt`: the teaching assistant's autograder for the course template's gpt.py."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hw2cli.commands._options import JsonOut, Quiet, takes
from hw2cli.commands._runner import run_command
from hw2cli.commands._shared import PlainUsage, user_errors
from hw2cli.common.errors import Hw2Error
from hw2cli.grade.options import GradeOptions

app = typer.Typer(help="Grade students' implementations of the course's templates.", no_args_is_help=True)

GradescopeOut = Annotated[
    Path | None,
    typer.Option(
        "--gradescope",
        metavar="PATH",
        help="Write Gradescope's results.json (one submission).",
        show_default=False,
    ),
]
ScoresCsv = Annotated[
    Path | None,
    typer.Option(
        "--scores-csv", metavar="PATH", help="Write one CSV row of points per submission.", show_default=False
    ),
]


def _writer(make, text: bool = False):
    def write(result, path: Path) -> None:
        from hw2cli.common.io import atomic_write_text, write_json

        (atomic_write_text if text else write_json)(path, make(result))

    return write


def _exit_1_if_any_fails(result) -> None:
    if not result.passed:
        raise typer.Exit(1)


@app.command("gpt", cls=PlainUsage)
@user_errors
@takes(GradeOptions)
def grade_gpt(
    opts: GradeOptions,
    json_path: JsonOut = None,
    gradescope: GradescopeOut = None,
    scores_csv: ScoresCsv = None,
    quiet: Quiet = False,
) -> None:
    """Check students' gpt.py files, each in its own limited process; exit 1 if any check fails."""
    from hw2cli.grade import render
    from hw2cli.grade.sandbox import find_submissions, run_grade

    if gradescope is not None and len(find_submissions(opts.submissions)) != 1:
        raise Hw2Error("--gradescope writes the results.json of one submission; give exactly one")
    run_command(
        lambda reporter: run_grade(opts, reporter),
        render,
        json_path=json_path,
        outputs={
            "gradescope": (gradescope, _writer(render.to_gradescope)),
            "scores_csv": (scores_csv, _writer(render.to_csv, text=True)),
        },
        inputs={f"SUBMISSION {p}": Path(p) for p in opts.submissions},
        quiet=quiet,
        then=_exit_1_if_any_fails,
    )
