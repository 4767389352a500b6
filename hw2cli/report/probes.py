"""The report's section "The report's answers, measured": one row per claim of each probe.

Reads the ``--json`` output of each ``hw2 probe NAME`` in the part folder (``NAME.json``, read
back by hw2cli.probe.render.from_json) and embeds ``NAME.png`` when present.
"""

from __future__ import annotations

from pathlib import Path

from hw2cli.common.errors import Hw2Error
from hw2cli.probe.common import INCONCLUSIVE
from hw2cli.reproduce.parts import PROBES as ORDER


def probes(part_dir: Path, links: Path) -> list[str]:
    """A table of claim, measurement and verdict per probe, then the probes' figures."""
    from hw2cli.probe import render
    from hw2cli.report.sections import figure, md, read

    found = {p.stem: p for p in part_dir.glob("*.json") if p.stem in ORDER}
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
    for name in ORDER:
        if name not in found:
            continue
        result = read(found[name], render)
        if render.NAMES[type(result)] != name:
            raise Hw2Error(
                f"{found[name]} holds the result of `hw2 probe {render.NAMES[type(result)]}`, not of "
                f"{name}; rerun the probes part with --force"
            )
        note = " (interrupted)" if result.interrupted else ""
        for v in result.verdicts:
            why = f" ({md(v.reason)})" if v.reason and v.verdict == INCONCLUSIVE else ""
            lines.append(
                f"| {render.QUESTIONS[name]} | `{name}`{note} | {md(v.claim)} | "
                f"{md(v.measurement)} | **{v.verdict}**{why} |"
            )
        figures += figure(part_dir, f"{name}.png", f"hw2 probe {name}", links)
    missing = [name for name in ORDER if name not in found]
    lines.append("")
    if missing:
        lines += [f"Not run: {', '.join(f'`{m}`' for m in missing)}.", ""]
    return lines + figures
