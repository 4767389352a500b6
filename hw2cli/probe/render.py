"""Rich tables and JSON for the probes: ``render(result, console=None)`` prints the probe's
measurements (its module's ``tables``) and its verdicts, ``to_json(result)`` gives the
``--json`` data; both dispatch on the result's type, registered for every entry of
hw2cli.probe.registry."""

from __future__ import annotations

import functools
import sys
from dataclasses import asdict
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from hw2cli.probe.common import FAILS, HOLDS, PARTLY, VERDICTS
from hw2cli.probe.registry import PROBES

#: result type -> probe
PROBE_OF = {p.result_type(): p for p in PROBES}
_COLOURS = {HOLDS: "green", PARTLY: "yellow", FAILS: "red"}


@functools.singledispatch
def render(result, console: Console | None = None, **show: Any) -> None:
    """Print the probe's measurement tables, then its verdicts (stdout unless ``console``)."""
    raise TypeError(f"no renderer for {type(result).__name__}")


@functools.singledispatch
def to_json(result) -> dict:
    """The result as JSON-ready data: ``probe``, ``question``, ``verdicts`` and the measurements."""
    raise TypeError(f"no JSON form for {type(result).__name__}")


def _render(result, console: Console | None = None, **_: Any) -> None:
    console = console or Console()
    sys.modules[type(result).__module__].tables(result, console)
    table = Table(title=f"{PROBE_OF[type(result)].question}: the report's claims, measured")
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


def _to_json(result) -> dict:
    probe = PROBE_OF[type(result)]
    return {"probe": probe.name, "question": probe.question, **asdict(result)}


for _cls in PROBE_OF:
    render.register(_cls, _render)
    to_json.register(_cls, _to_json)


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
