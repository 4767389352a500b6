"""The probes' figures, drawn with matplotlib's object API (no pyplot) and written atomically.

Curves that may coincide (positions none / rope, the two softmax-scale trainings) get their own
line style and marker, and the legend says when one lies on another, so both stay visible.
"""

from __future__ import annotations

import os
import textwrap

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from hw2cli.common.io import atomic_path
from hw2cli.probe.attention_cost import AttentionCostResult
from hw2cli.probe.heads import HeadsResult
from hw2cli.probe.positions import PositionsResult
from hw2cli.probe.receptive_field import ReceptiveFieldResult
from hw2cli.probe.softmax_scale import SoftmaxScaleResult


def _attention_cost(r: AttentionCostResult) -> Figure:
    fig = Figure(figsize=(10, 4), dpi=100)
    ax_t, ax_m = fig.subplots(1, 2)
    for path, style in (("explicit", "o-"), ("sdpa", "s-"), ("kv-cache", "^-")):
        pts = [p for p in r.points if p.path == path]
        if not pts:
            continue
        slope = r.slopes.get(path, {})
        label = f"{path} (slope {slope.get('time') or float('nan'):.2f})"
        ax_t.loglog([p.n for p in pts], [p.seconds for p in pts], style, label=label, base=2)
        mem = [(p.n, p.peak_bytes) for p in pts if p.peak_bytes]
        if mem:
            m_slope = slope.get("memory") or float("nan")
            ax_m.loglog(*zip(*mem, strict=True), style, base=2, label=f"{path} (slope {m_slope:.2f})")
    ns = sorted({p.n for p in r.points})
    ax_m.loglog(ns, [n * n * r.n_head * 4 for n in ns], "k--", base=2, label="n²·heads·4 bytes")
    ax_t.set(
        xlabel="sequence length n", ylabel="seconds per call (fastest repeat)", title=f"time ({r.device})"
    )
    ax_m.set(xlabel="sequence length n", ylabel="peak memory added (bytes)", title=f"memory ({r.device})")
    for ax in (ax_t, ax_m):
        ax.grid(alpha=0.3, which="both")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    return fig


def _softmax_scale(r: SoftmaxScaleResult) -> Figure:
    fig = Figure(figsize=(12, 4), dpi=100)
    ax_j, ax_p, ax_l = fig.subplots(1, 3)
    for scaled, style in ((False, "o-"), (True, "s-")):
        rows = [x for x in r.rows if x.scaled == scaled]
        label = "q·k/√d_k" if scaled else "q·k"
        ax_j.semilogx([x.d_k for x in rows], [x.jacobian_norm for x in rows], style, base=2, label=label)
        ax_p.semilogx([x.d_k for x in rows], [x.max_prob for x in rows], style, base=2, label=label)
    ax_j.set(xlabel="d_k", ylabel="mean ‖∂softmax/∂scores‖_F", title="softmax gradient")
    ax_p.set(xlabel="d_k", ylabel="mean largest probability", title=f"saturation ({r.keys} keys)")
    curves = {}
    for t in r.training:
        pts = [(c["step"], c["train_loss"]) for c in t.curve if c.get("train_loss") is not None]
        if pts:
            curves[("with" if t.scaled else "without") + " 1/√d_k"] = pts
    _distinct_lines(ax_l, curves)
    ax_l.set(
        xlabel="step",
        ylabel="training loss (mean over seeds)",
        title=f"gpt-nano, head size {r.train_head_size}",
    )
    for ax in (ax_j, ax_p, ax_l):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    return fig


def _positions(r: PositionsResult) -> Figure:
    fig = Figure(figsize=(11, 4), dpi=100)
    ax_c, ax_k = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2, 1]})
    width = max(1, r.block_size // 8)  # a moving mean: single positions are noisy
    curves = {}
    for t in r.training:
        curve = np.convolve(t.loss_curve, np.ones(width) / width, mode="valid")
        curves[t.pos_emb] = list(zip(np.arange(len(curve)) + (width - 1) / 2, curve, strict=True))
    _distinct_lines(ax_c, curves)
    ax_c.axvline(r.block_size - 0.5, color="k", ls="--", lw=0.8, label="trained block size")
    ax_c.set(
        xlabel="position",
        ylabel=f"next-char loss (mean of {width} positions)",
        title="loss per position (extrapolation)",
    )
    ax_k.bar([t.pos_emb for t in r.training], [t.shuffle_kl or 0 for t in r.training])
    ax_k.set(ylabel="mean KL (nats)", title="prefix shuffled: next-char change")
    for ax in (ax_c, ax_k):
        ax.grid(alpha=0.3)
    ax_c.legend(fontsize=8)
    return fig


def _receptive_field(r: ReceptiveFieldResult) -> Figure:
    n = max(1, len(r.cnn_maps))  # none when Ctrl-C came before the first layer
    fig = Figure(figsize=(3 * n, 6), dpi=100)
    grid = fig.add_gridspec(2, n)
    for i, m in enumerate(r.cnn_maps):
        ax = fig.add_subplot(grid[0, i])
        ax.imshow(m, cmap="magma")
        ax.set_title(f"CNN layer {i + 1}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    ax = fig.add_subplot(grid[1, :])
    if r.gpt_maps:
        positive = [v for row in r.gpt_maps for v in row if v > 0]
        norm = LogNorm(vmin=min(positive), vmax=max(positive)) if positive else None
        im = ax.imshow(r.gpt_maps, aspect="auto", cmap="magma", interpolation="nearest", norm=norm)
        ax.set_yticks(range(len(r.gpt_maps)), [f"block {i + 1}" for i in range(len(r.gpt_maps))])
        fig.colorbar(im, ax=ax, label="share of gradient (log scale)")
    ax.set(
        xlabel="input position (the last one is read out)",
        title="GPT: gradient of the last position's logits",
    )
    return fig


def _heads(r: HeadsResult) -> Figure:
    """One row per head count, one panel per head: the last layer's attention on the prompt."""
    counts = sorted(r.maps, key=int)
    cols = max((int(h) for h in counts), default=1)
    fig = Figure(figsize=(1.9 * cols + 1.6, 2.0 * max(1, len(counts)) + 1.0), dpi=100, layout="constrained")
    axes, image = [], None
    for i, h in enumerate(counts):
        for j, head_map in enumerate(r.maps[h]):
            ax = fig.add_subplot(len(counts), cols, i * cols + j + 1)
            image = ax.imshow(head_map, cmap="viridis", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel("key position →", fontsize=8)
            ax.set_title(f"head {j + 1}", fontsize=8)
            if j == 0:
                ax.set_ylabel(f"{h} head{'s' if int(h) > 1 else ''}\n← query position", fontsize=9)
            axes.append(ax)
    if image is not None:
        fig.colorbar(image, ax=axes, label="attention weight", shrink=0.8)
    prompt = textwrap.fill(repr(r.prompt), width=max(40, int(14 * cols)))
    fig.suptitle(f"last layer's attention (seed {r.seeds[0] if r.seeds else 0}) on\n{prompt}", fontsize=9)
    return fig


#: line styles for curves that may lie on each other: each stays visible
_STYLES = (("-", "o"), ("--", "s"), (":", "^"), ("-.", "D"))


def _distinct_lines(ax, curves: dict[str, list[tuple[float, float]]]) -> None:
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


_PLOTTERS = {
    AttentionCostResult: _attention_cost,
    SoftmaxScaleResult: _softmax_scale,
    PositionsResult: _positions,
    ReceptiveFieldResult: _receptive_field,
    HeadsResult: _heads,
}


def plot(result, path: str | os.PathLike) -> None:
    """Draw the probe's figure as a PNG at ``path``."""
    fig = _PLOTTERS[type(result)](result)
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")
