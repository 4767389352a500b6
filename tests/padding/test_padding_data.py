"""The box generator of `hw2 padding-bench` against the rules of the course's data set."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hw2cli.padding.data import make_data


def boxes(images: torch.Tensor) -> dict[str, np.ndarray]:
    """Top-left corner (y, x) of the red and the green box of every image, read off the pixels."""
    out = {}
    for name, channel in (("red", 0), ("green", 1)):
        mask = images[:, channel] > 0
        ys = mask.any(2).float().argmax(1).numpy()  # first row with a pixel
        xs = mask.any(1).float().argmax(1).numpy()  # first column with a pixel
        out[name] = np.stack([ys, xs], 1)
    return out


@pytest.fixture(scope="module")
def data():
    return make_data(seed=3, n_train=600, n_val=200, n_test=400)


def test_images_hold_one_4x4_box_per_colour(data):
    for x in (data.train_x, data.val_x, data.test_x, data.test_unshifted_x):
        assert x.shape[1:] == (3, 32, 32) and x.dtype == torch.float32
        assert set(x.unique().tolist()) == {0.0, 1.0}
        assert (x[:, 2] == 0).all(), "the blue channel stays black"
        assert (x[:, 0].sum((1, 2)) == 16).all() and (x[:, 1].sum((1, 2)) == 16).all()
        b = boxes(x)
        for name, channel in (("red", 0), ("green", 1)):
            for i in range(0, len(x), 37):  # the 16 pixels form the 4x4 square at the corner
                y0, x0 = b[name][i]
                assert x[i, channel, y0 : y0 + 4, x0 : x0 + 4].sum() == 16


def test_labels_alternate_and_order_boxes(data):
    for x, y in ((data.train_x, data.train_y), (data.test_x, data.test_y)):
        assert torch.equal(y, torch.arange(len(y)) % 2)
        b = boxes(x)
        left = np.where(y.numpy() == 0, b["red"][:, 1], b["green"][:, 1])
        right = np.where(y.numpy() == 0, b["green"][:, 1], b["red"][:, 1])
        assert (right - left >= 5).all(), "label 0: red left of green; label 1: green left of red; gap >= 5"
        assert left.min() == 0 and left.max() == 9  # first box x uniform in [0, 10)
        assert right.max() <= 27


def test_training_bands_give_the_class_away(data):
    y = data.train_y.numpy()
    b = boxes(data.train_x)
    for name in ("red", "green"):
        top = b[name][:, 0]
        assert set(top[y == 0]) == set(range(3, 11)), "label 0: 7 + randint(-4, 4)"
        assert set(top[y == 1]) == set(range(19, 27)), "label 1: 23 + randint(-4, 4)"
    assert (b["red"][:, 0] != b["green"][:, 0]).any(), "the two boxes draw their y independently"


def test_test_set_is_the_unshifted_one_moved_16_pixels(data):
    y = data.test_y
    assert torch.equal(y, data.test_unshifted_y)
    down = torch.roll(data.test_unshifted_x, 16, dims=2)
    up = torch.roll(data.test_unshifted_x, -16, dims=2)
    assert torch.equal(data.test_x[y == 0], down[y == 0])
    assert torch.equal(data.test_x[y == 1], up[y == 1])
    b = boxes(data.test_x)
    assert set(b["red"][y.numpy() == 0, 0]) <= set(range(19, 27)), "the band now points to the other class"
    assert set(b["red"][y.numpy() == 1, 0]) <= set(range(3, 11))


def test_validation_quirk_and_independent_validation():
    quirk = make_data(seed=5, n_train=100, n_val=40, n_test=10)
    assert torch.equal(quirk.val_x, quirk.train_x[:40]) and torch.equal(quirk.val_y, quirk.train_y[:40])
    indep = make_data(seed=5, n_train=100, n_val=40, n_test=10, independent_val=True)
    assert torch.equal(indep.train_x, quirk.train_x)
    assert not torch.equal(indep.val_x, indep.train_x[:40])
    assert torch.equal(indep.val_y, torch.arange(40) % 2)


def test_same_seed_same_data_other_seed_other_data():
    a, b, c = (
        make_data(1, n_train=50, n_val=10, n_test=20),
        make_data(1, n_train=50, n_val=10, n_test=20),
        make_data(2, n_train=50, n_val=10, n_test=20),
    )
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.test_x, b.test_x)
    assert not torch.equal(a.train_x, c.train_x)
