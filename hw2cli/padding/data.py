"""The red/green box images of homework Q1.1, drawn from a seed: two 4x4 boxes on black, the
class their left-right order (label 0: red left). In training the class also shows in the
boxes' vertical band (label 0 near the top); the test set moves the boxes 16 pixels so the band
points to the wrong class: a network that reads absolute position fails it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

IMAGE_SIZE = 32
BOX = 4
OFF = IMAGE_SIZE - BOX  # 28: the largest box coordinate
MIN_GAP = 5  # the two boxes' x differ by at least this much
BAND_CENTRE = (7, 23)  # y offset of label 0 / label 1
BAND_JITTER = (-4, 4)  # y = centre + randint(-4, 4): numpy's randint of the course's +-28/6
SHIFT = 16  # test set: label 0 moves down, label 1 moves up by this much
SIZES = {"train": 2000, "val": 1000, "test": 1000}
# Sub-seeds: train (and the course's validation set), independent validation, both test sets.
_STREAMS = {"train": 0, "val": 1, "test": 2}


@dataclass
class BoxData:
    """The data sets of one run (images float32 N x 3 x 32 x 32, labels int64 N)."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor  # shifted: the band gives the wrong class
    test_y: torch.Tensor
    test_unshifted_x: torch.Tensor  # the same draws before the shift
    test_unshifted_y: torch.Tensor

    def kept_sets(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The sets the kept weights are measured on: validation, test, unshifted test."""
        return [
            (self.val_x, self.val_y),
            (self.test_x, self.test_y),
            (self.test_unshifted_x, self.test_unshifted_y),
        ]


def box_positions(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The box corners of ``n`` samples (sample i has label i mod 2): ``label``, ``x1, y1`` (the
    left box), ``x2, y2`` (the right box, redrawn until it is ``MIN_GAP`` right of the first)."""
    label = np.arange(n) % 2
    centre = np.where(label == 0, BAND_CENTRE[0], BAND_CENTRE[1])
    x1 = rng.integers(0, OFF // 2 - 4, size=n)
    y1 = centre + rng.integers(*BAND_JITTER, size=n)
    x2 = np.empty(n, dtype=np.int64)
    y2 = np.empty(n, dtype=np.int64)
    todo = np.arange(n)
    while todo.size:
        x2[todo] = rng.integers(x1[todo], OFF)
        y2[todo] = centre[todo] + rng.integers(*BAND_JITTER, size=todo.size)
        todo = todo[np.abs(x1[todo] - x2[todo]) < MIN_GAP]
    return {"label": label, "x1": x1, "y1": y1, "x2": x2, "y2": y2}


def shift_positions(pos: dict[str, np.ndarray], shift: int = SHIFT) -> dict[str, np.ndarray]:
    """Move label 0 boxes down and label 1 boxes up by ``shift`` pixels (the test set)."""
    dy = np.where(pos["label"] == 0, shift, -shift)
    return {**pos, "y1": pos["y1"] + dy, "y2": pos["y2"] + dy}


def render_images(pos: dict[str, np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Paint the boxes: label 0 has red left and green right, label 1 the reverse."""
    label = torch.as_tensor(pos["label"])
    n = label.numel()
    images = torch.zeros(n, 3, IMAGE_SIZE, IMAGE_SIZE)
    d = torch.arange(BOX)
    idx = torch.arange(n)[:, None, None]
    for channel, x, y in ((label, pos["x1"], pos["y1"]), (1 - label, pos["x2"], pos["y2"])):  # 0: red
        rows = torch.as_tensor(y)[:, None, None] + d[None, :, None]
        cols = torch.as_tensor(x)[:, None, None] + d[None, None, :]
        images[idx, channel[:, None, None], rows, cols] = 1.0
    return images, label.long()


def make_split(n: int, seed: int, stream: str, shifted: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Images and labels of ``n`` samples drawn from sub-stream ``stream`` of ``seed``."""
    rng = np.random.default_rng([seed, _STREAMS[stream]])
    pos = box_positions(n, rng)
    return render_images(shift_positions(pos) if shifted else pos)


def make_data(
    seed: int = 0,
    independent_val: bool = False,
    n_train: int = SIZES["train"],
    n_val: int = SIZES["val"],
    n_test: int = SIZES["test"],
) -> BoxData:
    """All data sets of a run. As in the course code the validation set is the first ``n_val``
    training images, unless ``independent_val`` draws it on its own."""
    if independent_val:
        train_x, train_y = make_split(n_train, seed, "train")
        val_x, val_y = make_split(n_val, seed, "val")
    else:
        x, y = make_split(max(n_train, n_val), seed, "train")
        train_x, train_y, val_x, val_y = x[:n_train], y[:n_train], x[:n_val], y[:n_val]
    test_x, test_y = make_split(n_test, seed, "test", shifted=True)
    test_u_x, test_u_y = make_split(n_test, seed, "test")
    return BoxData(train_x, train_y, val_x, val_y, test_x, test_y, test_u_x, test_u_y)
