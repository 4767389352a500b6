"""The report's section "The report's answers, measured": one row per claim of each probe, from
the part folder's ``NAME.json`` of each ``hw2 probe NAME``, and its ``NAME.png``."""

from __future__ import annotations

from pathlib import Path

from hw2cli.common.errors import Hw2Error
from hw2cli.probe.common import INCONCLUSIVE
from hw2cli.probe.registry import PROBES


def probes(part_dir: Path, links: Path) -> list[str]:
    """A table of claim, measurement and verdict per probe, then the probes' figures."""
    from hw2cli.probe import render
    from hw2cli.report.sections import figure, md, read, rerun

    found = {p.name: part_dir / f"{p.name}.json" for p in PROBES if (part_dir / f"{p.name}.json").is_file()}
    if not found:
        return ["_No probe results in this folder._", ""]
    lines = [
        "Each row is one answer of the written report (Q2.1, Q2.4) turned into a measurement by "
        "`hw2 probe NAME`; the numbers are this run's.",
        "",
        "| question | probe | claim | measurement | verdict |",
        "|---|---|---|---|---|",
    ]
    figures = []
    for probe in PROBES:
        name = probe.name
        if name not in found:
            continue
        result = read(found[name], render)
        holds = render.PROBE_OF[type(result)].name
        if holds != name:
            raise Hw2Error(
                f"{found[name]} holds the result of `hw2 probe {holds}`, not of {name}; {rerun(part_dir)}"
            )
        note = " (interrupted)" if result.interrupted else ""
        for v in result.verdicts:
            why = f" ({md(v.reason)})" if v.reason and v.verdict == INCONCLUSIVE else ""
            lines.append(
                f"| {probe.question} | `{name}`{note} | {md(v.claim)} | {md(v.measurement)} | **{v.verdict}**{why} |"
            )
        figures += figure(part_dir, f"{name}.png", f"hw2 probe {name}", links)
    missing = [p.name for p in PROBES if p.name not in found]
    lines.append("")
    if missing:
        lines += [f"Not run: {', '.join(f'`{m}`' for m in missing)}.", ""]
    return lines + figures
