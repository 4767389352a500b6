"""rotate-eval building blocks: the CNN's shapes, rotation semantics, the --angles parser and
the digits / image-folder loaders."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from hw2cli.common.options import OptionError
from hw2cli.rotation.data import load_dataset, load_digits, to_float
from hw2cli.rotation.model import P4CNNConfig, RotationCNN, RotationCNNConfig
from hw2cli.rotation.options import RotationOptions, parse_angles
from hw2cli.rotation.rotate import rotate_batch, rotate_each


def test_model_shapes_follow_the_notebook():
    model = RotationCNN(RotationCNNConfig())
    x = torch.rand(5, 3, 32, 32)
    assert model.features(x).shape == (5, 64, 4, 4)
    assert model(x).shape == (5, 10)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(64 * 4 * 4, 64), (64, 10)]
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(m.in_channels, m.out_channels, m.kernel_size, m.padding) for m in convs] == [
        (3, 32, (3, 3), (1, 1)),
        (32, 64, (3, 3), (1, 1)),
        (64, 64, (3, 3), (1, 1)),
    ]
    assert RotationCNN(RotationCNNConfig(n_classes=4))(x).shape == (5, 4)


def test_the_models_folder_reads_both_configs_back_with_their_own_fields_and_defaults():
    """config.json's sections are the configs' fields (a JSON list for the widths): a config
    written reads back equal, an older folder's missing keys take the configs' defaults, and
    values beyond a file hw2 writes are refused."""
    from pydantic import ValidationError

    from hw2cli.rotation.saved import ModelsConfig

    cnn, p4 = (
        RotationCNNConfig(n_classes=7, hidden=32),
        P4CNNConfig(n_classes=7, image_size=16, channels=(8, 8, 16)),
    )
    written = {"model": cnn.to_dict(), "p4_model": p4.to_dict(), "models": {}}
    meta = ModelsConfig.model_validate(json.loads(json.dumps(written)))
    assert (
        RotationCNNConfig(**meta.model.model_dump()) == cnn
        and P4CNNConfig(**meta.p4_model.model_dump()) == p4
    )
    older = ModelsConfig.model_validate({"model": {}, "p4_model": {}, "models": {}})
    assert (older.model.channels, older.p4_model.channels, older.p4_model.hidden) == (
        (32, 64, 64),
        (16, 32, 32),
        32,
    )
    bad = [
        ("model", "channels", [32, 5000, 64], "not all 1 to 4,096"),
        ("model", "channels", [32, "64", 64], "valid integer"),
        ("model", "channels", [32, 64], "required"),
        ("model", "hidden", 0, "greater than or equal to 1"),
        ("p4_model", "image_size", 4, "greater than or equal to 8"),
        ("p4_model", "n_classes", 3, "p4_model has 3 classes"),
    ]
    for section, key, value, why in bad:
        with pytest.raises(ValidationError, match=why):
            ModelsConfig.model_validate({**written, section: {**written[section], key: value}})


@pytest.fixture
def batch():
    return torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("angle", [0, 360, -360, 720])
def test_full_turns_leave_a_batch_unchanged(batch, angle):
    assert torch.equal(rotate_batch(batch, angle), batch)
    assert torch.equal(rotate_each(batch, torch.full((6,), float(angle))), batch)


def test_quarter_turns_match_rot90_counter_clockwise(batch):
    """torchvision (like PIL) turns counter-clockwise for positive angles, as torch.rot90 with k=1
    on dims (H, W) does: the top row becomes the left column, read bottom-up."""
    for k, angle in ((1, 90), (2, 180), (3, 270), (3, -90)):
        expected = torch.rot90(batch, k, dims=(-2, -1))
        assert torch.equal(rotate_batch(batch, angle), expected)
        # the per-image path (grid_sample, used for augmentation) has no rot90 shortcut
        assert torch.equal(rotate_each(batch, torch.full((6,), float(angle))), expected)
    corner = torch.zeros(1, 1, 4, 4)
    corner[0, 0, 0, 3] = 1  # top-right pixel goes to the top-left after a CCW quarter turn
    assert rotate_batch(corner, 90)[0, 0, 0, 0] == 1


def test_per_image_rotation_matches_batched_rotation_at_any_angle(batch):
    """Augmented training (one angle per image) and evaluation (one angle per batch) rotate alike."""
    angles = torch.tensor([17.5, 30.0, 45.0, 123.0, 200.0, 333.3])
    each = rotate_each(batch, angles)
    for i, angle in enumerate(angles.tolist()):
        assert torch.equal(each[i], rotate_batch(batch[i : i + 1], angle)[0])


def test_rotation_fills_corners_black_and_keeps_the_centre(batch):
    turned = rotate_batch(torch.ones_like(batch), 45)
    assert torch.all(turned[..., 0, 0] == 0) and torch.all(turned[..., 16, 16] == 1)
    assert rotate_batch(batch, 45).device == batch.device


def test_parse_angles_forms():
    assert parse_angles("0:360:30") == [float(a) for a in range(0, 361, 30)]
    assert parse_angles("0:100:30") == [0.0, 30.0, 60.0, 90.0]
    assert parse_angles("180, 0,90,0") == [0.0, 90.0, 180.0]
    assert parse_angles("0:90:45,270") == [0.0, 45.0, 90.0, 270.0]
    assert parse_angles("0:1:0.25") == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert parse_angles("-30") == [-30.0]


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ("", "empty item"),
        ("abc", "'abc' is not a number"),
        ("0:90", "neither a number nor a START:STOP:STEP range"),
        ("0:90:0", "step 0 must be positive"),
        ("90:0:10", "stop 0 is below start 90"),
        ("0,,90", "empty item"),
        ("inf", "not a finite number"),
        ("0:1e6:1", "too many"),
    ],
)
def test_parse_angles_rejects_bad_specs_and_names_the_form(spec, why):
    with pytest.raises(OptionError) as info:
        parse_angles(spec)
    message = str(info.value)
    assert why in message and "START:STOP:STEP" in message and "\n" not in message
    assert message.startswith(f"bad angles {spec!r}") and info.value.fields == ["angles"]


def test_digits_loader_counts_shapes_range_and_fixed_split():
    from sklearn.datasets import load_digits as sk_digits

    data = load_digits()
    assert data.train_images.shape == (1347, 3, 32, 32) and data.test_images.shape == (450, 3, 32, 32)
    assert data.train_images.dtype == torch.uint8 and len(data.train_labels) == 1347
    assert data.classes == [str(i) for i in range(10)]
    x = to_float(data.test_images)
    assert x.min() == 0 and x.max() == 1
    assert torch.equal(x[:, 0], x[:, 2])  # grey replicated to 3 channels
    # stratified: every digit appears in both splits in its overall proportion (within one image)
    counts = np.bincount(sk_digits().target, minlength=10)
    assert np.all(np.abs(np.bincount(data.test_labels.numpy(), minlength=10) - counts * 0.25) <= 1)
    again = load_digits()
    assert torch.equal(again.test_images, data.test_images) and torch.equal(
        again.train_labels, data.train_labels
    )
    # each test image is an upscaled original: its 4x4 block means give back the 8x8 digit
    sk = sk_digits()
    original = torch.from_numpy(sk.images / 16.0).float()
    small = torch.nn.functional.avg_pool2d(x[:, :1], 4)[:, 0]
    match = torch.cdist(small.flatten(1), original.flatten(1)).argmin(dim=1)
    assert torch.equal(torch.from_numpy(sk.target)[match], data.test_labels)
    assert len(set(match.tolist())) == 450


def _png(path, color, size=(10, 14)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)


def test_imagefolder_loader_reads_resizes_and_labels(tmp_path):
    for split, n in (("train", 3), ("test", 2)):
        for cls, color in (("cat", (255, 0, 0)), ("dog", (0, 0, 255))):
            for i in range(n):
                _png(tmp_path / split / cls / f"{i}.png", color)
    data = load_dataset(f"imagefolder:{tmp_path}")
    assert data.classes == ["cat", "dog"]
    assert data.train_images.shape == (6, 3, 32, 32) and data.test_images.shape == (4, 3, 32, 32)
    assert data.test_labels.tolist() == [0, 0, 1, 1]
    assert torch.all(data.test_images[:2, 0] == 255) and torch.all(data.test_images[:2, 2] == 0)
    assert torch.all(data.test_images[2:, 2] == 255)


def test_unknown_dataset_is_refused():
    with pytest.raises(OptionError, match="unknown dataset 'mnist'; use cifar10, digits or imagefolder:PATH"):
        load_dataset("mnist")
    with pytest.raises(OptionError, match="unknown dataset 'mnist'"):
        RotationOptions(dataset="mnist")


def _tiny_digits(n_train: int = 128):
    from dataclasses import replace

    data = load_digits()
    return replace(data, train_images=data.train_images[:n_train], train_labels=data.train_labels[:n_train])


def test_same_seed_same_numbers_and_augmentation_changes_training():
    from hw2cli.rotation.experiment import train_model

    data = _tiny_digits()
    kwargs = dict(epochs=1, batch_size=64, lr=1e-3, device=torch.device("cpu"))
    config = RotationCNNConfig()
    model_a, loss_a = train_model(data, config, augment=True, seed=3, **kwargs)
    model_b, loss_b = train_model(data, config, augment=True, seed=3, **kwargs)
    assert loss_a == loss_b
    assert all(
        torch.equal(p, q)
        for p, q in zip(model_a.state_dict().values(), model_b.state_dict().values(), strict=True)
    )
    _, loss_plain = train_model(data, config, augment=False, seed=3, **kwargs)
    _, loss_other_seed = train_model(data, config, augment=True, seed=4, **kwargs)
    assert loss_plain != loss_a and loss_other_seed != loss_a
    _, loss_bf16 = train_model(data, config, augment=True, seed=3, precision="bf16", **kwargs)
    assert loss_bf16 != loss_a and loss_bf16[0] == pytest.approx(
        loss_a[0], rel=0.05
    )  # autocast ran, same training


def test_evaluate_counts_correct_predictions_per_angle():
    from hw2cli.rotation.experiment import evaluate

    data = _tiny_digits()
    torch.manual_seed(0)
    model = RotationCNN(RotationCNNConfig()).eval()
    images, labels = data.test_images[:100], data.test_labels[:100]
    angles = [0.0, 90.0, 33.0]
    acc = evaluate({"m": model}, images, labels, angles, device=torch.device("cpu"), batch_size=32)["m"]
    with torch.no_grad():
        expected = [
            (model(rotate_batch(to_float(images), a)).argmax(1) == labels).double().mean().item()
            for a in angles
        ]
    assert acc == expected
