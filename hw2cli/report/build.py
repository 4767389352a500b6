"""Build one Markdown report from a folder written by scripts/reproduce.sh.

The folder holds one sub-folder per part (table1, table2, rotation, gpt, graph), each with
the part's ``--json`` outputs, its figures and ``part.json`` (title, profile, device, machine,
seconds). Parts that are missing are listed as such; nothing here runs an experiment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hw2cli.common.errors import Hw2Error
from hw2cli.report import inputs, sections
from hw2cli.report.probes import probes

PARTS: tuple[tuple[str, str, Callable[[Path], list[str]]], ...] = (
    ("table1", "Table 1 — padding and translation invariance, Net1", sections.padding_table),
    ("table2", "Table 2 — padding and translation invariance, Net2", sections.padding_table),
    ("rotation", "Figures 1 and 2 — accuracy against rotation angle", sections.rotation),
    ("gpt", "Figure 3 and samples — character-level micro-GPT", sections.gpt),
    ("graph", "Q3.1 — adjacency powers, degree and Laplacian matrices", sections.graph),
    ("probes", "The report's answers, measured", probes),
)


@dataclass
class Report:
    """The report's Markdown text and which parts it found."""

    markdown: str
    present: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def written_message(self, target: Path) -> str:
        """The line `hw2 report` prints once the report is at ``target``."""
        missing = f"; not run: {', '.join(self.missing)}" if self.missing else ""
        n = len(self.present)
        return f"wrote {target} ({n} part{'' if n == 1 else 's'}{missing})"


def read_json(path: Path) -> Any:
    """Read a part's ``part.json``, validated (hw2cli.report.inputs.Part)."""
    return inputs.read(path, inputs.Part)


def build_report(run_dir: str | Path) -> Report:
    """Assemble ``report.md`` text from the parts found in ``run_dir``."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise Hw2Error(f"{run_dir} is not a folder; give the --out folder of scripts/reproduce.sh")
    metas = {
        name: read_json(run_dir / name / "part.json")
        for name, _, _ in PARTS
        if (run_dir / name / "part.json").is_file()
    }
    if not metas:
        raise Hw2Error(
            f"{run_dir} holds no finished part (no */part.json); run scripts/reproduce.sh --out {run_dir} first"
        )

    report = Report(markdown="")
    lines = ["# hw2 — reproduction report", ""]
    first = next(iter(metas.values()))
    lines += [
        f"Profile **{first.get('profile', '?')}**, device `{first.get('device', '?')}`, "
        f"machine `{first.get('machine', '?')}` ({first.get('cpus', '?')} CPUs), {first.get('hw2', 'hw2')}.",
        "",
        "| part | time (s) | finished |",
        "|---|---:|---|",
    ]
    for name, title, _ in PARTS:
        meta = metas.get(name)
        if meta is None:
            lines.append(f"| {title} | — | not run |")
        else:
            lines.append(f"| {title} | {meta['seconds']:.1f} | {meta['finished']} |")
    total = sum(m["seconds"] for m in metas.values())
    lines += [f"| **total** | {total:.1f} | |", ""]

    for name, title, render in PARTS:
        lines += [f"## {title}", ""]
        if name in metas:
            report.present.append(name)
            lines += render(run_dir / name)
        else:
            report.missing.append(name)
            lines += ["_Not run._", ""]
    report.markdown = "\n".join(lines).rstrip() + "\n"
    return report
