"""The summary `hw2 reproduce` prints, and its JSON."""

from __future__ import annotations

from dataclasses import asdict

from rich.console import Console
from rich.table import Table

from hw2cli.common.progress import duration
from hw2cli.reproduce.run import PartRun, ReproduceResult

_STYLE = {"finished": "green", "skipped": "green", "failed": "red", "interrupted": "yellow"}


def render(result: ReproduceResult, console: Console | None = None) -> None:
    """One row per part (what happened, this run's time), then where the report is or how to
    go on."""
    console = console or Console()
    console.print(f"profile {result.profile}, device {result.device}, folder {result.out}", highlight=False)
    table = Table()
    table.add_column("part")
    table.add_column("status")
    table.add_column("time (s)", justify="right")
    for p in result.parts:
        status = p.status + (" (continued)" if p.resumed else "") + (f" at {p.step}" if p.step else "")
        seconds = f"{p.seconds:.1f}" if p.status not in ("skipped", "not selected", "not reached") else ""
        table.add_row(p.name, f"[{_STYLE.get(p.status, 'dim')}]{status}[/]", seconds)
    console.print(table)
    if result.report is not None:
        from hw2cli.report.conclusions import Findings
        from hw2cli.report.render import conclusions_table

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


def to_json(result: ReproduceResult) -> dict:
    """The result as plain JSON data."""
    return {"command": "reproduce", **asdict(result)}


def from_json(data: dict) -> ReproduceResult:
    """The result that :func:`to_json` wrote, checked (hw2cli.common.readback.ResultError)."""
    from hw2cli.common.readback import build, require, typed
    from hw2cli.report.conclusions import Finding

    parts = typed(require(data, "parts"), list[PartRun], "parts")
    conclusions = typed(data.get("conclusions", []), list[Finding], "conclusions")
    return build(ReproduceResult, data, parts=parts, conclusions=conclusions)
