"""What `hw2 report` and `hw2 reproduce` print, and their JSON: both end with the conclusions
table (here, because report/ imports reproduce/, never the other way round)."""

from __future__ import annotations

import functools
from dataclasses import asdict

from rich.console import Console
from rich.table import Table

from hw2cli.common.estimate import duration
from hw2cli.report.build import Report
from hw2cli.report.conclusions import AGREES, DISAGREES, UNDECIDED, Finding, Findings
from hw2cli.reproduce.run import PartRun, ReproduceResult

_STYLE = {AGREES: "green", DISAGREES: "bold red", UNDECIDED: "yellow"}
_PART_STYLE = {"finished": "green", "skipped": "green", "failed": "red", "interrupted": "yellow"}


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


@functools.singledispatch
def render(result: Report, console: Console | None = None) -> None:
    """The conclusions table and its one-line count (the report itself is the Markdown file)."""
    console = console or Console()
    console.print(conclusions_table(result.conclusions))
    console.print(f"{result.conclusions.counts()}", highlight=False)


@render.register
def _render_reproduce(result: ReproduceResult, console: Console | None = None) -> None:
    """One row per part, then where the report is or how to go on."""
    console = console or Console()
    console.print(f"profile {result.profile}, device {result.device}, folder {result.out}", highlight=False)
    table = Table()
    table.add_column("part")
    table.add_column("status")
    table.add_column("time (s)", justify="right")
    for p in result.parts:
        status = p.status + (" (continued)" if p.resumed else "") + (f" at {p.step}" if p.step else "")
        seconds = f"{p.seconds:.1f}" if p.status not in ("skipped", "not selected", "not reached") else ""
        table.add_row(p.name, f"[{_PART_STYLE.get(p.status, 'dim')}]{status}[/]", seconds)
    console.print(table)
    if result.report is not None:
        findings = Findings(result.conclusions)
        console.print(conclusions_table(findings))
        console.print(f"report: {result.report} (all in {duration(result.seconds)})", highlight=False)
        console.print(f"conclusions: {findings.counts()}", highlight=False)
    elif result.interrupted:
        console.print(
            "interrupted: the finished parts are kept; run the same command again to continue "
            "(an interrupted GPT run continues from its last checkpoint)",
            highlight=False,
        )


@functools.singledispatch
def to_json(result: Report) -> dict:
    """The parts found and every conclusion with its evidence and status (``--json``)."""
    return {
        "command": "report",
        "present": result.present,
        "missing": result.missing,
        "conclusions": [asdict(f) for f in result.conclusions.findings],
    }


@to_json.register
def _reproduce_to_json(result: ReproduceResult) -> dict:
    return {"command": "reproduce", **asdict(result)}


def from_json(data: dict) -> ReproduceResult:
    """The result of `hw2 reproduce --json`, checked (hw2cli.common.schema.ResultError)."""
    from hw2cli.common.schema import build, require, typed

    parts = typed(require(data, "parts"), list[PartRun], "parts")
    conclusions = typed(data.get("conclusions", []), list[Finding], "conclusions")
    return build(ReproduceResult, data, parts=parts, conclusions=conclusions)
