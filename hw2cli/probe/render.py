"""Rich tables and JSON for the probes: ``render(result, console=None)`` prints the probe's
measurements (its module's ``tables``) and its verdicts, ``to_json(result)`` gives the
``--json`` data; the result's type names its probe (hw2cli.probe.registry)."""

from __future__ import annotations

import sys
from dataclasses import asdict
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from hw2cli.probe.common import FAILS, HOLDS, PARTLY, VERDICTS
from hw2cli.probe.registry import PROBES, Probe

#: result type -> probe
PROBE_OF = {p.result_type(): p for p in PROBES}
_COLOURS = {HOLDS: "green", PARTLY: "yellow", FAILS: "red"}


def _probe(result: Any) -> Probe:
    if type(result) not in PROBE_OF:
        raise TypeError(f"no probe result: {type(result).__name__}")
    return PROBE_OF[type(result)]


def render(result: Any, console: Console | None = None, **_: Any) -> None:
    """Print the probe's measurement tables, then its verdicts (stdout unless ``console``)."""
    probe, console = _probe(result), console or Console()
    sys.modules[type(result).__module__].tables(result, console)
    table = Table(title=f"{probe.question}: the report's claims, measured")
    table.add_column("claim", ratio=2)
    table.add_column("measurement and why", ratio=4)
    table.add_column("verdict", no_wrap=True)
    for v in result.verdicts:
        cell = Text(v.measurement)
        if v.reason:
            cell.append("\n" + v.reason, style="dim")
        table.add_row(v.claim, cell, Text(v.verdict, style="bold " + _COLOURS.get(v.verdict, "magenta")))
    console.print(table)
    if result.interrupted:
        console.print("[yellow]interrupted: the numbers above cover what finished[/]")


def to_json(result: Any) -> dict:
    """The result as JSON-ready data: ``probe``, ``question``, ``verdicts`` and the measurements."""
    probe = _probe(result)
    return {"probe": probe.name, "question": probe.question, **asdict(result)}


def from_json(data: dict):
    """The result that :func:`to_json` wrote (``data``: the parsed ``--json`` file of any probe,
    told apart by its ``probe``), checked: types and verdicts
    (hw2cli.common.readback.ResultError names the field)."""
    from hw2cli.common.readback import build, one_of, require

    kinds = {p.name: cls for cls, p in PROBE_OF.items()}
    name = require(data, "probe")
    one_of(name, kinds, "probe")
    result = build(kinds[name], data)
    for i, v in enumerate(result.verdicts):
        one_of(v.verdict, VERDICTS, f"verdicts.{i}.verdict")
    return result
