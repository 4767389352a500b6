"""The probes' figures: each probe module's ``figure(result)``, drawn with matplotlib's object API
(no pyplot) and written atomically; the helpers its figures share."""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np

from hw2cli.common import figure as common_figure

#: line styles for curves that may lie on each other: each stays visible
_STYLES = (("-", "o"), ("--", "s"), (":", "^"), ("-.", "D"))


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
        ax.plot(
            xs,
            ys,
            linestyle=line,
            marker=marker,
            markevery=(k % every, every),
            markersize=4,
            lw=1.4 if k == 0 else 1.1,
            label=label + note,
        )
        drawn[label] = ys


def plot(result: Any, path: str | os.PathLike) -> None:
    """Draw the probe's figure (its module's ``figure``) as a PNG at ``path``."""
    fig = sys.modules[type(result).__module__].figure(result)
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    common_figure.save_figure(fig, path, bbox_inches="tight")
