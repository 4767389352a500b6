"""Figure 3: training and validation loss against step, drawn from a run's metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hw2cli.common.figure import new_figure, save_figure


def save_loss_plot(path: str | Path, rows: list[dict[str, Any]], title: str = "") -> None:
    """Draw the loss curves of ``rows`` (metrics.csv rows) into the PNG ``path``."""
    fig = new_figure(figsize=(6.4, 4.0), dpi=100)
    ax = fig.subplots()
    train = [(r["step"], r["train_loss"]) for r in rows if r.get("train_loss") is not None]
    if train:
        ax.plot(*zip(*train, strict=True), label="train", lw=1.2)
    val = [(r["step"], r["val_loss"]) for r in rows if r.get("val_loss") is not None]
    if val:
        ax.plot(*zip(*val, strict=True), "o-", label="validation", lw=1.2, ms=3)
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy loss (nats/token)")
    bpc = next((r["val_bpc"] / r["val_loss"] for r in rows if r.get("val_bpc") and r.get("val_loss")), None)
    if bpc is not None:  # the same curve read in bits per character, so char and BPE runs compare
        axis = ax.secondary_yaxis("right", functions=(lambda x: x * bpc, lambda x: x / bpc))
        axis.set_ylabel("validation bits/char")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if train or val:
        ax.legend()
    fig.tight_layout()
    save_figure(fig, path)
