"""Tables and files of `hw2 grade gpt`: a Rich table per submission and a summary of all,
``to_json`` (--json: every check with its reason and traceback), ``to_gradescope`` (a
Gradescope results.json for one submission) and ``to_csv`` (one row of points per submission)."""

from __future__ import annotations

import csv
import io

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from hw2cli.grade.options import CHECKS
from hw2cli.grade.sandbox import GradeResult, SubmissionResult

STYLE = {"pass": "green", "fail": "red", "error": "red", "skipped": "yellow"}


def _points(x: float) -> str:
    return f"{x:g}"


def render(result: GradeResult, console: Console | None = None) -> None:
    if console is None:  # piped: wide enough for the reasons, not Rich's 80 columns
        console = Console(highlight=False)
        console = console if console.is_terminal else Console(highlight=False, width=max(console.width, 120))
    for sub in result.submissions:
        console.print(_submission_table(sub))
    if len(result.submissions) > 1:
        console.print(_summary_table(result))
    if result.interrupted:
        console.print("interrupted: the submissions not listed were not graded", style="yellow")


def _submission_table(sub: SubmissionResult) -> Table:
    verdict = "passes" if sub.passed else "fails"
    title = f"{sub.name}: {verdict}, {_points(sub.score)}/{_points(sub.max_score)} points, {sub.seconds:g} s"
    table = Table(title=Text(title), title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("check")
    table.add_column("result")
    table.add_column("points", justify="right")
    table.add_column("reason", overflow="fold")
    for c in sub.checks:
        reason = c.reason or ("" if c.status == "pass" else CHECKS[c.name].what)
        table.add_row(c.name, Text(c.status, style=STYLE[c.status]), _points(c.points), Text(reason))
    return table


def _summary_table(result: GradeResult) -> Table:
    passed = sum(s.passed for s in result.submissions)
    title = f"{passed} of {len(result.submissions)} submissions pass every check"
    table = Table(title=Text(title), title_justify="left", box=box.SIMPLE_HEAD)
    for name, justify in (("submission", "left"), ("points", "right"), ("s", "right"), ("failed", "left")):
        table.add_column(name, justify=justify, overflow="fold")
    for sub in result.submissions:
        failed = [c.name for c in sub.checks if c.status in ("fail", "error")]
        shown = ", ".join(failed) + (f" ({sub.stopped})" if sub.stopped else "")
        table.add_row(
            Text(sub.name),
            f"{_points(sub.score)}/{_points(sub.max_score)}",
            f"{sub.seconds:g}",
            Text(shown or "-"),
        )
    return table


def to_json(result: GradeResult) -> dict:
    return {
        "passed": result.passed,
        "interrupted": result.interrupted,
        "time_limit_s": result.time_limit,
        "memory_limit_mib": result.memory_limit,
        "checks": {
            name: {"points": points, "needs": list(CHECKS[name].needs), "what": CHECKS[name].what}
            for name, points in result.checks.items()
        },
        "submissions": [
            {
                "name": s.name,
                "passed": s.passed,
                "score": s.score,
                "max_score": s.max_score,
                "seconds": s.seconds,
                "stopped": s.stopped,
                "output": s.output,
                "checks": [vars(c) for c in s.checks],
            }
            for s in result.submissions
        ],
    }


def to_gradescope(result: GradeResult) -> dict:
    """Gradescope's results.json for the one submission graded."""
    (sub,) = result.submissions
    tests = [
        {
            "name": c.name,
            "score": c.points,
            "max_score": c.max_points,
            "status": "passed" if c.status == "pass" else "failed",
            "output": "\n".join(x for x in (c.reason or CHECKS[c.name].what, c.traceback) if x),
        }
        for c in sub.checks
    ]
    return {"score": sub.score, "output": sub.stopped or "", "tests": tests}


def to_csv(result: GradeResult) -> str:
    """submission, score, max_score, then the points of each check."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["submission", "score", "max_score", *result.checks])
    for s in result.submissions:
        writer.writerow(
            [s.name, _points(s.score), _points(s.max_score), *(_points(c.points) for c in s.checks)]
        )
    return out.getvalue()
