"""One function per part of the report: a part's folder in, Markdown lines out."""

from __future__ import annotations

import json
from pathlib import Path

from hw2cli.report.published import CONV_ORDER, TABLES


def _json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def _figure(part_dir: Path, name: str, caption: str) -> list[str]:
    """An embedded image, linked relative to the report (which sits beside the part folders)."""
    if not (part_dir / name).is_file():
        return []
    return [f"![{caption}]({part_dir.name}/{name})", ""]


def rotation(part_dir: Path) -> list[str]:
    """Figures 1 and 2: accuracy (%) per test angle for the plain and augmented models."""
    data = _json(part_dir / "result.json")
    models = list(data["models"])
    lines = [
        f"Data set `{data['dataset']}` ({data['n_train']} training, {data['n_test']} test images), "
        f"{data['epochs']} epochs, batch {data['batch_size']}, lr {data['lr']}, seed {data['seed']}, "
        f"device `{data['device']}`, precision {data['precision']}.",
        "",
        "| angle (°) | " + " | ".join(f"{m} (%)" for m in models) + " |",
        "|---:|" + "---:|" * len(models),
    ]
    for i, angle in enumerate(data["angles"]):
        cells = " | ".join(f"{100 * data['models'][m]['accuracy'][i]:.2f}" for m in models)
        lines.append(f"| {angle:g} | {cells} |")
    lines.append("| mean | " + " | ".join(f"{100 * data['models'][m]['mean_accuracy']:.2f}" for m in models) + " |")
    lines.append(
        "| worst | "
        + " | ".join(f"{100 * data['models'][m]['worst_accuracy']:.2f} at {data['models'][m]['worst_angle']:g}°" for m in models)
        + " |"
    )
    lines.append("")
    lines += _figure(part_dir, "rotation.png", "Test accuracy against rotation angle")
    lines += _figure(part_dir, "preview.png", "Rotated test images")
    return lines


def padding_table(part_dir: Path) -> list[str]:
    raise NotImplementedError


def gpt(part_dir: Path) -> list[str]:
    raise NotImplementedError


def graph(part_dir: Path) -> list[str]:
    raise NotImplementedError
