"""One Markdown report from a `hw2 reproduce` folder: one sub-folder per finished part, with its
``--json`` outputs, figures and ``part.json``; missing parts are listed as such. Nothing here
runs an experiment."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hw2cli.common.errors import Hw2Error
from hw2cli.report import sections
from hw2cli.report.conclusions import Findings, decide
from hw2cli.report.sections import md
from hw2cli.reproduce import manifest
from hw2cli.reproduce.manifest import TITLE
from hw2cli.reproduce.options import flags
from hw2cli.reproduce.parts import PARTS, PROFILES


@dataclass
class Report:
    """The report's Markdown text and which parts it found."""

    markdown: str
    present: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    conclusions: Findings = field(default_factory=Findings)

    def written_message(self, target: Path) -> str:
        """The line `hw2 report` prints once the report is at ``target``."""
        missing = f"; not run: {', '.join(self.missing)}" if self.missing else ""
        n = len(self.present)
        return f"wrote {target} ({n} part{'' if n == 1 else 's'}{missing})"


def conclusions_table(findings: Findings) -> list[str]:
    """The report's conclusions against this run: the Markdown table report.md opens with."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    return [
        "## Conclusions",
        "",
        "Each row is a conclusion of the homework report, in our words, decided by this run's numbers "
        "(the thresholds and why: docs/report.md).",
        "",
        "| where | conclusion | evidence from this run | this run |",
        "|---|---|---|---|",
        *(
            f"| {f.source} | {cell(f.claim)} | {cell(f.evidence)} | **{f.status}** |"
            for f in findings.findings
        ),
        "",
        f"{findings.counts()}.",
        "",
    ]


def build_report(run_dir: str | Path, links: str | Path | None = None) -> Report:
    """Assemble ``report.md`` text from the parts found in ``run_dir``; figures are linked
    relative to the folder ``links`` (default ``run_dir``, where report.md goes)."""
    run_dir = Path(run_dir)
    links = Path(links) if links is not None else run_dir
    if not run_dir.is_dir():
        raise Hw2Error(f"{run_dir} is not a folder; give the {flags(out=True)} folder of hw2 reproduce")
    read = {p.name: manifest.read(run_dir / p.name, sections.rerun(run_dir / p.name)) for p in PARTS}
    metas = {name: meta for name, meta in read.items() if meta is not None and meta.status == "finished"}
    if not metas:
        raise Hw2Error(
            f"{run_dir} holds no finished part (no */part.json); run hw2 reproduce {flags(out=run_dir)} first"
        )
    conclusions = decide({n: sections.load_part(n, run_dir / n) for n in metas})
    first = next(iter(metas.values()))
    lines = [
        TITLE,
        "",
        f"Profile **{md(first.profile)}**, device {md(first.device)}, "
        f"machine {md(first.machine)} ({first.cpus} CPUs), {md(first.hw2)}.",
        "",
    ]
    profile = PROFILES.get(first.profile)
    if profile is not None and profile.leaves_out:
        lines += [f"This is the **{profile.name} profile**: {profile.leaves_out}", ""]
    lines += conclusions_table(conclusions)
    lines += ["## Parts and times", "", "| part | time (s) | finished |", "|---|---:|---|"]
    lines += [
        f"| {p.title} | {m.seconds:.1f} | {md(m.finished)} |"
        if (m := metas.get(p.name))
        else f"| {p.title} | — | not run |"
        for p in PARTS
    ]
    total = sum(m.seconds for m in metas.values())  # not the wall time: parts may run side by side
    lines += [f"| **sum of the parts' times** (they may run side by side) | {total:.1f} | |", ""]
    for p in PARTS:  # each section is named after its part
        section = (
            getattr(sections, p.name)(run_dir / p.name, links) if p.name in metas else ["_Not run._", ""]
        )
        lines += [f"## {p.title}", "", *section]
    missing = [p.name for p in PARTS if p.name not in metas]
    return Report("\n".join(lines).rstrip() + "\n", list(metas), missing, conclusions)
