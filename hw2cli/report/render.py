"""What `hw2 report` prints: the report's conclusions against this run, and their JSON."""

from __future__ import annotations

from dataclasses import asdict

from rich.console import Console
from rich.table import Table

from hw2cli.report.build import Report
from hw2cli.report.conclusions import AGREES, DISAGREES, UNDECIDED, Findings

_STYLE = {AGREES: "green", DISAGREES: "bold red", UNDECIDED: "yellow"}


def conclusions_table(findings: Findings) -> Table:
    """The conclusions table of report.md as a Rich table."""
    table = Table(title="The report's conclusions against this run", title_justify="left")
    table.add_column("where")
    table.add_column("conclusion", ratio=2)
    table.add_column("evidence from this run", ratio=3)
    table.add_column("this run")
    for f in findings.findings:
        table.add_row(f.source, f.claim, f.evidence, f"[{_STYLE.get(f.status, 'dim')}]{f.status}[/]")
    return table


def render(result: Report, console: Console | None = None) -> None:
    """The conclusions table and its one-line count (the report itself is the Markdown file)."""
    console = console or Console()
    console.print(conclusions_table(result.conclusions))
    console.print(f"{result.conclusions.counts()}", highlight=False)


def to_json(result: Report) -> dict:
    """The parts found and every conclusion with its evidence and status (``--json``)."""
    return {
        "command": "report",
        "present": result.present,
        "missing": result.missing,
        "conclusions": [asdict(f) for f in result.conclusions.findings],
    }
