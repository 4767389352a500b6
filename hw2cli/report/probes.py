"""The report's section "The report's answers, measured": one row per claim of each probe.

Reads the ``--json`` output of each ``hw2 probe NAME`` in the part folder (``NAME.json``) and
embeds ``NAME.png`` when present.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from hw2cli.common.schema import Known
from hw2cli.report import inputs

ORDER = ("attention-cost", "receptive-field", "softmax-scale", "heads", "positions")


class ProbeVerdict(Known):
    claim: str
    measurement: str
    verdict: Literal["holds", "partly", "does not hold", "inconclusive"]
    reason: str = ""  # why the measurement decides, or why it cannot (always given for inconclusive)


class ProbeResult(Known):
    """``probes/NAME.json`` (hw2 probe NAME --json): only what the section shows."""

    probe: str
    question: str
    interrupted: bool = False
    verdicts: list[ProbeVerdict]


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def probes(part_dir: Path) -> list[str]:
    """A table of claim, measurement and verdict per probe, then the probes' figures."""
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
        data = inputs.read(found[name], ProbeResult)
        note = " (interrupted)" if data.get("interrupted") else ""
        for v in data.get("verdicts", []):
            why = f" ({_cell(v['reason'])})" if v.get("reason") and v["verdict"] == "inconclusive" else ""
            lines.append(
                f"| {data.get('question', '?')} | `{name}`{note} | {_cell(v['claim'])} | "
                f"{_cell(v['measurement'])} | **{v['verdict']}**{why} |"
            )
        if (part_dir / f"{name}.png").is_file():
            figures += [f"![hw2 probe {name}]({part_dir.name}/{name}.png)", ""]
    missing = [name for name in ORDER if name not in found]
    lines.append("")
    if missing:
        lines += [f"Not run: {', '.join(f'`{m}`' for m in missing)}.", ""]
    return lines + figures
