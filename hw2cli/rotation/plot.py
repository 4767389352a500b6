"""Headless matplotlib figures for rotate-eval: accuracy against angle, and a grid of rotated
test images (the notebook's preview)."""

from __future__ import annotations

from pathlib import Path

from hw2cli.common.figure import new_figure, save_figure
from hw2cli.rotation.experiment import RotationResult

STYLE = {
    "plain": ("tab:blue", "o"),
    "augmented": ("tab:orange", "s"),
    "p4": ("tab:green", "^"),
    "p4-augmented": ("tab:red", "v"),
    "augmented-tta": ("tab:purple", "D"),
    "plain-tta": ("tab:brown", "x"),
}


def save_accuracy_plot(result: RotationResult, path: str | Path) -> Path:
    """Test accuracy (%) against rotation angle, one line per model / mode (Figures 1 and 2 in one)."""
    outside = len(result.models) > 2  # a legend inside would hide curves; put it on the right
    fig = new_figure(figsize=(8.4 if outside else 6.4, 4.0), dpi=100)
    ax = fig.subplots()
    for m in result.models:
        color, marker = STYLE.get(m.name, (None, "o"))
        label = f"{m.name} ({m.epochs_trained} epochs)"
        ax.plot(result.angles, [100 * a for a in m.accuracy], marker=marker, color=color, label=label)
    ax.axhline(100 / len(result.classes), color="grey", linestyle=":", linewidth=1, label="chance")
    ax.set(xlabel="rotation of the test images (degrees, counter-clockwise)", ylabel="test accuracy (%)")
    ax.set_title(f"Accuracy under rotation: {result.dataset}")
    if len(result.angles) <= 25:
        ax.set_xticks(result.angles)
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(**({"loc": "center left", "bbox_to_anchor": (1.01, 0.5)} if outside else {}))
    fig.tight_layout()
    return save_figure(fig, path)


def save_preview_grid(result: RotationResult, path: str | Path) -> Path:
    """Rows: test images labelled with their class; columns: turned by each angle."""
    images = result.preview
    rows, cols = images.shape[:2]
    fig = new_figure(figsize=(0.9 * cols + 1.4, 0.9 * rows + 0.5), dpi=100)
    axes = fig.subplots(rows, cols, squeeze=False)
    for r in range(rows):
        for c in range(cols):
            ax = axes[r][c]
            ax.imshow(images[r, c].clip(0, 1), interpolation="nearest")
            ax.set(xticks=[], yticks=[])
            if r == 0:
                ax.set_title(f"{result.angles[c]:g}°", fontsize=8)
        if r < len(result.preview_classes):
            label = f"class {result.preview_classes[r]}"
            axes[r][0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle(f"{result.dataset}: test images (rows, with their class) turned by each angle", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)
