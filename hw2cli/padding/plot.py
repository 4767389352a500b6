"""The figure of Tables 1 and 2: the tables' rows (validation, shifted test) per conv type,
mean ± std over the rounds, named as the tables name them."""

from __future__ import annotations

from pathlib import Path

from hw2cli.common.figure import new_figure, save_figure
from hw2cli.padding import CONV
from hw2cli.padding.bench import PaddingBenchResult


def plot_accuracy(result: PaddingBenchResult, path: str | Path) -> Path:
    """Bars of the table's rows (render.SETS) per conv type, the std over the rounds as error bars
    and each mean written above its bar, as a PNG at ``path``."""
    import numpy as np

    from hw2cli.padding.render import SETS

    types = [ct for ct in result.settings["conv_types"] if result.outcomes.get(ct)]
    x = np.arange(len(types))
    fig = new_figure(figsize=(7, 3.6))
    ax = fig.add_subplot()
    colors = ("#8fb8de", "#d9534f")
    for offset, (label, metric), color in zip((-0.2, 0.2), SETS, colors, strict=True):
        stats = [result.summary(ct, metric) for ct in types]
        means, stds = [m for m, _ in stats], [s for _, s in stats]
        # linewidth: a bar of height 0 still shows as a line (Table 2's shifted test set)
        style = dict(capsize=3, label=label, color=color, edgecolor=color, linewidth=1.5)
        drawn = ax.bar(x + offset, means, 0.4, yerr=stds, **style)
        ax.bar_label(drawn, fmt="%.1f", padding=2, fontsize=7)
    ax.set_xticks(x, [CONV[ct].label for ct in types])
    ax.set_ylim(-3, 112)  # the line of a 0% bar above the axis, the labels of 100% bars below the top
    ax.set(yticks=range(0, 101, 20), ylabel="accuracy (%)")
    s = result.settings
    table = 1 if s["net"] == "net1" else 2
    ax.set_title(
        f"Table {table} ({s['net']}): mean ± std over {s['rounds']} round(s), at most {s['epochs']} epochs\n"
        "Test: the test set with its boxes moved 16 pixels",
        fontsize=10,
    )
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2, fontsize=8, frameon=False)
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)
