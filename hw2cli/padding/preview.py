"""PNG examples of the box images, enlarged so a person can see the boxes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hw2cli.common.figure import new_figure, save_figure
from hw2cli.common.io import check_writable_dir
from hw2cli.padding.data import make_data
from hw2cli.padding.options import PreviewOptions

SCALE = 8  # each pixel becomes an 8 x 8 block
ORDER = {0: "red box left of green", 1: "green box left of red"}
CAPTIONS = {
    "train": "class {label} ({order}): training set",
    "test": "class {label} ({order}): test set, shifted 16 px",
    "test_unshifted": "class {label} ({order}): test set before the shift",
}


@dataclass
class PreviewResult:
    """The PNG files written, one per (split, class)."""

    files: list[Path]


def write_previews(opts: PreviewOptions) -> PreviewResult:
    """Write one PNG per (split, class) into ``opts.out_dir``: ``opts.per_class`` examples side
    by side, enlarged. Splits: train, test (shifted) and test_unshifted."""
    per_class = opts.per_class
    check_writable_dir(opts.out_dir)
    data = make_data(opts.seed, n_train=8 * per_class, n_val=per_class, n_test=8 * per_class)
    splits = {
        "train": (data.train_x, data.train_y),
        "test": (data.test_x, data.test_y),
        "test_unshifted": (data.test_unshifted_x, data.test_unshifted_y),
    }
    out_dir = Path(opts.out_dir)
    written = []
    for split, (x, y) in splits.items():
        for label in (0, 1):
            images = x[y == label][:per_class].permute(0, 2, 3, 1).numpy()  # N, H, W, 3
            gap = np.full((images.shape[1], 2, 3), 0.5, dtype=np.float32)  # grey separator
            strip = np.concatenate([part for img in images for part in (img, gap)][:-1], axis=1)
            big = np.kron(strip, np.ones((SCALE, SCALE, 1), dtype=np.float32)).clip(0, 1)
            path = out_dir / f"{split}_label{label}.png"
            h, w = big.shape[:2]
            fig = new_figure(figsize=(w / 100, (h + 40) / 100), dpi=100)
            ax = fig.add_axes((0, 0, 1, h / (h + 40)))  # the image, one pixel per PNG pixel
            ax.imshow(big, interpolation="nearest")
            ax.set_axis_off()
            caption = CAPTIONS[split].format(label=label, order=ORDER[label])
            fig.text(0.5, 1 - 20 / (h + 40), caption, ha="center", va="center", fontsize=9)  # top 40 px
            save_figure(fig, path, dpi=100)
            written.append(path)
    return PreviewResult(written)
