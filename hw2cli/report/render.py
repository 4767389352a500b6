"""What `hw2 report` prints: nothing before the Markdown is written (run_command's view)."""

from __future__ import annotations

from rich.console import Console

from hw2cli.report.build import Report


def render(result: Report, console: Console | None = None) -> None:
    """Nothing: the report is the Markdown file; the command names it once it is written."""


def to_json(result: Report) -> dict:
    """The parts found (the report takes no --json; for notebooks and tests)."""
    return {"command": "report", "present": result.present, "missing": result.missing}
