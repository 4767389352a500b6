"""What a probe's result looks like: ``render(result, console=None)`` prints its module's
``tables`` and its verdicts, ``to_json``/``from_json`` are the ``--json`` data, ``plot`` draws
its module's ``figure`` (matplotlib's object API, no pyplot) with the helpers below. The
result's type names its probe (hw2cli.probe.registry)."""

from __future__ import annotations

import os
import sys
from dataclasses import asdict
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from hw2cli.common import figure as common_figure
from hw2cli.probe.common import FAILS, HOLDS, PARTLY, VERDICTS
from hw2cli.probe.registry import PROBES, Probe

#: result type -> probe
PROBE_OF = {p.result_type(): p for p in PROBES}
_COLOURS = {HOLDS: "green", PARTLY: "yellow", FAILS: "red"}
#: line styles for curves that may lie on each other: each stays visible
_STYLES = (("-", "o"), ("--", "s"), (":", "^"), ("-.", "D"))


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
    """The result that :func:`to_json` wrote (any probe's, told apart by ``probe``), checked:
    types and verdicts (hw2cli.common.schema.ResultError names the field)."""
    from hw2cli.common.schema import build, one_of, require

    kinds = {p.name: cls for cls, p in PROBE_OF.items()}
    name = require(data, "probe")
    one_of(name, kinds, "probe")
    result = build(kinds[name], data)
    for i, v in enumerate(result.verdicts):
        one_of(v.verdict, VERDICTS, f"verdicts.{i}.verdict")
    return result


def plot(result: Any, path: str | os.PathLike) -> None:
    """Draw the probe's figure (its module's ``figure``) as a PNG at ``path``."""
    fig = sys.modules[type(result).__module__].figure(result)
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    common_figure.save_figure(fig, path, bbox_inches="tight")


def new_figure(**kwargs: Any) -> Any:
    return common_figure.new_figure(dpi=100, **kwargs)


def finish(fig: Any, *axes: Any, which: str = "major") -> Any:
    """A grid on each of ``axes`` and its legend when it has labelled lines."""
    for ax in axes:
        ax.grid(alpha=0.3, which=which)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    return fig


def distinct_lines(ax: Any, curves: dict[str, list[tuple[float, float]]]) -> None:
    """Plot each (x, y) curve with its own line style and sparse markers, placed so that those
    of coinciding curves alternate; a curve that lies on an earlier one (within 0.1% of its
    range) says so in its legend label."""
    import numpy as np

    drawn: dict[str, np.ndarray] = {}
    for k, (label, pts) in enumerate(curves.items()):
        xs, ys = (np.asarray(v, dtype=float) for v in zip(*pts, strict=True))
        same = [
            other
            for other, oys in drawn.items()
            if len(oys) == len(ys) and np.allclose(ys, oys, rtol=0, atol=1e-3 * (np.ptp(oys) or 1.0))
        ]
        line, marker = _STYLES[k % len(_STYLES)]
        note = f" (lies on {same[0]})" if same else ""
        every = max(len(curves), len(xs) // 12)  # markers of coinciding curves fall between each other's
        style = dict(linestyle=line, marker=marker, markevery=(k % every, every), markersize=4)
        ax.plot(xs, ys, **style, lw=1.4 if k == 0 else 1.1, label=label + note)
        drawn[label] = ys
